//! Extension modules (`WasmApacheModule`) in httpd's request phases: one hook per phase,
//! and [`host::HttpdRequest`] over `request_rec` for the guest's calls.

use std::cell::Cell;
use std::ffi::c_void;
use std::io;
use std::os::raw::{c_char, c_int};
use std::ptr;
use std::sync::Mutex;

use host::extension::{FilterKind, HookOrder, HookOutcome, Phase, PhaseSet, RequestInstances};
use host::request::{Lookup, LookupOf};
use host::{BodyError, Field, HttpdRequest, LogLevel, Table};

use crate::boundary::guard;
use crate::directives::dir_config;
use crate::ffi::*;
use crate::request::{log_request, read_body, send_now};

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

/// The phase hooks registered in this reading of the configuration, per [`HookOrder`].
/// httpd drops every hook before it reads the configuration again (restart) and sorts them
/// again after reading it, so `WasmApacheModule` registers what its module exports as it is
/// read: a request pays only for the phases some configured module exports, and a server
/// without extension modules for none (nor does it turn off httpd's per-directory auth
/// shortcut for subrequests, as a per-URI auth hook does).
static REGISTERED: Mutex<[PhaseSet; HookOrder::COUNT]> = Mutex::new([0; HookOrder::COUNT]);

/// Forgets the hooks of the previous reading of the configuration (pre_config: httpd has
/// dropped them).
pub(crate) fn forget_phase_hooks() {
    *REGISTERED.lock().unwrap_or_else(|p| p.into_inner()) = [0; HookOrder::COUNT];
}

/// Registers the hooks of `phases` at position `order` that this reading of the
/// configuration has not registered yet.
///
/// The auth phases are registered with `AP_AUTH_INTERNAL_PER_URI`: a guest may decide on
/// anything (URI, headers, time), so httpd must run them for every subrequest and internal
/// redirect too, not only when the per-directory configuration changes; the first of them
/// also brings [`auth_where_httpd_skips`].
///
/// # Safety
/// Only while httpd reads its configuration (a directive handler), on its one thread.
pub(crate) unsafe fn register_phase_hooks(phases: PhaseSet, order: HookOrder) {
    let mut registered = REGISTERED.lock().unwrap_or_else(|p| p.into_inner());
    let has_auth = |sets: &[PhaseSet; HookOrder::COUNT]| sets.iter().any(|set| AUTH_PHASES.iter().any(|p| set & p.bit() != 0));
    let auth_before = has_auth(&registered);
    let new = phases & !registered[order as usize];
    registered[order as usize] |= phases;
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
        let outcome = instances.run(ext, phase, limits, scope, Box::new(HookRequest::new(r)));
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
            HookOutcome::Status(status) | HookOutcome::Failed(status) => {
                // SAFETY: `r` is live; a brigade of its connection is made in its pool.
                unsafe {
                    if let Some(answered) = already_answered(r) {
                        return answered;
                    }
                    // Part of the body is on the wire: an error page would follow it as if
                    // it belonged to it.
                    if phase.serves() && (*r).sent_bodyct != 0 {
                        crate::request::cut_response(r, apr_brigade_create((*r).pool, (*(*r).connection).bucket_alloc));
                        return AP_FILTER_ERROR;
                    }
                }
                return status as c_int;
            }
        }
    }
    result
}

/// What mod_wasm keeps for one original request (its subrequests and internal redirects
/// included): the extension instances, the request itself for the cleanup that ends them,
/// and whether httpd has already answered the original request ([`mark_answered`]).
struct RequestState {
    instances: RequestInstances,
    r: *mut request_rec,
    answered: Cell<bool>,
}

/// Marks a subrequest or internal redirect as answered in its own request_config slot,
/// which nothing else uses (their state is the original request's): a non-null pointer
/// that is no allocation.
static ANSWERED: u8 = 0;

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
            let state = RequestState { instances: RequestInstances::default(), r: root, answered: Cell::new(false) };
            let state = Box::into_raw(Box::new(state));
            apr_pool_cleanup_register((*root).pool, state as *mut c_void, Some(end_request), Some(apr_pool_cleanup_null));
            *slot = state as *mut c_void;
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

/// Notes that httpd has been given a whole response for `r` from inside its body's flow: an
/// input filter refused the body while it was read (ours, or httpd's own for a body over
/// `LimitRequestBody`), or an output filter (or the handler) ended the response with an
/// error. Each request keeps its own mark: a later subrequest is not answered by an earlier
/// one's.
///
/// # Safety
/// `r` must be a live request, on its thread.
pub(crate) unsafe fn mark_answered(r: *mut request_rec) {
    // SAFETY: caller's contract; a non-original request's own slot is only used for the mark.
    unsafe {
        if is_original(r) {
            if let Some(state) = request_state(r, true) {
                state.answered.set(true);
            }
        } else {
            *own_slot(r) = &ANSWERED as *const u8 as *mut c_void;
        }
    }
}

/// Whether `r` itself was marked answered.
///
/// # Safety
/// `r` must be a live request, on its thread.
unsafe fn marked(r: *mut request_rec) -> bool {
    // SAFETY: caller's contract.
    unsafe {
        if is_original(r) {
            request_state(r, false).is_some_and(|state| state.answered.get())
        } else {
            *own_slot(r) as *const u8 == &ANSWERED as *const u8
        }
    }
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

/// The original request's pool cleanup: its extension instances learn that it ended and
/// go back to their pools, or are dropped.
unsafe extern "C" fn end_request(data: *mut c_void) -> apr_status_t {
    guard(|_| (), || {
        // SAFETY: `data` is the Box made in request_instances; the pool runs this once, and
        // no hook of the request runs any more.
        let state = unsafe { Box::from_raw(data as *mut RequestState) };
        let r = state.r;
        // SAFETY: the request's memory is freed after its pool's cleanups have run.
        state.instances.end(&mut |level, message| unsafe { log_request(r, level, message) });
    });
    APR_SUCCESS as apr_status_t
}

/// `request_rec` for one hook call.
pub(crate) struct HookRequest {
    r: *mut request_rec,
    body: *mut apr_bucket_brigade,
}

// SAFETY: used only during the hook call, on the request's thread (wasmtime's store data
// must be Send).
unsafe impl Send for HookRequest {}

impl HookRequest {
    /// `r` must be the live request of the hook call the value is made for.
    pub(crate) fn new(r: *mut request_rec) -> Self {
        HookRequest { r, body: ptr::null_mut() }
    }

    fn pooled(&self, value: &str) -> *mut c_char {
        // SAFETY: the request is live during its hook call, and so is its pool.
        unsafe { pool_str((*self.r).pool, value) }
    }

    fn table(&self, table: Table) -> *mut apr_table_t {
        // SAFETY: the request is live during its hook call; its tables are never NULL.
        unsafe {
            match table {
                Table::HeadersIn => (*self.r).headers_in,
                Table::HeadersOut => (*self.r).headers_out,
                Table::ErrHeadersOut => (*self.r).err_headers_out,
                Table::Notes => (*self.r).notes,
                Table::SubprocessEnv => (*self.r).subprocess_env,
            }
        }
    }

    fn with_c(&self, name: &str, value: &str, f: unsafe extern "C" fn(*mut apr_table_t, *const c_char, *const c_char), table: Table) {
        // SAFETY: a live table and two strings in the request's pool, which outlives it.
        unsafe { f(self.table(table), self.pooled(name), self.pooled(value)) }
    }
}

/// A C string field as text.
///
/// # Safety
/// `s` must be NULL or a NUL-terminated string.
unsafe fn text(s: *const c_char) -> Option<String> {
    // SAFETY: caller's contract.
    (!s.is_null()).then(|| unsafe { c_str(s) })
}

impl HttpdRequest for HookRequest {
    fn field(&self, field: Field) -> Option<String> {
        let r = self.r;
        // SAFETY: the request is live during its hook call; its string fields are NULL or
        // NUL-terminated, and httpd's getters take the live request.
        unsafe {
            match field {
                Field::Method => text((*r).method),
                Field::Uri => text((*r).uri),
                Field::UnparsedUri => text((*r).unparsed_uri),
                Field::TheRequest => text((*r).the_request),
                Field::Args => text((*r).args),
                Field::Protocol => text((*r).protocol),
                Field::Hostname => text((*r).hostname),
                Field::PathInfo => text((*r).path_info),
                Field::Filename => text((*r).filename),
                Field::CanonicalFilename => text((*r).canonical_filename),
                Field::Handler => text((*r).handler),
                Field::ContentType => text((*r).content_type),
                Field::ContentEncoding => text((*r).content_encoding),
                Field::User => text((*r).user),
                Field::ApAuthType => text((*r).ap_auth_type),
                Field::UseragentIp => text((*r).useragent_ip),
                Field::DocumentRoot => text(ap_context_document_root(r)),
                Field::ServerName => text(ap_get_server_name(r)),
                Field::LogId => text((*r).log_id),
            }
        }
    }

    fn set_field(&mut self, field: Field, value: Option<&str>) {
        let r = self.r;
        let v = value.map(|v| self.pooled(v)).unwrap_or(ptr::null_mut());
        // SAFETY: the request is live during its hook call; `v` is NULL or a string in its
        // pool, so it lives as long as the request.
        unsafe {
            match field {
                Field::Uri => (*r).uri = v,
                Field::Args => (*r).args = v,
                Field::Filename => (*r).filename = v,
                Field::Handler => (*r).handler = v,
                Field::ContentType => ap_set_content_type(r, v),
                Field::User => (*r).user = v,
                // The host only passes the writable fields.
                _ => {}
            }
        }
    }

    fn port(&self) -> u16 {
        // SAFETY: the request is live during its hook call.
        unsafe { ap_get_server_port(self.r) }
    }
    fn status(&self) -> u16 {
        // SAFETY: as above.
        unsafe { (*self.r).status as u16 }
    }
    fn set_status(&mut self, status: u16) {
        // SAFETY: as above.
        unsafe { (*self.r).status = status as c_int }
    }
    fn is_https(&self) -> bool {
        // SAFETY: as above; a live request has a live connection.
        unsafe { ap_ssl_conn_is_ssl((*self.r).connection) != 0 }
    }
    fn is_initial_req(&self) -> bool {
        // SAFETY: as above.
        unsafe { ap_is_initial_req(self.r) != 0 }
    }

    fn table_get_all(&self, table: Table, name: &str) -> Vec<String> {
        // SAFETY: a live table of the request.
        unsafe { table_values(self.table(table), name) }
    }
    fn table_set(&mut self, table: Table, name: &str, value: &str) {
        self.with_c(name, value, apr_table_setn, table)
    }
    fn table_add(&mut self, table: Table, name: &str, value: &str) {
        self.with_c(name, value, apr_table_addn, table)
    }
    fn table_merge(&mut self, table: Table, name: &str, value: &str) {
        self.with_c(name, value, apr_table_mergen, table)
    }
    fn table_unset(&mut self, table: Table, name: &str) {
        // SAFETY: a live table of the request and a string in its pool.
        unsafe { apr_table_unset(self.table(table), self.pooled(name)) }
    }
    fn table_entries(&self, table: Table) -> Vec<(String, String)> {
        // SAFETY: a live table of the request.
        unsafe { table_entries(self.table(table)) }
    }

    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, BodyError> {
        // SAFETY: the request is live during its hook call; the brigade is made once, in its
        // pool, from its connection's allocator.
        unsafe {
            if self.body.is_null() {
                self.body = apr_brigade_create((*self.r).pool, (*(*self.r).connection).bucket_alloc);
            }
            read_body(self.r, self.body, buf)
        }
    }

    fn write_body(&mut self, data: &[u8]) -> io::Result<()> {
        // SAFETY: the request is live during its hook call.
        if unsafe { already_answered(self.r) }.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "httpd has already answered (a filter refused the request, or it was redirected)",
            ));
        }
        let Ok(len) = c_int::try_from(data.len()) else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a write of 2 GiB or more"));
        };
        // SAFETY: the request is live during its handler call; `data` is valid for `len`.
        let n = unsafe { ap_rwrite(data.as_ptr() as *const c_void, len, self.r) };
        if n < 0 {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "the client connection failed"))
        } else {
            Ok(())
        }
    }

    fn lookup(&mut self, of: LookupOf, target: &str) -> Result<Lookup, String> {
        // SAFETY: the request is live during its hook call; the target is copied into its
        // pool; the subrequest is read and destroyed here (httpd applies its recursion limit
        // and answers 500 beyond it).
        unsafe {
            // httpd takes a file's directory from this request's file, unchecked.
            if of == LookupOf::File && (*self.r).filename.is_null() {
                return Err("lookup-file needs the request mapped to a file first (map-to-storage or later)".into());
            }
            let target = self.pooled(target);
            let rr = match of {
                LookupOf::Uri => ap_sub_req_lookup_uri(target, self.r, ptr::null_mut()),
                LookupOf::File => ap_sub_req_lookup_file(target, self.r, ptr::null_mut()),
            };
            let found = Lookup {
                status: u16::try_from((*rr).status).unwrap_or(500),
                filename: text((*rr).filename),
                exists: (*rr).finfo.filetype != APR_NOFILE,
                content_type: text((*rr).content_type),
                handler: text((*rr).handler),
            };
            ap_destroy_sub_req(rr);
            Ok(found)
        }
    }

    fn include(&mut self, uri: &str) -> u16 {
        // SAFETY: as in `lookup`; the subrequest's output goes into this request's filters,
        // behind what the handler has written so far, as mod_include's does.
        unsafe {
            let rr = ap_sub_req_lookup_uri(self.pooled(uri), self.r, (*self.r).output_filters);
            // httpd adds the filter that ends a subrequest's output (dropping its EOS) only
            // when the chain has none; inside a subrequest it has its parent's, where the
            // nested EOS would end the parent's response.
            if (*(*rr).output_filters).r != rr {
                ap_add_output_filter(c"SUBREQ_CORE".as_ptr(), ptr::null_mut(), rr, (*rr).connection);
            }
            let status = if (*rr).status == HTTP_OK as c_int {
                match ap_run_sub_req(rr) {
                    0 => (*rr).status,
                    failed => failed,
                }
            } else {
                (*rr).status
            };
            ap_destroy_sub_req(rr);
            u16::try_from(status).unwrap_or(500)
        }
    }

    fn internal_redirect(&mut self, uri: &str) -> Result<(), String> {
        // SAFETY: the request is live during its handler call; httpd runs the new request to
        // its end here (its recursion limit answers 500 beyond it).
        unsafe {
            // Part of a response written (here, or by an earlier handler that declined) would
            // be dropped or followed by the new one: write-body leaves httpd's OLD_WRITE
            // buffer at the head of the filters, and anything that went through them set
            // sent_bodyct.
            let head = (*self.r).output_filters;
            let written = !head.is_null() && c_str((*(*head).frec).name).eq_ignore_ascii_case("OLD_WRITE");
            if written || (*self.r).sent_bodyct != 0 {
                return Err("part of the response has been written already".into());
            }
            if already_answered(self.r).is_some() {
                return Err("httpd has already answered this request".into());
            }
            crate::request::redirect_as_get(self.r, uri, false);
        }
        Ok(())
    }

    fn add_filter(&mut self, kind: FilterKind, name: &str) -> Result<(), String> {
        let r = self.r;
        // SAFETY: the request is live during its hook call; the name is copied into its pool.
        let added = unsafe {
            let name = self.pooled(name);
            match kind {
                FilterKind::Output => !ap_add_output_filter(name, ptr::null_mut(), r, (*r).connection).is_null(),
                FilterKind::Input => !ap_add_input_filter(name, ptr::null_mut(), r, (*r).connection).is_null(),
            }
        };
        if added {
            Ok(())
        } else {
            Err(format!("httpd knows no {} filter called {name}", if kind == FilterKind::Output { "output" } else { "input" }))
        }
    }

    fn store(&mut self, store: usize, id: &[u8], op: host::store::StoreOp<'_>) -> Result<Option<Vec<u8>>, String> {
        // SAFETY: the request is live during its hook call, on this thread.
        unsafe { crate::stores::run(self.r, store, id, op) }
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        // SAFETY: the request is live during its hook call.
        unsafe { log_request(self.r, level, message) }
    }
}
