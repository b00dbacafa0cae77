//! In-memory requests for tests, benchmarks and fuzzing: the host without a web server.
#![doc(hidden)]

use std::io;
use std::sync::{Arc, Mutex};

use crate::request::{BodyError, CgiHeaders, Field, HttpdRequest, LogLevel, Request, Table};

#[derive(Default)]
pub struct MemoryState {
    pub body_in: Vec<u8>,
    pub read_pos: usize,
    pub body_error: Option<BodyError>,
    pub status: u16,
    /// The last block handed to apply_cgi_headers.
    pub header_block: Option<Vec<u8>>,
    pub headers: Vec<(String, String)>,
    pub body_out: Vec<u8>,
    pub finished: bool,
    pub flushes: usize,
    /// What http_head answers.
    pub head: crate::request::HttpHead,
    pub aborted: bool,
    pub logs: Vec<(LogLevel, String)>,
}

/// A request held in memory, with a minimal RFC 3875 header parser; a test keeps a second
/// handle (a clone) to look at it afterwards.
#[derive(Clone, Default)]
pub struct MemoryRequest(Arc<Mutex<MemoryState>>);

impl MemoryRequest {
    pub fn with_body(body: &[u8]) -> Self {
        let r = MemoryRequest::default();
        r.state().body_in = body.to_vec();
        r
    }
    pub fn state(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Request for MemoryRequest {
    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, BodyError> {
        let mut s = self.state();
        if let Some(e) = s.body_error.clone() {
            return Err(e);
        }
        let n = buf.len().min(s.body_in.len() - s.read_pos);
        buf[..n].copy_from_slice(&s.body_in[s.read_pos..s.read_pos + n]);
        s.read_pos += n;
        Ok(n)
    }
    fn write_body(&mut self, data: &[u8]) -> io::Result<()> {
        self.state().body_out.extend_from_slice(data);
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.state().flushes += 1;
        Ok(())
    }
    fn http_head(&self) -> crate::request::HttpHead {
        self.state().head.clone()
    }
    fn set_response_head(&mut self, status: u16, _reason: Option<&str>, headers: &[(&str, &[u8])]) {
        let mut s = self.state();
        s.status = status;
        s.headers = headers.iter().map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v).into_owned())).collect();
    }
    fn finish_body(&mut self) -> io::Result<()> {
        self.state().finished = true;
        Ok(())
    }
    fn abort_body(&mut self) -> io::Result<()> {
        self.state().aborted = true;
        Ok(())
    }
    /// A minimal RFC 3875 parser, enough to see what the host hands over.
    fn apply_cgi_headers(&mut self, block: &[u8], _script: &str) -> Result<CgiHeaders, u16> {
        let text = String::from_utf8_lossy(block);
        let mut s = self.state();
        s.header_block = Some(block.to_vec());
        s.status = 200;
        let mut location = None;
        let mut ended = false;
        for line in text.split('\n').map(|l| l.trim_end_matches('\r')) {
            if line.is_empty() {
                ended = true;
                break;
            }
            let (name, value) = line.split_once(':').ok_or(500u16)?;
            let value = value.trim().to_string();
            match name {
                "Status" => s.status = value.get(..3).and_then(|v| v.parse().ok()).ok_or(500u16)?,
                "Location" => location = Some(value.clone()),
                _ => {}
            }
            s.headers.push((name.to_string(), value));
        }
        if !ended {
            return Err(500);
        }
        Ok(CgiHeaders { status: s.status, location })
    }
    fn log(&mut self, level: LogLevel, message: &str) {
        self.state().logs.push((level, message.to_string()));
    }
}


/// An extension module's view of a request, held in memory.
#[derive(Default)]
pub struct MemoryHttpdRequest {
    pub uri: String,
    pub filename: Option<String>,
    pub status: u16,
    /// (table, name, value) in insertion order.
    pub entries: Vec<(Table, String, String)>,
    pub logs: Vec<(LogLevel, String)>,
    /// Filters added by the guest, in order.
    pub filters: Vec<(crate::phase::FilterKind, String)>,
    /// Shared stores: (store, id) → value.
    pub stores: std::collections::HashMap<(usize, Vec<u8>), Vec<u8>>,
}

impl HttpdRequest for MemoryHttpdRequest {
    fn field(&self, field: Field) -> Option<String> {
        match field {
            Field::Uri => Some(self.uri.clone()),
            Field::Filename => self.filename.clone(),
            Field::Method => Some("GET".into()),
            _ => None,
        }
    }
    fn set_field(&mut self, field: Field, value: Option<&str>) {
        match field {
            Field::Uri => self.uri = value.unwrap_or_default().to_owned(),
            Field::Filename => self.filename = value.map(str::to_owned),
            _ => {}
        }
    }
    fn port(&self) -> u16 {
        80
    }
    fn status(&self) -> u16 {
        self.status
    }
    fn set_status(&mut self, status: u16) {
        self.status = status;
    }
    fn is_https(&self) -> bool {
        false
    }
    fn is_initial_req(&self) -> bool {
        true
    }
    fn table_get_all(&self, table: Table, name: &str) -> Vec<String> {
        self.entries
            .iter()
            .filter(|(t, n, _)| *t == table && n.eq_ignore_ascii_case(name))
            .map(|(_, _, v)| v.clone())
            .collect()
    }
    fn table_set(&mut self, table: Table, name: &str, value: &str) {
        self.table_unset(table, name);
        self.table_add(table, name, value);
    }
    fn table_add(&mut self, table: Table, name: &str, value: &str) {
        self.entries.push((table, name.to_owned(), value.to_owned()));
    }
    fn table_merge(&mut self, table: Table, name: &str, value: &str) {
        match self.entries.iter_mut().find(|(t, n, _)| *t == table && n.eq_ignore_ascii_case(name)) {
            Some((_, _, v)) => *v = format!("{v}, {value}"),
            None => self.table_add(table, name, value),
        }
    }
    fn table_unset(&mut self, table: Table, name: &str) {
        self.entries.retain(|(t, n, _)| !(*t == table && n.eq_ignore_ascii_case(name)));
    }
    fn table_entries(&self, table: Table) -> Vec<(String, String)> {
        self.entries.iter().filter(|(t, _, _)| *t == table).map(|(_, n, v)| (n.clone(), v.clone())).collect()
    }
    fn read_body(&mut self, _: &mut [u8]) -> Result<usize, BodyError> {
        Ok(0)
    }
    fn write_body(&mut self, _: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn add_filter(&mut self, kind: crate::phase::FilterKind, name: &str) -> Result<(), String> {
        self.filters.push((kind, name.to_owned()));
        Ok(())
    }
    fn lookup(&mut self, _: crate::request::LookupOf, target: &str) -> Result<crate::request::Lookup, String> {
        Ok(crate::request::Lookup { status: 200, filename: Some(format!("/srv{target}")), ..Default::default() })
    }
    fn include(&mut self, _: &str) -> u16 {
        200
    }
    fn internal_redirect(&mut self, uri: &str) -> Result<(), String> {
        self.uri = uri.to_owned();
        Ok(())
    }
    fn store(&mut self, store: &crate::request::StoreBackend, id: &[u8], op: crate::request::StoreOp<'_>) -> Result<Option<Vec<u8>>, String> {
        let key = (std::sync::Arc::as_ptr(store) as *const () as usize, id.to_vec());
        Ok(match op {
            crate::request::StoreOp::Get => self.stores.get(&key).cloned(),
            crate::request::StoreOp::Set { value, .. } => self.stores.insert(key, value.to_vec()).and(None),
            crate::request::StoreOp::Delete => self.stores.remove(&key).and(None),
        })
    }
    fn log(&mut self, level: LogLevel, message: &str) {
        self.logs.push((level, message.to_owned()));
    }
}

/// Entry points for the fuzz targets (fuzz/): the CGI output parser and the stderr line
/// splitter, fed as a guest's writes would arrive.
pub mod fuzzing {
    use std::sync::Arc;

    use crate::exchange::{Exchange, LineBuffer, Outcome, RunEnd};

    /// What a CGI program's output became.
    #[derive(Debug, Default)]
    pub struct CgiResult {
        /// The header block handed to the server's parser, if one was complete.
        pub header_block: Option<Vec<u8>>,
        pub body: Vec<u8>,
        pub outcome: Option<Outcome>,
    }

    /// Feeds `chunks` to a CGI-mode stdout as a guest's writes would arrive, then ends the run.
    pub fn cgi_output(chunks: &[&[u8]]) -> CgiResult {
        let request = super::MemoryRequest::default();
        let mut exchange = Exchange::new(request.clone(), Arc::from("fuzz.wasm"), true);
        for chunk in chunks {
            if exchange.write_stdout(chunk).is_err() {
                break;
            }
        }
        let outcome = exchange.finish(RunEnd::Exited(0));
        let state = request.state();
        CgiResult { header_block: state.header_block.clone(), body: state.body_out.clone(), outcome: Some(outcome) }
    }

    /// Feeds `chunks` to a guest's stderr; returns the log lines in order.
    pub fn stderr_lines(chunks: &[&[u8]]) -> Vec<String> {
        let mut buffer = LineBuffer::default();
        let mut lines = Vec::new();
        for chunk in chunks {
            buffer.push(chunk);
            lines.extend(buffer.take_lines(false));
        }
        lines.extend(buffer.take_lines(true));
        lines
    }
}
