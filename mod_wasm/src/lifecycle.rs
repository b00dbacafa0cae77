//! The server's life: httpd's pre_config (before each reading of the configuration),
//! post_config (the parent's checks before the fork) and child_init (each child's runtime).

use std::os::raw::c_int;
use std::path::PathBuf;

use host::engine::{ChildSettings, PrepareError};
use host::LogLevel;

use crate::boundary::guard;
use crate::config::{server_config, CacheSetting};
use crate::ffi::*;
use crate::log::log_server;

/// The name of the default cache directory under DefaultRuntimeDir.
const DEFAULT_CACHE_DIR: &std::ffi::CStr = c"mod_wasm-cache";

/// pre_config runs before each reading of the configuration (start, dry run, restart); the
/// reading's own record ([`server_config`]) starts empty in the new configuration pool.
#[no_mangle]
pub unsafe extern "C" fn wasm_pre_config(pconf: *mut apr_pool_t, _plog: *mut apr_pool_t, _ptemp: *mut apr_pool_t) -> c_int {
    guard(|_| HTTP_INTERNAL_SERVER_ERROR as c_int, || {
        host::registry::reset();
        // SAFETY: httpd's configuration pool, during pre_config.
        unsafe { crate::stores::pre_config(pconf) };
        OK as c_int
    })
}

/// Resolves `WasmCacheDir` and creates the directory, owned by httpd's `User` so that
/// children may add to it.
///
/// # Safety
/// `pconf` must be httpd's configuration pool, during post_config.
unsafe fn prepare_cache_dir(pconf: *mut apr_pool_t) -> Result<Option<PathBuf>, String> {
    // SAFETY: httpd's configuration pool (caller).
    let setting = unsafe { server_config(pconf) }.cache.borrow().clone();
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
            // SAFETY: httpd's configuration pool, during post_config.
            Ok(dir) => *unsafe { server_config(pconf) }.cache_dir.borrow_mut() = dir,
            Err(reason) => return emerg(&reason),
        }
        // SAFETY: httpd's configuration pool, during post_config.
        let settings = unsafe { child_settings(pconf) };
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

/// The MPM's threads per child (1 under prefork): requests one child runs at once; and the
/// cache directory post_config made.
///
/// # Safety
/// `pconf` must be httpd's configuration pool, on its one thread (post_config, child_init).
unsafe fn child_settings(pconf: *mut apr_pool_t) -> ChildSettings {
    let mut threads: c_int = 1;
    // SAFETY: an MPM query with a valid out parameter.
    if unsafe { ap_mpm_query(AP_MPMQ_MAX_THREADS as c_int, &mut threads) } != APR_SUCCESS as apr_status_t || threads < 1 {
        threads = 1;
    }
    // SAFETY: caller's contract.
    let cache_dir = unsafe { server_config(pconf) }.cache_dir.borrow().clone();
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
        // SAFETY: the configuration pool of the live main server, in the child's one thread.
        let settings = unsafe { child_settings((*(*s).process).pconf) };
        match host::child::start(&settings) {
            Ok(failures) => {
                for f in failures {
                    log(LogLevel::Error, &format!("{}: cannot be prepared: {}", f.path.display(), f.reason));
                }
            }
            Err(reason) => log(LogLevel::Crit, &format!("{reason}; every Wasm module answers 500 in this child")),
        }
    })
}
