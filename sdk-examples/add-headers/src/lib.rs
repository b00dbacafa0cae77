//! mod_headers in a few lines: the module's config string lists response header edits,
//! separated by `;`:
//!
//! ```apache
//! WasmApacheModule add_headers.wasm "set X-Frame-Options DENY; append Cache-Control no-store; unset Server-Timing"
//! ```
//!
//! `set NAME VALUE` replaces, `append NAME VALUE` merges with a comma, `add NAME VALUE` adds
//! another header line, `unset NAME` removes. Applied in fixups to headers_out and
//! err_headers_out, so error responses carry them too.
use mod_wasm_sdk::{export, log_error, HookResult, Module, Request};

#[derive(Default)]
struct AddHeaders;

impl Module for AddHeaders {
    fn fixups(&mut self, r: &Request) -> HookResult {
        let config = r.module_config().unwrap_or_default();
        for edit in config.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let mut words = edit.splitn(3, ' ');
            let (op, name, value) = (words.next().unwrap_or(""), words.next().unwrap_or(""), words.next());
            let headers = r.err_headers_out();
            let result = match (op, value) {
                ("set", Some(v)) => headers.set(name, v),
                ("append", Some(v)) => headers.merge(name, v),
                ("add", Some(v)) => headers.add(name, v),
                ("unset", None) => {
                    headers.unset(name);
                    r.headers_out().unset(name);
                    Ok(())
                }
                _ => {
                    log_error!(r, "add-headers: cannot understand `{edit}`");
                    continue;
                }
            };
            if let Err(e) = result {
                log_error!(r, "add-headers: `{edit}`: {e:?}");
            }
        }
        HookResult::Declined
    }
}

export!(AddHeaders => fixups);
