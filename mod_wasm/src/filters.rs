//! Body filters (`WasmOutputFilter`, `WasmInputFilter`): httpd filters whose work a Wasm
//! module's `output-filter` / `input-filter` export does, one piece of the body per call, on
//! the request's instance of the module (the one its hooks use).
//!
//! They follow httpd's filter rules: metadata buckets keep their order, a FLUSH makes the
//! guest emit what it holds and goes on at once, nothing passes after EOS, no empty brigade
//! is passed on, and no body is read whole (FILE and PIPE buckets are read in pieces of at
//! most [`PIECE`] bytes).

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::os::raw::c_char;
use std::ptr;
use std::sync::Arc;

use host::extension::{CallContext, FilterStream};
use host::failure::Failure;
use host::phase::{ChunkEnd, FilterKind, FilterOutcome, Provides, Scope};
use host::limits::Limits;
use host::registry::Definition;
use host::LogLevel;

use crate::boundary::guard;
use crate::config::dir_config;
use crate::pool::pool_owned;
use crate::request::RequestRec;
use crate::request_state::{already_answered, request_instances};
use crate::ffi::*;
use crate::log::log_request;
use crate::request::end_with_error;

/// The most bytes one guest call is given.
const PIECE: usize = 64 * 1024;
/// Emitted bytes are passed on once this many wait (and at every FLUSH, EOS and brigade's
/// end). Measured on a 1 MiB page: 64 KiB made one writev per piece and cost a quarter of
/// the throughput; 512 KiB keeps a request's buffered output bounded all the same.
const PASS_AT: usize = 512 * 1024;

/// How many filters of each kind a configuration may define: each has its own function
/// (`output_filter::<N>`), which is how a call knows its definition — a filter run through
/// mod_filter (`AddOutputFilterByType`, `FilterProvider`) carries mod_filter's name, not its
/// own, so the name cannot tell.
pub(crate) const MAX_FILTERS: usize = crate::MAX_NUMBERED;

type OutputFn = unsafe extern "C" fn(*mut ap_filter_t, *mut apr_bucket_brigade) -> apr_status_t;
type InputFn = unsafe extern "C" fn(*mut ap_filter_t, *mut apr_bucket_brigade, ap_input_mode_t, apr_read_type_e, apr_off_t) -> apr_status_t;

const OUTPUT_FILTERS: [OutputFn; MAX_FILTERS] = numbered!(output_filter);
const INPUT_FILTERS: [InputFn; MAX_FILTERS] = numbered!(input_filter);

/// Makes `name` the httpd filter of `kind` number `index` (while the configuration is read).
///
/// # Safety
/// `pool` must be the configuration pool; `index` below MAX_FILTERS.
pub(crate) unsafe fn register(kind: FilterKind, index: usize, name: &str, pool: *mut apr_pool_t) {
    // SAFETY: httpd copies the name; the functions are 'static and behind the panic boundary.
    unsafe {
        let name = pool_str(pool, name);
        match kind {
            FilterKind::Output => {
                ap_register_output_filter(name, Some(OUTPUT_FILTERS[index]), None, AP_FTYPE_RESOURCE);
            }
            FilterKind::Input => {
                ap_register_input_filter(name, Some(INPUT_FILTERS[index]), None, AP_FTYPE_RESOURCE);
            }
        }
    }
}

/// What a filter of one request keeps between calls (`f->ctx`), freed with the request.
/// Shared, not `&mut`: httpd may enter the filter again while it passes a brigade on (an
/// error response sent from below goes through the request's filters).
struct Filtering<S> {
    def: Arc<Definition>,
    kind: FilterKind,
    /// The request's `WasmTimeout`, `WasmMemoryLimit` and scope (its configuration is set
    /// by the time its body flows), or why its configuration cannot be used.
    settings: Result<(Limits, Scope), &'static str>,
    /// The instance this body goes to.
    stream: Cell<FilterStream>,
    state: S,
}

/// The filter's state for this request, made on its first call; `None` if the filter is
/// not for this request (it has then removed itself).
///
/// # Safety
/// `f` must be a live filter of a request, on its thread.
unsafe fn state<'a, S: 'static>(
    f: *mut ap_filter_t,
    kind: FilterKind,
    index: usize,
    new: impl FnOnce(*mut request_rec) -> S,
) -> Option<&'a Filtering<S>> {
    // SAFETY: a live filter of a live request (caller), whose per_dir_config comes from our
    // create/merge; its ctx is NULL or the Box made below (mod_filter swaps its provider's
    // ctx in around the call, so that holds under mod_filter too).
    unsafe {
        if !(*f).ctx.is_null() {
            return Some(&*((*f).ctx as *const Filtering<S>));
        }
        let r = (*f).r;
        let def = host::registry::definition(Provides::Filter(kind), index);
        // A subrequest's body goes on through its main request's filters, which filter it.
        let def = match def {
            Some(def) if (*r).main.is_null() => def,
            found => {
                if found.is_none() {
                    let name = c_str((*(*f).frec).name);
                    log_request(r, LogLevel::Error, &format!("filter {name}: not defined in this configuration; passing the body unchanged"));
                }
                return None;
            }
        };
        let settings = dir_config(module_config((*r).per_dir_config)).map(|cfg| (cfg.limits(), cfg.extension_scope()));
        // Dropped by the request's pool, after its filters.
        let filtering = pool_owned((*r).pool, Filtering { def, kind, settings, stream: Cell::default(), state: new(r) });
        (*f).ctx = filtering as *mut c_void;
        Some(&*filtering)
    }
}

/// Calls the guest's filter with one piece of the body.
///
/// # Safety
/// `r` must be the live request of the filter, on its thread.
unsafe fn call_guest<S>(r: *mut request_rec, filtering: &Filtering<S>, data: &[u8], at: ChunkEnd) -> FilterOutcome {
    let def = &filtering.def;
    let (limits, scope) = match filtering.settings {
        Ok(settings) => settings,
        Err(reason) => {
            // SAFETY: `r` is live.
            unsafe { log_request(r, LogLevel::Error, reason) };
            return FilterOutcome::Failed(Failure::Trap);
        }
    };
    // SAFETY: `r` is live; the instances live as long as its original request's pool.
    let instances = unsafe { request_instances(r) };
    // SAFETY: `r` is live; the host drops the value when the guest call returns.
    let req = Box::new(unsafe { RequestRec::new(r) });
    let mut stream = filtering.stream.take();
    let outcome = instances.filter(CallContext { module: &def.module, limits, scope }, filtering.kind, &mut stream, req, data, at);
    filtering.stream.set(stream);
    outcome
}

/// A filter entry inside the panic boundary: a panic is logged and the body fails.
fn behind_boundary(f: *mut ap_filter_t, body: impl FnOnce() -> apr_status_t) -> apr_status_t {
    guard(
        |msg| {
            // SAFETY: only called from filters, which httpd calls with a live filter of a request.
            unsafe { log_request((*f).r, LogLevel::Error, &msg) };
            APR_EGENERAL as apr_status_t
        },
        body,
    )
}

// -- output --------------------------------------------------------------------------------

/// An output filter's state for one response.
struct Output {
    /// What goes on to the next filter.
    out: *mut apr_bucket_brigade,
    /// Emitted bytes waiting in `out`.
    waiting: Cell<usize>,
    /// Something has been passed on: the headers are gone, an error status is no longer possible.
    started: Cell<bool>,
    /// The guest has changed the body: Content-Length and ETag were removed.
    changed: Cell<bool>,
    /// EOS went on, or the response was cut: nothing more passes.
    finished: Cell<bool>,
    /// A brigade is being passed on: a call now comes from below (httpd sending its error
    /// response for a status met there) and goes straight on.
    passing: Cell<bool>,
}

/// The output filter defined by the configuration's `WasmOutputFilter` line number `N`.
unsafe extern "C" fn output_filter<const N: usize>(f: *mut ap_filter_t, bb: *mut apr_bucket_brigade) -> apr_status_t {
    // SAFETY: httpd calls an output filter with a live filter of a request and its brigade.
    behind_boundary(f, || unsafe { filter_output(f, N, bb) })
}

/// # Safety
/// `f` must be a live output filter of a request and `bb` the brigade passed to it.
unsafe fn filter_output(f: *mut ap_filter_t, index: usize, bb: *mut apr_bucket_brigade) -> apr_status_t {
    // SAFETY: a live filter and brigade of a live request, on its thread (caller).
    unsafe {
        let r = (*f).r;
        // Responses that carry no body are not given one.
        let no_body = (*r).header_only != 0 || matches!((*r).status as u32, HTTP_NO_CONTENT | HTTP_NOT_MODIFIED);
        let filtering = if no_body && (*f).ctx.is_null() {
            None
        } else {
            state(f, FilterKind::Output, index, |r| Output {
                out: apr_brigade_create((*r).pool, (*(*r).connection).bucket_alloc),
                waiting: Cell::new(0),
                started: Cell::new(false),
                changed: Cell::new(false),
                finished: Cell::new(false),
                passing: Cell::new(false),
            })
        };
        let Some(filtering) = filtering else {
            ap_remove_output_filter(f);
            return ap_pass_brigade((*f).next, bb);
        };
        let st = &filtering.state;
        if st.passing.get() {
            return ap_pass_brigade((*f).next, bb);
        }
        if st.finished.get() {
            apr_brigade_cleanup(bb as *mut c_void);
            return APR_SUCCESS as apr_status_t;
        }
        while let Some(e) = brigade_first(bb) {
            if bucket_is_metadata(e) && bucket_is(e, &ap_bucket_type_error) {
                // httpd (or a filter above) replaces or ends the response: it goes on as it
                // is, without this filter.
                ap_remove_output_filter(f);
                brigade_concat(st.out, bb);
                st.finished.set(true);
                return st.pass(f);
            }
            if bucket_is_metadata(e) {
                let at = if bucket_is(e, &apr_bucket_type_eos) {
                    Some(ChunkEnd::End)
                } else if bucket_is(e, &apr_bucket_type_flush) {
                    Some(ChunkEnd::Flush)
                } else {
                    None
                };
                if let Some(at) = at {
                    if let Err(rv) = st.answer(f, filtering, &[], at, bb) {
                        return rv;
                    }
                }
                bucket_move(e, st.out);
                if at == Some(ChunkEnd::End) {
                    // Nothing passes after EOS.
                    apr_brigade_cleanup(bb as *mut c_void);
                    st.finished.set(true);
                }
                if at.is_some() {
                    let rv = st.pass(f);
                    if rv != APR_SUCCESS as apr_status_t || st.finished.get() {
                        return rv;
                    }
                }
                continue;
            }
            let mut read = bucket_read(e, APR_NONBLOCK_READ);
            if read == Err(APR_EAGAIN as apr_status_t) {
                // The producer (a pipe, a socket) has nothing yet: send what is ready first.
                if st.waiting.get() > 0 {
                    brigade_insert_tail(st.out, apr_bucket_flush_create((*(*f).c).bucket_alloc));
                    let rv = st.pass(f);
                    if rv != APR_SUCCESS as apr_status_t {
                        return rv;
                    }
                }
                read = bucket_read(e, APR_BLOCK_READ);
            }
            let data = match read {
                Ok(data) => data,
                Err(rv) => {
                    log_request(r, LogLevel::Error, &format!("{}: reading the response body: error {rv}", filtering.def.name));
                    return rv;
                }
            };
            // A bucket type that cannot split gives its bytes whole.
            let data = if data.len() > PIECE && bucket_split(e, PIECE) == APR_SUCCESS as apr_status_t {
                &data[..PIECE]
            } else {
                data
            };
            if data.is_empty() {
                bucket_delete(e);
                continue;
            }
            if let Err(rv) = st.answer(f, filtering, data, ChunkEnd::More, bb) {
                return rv;
            }
        }
        if brigade_first(st.out).is_some() {
            return st.pass(f);
        }
        APR_SUCCESS as apr_status_t
    }
}

impl Output {
    /// Passes `out` on.
    ///
    /// # Safety
    /// `f` must be the live filter this state belongs to.
    unsafe fn pass(&self, f: *mut ap_filter_t) -> apr_status_t {
        // SAFETY: `out` is a brigade of the filter's request; the next filter is live.
        unsafe {
            self.passing.set(true);
            let rv = ap_pass_brigade((*f).next, self.out);
            self.passing.set(false);
            apr_brigade_cleanup(self.out as *mut c_void);
            self.waiting.set(0);
            self.started.set(true);
            rv
        }
    }

    /// Calls the guest with a piece and does what it answers. For a data piece the piece is
    /// the first bucket of `bb`: it is deleted (its bytes were replaced), or on `pass` left in
    /// place and sent on with the rest, the filter removed. `Err` is the filter's return value.
    ///
    /// # Safety
    /// `f` must be the live filter this state belongs to and `bb` the brigade passed to it.
    unsafe fn answer(
        &self,
        f: *mut ap_filter_t,
        filtering: &Filtering<Output>,
        data: &[u8],
        at: ChunkEnd,
        bb: *mut apr_bucket_brigade,
    ) -> Result<(), apr_status_t> {
        // SAFETY: a live filter of a live request (caller).
        unsafe {
            let r = (*f).r;
            let def = &filtering.def;
            let outcome = call_guest(r, filtering, data, at);
            if !self.changed.get() && !self.started.get() && !matches!(outcome, FilterOutcome::Pass) {
                // The body changes (or the response is replaced): its length and validator no longer hold.
                apr_table_unset((*r).headers_out, c"Content-Length".as_ptr());
                apr_table_unset((*r).headers_out, c"ETag".as_ptr());
                self.changed.set(true);
            }
            match outcome {
                FilterOutcome::Emit(bytes) => {
                    if at == ChunkEnd::More {
                        if let Some(e) = brigade_first(bb) {
                            bucket_delete(e);
                        }
                    }
                    let len = bytes.len();
                    if len >= APR_BUCKET_BUFF_SIZE as usize {
                        brigade_insert_tail(self.out, heap_bucket_of(bytes, (*(*f).c).bucket_alloc));
                    } else if len > 0 {
                        // Small pieces are gathered into APR's 8 KiB buffers (no flush function).
                        apr_brigade_write(self.out, None, ptr::null_mut(), bytes.as_ptr() as *const c_char, len as apr_size_t);
                    }
                    if len > 0 {
                        self.waiting.set(self.waiting.get() + len);
                        if self.waiting.get() >= PASS_AT {
                            let rv = self.pass(f);
                            if rv != APR_SUCCESS as apr_status_t {
                                return Err(rv);
                            }
                        }
                    }
                    Ok(())
                }
                FilterOutcome::Pass => {
                    // The rest of the body goes on unchanged, without this filter.
                    ap_remove_output_filter(f);
                    brigade_concat(self.out, bb);
                    self.finished.set(true);
                    Err(self.pass(f))
                }
                FilterOutcome::Status(status) if self.started.get() => {
                    log_request(r, LogLevel::Error, &format!(
                        "{}: {}: returned http-status({status}) after the response had begun; the response is cut",
                        def.module.slot.name(), def.provides.name()
                    ));
                    Err(self.cut(f, bb))
                }
                FilterOutcome::Failed(_) if self.started.get() => Err(self.cut(f, bb)),
                FilterOutcome::Status(status) => Err(self.replace_with(f, bb, status)),
                FilterOutcome::Failed(failure) => Err(self.replace_with(f, bb, failure.status())),
            }
        }
    }

    /// Nothing has left yet: httpd answers `status` instead (its error response,
    /// `ErrorDocument` included), without this filter.
    ///
    /// # Safety
    /// As for [`Output::answer`].
    unsafe fn replace_with(&self, f: *mut ap_filter_t, bb: *mut apr_bucket_brigade, status: u16) -> apr_status_t {
        // SAFETY: a live filter of a live request (caller).
        unsafe {
            apr_brigade_cleanup(self.out as *mut c_void);
            ap_remove_output_filter(f);
            self.end(f, bb, status)
        }
    }

    /// The headers and part of the body are gone: end the response so that the client sees
    /// it is incomplete (an error bucket with 502 makes httpd withhold the final chunk and
    /// close the connection).
    ///
    /// # Safety
    /// As for [`Output::answer`].
    unsafe fn cut(&self, f: *mut ap_filter_t, bb: *mut apr_bucket_brigade) -> apr_status_t {
        // SAFETY: a live filter of a live request (caller).
        unsafe { self.end(f, bb, HTTP_BAD_GATEWAY as u16) }
    }

    /// Drops the rest of the body and ends the response with `status` (see end_with_error).
    ///
    /// # Safety
    /// As for [`Output::answer`].
    unsafe fn end(&self, f: *mut ap_filter_t, bb: *mut apr_bucket_brigade, status: u16) -> apr_status_t {
        // SAFETY: a live filter of a live request (caller).
        unsafe {
            apr_brigade_cleanup(bb as *mut c_void);
            end_with_error((*f).r, self.out, status);
            self.finished.set(true);
            self.pass(f);
            // The response is taken care of (httpd's word for it).
            AP_FILTER_ERROR
        }
    }
}

extern "C" {
    /// The C library's `free`, which releases what Rust allocated (crate::ALLOCATOR).
    fn free(data: *mut c_void);
}

/// `bytes` as an APR heap bucket, without copying them: the bucket releases them with
/// `free()` when it is destroyed.
///
/// # Safety
/// `alloc` must be a live bucket allocator; `bytes` must not be empty.
unsafe fn heap_bucket_of(bytes: Vec<u8>, alloc: *mut apr_bucket_alloc_t) -> *mut apr_bucket {
    let mut bytes = std::mem::ManuallyDrop::new(bytes);
    let (data, len) = (bytes.as_mut_ptr(), bytes.len());
    // SAFETY: the Vec's buffer comes from malloc (the global allocator is the system's,
    // crate::ALLOCATOR), so free() may release it; it is not used here again.
    unsafe { apr_bucket_heap_create(data as *const c_char, len as apr_size_t, Some(free), alloc) }
}

// -- input ---------------------------------------------------------------------------------

/// An input filter's state for one request body.
struct Input {
    /// What the filter below gave.
    below: *mut apr_bucket_brigade,
    /// Borrowed for one read (a reader does not read the body from inside a read).
    body: RefCell<InputBody>,
}

#[derive(Default)]
struct InputBody {
    /// What the guest emitted and the reader has not taken yet (from `taken` on).
    pending: Vec<u8>,
    taken: usize,
    /// The body's end came from below (and went to the guest).
    ended: bool,
    /// The guest answered `pass`: reads go straight through once `pending` is empty.
    passing: bool,
    /// The guest changed the body: the request's Content-Length was removed.
    changed: bool,
    /// The request was refused: every read fails.
    refused: bool,
}

/// The input filter defined by the configuration's `WasmInputFilter` line number `N`.
unsafe extern "C" fn input_filter<const N: usize>(
    f: *mut ap_filter_t,
    bb: *mut apr_bucket_brigade,
    mode: ap_input_mode_t,
    block: apr_read_type_e,
    readbytes: apr_off_t,
) -> apr_status_t {
    // SAFETY: httpd calls an input filter with a live filter of a request and the reader's brigade.
    behind_boundary(f, || unsafe { filter_input(f, N, bb, mode, block, readbytes) })
}

/// # Safety
/// As [`input_filter`]'s arguments.
unsafe fn filter_input(
    f: *mut ap_filter_t,
    index: usize,
    bb: *mut apr_bucket_brigade,
    mode: ap_input_mode_t,
    block: apr_read_type_e,
    readbytes: apr_off_t,
) -> apr_status_t {
    // SAFETY: a live filter of a live request and the reader's brigade (caller).
    unsafe {
        // Only body reads are filtered (a speculative read or a line read is not the body's consumer).
        if mode != AP_MODE_READBYTES {
            return ap_get_brigade((*f).next, bb, mode, block, readbytes);
        }
        let filtering = state(f, FilterKind::Input, index, |r| Input {
            below: apr_brigade_create((*r).pool, (*(*r).connection).bucket_alloc),
            body: RefCell::default(),
        });
        let Some(filtering) = filtering else {
            ap_remove_input_filter(f);
            return ap_get_brigade((*f).next, bb, mode, block, readbytes);
        };
        let below = filtering.state.below;
        let st = &mut *filtering.state.body.borrow_mut();
        if st.refused {
            return AP_FILTER_ERROR;
        }
        let r = (*f).r;
        let alloc = (*(*f).c).bucket_alloc;
        while st.taken == st.pending.len() && !st.ended {
            if st.passing {
                ap_remove_input_filter(f);
                return ap_get_brigade((*f).next, bb, mode, block, readbytes);
            }
            let rv = ap_get_brigade((*f).next, below, AP_MODE_READBYTES, block, PIECE as apr_off_t);
            if rv != APR_SUCCESS as apr_status_t {
                apr_brigade_cleanup(below as *mut c_void);
                return rv;
            }
            let mut data = Vec::new();
            let mut end = false;
            while let Some(e) = brigade_first(below) {
                if bucket_is(e, &apr_bucket_type_eos) {
                    end = true;
                } else if !bucket_is_metadata(e) {
                    match bucket_read(e, APR_BLOCK_READ) {
                        Ok(bytes) => data.extend_from_slice(bytes),
                        Err(rv) => {
                            apr_brigade_cleanup(below as *mut c_void);
                            return rv;
                        }
                    }
                }
                bucket_delete(e);
            }
            if data.is_empty() && !end {
                if block == APR_NONBLOCK_READ {
                    return APR_SUCCESS as apr_status_t; // Nothing yet.
                }
                continue;
            }
            let at = if end { ChunkEnd::End } else { ChunkEnd::More };
            let outcome = call_guest(r, filtering, &data, at);
            if !st.changed && !matches!(outcome, FilterOutcome::Pass) {
                // The body's length changes: readers that trust the header would cut it
                // short or wait for more (as mod_deflate's inflate filter does).
                apr_table_unset((*r).headers_in, c"Content-Length".as_ptr());
                st.changed = true;
            }
            match outcome {
                FilterOutcome::Emit(bytes) => {
                    st.pending.drain(..st.taken);
                    st.taken = 0;
                    st.pending.extend_from_slice(&bytes);
                }
                FilterOutcome::Pass => {
                    st.pending.drain(..st.taken);
                    st.taken = 0;
                    st.pending.extend_from_slice(&data);
                    st.passing = true;
                }
                FilterOutcome::Status(status) => {
                    st.refused = true;
                    return refuse(r, alloc, status);
                }
                FilterOutcome::Failed(failure) => {
                    st.refused = true;
                    return refuse(r, alloc, failure.status());
                }
            }
            st.ended = end;
        }
        let n = (st.pending.len() - st.taken).min(readbytes.max(1) as usize);
        if n > 0 {
            let at = st.pending[st.taken..].as_ptr() as *const c_char;
            // NULL free function: APR copies the bytes.
            brigade_insert_tail(bb, apr_bucket_heap_create(at, n as apr_size_t, None, alloc));
            st.taken += n;
        }
        if st.taken == st.pending.len() && st.ended {
            brigade_insert_tail(bb, apr_bucket_eos_create(alloc));
        }
        APR_SUCCESS as apr_status_t
    }
}

/// Answers `status` for a request whose body the guest refused, as httpd's own body filter
/// does for `LimitRequestBody`: an error bucket through the output filters (httpd's error
/// response, `ErrorDocument` included), and AP_FILTER_ERROR for the reader, which means the
/// response is taken care of.
///
/// # Safety
/// `r` must be the live request and `alloc` its connection's bucket allocator.
unsafe fn refuse(r: *mut request_rec, alloc: *mut apr_bucket_alloc_t, status: u16) -> apr_status_t {
    // SAFETY: caller's contract.
    unsafe {
        if already_answered(r).is_some() {
            return AP_FILTER_ERROR;
        }
        // Once the response has begun, only a 502 makes httpd cut it rather than end it as if
        // it were complete.
        let status = if (*r).sent_bodyct != 0 { HTTP_BAD_GATEWAY as u16 } else { status };
        // What is left of the body may be read as the next request's headers: the
        // connection closes.
        crate::request::end_response(r, apr_brigade_create((*r).pool, alloc), status);
        AP_FILTER_ERROR
    }
}
