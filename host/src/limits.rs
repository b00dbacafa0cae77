//! Per-request limits: a wall-clock deadline (`WasmTimeout`) and a linear-memory cap
//! (`WasmMemoryLimit`); their directive values are parsed in `config::values`.
//!
//! Guests run as async calls on the worker thread's own current-thread tokio runtime, inside
//! `tokio::time::timeout`; the epoch ticker makes running guest code yield every tick, so the
//! deadline stops a spinning guest and a sleeping one (blocked in a WASI call) alike. Both
//! end at once, and the worker thread is free.

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use wasmtime::{ResourceLimiter, Store, UpdateDeadline};

/// `WasmTimeout` when none is configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// `WasmMemoryLimit` when none is configured: per instance.
pub const DEFAULT_MEMORY_LIMIT: u64 = 128 << 20;
/// The largest memory a 32-bit Wasm instance can address.
pub const MAX_MEMORY_LIMIT: u64 = 4 << 30;
/// How often the epoch ticker runs: the granularity of deadlines.
pub const TICK: Duration = Duration::from_millis(10);

/// The limits one guest call runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub timeout: Duration,
    pub memory: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { timeout: DEFAULT_TIMEOUT, memory: DEFAULT_MEMORY_LIMIT }
    }
}

/// The log text for a guest stopped at its deadline.
pub fn deadline_message(timeout: Duration) -> String {
    format!("stopped at its deadline (WasmTimeout {timeout:?})")
}

/// A guest tried to grow its memory past `WasmMemoryLimit` (the trap's error).
#[derive(Debug, thiserror::Error)]
#[error("memory limit exceeded: the guest asked for {wanted} bytes, WasmMemoryLimit is {limit}")]
pub struct MemoryLimitExceeded {
    pub wanted: usize,
    pub limit: u64,
}

/// Caps every linear memory of a store at `limit` bytes; growing past it traps.
pub struct MemoryCap {
    limit: u64,
}

impl MemoryCap {
    pub fn new(limit: u64) -> Self {
        MemoryCap { limit }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired as u64 > self.limit {
            return Err(MemoryLimitExceeded { wanted: desired, limit: self.limit }.into());
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, _desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Tables are bounded by the pooling allocator's table_elements.
        Ok(true)
    }
}

/// Makes a store's guest code yield to the runtime every tick, so that the deadline around
/// the call can fire.
pub(crate) fn yield_every_tick<T>(store: &mut Store<T>) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
}

/// Threads one worker's runtime may start for guests' file operations (they end when idle).
const BLOCKING_THREADS_PER_WORKER: usize = 2;

thread_local! {
    /// Each worker thread drives its guests on its own runtime: no cross-thread hand-off.
    static RUNTIME: RefCell<Option<tokio::runtime::Runtime>> = const { RefCell::new(None) };
}

/// Runs `call` on this thread with a deadline; `None` if the deadline passed first (the call
/// is dropped at once, with everything it held).
pub(crate) fn run_with_deadline<F: Future>(timeout: Duration, call: F) -> Result<Option<F::Output>, String> {
    RUNTIME.with(|cell| {
        let Ok(mut slot) = cell.try_borrow_mut() else {
            // A guest call made from inside another one's host call on this thread (a
            // subrequest run while a guest writes its body): the runtime is busy driving
            // the outer call, so this one is driven here, within the outer's context.
            return Ok(run_nested(timeout, call));
        };
        if slot.is_none() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                // Outgoing requests of wasi:http components (TCP, TLS) run on this runtime.
                .enable_io()
                // wasmtime-wasi runs file operations on the blocking pool.
                .max_blocking_threads(BLOCKING_THREADS_PER_WORKER)
                .build()
                .map_err(|e| format!("cannot start this thread's runtime: {e}"))?;
            *slot = Some(runtime);
        }
        let runtime = slot.as_ref().ok_or("no runtime")?;
        // Most calls finish without ever waiting: poll once, in the runtime's context (for
        // the timers and blocking pool a host call may use), before paying for the timer
        // and the scheduler. A guest that yields (at an epoch tick) or waits goes on below.
        let started = Instant::now();
        let mut call = pin!(call);
        {
            let _context = runtime.enter();
            if let Poll::Ready(output) = call.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                return Ok(Some(output));
            }
        }
        let left = timeout.saturating_sub(started.elapsed());
        Ok(runtime.block_on(async { tokio::time::timeout(left, call).await.ok() }))
    })
}

/// Drives a nested guest call to its end or its deadline by polling it on this thread.
/// Epoch yields are polled again at once; a call waiting on a timer or I/O of the outer
/// runtime cannot progress while that runtime waits for us, so it ends at its deadline.
fn run_nested<F: Future>(timeout: Duration, call: F) -> Option<F::Output> {
    let deadline = Instant::now() + timeout;
    let mut call = pin!(call);
    loop {
        if let Poll::Ready(output) = call.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            return Some(output);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::yield_now();
    }
}
