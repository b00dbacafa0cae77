//! mod_wasm's host: everything Wasm, nothing Apache.
//!
//! The Apache module (`mod_wasm/`) reads directives into [`config::DirConfig`], validates
//! modules in the parent with [`registry::register`], builds the runtime in each child with
//! [`engine::start_child`] and serves requests with [`handler::serve`] (a program, or a wasi:http component in [`proxy`]), passing the request as
//! a [`request::Request`].

pub mod config;
pub mod engine;
pub mod exchange;
pub mod extension;
pub mod handler;
pub mod limits;
pub mod proxy;
pub mod registry;
pub mod request;
pub mod stats;
pub mod store;
/// In-memory requests for tests, benchmarks and fuzzing; not in the production module.
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod validate;

pub use exchange::Outcome;
pub use request::{BodyError, CgiHeaders, Field, HttpHead, HttpdRequest, LogLevel, Request, Table};
