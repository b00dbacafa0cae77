//! Write Apache httpd extension modules in Rust, for mod_wasm's `WasmApacheModule`.
//!
//! A module is a type implementing [`Module`]: one method per request phase, each with a
//! default that declines, so you write only the phases you need. [`export!`] names the
//! phases the component exports; mod_wasm calls exactly those, and a phase you leave out
//! costs nothing.
//!
//! ```no_run
//! use mod_wasm_sdk::{export, HookResult, Module, Request};
//!
//! #[derive(Default)]
//! struct AddHeader;
//!
//! impl Module for AddHeader {
//!     fn fixups(&mut self, r: &Request) -> HookResult {
//!         // The response will carry this header, whatever produces the body.
//!         let _ = r.headers_out().set("X-Powered-By", "mod_wasm");
//!         HookResult::Declined
//!     }
//! }
//!
//! export!(AddHeader => fixups);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2` (a `cdylib` crate) and load
//! the `.wasm` with `WasmApacheModule /path/to/module.wasm [config string]`.
//!
//! **State.** The value `export!` creates with [`Default`] lives for one request: set a
//! field in `access_checker`, read it in `log_transaction`; the next request starts from a
//! new value. By default (`WasmApacheModuleScope request`) mod_wasm also gives every request
//! a new instance of the module, so nothing at all survives to the next request. Under
//! `WasmApacheModuleScope server` httpd keeps the instance for later requests:
//! statics, `thread_local!`s and lazily built tables (a parsed configuration, compiled
//! patterns) stay, and only the first request pays to build them. The request's value is
//! dropped as soon as the request ends (mod_wasm calls the module's `request-end` export,
//! which `export!` provides), so its data does not stay in memory until the next request.
//!
//! **Errors.** Calls that can fail return `Result<_, Error>`; nothing in this crate panics on
//! a host error. A panic or trap in your module fails its request with 500 and one log line.

#[doc(hidden)]
pub mod bindings;

use bindings::apache::httpd::types as wit;

mod replace;

pub use replace::Replace;
pub use wit::{AuthzResult, ChunkEnd, Error, FilterResult, HookResult, LogLevel, Lookup};

/// The request being processed (httpd's `request_rec`), for the duration of a hook call.
pub struct Request<'a> {
    inner: &'a wit::Request,
}

impl<'a> Request<'a> {
    #[doc(hidden)]
    pub fn __new(inner: &'a wit::Request) -> Self {
        Request { inner }
    }

    /// Identifies the request: the same in all its phases, different for every other
    /// request of this httpd process (see `WasmApacheModuleScope`).
    pub fn serial(&self) -> u64 {
        self.inner.serial()
    }

    /// `GET`, `POST` …
    pub fn method(&self) -> String {
        self.inner.method()
    }
    /// The path of the URI, decoded (`r->uri`).
    pub fn uri(&self) -> String {
        self.inner.uri()
    }
    /// Changes the path httpd maps (translate-name: then return `Declined` to let httpd map
    /// the new path, or set the filename and return `Ok`).
    pub fn set_uri(&self, uri: &str) -> Result<(), Error> {
        self.inner.set_uri(uri)
    }
    /// The URI as the client sent it, with the query string.
    pub fn unparsed_uri(&self) -> String {
        self.inner.unparsed_uri()
    }
    /// The request line (`GET /x HTTP/1.1`).
    pub fn the_request(&self) -> String {
        self.inner.the_request()
    }
    /// The query string, without `?`.
    pub fn args(&self) -> Option<String> {
        self.inner.args()
    }
    pub fn set_args(&self, args: Option<&str>) -> Result<(), Error> {
        self.inner.set_args(args)
    }
    /// The value of query parameter `name` (not percent-decoded), if present.
    pub fn arg(&self, name: &str) -> Option<String> {
        let args = self.args()?;
        args.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| v.to_string())
        })
    }
    pub fn protocol(&self) -> String {
        self.inner.protocol()
    }
    pub fn hostname(&self) -> Option<String> {
        self.inner.hostname()
    }
    pub fn port(&self) -> u16 {
        self.inner.port()
    }
    pub fn path_info(&self) -> Option<String> {
        self.inner.path_info()
    }
    pub fn filename(&self) -> Option<String> {
        self.inner.filename()
    }
    pub fn set_filename(&self, filename: &str) -> Result<(), Error> {
        self.inner.set_filename(filename)
    }
    pub fn canonical_filename(&self) -> Option<String> {
        self.inner.canonical_filename()
    }
    pub fn handler(&self) -> Option<String> {
        self.inner.handler()
    }
    pub fn set_handler(&self, handler: Option<&str>) -> Result<(), Error> {
        self.inner.set_handler(handler)
    }
    pub fn content_type(&self) -> Option<String> {
        self.inner.content_type()
    }
    pub fn set_content_type(&self, content_type: &str) -> Result<(), Error> {
        self.inner.set_content_type(content_type)
    }
    pub fn content_encoding(&self) -> Option<String> {
        self.inner.content_encoding()
    }
    pub fn status(&self) -> u16 {
        self.inner.status()
    }
    /// The response status (handler phase: before writing the body).
    pub fn set_status(&self, status: u16) -> Result<(), Error> {
        self.inner.set_status(status)
    }
    /// The authenticated user.
    pub fn user(&self) -> Option<String> {
        self.inner.user()
    }
    pub fn set_user(&self, user: Option<&str>) -> Result<(), Error> {
        self.inner.set_user(user)
    }
    pub fn ap_auth_type(&self) -> Option<String> {
        self.inner.ap_auth_type()
    }
    /// The client's address (after mod_remoteip, if loaded).
    pub fn useragent_ip(&self) -> String {
        self.inner.useragent_ip()
    }
    pub fn is_https(&self) -> bool {
        self.inner.is_https()
    }
    /// False for subrequests and internal redirects.
    pub fn is_initial_req(&self) -> bool {
        self.inner.is_initial_req()
    }
    pub fn document_root(&self) -> String {
        self.inner.document_root()
    }
    pub fn server_name(&self) -> String {
        self.inner.server_name()
    }
    /// httpd's unique id of this request, as in the error log.
    pub fn log_id(&self) -> Option<String> {
        self.inner.log_id()
    }
    /// The config string of this module's `WasmApacheModule` line (in a filter call: of its
    /// `WasmOutputFilter` / `WasmInputFilter` line).
    pub fn module_config(&self) -> Option<String> {
        self.inner.module_config()
    }

    pub fn headers_in(&self) -> Table<'_> {
        self.table(wit::Table::HeadersIn)
    }
    pub fn headers_out(&self) -> Table<'_> {
        self.table(wit::Table::HeadersOut)
    }
    /// Response headers sent with error responses too (401, 403 …).
    pub fn err_headers_out(&self) -> Table<'_> {
        self.table(wit::Table::ErrHeadersOut)
    }
    /// Notes shared with other modules for this request.
    pub fn notes(&self) -> Table<'_> {
        self.table(wit::Table::Notes)
    }
    /// The environment of CGI programs and of `%{...}e` in log formats.
    pub fn subprocess_env(&self) -> Table<'_> {
        self.table(wit::Table::SubprocessEnv)
    }
    fn table(&self, table: wit::Table) -> Table<'_> {
        Table { request: self.inner, table }
    }

    /// Up to `max` bytes of the request body; empty at its end (access-checker,
    /// quick-handler and handler).
    pub fn read_body(&self, max: u32) -> Result<Vec<u8>, Error> {
        self.inner.read_body(max)
    }
    /// The whole request body (access-checker, quick-handler and handler).
    /// `LimitRequestBody` applies.
    pub fn read_body_to_end(&self) -> Result<Vec<u8>, Error> {
        let mut body = Vec::new();
        loop {
            let chunk = self.read_body(64 * 1024)?;
            if chunk.is_empty() {
                return Ok(body);
            }
            body.extend_from_slice(&chunk);
        }
    }
    /// Appends to the response body (quick-handler and handler).
    pub fn write_body(&self, data: &[u8]) -> Result<(), Error> {
        self.inner.write_body(data)
    }

    /// Adds output filter `name` (a `WasmOutputFilter`, or any filter httpd knows) to this
    /// request, like `SetOutputFilter` (before the handler runs).
    pub fn add_output_filter(&self, name: &str) -> Result<(), Error> {
        self.inner.add_output_filter(name)
    }
    /// Adds input filter `name` to this request, before its body is read.
    pub fn add_input_filter(&self, name: &str) -> Result<(), Error> {
        self.inner.add_input_filter(name)
    }

    /// How httpd would serve `uri` (`/path?query`): a subrequest run through translation,
    /// sections and auth, not served. `status` 200 means it would be served. Any phase but
    /// log-transaction.
    pub fn lookup_uri(&self, uri: &str) -> Result<Lookup, Error> {
        self.inner.lookup_uri(uri)
    }
    /// How httpd would serve the file `path` (absolute, or relative to this request's file;
    /// from map-to-storage on, once the request has one).
    pub fn lookup_file(&self, path: &str) -> Result<Lookup, Error> {
        self.inner.lookup_file(path)
    }
    /// Serves `uri` as a subrequest into this response, where it has got to, like
    /// `<!--#include virtual-->` (quick-handler and handler). Returns its status; anything
    /// but 200: refused, or failed part way.
    pub fn include_uri(&self, uri: &str) -> Result<u16, Error> {
        self.inner.include_uri(uri)
    }
    /// Hands the request to `uri` (an internal redirect, a GET without the body): that
    /// request's response is the response. In the handler, before anything of the response
    /// is written; then return Ok.
    pub fn internal_redirect(&self, uri: &str) -> Result<(), Error> {
        self.inner.internal_redirect(uri)
    }

    /// The shared store `name` (`WasmSharedStore`), if the configuration grants it to this
    /// module (`WasmSharedStoreGrant`); every call says so otherwise.
    pub fn shared_store(&self, name: &'a str) -> SharedStore<'a> {
        SharedStore { request: self.inner, name }
    }

    /// Writes a line to httpd's error log; see also the [`log_error!`] family of macros.
    pub fn log(&self, level: LogLevel, message: &str) {
        self.inner.log(level, message)
    }
}

/// A key-value store every child process of the server shares — and, with a redis or
/// memcache provider, every server configured with it. Keys are 1 to 64 bytes, values at
/// most 64 KiB, lifetimes 1 second to 30 days. A store that cannot be reached answers
/// [`Error::Io`] (and mod_wasm logs it); decide whether your module then fails open or
/// closed. `get` and `set` are separate calls: two requests may read the same value before
/// either writes (the providers have no atomic increment).
pub struct SharedStore<'a> {
    request: &'a wit::Request,
    name: &'a str,
}

impl SharedStore<'_> {
    /// The value of `key`, if set and not expired.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.request.store_get(self.name, key)
    }
    /// Sets `key` to `value` for `ttl_seconds`.
    pub fn set(&self, key: &str, value: &[u8], ttl_seconds: u32) -> Result<(), Error> {
        self.request.store_set(self.name, key, value, ttl_seconds)
    }
    /// Removes `key`; no error if it was not set.
    pub fn delete(&self, key: &str) -> Result<(), Error> {
        self.request.store_delete(self.name, key)
    }
}

/// One of the request's apr tables. Names are case-insensitive; values with CR, LF or NUL
/// are refused with [`Error::InvalidValue`].
pub struct Table<'a> {
    request: &'a wit::Request,
    table: wit::Table,
}

impl Table<'_> {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<String> {
        self.request.table_get(self.table, name)
    }
    /// Every value of `name`, in order.
    pub fn get_all(&self, name: &str) -> Vec<String> {
        self.request.table_get_all(self.table, name)
    }
    /// Replaces all values of `name`.
    pub fn set(&self, name: &str, value: &str) -> Result<(), Error> {
        self.request.table_set(self.table, name, value)
    }
    /// Adds a value, keeping the existing ones.
    pub fn add(&self, name: &str, value: &str) -> Result<(), Error> {
        self.request.table_add(self.table, name, value)
    }
    /// Appends to the existing value, comma-separated.
    pub fn merge(&self, name: &str, value: &str) -> Result<(), Error> {
        self.request.table_merge(self.table, name, value)
    }
    pub fn unset(&self, name: &str) {
        self.request.table_unset(self.table, name)
    }
    pub fn entries(&self) -> Vec<(String, String)> {
        self.request.table_entries(self.table)
    }
}

/// An extension module: override the phases you take part in. Every method declines by
/// default. `self` lives for one request (see the crate documentation).
///
/// Return values follow httpd: [`HookResult::Ok`] (phase handled; in the RUN_FIRST phases,
/// quick-handler, pre-translate-name, translate-name, map-to-storage, check-user-id,
/// auth-checker, type-checker and handler, no other module runs), [`HookResult::Declined`],
/// [`HookResult::Done`] (response complete), or [`HookResult::HttpStatus`] to stop with that
/// status.
#[allow(unused_variables)]
pub trait Module: Default + 'static {
    /// The request line and headers have just been read. Internal redirects run it again.
    /// Only modules loaded outside any section (server or virtual host) take part.
    fn post_read_request(&mut self, r: &Request) -> HookResult {
        HookResult::Declined
    }
    /// Serve the request before httpd maps it (a cache, a maintenance page): write the body
    /// with [`Request::write_body`] and return Ok, or decline. No auth phase has run. Only
    /// modules loaded outside any section take part; not called for subrequests.
    fn quick_handler(&mut self, r: &Request) -> HookResult {
        HookResult::Declined
    }
    /// See the URI before httpd decodes its %-escapes; [`HookResult::Done`] keeps it as is.
    fn pre_translate_name(&mut self, r: &Request) -> HookResult {
        HookResult::Declined
    }
    /// Map the URI: change it with [`Request::set_uri`], or set the filename and return Ok.
    fn translate_name(&mut self, r: &Request) -> HookResult {
        HookResult::Declined
    }
    /// Return Ok when the request is not a file: httpd then skips its `<Directory>` and
    /// `<Files>` sections (their auth included). Only modules loaded outside any section.
    fn map_to_storage(&mut self, r: &Request) -> HookResult {
        HookResult::Declined
    }
    fn header_parser(&mut self, r: &Request) -> HookResult {
        HookResult::Declined
    }
    /// Allow or refuse by anything but the user (address, token, method …). Once per request.
    fn access_checker(&mut self, r: &Request) -> HookResult {
        HookResult::Declined
    }
    /// Establish the user ([`Request::set_user`]) when the configuration requires one.
    fn check_user_id(&mut self, r: &Request) -> HookResult {
        HookResult::Declined
    }
    fn auth_checker(&mut self, r: &Request) -> HookResult {
        HookResult::Declined
    }
    fn type_checker(&mut self, r: &Request) -> HookResult {
        HookResult::Declined
    }
    fn fixups(&mut self, r: &Request) -> HookResult {
        HookResult::Declined
    }
    /// Add filters to this request ([`Request::add_output_filter`]) just before its handler.
    /// Return Ok or Declined: httpd ignores a status here.
    fn insert_filter(&mut self, r: &Request) -> HookResult {
        HookResult::Declined
    }
    /// Produce the response with [`Request::write_body`] and return Ok, or decline.
    fn handler(&mut self, r: &Request) -> HookResult {
        HookResult::Declined
    }
    /// After the response has been sent.
    fn log_transaction(&mut self, r: &Request) -> HookResult {
        HookResult::Declined
    }

    /// A piece of the response body (`WasmOutputFilter`), in order, the last one with
    /// [`ChunkEnd::End`]. Return [`FilterResult::Emit`] with the bytes that go on (you may
    /// hold back a bounded tail and emit it later; at `Flush` and `End` emit what you can),
    /// [`FilterResult::Pass`] to leave the rest of the body alone, or
    /// [`FilterResult::HttpStatus`] before anything was emitted to answer an error instead.
    /// Headers, status and content type may still change until the first bytes are emitted.
    /// The default passes the body through untouched.
    fn output_filter(&mut self, r: &Request, data: Vec<u8>, at: ChunkEnd) -> FilterResult {
        FilterResult::Pass
    }
    /// A piece of the request body (`WasmInputFilter`): what you emit is what the handler
    /// reads. [`FilterResult::HttpStatus`] (400, 413 …) refuses the request.
    fn input_filter(&mut self, r: &Request, data: Vec<u8>, at: ChunkEnd) -> FilterResult {
        FilterResult::Pass
    }

    /// An authorization provider (`WasmAuthzProvider NAME module.wasm`): may the request have
    /// the resource? `require_line` holds the arguments of the `Require NAME …` line. Answer
    /// as httpd's providers do; [`AuthzResult::DeniedNoUser`] when it takes a user and
    /// [`Request::user`] is none. The default has no opinion.
    fn authz_provider(&mut self, r: &Request, require_line: String) -> AuthzResult {
        AuthzResult::Neutral
    }
}

/// Logs through the request at a level: `log!(r, LogLevel::Info, "user {}", name)`.
#[macro_export]
macro_rules! log {
    ($r:expr, $level:expr, $($arg:tt)+) => {
        $r.log($level, &::std::format!($($arg)+))
    };
}

/// `log_error!(r, "...", args)`: an error-level line.
#[macro_export]
macro_rules! log_error {
    ($r:expr, $($arg:tt)+) => { $crate::log!($r, $crate::LogLevel::Error, $($arg)+) };
}

/// `log_warn!(r, "...", args)`: a warning-level line.
#[macro_export]
macro_rules! log_warn {
    ($r:expr, $($arg:tt)+) => { $crate::log!($r, $crate::LogLevel::Warn, $($arg)+) };
}

/// `log_info!(r, "...", args)`: an info-level line.
#[macro_export]
macro_rules! log_info {
    ($r:expr, $($arg:tt)+) => { $crate::log!($r, $crate::LogLevel::Info, $($arg)+) };
}

/// `log_debug!(r, "...", args)`: a debug-level line (`LogLevel wasm:debug` shows it).
#[macro_export]
macro_rules! log_debug {
    ($r:expr, $($arg:tt)+) => { $crate::log!($r, $crate::LogLevel::Debug, $($arg)+) };
}

/// The module value of the request being served: a new one whenever the host's request
/// serial changes (the instance may serve many requests in turn).
#[doc(hidden)]
pub struct __PerRequest<M> {
    current: core::cell::RefCell<Option<(u64, M)>>,
}

impl<M: Module> __PerRequest<M> {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        __PerRequest { current: core::cell::RefCell::new(None) }
    }

    /// The request `serial` has ended: drop its value.
    pub fn end(&self, serial: u64) {
        let ended = {
            let mut current = self.current.borrow_mut();
            match &*current {
                Some((s, _)) if *s == serial => current.take(),
                _ => None,
            }
        };
        // Dropped after the borrow, in case its Drop looks at the module again.
        drop(ended);
    }

    pub fn with<R>(&self, request: &Request, f: impl FnOnce(&mut M, &Request) -> R) -> R {
        let serial = request.serial();
        let mut current = self.current.borrow_mut();
        let module = match &mut *current {
            Some((s, module)) if *s == serial => module,
            // The previous request's value is dropped here, when the next one begins.
            other => &mut other.insert((serial, M::default())).1,
        };
        f(module, request)
    }
}

/// Exports a [`Module`] for the listed phases and filters:
/// `export!(MyModule => access_checker, fixups, log_transaction);`
///
/// Phases: `post_read_request`, `quick_handler`, `pre_translate_name`, `translate_name`,
/// `map_to_storage`, `header_parser`, `access_checker`, `check_user_id`, `auth_checker`,
/// `type_checker`, `fixups`, `insert_filter`, `handler`, `log_transaction`.
/// Filters: `output_filter`, `input_filter`. Authorization provider: `authz_provider`.
#[macro_export]
macro_rules! export {
    ($module:ty => $($phase:ident),+ $(,)?) => {
        ::std::thread_local! {
            static __MOD_WASM_MODULE: $crate::__PerRequest<$module> = $crate::__PerRequest::new();
        }
        #[doc(hidden)]
        struct __ModWasmExports;
        $( $crate::__export_phase!($phase, $module); )+
        impl $crate::bindings::request_end::exports::apache::httpd::request_end::Guest for __ModWasmExports {
            fn request_end(serial: u64) {
                __MOD_WASM_MODULE.with(|m| m.end(serial));
            }
        }
        $crate::bindings::request_end::export_request_end!(__ModWasmExports with_types_in $crate::bindings::request_end);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_phase {
    (post_read_request, $m:ty) => { $crate::__phase_impl!(post_read_request, post_read_request, export_post_read_request, $m); };
    (quick_handler, $m:ty) => { $crate::__phase_impl!(quick_handler, quick_handler, export_quick_handler, $m); };
    (pre_translate_name, $m:ty) => { $crate::__phase_impl!(pre_translate_name, pre_translate_name, export_pre_translate_name, $m); };
    (translate_name, $m:ty) => { $crate::__phase_impl!(translate_name, translate_name, export_translate_name, $m); };
    (map_to_storage, $m:ty) => { $crate::__phase_impl!(map_to_storage, map_to_storage, export_map_to_storage, $m); };
    (header_parser, $m:ty) => { $crate::__phase_impl!(header_parser, header_parser, export_header_parser, $m); };
    (access_checker, $m:ty) => { $crate::__phase_impl!(access_checker, access_checker, export_access_checker, $m); };
    (check_user_id, $m:ty) => { $crate::__phase_impl!(check_user_id, check_user_id, export_check_user_id, $m); };
    (auth_checker, $m:ty) => { $crate::__phase_impl!(auth_checker, auth_checker, export_auth_checker, $m); };
    (type_checker, $m:ty) => { $crate::__phase_impl!(type_checker, type_checker, export_type_checker, $m); };
    (fixups, $m:ty) => { $crate::__phase_impl!(fixups, fixups, export_fixups, $m); };
    (insert_filter, $m:ty) => { $crate::__phase_impl!(insert_filter, insert_filter, export_insert_filter, $m); };
    (handler, $m:ty) => { $crate::__phase_impl!(handler, handler, export_handler, $m); };
    (log_transaction, $m:ty) => { $crate::__phase_impl!(log_transaction, log_transaction, export_log_transaction, $m); };
    (output_filter, $m:ty) => { $crate::__filter_impl!(output_filter, export_output_filter, $m); };
    (input_filter, $m:ty) => { $crate::__filter_impl!(input_filter, export_input_filter, $m); };
    (authz_provider, $m:ty) => {
        impl $crate::bindings::authz_provider::exports::apache::httpd::authz_provider::Guest for __ModWasmExports {
            fn authz_provider(r: &$crate::bindings::apache::httpd::types::Request, line: ::std::string::String) -> $crate::AuthzResult {
                let request = $crate::Request::__new(r);
                __MOD_WASM_MODULE.with(|m| m.with(&request, |module, r| <$m as $crate::Module>::authz_provider(module, r, line)))
            }
        }
        $crate::bindings::authz_provider::export_authz_provider!(__ModWasmExports with_types_in $crate::bindings::authz_provider);
    };
    ($other:ident, $m:ty) => {
        ::core::compile_error!(::core::concat!("unknown phase or filter `", ::core::stringify!($other), "`"));
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __phase_impl {
    ($world:ident, $func:ident, $export_macro:ident, $m:ty) => {
        impl $crate::bindings::$world::exports::apache::httpd::$world::Guest for __ModWasmExports {
            fn $func(r: &$crate::bindings::apache::httpd::types::Request) -> $crate::HookResult {
                let request = $crate::Request::__new(r);
                __MOD_WASM_MODULE.with(|m| m.with(&request, <$m as $crate::Module>::$func))
            }
        }
        $crate::bindings::$world::$export_macro!(__ModWasmExports with_types_in $crate::bindings::$world);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __filter_impl {
    ($world:ident, $export_macro:ident, $m:ty) => {
        impl $crate::bindings::$world::exports::apache::httpd::$world::Guest for __ModWasmExports {
            fn $world(
                r: &$crate::bindings::apache::httpd::types::Request,
                data: ::std::vec::Vec<u8>,
                at: $crate::ChunkEnd,
            ) -> $crate::FilterResult {
                let request = $crate::Request::__new(r);
                __MOD_WASM_MODULE.with(|m| m.with(&request, |module, r| <$m as $crate::Module>::$world(module, r, data, at)))
            }
        }
        $crate::bindings::$world::$export_macro!(__ModWasmExports with_types_in $crate::bindings::$world);
    };
}
