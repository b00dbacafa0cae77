//! One configured `.wasm` file: what validation found in it, and, once a child process has
//! prepared it, its compiled code.
//!
//! The slot is made at configuration time (httpd's parent process) and stays empty until the
//! child's start fills it with what the module's kind needs to serve (see `child`). The slot
//! does not know those kinds: each guest kind's room takes its own type back out
//! ([`ModuleSlot::ready`]), so configuration and registry stay below the rooms.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::stats::ModuleStats;
use crate::validate::WasmInfo;

/// Compiled, pre-linked code of one module, of its kind's own type.
pub type Loaded = Box<dyn Any + Send + Sync>;

/// One configured `.wasm` file.
pub struct ModuleSlot {
    /// Its place in the registry: the index of its counters ([`crate::stats`]).
    index: usize,
    path: PathBuf,
    /// The path as log lines show it, formatted once.
    name: Arc<str>,
    info: WasmInfo,
    loaded: OnceLock<Result<Loaded, String>>,
}

impl std::fmt::Debug for ModuleSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleSlot").field("path", &self.path).field("kind", &self.info.kind).finish()
    }
}

impl ModuleSlot {
    /// Slot number `index` of the registry, for the file at `path`.
    pub(crate) fn new(index: usize, path: &Path, name: Arc<str>, info: WasmInfo) -> ModuleSlot {
        ModuleSlot { index, path: path.to_owned(), name, info, loaded: OnceLock::new() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path as text, for log lines.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    pub fn info(&self) -> &WasmInfo {
        &self.info
    }

    /// Its counters for server-status, once mod_wasm has made room for them.
    pub fn stats(&self) -> Option<&'static ModuleStats> {
        crate::stats::module(self.index)
    }

    /// The compiled module, or why it could not be compiled in this process; `None` before
    /// the child's start (for example in httpd's parent process).
    pub fn loaded(&self) -> Option<&Result<Loaded, String>> {
        self.loaded.get()
    }

    /// The compiled module, or why requests cannot use it in this process. The caller
    /// downcasts it to its kind's type.
    pub fn ready(&self) -> Result<&(dyn Any + Send + Sync), String> {
        match self.loaded.get() {
            Some(Ok(loaded)) => Ok(loaded.as_ref()),
            Some(Err(reason)) => Err(format!("could not be prepared in this process: {reason}")),
            None => Err("not loaded (child_init did not run)".into()),
        }
    }

    pub(crate) fn set_loaded(&self, loaded: Result<Loaded, String>) {
        // A slot is filled once per process; a second start keeps the first result.
        let _ = self.loaded.set(loaded);
    }
}
