//! The content handler: one WASI program run per request, CGI-style, or a wasi:http
//! component ([`crate::proxy`]).

use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::Store;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use crate::config::DirConfig;
use crate::engine::{Loaded, P1State, P2State};
use crate::exchange::{Exchange, Outcome, Role, RunEnd, Stdio};
use crate::limits::{run_with_deadline, yield_every_tick, MemoryCap, MemoryLimitExceeded};
use crate::request::{LogLevel, Request};
use crate::stats::{Call, ModuleStats};

/// The entry point a reactor-style core module needs called before any other export.
const REACTOR_INIT: &str = "_initialize";

/// Runs the section's module for one request. `cgi_env` holds the CGI meta-variables (empty
/// unless `WasmEnableCGI On`); `WasmEnv` settings are added on top and win over them.
/// Every failure is logged once, naming the module, and comes back as a status.
pub fn serve<R: Request>(cfg: &DirConfig, cgi_env: Vec<(String, String)>, mut req: R) -> Outcome {
    let Some(module) = &cfg.module else {
        req.log(LogLevel::Error, "SetHandler wasm-handler, but no WasmModule is configured here");
        return Outcome::Status(500);
    };
    let name = module.slot.name();
    let loaded = match module.slot.ready() {
        Ok(loaded) => loaded,
        Err(reason) => {
            req.log(LogLevel::Error, &format!("{name}: {reason}"));
            return Outcome::Status(500);
        }
    };

    let component = matches!(loaded, Loaded::Proxy(_));
    let mut exchange = if component {
        Exchange::for_component(req, name.clone())
    } else {
        Exchange::new(req, name.clone(), cfg.cgi())
    };
    let mut wasi = WasiCtxBuilder::new();
    // Not allow_blocking_current_thread: with it, wasmtime-wasi's preview1 poll_oneoff sleeps
    // with std::thread::sleep, which no deadline can interrupt.
    wasi.args(&cfg.argv()).envs(&environment(cgi_env, &cfg.env));
    for dir in &cfg.preopens {
        if let Err(e) = wasi.preopened_dir(&dir.host, &dir.guest, FsPerms::ReadWrite) {
            let message = format!("cannot open directory {} for the guest: {e:#}", dir.host.display());
            exchange.log(LogLevel::Error, &message);
            return Outcome::Status(500);
        }
    }
    let shared = exchange.shared();
    if !component {
        // A wasi:http component reads the request body through wasi:http; its stdin is empty.
        wasi.stdin(Stdio::new(&shared, Role::Stdin));
    }
    wasi.stdout(Stdio::new(&shared, Role::Stdout)).stderr(Stdio::new(&shared, Role::Stderr));

    // The Store, and with it every stream clone, is dropped when the call ends or its
    // deadline passes.
    let limits = cfg.limits();
    let call = async {
        match loaded {
            Loaded::Core(pre) => run_core(pre, wasi, cfg.entry_point(), limits.memory).await,
            Loaded::Command(pre) => run_command(pre, wasi, limits.memory).await,
            Loaded::Proxy(pre) => {
                crate::proxy::run(pre, wasi, shared.clone(), cfg.outgoing_origins(), limits.timeout, limits.memory).await
            }
            Loaded::Extension(_) => RunEnd::Failed("is an extension module (WasmApacheModule), not a program".into()),
        }
    };
    let started = Instant::now();
    let counted = module.slot.stats().map(ModuleStats::instance);
    let end = match run_with_deadline(limits.timeout, call) {
        Ok(Some(end)) => end,
        Ok(None) => RunEnd::TimedOut(limits.timeout),
        Err(reason) => RunEnd::Failed(reason),
    };
    if let Some(counted) = counted {
        counted.stats().call(Call::Request, started.elapsed(), end.failure());
    }
    // A named temporary: the guard must be dropped before `shared`.
    let outcome = shared.lock().unwrap_or_else(|p| p.into_inner()).finish(end);
    outcome
}

/// The CGI variables with `WasmEnv` applied over them.
fn environment(mut cgi_env: Vec<(String, String)>, wasm_env: &[(String, String)]) -> Vec<(String, String)> {
    cgi_env.retain(|(name, _)| !wasm_env.iter().any(|(n, _)| n == name));
    cgi_env.extend(wasm_env.iter().cloned());
    cgi_env
}

async fn run_core(pre: &wasmtime::InstancePre<P1State>, mut wasi: WasiCtxBuilder, entry: &str, memory: u64) -> RunEnd {
    let state = P1State { wasi: wasi.build_p1(), cap: MemoryCap::new(memory) };
    let mut store = Store::new(pre.module().engine(), state);
    store.limiter(|s| &mut s.cap);
    yield_every_tick(&mut store);
    let instance = match pre.instantiate_async(&mut store).await {
        Ok(instance) => instance,
        Err(e) => return instantiate_error(e),
    };
    if entry != "_start" {
        if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, REACTOR_INIT) {
            if let Err(e) = init.call_async(&mut store, ()).await {
                return run_error(e);
            }
        }
    }
    let func = match instance.get_typed_func::<(), ()>(&mut store, entry) {
        Ok(func) => func,
        Err(_) => return RunEnd::Failed(format!("exports no function `{entry}` without parameters and results")),
    };
    match func.call_async(&mut store, ()).await {
        Ok(()) => RunEnd::Exited(0),
        Err(e) => run_error(e),
    }
}

async fn run_command(pre: &CommandPre<P2State>, mut wasi: WasiCtxBuilder, memory: u64) -> RunEnd {
    let state = P2State { wasi: wasi.build(), table: ResourceTable::new(), cap: MemoryCap::new(memory) };
    let mut store = Store::new(pre.engine(), state);
    store.limiter(|s| &mut s.cap);
    yield_every_tick(&mut store);
    let command = match pre.instantiate_async(&mut store).await {
        Ok(command) => command,
        Err(e) => return instantiate_error(e),
    };
    match command.wasi_cli_run().call_run(&mut store).await {
        Ok(Ok(())) => RunEnd::Exited(0),
        Ok(Err(())) => RunEnd::Exited(1),
        Err(e) => run_error(e),
    }
}

pub(crate) fn instantiate_error(e: wasmtime::Error) -> RunEnd {
    match e.downcast_ref::<MemoryLimitExceeded>() {
        Some(limit) => RunEnd::Failed(limit.to_string()),
        None => RunEnd::Unavailable(format!("cannot instantiate: {}", one_line(&e))),
    }
}

pub(crate) fn run_error(e: wasmtime::Error) -> RunEnd {
    match e.downcast_ref::<I32Exit>() {
        Some(exit) => RunEnd::Exited(exit.0),
        None => RunEnd::Failed(one_line(&e)),
    }
}

/// An error on one log line: a trap as its kind (wasmtime wraps it in a multi-line wasm
/// backtrace), anything else with its causes.
pub(crate) fn one_line(e: &wasmtime::Error) -> String {
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        return trap.to_string();
    }
    if let Some(limit) = e.downcast_ref::<MemoryLimitExceeded>() {
        return limit.to_string();
    }
    let text = format!("{e:#}");
    text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ")
}
