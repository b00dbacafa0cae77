//! Per-request limits: a wall-clock deadline (`WasmTimeout`) and a linear-memory cap
//! (`WasmMemoryLimit`), with their directive syntax.
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

/// Parses a duration the way httpd's `Timeout` reads one (a number with `ms`, `s` (the
/// default), `mi` or `h`), and also with a fraction (`1.5s`) and `m`/`min` for minutes.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a duration (like 30, 30s, 500ms, 2mi)"))?;
    let seconds = match unit.trim().to_ascii_lowercase().as_str() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "mi" | "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown unit `{other}` in `{text}` (use ms, s, mi or h)")),
    };
    if !seconds.is_finite() || !(0.001..=86_400.0).contains(&seconds) {
        return Err(format!("`{text}` is out of range (at least 1ms, at most 24h)"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses a size: a whole number of bytes, or with `K`, `M` or `G` (binary multiples).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number.parse().map_err(|_| format!("`{text}` is not a size (like 64M, 512K, 1G)"))?;
    let shift = match unit.trim().to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        _ => return Err(format!("unknown unit in `{text}` (use K, M or G)")),
    };
    let bytes = value.checked_shl(shift).filter(|b| b >> shift == value).ok_or(format!("`{text}` is too large"))?;
    if bytes == 0 || bytes > MAX_MEMORY_LIMIT {
        return Err(format!("`{text}` is out of range (more than 0, at most 4G)"));
    }
    Ok(bytes)
}

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

impl MemoryLimitExceeded {
    /// Whether a run's failure text is this error's (it reaches the handler as text).
    pub fn is_its_message(text: &str) -> bool {
        text.starts_with("memory limit exceeded:")
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        // httpd's Timeout syntax (ap_timeout_parameter_parse).
        assert_eq!(parse_duration("2mi"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("10 parsecs").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("0").is_err());
        // Found by the fuzzer: positive, but zero once converted.
        assert!(parse_duration(".0000000000000000000000001").is_err());
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("48h").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("128M"), Ok(128 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert!(parse_size("5G").unwrap_err().contains("out of range"));
        assert!(parse_size("12X").unwrap_err().contains("unknown unit"));
        assert!(parse_size("99999999999999999999G").is_err());
        assert!(parse_size("-1M").is_err());
    }
}
