//! One request's stdio: stdin reads the request body, stdout becomes the response (after the
//! CGI header block in CGI mode), stderr goes to the error log line by line.
//!
//! The guest's three streams share one [`Exchange`]; wasmtime-wasi wants `Send + 'static`
//! stream objects, so it sits behind an `Arc<Mutex<_>>` that only this request's thread ever
//! locks. Every stream works synchronously on that thread: no tokio task, no copy of the
//! whole body.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdinStream, StdoutStream};
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

use wasmtime_wasi::I32Exit;

use crate::failure::{one_line, Failure};
use crate::request::{BodyError, CgiHeaders, LogLevel, Request};

/// The largest CGI header block accepted; a larger one fails the request with 500.
pub const MAX_CGI_HEADER_BLOCK: usize = 64 * 1024;
/// stderr lines longer than this are logged in pieces.
pub const MAX_STDERR_LINE: usize = 8 * 1024;
/// The most request-body bytes one stdin read asks the server for.
const MAX_STDIN_READ: usize = 64 * 1024;
/// What a stdout write may hand over at once (`check-write` budget).
const STDOUT_WRITE_BUDGET: usize = 64 * 1024;

/// How the guest's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// Returned from its entry point (0) or called exit with a code: the program's answer.
    Exited(i32),
    /// It failed: a trap, its deadline, refused memory, no instance; the text says what.
    Failed(Failure, String),
}

impl RunEnd {
    /// A failure of the guest's own, with its kind read from `e` (a trap or refused memory).
    pub(crate) fn error(e: wasmtime::Error) -> RunEnd {
        match e.downcast_ref::<I32Exit>() {
            Some(exit) => RunEnd::Exited(exit.0),
            None => RunEnd::Failed(Failure::of(&e), one_line(&e)),
        }
    }

    /// Instantiation failed: its memory was refused, or no instance could be had.
    pub(crate) fn instantiate_error(e: wasmtime::Error) -> RunEnd {
        match Failure::of(&e) {
            Failure::MemoryRefused => RunEnd::Failed(Failure::MemoryRefused, one_line(&e)),
            _ => RunEnd::Failed(Failure::Unavailable, format!("cannot instantiate: {}", one_line(&e))),
        }
    }

    /// A failure that is the guest's (not a wasmtime error): a broken answer, an entry point
    /// it lacks.
    pub(crate) fn broken(reason: impl Into<String>) -> RunEnd {
        RunEnd::Failed(Failure::Trap, reason.into())
    }

    /// How the run counts in server-status: an exit status is the program's answer, not a
    /// failure.
    pub(crate) fn failure(&self) -> Option<Failure> {
        match self {
            RunEnd::Exited(_) => None,
            RunEnd::Failed(failure, _) => Some(*failure),
        }
    }
}

/// What the server should do once the guest is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The response has been sent.
    Served,
    /// CGI `Location: /local/path` with status 200: serve that path instead (as a GET).
    InternalRedirect(String),
    /// Answer with this status; httpd writes the body (an error page, or a 302 to the
    /// `Location` header the guest set).
    Status(u16),
}

enum Output {
    /// CGI mode, still reading the header block.
    Headers(Vec<u8>),
    /// Passing stdout to the client.
    Body,
    /// The response is decided without the guest's body; further stdout is dropped.
    Decided(Outcome),
    /// A wasi:http component: the response comes through wasi:http and stdout is logged
    /// (at info level; stderr stays at error level as for programs).
    Logged(LineBuffer),
}

pub(crate) struct Exchange<R: Request> {
    req: R,
    /// The module's path, for log lines.
    module: Arc<str>,
    output: Output,
    /// Response body bytes handed to the server: once there are any, the status is spoken for.
    body_bytes: u64,
    stderr: LineBuffer,
    body_error: Option<BodyError>,
    body_done: bool,
}

pub(crate) type Shared<R> = Arc<Mutex<Exchange<R>>>;

impl<R: Request> Exchange<R> {
    pub(crate) fn new(req: R, module: Arc<str>, cgi: bool) -> Self {
        let output = if cgi { Output::Headers(Vec::new()) } else { Output::Body };
        Exchange { req, module, output, body_bytes: 0, stderr: LineBuffer::default(), body_error: None, body_done: false }
    }

    /// The exchange of a wasi:http component (see [`Output::Logged`]).
    pub(crate) fn for_component(req: R, module: Arc<str>) -> Self {
        Exchange { output: Output::Logged(LineBuffer::default()), ..Exchange::new(req, module, false) }
    }

    pub(crate) fn shared(self) -> Shared<R> {
        Arc::new(Mutex::new(self))
    }

    pub(crate) fn log(&mut self, level: LogLevel, message: &str) {
        let line = format!("{}: {}", self.module, message);
        self.req.log(level, &line);
    }

    fn read_stdin(&mut self, size: usize) -> Result<Bytes, StreamError> {
        if self.body_done {
            return Err(StreamError::Closed);
        }
        if size == 0 {
            // Asking for nothing is not the end of the body.
            return Ok(Bytes::new());
        }
        let mut buf = vec![0u8; size.min(MAX_STDIN_READ)];
        match self.req.read_body(&mut buf) {
            Ok(0) => {
                self.body_done = true;
                Err(StreamError::Closed)
            }
            Ok(n) => {
                buf.truncate(n);
                Ok(Bytes::from(buf))
            }
            Err(e) => {
                self.body_done = true;
                let err = io::Error::other(e.message.clone());
                self.body_error = Some(e);
                Err(StreamError::LastOperationFailed(err.into()))
            }
        }
    }

    /// The next piece of the request body, `None` at its end; a failure is kept for the
    /// status the request ends with.
    pub(crate) fn read_body_chunk(&mut self) -> Result<Option<Bytes>, String> {
        match self.read_stdin(MAX_STDIN_READ) {
            Ok(data) => Ok(Some(data)),
            Err(StreamError::Closed) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    pub(crate) fn http_head(&self) -> crate::request::HttpHead {
        self.req.http_head()
    }

    pub(crate) fn start_response(&mut self, status: u16, reason: Option<&str>, headers: &[(&str, &[u8])]) {
        self.req.set_response_head(status, reason, headers)
    }

    pub(crate) fn write_body(&mut self, data: &[u8]) -> io::Result<()> {
        self.body_bytes += data.len() as u64;
        self.req.write_body(data)
    }

    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.req.flush()
    }

    pub(crate) fn finish_body(&mut self) -> io::Result<()> {
        self.req.finish_body()
    }

    pub(crate) fn write_stdout(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.output {
            Output::Body => self.write_body(data),
            Output::Decided(_) => Ok(()),
            Output::Logged(lines) => {
                lines.push(data);
                for line in lines.take_lines(false) {
                    self.log(LogLevel::Info, &line);
                }
                Ok(())
            }
            Output::Headers(block) => {
                let scan_from = block.len().saturating_sub(2);
                block.extend_from_slice(data);
                match header_block_end(block, scan_from) {
                    Some(end) => {
                        let rest = block.split_off(end);
                        let block = std::mem::take(block);
                        self.apply_headers(&block);
                        match self.output {
                            Output::Body if !rest.is_empty() => self.write_body(&rest),
                            _ => Ok(()),
                        }
                    }
                    None if block.len() > MAX_CGI_HEADER_BLOCK => {
                        self.log(
                            LogLevel::Error,
                            &format!("CGI header block larger than {} bytes", MAX_CGI_HEADER_BLOCK),
                        );
                        self.output = Output::Decided(Outcome::Status(500));
                        Err(io::Error::from(io::ErrorKind::BrokenPipe))
                    }
                    None => Ok(()),
                }
            }
        }
    }

    /// Applies a complete (or, at exit, truncated) header block and decides what follows,
    /// the way mod_cgi does: `Location` with status 200 discards the body and redirects,
    /// internally for a local path, with a 302 for an absolute URL.
    fn apply_headers(&mut self, block: &[u8]) {
        self.output = match self.req.apply_cgi_headers(block, &self.module) {
            Err(status) => Output::Decided(Outcome::Status(status)),
            Ok(CgiHeaders { status: 200, location: Some(location) }) if location.starts_with('/') => {
                Output::Decided(Outcome::InternalRedirect(location))
            }
            Ok(CgiHeaders { status: 200, location: Some(_) }) => Output::Decided(Outcome::Status(302)),
            Ok(_) => Output::Body,
        };
    }

    fn write_stderr(&mut self, data: &[u8]) {
        self.stderr.push(data);
        for line in self.stderr.take_lines(false) {
            self.log(LogLevel::Error, &line);
        }
    }

    /// Completes the response after the guest's run.
    pub(crate) fn finish(&mut self, end: RunEnd) -> Outcome {
        for line in self.stderr.take_lines(true) {
            self.log(LogLevel::Error, &line);
        }
        if let Output::Logged(lines) = &mut self.output {
            for line in lines.take_lines(true) {
                self.log(LogLevel::Info, &line);
            }
        }
        // (what went wrong, the status if nothing was sent, whether the run ended abnormally)
        let failure = match end {
            RunEnd::Exited(0) => None,
            RunEnd::Exited(code) => Some((format!("exited with status {code}"), Failure::Trap.status(), false)),
            RunEnd::Failed(failure, reason) => Some((reason, failure.status(), true)),
        };
        if let Some((reason, status, abnormal)) = failure {
            if self.body_bytes == 0 {
                return match self.body_error.take() {
                    Some(body) => {
                        self.log(LogLevel::Error, &format!("{reason} (reading the request body: {})", body.message));
                        Outcome::Status(body.status)
                    }
                    None => {
                        self.log(LogLevel::Error, &reason);
                        Outcome::Status(status)
                    }
                };
            }
            let sent = self.body_bytes;
            self.log(LogLevel::Error, &format!("{reason} after {sent} bytes of the response body"));
            if abnormal {
                // The status is sent: cut the response short so the client sees it is incomplete.
                let _ = self.req.abort_body();
                return Outcome::Served;
            }
        }
        if let Output::Headers(block) = &mut self.output {
            if block.is_empty() {
                if let Some(body) = self.body_error.take() {
                    self.log(LogLevel::Error, &format!("reading the request body: {}", body.message));
                    return Outcome::Status(body.status);
                }
            }
            // The guest ended inside its header block: httpd reports a premature end.
            let block = std::mem::take(block);
            self.apply_headers(&block);
        }
        match &self.output {
            Output::Decided(outcome) => outcome.clone(),
            _ => {
                // A failure here means the client went away; there is nobody to answer.
                let _ = self.req.finish_body();
                Outcome::Served
            }
        }
    }
}

/// The offset just past the blank line ending a CGI header block ("\n\n" or "\n\r\n"),
/// searching from `from`.
fn header_block_end(buf: &[u8], from: usize) -> Option<usize> {
    // An empty block: the output starts with the blank line.
    match buf {
        [b'\n', ..] => return Some(1),
        [b'\r', b'\n', ..] => return Some(2),
        _ => {}
    }
    let mut i = from;
    while let Some(pos) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + pos;
        match buf.get(nl + 1..) {
            Some([b'\n', ..]) => return Some(nl + 2),
            Some([b'\r', b'\n', ..]) => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

/// Bytes a guest writes, cut into log lines: at newlines, and every MAX_STDERR_LINE bytes.
/// At most MAX_BUFFERED_LINES complete lines wait to be taken; older ones are dropped.
#[derive(Default)]
pub(crate) struct LineBuffer {
    partial: Vec<u8>,
    lines: std::collections::VecDeque<String>,
    dropped: usize,
}

const MAX_BUFFERED_LINES: usize = 64;

impl LineBuffer {
    pub(crate) fn push(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = MAX_STDERR_LINE - self.partial.len();
            let take = data.iter().take(room).position(|&b| b == b'\n');
            let (chunk, rest, complete) = match take {
                Some(nl) => (&data[..nl], &data[nl + 1..], true),
                None if data.len() >= room => (&data[..room], &data[room..], true),
                None => (data, &data[data.len()..], false),
            };
            self.partial.extend_from_slice(chunk);
            data = rest;
            if complete {
                self.end_line();
            }
        }
    }

    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.partial);
        let text = String::from_utf8_lossy(&line);
        if self.lines.len() == MAX_BUFFERED_LINES {
            self.lines.pop_front();
            self.dropped += 1;
        }
        self.lines.push_back(text.trim_end_matches('\r').to_owned());
    }

    /// The complete lines so far, and with `all` the unfinished last one too.
    pub(crate) fn take_lines(&mut self, all: bool) -> Vec<String> {
        if all && !self.partial.is_empty() {
            self.end_line();
        }
        let mut lines: Vec<String> = self.lines.drain(..).collect();
        if self.dropped > 0 {
            lines.insert(0, format!("({} earlier lines dropped)", std::mem::take(&mut self.dropped)));
        }
        lines
    }
}

fn stream_error(e: io::Error) -> StreamError {
    if e.kind() == io::ErrorKind::BrokenPipe {
        StreamError::Closed
    } else {
        StreamError::LastOperationFailed(e.into())
    }
}

/// Where a guest's stdio goes: the request's [`Exchange`], or a [`LineBuffer`].
pub(crate) trait StdioTarget: Send + Sync + 'static {
    fn write(&self, role: Role, data: &[u8]) -> io::Result<()>;
    fn read(&self, size: usize) -> Result<Bytes, StreamError>;
}

impl<R: Request> StdioTarget for Mutex<Exchange<R>> {
    fn write(&self, role: Role, data: &[u8]) -> io::Result<()> {
        let mut ex = self.lock().unwrap_or_else(|p| p.into_inner());
        match role {
            Role::Stdout => ex.write_stdout(data),
            Role::Stderr => {
                ex.write_stderr(data);
                Ok(())
            }
            Role::Stdin => Err(io::Error::from(io::ErrorKind::Unsupported)),
        }
    }
    fn read(&self, size: usize) -> Result<Bytes, StreamError> {
        self.lock().unwrap_or_else(|p| p.into_inner()).read_stdin(size)
    }
}

/// Output collected for the log; there is no input.
impl StdioTarget for Mutex<LineBuffer> {
    fn write(&self, _: Role, data: &[u8]) -> io::Result<()> {
        self.lock().unwrap_or_else(|p| p.into_inner()).push(data);
        Ok(())
    }
    fn read(&self, _: usize) -> Result<Bytes, StreamError> {
        Err(StreamError::Closed)
    }
}

/// A guest's stdin, stdout or stderr: wasmtime-wasi stream objects that act synchronously on
/// the calling thread.
pub(crate) struct Stdio<T: StdioTarget> {
    target: Arc<T>,
    role: Role,
}

#[derive(Clone, Copy)]
pub(crate) enum Role {
    Stdin,
    Stdout,
    Stderr,
}

impl<T: StdioTarget> Stdio<T> {
    pub(crate) fn new(target: &Arc<T>, role: Role) -> Self {
        Stdio { target: target.clone(), role }
    }
}

impl<T: StdioTarget> Clone for Stdio<T> {
    fn clone(&self) -> Self {
        Stdio { target: self.target.clone(), role: self.role }
    }
}

impl<T: StdioTarget> IsTerminal for Stdio<T> {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl<T: StdioTarget> StdoutStream for Stdio<T> {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl<T: StdioTarget> StdinStream for Stdio<T> {
    fn p2_stream(&self) -> Box<dyn InputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncRead + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl<T: StdioTarget> Pollable for Stdio<T> {
    /// Every operation completes synchronously, so the stream is always ready.
    async fn ready(&mut self) {}
}

impl<T: StdioTarget> OutputStream for Stdio<T> {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.target.write(self.role, &bytes).map_err(stream_error)
    }
    /// Bytes are already with the server, which sends them in blocks as they fill and the
    /// rest when the response ends; a guest's flush after every write would otherwise cost a
    /// network write each.
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(STDOUT_WRITE_BUDGET)
    }
}

impl<T: StdioTarget> InputStream for Stdio<T> {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        self.target.read(size)
    }
}

impl<T: StdioTarget> tokio::io::AsyncWrite for Stdio<T> {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.target.write(self.role, buf).map(|()| buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl<T: StdioTarget> tokio::io::AsyncRead for Stdio<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let result = match self.target.read(buf.remaining()) {
            Ok(bytes) => {
                buf.put_slice(&bytes);
                Ok(())
            }
            Err(StreamError::Closed) => Ok(()),
            Err(e) => Err(io::Error::other(e.to_string())),
        };
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_header_block_end() {
        assert_eq!(header_block_end(b"A: b\n\nbody", 0), Some(6));
        assert_eq!(header_block_end(b"A: b\r\n\r\nbody", 0), Some(8));
        assert_eq!(header_block_end(b"A: b\r\nC: d\r\n", 0), None);
        assert_eq!(header_block_end(b"\n\n", 0), Some(1));
        assert_eq!(header_block_end(b"\r\nbody", 0), Some(2));
    }

    #[test]
    fn a_zero_length_read_does_not_end_stdin() {
        let request = crate::testing::MemoryRequest::with_body(b"body");
        let mut exchange = Exchange::new(request, Arc::from("t.wasm"), false);
        assert_eq!(exchange.read_stdin(0).ok(), Some(Bytes::new()));
        assert_eq!(exchange.read_stdin(10).ok(), Some(Bytes::from_static(b"body")));
        assert!(matches!(exchange.read_stdin(10), Err(StreamError::Closed)));
    }

    #[test]
    fn line_buffer_cuts_lines() {
        let mut b = LineBuffer::default();
        b.push(b"one\ntw");
        assert_eq!(b.take_lines(false), ["one"]);
        b.push(b"o\r\nthree");
        assert_eq!(b.take_lines(true), ["two", "three"]);
        b.push(&vec![b'x'; MAX_STDERR_LINE + 1]);
        assert_eq!(b.take_lines(true).iter().map(String::len).collect::<Vec<_>>(), [MAX_STDERR_LINE, 1]);
        for i in 0..MAX_BUFFERED_LINES + 3 {
            b.push(format!("{i}\n").as_bytes());
        }
        let lines = b.take_lines(true);
        assert_eq!(lines[0], "(3 earlier lines dropped)");
        assert_eq!(lines.len(), MAX_BUFFERED_LINES + 1);
    }
}
