//! The Apache side of mod_wasm: the C ABI that mod_wasm.c calls (directives, hooks) and
//! the host's request traits implemented over `request_rec`. Every call into httpd or APR
//! lives in this crate; everything about WebAssembly lives in `host`. The modules stand on
//! floors and import only from their own floor or below (docs/architecture.md).
#![allow(clippy::missing_safety_doc)]
// Every unsafe operation sits in its own block with a `// SAFETY:` line saying why it holds
// (tests/test_source_rules.py checks the comments).
#![deny(unsafe_op_in_unsafe_fn)]

/// `[f::<0>, f::<1>, … f::<63>]`: one function per definition (filters, authorization
/// providers), because httpd does not tell a filter or a provider its name when it calls it.
macro_rules! numbered {
    ($f:ident) => {
        numbered!(@ $f: 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
            32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63)
    };
    (@ $f:ident: $($n:literal)*) => { [$($f::<$n>),*] };
}
/// How many functions [`numbered!`] makes: the most definitions of one kind.
const MAX_NUMBERED: usize = 64;

// Ground: httpd's API, the panic boundary, the log, pool-owned values, the configuration.
mod boundary;
mod config;
mod ffi;
mod log;
mod pool;
// The seams to httpd's request: its state, the socache stores, the adapter over request_rec.
mod request;
mod request_state;
mod stores;
// One file per httpd concern.
mod authz;
mod filters;
mod handler;
mod lifecycle;
mod phases;
mod status;
// On top: the directive handlers, which register into the concerns below.
mod directives;

/// Rust's allocations are the C library's malloc: a filter's output is handed to APR as heap
/// buckets that `free()` releases, without a copy (filters.rs). Stated here so that no other
/// global allocator can be linked in (two do not compile).
#[global_allocator]
static ALLOCATOR: std::alloc::System = std::alloc::System;
