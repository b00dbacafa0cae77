//! Per-directory configuration: create/merge callbacks and the directive handlers named in
//! mod_wasm.c's command table. A handler returns NULL on success or an error message; httpd
//! prefixes it with the configuration file and line and stops (`apache2 -t` too).

use std::ffi::c_void;
use std::os::raw::{c_char, c_int};
use std::path::{Path, PathBuf};
use std::ptr;

use host::config::{DirConfig, ModuleRef};
use host::config::{values, ExtensionRef};
use host::phase::{exported_phases, FilterKind, HookOrder, Provides};
use host::extension::{check_module, check_provider_module};
use host::validate::{self, WasmInfo, WasmKind};

use crate::boundary::guard;
use crate::config::{dir_config_mut, server_config, CacheSetting};
use crate::ffi::*;

/// The body of a directive handler: `$body` changes the section's config `$c` (and may use
/// `$cmd`); see [`directive`].
macro_rules! directive {
    ($cmd:ident, $cfg:ident, |$c:pat_param| $body:block) => {
        // SAFETY: httpd calls a directive handler with its cmd_parms, the section's config
        // and NUL-terminated arguments (NULL for an absent optional one), while it reads
        // the configuration on one thread.
        unsafe { directive($cmd, |$c| $body, $cfg) }
    };
}

/// Runs a directive handler: NULL on success, else the message copied into the config pool.
///
/// # Safety
/// `cmd` and `cfg` must be what httpd passed to the directive's handler.
unsafe fn directive(
    cmd: *mut cmd_parms,
    body: impl FnOnce(&mut DirConfig) -> Result<(), String>,
    cfg: *mut c_void,
) -> *const c_char {
    let result = guard(Err, || {
        // SAFETY: called from a directive handler (caller's contract).
        let c = unsafe { dir_config_mut(cfg) }.map_err(str::to_owned)?;
        body(c)
    });
    match result {
        Ok(()) => ptr::null(),
        Err(message) => {
            // SAFETY: httpd's cmd_parms for this directive, with its command and pool.
            unsafe {
                let name = c_str((*(*cmd).cmd).name);
                pool_str((*cmd).pool, &format!("{name}: {message}"))
            }
        }
    }
}

/// A path from the configuration, relative ones taken from ServerRoot (as httpd does).
///
/// # Safety
/// `cmd` must be the live cmd_parms of a directive being read.
pub(crate) unsafe fn server_path(cmd: *mut cmd_parms, arg: &str) -> Result<PathBuf, String> {
    // SAFETY: the directive's pool is live (caller); httpd returns NULL or a pool string.
    unsafe {
        let resolved = ap_server_root_relative((*cmd).pool, pool_str((*cmd).pool, arg));
        if resolved.is_null() {
            return Err(format!("invalid path `{arg}`"));
        }
        Ok(PathBuf::from(c_str(resolved)))
    }
}

/// The `<Location>` path the directive stands in, if it stands directly in one (not in a
/// `<LocationMatch>` or a regular-expression `<Location ~>`).
///
/// # Safety
/// `cmd` must be the live cmd_parms of a directive being read.
unsafe fn location_of(cmd: *mut cmd_parms) -> Option<String> {
    // SAFETY: the directive tree of the configuration being read is live (caller).
    unsafe {
        let directive = (*cmd).directive;
        if directive.is_null() || (*directive).parent.is_null() {
            return None;
        }
        let section = c_str((*(*directive).parent).directive);
        let path = c_str((*cmd).path);
        (section.eq_ignore_ascii_case("<Location") && path.starts_with('/')).then_some(path)
    }
}

/// `WasmEntryPoint` must name a parameterless function the core module exports.
fn check_entry_point(path: &Path, info: &WasmInfo, entry: &str) -> Result<(), String> {
    match info.kind {
        WasmKind::Component => Err(format!(
            "{} is a component; WasmEntryPoint applies to core modules (a command component runs wasi:cli/run, a wasi:http component its incoming-handler)",
            path.display()
        )),
        WasmKind::CoreModule if info.exports(entry) => Ok(()),
        WasmKind::CoreModule => Err(format!(
            "{} exports no function `{entry}` (its functions: {})",
            path.display(),
            if info.exports.is_empty() { "none".to_string() } else { info.exports.join(", ") }
        )),
    }
}

/// What serves the content handler: a core module, a WASI command component, or a
/// wasi:http component.
fn check_handler_program(path: &str, info: &WasmInfo) -> Result<(), validate::ValidateError> {
    if info.kind == WasmKind::Component {
        if info.is_http_proxy() {
            return validate::check_component_imports(path, info, &[WASI_HTTP_PACKAGE]);
        }
        if !info.is_command() {
            let exports = if info.exports.is_empty() { "nothing".to_owned() } else { info.exports.join(", ") };
            return Err(validate::ValidateError::Invalid {
                path: path.to_owned(),
                message: format!(
                    "this component exports {exports}; a handler exports wasi:cli/run (a WASI command) or \
                     wasi:http/incoming-handler (a wasi:http component)"
                ),
            });
        }
        validate::check_component_imports(path, info, &[])?;
    }
    Ok(())
}

/// The interfaces a wasi:http component may import besides WASI 0.2's.
const WASI_HTTP_PACKAGE: &str = "wasi:http/";

/// Refuses, within one section, the settings that mean nothing for its `WasmModule`'s kind
/// (whichever of the directives comes first). Inherited ones are ignored where they do not
/// apply, as `WasmEnableCGI` set for a whole server applies only to its programs.
fn check_settings_for_kind(c: &DirConfig) -> Result<(), String> {
    let Some(module) = &c.module else { return Ok(()) };
    let path = module.slot.path().display();
    if module.slot.info().is_http_proxy() {
        for (set, name) in [(c.enable_cgi.is_some(), "WasmEnableCGI"), (c.map_cgi_file_names.is_some(), "WasmMapCGIFileNames")] {
            if set {
                return Err(format!(
                    "{name} means nothing for {path}: it is a wasi:http component, which gets the request through wasi:http"
                ));
            }
        }
    } else if c.outgoing.is_some() {
        return Err(format!(
            "WasmHttpOutgoing means nothing for {path}: it is a program, not a wasi:http component (only those send HTTP requests)"
        ));
    }
    Ok(())
}

#[no_mangle]
pub unsafe extern "C" fn wasm_cmd_module(cmd: *mut cmd_parms, cfg: *mut c_void, arg: *const c_char) -> *const c_char {
    directive!(cmd, cfg, |c| {
        set_once(&mut c.module, || {
            let path = server_path(cmd, &c_str(arg))?;
            let slot = host::registry::register(&path, check_handler_program).map_err(|e| e.to_string())?;
            if let Some(entry) = &c.entry_point {
                check_entry_point(slot.path(), slot.info(), entry)?;
            }
            Ok(ModuleRef { slot, mount: location_of(cmd) })
        })?;
        check_settings_for_kind(c)
    })
}

#[no_mangle]
pub unsafe extern "C" fn wasm_cmd_entry_point(cmd: *mut cmd_parms, cfg: *mut c_void, arg: *const c_char) -> *const c_char {
    directive!(cmd, cfg, |c| {
        set_once(&mut c.entry_point, || {
            let entry = c_str(arg);
            if let Some(module) = &c.module {
                check_entry_point(module.slot.path(), module.slot.info(), &entry)?;
            }
            Ok(entry)
        })
    })
}

#[no_mangle]
pub unsafe extern "C" fn wasm_cmd_dir(cmd: *mut cmd_parms, cfg: *mut c_void, arg: *const c_char) -> *const c_char {
    directive!(cmd, cfg, |c| {
        let host_dir = existing_dir(cmd, &c_str(arg))?;
        c.add_preopen(&host_dir.to_string_lossy(), &host_dir);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn wasm_cmd_map_dir(
    cmd: *mut cmd_parms,
    cfg: *mut c_void,
    guest: *const c_char,
    host_dir: *const c_char,
) -> *const c_char {
    directive!(cmd, cfg, |c| {
        let guest = c_str(guest);
        let host_dir = existing_dir(cmd, &c_str(host_dir))?;
        c.add_preopen(&guest, &host_dir);
        Ok(())
    })
}

/// # Safety
/// `cmd` must be the live cmd_parms of a directive being read.
unsafe fn existing_dir(cmd: *mut cmd_parms, arg: &str) -> Result<PathBuf, String> {
    // SAFETY: caller's contract.
    let dir = unsafe { server_path(cmd, arg) }?;
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => Ok(dir),
        Ok(_) => Err(format!("{} is not a directory", dir.display())),
        Err(e) => Err(format!("cannot use directory {}: {e}", dir.display())),
    }
}

#[no_mangle]
pub unsafe extern "C" fn wasm_cmd_arg(cmd: *mut cmd_parms, cfg: *mut c_void, arg: *const c_char) -> *const c_char {
    directive!(cmd, cfg, |c| {
        c.add_arg(&c_str(arg));
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn wasm_cmd_env(
    cmd: *mut cmd_parms,
    cfg: *mut c_void,
    name: *const c_char,
    value: *const c_char,
) -> *const c_char {
    directive!(cmd, cfg, |c| {
        c.set_env(values::env_name(&c_str(name))?, &c_str(value));
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn wasm_cmd_enable_cgi(cmd: *mut cmd_parms, cfg: *mut c_void, on: c_int) -> *const c_char {
    directive!(cmd, cfg, |c| {
        set_once(&mut c.enable_cgi, || Ok(on != 0))?;
        check_settings_for_kind(c)
    })
}

#[no_mangle]
pub unsafe extern "C" fn wasm_cmd_map_cgi_file_names(cmd: *mut cmd_parms, cfg: *mut c_void, on: c_int) -> *const c_char {
    directive!(cmd, cfg, |c| {
        set_once(&mut c.map_cgi_file_names, || Ok(on != 0))?;
        check_settings_for_kind(c)
    })
}

#[no_mangle]
pub unsafe extern "C" fn wasm_cmd_apache_module(
    cmd: *mut cmd_parms,
    cfg: *mut c_void,
    path: *const c_char,
    config: *const c_char,
    order: *const c_char,
) -> *const c_char {
    directive!(cmd, cfg, |c| {
        let path = server_path(cmd, &c_str(path))?;
        let slot = host::registry::register(&path, check_module).map_err(|e| e.to_string())?;
        // The last two arguments are NULL when absent.
        let order = if order.is_null() { HookOrder::default() } else { values::hook_order(&c_str(order))? };
        let config = (!config.is_null()).then(|| std::sync::Arc::from(c_str(config)));
        // cmd->pool is the configuration pool: no Wasm directive is allowed in .htaccess.
        crate::phases::register_phase_hooks(server_config((*cmd).pool), exported_phases(&slot.info().exports), order);
        c.add_extension(ExtensionRef { slot, config, order });
        Ok(())
    })
}

/// `WasmOutputFilter`, `WasmInputFilter` and `WasmAuthzProvider`: `NAME /path/module.wasm
/// [config string]` defines what `provides` names, under NAME.
///
/// # Safety
/// As for a directive handler: `cmd`, `cfg` and the NUL-terminated arguments (`config` NULL
/// when absent) as httpd passed them.
unsafe fn define(
    provides: Provides,
    cmd: *mut cmd_parms,
    cfg: *mut c_void,
    name: *const c_char,
    path: *const c_char,
    config: *const c_char,
) -> *const c_char {
    directive!(cmd, cfg, |_| {
        let name = values::definition_name(&c_str(name), provides)?.to_owned();
        if provides == Provides::Authz {
            crate::authz::check_name_free(&name, (*cmd).temp_pool)?;
        }
        let path = server_path(cmd, &c_str(path))?;
        let check = check_provider_module(provides);
        let slot = host::registry::register(&path, check).map_err(|e| e.to_string())?;
        let config = (!config.is_null()).then(|| std::sync::Arc::from(c_str(config)));
        let module = ExtensionRef { slot, config, order: Default::default() };
        let def = host::registry::Definition { name: name.clone(), provides, module };
        let index = host::registry::define(def, crate::MAX_NUMBERED)?;
        match provides {
            Provides::Filter(kind) => crate::filters::register(kind, index, &name, (*cmd).pool),
            Provides::Authz => crate::authz::register(index, &name, (*cmd).pool),
        }
        Ok(())
    })
}

/// `WasmOutputFilter NAME /path/module.wasm [config string]`.
#[no_mangle]
pub unsafe extern "C" fn wasm_cmd_output_filter(cmd: *mut cmd_parms, cfg: *mut c_void, name: *const c_char, path: *const c_char, config: *const c_char) -> *const c_char {
    // SAFETY: httpd's arguments to a directive handler, passed on as they are.
    unsafe { define(Provides::Filter(FilterKind::Output), cmd, cfg, name, path, config) }
}

/// `WasmInputFilter NAME /path/module.wasm [config string]`.
#[no_mangle]
pub unsafe extern "C" fn wasm_cmd_input_filter(cmd: *mut cmd_parms, cfg: *mut c_void, name: *const c_char, path: *const c_char, config: *const c_char) -> *const c_char {
    // SAFETY: httpd's arguments to a directive handler, passed on as they are.
    unsafe { define(Provides::Filter(FilterKind::Input), cmd, cfg, name, path, config) }
}

/// `WasmAuthzProvider NAME /path/module.wasm [config string]`.
#[no_mangle]
pub unsafe extern "C" fn wasm_cmd_authz_provider(cmd: *mut cmd_parms, cfg: *mut c_void, name: *const c_char, path: *const c_char, config: *const c_char) -> *const c_char {
    // SAFETY: httpd's arguments to a directive handler, passed on as they are.
    unsafe { define(Provides::Authz, cmd, cfg, name, path, config) }
}

/// `WasmSharedStore NAME provider[:args]`.
#[no_mangle]
pub unsafe extern "C" fn wasm_cmd_shared_store(
    cmd: *mut cmd_parms,
    cfg: *mut c_void,
    name: *const c_char,
    spec: *const c_char,
) -> *const c_char {
    directive!(cmd, cfg, |_| { crate::stores::define(cmd, &c_str(name), &c_str(spec)) })
}

/// `WasmSharedStoreGrant NAME module.wasm…` (httpd calls it once per module).
#[no_mangle]
pub unsafe extern "C" fn wasm_cmd_shared_store_grant(
    cmd: *mut cmd_parms,
    cfg: *mut c_void,
    name: *const c_char,
    path: *const c_char,
) -> *const c_char {
    directive!(cmd, cfg, |_| {
        let path = server_path(cmd, &c_str(path))?;
        let slot = host::registry::register(&path, check_module).map_err(|e| e.to_string())?;
        host::store::grant(&c_str(name), slot)
    })
}

#[no_mangle]
pub unsafe extern "C" fn wasm_cmd_apache_module_scope(
    cmd: *mut cmd_parms,
    cfg: *mut c_void,
    scope: *const c_char,
    max: *const c_char,
) -> *const c_char {
    directive!(cmd, cfg, |c| {
        set_once(&mut c.extension_scope, || {
            // The second argument is NULL when absent.
            let (scope, max) = (c_str(scope), (!max.is_null()).then(|| c_str(max)));
            values::scope(&scope, max.as_deref())
        })
    })
}

#[no_mangle]
pub unsafe extern "C" fn wasm_cmd_http_outgoing(cmd: *mut cmd_parms, cfg: *mut c_void, arg: *const c_char) -> *const c_char {
    directive!(cmd, cfg, |c| {
        c.add_outgoing(values::Origin::parse(&c_str(arg))?);
        check_settings_for_kind(c)
    })
}

#[no_mangle]
pub unsafe extern "C" fn wasm_cmd_timeout(cmd: *mut cmd_parms, cfg: *mut c_void, arg: *const c_char) -> *const c_char {
    directive!(cmd, cfg, |c| { set_once(&mut c.timeout, || values::duration(&c_str(arg))) })
}

#[no_mangle]
pub unsafe extern "C" fn wasm_cmd_memory_limit(cmd: *mut cmd_parms, cfg: *mut c_void, arg: *const c_char) -> *const c_char {
    directive!(cmd, cfg, |c| { set_once(&mut c.memory_limit, || values::size(&c_str(arg))) })
}

/// Sets a single-valued directive's field to what `value` makes of its arguments. It may
/// appear once per section: a second one is a contradiction the administrator should see,
/// not a silent override (and its arguments are not even read).
fn set_once<T>(field: &mut Option<T>, value: impl FnOnce() -> Result<T, String>) -> Result<(), String> {
    if field.is_some() {
        return Err("is already set in this section".into());
    }
    *field = Some(value()?);
    Ok(())
}

#[no_mangle]
pub unsafe extern "C" fn wasm_cmd_cache_dir(cmd: *mut cmd_parms, cfg: *mut c_void, arg: *const c_char) -> *const c_char {
    // SAFETY: httpd calls a directive handler with its cmd_parms, the section's config
    // and NUL-terminated arguments, while it reads the configuration on one thread.
    unsafe {
        // One Engine per child: the cache is server-wide.
        let context_error = ap_check_cmd_context(cmd, GLOBAL_ONLY);
        if !context_error.is_null() {
            return context_error;
        }
        directive(cmd, |_| {
            let arg = c_str(arg);
            let setting = match values::cache_dir(&arg) {
                None => CacheSetting::Off,
                Some(dir) => CacheSetting::Dir(server_path(cmd, dir)?),
            };
            // cmd->pool is the configuration pool (a server-wide directive).
            *server_config((*cmd).pool).cache.borrow_mut() = setting;
            Ok(())
        }, cfg)
    }
}
