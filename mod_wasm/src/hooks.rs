//! The hooks mod_wasm.c registers: configuration reset, per-child runtime, content handler.

use std::os::raw::c_int;
use std::path::PathBuf;
use std::sync::Mutex;

use host::config::DirConfig;
use host::engine::ChildSettings;
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
pub unsafe extern "C" fn wasm_pre_config(_pconf: *mut apr_pool_t, _plog: *mut apr_pool_t, _ptemp: *mut apr_pool_t) -> c_int {
    guard(|_| HTTP_INTERNAL_SERVER_ERROR as c_int, || {
        host::registry::reset();
        set_cache(CacheSetting::Default);
        OK as c_int
    })
}

/// Resolves `WasmCacheDir` and creates the directory, owned by httpd's `User` so that
/// children may add to it.
unsafe fn prepare_cache_dir(pconf: *mut apr_pool_t) -> Result<Option<PathBuf>, String> {
    let setting = CACHE.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let dir = match setting {
        CacheSetting::Off => return Ok(None),
        CacheSetting::Dir(dir) => dir,
        CacheSetting::Default => PathBuf::from(c_str(ap_runtime_dir_relative(pconf, DEFAULT_CACHE_DIR.as_ptr()))),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("WasmCacheDir {}: {e}", dir.display()))?;
    let (uid, gid) = (ap_unixd_config.user_id, ap_unixd_config.group_id);
    // Not fatal if it fails: children then read what the helper compiled but add nothing.
    let _ = std::os::unix::fs::chown(&dir, Some(uid), Some(gid));
    Ok(Some(dir))
}

/// After the configuration is read: check that children will be able to reserve what the
/// pooling allocator needs, so that a too-low address-space limit stops startup with a clear
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
        host::engine::prepare_parent();
        match prepare_cache_dir(pconf) {
            Ok(dir) => *CACHE_DIR.lock().unwrap_or_else(|p| p.into_inner()) = dir,
            Err(reason) => {
                log_server(s, LogLevel::Emerg, &reason);
                return HTTP_INTERNAL_SERVER_ERROR as c_int;
            }
        }
        let settings = child_settings();
        match host::engine::prepare_for_children(&settings) {
            Ok(()) => OK as c_int,
            Err(reason) => {
                let msg = format!(
                    "cannot create the WebAssembly engine for {} concurrent requests per child: {reason}; \
                     raise the address-space limit (ulimit -v) or lower ThreadsPerChild",
                    settings.concurrent_requests
                );
                log_server(s, LogLevel::Emerg, &msg);
                HTTP_INTERNAL_SERVER_ERROR as c_int
            }
        }
    })
}

/// The MPM's threads per child (1 under prefork): requests one child runs at once.
unsafe fn child_settings() -> ChildSettings {
    let mut threads: c_int = 1;
    if ap_mpm_query(AP_MPMQ_MAX_THREADS as c_int, &mut threads) != APR_SUCCESS as apr_status_t || threads < 1 {
        threads = 1;
    }
    let cache_dir = CACHE_DIR.lock().unwrap_or_else(|p| p.into_inner()).clone();
    ChildSettings { concurrent_requests: threads as u32, cache_dir }
}

/// Builds this child's runtime: the Engine and compiled code for every configured module.
#[no_mangle]
pub unsafe extern "C" fn wasm_child_init(_pchild: *mut apr_pool_t, s: *mut server_rec) {
    guard(|msg| log_server(s, LogLevel::Crit, &msg), || {
        if host::registry::all().is_empty() {
            return; // No Wasm configured: no Engine, no cost.
        }
        match host::engine::start_child(&child_settings()) {
            Ok(failures) => {
                for f in failures {
                    let msg = format!("{}: cannot be prepared: {}", f.path.display(), f.reason);
                    log_server(s, LogLevel::Error, &msg);
                }
            }
            Err(reason) => log_server(s, LogLevel::Crit, &format!("cannot create the WebAssembly engine: {reason}")),
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn wasm_handler(r: *mut request_rec) -> c_int {
    if (*r).handler.is_null() || std::ffi::CStr::from_ptr((*r).handler).to_bytes() != HANDLER_NAME {
        return DECLINED as c_int;
    }
    guard(
        |msg| {
            log_request(r, LogLevel::Error, &msg);
            HTTP_INTERNAL_SERVER_ERROR as c_int
        },
        || serve(r),
    )
}

unsafe fn serve(r: *mut request_rec) -> c_int {
    let cfg: &DirConfig = dir_config(module_config((*r).per_dir_config));
    let env = if cfg.cgi() {
        cgi_environment(r, cfg)
    } else {
        if (*r).content_type.is_null() {
            ap_set_content_type(r, DEFAULT_CONTENT_TYPE.as_ptr());
        }
        Vec::new()
    };
    match host::handler::serve(cfg, env, ApacheRequest::new(r)) {
        Outcome::Served => OK as c_int,
        Outcome::Status(status) => status as c_int,
        Outcome::InternalRedirect(location) => {
            // As mod_cgi: the redirect is a GET without the original body.
            ap_discard_request_body(r);
            (*r).method = c"GET".as_ptr();
            (*r).method_number = M_GET as c_int;
            apr_table_unset((*r).headers_in, c"Content-Length".as_ptr());
            ap_internal_redirect_handler(pool_str((*r).pool, &location), r);
            OK as c_int
        }
    }
}

/// The CGI meta-variables, built by httpd exactly as for mod_cgi. When the module was
/// configured in a `<Location>`, that path is SCRIPT_NAME and the rest of the URI PATH_INFO.
unsafe fn cgi_environment(r: *mut request_rec, cfg: &DirConfig) -> Vec<(String, String)> {
    if let Some(mount) = cfg.module.as_ref().and_then(|m| m.mount.as_deref()) {
        let uri = c_str((*r).uri);
        let mount = mount.trim_end_matches('/');
        if let Some(rest) = uri.strip_prefix(mount) {
            if rest.is_empty() || rest.starts_with('/') {
                (*r).path_info = pool_str((*r).pool, rest);
            }
        }
    }
    ap_add_common_vars(r);
    ap_add_cgi_vars(r);
    let mut env = table_entries((*r).subprocess_env);
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
