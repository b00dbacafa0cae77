//! A JSON API served by the handler phase, for requests whose handler is `json-api`:
//!
//! ```apache
//! WasmApacheModule json_api.wasm
//! <Location /api>
//!     SetHandler json-api
//! </Location>
//! ```
//!
//! It answers with the method, the path below the location, the query parameters and the
//! request body's size and text; `POST` answers 201, `DELETE` 405 with a JSON error.
use mod_wasm_sdk::{export, HookResult, Module, Request};

#[derive(Default)]
struct JsonApi;

/// A JSON string literal.
fn json(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Module for JsonApi {
    fn handler(&mut self, r: &Request) -> HookResult {
        if r.handler().as_deref() != Some("json-api") {
            return HookResult::Declined;
        }
        let method = r.method();
        if method == "DELETE" {
            // Answered here rather than with HttpStatus(405), to keep the body JSON.
            return reply(r, 405, "{\"error\":\"method not allowed\"}\n");
        }
        let body = match r.read_body_to_end() {
            Ok(body) => body,
            Err(_) => return HookResult::HttpStatus(400),
        };
        let params: Vec<String> = r
            .args()
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                format!("{}:{}", json(k), json(v))
            })
            .collect();
        let document = format!(
            "{{\"method\":{},\"path\":{},\"params\":{{{}}},\"body_length\":{},\"body\":{}}}\n",
            json(&method),
            json(&r.path_info().unwrap_or_default()),
            params.join(","),
            body.len(),
            json(&String::from_utf8_lossy(&body)),
        );
        reply(r, if method == "POST" { 201 } else { 200 }, &document)
    }
}

fn reply(r: &Request, status: u16, json: &str) -> HookResult {
    if r.set_status(status).and_then(|()| r.set_content_type("application/json")).is_err() {
        return HookResult::HttpStatus(500);
    }
    match r.write_body(json.as_bytes()) {
        Ok(()) => HookResult::Ok,
        // The client is gone: nothing more to send.
        Err(_) => HookResult::Done,
    }
}

export!(JsonApi => handler);
