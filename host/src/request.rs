//! The one door between the host and the web server.
//!
//! mod_wasm implements [`Request`] over httpd's `request_rec`; host unit tests implement it in
//! memory. All methods are called on the thread that serves the request, one at a time.

use std::io;

use crate::phase::FilterKind;

/// httpd's log levels, most severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Emerg,
    Alert,
    Crit,
    Error,
    Warn,
    Notice,
    Info,
    Debug,
    Trace1,
    Trace2,
    Trace3,
    Trace4,
    Trace5,
    Trace6,
    Trace7,
    Trace8,
}

/// What a CGI header block asked for, once applied to the response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgiHeaders {
    /// The response status after the block (`Status:` or 200).
    pub status: u16,
    /// The `Location:` header, if the block has one.
    pub location: Option<String>,
}

/// A request body that could not be read, with the status httpd maps the failure to
/// (413 when `LimitRequestBody` is exceeded, 400 for a broken chunked body ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyError {
    pub status: u16,
    pub message: String,
}

/// The request as a wasi:http component is told it: what `wasmtime serve` would pass on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpHead {
    pub method: String,
    /// `http` or `https`.
    pub scheme: String,
    /// The `Host` header as the client sent it (host and port).
    pub authority: String,
    /// The path and query exactly as in the request line.
    pub path_with_query: String,
    /// Every request header, in order, values as raw bytes.
    pub headers: Vec<(String, Vec<u8>)>,
}

pub trait Request: Send + 'static {
    /// Reads up to `buf.len()` bytes of the request body; `Ok(0)` at its end.
    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, BodyError>;

    /// Hands response body bytes to the server, which passes them on to the client in chunks
    /// of its choosing. An error means the client is gone.
    fn write_body(&mut self, data: &[u8]) -> io::Result<()>;

    /// Sends what has been handed over so far to the client now.
    fn flush(&mut self) -> io::Result<()>;

    /// Ends the response body.
    fn finish_body(&mut self) -> io::Result<()>;

    /// Ends a response that failed after its status was sent: what is buffered goes out and
    /// the connection is closed without a proper end, so the client sees it is truncated.
    fn abort_body(&mut self) -> io::Result<()>;

    /// Applies a CGI header block (RFC 3875 section 6: lines up to and including the blank
    /// line) to the response; `script` is the module's path, for the server's messages. On a
    /// malformed block the server has logged why, and the error is the status to answer with.
    fn apply_cgi_headers(&mut self, block: &[u8], script: &str) -> Result<CgiHeaders, u16>;

    /// The request as a wasi:http component sees it.
    fn http_head(&self) -> HttpHead;

    /// Sets the response's status (with its reason phrase, for codes httpd has no text for)
    /// and headers: a wasi:http component's response, before any of its body. Header values
    /// never hold CR, LF or NUL (the http crate refuses them).
    fn set_response_head(&mut self, status: u16, reason: Option<&str>, headers: &[(&str, &[u8])]);

    /// Writes one line to the error log in the request's context.
    fn log(&mut self, level: LogLevel, message: &str);
}

/// A `request_rec` field an extension module reads or writes by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Method,
    Uri,
    UnparsedUri,
    TheRequest,
    Args,
    Protocol,
    Hostname,
    PathInfo,
    Filename,
    CanonicalFilename,
    Handler,
    ContentType,
    ContentEncoding,
    User,
    ApAuthType,
    UseragentIp,
    DocumentRoot,
    ServerName,
    LogId,
}

/// A request's apr tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    HeadersIn,
    HeadersOut,
    ErrHeadersOut,
    Notes,
    SubprocessEnv,
}

/// What a lookup of a URI or file found (the WIT's `lookup`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lookup {
    pub status: u16,
    pub filename: Option<String>,
    pub exists: bool,
    pub content_type: Option<String>,
    pub handler: Option<String>,
}

/// What a lookup starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupOf {
    Uri,
    File,
}

/// What extension modules may do with a request, one hook call at a time. mod_wasm
/// implements it over `request_rec`; values reaching it are already checked (no CR, LF or
/// NUL; writable fields only).
pub trait HttpdRequest: Send {
    fn field(&self, field: Field) -> Option<String>;
    /// Writes one of the writable fields (Uri, Args, Filename, Handler, ContentType, User).
    fn set_field(&mut self, field: Field, value: Option<&str>);
    fn port(&self) -> u16;
    fn status(&self) -> u16;
    fn set_status(&mut self, status: u16);
    fn is_https(&self) -> bool;
    fn is_initial_req(&self) -> bool;

    fn table_get_all(&self, table: Table, name: &str) -> Vec<String>;
    fn table_set(&mut self, table: Table, name: &str, value: &str);
    fn table_add(&mut self, table: Table, name: &str, value: &str);
    fn table_merge(&mut self, table: Table, name: &str, value: &str);
    fn table_unset(&mut self, table: Table, name: &str);
    fn table_entries(&self, table: Table) -> Vec<(String, String)>;

    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, BodyError>;
    fn write_body(&mut self, data: &[u8]) -> io::Result<()>;
    /// Adds the filter httpd knows as `name` to the request; `Err` says why not.
    fn add_filter(&mut self, kind: FilterKind, name: &str) -> Result<(), String>;
    /// A subrequest for `target` run up to the handler, not served; `Err` says why it
    /// cannot be made now.
    fn lookup(&mut self, of: LookupOf, target: &str) -> Result<Lookup, String>;
    /// Serves `uri` as a subrequest into this response; its status.
    fn include(&mut self, uri: &str) -> u16;
    /// httpd's internal redirect to `uri`; `Err` says why it cannot be done now.
    fn internal_redirect(&mut self, uri: &str) -> Result<(), String>;
    /// Runs `op` on the shared store `store` (checked: granted, within the limits) for
    /// the id `id`: `Ok(Some(value))` for a found get, `Ok(None)` otherwise; `Err` says why the
    /// provider failed.
    fn store(&mut self, store: &StoreBackend, id: &[u8], op: StoreOp<'_>) -> Result<Option<Vec<u8>>, String>;
    fn log(&mut self, level: LogLevel, message: &str);
}

/// What carries out a shared store's operations, as the server handed it to the store's
/// definition (`store::define`): opaque to the host, which only hands it back.
pub type StoreBackend = std::sync::Arc<dyn std::any::Any + Send + Sync>;

/// One operation on a store, as mod_wasm hands it to the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOp<'a> {
    Get,
    /// Keep `value` for `ttl_seconds` (1 to `store::MAX_TTL`).
    Set { value: &'a [u8], ttl_seconds: u32 },
    Delete,
}

impl StoreOp<'_> {
    /// The verb log lines use.
    pub fn verb(&self) -> &'static str {
        match self {
            StoreOp::Get => "get",
            StoreOp::Set { .. } => "set",
            StoreOp::Delete => "delete",
        }
    }
}
