//! The configuration as httpd holds it: the per-directory config (create and merge, the
//! functions of the module record, and the typed look-up every hook and directive goes
//! through), and the server-wide record of one reading of the configuration.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::os::raw::c_char;
use std::path::PathBuf;
use std::ptr;

use host::config::DirConfig;
use host::phase::{HookOrder, PhaseSet};

use crate::boundary::guard;
use crate::ffi::*;
use crate::pool::pool_owned;

/// Allocates a config in `pool`, freed by the pool's cleanup.
///
/// # Safety
/// `pool` must be a live pool.
unsafe fn into_pool(pool: *mut apr_pool_t, cfg: DirConfig) -> *mut c_void {
    // SAFETY: `pool` is live (caller).
    unsafe { pool_owned(pool, cfg) as *mut c_void }
}

/// What create/merge hand to httpd when they failed (a panic, caught): not a config, but a
/// mark that hooks and directives recognise, so nothing dereferences a NULL later.
static UNUSABLE: u8 = 0;

fn unusable() -> *mut c_void {
    std::ptr::addr_of!(UNUSABLE) as *mut c_void
}

/// Why a section's configuration cannot be used.
pub const UNUSABLE_CONFIG: &str =
    "mod_wasm could not build this section's configuration (see the error log at startup)";

/// A section's config as [`wasm_create_dir_config`] or [`wasm_merge_dir_config`] made it,
/// shared: httpd hands the same config to every thread serving requests.
///
/// # Safety
/// `cfg` must be NULL or come from `wasm_create_dir_config` / `wasm_merge_dir_config`, and
/// its pool must outlive `'a`.
pub unsafe fn dir_config<'a>(cfg: *mut c_void) -> Result<&'a DirConfig, &'static str> {
    if cfg.is_null() || cfg == unusable() {
        return Err(UNUSABLE_CONFIG);
    }
    // SAFETY: not NULL nor the mark, so a DirConfig made by into_pool (caller's contract);
    // nothing writes to it once httpd serves requests.
    Ok(unsafe { &*(cfg as *const DirConfig) })
}

/// The config of the section a directive stands in, for that directive to change. Only
/// while httpd reads its configuration: one thread, no request sees the config yet.
///
/// # Safety
/// As [`dir_config`], and called only from directive handlers.
pub(crate) unsafe fn dir_config_mut<'a>(cfg: *mut c_void) -> Result<&'a mut DirConfig, &'static str> {
    if cfg.is_null() || cfg == unusable() {
        return Err(UNUSABLE_CONFIG);
    }
    // SAFETY: a DirConfig made by into_pool; configuration reading is single-threaded and
    // no other reference to this section's config is alive during a directive handler.
    Ok(unsafe { &mut *(cfg as *mut DirConfig) })
}

#[no_mangle]
pub unsafe extern "C" fn wasm_create_dir_config(pool: *mut apr_pool_t, _dir: *mut c_char) -> *mut c_void {
    // SAFETY: httpd passes its configuration pool.
    guard(|_| unusable(), || unsafe { into_pool(pool, DirConfig::default()) })
}

#[no_mangle]
pub unsafe extern "C" fn wasm_merge_dir_config(
    pool: *mut apr_pool_t,
    base: *mut c_void,
    add: *mut c_void,
) -> *mut c_void {
    // Configs are read-only once httpd serves requests, so when one side sets nothing the
    // other is the merged config as it is (httpd itself shares configs of modules without a
    // merge function): most requests merge without allocating.
    guard(|_| unusable(), || {
        // SAFETY: httpd passes two configs made by create/merge, and a pool that lives as
        // long as the merged result is used.
        let (outer, inner) = unsafe { (dir_config(base), dir_config(add)) };
        match (outer, inner) {
            (Ok(_), Ok(inner)) if inner.is_empty() => base,
            (Ok(outer), Ok(_)) if outer.is_empty() => add,
            // SAFETY: as above.
            (Ok(outer), Ok(inner)) => unsafe { into_pool(pool, DirConfig::merge(outer, inner)) },
            _ => unusable(),
        }
    })
}

/// `WasmCacheDir`, a server-wide setting: where compiled code is kept between starts.
#[derive(Clone, Debug, Default)]
pub enum CacheSetting {
    /// Not configured: a directory under httpd's runtime directory.
    #[default]
    Default,
    Off,
    Dir(PathBuf),
}

/// What mod_wasm keeps for one reading of the configuration, for the whole server: made on
/// first use in the configuration pool, so that every reading (start, restart) starts
/// afresh and the children inherit the parent's. Used on one thread at a time: while httpd
/// reads its configuration, in post_config and in child_init.
#[derive(Default)]
pub struct ServerConfig {
    /// `WasmCacheDir` as configured.
    pub cache: RefCell<CacheSetting>,
    /// The cache directory post_config resolved and made, which the children use.
    pub cache_dir: RefCell<Option<PathBuf>>,
    /// The phase hooks registered in this reading, per [`HookOrder`]: httpd drops every
    /// hook before it reads the configuration again.
    pub registered_phases: Cell<[PhaseSet; HookOrder::COUNT]>,
}

/// The key of the [`ServerConfig`] in the configuration pool's user data.
const SERVER_CONFIG: &std::ffi::CStr = c"mod_wasm:server-config";

/// The record of the reading of the configuration that `pconf` holds, made on first use.
/// It is dropped by a cleanup of `pconf` (which runs before the pool forgets its user data):
/// no cleanup of `pconf` may ask for it.
///
/// # Safety
/// `pconf` must be httpd's configuration pool (a directive's `cmd->pool`, the pool of
/// pre_config and post_config, `s->process->pconf` in child_init), used on one thread at a
/// time, and the reference must not outlive it.
pub unsafe fn server_config<'a>(pconf: *mut apr_pool_t) -> &'a ServerConfig {
    let mut data: *mut c_void = ptr::null_mut();
    // SAFETY: `pconf` is live (caller); the user data under our key is only ever a
    // ServerConfig that pool_owned put in this pool, dropped with it.
    unsafe {
        apr_pool_userdata_get(&mut data, SERVER_CONFIG.as_ptr(), pconf);
        if data.is_null() {
            data = pool_owned(pconf, ServerConfig::default()) as *mut c_void;
            apr_pool_userdata_setn(data, SERVER_CONFIG.as_ptr(), None, pconf);
        }
        &*(data as *const ServerConfig)
    }
}
