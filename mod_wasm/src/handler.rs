//! The content handler (`SetHandler wasm-handler`): the section's `WasmModule` serves the
//! request through the host, with httpd's CGI variables when `WasmEnableCGI On`.

use std::os::raw::c_int;

use host::config::DirConfig;
use host::{LogLevel, Outcome};

use crate::boundary::guard;
use crate::config::dir_config;
use crate::ffi::*;
use crate::log::log_request;
use crate::request::RequestRec;
use crate::request_state::already_answered;

/// The handler name of `SetHandler wasm-handler`.
const HANDLER_NAME: &[u8] = b"wasm-handler";
/// The response type of a non-CGI program when the configuration gives none.
const DEFAULT_CONTENT_TYPE: &std::ffi::CStr = c"text/plain";

#[no_mangle]
pub unsafe extern "C" fn wasm_handler(r: *mut request_rec) -> c_int {
    guard(
        |msg| {
            // SAFETY: httpd called the handler with its live request.
            unsafe { log_request(r, LogLevel::Error, &msg) };
            HTTP_INTERNAL_SERVER_ERROR as c_int
        },
        || {
            // SAFETY: httpd called the handler with its live request; `handler` is NULL or
            // NUL-terminated.
            let ours = unsafe { !(*r).handler.is_null() && std::ffi::CStr::from_ptr((*r).handler).to_bytes() == HANDLER_NAME };
            if !ours {
                return DECLINED as c_int;
            }
            // SAFETY: as above, on the request's thread.
            unsafe { serve(r) }
        },
    )
}

/// # Safety
/// `r` must be the live request being handled, on this thread.
unsafe fn serve(r: *mut request_rec) -> c_int {
    // SAFETY: a live request's per_dir_config vector, made from our create/merge.
    let cfg = match unsafe { dir_config(module_config((*r).per_dir_config)) } {
        Ok(cfg) => cfg,
        Err(reason) => {
            // SAFETY: `r` is live.
            unsafe { log_request(r, LogLevel::Error, reason) };
            return HTTP_INTERNAL_SERVER_ERROR as c_int;
        }
    };
    let env = if cfg.cgi() {
        // SAFETY: `r` is live.
        unsafe { cgi_environment(r, cfg) }
    } else {
        // SAFETY: `r` is live; the type is a static string.
        unsafe {
            if (*r).content_type.is_null() {
                ap_set_content_type(r, DEFAULT_CONTENT_TYPE.as_ptr());
            }
        }
        Vec::new()
    };
    // SAFETY: `r` is the live request; the RequestRec does not outlive this call.
    match host::handler::serve(cfg, env, unsafe { RequestRec::new(r) }) {
        Outcome::Served => OK as c_int,
        // SAFETY: `r` is live.
        Outcome::Status(status) => unsafe { already_answered(r) }.unwrap_or(status as c_int),
        Outcome::InternalRedirect(location) => {
            // SAFETY: `r` is live and has sent nothing (the program's headers asked for it).
            unsafe { crate::request::redirect_as_get(r, &location, true) };
            OK as c_int
        }
    }
}

/// The CGI meta-variables, built by httpd exactly as for mod_cgi. When the module was
/// configured in a `<Location>`, that path is SCRIPT_NAME and the rest of the URI PATH_INFO.
///
/// # Safety
/// `r` must be the live request being handled.
unsafe fn cgi_environment(r: *mut request_rec, cfg: &DirConfig) -> Vec<(String, String)> {
    if let Some(mount) = cfg.module.as_ref().and_then(|m| m.mount.as_deref()) {
        // SAFETY: `r` is live; its uri is NUL-terminated.
        let uri = unsafe { c_str((*r).uri) };
        let mount = mount.trim_end_matches('/');
        if let Some(rest) = uri.strip_prefix(mount) {
            if rest.is_empty() || rest.starts_with('/') {
                // SAFETY: `r` is live; the copy lives in its pool.
                unsafe { (*r).path_info = pool_str((*r).pool, rest) };
            }
        }
    }
    // SAFETY: `r` is live; httpd fills its subprocess_env.
    let mut env = unsafe {
        ap_add_common_vars(r);
        ap_add_cgi_vars(r);
        table_entries((*r).subprocess_env)
    };
    if cfg.map_cgi_file_names.unwrap_or(false) {
        for (name, value) in env.iter_mut() {
            if name == "SCRIPT_FILENAME" {
                if let Some(guest) = cfg.guest_path_of(value) {
                    *value = guest;
                }
            }
        }
    }
    env
}
