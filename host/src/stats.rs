//! What each module costs, for operators (mod_status's server-status): calls per stage,
//! failures by kind, time per call (mean and a histogram for percentiles), instances.
//!
//! The counters live in memory that httpd's parent maps before it forks (mod_wasm gives it to
//! [`attach`]), so every child adds to the same numbers: atomic adds, no lock on the request
//! path. They count from the server's last (re)start.

use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use crate::failure::Failure;
use crate::phase::{FilterKind, Phase, Stage};

/// What a guest call was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// A content handler's request (a program or a wasi:http component).
    Request,
    /// An extension module's hook, filter or provider call.
    Extension(Stage),
}

const STAGES: usize = 1 + Phase::COUNT + FilterKind::COUNT + 1;
/// Latency buckets: four per doubling from 1 µs (2^10 ns); the last one holds the rest.
const SUB_BUCKETS: usize = 4;
const FIRST_OCTAVE: u32 = 10;
const BUCKETS: usize = 112;

// Offsets of one module's counters.
const CALLS: usize = 0;
const FAILURES: usize = CALLS + STAGES;
const TIME_NS: usize = FAILURES + Failure::COUNTED.len();
const TIMED_CALLS: usize = TIME_NS + 1;
const LIVE: usize = TIMED_CALLS + 1;
const POOLED: usize = LIVE + 1;
const HISTOGRAM: usize = POOLED + 1;
/// Counters per module.
pub const PER_MODULE: usize = HISTOGRAM + BUCKETS;

static REGION: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());
static MODULES: AtomicUsize = AtomicUsize::new(0);

/// Bytes of shared memory the counters of `modules` modules need.
pub fn region_size(modules: usize) -> usize {
    modules * PER_MODULE * std::mem::size_of::<AtomicU64>()
}

/// Takes the counters' memory: zeroed, [`region_size`] bytes for `modules` modules, 8-byte
/// aligned, shared by every process that will count (mapped before the fork).
///
/// # Safety
/// `region` must stay mapped, and be used for nothing else, while this process runs
/// guests; it replaces any earlier region (httpd's restart) at once for new calls.
pub unsafe fn attach(region: *mut u8, modules: usize) {
    MODULES.store(0, Relaxed);
    REGION.store(region as *mut AtomicU64, Relaxed);
    MODULES.store(modules, Relaxed);
}

/// The counters of module number `index` (its place in the registry); `None` without a
/// region, or for a module registered after it was made.
pub fn module(index: usize) -> Option<&'static ModuleStats> {
    let region = REGION.load(Relaxed);
    if region.is_null() || index >= MODULES.load(Relaxed) {
        return None;
    }
    // SAFETY: `attach`'s contract: the region holds MODULES * PER_MODULE zero-initialised
    // atomics for the life of the process; ModuleStats is a transparent [AtomicU64; PER_MODULE].
    Some(unsafe { &*(region.add(index * PER_MODULE) as *const ModuleStats) })
}

/// One module's counters, in shared memory.
#[repr(transparent)]
pub struct ModuleStats([AtomicU64; PER_MODULE]);

impl ModuleStats {
    /// A call to `stage` that took `took` and ended with `failure`, if any (one that
    /// [`Failure::counted`] says is not the guest's is not counted as a failure).
    pub fn call(&self, call: Call, took: Duration, failure: Option<Failure>) {
        self.0[CALLS + call.index()].fetch_add(1, Relaxed);
        if let Some(failure) = failure.filter(|f| f.counted()) {
            self.0[FAILURES + failure as usize].fetch_add(1, Relaxed);
        }
        let ns = took.as_nanos().min(u64::MAX as u128) as u64;
        self.0[TIME_NS].fetch_add(ns, Relaxed);
        self.0[TIMED_CALLS].fetch_add(1, Relaxed);
        self.0[HISTOGRAM + bucket(ns)].fetch_add(1, Relaxed);
    }

    /// An instance that exists until the token is dropped.
    pub fn instance(&'static self) -> InstanceToken {
        self.0[LIVE].fetch_add(1, Relaxed);
        InstanceToken(self)
    }

    /// An instance kept for later requests (+1) or taken from the pool (−1).
    pub fn pooled(&self, added: bool) {
        match added {
            true => self.0[POOLED].fetch_add(1, Relaxed),
            false => self.0[POOLED].fetch_sub(1, Relaxed),
        };
    }

    /// The numbers as they are now.
    pub fn snapshot(&self) -> Snapshot {
        let get = |i: usize| self.0[i].load(Relaxed);
        let timed = get(TIMED_CALLS);
        let histogram: Vec<u64> = (0..BUCKETS).map(|b| get(HISTOGRAM + b)).collect();
        Snapshot {
            calls: Call::all().map(|c| (c, get(CALLS + c.index()))).filter(|(_, n)| *n > 0).collect(),
            traps: get(FAILURES + Failure::Trap as usize),
            timeouts: get(FAILURES + Failure::Timeout as usize),
            memory_refusals: get(FAILURES + Failure::MemoryRefused as usize),
            mean_us: if timed == 0 { 0.0 } else { get(TIME_NS) as f64 / timed as f64 / 1000.0 },
            p99_us: percentile(&histogram, 0.99),
            // Gauges are changed by ±1 from many processes; read them as signed.
            live: get(LIVE) as i64,
            pooled: get(POOLED) as i64,
        }
    }
}

/// Counts an instance while it exists.
pub struct InstanceToken(&'static ModuleStats);

impl InstanceToken {
    pub fn stats(&self) -> &'static ModuleStats {
        self.0
    }
}

impl Drop for InstanceToken {
    fn drop(&mut self) {
        self.0 .0[LIVE].fetch_sub(1, Relaxed);
    }
}

/// One module's numbers, summed over every child.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Calls per kind, the kinds with any.
    pub calls: Vec<(Call, u64)>,
    pub traps: u64,
    pub timeouts: u64,
    pub memory_refusals: u64,
    /// Mean time per call, in microseconds.
    pub mean_us: f64,
    /// The time 99 % of calls took at most (a bucket's upper bound, within 19 %).
    pub p99_us: f64,
    pub live: i64,
    pub pooled: i64,
}

impl Call {
    fn index(self) -> usize {
        match self {
            Call::Request => 0,
            Call::Extension(Stage::Hook(phase)) => 1 + phase as usize,
            Call::Extension(Stage::Filter(kind)) => 1 + Phase::COUNT + kind as usize,
            Call::Extension(Stage::Authz) => STAGES - 1,
        }
    }

    fn all() -> impl Iterator<Item = Call> {
        let stages = Phase::ALL.into_iter().map(Stage::Hook).chain(FilterKind::ALL.into_iter().map(Stage::Filter));
        std::iter::once(Call::Request).chain(stages.chain(std::iter::once(Stage::Authz)).map(Call::Extension))
    }

    /// The name server-status shows: `request`, or the WIT name of the hook, filter or provider.
    pub fn name(self) -> &'static str {
        match self {
            Call::Request => "request",
            Call::Extension(stage) => stage.name(),
        }
    }
}

/// The bucket of a call that took `ns` nanoseconds.
fn bucket(ns: u64) -> usize {
    if ns < 1 << FIRST_OCTAVE {
        return 0;
    }
    let octave = 63 - ns.leading_zeros(); // ≥ FIRST_OCTAVE
    let sub = ((ns >> (octave - 2)) & 3) as usize; // the two bits after the leading one
    (1 + (octave - FIRST_OCTAVE) as usize * SUB_BUCKETS + sub).min(BUCKETS - 1)
}

/// The upper bound of bucket `b`, in microseconds.
fn bucket_top_us(b: usize) -> f64 {
    if b == 0 {
        return (1u64 << FIRST_OCTAVE) as f64 / 1000.0;
    }
    let octave = FIRST_OCTAVE as usize + (b - 1) / SUB_BUCKETS;
    let sub = (b - 1) % SUB_BUCKETS;
    let top = (1u128 << octave) + ((sub as u128 + 1) << (octave - 2));
    top as f64 / 1000.0
}

fn percentile(histogram: &[u64], q: f64) -> f64 {
    let total: u64 = histogram.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let wanted = (total as f64 * q).ceil() as u64;
    let mut seen = 0;
    for (b, n) in histogram.iter().enumerate() {
        seen += n;
        if seen >= wanted {
            return bucket_top_us(b);
        }
    }
    bucket_top_us(histogram.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_bound_their_values() {
        for ns in [0u64, 999, 1024, 1500, 2047, 2048, 50_000, 1_000_000, 123_456_789, u64::MAX] {
            let b = bucket(ns);
            assert!(b < BUCKETS);
            if b < BUCKETS - 1 {
                assert!(ns as f64 / 1000.0 < bucket_top_us(b), "{ns} ns in bucket {b} (top {} µs)", bucket_top_us(b));
                assert!(b == 0 || ns as f64 / 1000.0 >= bucket_top_us(b - 1), "{ns}");
            }
        }
    }

    #[test]
    fn counters_add_up() {
        let stats: &'static ModuleStats = Box::leak(Box::new(ModuleStats(std::array::from_fn(|_| AtomicU64::new(0)))));
        for us in 1..=100u64 {
            stats.call(Call::Extension(Stage::Hook(Phase::Fixups)), Duration::from_micros(us), None);
        }
        stats.call(Call::Request, Duration::from_millis(5), Some(Failure::Timeout));
        stats.pooled(true);
        let token = stats.instance();
        let s = stats.snapshot();
        assert_eq!(s.calls, vec![(Call::Request, 1), (Call::Extension(Stage::Hook(Phase::Fixups)), 100)]);
        assert_eq!((s.traps, s.timeouts, s.memory_refusals, s.live, s.pooled), (0, 1, 0, 1, 1));
        assert!((99.0..=130.0).contains(&s.p99_us), "{}", s.p99_us);
        assert!((s.mean_us - 99.5).abs() < 1.0, "{}", s.mean_us);
        drop(token);
        assert_eq!(stats.snapshot().live, 0);
    }
}
