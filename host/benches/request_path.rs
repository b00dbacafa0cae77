//! Per-request costs of the host, without Apache (docs/benchmarks.md):
//!
//! - `floor/instantiate+call`: a trivial core module from its InstancePre, with an empty
//!   WASI context: what wasmtime itself costs;
//! - `handler/trivial` and `handler/hello`: `handler::serve` end to end (WASI context,
//!   stdio, deadline, instance, run, response) with an in-memory request;
//! - `hook/first-call` (instantiate + one hook call), `hook/next-call` (a further phase of
//!   the same request), `hook/4-header-sets`, and `hook/server-scope-request` (a whole
//!   request's hook under `WasmApacheModuleScope server`: a kept instance), with
//!   the add-headers example module;
//! - `hook/python-first-call` and `hook/python-server-scope-request`: the same with the
//!   sdk-python add-headers example (an interpreter component).
//!
//! `make all` first (the guests come from build/guests).
//! Run: cargo bench -p mod_wasm_host

use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use host::config::{DirConfig, ModuleRef};
use host::child;
use host::engine::ChildSettings;
use host::program::{P1State, Program};
use host::config::ExtensionRef;
use host::extension::{CallContext, FilterStream, RequestInstances};
use host::phase::{ChunkEnd, FilterKind, Phase, Scope};
use host::limits::{Limits, MemoryCap};
use host::testing::{MemoryHttpdRequest, MemoryRequest};
use wasmtime::Store;

fn guest(target: &str, name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/guests").join(target).join(name);
    assert!(path.exists(), "{} missing: run `make guests`", path.display());
    path
}

fn section(path: &Path) -> DirConfig {
    let slot = host::registry::register(path, |_, _| Ok(())).expect("valid guest");
    child::start(&ChildSettings { concurrent_requests: 4, cache_dir: None }).expect("engine");
    DirConfig { module: Some(ModuleRef { slot, mount: None }), ..Default::default() }
}

fn trivial_module() -> PathBuf {
    let path = std::env::temp_dir().join(format!("mod_wasm_bench_trivial_{}.wasm", std::process::id()));
    let wat = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;
    std::fs::write(&path, wat::parse_str(wat).expect("wat")).expect("write");
    path
}

/// One request whose only hook is `module`'s fixups, from its first call to its end.
fn whole_request(module: &ExtensionRef, scope: Scope, limits: Limits) {
    let instances = RequestInstances::default();
    instances.run(CallContext { module, limits, scope }, Phase::Fixups, Box::new(MemoryHttpdRequest::default()));
    instances.end(&mut |_, _| {})
}

fn benches(c: &mut Criterion) {
    let trivial = section(&trivial_module());
    let hello = section(&guest("wasm32-wasip1", "hello.wasm"));

    c.bench_function("floor/instantiate+call", |b| {
        let loaded = trivial.module.as_ref().unwrap().slot.ready().expect("loaded");
        let Some(Program::Core(pre)) = loaded.downcast_ref::<Program>() else { panic!("not a core module") };
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        b.iter(|| {
            runtime.block_on(async {
                let state = P1State { wasi: wasmtime_wasi::WasiCtxBuilder::new().build_p1(), cap: MemoryCap::new(1 << 30) };
                let mut store = Store::new(pre.module().engine(), state);
                store.set_epoch_deadline(u64::MAX / 2);
                let instance = pre.instantiate_async(&mut store).await.unwrap();
                let start = instance.get_typed_func::<(), ()>(&mut store, "_start").unwrap();
                start.call_async(&mut store, ()).await.unwrap();
            })
        })
    });
    c.bench_function("handler/trivial", |b| {
        b.iter(|| host::handler::serve(&trivial, Vec::new(), MemoryRequest::default()))
    });
    c.bench_function("handler/hello", |b| {
        b.iter(|| host::handler::serve(&hello, Vec::new(), MemoryRequest::default()))
    });

    let slot = section(&guest("wasm32-wasip2", "add_headers.wasm")).module.unwrap().slot;
    let ext = |config: &str| ExtensionRef { slot: slot.clone(), config: Some(Arc::from(config)), order: Default::default() };
    let limits = Limits::default();
    let (no_edits, four_sets) = (ext(""), ext("set A a; set B b; set C c; set D d"));
    let server = Scope::Server { max: None };
    c.bench_function("hook/first-call", |b| b.iter(|| whole_request(&no_edits, Scope::Request, limits)));
    c.bench_function("hook/server-scope-request", |b| b.iter(|| whole_request(&no_edits, server, limits)));
    c.bench_function("hook/next-call", |b| {
        let instances = RequestInstances::default();
        b.iter(|| instances.run(CallContext { module: &no_edits, limits, scope: Scope::Request }, Phase::Fixups, Box::new(MemoryHttpdRequest::default())))
    });
    c.bench_function("hook/4-header-sets", |b| {
        let instances = RequestInstances::default();
        b.iter(|| instances.run(CallContext { module: &four_sets, limits, scope: Scope::Request }, Phase::Fixups, Box::new(MemoryHttpdRequest::default())))
    });

    // The same hook from the sdk-python example (componentize-py: CPython in several
    // dynamically linked core modules, an 18 MB component): what a request-scope instance
    // of an interpreter costs without httpd, against the issue's 150 µs.
    let python = section(&guest("wasm32-wasip2", "python_add_headers.wasm")).module.unwrap().slot;
    let python = ExtensionRef { slot: python, config: Some(Arc::from("")), order: Default::default() };
    c.bench_function("hook/python-first-call", |b| b.iter(|| whole_request(&python, Scope::Request, limits)));
    c.bench_function("hook/python-server-scope-request", |b| b.iter(|| whole_request(&python, server, limits)));

    // An output filter call (filter-probe copies the piece back): per call, and per 64 KiB
    // piece, the largest the host hands a guest.
    let filter_slot = section(&guest("wasm32-wasip2", "filter_probe.wasm")).module.unwrap().slot;
    let copy = ExtensionRef { slot: filter_slot, config: None, order: Default::default() };
    for (name, size) in [("filter/empty-piece", 0), ("filter/8KiB-piece", 8 << 10), ("filter/64KiB-piece", 64 << 10)] {
        let piece = vec![b'x'; size];
        c.bench_function(name, |b| {
            let instances = RequestInstances::default();
            let mut stream = FilterStream::default();
            b.iter(|| {
                let req = Box::new(MemoryHttpdRequest::default());
                instances.filter(CallContext { module: &copy, limits, scope: Scope::Request }, FilterKind::Output, &mut stream, req, &piece, ChunkEnd::More)
            })
        });
    }
}

criterion_group! {
    name = request_path;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(request_path);
