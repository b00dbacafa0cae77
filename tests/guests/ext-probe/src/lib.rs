//! An extension module for failure and phase tests; the config string picks behaviours:
//!
//! - `panic-fixups`: panics in fixups;
//! - `trap-access`: executes `unreachable` in access-checker;
//! - `trap-if-asked`: the same, when the query string is `trap`;
//! - `spin-fixups`: loops forever in fixups (its WasmTimeout stops it);
//! - `crlf`: tries a header value with CR LF and reports the result in `X-Crlf`;
//! - `wrong-phase`: tries write-body in fixups and reports in `X-Wrong-Phase`;
//! - `authn`: check-user-id takes the user from `X-User` (401 without it);
//! - `deny-private-access`: access-checker refuses (403) a URI containing `/private/`;
//! - `deny-private-authn`: check-user-id refuses (401) a URI containing `/private/`, and
//!   otherwise takes the user from `X-User` (401 without it);
//! - `deny-private-authz`: auth-checker refuses (403) a URI containing `/private/`, and
//!   otherwise authorizes (needs a user: combine it with `authn`);
//! - with any `deny-private-*` word, its phase logs one info line per call,
//!   `ext-probe <phase> uri=<URI>`, so a test can tell which requests, subrequests and
//!   internal redirects reached the guest;
//! - `bad-answers`: access-checker answers what the URI's last segment says: `status-N`
//!   returns http-status(N), `done` returns done (answers httpd gives no meaning there);
//! - `type-acc`: type-checker gives `*.acc` URIs the content type `text/x-wasm-acc` (and
//!   answers ok), so a test can tell whether it ran before mod_mime;
//! - `say-end`: the request's state says on stderr when it is dropped
//!   (`ext-probe: dropped the state of request N`), which the SDK does at request-end;
//! - the handler `ext-probe` answers with the user, the body read in access-checker and
//!   the phases seen in this request, and tells in `X-Instance-Requests` how many requests
//!   this instance has served (more than 1 only under `WasmApacheModuleScope thread`).
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use mod_wasm_sdk::{export, log_info, Error, HookResult, Module, Request};

/// Requests this instance has served: the SDK makes one `Probe` per request.
static REQUESTS: AtomicU32 = AtomicU32::new(0);

struct Probe {
    phases: Vec<&'static str>,
    body_in_access: Option<usize>,
}

/// `say-end` was configured; the serial of the request being served.
static SAY_END: AtomicBool = AtomicBool::new(false);
static SERIAL: AtomicU64 = AtomicU64::new(0);

impl Drop for Probe {
    fn drop(&mut self) {
        if SAY_END.load(Ordering::Relaxed) {
            eprintln!("ext-probe: dropped the state of request {}", SERIAL.load(Ordering::Relaxed));
        }
    }
}

/// Notes what every hook needs to know before it acts.
fn enter(r: &Request) {
    SAY_END.store(has(r, "say-end"), Ordering::Relaxed);
    SERIAL.store(r.serial(), Ordering::Relaxed);
}

impl Default for Probe {
    fn default() -> Self {
        REQUESTS.fetch_add(1, Ordering::Relaxed);
        Probe { phases: Vec::new(), body_in_access: None }
    }
}

fn has(r: &Request, word: &str) -> bool {
    r.module_config().unwrap_or_default().split_whitespace().any(|w| w == word)
}

/// For the `deny-private-*` words: logs the call and tells whether the URI is refused.
fn private_uri(r: &Request, phase: &str) -> bool {
    let uri = r.uri();
    log_info!(r, "ext-probe {phase} uri={uri}");
    uri.contains("/private/")
}

/// check-user-id's answer for a request without a usable `X-User`.
fn unauthorized(r: &Request) -> HookResult {
    let _ = r.err_headers_out().set("WWW-Authenticate", "X-User");
    HookResult::HttpStatus(401)
}

fn describe(result: Result<(), Error>) -> String {
    match result {
        Ok(()) => "accepted".into(),
        Err(Error::InvalidValue(_)) => "invalid-value".into(),
        Err(Error::WrongPhase(_)) => "wrong-phase".into(),
        Err(Error::Io(_)) => "io".into(),
    }
}

impl Module for Probe {
    fn access_checker(&mut self, r: &Request) -> HookResult {
        enter(r);
        self.phases.push("access");
        if has(r, "bad-answers") {
            let uri = r.uri();
            let last = uri.rsplit('/').next().unwrap_or_default();
            if let Some(status) = last.strip_prefix("status-").and_then(|n| n.parse().ok()) {
                return HookResult::HttpStatus(status);
            }
            if last == "done" {
                return HookResult::Done;
            }
        }
        if has(r, "trap-access") || (has(r, "trap-if-asked") && r.args().as_deref() == Some("trap")) {
            #[cfg(target_family = "wasm")]
            core::arch::wasm32::unreachable();
        }
        if has(r, "read-body") {
            self.body_in_access = r.read_body_to_end().ok().map(|b| b.len());
        }
        if has(r, "deny-private-access") && private_uri(r, "access-checker") {
            return HookResult::HttpStatus(403);
        }
        HookResult::Declined
    }

    fn check_user_id(&mut self, r: &Request) -> HookResult {
        self.phases.push("authn");
        if has(r, "deny-private-authn") {
            if private_uri(r, "check-user-id") {
                return unauthorized(r);
            }
        } else if !has(r, "authn") {
            return HookResult::Declined;
        }
        match r.headers_in().get("X-User") {
            Some(user) if r.set_user(Some(&user)).is_ok() => HookResult::Ok,
            _ => unauthorized(r),
        }
    }

    fn auth_checker(&mut self, r: &Request) -> HookResult {
        if !has(r, "deny-private-authz") {
            return HookResult::Declined;
        }
        self.phases.push("authz");
        if private_uri(r, "auth-checker") {
            return HookResult::HttpStatus(403);
        }
        HookResult::Ok
    }

    fn type_checker(&mut self, r: &Request) -> HookResult {
        if has(r, "type-acc") && r.uri().ends_with(".acc") {
            let _ = r.set_content_type("text/x-wasm-acc");
            return HookResult::Ok;
        }
        HookResult::Declined
    }

    fn fixups(&mut self, r: &Request) -> HookResult {
        enter(r);
        self.phases.push("fixups");
        if has(r, "panic-fixups") {
            panic!("ext-probe was told to panic");
        }
        if has(r, "spin-fixups") {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        if has(r, "crlf") {
            let result = r.headers_out().set("X-Injected", "a\r\nSet-Cookie: evil=1");
            let _ = r.err_headers_out().set("X-Crlf", &describe(result));
        }
        if has(r, "wrong-phase") {
            let _ = r.err_headers_out().set("X-Wrong-Phase", &describe(r.write_body(b"early")));
        }
        HookResult::Declined
    }

    fn handler(&mut self, r: &Request) -> HookResult {
        enter(r);
        if r.handler().as_deref() != Some("ext-probe") {
            return HookResult::Declined;
        }
        self.phases.push("handler");
        let text = format!(
            "user={} body_in_access={} phases={}\n",
            r.user().unwrap_or_default(),
            self.body_in_access.map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
            self.phases.join(",")
        );
        let served = REQUESTS.load(Ordering::Relaxed).to_string();
        let written = r.headers_out().set("X-Instance-Requests", &served);
        match written.and_then(|()| r.set_content_type("text/plain")).and_then(|()| r.write_body(text.as_bytes())) {
            Ok(()) => HookResult::Ok,
            Err(_) => HookResult::HttpStatus(500),
        }
    }
}

export!(Probe => access_checker, check_user_id, auth_checker, type_checker, fixups, handler);
