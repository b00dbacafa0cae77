//! The black-box checks of httpd's own mod_lua tests, as a Wasm extension module. Each
//! behaviour is selected by the handler name (`SetHandler wasm-hello` …):
//!
//! - `wasm-hello`: `Hello Wasm World!` as text/plain
//! - `wasm-201`: status 201, empty body
//! - `wasm-method`: the request method as the body
//! - `wasm-setheaders`: `X-Header: yes` and `X-Host` copied from `Host`
//! - `wasm-setheaderfromparam`: a header named by `?HeaderName=` with value `?HeaderValue=`
//! - translate-name: `/404?translateme=1` is served as `/hello`
use mod_wasm_sdk::{export, HookResult, Module, Request};

#[derive(Default)]
struct Conformance;

fn body(r: &Request, content_type: &str, text: &str) -> HookResult {
    if r.set_content_type(content_type).is_err() || r.write_body(text.as_bytes()).is_err() {
        return HookResult::HttpStatus(500);
    }
    HookResult::Ok
}

impl Module for Conformance {
    fn translate_name(&mut self, r: &Request) -> HookResult {
        if r.uri() == "/404" && r.arg("translateme").as_deref() == Some("1") {
            if r.set_uri("/hello").is_ok() {
                return HookResult::Declined;
            }
        }
        HookResult::Declined
    }

    fn handler(&mut self, r: &Request) -> HookResult {
        match r.handler().as_deref() {
            Some("wasm-hello") => body(r, "text/plain", "Hello Wasm World!\n"),
            Some("wasm-201") => match r.set_status(201) {
                Ok(()) => HookResult::Ok,
                Err(_) => HookResult::HttpStatus(500),
            },
            Some("wasm-method") => body(r, "text/plain", &r.method()),
            Some("wasm-setheaders") => {
                let host = r.headers_in().get("Host").unwrap_or_default();
                let out = r.headers_out();
                if out.set("X-Header", "yes").is_err() || out.set("X-Host", &host).is_err() {
                    return HookResult::HttpStatus(500);
                }
                body(r, "text/plain", "")
            }
            Some("wasm-setheaderfromparam") => {
                let name = r.arg("HeaderName").unwrap_or_default();
                let value = r.arg("HeaderValue").unwrap_or_default();
                match r.headers_out().set(&name, &value) {
                    Ok(()) => body(r, "text/plain", ""),
                    Err(_) => HookResult::HttpStatus(400),
                }
            }
            _ => HookResult::Declined,
        }
    }
}

export!(Conformance => translate_name, handler);
