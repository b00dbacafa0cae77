//! The one door between the host and the web server.
//!
//! mod_wasm implements [`Request`] over httpd's `request_rec`; host unit tests implement it in
//! memory. All methods are called on the thread that serves the request, one at a time.

use std::io;

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

pub trait Request: Send + 'static {
    /// Reads up to `buf.len()` bytes of the request body; `Ok(0)` at its end.
    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, BodyError>;

    /// Hands response body bytes to the server, which passes them on to the client in chunks
    /// of its choosing. An error means the client is gone.
    fn write_body(&mut self, data: &[u8]) -> io::Result<()>;

    /// Sends what `write_body` buffered to the client now.
    fn flush_body(&mut self) -> io::Result<()>;

    /// Ends the response body.
    fn finish_body(&mut self) -> io::Result<()>;

    /// Applies a CGI header block (RFC 3875 section 6: lines up to and including the blank
    /// line) to the response. On a malformed block the server has logged why, and the error
    /// is the status to answer with.
    fn apply_cgi_headers(&mut self, block: &[u8]) -> Result<CgiHeaders, u16>;

    /// Writes one line to the error log in the request's context.
    fn log(&mut self, level: LogLevel, message: &str);
}
