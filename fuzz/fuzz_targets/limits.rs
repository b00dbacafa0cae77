//! `WasmTimeout` and `WasmMemoryLimit` values: any text is accepted only within range, and
//! an accepted size reads back the same as a plain byte count.
#![no_main]

use std::time::Duration;

use host::config::values::{duration, size};
use host::limits::MAX_MEMORY_LIMIT;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(d) = duration(text) {
        assert!(d > Duration::ZERO && d <= Duration::from_secs(86_400), "{text:?} -> {d:?}");
    }
    if let Ok(n) = size(text) {
        assert!(n > 0 && n <= MAX_MEMORY_LIMIT, "{text:?} -> {n}");
        assert_eq!(size(&n.to_string()), Ok(n));
    }
});
