//! Extension modules (`WasmApacheModule`) in httpd's request phases: the hooks registered
//! for the phases configured modules export, the auth phases httpd would skip, and the
//! dispatch of one phase to the section's modules.

use std::ffi::c_void;
use std::os::raw::c_int;
use std::ptr;

use host::extension::CallContext;
use host::phase::{HookOrder, HookOutcome, Phase, PhaseSet};
use host::LogLevel;

use crate::boundary::guard;
use crate::config::{dir_config, ServerConfig};
use crate::ffi::*;
use crate::log::log_request;
use crate::request::{send_now, RequestRec};
use crate::request_state::{already_answered, request_instances};

/// Registers the filter a failed insert-filter hook adds (called from mod_wasm.c's
/// register_hooks). The phase hooks themselves are registered by [`register_phase_hooks`],
/// as the configuration names modules.
#[no_mangle]
pub unsafe extern "C" fn wasm_register_hook_failed_filter() {
    guard(|_| (), || {
        // SAFETY: httpd's filter registration, while it registers hooks; httpd keeps the
        // name, a static string.
        unsafe {
            ap_register_output_filter(HOOK_FAILED_FILTER.as_ptr(), Some(hook_failed_filter), Some(hook_failed_init), AP_FTYPE_RESOURCE);
        }
    })
}

/// Registers the hooks of `phases` at position `order` that this reading of the
/// configuration (`server`) has not registered yet. httpd drops every hook before it reads
/// the configuration again (restart) and sorts them again after reading it, so
/// `WasmApacheModule` registers what its module exports as it is read: a request pays only
/// for the phases some configured module exports, and a server without extension modules
/// for none (nor does it turn off httpd's per-directory auth shortcut for subrequests, as a
/// per-URI auth hook does).
///
/// The auth phases are registered with `AP_AUTH_INTERNAL_PER_URI`: a guest may decide on
/// anything (URI, headers, time), so httpd must run them for every subrequest and internal
/// redirect too, not only when the per-directory configuration changes; the first of them
/// also brings [`auth_where_httpd_skips`].
///
/// # Safety
/// Only while httpd reads its configuration (a directive handler), on its one thread.
pub(crate) unsafe fn register_phase_hooks(server: &ServerConfig, phases: PhaseSet, order: HookOrder) {
    let mut registered = server.registered_phases.get();
    let has_auth = |sets: &[PhaseSet; HookOrder::COUNT]| sets.iter().any(|set| AUTH_PHASES.iter().any(|p| set & p.bit() != 0));
    let auth_before = has_auth(&registered);
    let new = phases & !registered[order as usize];
    registered[order as usize] |= phases;
    server.registered_phases.set(registered);
    let auth_now = has_auth(&registered);
    // httpd names each hook after `apr_hook_debug_current`, which only its loading of a
    // module sets: while directives are read it names the module loaded last. mod_info and
    // other modules' ordering constraints (predecessor/successor names) go by that name.
    // SAFETY: httpd's hook registration and its global, on its one thread while it reads
    // the configuration (caller's contract); the hook functions are 'static and behind the
    // panic boundary, and `wasm_module.name` is a static string.
    unsafe {
        let loading = apr_hook_debug_current;
        apr_hook_debug_current = (*ptr::addr_of!(wasm_module)).name;
        for phase in Phase::ALL.into_iter().filter(|p| new & p.bit() != 0) {
            match order {
                HookOrder::First => register::<0>(phase),
                HookOrder::Middle => register::<1>(phase),
                HookOrder::Last => register::<2>(phase),
            }
        }
        if auth_now && !auth_before {
            ap_hook_post_perdir_config(Some(auth_where_httpd_skips), ptr::null(), ptr::null(), APR_HOOK_MIDDLE as c_int);
        }
        apr_hook_debug_current = loading;
    }
}

/// The auth phases a guest can take part in, in httpd's order.
const AUTH_PHASES: [Phase; 3] = [Phase::AccessChecker, Phase::CheckUserId, Phase::AuthChecker];

/// httpd runs no auth hook at all (per-URI or not) for a subrequest or internal redirect
/// whose per-directory configuration is its parent's: it copies the parent's user and goes
/// on. That happens when both map to the same directory, e.g. `<!--#include virtual=...-->`
/// of a file next to the page. A guest may decide on the URI, so for such a request its
/// auth phases run here, in post_perdir_config, the last hook httpd runs before that skip:
/// access-checker, then (when the parent was authenticated) check-user-id and auth-checker,
/// and a status from any of them stops the request as it would have in its own phase.
unsafe extern "C" fn auth_where_httpd_skips(r: *mut request_rec) -> c_int {
    // SAFETY: httpd called the hook with its live request, on this thread.
    behind_boundary(r, || unsafe { run_skipped_auth(r) })
}

/// # Safety
/// `r` must be the live request httpd is processing, on this thread.
unsafe fn run_skipped_auth(r: *mut request_rec) -> c_int {
    // SAFETY: main and prev of a live request are NULL or live; the comparison is httpd's own.
    let parent = unsafe {
        let (prev, main, conf) = ((*r).prev, (*r).main, (*r).per_dir_config);
        if !prev.is_null() && (*prev).per_dir_config == conf {
            prev
        } else if !main.is_null() && (*main).per_dir_config == conf {
            main
        } else {
            return DECLINED as c_int;
        }
    };
    // SAFETY: a live request's per_dir_config vector, made from our create/merge.
    let Ok(cfg) = (unsafe { dir_config(module_config((*r).per_dir_config)) }) else {
        return DECLINED as c_int; // The auth phases report it, if they run.
    };
    if AUTH_PHASES.iter().all(|p| !cfg.exports(*p)) {
        return DECLINED as c_int;
    }
    // SAFETY: `r` and `parent` are live; httpd copies the same two fields after this hook.
    let authenticated = unsafe {
        (*r).user = (*parent).user;
        (*r).ap_auth_type = (*parent).ap_auth_type;
        !(*r).user.is_null()
    };
    for phase in AUTH_PHASES {
        if phase != Phase::AccessChecker && !authenticated {
            break; // The parent needed no user, so neither does this request.
        }
        for order in HookOrder::ALL {
            // SAFETY: `r` is live, on this thread.
            match unsafe { run_phase(r, phase, order) } {
                status if status == OK as c_int && phase.run_first() => break,
                status if status == OK as c_int || status == DECLINED as c_int => {}
                status => return status,
            }
        }
    }
    DECLINED as c_int
}

/// The hook function of phase `Phase::ALL[P]` at position `HookOrder::ALL[O]`.
unsafe extern "C" fn phase_hook<const P: usize, const O: usize>(r: *mut request_rec) -> c_int {
    // SAFETY: httpd called the hook with its live request, on this thread.
    behind_boundary(r, || unsafe { run_phase(r, Phase::ALL[P], HookOrder::ALL[O]) })
}

/// quick_handler at position `HookOrder::ALL[O]`, for main requests only. httpd also asks
/// quick handlers whether they would serve a subrequest's URI (`lookup`), and runs a
/// subrequest's quick handlers again before its handler — where anything but `ok` (a status,
/// `done`, a failure) falls through to the normal handler and would let an SSI include past
/// a quick-handler gate. So ours decline subrequests: they go through the normal phases,
/// auth included.
unsafe extern "C" fn quick_hook<const O: usize>(r: *mut request_rec, lookup: c_int) -> c_int {
    // SAFETY: httpd called the hook with its live request.
    if lookup != 0 || unsafe { !(*r).main.is_null() } {
        return DECLINED as c_int;
    }
    // SAFETY: httpd called the hook with its live request, on this thread.
    behind_boundary(r, || unsafe { run_phase(r, Phase::QuickHandler, HookOrder::ALL[O]) })
}

/// insert_filter at position `HookOrder::ALL[O]`. httpd's hook returns nothing, so a failure
/// adds [`HOOK_FAILED_FILTER`], which fails the request before its handler runs: a request
/// must not be served without the filters its guest meant to add (a redaction, say).
unsafe extern "C" fn insert_filter_hook<const O: usize>(r: *mut request_rec) {
    // SAFETY: httpd called the hook with its live request, on this thread.
    let status = behind_boundary(r, || unsafe { run_phase(r, Phase::InsertFilter, HookOrder::ALL[O]) });
    if status != OK as c_int && status != DECLINED as c_int {
        // SAFETY: `r` is live; the filter is registered in wasm_register_hook_failed_filter and its
        // context is the status itself, not a pointer.
        unsafe { ap_add_output_filter(HOOK_FAILED_FILTER.as_ptr(), status as usize as *mut c_void, r, (*r).connection) };
    }
}

/// The output filter a failed insert-filter hook adds. httpd runs every filter's init
/// function right after insert_filter and fails the request with a non-OK answer; this
/// one's answers the status its context holds. Its filter function only passes the error
/// response on.
const HOOK_FAILED_FILTER: &std::ffi::CStr = c"WASM_INSERT_FILTER_FAILED";

unsafe extern "C" fn hook_failed_init(f: *mut ap_filter_t) -> c_int {
    // SAFETY: httpd calls init with the live filter we added; its ctx is a status.
    guard(|_| HTTP_INTERNAL_SERVER_ERROR as c_int, || unsafe { (*f).ctx as usize as c_int })
}

unsafe extern "C" fn hook_failed_filter(f: *mut ap_filter_t, bb: *mut apr_bucket_brigade) -> apr_status_t {
    // SAFETY: httpd calls the filter with itself and a brigade for the next one.
    guard(|_| APR_EGENERAL as apr_status_t, || unsafe {
        let next = (*f).next;
        ap_remove_output_filter(f);
        ap_pass_brigade(next, bb)
    })
}

/// Registers `phase`'s hook for position `HookOrder::ALL[O]`.
///
/// # Safety
/// Only while httpd reads its configuration, on its one thread.
unsafe fn register<const O: usize>(phase: Phase) {
    let at = match HookOrder::ALL[O] {
        HookOrder::First => APR_HOOK_FIRST,
        HookOrder::Middle => APR_HOOK_MIDDLE,
        HookOrder::Last => APR_HOOK_LAST,
    } as c_int;
    const PER_URI: c_int = AP_AUTH_INTERNAL_PER_URI as c_int;
    let (none, no) = (ptr::null(), ptr::null());
    use Phase::*;
    // SAFETY: httpd's hook registration, while it reads its configuration (caller's
    // contract); the functions are 'static and behind the panic boundary (behind_boundary).
    unsafe {
        match phase {
            PostReadRequest => ap_hook_post_read_request(Some(phase_hook::<{ PostReadRequest as usize }, O>), none, no, at),
            QuickHandler => ap_hook_quick_handler(Some(quick_hook::<O>), none, no, at),
            PreTranslateName => ap_hook_pre_translate_name(Some(phase_hook::<{ PreTranslateName as usize }, O>), none, no, at),
            TranslateName => ap_hook_translate_name(Some(phase_hook::<{ TranslateName as usize }, O>), none, no, at),
            MapToStorage => ap_hook_map_to_storage(Some(phase_hook::<{ MapToStorage as usize }, O>), none, no, at),
            HeaderParser => ap_hook_header_parser(Some(phase_hook::<{ HeaderParser as usize }, O>), none, no, at),
            AccessChecker => ap_hook_check_access(Some(phase_hook::<{ AccessChecker as usize }, O>), none, no, at, PER_URI),
            CheckUserId => ap_hook_check_authn(Some(phase_hook::<{ CheckUserId as usize }, O>), none, no, at, PER_URI),
            AuthChecker => ap_hook_check_authz(Some(phase_hook::<{ AuthChecker as usize }, O>), none, no, at, PER_URI),
            TypeChecker => ap_hook_type_checker(Some(phase_hook::<{ TypeChecker as usize }, O>), none, no, at),
            Fixups => ap_hook_fixups(Some(phase_hook::<{ Fixups as usize }, O>), none, no, at),
            InsertFilter => ap_hook_insert_filter(Some(insert_filter_hook::<O>), none, no, at),
            Handler => ap_hook_handler(Some(phase_hook::<{ Handler as usize }, O>), none, no, at),
            LogTransaction => ap_hook_log_transaction(Some(phase_hook::<{ LogTransaction as usize }, O>), none, no, at),
        }
    }
}

/// A request hook's body inside the panic boundary: a panic is a 500 and a log line.
fn behind_boundary(r: *mut request_rec, body: impl FnOnce() -> c_int) -> c_int {
    guard(
        |msg| {
            // SAFETY: only called from hooks, which httpd calls with its live request.
            unsafe { log_request(r, LogLevel::Error, &msg) };
            HTTP_INTERNAL_SERVER_ERROR as c_int
        },
        body,
    )
}

/// Runs the extension modules of `r`'s configuration that export `phase` at position
/// `order`, in configuration order, with httpd's meaning of the phase: RUN_FIRST phases stop at the first `ok`,
/// RUN_ALL phases go on; `done` and a status stop at once. A guest failure answers 500, or
/// 503 at its deadline (only logged in log-transaction, when the response is gone).
///
/// # Safety
/// `r` must be the live request httpd is running `phase` for, on this thread.
unsafe fn run_phase(r: *mut request_rec, phase: Phase, order: HookOrder) -> c_int {
    // SAFETY: a live request's per_dir_config vector, made by httpd from our create/merge.
    let cfg = match unsafe { dir_config(module_config((*r).per_dir_config)) } {
        Ok(cfg) => cfg,
        Err(reason) => {
            // SAFETY: `r` is live.
            unsafe { log_request(r, LogLevel::Error, reason) };
            return HTTP_INTERNAL_SERVER_ERROR as c_int;
        }
    };
    if cfg.extension_phases[order as usize] & phase.bit() == 0 {
        return DECLINED as c_int;
    }
    // SAFETY: `r` is live; the instances live as long as its original request's pool.
    let instances = unsafe { request_instances(r) };
    let (limits, scope) = (cfg.limits(), cfg.extension_scope());
    let mut result = DECLINED as c_int;
    for ext in cfg.extensions.iter().filter(|e| e.order == order) {
        // SAFETY: `r` is live; the host drops the value when the guest call returns.
        let req = Box::new(unsafe { RequestRec::new(r) });
        let outcome = instances.run(CallContext { module: ext, limits, scope }, phase, req);
        // SAFETY: `r` is live. A handler that redirected has answered through the new
        // request, whatever it returns; httpd would send a second response for a status.
        if phase == Phase::Handler && unsafe { !(*r).next.is_null() } {
            return OK as c_int;
        }
        match outcome {
            HookOutcome::Declined => {}
            HookOutcome::Ok if phase.serves() => {
                // The response is complete: end it and send it now, as the content handler
                // does (crate::request::send_now).
                // SAFETY: `r` is live and its handler produced a complete response.
                unsafe {
                    ap_finalize_request_protocol(r);
                    send_now(r, apr_brigade_create((*r).pool, (*(*r).connection).bucket_alloc));
                }
                return OK as c_int;
            }
            HookOutcome::Ok if phase.run_first() => return OK as c_int,
            HookOutcome::Ok => result = OK as c_int,
            HookOutcome::Done => return DONE as c_int,
            HookOutcome::Failed(_) if phase == Phase::LogTransaction => {}
            // SAFETY: `r` is live, on this thread.
            HookOutcome::Status(status) => return unsafe { answer(r, phase, status) },
            // SAFETY: as above.
            HookOutcome::Failed(failure) => return unsafe { answer(r, phase, failure.status()) },
        }
    }
    result
}

/// What a hook returns to httpd to answer `r` with `status`, unless httpd has answered it
/// already or part of the body is on the wire (an error page would follow it as if it
/// belonged to it: the response is cut instead).
///
/// # Safety
/// `r` must be the live request of the hook, on this thread.
unsafe fn answer(r: *mut request_rec, phase: Phase, status: u16) -> c_int {
    // SAFETY: `r` is live (caller); a brigade of its connection is made in its pool.
    unsafe {
        if let Some(answered) = already_answered(r) {
            return answered;
        }
        if phase.serves() && (*r).sent_bodyct != 0 {
            crate::request::cut_response(r, apr_brigade_create((*r).pool, (*(*r).connection).bucket_alloc));
            return AP_FILTER_ERROR;
        }
    }
    status as c_int
}
