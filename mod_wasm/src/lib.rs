//! The Apache side of mod_wasm: the C ABI that mod_wasm.c calls (directives, hooks) and
//! [`host::Request`] implemented over `request_rec`. Every call into httpd or APR lives in
//! this crate; everything about WebAssembly lives in `host`.
#![allow(clippy::missing_safety_doc)]

mod boundary;
pub mod directives;
pub mod extensions;
mod ffi;
pub mod hooks;
mod request;
