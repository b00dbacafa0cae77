//! The modules and named definitions of the configuration being read.
//!
//! At configuration time (httpd's parent process) each `.wasm` file is validated and gets
//! one [`ModuleSlot`], shared by every section that names the same file. Requests reach
//! their slot through the `Arc` in their directory configuration, never through a lookup by
//! name.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::config::ExtensionRef;
use crate::phase::Provides;
use crate::slot::ModuleSlot;
use crate::validate::{self, ValidateError, WasmInfo};

/// The slots of the configuration being read, deduplicated by canonical path.
static SLOTS: Mutex<Vec<(PathBuf, Arc<ModuleSlot>)>> = Mutex::new(Vec::new());

fn slots() -> std::sync::MutexGuard<'static, Vec<(PathBuf, Arc<ModuleSlot>)>> {
    // A panic while holding the lock cannot leave the list half-changed; keep using it.
    SLOTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Forgets the slots and definitions of the previous configuration (httpd re-reads its
/// configuration on every start and restart; sections of the old one keep their `Arc`s until
/// their pool is cleared).
pub fn reset() {
    slots().clear();
    definitions().clear();
    crate::store::reset();
}

/// A named definition of the configuration: a body filter or an authorization provider.
#[derive(Debug)]
pub struct Definition {
    /// The name as the directive gave it (httpd matches filter and provider names
    /// case-insensitively).
    pub name: String,
    pub provides: Provides,
    /// The module, and the directive's config string.
    pub module: ExtensionRef,
}

static DEFINITIONS: Mutex<Vec<Arc<Definition>>> = Mutex::new(Vec::new());

fn definitions() -> std::sync::MutexGuard<'static, Vec<Arc<Definition>>> {
    // As for SLOTS: pushes and clears are whole.
    DEFINITIONS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Adds a definition; a name may be defined once per kind, and at most `max` of a kind.
/// Returns its number among the definitions of its kind (0, 1, …): mod_wasm gives each
/// number its own httpd function, because httpd does not tell a filter or a provider its
/// name when it calls it (a filter run through mod_filter carries mod_filter's name).
pub fn define(def: Definition, max: usize) -> Result<usize, String> {
    let mut defs = definitions();
    let same_kind = defs.iter().filter(|d| d.provides == def.provides).count();
    if defs.iter().any(|d| d.provides == def.provides && d.name.eq_ignore_ascii_case(&def.name)) {
        return Err(format!("{} is already defined by an earlier {} line", def.name, def.provides.directive()));
    }
    if same_kind >= max {
        return Err(format!("at most {max} {} lines are supported", def.provides.directive()));
    }
    defs.push(Arc::new(def));
    Ok(same_kind)
}

/// Definition number `index` of `provides`, as [`define`] numbered it.
pub fn definition(provides: Provides, index: usize) -> Option<Arc<Definition>> {
    definitions().iter().filter(|d| d.provides == provides).nth(index).cloned()
}

/// Validates `path` and returns its slot; a file named by several sections is read once.
/// `check` runs on the file's facts and may refuse it (for example: a component where a
/// command is needed).
pub fn register(
    path: &Path,
    check: impl FnOnce(&str, &WasmInfo) -> Result<(), ValidateError>,
) -> Result<Arc<ModuleSlot>, ValidateError> {
    let key = std::fs::canonicalize(path).map_err(|source| ValidateError::Read {
        path: path.display().to_string(),
        source,
    })?;
    if let Some((_, slot)) = slots().iter().find(|(k, _)| *k == key) {
        check(&path.display().to_string(), slot.info())?;
        return Ok(slot.clone());
    }
    let info = validate::check_file(path)?;
    check(&path.display().to_string(), &info)?;
    let name = Arc::from(path.display().to_string());
    let mut slots = slots();
    let slot = Arc::new(ModuleSlot::new(slots.len(), path, name, info));
    slots.push((key, slot.clone()));
    Ok(slot)
}

/// Every slot of the current configuration.
pub fn all() -> Vec<Arc<ModuleSlot>> {
    slots().iter().map(|(_, s)| s.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_slot_per_file_however_it_is_named() {
        let dir = std::env::temp_dir().join(format!("mod_wasm_registry_{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let file = dir.join("m.wasm");
        std::fs::write(&file, wat::parse_str("(module)").unwrap()).unwrap();
        let a = register(&file, |_, _| Ok(())).unwrap();
        let b = register(&dir.join("sub/../m.wasm"), |_, _| Ok(())).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(all().iter().any(|s| Arc::ptr_eq(s, &a)));
        // A check that refuses the file refuses it for every section, cached or not.
        let refused = register(&file, |p, _| Err(ValidateError::NotWasm { path: p.to_owned() }));
        assert!(refused.is_err());
    }
}
