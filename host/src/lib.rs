//! mod_wasm's host: everything Wasm, nothing Apache.
//!
//! The modules stand on floors, and each imports only from its own floor or below
//! (docs/architecture.md draws them; tests/test_architecture.py checks it):
//!
//! * ground: [`config`] (every directive value parsed, the per-directory model), [`request`]
//!   (the seam to httpd), [`phase`] (the one list of phases), [`failure`], [`limits`],
//!   [`stats`], [`validate`], [`slot`];
//! * middle: [`registry`] and [`store`] (what the configuration defines), [`engine`] (the
//!   child's Engine), [`exchange`] (a request's stdio and CGI output);
//! * rooms, one per guest kind: [`program`] (WASI programs), [`wasi_http`] (wasi:http
//!   components), [`extension`] (extension modules);
//! * entries: [`handler`] (the content handler), [`child`] (a child process's start).
//!
//! The Apache module (`mod_wasm/`) reads directives into [`config::DirConfig`], validates
//! modules in the parent with [`registry::register`], builds the runtime in each child with
//! [`child::start`] and serves requests with [`handler::serve`] and
//! [`extension::RequestInstances`], passing the request through the traits of [`request`].

// Ground.
pub mod config;
pub mod failure;
pub mod limits;
pub mod phase;
pub mod request;
pub mod slot;
pub mod stats;
pub mod validate;
// Middle.
pub mod engine;
pub mod exchange;
pub mod registry;
pub mod store;
// Rooms.
pub mod extension;
pub mod program;
pub mod wasi_http;
// Entries.
pub mod child;
pub mod handler;

/// In-memory requests for tests, benchmarks and fuzzing; not in the production module.
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use exchange::Outcome;
pub use request::{BodyError, CgiHeaders, Field, HttpHead, HttpdRequest, LogLevel, Request, Table};
