//! The adapters over httpd's `request_rec`: [`host::Request`] for the content handler (the
//! request body from the input filters, the response into the output filters, CGI headers
//! through httpd's own parser) and [`host::HttpdRequest`] for extension modules' calls, and
//! the ways a response ends.

use std::ffi::c_void;
use std::io;
use std::os::raw::{c_char, c_int};
use std::ptr;

use host::failure::Failure;
use host::phase::{http_status, FilterKind};
use host::request::{Lookup, LookupOf, StoreBackend, StoreOp};
use host::{BodyError, CgiHeaders, Field, HttpHead, HttpdRequest, LogLevel, Table};

use crate::boundary::guard;
use crate::ffi::*;
use crate::log::{log_request, status_text};
use crate::request_state::{already_answered, body_written, mark_answered, mark_body_written, top_main};

/// The one adapter over httpd's `request_rec`: [`host::Request`] for a content handler's
/// run, [`HttpdRequest`] for an extension module's call. Made for one run or one call, on
/// the request's thread; the response body goes one way ([`RequestRec::write`]) for both.
pub struct RequestRec {
    r: *mut request_rec,
    /// Response bytes on their way to the output filters (apr_brigade_write buffers 8 KiB),
    /// made on first use; what is left in it goes on when the value is dropped.
    out: *mut apr_bucket_brigade,
    /// The request body as it comes from the input filters, made on first use.
    input: *mut apr_bucket_brigade,
    body_ended: bool,
    /// Response body bytes were written through this value.
    wrote: bool,
    /// The response was ended through this value (finish_body, abort_body).
    ended: bool,
}

// SAFETY: a RequestRec is made for one handler run or one guest call and used, and
// dropped (its Drop dereferences `r`), only on that request's thread, inside that run or
// call: the host drops an extension call's value when the call returns, and every clone of
// a content handler's exchange (the WASI streams, a wasi:http body, which spawns no task)
// goes with the store before `handler::serve` returns. wasmtime merely requires store data
// and stream objects to be Send.
unsafe impl Send for RequestRec {}

impl RequestRec {
    /// # Safety
    /// `r` must be the live request of the handler run or guest call the value is made for;
    /// the value must not outlive that run or call.
    pub unsafe fn new(r: *mut request_rec) -> Self {
        RequestRec { r, out: ptr::null_mut(), input: ptr::null_mut(), body_ended: false, wrote: false, ended: false }
    }

    /// A brigade of the request's connection, in its pool (made once).
    fn brigade(r: *mut request_rec, slot: &mut *mut apr_bucket_brigade) -> *mut apr_bucket_brigade {
        if slot.is_null() {
            // SAFETY: the request is live during the run or call (new's contract).
            *slot = unsafe { apr_brigade_create((*r).pool, (*(*r).connection).bucket_alloc) };
        }
        *slot
    }

    fn out(&mut self) -> *mut apr_bucket_brigade {
        Self::brigade(self.r, &mut self.out)
    }

    /// httpd has sent a whole response already: a filter refused the request (an input
    /// filter while the body was read, an output filter answering a status), or it was
    /// redirected, and what the guest writes from then on must not follow that response.
    fn answered(&self) -> bool {
        // SAFETY: the request is live during the run or call.
        unsafe { already_answered(self.r).is_some() }
    }

    /// Reads the request body (both traits' `read_body`). For a content handler's run the
    /// body has ended after its end or an error (`Ok(0)` from then on, as the program's stdin
    /// sees it); an extension module's call asks httpd every time, so a failed read fails
    /// again.
    fn read(&mut self, buf: &mut [u8], end_after_error: bool) -> Result<usize, BodyError> {
        if self.body_ended || buf.is_empty() {
            return Ok(0);
        }
        let input = Self::brigade(self.r, &mut self.input);
        // SAFETY: the request is live during the run or call; `input` is its brigade.
        let n = unsafe { read_body(self.r, input, buf) };
        self.body_ended = match &n {
            Ok(read) => *read == 0,
            Err(_) => end_after_error,
        };
        n
    }

    /// The one way response body bytes go out (both traits' `write_body`): into `out`,
    /// which passes them to the output filters in 8 KiB blocks.
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.answered() {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "httpd has already answered (a filter refused the request, or it was redirected)",
            ));
        }
        if data.is_empty() {
            return Ok(());
        }
        let out = self.out();
        self.wrote = true;
        // SAFETY: the request is live during the run or call; `out` is its brigade.
        let rv = unsafe {
            apr_brigade_write(
                out,
                Some(ap_filter_flush),
                (*self.r).output_filters as *mut c_void,
                data.as_ptr() as *const c_char,
                data.len() as apr_size_t,
            )
        };
        status_result(rv)
    }

    /// Passes what `out` holds on to the output filters with `bucket` (a FLUSH, the EOS) at
    /// its end, and empties it.
    ///
    /// # Safety
    /// `bucket` must be a bucket of the request's connection, owned by nothing else.
    unsafe fn pass_with(&mut self, bucket: *mut apr_bucket) -> apr_status_t {
        let out = self.out();
        // SAFETY: the request is live during the run or call; `out` is its brigade, which
        // takes the bucket (caller's contract).
        unsafe {
            brigade_insert_tail(out, bucket);
            let rv = ap_pass_brigade((*self.r).output_filters, out);
            apr_brigade_cleanup(out as *mut c_void);
            rv
        }
    }

    /// Ends the response with `end` (given `out`): unless httpd has answered already, in
    /// which case what `out` holds is dropped.
    fn end_response(&mut self, end: impl FnOnce(&mut Self, *mut apr_bucket_brigade) -> apr_status_t) -> io::Result<()> {
        self.ended = true;
        let out = self.out();
        if self.answered() {
            // SAFETY: `out` is the request's brigade, live with its pool.
            unsafe { apr_brigade_cleanup(out as *mut c_void) };
            return Ok(());
        }
        status_result(end(self, out))
    }

    /// Passes what `out` holds on to the output filters, without a FLUSH.
    fn pass_written(&mut self) -> io::Result<()> {
        // SAFETY: the request is live during the run or call; `out` is its brigade.
        unsafe {
            if self.out.is_null() || brigade_first(self.out).is_none() {
                return Ok(());
            }
            let rv = ap_pass_brigade((*self.r).output_filters, self.out);
            apr_brigade_cleanup(self.out as *mut c_void);
            status_result(rv)
        }
    }

    fn log_line(&self, level: LogLevel, message: &str) {
        // SAFETY: the request is live during the run or call.
        unsafe { log_request(self.r, level, message) }
    }
}

impl Drop for RequestRec {
    /// A response begun and not ended here (an extension module's handler writes, then
    /// returns; httpd ends the response): what the brigade still holds is handed to httpd's
    /// own buffered output (`ap_rwrite`, its OLD_WRITE filter), so that it goes out in order
    /// with whatever comes next — httpd's end of the response, and with it a Content-Length
    /// for a response that fits in one buffer.
    fn drop(&mut self) {
        if !self.wrote || self.ended {
            return;
        }
        // SAFETY: the request is live during the run or call the value was made for.
        unsafe { mark_body_written(self.r) };
        if self.out.is_null() || self.answered() {
            return;
        }
        // SAFETY: the request is live during the run or call the value was made for; `out`
        // is its brigade, flattened into memory of our own before it is emptied.
        unsafe {
            let mut len: apr_off_t = 0;
            apr_brigade_length(self.out, 1, &mut len);
            if len > 0 {
                let mut tail = vec![0u8; len as usize];
                let mut got = len as apr_size_t;
                apr_brigade_flatten(self.out, tail.as_mut_ptr() as *mut c_char, &mut got);
                if let Ok(n) = c_int::try_from(got) {
                    ap_rwrite(tail.as_ptr() as *const c_void, n, self.r);
                }
            }
            apr_brigade_cleanup(self.out as *mut c_void);
        }
    }
}

/// The header block being fed to httpd's CGI header parser.
struct HeaderCursor<'a> {
    rest: &'a [u8],
}

/// `getsfunc` for ap_scan_script_header_err_core_ex: one line (with its newline) per call, at
/// most `len - 1` bytes, NUL-terminated; 0 at the end of the block.
unsafe extern "C" fn next_header_line(buf: *mut c_char, len: c_int, data: *mut c_void) -> c_int {
    guard(|_| 0, || {
        // SAFETY: `data` is the HeaderCursor apply_cgi_headers passed, alive during the scan.
        let cursor = unsafe { &mut *(data as *mut HeaderCursor) };
        if cursor.rest.is_empty() || len <= 1 {
            return 0;
        }
        let max = (len - 1) as usize;
        let line_len = match cursor.rest.iter().take(max).position(|&b| b == b'\n') {
            Some(nl) => nl + 1,
            None => cursor.rest.len().min(max),
        };
        let (line, rest) = cursor.rest.split_at(line_len);
        // SAFETY: httpd's buffer holds `len` bytes and line_len < len.
        let out = unsafe { std::slice::from_raw_parts_mut(buf, line_len + 1) };
        // A NUL inside a header line would cut it short in C; make it visible as a bad byte.
        for (o, &b) in out.iter_mut().zip(line) {
            *o = if b == 0 { b'?' as c_char } else { b as c_char };
        }
        out[line_len] = 0;
        cursor.rest = rest;
        1
    })
}

impl host::Request for RequestRec {
    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, BodyError> {
        self.read(buf, true)
    }

    fn write_body(&mut self, data: &[u8]) -> io::Result<()> {
        self.write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.answered() {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "httpd has already answered (a filter refused the request)"));
        }
        // SAFETY: the request is live while the handler runs.
        status_result(unsafe { self.pass_with(apr_bucket_flush_create((*(*self.r).connection).bucket_alloc)) })
    }

    fn finish_body(&mut self) -> io::Result<()> {
        self.end_response(|me, out| {
            // SAFETY: the request is live while the handler runs; `out` is its brigade,
            // empty once passed.
            unsafe {
                let rv = me.pass_with(apr_bucket_eos_create((*(*me.r).connection).bucket_alloc));
                if rv == APR_SUCCESS as apr_status_t {
                    send_now(me.r, out);
                }
                rv
            }
        })
    }

    fn abort_body(&mut self) -> io::Result<()> {
        // SAFETY: the request is live while the handler runs; `out` is its brigade.
        self.end_response(|me, out| unsafe { cut_response(me.r, out) })
    }

    fn apply_cgi_headers(&mut self, block: &[u8], script: &str) -> Result<CgiHeaders, u16> {
        // SAFETY: the request is live while the handler runs; the cursor and line buffer
        // outlive the scan that uses them.
        unsafe {
            let r = self.r;
            // httpd names the "script" in its messages after r->filename: make it the module.
            let filename = (*r).filename;
            (*r).filename = pool_str((*r).pool, script);
            let mut cursor = HeaderCursor { rest: block };
            // Without a buffer of its own httpd reports the last line read, not the bad one.
            let mut line = vec![0 as c_char; HUGE_STRING_LEN as usize]; // MAX_STRING_LEN
            let ret = ap_scan_script_header_err_core_ex(
                r,
                line.as_mut_ptr(),
                Some(next_header_line),
                &mut cursor as *mut HeaderCursor as *mut c_void,
                module_index(),
            );
            (*r).filename = filename;
            if ret == HTTP_NOT_MODIFIED as c_int {
                (*r).status = ret;
            } else if ret != OK as c_int {
                return Err(http_status(ret, Failure::Trap.status()));
            }
            let location = apr_table_get((*r).headers_out, c"Location".as_ptr());
            Ok(CgiHeaders {
                status: (*r).status as u16,
                location: (!location.is_null()).then(|| c_str(location)),
            })
        }
    }

    fn http_head(&self) -> HttpHead {
        // SAFETY: the request is live while the handler runs; its strings are NUL-terminated
        // (or NULL) and its tables live.
        unsafe {
            let r = self.r;
            let scheme = if ap_ssl_conn_is_ssl((*r).connection) != 0 { "https" } else { "http" };
            let host = apr_table_get((*r).headers_in, c"Host".as_ptr());
            let authority = if host.is_null() {
                // HTTP/1.0 without Host: the server's own name, as httpd's CGI SERVER_NAME.
                format!("{}:{}", c_str(ap_get_server_name(r)), ap_get_server_port(r))
            } else {
                c_str(host)
            };
            let unparsed = c_str((*r).unparsed_uri);
            // An absolute-form request line (GET http://host/path) keeps only its path here.
            let path_with_query = if unparsed.starts_with('/') || unparsed == "*" {
                unparsed
            } else {
                let parsed = &(*r).parsed_uri;
                let path = if parsed.path.is_null() { "/".to_owned() } else { c_str(parsed.path) };
                match parsed.query.is_null() {
                    true => path,
                    false => format!("{path}?{}", c_str(parsed.query)),
                }
            };
            HttpHead {
                method: c_str((*r).method),
                scheme: scheme.to_owned(),
                authority,
                path_with_query,
                headers: table_raw_entries((*r).headers_in)
                    .map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_bytes().to_vec()))
                    .collect(),
            }
        }
    }

    fn set_response_head(&mut self, status: u16, reason: Option<&str>, headers: &[(&str, &[u8])]) {
        // SAFETY: the request is live while the handler runs; every string is copied into
        // its pool, NUL-terminated (values hold no NUL: the http crate refuses it).
        unsafe {
            let r = self.r;
            (*r).status = status as c_int;
            // httpd answers a code missing from its own table with a 500 status line.
            let line = match reason {
                Some(reason) => format!("{status} {reason}"),
                None => status.to_string(),
            };
            (*r).status_line = pool_str((*r).pool, &line);
            // The component's headers are the response's: nothing httpd guessed from the
            // URI's extension (mod_mime) is added to them.
            (*r).content_type = ptr::null();
            (*r).content_encoding = ptr::null();
            (*r).content_languages = ptr::null_mut();
            for (name, value) in headers {
                let value = apr_pstrmemdup((*r).pool, value.as_ptr() as *const c_char, value.len() as apr_size_t);
                if name.eq_ignore_ascii_case("content-type") {
                    ap_set_content_type(r, value);
                } else {
                    apr_table_addn((*r).headers_out, pool_str((*r).pool, name), value);
                }
            }
        }
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        self.log_line(level, message)
    }
}

/// Writes out what httpd still holds of `r`'s finished response, for a main request.
///
/// httpd keeps a small response (under 4 KiB, in memory) in the core output filter until
/// it has checked the connection for a pipelined request, which it does before writing.
/// Sending it first lets the client send its next request while this worker is still on
/// the connection, which saves a round trip through the event MPM's listener thread
/// (docs/benchmarks.md).
///
/// # Safety
/// `r` must be the live request, its response complete (EOS sent), and `bb` an empty
/// brigade of its connection.
pub unsafe fn send_now(r: *mut request_rec, bb: *mut apr_bucket_brigade) {
    // SAFETY: `r` is live and `bb` an empty brigade of its connection (caller).
    unsafe {
        if !(*r).main.is_null() {
            return;
        }
        let c = (*r).connection;
        brigade_insert_tail(bb, apr_bucket_flush_create((*c).bucket_alloc));
        // Below the request's filters, as httpd itself sends its end-of-request bucket.
        ap_pass_brigade((*c).output_filters, bb);
        apr_brigade_cleanup(bb as *mut c_void);
    }
}

/// Ends a response whose body has begun as failed: an error bucket with 502 makes httpd's
/// chunk filter withhold the final chunk, as for a proxy backend that fails mid-way, so the
/// client cannot take the part for the whole.
///
/// # Safety
/// `r` must be the live request being handled and `bb` a brigade of its connection.
pub unsafe fn cut_response(r: *mut request_rec, bb: *mut apr_bucket_brigade) -> apr_status_t {
    // SAFETY: caller's contract.
    unsafe { end_response(r, bb, HTTP_BAD_GATEWAY as u16) }
}

/// Sends `r`'s end now with an error bucket for `status` (end_with_error) through its
/// filters, and closes the connection afterwards: what is left of the exchange (body
/// unread, response cut) cannot be trusted for another request.
///
/// # Safety
/// `r` must be the live request being handled and `bb` a brigade of its connection.
pub unsafe fn end_response(r: *mut request_rec, bb: *mut apr_bucket_brigade, status: u16) -> apr_status_t {
    // SAFETY: caller's contract.
    unsafe {
        end_with_error(r, bb, status);
        (*(*r).connection).keepalive = AP_CONN_CLOSE;
        let rv = ap_pass_brigade((*r).output_filters, bb);
        apr_brigade_cleanup(bb as *mut c_void);
        rv
    }
}

/// httpd's internal redirect of `r` to `location`, as mod_cgi does it for a `Location:`
/// header: the new request is a GET without the original body (`keep_handler`: served by
/// `r`'s handler, as `ap_internal_redirect_handler`).
///
/// # Safety
/// `r` must be the live request being handled, on its thread, with nothing of its response
/// sent.
pub unsafe fn redirect_as_get(r: *mut request_rec, location: &str, keep_handler: bool) {
    // SAFETY: caller's contract; the location is copied into the request's pool.
    unsafe {
        ap_discard_request_body(r);
        (*r).method = c"GET".as_ptr();
        (*r).method_number = M_GET as c_int;
        apr_table_unset((*r).headers_in, c"Content-Length".as_ptr());
        let location = pool_str((*r).pool, location);
        if keep_handler {
            ap_internal_redirect_handler(location, r);
        } else {
            ap_internal_redirect(location, r);
        }
    }
}

/// Appends an error bucket for `status` and the EOS to `bb`: before the headers went out,
/// httpd answers `status` (its error response); after, a 502 makes it cut the response.
/// `r` counts as answered from now on ([`crate::request_state::already_answered`]).
///
/// # Safety
/// `r` must be a live request and `bb` a brigade of its connection.
pub unsafe fn end_with_error(r: *mut request_rec, bb: *mut apr_bucket_brigade, status: u16) {
    // SAFETY: caller's contract; the buckets come from the connection's allocator.
    unsafe {
        mark_answered(r);
        let alloc = (*(*r).connection).bucket_alloc;
        brigade_insert_tail(bb, ap_bucket_error_create(status as c_int, std::ptr::null(), (*r).pool, alloc));
        brigade_insert_tail(bb, apr_bucket_eos_create(alloc));
    }
}

/// Reads up to `buf.len()` bytes of the request body through the input filters (de-chunked,
/// `LimitRequestBody` applied); `Ok(0)` at its end, and for an empty `buf`.
///
/// # Safety
/// `r` must be the live request and `bb` a brigade of its connection.
pub unsafe fn read_body(r: *mut request_rec, bb: *mut apr_bucket_brigade, buf: &mut [u8]) -> Result<usize, BodyError> {
    if buf.is_empty() {
        return Ok(0);
    }
    // SAFETY: `r` is live and `bb` a brigade of its connection (caller); `buf` holds `len`.
    unsafe {
    let rv = ap_get_brigade((*r).input_filters, bb, AP_MODE_READBYTES, APR_BLOCK_READ, buf.len() as apr_off_t);
    if rv != APR_SUCCESS as apr_status_t {
        apr_brigade_cleanup(bb as *mut c_void);
        if rv == AP_FILTER_ERROR {
            // The body belongs to the main request, whose filters answered.
            mark_answered(top_main(r));
            let message = "an input filter refused the request body; httpd has answered".into();
            return Err(BodyError { status: 400, message });
        }
        let status = ap_map_http_request_error(rv, HTTP_BAD_REQUEST as c_int);
        let status = http_status(status, HTTP_BAD_REQUEST as u16);
        return Err(BodyError { status, message: status_text(rv) });
    }
    let mut len = buf.len() as apr_size_t;
    apr_brigade_flatten(bb, buf.as_mut_ptr() as *mut c_char, &mut len);
    apr_brigade_cleanup(bb as *mut c_void);
    // A blocking read returns data or the end of the body (EOS), so 0 bytes is the end.
    Ok(len as usize)
    }
}

fn status_result(rv: apr_status_t) -> io::Result<()> {
    if rv == APR_SUCCESS as apr_status_t {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::BrokenPipe, status_text(rv)))
    }
}

impl RequestRec {
    fn pooled(&self, value: &str) -> *mut c_char {
        // SAFETY: the request is live during its hook call, and so is its pool.
        unsafe { pool_str((*self.r).pool, value) }
    }

    fn table(&self, table: Table) -> *mut apr_table_t {
        // SAFETY: the request is live during its hook call; its tables are never NULL.
        unsafe {
            match table {
                Table::HeadersIn => (*self.r).headers_in,
                Table::HeadersOut => (*self.r).headers_out,
                Table::ErrHeadersOut => (*self.r).err_headers_out,
                Table::Notes => (*self.r).notes,
                Table::SubprocessEnv => (*self.r).subprocess_env,
            }
        }
    }

    fn with_c(&self, name: &str, value: &str, f: unsafe extern "C" fn(*mut apr_table_t, *const c_char, *const c_char), table: Table) {
        // SAFETY: a live table and two strings in the request's pool, which outlives it.
        unsafe { f(self.table(table), self.pooled(name), self.pooled(value)) }
    }
}

/// A C string field as text.
///
/// # Safety
/// `s` must be NULL or a NUL-terminated string.
unsafe fn text(s: *const c_char) -> Option<String> {
    // SAFETY: caller's contract.
    (!s.is_null()).then(|| unsafe { c_str(s) })
}

impl HttpdRequest for RequestRec {
    fn field(&self, field: Field) -> Option<String> {
        let r = self.r;
        // SAFETY: the request is live during its hook call; its string fields are NULL or
        // NUL-terminated, and httpd's getters take the live request.
        unsafe {
            match field {
                Field::Method => text((*r).method),
                Field::Uri => text((*r).uri),
                Field::UnparsedUri => text((*r).unparsed_uri),
                Field::TheRequest => text((*r).the_request),
                Field::Args => text((*r).args),
                Field::Protocol => text((*r).protocol),
                Field::Hostname => text((*r).hostname),
                Field::PathInfo => text((*r).path_info),
                Field::Filename => text((*r).filename),
                Field::CanonicalFilename => text((*r).canonical_filename),
                Field::Handler => text((*r).handler),
                Field::ContentType => text((*r).content_type),
                Field::ContentEncoding => text((*r).content_encoding),
                Field::User => text((*r).user),
                Field::ApAuthType => text((*r).ap_auth_type),
                Field::UseragentIp => text((*r).useragent_ip),
                Field::DocumentRoot => text(ap_context_document_root(r)),
                Field::ServerName => text(ap_get_server_name(r)),
                Field::LogId => text((*r).log_id),
            }
        }
    }

    fn set_field(&mut self, field: Field, value: Option<&str>) {
        let r = self.r;
        let v = value.map(|v| self.pooled(v)).unwrap_or(ptr::null_mut());
        // SAFETY: the request is live during its hook call; `v` is NULL or a string in its
        // pool, so it lives as long as the request.
        unsafe {
            match field {
                Field::Uri => (*r).uri = v,
                Field::Args => (*r).args = v,
                Field::Filename => (*r).filename = v,
                Field::Handler => (*r).handler = v,
                Field::ContentType => ap_set_content_type(r, v),
                Field::User => (*r).user = v,
                // The host only passes the writable fields.
                _ => {}
            }
        }
    }

    fn port(&self) -> u16 {
        // SAFETY: the request is live during its hook call.
        unsafe { ap_get_server_port(self.r) }
    }
    fn status(&self) -> u16 {
        // SAFETY: as above.
        unsafe { (*self.r).status as u16 }
    }
    fn set_status(&mut self, status: u16) {
        // SAFETY: as above.
        unsafe { (*self.r).status = status as c_int }
    }
    fn is_https(&self) -> bool {
        // SAFETY: as above; a live request has a live connection.
        unsafe { ap_ssl_conn_is_ssl((*self.r).connection) != 0 }
    }
    fn is_initial_req(&self) -> bool {
        // SAFETY: as above.
        unsafe { ap_is_initial_req(self.r) != 0 }
    }

    fn table_get_all(&self, table: Table, name: &str) -> Vec<String> {
        // SAFETY: a live table of the request.
        unsafe { table_values(self.table(table), name) }
    }
    fn table_set(&mut self, table: Table, name: &str, value: &str) {
        self.with_c(name, value, apr_table_setn, table)
    }
    fn table_add(&mut self, table: Table, name: &str, value: &str) {
        self.with_c(name, value, apr_table_addn, table)
    }
    fn table_merge(&mut self, table: Table, name: &str, value: &str) {
        self.with_c(name, value, apr_table_mergen, table)
    }
    fn table_unset(&mut self, table: Table, name: &str) {
        // SAFETY: a live table of the request and a string in its pool.
        unsafe { apr_table_unset(self.table(table), self.pooled(name)) }
    }
    fn table_entries(&self, table: Table) -> Vec<(String, String)> {
        // SAFETY: a live table of the request.
        unsafe { table_entries(self.table(table)) }
    }

    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, BodyError> {
        self.read(buf, false)
    }

    fn write_body(&mut self, data: &[u8]) -> io::Result<()> {
        self.write(data)
    }

    fn lookup(&mut self, of: LookupOf, target: &str) -> Result<Lookup, String> {
        // SAFETY: the request is live during its hook call; the target is copied into its
        // pool; the subrequest is read and destroyed here (httpd applies its recursion limit
        // and answers 500 beyond it).
        unsafe {
            // httpd takes a file's directory from this request's file, unchecked.
            if of == LookupOf::File && (*self.r).filename.is_null() {
                return Err("lookup-file needs the request mapped to a file first (map-to-storage or later)".into());
            }
            let target = self.pooled(target);
            let rr = match of {
                LookupOf::Uri => ap_sub_req_lookup_uri(target, self.r, ptr::null_mut()),
                LookupOf::File => ap_sub_req_lookup_file(target, self.r, ptr::null_mut()),
            };
            let found = Lookup {
                status: u16::try_from((*rr).status).unwrap_or(500),
                filename: text((*rr).filename),
                exists: (*rr).finfo.filetype != APR_NOFILE,
                content_type: text((*rr).content_type),
                handler: text((*rr).handler),
            };
            ap_destroy_sub_req(rr);
            Ok(found)
        }
    }

    fn include(&mut self, uri: &str) -> u16 {
        // What this call wrote so far goes first (a failure shows in the subrequest's own).
        let _ = self.pass_written();
        // SAFETY: as in `lookup`; the subrequest's output goes into this request's filters,
        // behind what the handler has written so far, as mod_include's does.
        unsafe {
            let rr = ap_sub_req_lookup_uri(self.pooled(uri), self.r, (*self.r).output_filters);
            // httpd adds the filter that ends a subrequest's output (dropping its EOS) only
            // when the chain has none; inside a subrequest it has its parent's, where the
            // nested EOS would end the parent's response.
            if (*(*rr).output_filters).r != rr {
                ap_add_output_filter(c"SUBREQ_CORE".as_ptr(), ptr::null_mut(), rr, (*rr).connection);
            }
            let status = if (*rr).status == HTTP_OK as c_int {
                match ap_run_sub_req(rr) {
                    0 => (*rr).status,
                    failed => failed,
                }
            } else {
                (*rr).status
            };
            ap_destroy_sub_req(rr);
            u16::try_from(status).unwrap_or(500)
        }
    }

    fn internal_redirect(&mut self, uri: &str) -> Result<(), String> {
        // SAFETY: the request is live during its handler call; httpd runs the new request to
        // its end here (its recursion limit answers 500 beyond it).
        unsafe {
            // Part of a response written (in this call, or by an earlier handler that
            // declined) would be dropped or followed by the new one: an earlier call that
            // wrote marked the request (see Drop), ap_rwrite (another module's) leaves
            // httpd's OLD_WRITE buffer at the head of the filters, and anything that went
            // through them set sent_bodyct.
            let head = (*self.r).output_filters;
            let old_write = !head.is_null() && c_str((*(*head).frec).name).eq_ignore_ascii_case("OLD_WRITE");
            if self.wrote || body_written(self.r) || old_write || (*self.r).sent_bodyct != 0 {
                return Err("part of the response has been written already".into());
            }
            if already_answered(self.r).is_some() {
                return Err("httpd has already answered this request".into());
            }
            crate::request::redirect_as_get(self.r, uri, false);
        }
        Ok(())
    }

    fn add_filter(&mut self, kind: FilterKind, name: &str) -> Result<(), String> {
        let r = self.r;
        // SAFETY: the request is live during its hook call; the name is copied into its pool.
        let added = unsafe {
            let name = self.pooled(name);
            match kind {
                FilterKind::Output => !ap_add_output_filter(name, ptr::null_mut(), r, (*r).connection).is_null(),
                FilterKind::Input => !ap_add_input_filter(name, ptr::null_mut(), r, (*r).connection).is_null(),
            }
        };
        if added {
            Ok(())
        } else {
            Err(format!("httpd knows no {} filter called {name}", if kind == FilterKind::Output { "output" } else { "input" }))
        }
    }

    fn store(&mut self, store: &StoreBackend, id: &[u8], op: StoreOp<'_>) -> Result<Option<Vec<u8>>, String> {
        // SAFETY: the request is live during its hook call, on this thread.
        unsafe { crate::stores::run(self.r, store, id, op) }
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        self.log_line(level, message)
    }
}
