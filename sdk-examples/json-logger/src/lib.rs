//! An access log in JSON, written in log-transaction to httpd's error log (level notice,
//! prefixed `access:`), one object per request.
//!
//! ```apache
//! WasmApacheModule json_logger.wasm
//! ```
use mod_wasm_sdk::{export, HookResult, LogLevel, Module, Request};

#[derive(Default)]
struct JsonLogger;

fn json(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Module for JsonLogger {
    fn log_transaction(&mut self, r: &Request) -> HookResult {
        let line = format!(
            "access: {{\"client\":{},\"method\":{},\"uri\":{},\"query\":{},\"status\":{},\"user_agent\":{},\"bytes_type\":{}}}",
            json(&r.useragent_ip()),
            json(&r.method()),
            json(&r.uri()),
            r.args().map(|a| json(&a)).unwrap_or_else(|| "null".into()),
            r.status(),
            json(&r.headers_in().get("User-Agent").unwrap_or_default()),
            r.content_type().map(|t| json(&t)).unwrap_or_else(|| "null".into()),
        );
        r.log(LogLevel::Notice, &line);
        HookResult::Ok
    }
}

export!(JsonLogger => log_transaction);
