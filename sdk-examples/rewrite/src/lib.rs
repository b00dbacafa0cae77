//! URL rewriting in translate-name, like a small mod_rewrite.
//!
//! ```apache
//! WasmApacheModule rewrite.wasm "rewrite /old/ /new/; redirect /moved/ https://example.org/"
//! ```
//!
//! `rewrite FROM TO` replaces the prefix FROM of the path with TO and lets httpd map the new
//! path (the configuration of the new path applies, its `<Location>` included).
//! `redirect FROM TO` answers 301 with `Location: TO` followed by the rest of the path.
use mod_wasm_sdk::{export, log_debug, HookResult, Module, Request};

#[derive(Default)]
struct Rewrite;

impl Module for Rewrite {
    fn translate_name(&mut self, r: &Request) -> HookResult {
        let uri = r.uri();
        let config = r.module_config().unwrap_or_default();
        for rule in config.split(';').map(str::trim) {
            let words: Vec<&str> = rule.split_whitespace().collect();
            let [op, from, to] = words[..] else { continue };
            let Some(rest) = uri.strip_prefix(from) else { continue };
            match op {
                "rewrite" => {
                    let new = format!("{to}{rest}");
                    log_debug!(r, "rewrite: {uri} -> {new}");
                    if r.set_uri(&new).is_ok() {
                        return HookResult::Declined;
                    }
                }
                "redirect" => {
                    let mut location = format!("{to}{rest}");
                    if let Some(args) = r.args() {
                        location = format!("{location}?{args}");
                    }
                    if r.headers_out().set("Location", &location).is_ok() {
                        return HookResult::HttpStatus(301);
                    }
                }
                _ => {}
            }
        }
        HookResult::Declined
    }
}

export!(Rewrite => translate_name);
