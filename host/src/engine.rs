//! The wasmtime side of a child process: one Engine (its pooling allocator sized from the
//! MPM, its code cache, its epoch ticker), and the slots of every configured module filled
//! with compiled code by each guest kind's loader.
//!
//! Only [`start_child`] creates an Engine, and mod_wasm reaches it from child_init (through
//! `child::start`, which gives it each guest kind's loader): an Engine
//! made in httpd's parent would have its trap handlers replaced by httpd's fatal-signal
//! handlers before the fork (docs/architecture.md, "Fork safety").

use std::path::PathBuf;

use wasmtime::component::Component;
use wasmtime::{Cache, CacheConfig, Config, Enabled, Engine, InstanceAllocationStrategy, Module, PoolingAllocationConfig};

use crate::limits::TICK;
use crate::phase::is_extension;
use crate::registry;
use crate::slot::{Loaded, ModuleSlot};
use crate::validate::WasmKind;

/// How children build their runtime, from httpd's MPM settings and `WasmCacheDir`.
#[derive(Clone, Debug)]
pub struct ChildSettings {
    /// Requests one child serves at the same time (ThreadsPerChild; 1 under prefork).
    pub concurrent_requests: u32,
    /// Where compiled code is kept between starts (`WasmCacheDir`); `None`: no cache.
    pub cache_dir: Option<PathBuf>,
}

/// A module that could not be prepared in this child; its requests answer 500.
#[derive(Debug)]
pub struct LoadFailure {
    pub path: PathBuf,
    pub reason: String,
}

/// Component instances one worker thread may hold at once, at least: its request's handler
/// and extension modules.
const MIN_COMPONENT_INSTANCES_PER_THREAD: u32 = 8;
/// Per component instance: core instances (a Rust component has about four) and memories
/// (and as many tables).
const CORE_INSTANCES_PER_COMPONENT: u32 = 4;
const MEMORIES_PER_COMPONENT: u32 = 2;

/// Component instances one worker thread may hold at once: the handler's, one per extension
/// module for its request, and room for as many kept for later requests
/// (`WasmApacheModuleScope server`: the pool holds at most one per module and request served
/// at the same moment).
fn component_instances_per_thread() -> u32 {
    let extensions = registry::all().iter().filter(|s| is_extension(&s.info().exports)).count();
    (2 * extensions as u32 + 1).max(MIN_COMPONENT_INSTANCES_PER_THREAD)
}

/// Bytes of each pooled memory and table reset in place (memset/memcpy from the image) when
/// a slot is reused, instead of being dropped with madvise: every dropped page costs a page
/// fault and a TLB shootdown across the child's threads on the next request (measured: 6.8
/// faults per hello request and 7.6k req/s without, 0 faults and 12.5k req/s with).
/// Without PAGEMAP_SCAN the whole range (up to the memory's size) is reset on every reuse,
/// so it stays moderate for interpreters with large memories; httpd's children cannot use
/// PAGEMAP_SCAN (after setuid they are not dumpable, so /proc/self/pagemap is root's).
const MEMORY_KEEP_RESIDENT: usize = 4 << 20;
const TABLE_KEEP_RESIDENT: usize = 1 << 20;
/// Interpreters compiled to Wasm have large function tables.
const TABLE_ELEMENTS: usize = 100_000;

fn engine_config(settings: &ChildSettings) -> Result<Config, String> {
    let n = settings.concurrent_requests.max(1);
    let components = n * component_instances_per_thread();
    let mut pool = PoolingAllocationConfig::default();
    pool.total_core_instances(components * CORE_INSTANCES_PER_COMPONENT)
        .total_memories(components * MEMORIES_PER_COMPONENT)
        .total_tables(components * MEMORIES_PER_COMPONENT)
        .total_component_instances(components)
        // Guests run as async calls on fiber stacks, and a Store keeps the stack of its last
        // call until it is dropped: a stack per Store (address space until used), plus one
        // for a preview1 handler's.
        .total_stacks(components + n)
        .table_elements(TABLE_ELEMENTS)
        .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
        .table_keep_resident(TABLE_KEEP_RESIDENT)
        // Linux 6.7+: reset only the pages a request touched (elsewhere: memset the range).
        .pagemap_scan(Enabled::Auto);
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Deadlines: the ticker below advances the epoch; guests yield at each tick.
    config.epoch_interruption(true);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    if let Some(dir) = &settings.cache_dir {
        // Entries are keyed by the module's bytes and the engine's settings and written
        // atomically, so processes may share the directory.
        let mut cache = CacheConfig::new();
        cache.with_directory(dir);
        let cache = Cache::new(cache).map_err(|e| format!("WasmCacheDir {}: {e:#}", dir.display()))?;
        config.cache(Some(cache));
    }
    Ok(config)
}

/// Opens `/proc/self/pagemap` in httpd's parent (no Engine, no thread: a file and a
/// `pthread_atfork` handler in wasmtime), so that every child reopens it right after the
/// fork, while still root. A child cannot open it itself once it runs as httpd's `User`
/// (it is no longer "dumpable"), and without it every pooled slot is reset with a memset of
/// its whole keep-resident range instead of only the pages a request touched. Returns
/// whether the kernel supports PAGEMAP_SCAN (Linux 6.7+).
pub fn prepare_parent() -> bool {
    PoolingAllocationConfig::is_pagemap_scan_available()
}

/// Why the parent's preparation for children failed.
#[derive(Debug)]
pub enum PrepareError {
    /// No Engine could be made with these settings (address space, usually).
    Engine(String),
    /// A module validated in the parent but wasmtime could not compile it.
    Compile { path: PathBuf, reason: String },
    /// The helper process could not be run or did not report.
    Helper(String),
}

/// Prepares, from httpd's parent, what children need, in a short-lived forked process so
/// that the parent itself never has an Engine (docs/architecture.md, "Fork safety"): it checks that an
/// Engine can be made (the pooling allocator reserves address space for every instance slot
/// up front, and a limit such as `ulimit -v` can forbid it) and, with a cache directory,
/// compiles every module into it, so that children load compiled code instead of compiling.
pub fn prepare_for_children(settings: &ChildSettings) -> Result<(), PrepareError> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: plain POSIX calls on our own fds. httpd's parent is single-threaded while it
    // reads its configuration, so the forked child may allocate; it never returns or unwinds
    // into httpd's code: whatever happens it reports and _exits without running destructors.
    unsafe {
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            return Err(PrepareError::Helper(format!("pipe: {}", std::io::Error::last_os_error())));
        }
        match libc::fork() {
            -1 => {
                libc::close(fds[0]);
                libc::close(fds[1]);
                Err(PrepareError::Helper(format!("fork: {}", std::io::Error::last_os_error())))
            }
            0 => {
                libc::close(fds[0]);
                let report = std::panic::catch_unwind(|| compile_into_cache(settings))
                    .unwrap_or_else(|_| Err(PrepareError::Helper("the helper process panicked".into())));
                let message = match report {
                    Ok(()) => String::new(),
                    Err(PrepareError::Engine(reason)) => format!("E{reason}"),
                    Err(PrepareError::Compile { path, reason }) => format!("C{}\n{reason}", path.display()),
                    Err(PrepareError::Helper(reason)) => format!("H{reason}"),
                };
                libc::write(fds[1], message.as_ptr() as *const libc::c_void, message.len());
                libc::_exit(if message.is_empty() { 0 } else { 1 })
            }
            pid => {
                libc::close(fds[1]);
                let mut message = Vec::new();
                let mut buf = [0u8; 1024];
                loop {
                    let n = libc::read(fds[0], buf.as_mut_ptr() as *mut libc::c_void, buf.len());
                    if n <= 0 {
                        break;
                    }
                    message.extend_from_slice(&buf[..n as usize]);
                }
                libc::close(fds[0]);
                let mut status = 0;
                libc::waitpid(pid, &mut status, 0);
                let message = String::from_utf8_lossy(&message);
                match (libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, message.split_at_checked(1)) {
                    (true, None) => Ok(()),
                    (_, Some(("E", reason))) => Err(PrepareError::Engine(reason.to_owned())),
                    (_, Some(("C", text))) => {
                        let (path, reason) = text.split_once('\n').unwrap_or((text, ""));
                        Err(PrepareError::Compile { path: PathBuf::from(path), reason: reason.to_owned() })
                    }
                    (_, Some((_, reason))) => Err(PrepareError::Helper(reason.to_owned())),
                    (false, None) => Err(PrepareError::Helper(format!("the helper process ended abnormally (status {status})"))),
                }
            }
        }
    }
}

/// The forked helper's work (see [`prepare_for_children`]).
fn compile_into_cache(settings: &ChildSettings) -> Result<(), PrepareError> {
    let config = engine_config(settings).map_err(PrepareError::Helper)?;
    let engine = Engine::new(&config).map_err(|e| PrepareError::Engine(format!("{e:#}")))?;
    if settings.cache_dir.is_some() {
        for slot in registry::all() {
            let compiled = match slot.info().kind {
                WasmKind::CoreModule => Module::from_file(&engine, slot.path()).map(drop),
                WasmKind::Component => Component::from_file(&engine, slot.path()).map(drop),
            };
            compiled.map_err(|e| PrepareError::Compile { path: slot.path().to_owned(), reason: format!("{e:#}") })?;
        }
    }
    Ok(())
}

/// Creates this child's Engine, starts its epoch ticker and fills every registered module's
/// slot with what `loader` makes of it (the loader is made once, from the Engine: each guest
/// kind's linker). An `Err` means nothing can run here (no Engine, no ticker, no linker);
/// the slots then hold that reason, so every request names it. Per-module failures come
/// back in the list.
pub fn start_child<L>(settings: &ChildSettings, loader: impl FnOnce(&Engine) -> Result<L, String>) -> Result<Vec<LoadFailure>, String>
where
    L: Fn(&Engine, &ModuleSlot) -> Result<Loaded, String>,
{
    let slots: Vec<_> = registry::all().into_iter().filter(|s| s.loaded().is_none()).collect();
    let (engine, load) = match prepare_engine(settings).and_then(|e| loader(&e).map(|l| (e, l))) {
        Ok(prepared) => prepared,
        Err(reason) => {
            for slot in &slots {
                slot.set_loaded(Err(reason.clone()));
            }
            return Err(reason);
        }
    };
    let mut failures = Vec::new();
    for slot in &slots {
        let loaded = load(&engine, slot);
        if let Err(reason) = &loaded {
            failures.push(LoadFailure { path: slot.path().to_owned(), reason: reason.clone() });
        }
        slot.set_loaded(loaded);
    }
    Ok(failures)
}

/// The Engine, with its epoch ticker already running: deadlines work from the first request.
fn prepare_engine(settings: &ChildSettings) -> Result<Engine, String> {
    let engine = Engine::new(&engine_config(settings)?).map_err(|e| format!("cannot create the WebAssembly engine: {e:#}"))?;
    start_ticker(engine.clone())?;
    Ok(engine)
}

/// The child's one epoch ticker thread. It holds the Engine for the life of the process.
fn start_ticker(engine: Engine) -> Result<(), String> {
    std::thread::Builder::new()
        .name("mod_wasm-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(TICK);
            engine.increment_epoch();
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the epoch ticker thread (no deadline could be kept): {e}"))
}
