//! The Apache side of mod_wasm: the C ABI that mod_wasm.c calls (directives, hooks) and
//! [`host::Request`] implemented over `request_rec`. Every call into httpd or APR lives in
//! this crate; everything about WebAssembly lives in `host`.
#![allow(clippy::missing_safety_doc)]
// Every unsafe operation sits in its own block with a `// SAFETY:` line saying why it holds
// (tests/test_source_rules.py checks the comments).
#![deny(unsafe_op_in_unsafe_fn)]

mod boundary;
pub mod directives;
pub mod extensions;
mod ffi;
mod filters;
pub mod hooks;
mod request;

/// Rust's allocations are the C library's malloc: a filter's output is handed to APR as heap
/// buckets that `free()` releases, without a copy (filters.rs). Stated here so that no other
/// global allocator can be linked in (two do not compile).
#[global_allocator]
static ALLOCATOR: std::alloc::System = std::alloc::System;
