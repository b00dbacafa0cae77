//! What mod_wasm keeps for a request in its request_config: for an original request (its
//! subrequests and internal redirects included) the extension instances, ended with its
//! pool; for every request its marks (httpd has already answered it; an extension module
//! wrote part of its response).

use std::cell::Cell;
use std::ffi::c_void;
use std::os::raw::c_int;

use host::extension::RequestInstances;

use crate::ffi::*;
use crate::log::log_request;
use crate::pool::pool_owned;

/// What mod_wasm notes of one request, original or not.
#[derive(Default)]
struct Marks {
    /// httpd has been given a whole response ([`mark_answered`]).
    answered: Cell<bool>,
    /// An extension module's handler wrote part of the response ([`mark_body_written`]).
    body_written: Cell<bool>,
}

/// What mod_wasm keeps for one original request (its subrequests and internal redirects
/// included): the extension instances, the request itself for the cleanup that ends them,
/// and the original request's own marks. A subrequest's or internal redirect's own
/// request_config slot holds only its [`Marks`].
struct RequestState {
    instances: RequestInstances,
    r: *mut request_rec,
    marks: Marks,
}

/// Whether `r` is an original request (neither a subrequest nor an internal redirect).
///
/// # Safety
/// `r` must be a live request.
unsafe fn is_original(r: *mut request_rec) -> bool {
    // SAFETY: caller's contract.
    unsafe { (*r).main.is_null() && (*r).prev.is_null() }
}

/// Our slot in `r`'s own request_config.
///
/// # Safety
/// `r` must be a live request.
unsafe fn own_slot(r: *mut request_rec) -> *mut *mut c_void {
    // SAFETY: request_config has one slot per module; ours is only used in this file.
    unsafe { ((*r).request_config as *mut *mut c_void).add(module_index() as usize) }
}

/// The state of the original request `r` belongs to, made on first use if `create`.
///
/// # Safety
/// `r` must be a live request; the reference must not outlive the original request's pool.
unsafe fn request_state<'a>(r: *mut request_rec, create: bool) -> Option<&'a RequestState> {
    let mut root = r;
    // SAFETY: main and prev of a live request are NULL or live requests of the same chain.
    unsafe {
        loop {
            if !(*root).main.is_null() {
                root = (*root).main;
            } else if !(*root).prev.is_null() {
                root = (*root).prev;
            } else {
                break;
            }
        }
    }
    // SAFETY: `root` is live (from `r`).
    let slot = unsafe { own_slot(root) };
    // SAFETY: the slot belongs to this request and is read and written on its thread only.
    unsafe {
        if (*slot).is_null() {
            if !create {
                return None;
            }
            let state = RequestState { instances: RequestInstances::default(), r: root, marks: Marks::default() };
            *slot = pool_owned((*root).pool, state) as *mut c_void;
        }
        // Shared only: a nested call (a subrequest during a guest's call) may reach it too.
        Some(&*(*slot as *const RequestState))
    }
}

/// The extension instances of the request `r` belongs to: subrequests and internal
/// redirects share those of the original request, which ends them with its pool.
///
/// # Safety
/// `r` must be a live request; the reference must not outlive the original request's pool.
pub(crate) unsafe fn request_instances<'a>(r: *mut request_rec) -> &'a RequestInstances {
    // SAFETY: caller's contract.
    match unsafe { request_state(r, true) } {
        Some(state) => &state.instances,
        None => unreachable!("request_state makes the state when asked to"),
    }
}

/// `r`'s own marks, made on first use if `create`: an original request's in its state, a
/// subrequest's or internal redirect's in its own request_config slot.
///
/// # Safety
/// `r` must be a live request, on its thread; the reference must not outlive its pool.
unsafe fn marks<'a>(r: *mut request_rec, create: bool) -> Option<&'a Marks> {
    // SAFETY: caller's contract; a non-original request's own slot holds only its Marks,
    // made here in its pool.
    unsafe {
        if is_original(r) {
            return request_state(r, create).map(|state| &state.marks);
        }
        let slot = own_slot(r);
        if (*slot).is_null() {
            if !create {
                return None;
            }
            *slot = pool_owned((*r).pool, Marks::default()) as *mut c_void;
        }
        Some(&*(*slot as *const Marks))
    }
}

/// Notes that httpd has been given a whole response for `r` from inside its body's flow: an
/// input filter refused the body while it was read (ours, or httpd's own for a body over
/// `LimitRequestBody`), or an output filter (or the handler) ended the response with an
/// error. Each request keeps its own mark: a later subrequest is not answered by an earlier
/// one's.
///
/// # Safety
/// `r` must be a live request, on its thread.
pub(crate) unsafe fn mark_answered(r: *mut request_rec) {
    // SAFETY: caller's contract.
    if let Some(marks) = unsafe { marks(r, true) } {
        marks.answered.set(true);
    }
}

/// Whether `r` itself was marked answered.
///
/// # Safety
/// `r` must be a live request, on its thread.
unsafe fn marked(r: *mut request_rec) -> bool {
    // SAFETY: caller's contract.
    unsafe { marks(r, false) }.is_some_and(|marks| marks.answered.get())
}

/// Notes that an extension module's call wrote part of `r`'s response and left it open:
/// the bytes may sit in a filter (mod_wasm's own output filters hold up to 512 KiB), and
/// nothing may redirect `r` from now on.
///
/// # Safety
/// `r` must be a live request, on its thread.
pub(crate) unsafe fn mark_body_written(r: *mut request_rec) {
    // SAFETY: caller's contract.
    if let Some(marks) = unsafe { marks(r, true) } {
        marks.body_written.set(true);
    }
}

/// Whether an extension module's call wrote part of `r`'s response.
///
/// # Safety
/// `r` must be a live request, on its thread.
pub(crate) unsafe fn body_written(r: *mut request_rec) -> bool {
    // SAFETY: caller's contract.
    unsafe { marks(r, false) }.is_some_and(|marks| marks.body_written.get())
}

/// `AP_FILTER_ERROR` ("the response is taken care of") when httpd has already been given a
/// whole response for `r` — it was marked ([`mark_answered`]), or its own EOS has gone out —
/// or for a request it is a subrequest of (marked: a subrequest reads its main request's
/// body, so a refusal ends the main request). A status returned then would make httpd
/// answer twice. A main request's EOS alone does not count: a page's EOS has passed when
/// mod_include runs the subrequests it includes. An ErrorDocument's internal redirect is a
/// new response.
///
/// # Safety
/// `r` must be a live request, on its thread.
pub(crate) unsafe fn already_answered(r: *mut request_rec) -> Option<c_int> {
    // SAFETY: caller's contract; the main requests of a live request are live.
    unsafe {
        if (*r).eos_sent != 0 {
            return Some(AP_FILTER_ERROR);
        }
        let mut q = r;
        while !q.is_null() {
            if marked(q) {
                return Some(AP_FILTER_ERROR);
            }
            q = (*q).main;
        }
    }
    None
}

/// The outermost request `r` is a subrequest of (`r` itself for a main request).
///
/// # Safety
/// `r` must be a live request.
pub(crate) unsafe fn top_main(r: *mut request_rec) -> *mut request_rec {
    let mut q = r;
    // SAFETY: caller's contract; the main requests of a live request are live.
    unsafe {
        while !(*q).main.is_null() {
            q = (*q).main;
        }
    }
    q
}

/// The original request's pool drops its state: its extension instances learn that it
/// ended and go back to their pools, or are dropped.
impl Drop for RequestState {
    fn drop(&mut self) {
        let r = self.r;
        // SAFETY: the pool's cleanups run before the request's memory is freed, and no hook
        // of the request runs any more.
        self.instances.end_in_place(&mut |level, message| unsafe { log_request(r, level, message) });
    }
}
