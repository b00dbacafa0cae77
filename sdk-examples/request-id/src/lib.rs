//! A request id: made in header-parser (or taken from the client's `X-Request-Id`), kept in
//! the module's state, sent back in fixups and logged in log-transaction, showing that one
//! instance serves all phases of a request.
//!
//! ```apache
//! WasmApacheModule request_id.wasm
//! ```
use std::time::{SystemTime, UNIX_EPOCH};

use mod_wasm_sdk::{export, log, HookResult, LogLevel, Module, Request};

#[derive(Default)]
struct RequestId {
    id: Option<String>,
    phases_seen: u32,
}

impl Module for RequestId {
    fn header_parser(&mut self, r: &Request) -> HookResult {
        let id = match r.headers_in().get("X-Request-Id") {
            Some(given) if !given.is_empty() && given.len() <= 64 => given,
            _ => {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
                match r.log_id() {
                    Some(log_id) => format!("{:x}-{log_id}", now.as_nanos()),
                    None => format!("{:x}", now.as_nanos()),
                }
            }
        };
        let _ = r.notes().set("request-id", &id);
        self.id = Some(id);
        self.phases_seen += 1;
        HookResult::Declined
    }

    fn fixups(&mut self, r: &Request) -> HookResult {
        if let Some(id) = &self.id {
            let _ = r.err_headers_out().set("X-Request-Id", id);
        }
        self.phases_seen += 1;
        HookResult::Declined
    }

    fn log_transaction(&mut self, r: &Request) -> HookResult {
        self.phases_seen += 1;
        let id = self.id.as_deref().unwrap_or("-");
        log!(r, LogLevel::Notice, "request-id {id} status {} phases {}", r.status(), self.phases_seen);
        HookResult::Ok
    }
}

export!(RequestId => header_parser, fixups, log_transaction);
