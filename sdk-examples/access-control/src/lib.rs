//! Access control in access-checker: an IP allow-list and a bearer token.
//!
//! ```apache
//! <Location /admin>
//!     WasmApacheModule access_control.wasm "allow 127.0.0.1 10.0.0.0/8; token s3cret"
//! </Location>
//! ```
//!
//! A client outside the allow-list gets 403. With a token configured, a request without
//! `Authorization: Bearer <token>` gets 401 with `WWW-Authenticate: Bearer realm="…"`.
use mod_wasm_sdk::{export, log_info, HookResult, Module, Request};

#[derive(Default)]
struct AccessControl;

/// Whether `ip` (IPv4) is in `rule`: an address or `a.b.c.d/len`.
fn ipv4_matches(rule: &str, ip: &str) -> bool {
    fn parse(s: &str) -> Option<u32> {
        let parts: Vec<u8> = s.split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
        (parts.len() == 4).then(|| u32::from_be_bytes([parts[0], parts[1], parts[2], parts[3]]))
    }
    let (net, len) = rule.split_once('/').unwrap_or((rule, "32"));
    match (parse(net), parse(ip), len.parse::<u32>()) {
        (Some(net), Some(ip), Ok(len)) if len <= 32 => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            net & mask == ip & mask
        }
        _ => rule == ip,
    }
}

impl Module for AccessControl {
    fn access_checker(&mut self, r: &Request) -> HookResult {
        let config = r.module_config().unwrap_or_default();
        let mut allow: Vec<String> = Vec::new();
        let mut token = None;
        for setting in config.split(';').map(str::trim) {
            let mut words = setting.split_whitespace();
            match words.next() {
                Some("allow") => allow.extend(words.map(String::from)),
                Some("token") => token = words.next().map(String::from),
                _ => {}
            }
        }
        let ip = r.useragent_ip();
        if !allow.is_empty() && !allow.iter().any(|rule| ipv4_matches(rule, &ip)) {
            log_info!(r, "access-control: {ip} is not on the allow-list");
            return HookResult::HttpStatus(403);
        }
        if let Some(token) = token {
            let presented = r.headers_in().get("Authorization");
            if presented.as_deref() != Some(format!("Bearer {token}").as_str()) {
                let _ = r.err_headers_out().set("WWW-Authenticate", "Bearer realm=\"mod_wasm\"");
                return HookResult::HttpStatus(401);
            }
        }
        HookResult::Declined
    }
}

export!(AccessControl => access_checker);
