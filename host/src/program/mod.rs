//! WASI programs (`WasmModule`), CGI-style: a preview1 core module or a preview2 command
//! component, instantiated for one request and run to its end. The request reaches it as
//! arguments, environment and stdio (see `exchange`); the content handler (`handler`) builds
//! that context and calls [`run`].

use wasmtime::component::{Component, ResourceTable};
use wasmtime::{Engine, InstancePre, Linker, Module, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::exchange::RunEnd;
use crate::limits::{yield_every_tick, MemoryCap};

/// The entry point a reactor-style core module needs called before any other export.
const REACTOR_INIT: &str = "_initialize";

/// Store data of a preview1 core module.
pub struct P1State {
    pub wasi: WasiP1Ctx,
    pub cap: MemoryCap,
}

/// Store data of a preview2 command component.
pub struct P2State {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub cap: MemoryCap,
}

impl WasiView for P2State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// A program's compiled code, linked against WASI, ready to instantiate per request.
pub enum Program {
    /// A preview1 core module.
    Core(InstancePre<P1State>),
    /// A preview2 command component.
    Command(CommandPre<P2State>),
}

/// The WASI linkers programs are pre-linked with, made once per child.
pub struct Linkers {
    p1: Linker<P1State>,
    p2: wasmtime::component::Linker<P2State>,
}

impl Linkers {
    pub fn new(engine: &Engine) -> wasmtime::Result<Linkers> {
        let mut p1 = Linker::<P1State>::new(engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut p1, |s| &mut s.wasi)?;
        let mut p2 = wasmtime::component::Linker::<P2State>::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut p2)?;
        Ok(Linkers { p1, p2 })
    }

    /// Pre-links a core module.
    pub fn core(&self, module: &Module) -> wasmtime::Result<Program> {
        Ok(Program::Core(self.p1.instantiate_pre(module)?))
    }

    /// Pre-links a command component.
    pub fn command(&self, component: &Component) -> wasmtime::Result<Program> {
        Ok(Program::Command(CommandPre::new(self.p2.instantiate_pre(component)?)?))
    }
}

/// Runs the program once: `wasi` is the request's context, `entry` a core module's entry
/// point, `memory` the cap on its linear memories.
pub async fn run(program: &Program, wasi: WasiCtxBuilder, entry: &str, memory: u64) -> RunEnd {
    match program {
        Program::Core(pre) => run_core(pre, wasi, entry, memory).await,
        Program::Command(pre) => run_command(pre, wasi, memory).await,
    }
}

async fn run_core(pre: &InstancePre<P1State>, mut wasi: WasiCtxBuilder, entry: &str, memory: u64) -> RunEnd {
    let state = P1State { wasi: wasi.build_p1(), cap: MemoryCap::new(memory) };
    let mut store = Store::new(pre.module().engine(), state);
    store.limiter(|s| &mut s.cap);
    yield_every_tick(&mut store);
    let instance = match pre.instantiate_async(&mut store).await {
        Ok(instance) => instance,
        Err(e) => return RunEnd::instantiate_error(e),
    };
    if entry != "_start" {
        if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, REACTOR_INIT) {
            if let Err(e) = init.call_async(&mut store, ()).await {
                return RunEnd::error(e);
            }
        }
    }
    let func = match instance.get_typed_func::<(), ()>(&mut store, entry) {
        Ok(func) => func,
        Err(_) => return RunEnd::broken(format!("exports no function `{entry}` without parameters and results")),
    };
    match func.call_async(&mut store, ()).await {
        Ok(()) => RunEnd::Exited(0),
        Err(e) => RunEnd::error(e),
    }
}

async fn run_command(pre: &CommandPre<P2State>, mut wasi: WasiCtxBuilder, memory: u64) -> RunEnd {
    let state = P2State { wasi: wasi.build(), table: ResourceTable::new(), cap: MemoryCap::new(memory) };
    let mut store = Store::new(pre.engine(), state);
    store.limiter(|s| &mut s.cap);
    yield_every_tick(&mut store);
    let command = match pre.instantiate_async(&mut store).await {
        Ok(command) => command,
        Err(e) => return RunEnd::instantiate_error(e),
    };
    match command.wasi_cli_run().call_run(&mut store).await {
        Ok(Ok(())) => RunEnd::Exited(0),
        Ok(Err(())) => RunEnd::Exited(1),
        Err(e) => RunEnd::error(e),
    }
}
