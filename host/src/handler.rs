//! The content handler: the section's module serves the request, a WASI program run
//! CGI-style ([`crate::program`]) or a wasi:http component ([`crate::wasi_http`]). Both get
//! the same WASI context (arguments, environment, directories, stdio) built here.

use std::time::Instant;

use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::config::DirConfig;
use crate::exchange::{Exchange, Outcome, Role, RunEnd, Stdio};
use crate::failure::Failure;
use crate::limits::{deadline_message, run_with_deadline};
use crate::program::Program;
use crate::request::{LogLevel, Request};
use crate::stats::{Call, ModuleStats};
use crate::wasi_http::HttpPre;

/// Runs the section's module for one request. `cgi_env` holds the CGI meta-variables (empty
/// unless `WasmEnableCGI On`); `WasmEnv` settings are added on top and win over them.
/// Every failure is logged once, naming the module, and comes back as a status.
pub fn serve<R: Request>(cfg: &DirConfig, cgi_env: Vec<(String, String)>, mut req: R) -> Outcome {
    let Some(module) = &cfg.module else {
        req.log(LogLevel::Error, "SetHandler wasm-handler, but no WasmModule is configured here");
        return Outcome::Status(Failure::Trap.status());
    };
    let name = module.slot.name();
    let loaded = match module.slot.ready() {
        Ok(loaded) => loaded,
        Err(reason) => {
            req.log(LogLevel::Error, &format!("{name}: {reason}"));
            return Outcome::Status(Failure::Trap.status());
        }
    };
    let program = loaded.downcast_ref::<Program>();
    let http = loaded.downcast_ref::<HttpPre>();

    let component = http.is_some();
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
            return Outcome::Status(Failure::Trap.status());
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
        match (program, http) {
            (Some(program), _) => crate::program::run(program, wasi, cfg.entry_point(), limits.memory).await,
            (_, Some(pre)) => {
                crate::wasi_http::run(pre, wasi, shared.clone(), cfg.outgoing_origins(), limits.timeout, limits.memory).await
            }
            _ => RunEnd::broken("is an extension module (WasmApacheModule), not a program"),
        }
    };
    let started = Instant::now();
    let counted = module.slot.stats().map(ModuleStats::instance);
    let end = match run_with_deadline(limits.timeout, call) {
        Ok(Some(end)) => end,
        Ok(None) => RunEnd::Failed(Failure::Timeout, deadline_message(limits.timeout)),
        Err(reason) => RunEnd::broken(reason),
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
