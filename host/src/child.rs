//! A child process's start (httpd's child_init): the Engine ([`crate::engine`]), then each
//! configured module compiled and pre-linked by the room of its kind — a WASI program, a
//! wasi:http component or an extension module — and kept in its slot.

use wasmtime::component::Component;
use wasmtime::{Engine, Module};

use crate::engine::{self, ChildSettings, LoadFailure};
use crate::slot::{Loaded, ModuleSlot};
use crate::validate::WasmKind;
use crate::{extension, program, wasi_http};

/// Creates this child's Engine and fills every registered module's slot (see
/// [`engine::start_child`]).
pub fn start(settings: &ChildSettings) -> Result<Vec<LoadFailure>, String> {
    let concurrent_requests = settings.concurrent_requests;
    engine::start_child(settings, |engine| {
        let fail = |e: wasmtime::Error| format!("cannot link WASI: {e:#}");
        let programs = program::Linkers::new(engine).map_err(fail)?;
        let http = wasi_http::linker(engine).map_err(fail)?;
        let ext = extension::linker(engine).map_err(fail)?;
        Ok(move |engine: &Engine, slot: &ModuleSlot| -> Result<Loaded, String> {
            let fail = |e: wasmtime::Error| format!("{e:#}");
            let info = slot.info();
            Ok(match info.kind {
                WasmKind::CoreModule => {
                    let module = Module::from_file(engine, slot.path()).map_err(fail)?;
                    Box::new(programs.core(&module).map_err(fail)?)
                }
                WasmKind::Component => {
                    let component = Component::from_file(engine, slot.path()).map_err(fail)?;
                    // Before commands: a Rust binary built for the proxy world also exports
                    // wasi:cli/run.
                    if info.is_http_proxy() {
                        Box::new(wasi_http::load(&http, &component).map_err(fail)?)
                    } else if info.is_command() {
                        Box::new(programs.command(&component).map_err(fail)?)
                    } else {
                        Box::new(extension::load(&ext, &component, concurrent_requests).map_err(fail)?)
                    }
                }
            })
        })
    })
}
