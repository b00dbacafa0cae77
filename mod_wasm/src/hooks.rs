//! The hooks mod_wasm.c registers: configuration reset, per-child runtime, content handler.

use std::os::raw::c_int;
use std::path::PathBuf;
use std::sync::Mutex;

use host::config::DirConfig;
use host::engine::{ChildSettings, PrepareError};
use host::{LogLevel, Outcome};

use crate::boundary::guard;
use crate::directives::dir_config;
use crate::ffi::*;
use crate::request::{log_request, log_server, ApacheRequest};

/// The handler name of `SetHandler wasm-handler`.
const HANDLER_NAME: &[u8] = b"wasm-handler";
/// The response type of a non-CGI program when the configuration gives none.
const DEFAULT_CONTENT_TYPE: &std::ffi::CStr = c"text/plain";

/// `WasmCacheDir`, a server-wide setting: where compiled code is kept between starts.
#[derive(Clone, Debug, Default)]
pub enum CacheSetting {
    /// Not configured: a directory under httpd's runtime directory.
    #[default]
    Default,
    Off,
    Dir(PathBuf),
}

static CACHE: Mutex<CacheSetting> = Mutex::new(CacheSetting::Default);
/// The directory resolved in post_config, inherited by the children.
static CACHE_DIR: Mutex<Option<PathBuf>> = Mutex::new(None);

pub fn set_cache(setting: CacheSetting) {
    *CACHE.lock().unwrap_or_else(|p| p.into_inner()) = setting;
}

/// The name of the default cache directory under DefaultRuntimeDir.
const DEFAULT_CACHE_DIR: &std::ffi::CStr = c"mod_wasm-cache";

/// pre_config runs before each reading of the configuration (start, dry run, restart).
#[no_mangle]
pub unsafe extern "C" fn wasm_pre_config(pconf: *mut apr_pool_t, _plog: *mut apr_pool_t, _ptemp: *mut apr_pool_t) -> c_int {
    guard(|_| HTTP_INTERNAL_SERVER_ERROR as c_int, || {
        host::registry::reset();
        crate::extensions::forget_phase_hooks();
        // SAFETY: httpd's configuration pool, during pre_config.
        unsafe { crate::stores::pre_config(pconf) };
        set_cache(CacheSetting::Default);
        OK as c_int
    })
}

/// Resolves `WasmCacheDir` and creates the directory, owned by httpd's `User` so that
/// children may add to it.
///
/// # Safety
/// `pconf` must be httpd's configuration pool, during post_config.
unsafe fn prepare_cache_dir(pconf: *mut apr_pool_t) -> Result<Option<PathBuf>, String> {
    let setting = CACHE.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let dir = match setting {
        CacheSetting::Off => return Ok(None),
        CacheSetting::Dir(dir) => dir,
        // SAFETY: a live pool and a NUL-terminated name; httpd returns a string in the pool.
        CacheSetting::Default => PathBuf::from(unsafe { c_str(ap_runtime_dir_relative(pconf, DEFAULT_CACHE_DIR.as_ptr())) }),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("WasmCacheDir {}: {e}", dir.display()))?;
    // SAFETY: httpd's unixd settings are filled in while it reads its configuration.
    let (uid, gid) = unsafe { (ap_unixd_config.user_id, ap_unixd_config.group_id) };
    // Not fatal if it fails: children then read what the helper compiled but add nothing.
    let _ = std::os::unix::fs::chown(&dir, Some(uid), Some(gid));
    Ok(Some(dir))
}

/// After the configuration is read: check that children will be able to reserve what the
/// pooling allocator needs and compile every module (into the cache), so that a too-low
/// address-space limit or a module wasmtime cannot compile stops startup with a clear
/// message instead of failing in every child.
#[no_mangle]
pub unsafe extern "C" fn wasm_post_config(
    pconf: *mut apr_pool_t,
    _plog: *mut apr_pool_t,
    _ptemp: *mut apr_pool_t,
    s: *mut server_rec,
) -> c_int {
    guard(|_| HTTP_INTERNAL_SERVER_ERROR as c_int, || {
        if host::registry::all().is_empty() {
            return OK as c_int;
        }
        let emerg = |message: &str| {
            // SAFETY: httpd's live main server record.
            unsafe { log_server(s, LogLevel::Emerg, message) };
            HTTP_INTERNAL_SERVER_ERROR as c_int
        };
        // SAFETY: httpd's configuration pool and main server, during post_config.
        if let Err(reason) = unsafe { crate::stores::post_config(pconf, s) } {
            return emerg(&reason);
        }
        // SAFETY: httpd's configuration pool, during post_config.
        if let Err(reason) = unsafe { crate::status::post_config(pconf) } {
            // SAFETY: httpd's live main server record.
            unsafe { log_server(s, LogLevel::Warn, &reason) };
        }
        host::engine::prepare_parent();
        // SAFETY: httpd's configuration pool, during post_config.
        match unsafe { prepare_cache_dir(pconf) } {
            Ok(dir) => *CACHE_DIR.lock().unwrap_or_else(|p| p.into_inner()) = dir,
            Err(reason) => return emerg(&reason),
        }
        let settings = child_settings();
        match host::engine::prepare_for_children(&settings) {
            Ok(()) => OK as c_int,
            Err(PrepareError::Engine(reason)) => emerg(&format!(
                "cannot create the WebAssembly engine for {} concurrent requests per child: {reason}; \
                 raise the address-space limit (ulimit -v) or lower ThreadsPerChild",
                settings.concurrent_requests
            )),
            Err(PrepareError::Compile { path, reason }) => {
                emerg(&format!("{}: cannot be compiled: {reason}", path.display()))
            }
            Err(PrepareError::Helper(reason)) => emerg(&format!("cannot prepare WebAssembly for the children: {reason}")),
        }
    })
}

/// The MPM's threads per child (1 under prefork): requests one child runs at once.
fn child_settings() -> ChildSettings {
    let mut threads: c_int = 1;
    // SAFETY: an MPM query with a valid out parameter.
    if unsafe { ap_mpm_query(AP_MPMQ_MAX_THREADS as c_int, &mut threads) } != APR_SUCCESS as apr_status_t || threads < 1 {
        threads = 1;
    }
    let cache_dir = CACHE_DIR.lock().unwrap_or_else(|p| p.into_inner()).clone();
    ChildSettings { concurrent_requests: threads as u32, cache_dir }
}

/// Builds this child's runtime: the Engine and compiled code for every configured module.
#[no_mangle]
pub unsafe extern "C" fn wasm_child_init(pchild: *mut apr_pool_t, s: *mut server_rec) {
    // SAFETY (both log calls): httpd's live main server record.
    let log = |level, message: &str| unsafe { log_server(s, level, message) };
    guard(|msg| log(LogLevel::Crit, &msg), || {
        if host::registry::all().is_empty() {
            return; // No Wasm configured: no Engine, no cost.
        }
        // SAFETY: the child's pool, during child_init.
        if let Err(reason) = unsafe { crate::stores::child_init(pchild) } {
            log(LogLevel::Crit, &format!("{reason}; shared stores answer errors in this child"));
        }
        match host::engine::start_child(&child_settings()) {
            Ok(failures) => {
                for f in failures {
                    log(LogLevel::Error, &format!("{}: cannot be prepared: {}", f.path.display(), f.reason));
                }
            }
            Err(reason) => log(LogLevel::Crit, &format!("{reason}; every Wasm module answers 500 in this child")),
        }
    })
}

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
    // SAFETY: `r` is the live request; the ApacheRequest does not outlive this call.
    match host::handler::serve(cfg, env, unsafe { ApacheRequest::new(r) }) {
        Outcome::Served => OK as c_int,
        // SAFETY: `r` is live.
        Outcome::Status(status) => unsafe { crate::extensions::already_answered(r) }.unwrap_or(status as c_int),
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
