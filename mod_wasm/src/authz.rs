//! Authorization providers (`WasmAuthzProvider NAME module.wasm [config]`): httpd's
//! mod_authz_core asks the module's `authz-provider` export about every `Require NAME args…`
//! line that applies to a request, on the request's instance of the module (the one its hooks
//! and filters use).

use std::ffi::c_void;
use std::os::raw::c_char;

use host::extension::CallContext;
use host::phase::{AuthzOutcome, Provides};
use host::LogLevel;

use crate::boundary::guard;
use crate::config::dir_config;
use crate::request::RequestRec;
use crate::request_state::request_instances;
use crate::ffi::*;
use crate::log::log_request;

/// How many providers a configuration may define: each has its own function, which is how
/// a call knows its definition (httpd does not pass the provider's name).
pub(crate) const MAX_PROVIDERS: usize = crate::MAX_NUMBERED;

type CheckFn = unsafe extern "C" fn(*mut request_rec, *const c_char, *const c_void) -> authz_status;

const CHECKS: [CheckFn; MAX_PROVIDERS] = numbered!(check);

/// One provider record per definition, for httpd's provider registry.
static PROVIDERS: [authz_provider; MAX_PROVIDERS] = {
    let mut providers = [authz_provider { check_authorization: None, parse_require_line: None }; MAX_PROVIDERS];
    let mut i = 0;
    while i < MAX_PROVIDERS {
        providers[i].check_authorization = Some(CHECKS[i]);
        i += 1;
    }
    providers
};

/// Refuses a name httpd already has a provider for (`valid-user`, `ip`, another
/// `WasmAuthzProvider` …): registering it again would silently replace that provider for
/// every later `Require` line.
///
/// # Safety
/// `pool` must be a live pool (the directive's temporary pool).
pub(crate) unsafe fn check_name_free(name: &str, pool: *mut apr_pool_t) -> Result<(), String> {
    // SAFETY: caller's contract; httpd's provider registry is filled before directives run.
    let existing = unsafe { ap_lookup_provider(c"authz".as_ptr(), pool_str(pool, name), c"0".as_ptr()) };
    if existing.is_null() {
        Ok(())
    } else {
        Err(format!("`Require {name}` already has a provider (httpd's own or an earlier WasmAuthzProvider line): choose another name"))
    }
}

/// Makes `name` the authorization provider number `index` (while the configuration is
/// read), with per-URI semantics: a guest may decide on anything (URI, headers, time), so
/// httpd must ask it for every subrequest and internal redirect, never reuse an answer.
///
/// # Safety
/// `pool` must be the configuration pool; `index` below MAX_PROVIDERS.
pub(crate) unsafe fn register(index: usize, name: &str, pool: *mut apr_pool_t) {
    // SAFETY: httpd keeps the pool's copy of the name and the 'static provider record for
    // the life of the configuration; its function is behind the panic boundary.
    unsafe {
        ap_register_auth_provider(
            pool,
            c"authz".as_ptr(), // AUTHZ_PROVIDER_GROUP
            pool_str(pool, name),
            c"0".as_ptr(), // AUTHZ_PROVIDER_VERSION
            &PROVIDERS[index] as *const authz_provider as *const c_void,
            AP_AUTH_INTERNAL_PER_URI as i32,
        );
    }
}

/// Provider number `N`'s check_authorization.
unsafe extern "C" fn check<const N: usize>(r: *mut request_rec, line: *const c_char, _parsed: *const c_void) -> authz_status {
    guard(
        |msg| {
            // SAFETY: httpd calls the provider with its live request.
            unsafe { log_request(r, LogLevel::Error, &msg) };
            AUTHZ_GENERAL_ERROR
        },
        // SAFETY: httpd calls the provider with its live request, on its thread, and the
        // Require line's arguments, NUL-terminated.
        || unsafe { decide(r, N, &c_str(line)) },
    )
}

/// # Safety
/// `r` must be the live request httpd is authorizing, on this thread.
unsafe fn decide(r: *mut request_rec, index: usize, line: &str) -> authz_status {
    let Some(def) = host::registry::definition(Provides::Authz, index) else {
        // SAFETY: `r` is live.
        unsafe { log_request(r, LogLevel::Error, &format!("authorization provider {index}: not defined in this configuration")) };
        return AUTHZ_GENERAL_ERROR;
    };
    // SAFETY: a live request's per_dir_config vector, made from our create/merge.
    let cfg = match unsafe { dir_config(module_config((*r).per_dir_config)) } {
        Ok(cfg) => cfg,
        Err(reason) => {
            // SAFETY: `r` is live.
            unsafe { log_request(r, LogLevel::Error, reason) };
            return AUTHZ_GENERAL_ERROR;
        }
    };
    // SAFETY: `r` is live; the instances live as long as its original request's pool.
    let instances = unsafe { request_instances(r) };
    // SAFETY: `r` is live; the host drops the value when the guest call returns.
    let req = Box::new(unsafe { RequestRec::new(r) });
    match instances.authz(CallContext { module: &def.module, limits: cfg.limits(), scope: cfg.extension_scope() }, req, line) {
        AuthzOutcome::Granted => AUTHZ_GRANTED,
        AuthzOutcome::Denied => AUTHZ_DENIED,
        AuthzOutcome::DeniedNoUser => AUTHZ_DENIED_NO_USER,
        AuthzOutcome::Neutral => AUTHZ_NEUTRAL,
        AuthzOutcome::GeneralError => AUTHZ_GENERAL_ERROR,
    }
}
