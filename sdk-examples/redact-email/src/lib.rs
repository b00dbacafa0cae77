//! An output filter that replaces every e-mail address in a text response with
//! `[redacted]`:
//!
//! ```apache
//! WasmOutputFilter REDACT /var/www/wasm/redact_email.wasm
//! AddOutputFilterByType REDACT text/html text/plain application/json
//! ```
//!
//! Addresses split across pieces of the body are found too: the filter holds back the
//! trailing run of address characters of a piece (at most 512 bytes) until the next one.
mod redact;

use mod_wasm_sdk::{export, log_warn, ChunkEnd, FilterResult, Module, Request};
use redact::Redactor;

#[derive(Default)]
struct RedactEmail {
    redactor: Redactor,
    started: bool,
}

impl Module for RedactEmail {
    fn output_filter(&mut self, r: &Request, data: Vec<u8>, at: ChunkEnd) -> FilterResult {
        if !self.started {
            self.started = true;
            // Changing compressed bytes would corrupt them. Logged, because the addresses
            // then go out as they are.
            let encoding = r.content_encoding().or_else(|| r.headers_out().get("Content-Encoding"));
            if let Some(encoding) = encoding {
                log_warn!(r, "redact-email: {} is {encoding}-encoded: not redacted", r.uri());
                return FilterResult::Pass;
            }
        }
        FilterResult::Emit(self.redactor.feed(data, at))
    }
}

export!(RedactEmail => output_filter);
