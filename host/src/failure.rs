//! How a guest call fails, as a type: what server-status counts it as and which HTTP status
//! httpd answers with are decided here, and only here.

use crate::limits::MemoryLimitExceeded;

/// Why a guest call (a program's run, a hook, a filter or provider call) failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A trap, a panic, an answer with no meaning, a module that cannot serve here.
    Trap,
    /// Stopped at its deadline (`WasmTimeout`).
    Timeout,
    /// Refused memory past `WasmMemoryLimit`.
    MemoryRefused,
    /// No instance could be had now (the pool is exhausted, or instantiation failed): the
    /// server's shortage rather than the guest's fault; worth trying again later.
    Unavailable,
}

impl Failure {
    /// The kinds server-status counts, in the order of its counters.
    pub const COUNTED: [Failure; 3] = [Failure::Trap, Failure::Timeout, Failure::MemoryRefused];

    /// The status httpd answers with when nothing of the response has been sent.
    pub fn status(self) -> u16 {
        match self {
            Failure::Trap | Failure::MemoryRefused => 500,
            Failure::Timeout | Failure::Unavailable => 503,
        }
    }

    /// Whether server-status counts it as the guest's failure (an unavailable instance is not).
    pub fn counted(self) -> bool {
        self != Failure::Unavailable
    }

    /// What a wasmtime error from a guest call is: a memory refusal or a trap.
    pub fn of(e: &wasmtime::Error) -> Failure {
        match e.downcast_ref::<MemoryLimitExceeded>() {
            Some(_) => Failure::MemoryRefused,
            None => Failure::Trap,
        }
    }
}

/// An error on one log line: a trap as its kind (wasmtime wraps it in a multi-line wasm
/// backtrace), anything else with its causes.
pub fn one_line(e: &wasmtime::Error) -> String {
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        return trap.to_string();
    }
    if let Some(limit) = e.downcast_ref::<MemoryLimitExceeded>() {
        return limit.to_string();
    }
    let text = format!("{e:#}");
    text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_one_status() {
        assert_eq!(Failure::Trap.status(), 500);
        assert_eq!(Failure::MemoryRefused.status(), 500);
        assert_eq!(Failure::Timeout.status(), 503);
        assert_eq!(Failure::Unavailable.status(), 503);
        assert!(Failure::COUNTED.iter().all(|f| f.counted()));
        assert!(!Failure::Unavailable.counted());
    }

    #[test]
    fn a_memory_refusal_is_told_by_its_type_not_its_text() {
        let refused: wasmtime::Error = MemoryLimitExceeded { wanted: 2 << 20, limit: 1 << 20 }.into();
        assert_eq!(Failure::of(&refused), Failure::MemoryRefused);
        let same_text = wasmtime::format_err!("{}", MemoryLimitExceeded { wanted: 2 << 20, limit: 1 << 20 });
        assert_eq!(Failure::of(&same_text), Failure::Trap);
    }
}
