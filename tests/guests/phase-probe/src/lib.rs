//! An extension module for the early and late phases (post-read-request, quick-handler,
//! pre-translate-name, map-to-storage, insert-filter). Every hook it exports logs one info
//! line, `phase-probe <phase> uri=<URI>`, so a test can tell which phases ran, in which
//! order, for which request. The config string picks what else it does:
//!
//! - `quick`: quick-handler serves URIs under `/quick/` itself (`quick: <URI>`);
//! - `keep-escapes`: pre-translate-name answers done, so httpd does not decode the URI;
//! - `not-storage`: map-to-storage answers ok for URIs under `/virtual/`, so httpd skips its
//!   `<Directory>` walk for them;
//! - `insert=NAME`: insert-filter adds the output filter NAME;
//! - `trap-insert`: insert-filter executes `unreachable`;
//! - `status-insert`: insert-filter answers http-status(403), which httpd cannot honour;
//! - the handler `phase-probe` answers `phase-probe handler uri=<URI>`; with a query string
//!   it runs a shared-store operation instead and answers its result (and logs
//!   `phase-probe store <query> -> <result>`): `get:STORE:KEY`, `set:STORE:KEY:VALUE` (kept
//!   60 s), `del:STORE:KEY`, `big:STORE:KEY:N` (sets a value of N bytes); `lookup-uri:URI`,
//!   `lookup-file:PATH` (answers the lookup's fields), `include:URI` (writes `before|`, the
//!   included body, `|after status=N`), `redirect:URI`, `redirect-self` (an internal
//!   redirect to this very URI, query included: a loop httpd must stop),
//!   `redirect-then-status:URI` (redirects, then answers http-status(500)),
//!   `write-then-redirect:URI` (writes, then tries to redirect), `write-then-trap:N` (writes
//!   N bytes of `x`, then executes `unreachable`), `write-then-decline:N` (writes N bytes of
//!   `x` and declines; on a line whose config says `second`, tries to redirect to
//!   `/page.txt` instead and answers `|error=…` if it may not);
//! - with `quick`, quick-handler answers `/quick/lookup-file` with a lookup of `page.txt`
//!   (before httpd has mapped the request to any file).
//!
//! As an authorization provider (`WasmAuthzProvider`), it logs
//! `phase-probe authz-provider uri=<URI> user=<user or -> line=<line>` and answers what the
//! `Require` line says: `granted`, `denied`, `neutral`, `error`; `trap` executes
//! `unreachable`; `header=NAME:VALUE` grants when the request header NAME is VALUE and denies
//! otherwise; `user` grants when a user is known and answers denied-no-user otherwise.
use mod_wasm_sdk::{export, log_info, AuthzResult, HookResult, Module, Request};

#[derive(Default)]
struct Probe;

fn has(r: &Request, word: &str) -> bool {
    words(r).iter().any(|w| w == word)
}

fn words(r: &Request) -> Vec<String> {
    r.module_config().unwrap_or_default().split_whitespace().map(str::to_owned).collect()
}

/// Writes `text` as the response and answers ok.
fn answer(r: &Request, text: &str) -> HookResult {
    match r.write_body(text.as_bytes()) {
        Ok(()) => HookResult::Ok,
        Err(e) => panic!("phase-probe: write-body: {e:?}"),
    }
}

fn seen(r: &Request, phase: &str) {
    log_info!(r, "phase-probe {phase} uri={}", r.uri());
}

impl Module for Probe {
    fn post_read_request(&mut self, r: &Request) -> HookResult {
        seen(r, "post-read-request");
        HookResult::Declined
    }

    fn quick_handler(&mut self, r: &Request) -> HookResult {
        seen(r, "quick-handler");
        if !has(r, "quick") || !r.uri().starts_with("/quick/") {
            return HookResult::Declined;
        }
        let _ = r.set_content_type("text/plain");
        if r.uri() == "/quick/lookup-file" {
            return answer(r, &format!("{:?}\n", r.lookup_file("page.txt").map(|l| l.status)));
        }
        answer(r, &format!("quick: {}\n", r.uri()))
    }

    fn pre_translate_name(&mut self, r: &Request) -> HookResult {
        seen(r, "pre-translate-name");
        if has(r, "keep-escapes") {
            HookResult::Done
        } else {
            HookResult::Declined
        }
    }

    fn translate_name(&mut self, r: &Request) -> HookResult {
        seen(r, "translate-name");
        HookResult::Declined
    }

    fn map_to_storage(&mut self, r: &Request) -> HookResult {
        seen(r, "map-to-storage");
        if has(r, "not-storage") && r.uri().starts_with("/virtual/") {
            HookResult::Ok
        } else {
            HookResult::Declined
        }
    }

    fn insert_filter(&mut self, r: &Request) -> HookResult {
        seen(r, "insert-filter");
        if has(r, "trap-insert") {
            core::arch::wasm32::unreachable();
        }
        if has(r, "status-insert") {
            return HookResult::HttpStatus(403);
        }
        for word in words(r) {
            if let Some(name) = word.strip_prefix("insert=") {
                if let Err(e) = r.add_output_filter(name) {
                    panic!("phase-probe: cannot add {name}: {e:?}");
                }
            }
        }
        HookResult::Ok
    }

    fn authz_provider(&mut self, r: &Request, line: String) -> AuthzResult {
        let user = r.user();
        log_info!(r, "phase-probe authz-provider uri={} user={} line={line}", r.uri(), user.as_deref().unwrap_or("-"));
        match line.trim() {
            "granted" => AuthzResult::Granted,
            "denied" => AuthzResult::Denied,
            "neutral" => AuthzResult::Neutral,
            "error" => AuthzResult::GeneralError,
            "trap" => core::arch::wasm32::unreachable(),
            "user" if user.is_some() => AuthzResult::Granted,
            "user" => AuthzResult::DeniedNoUser,
            other => match other.strip_prefix("header=").and_then(|h| h.split_once(':')) {
                Some((name, value)) if r.headers_in().get(name).as_deref() == Some(value) => AuthzResult::Granted,
                Some(_) => AuthzResult::Denied,
                None => panic!("phase-probe: no such authz word: {other}"),
            },
        }
    }

    fn handler(&mut self, r: &Request) -> HookResult {
        if r.handler().as_deref() != Some("phase-probe") {
            return HookResult::Declined;
        }
        seen(r, "handler");
        let _ = r.set_content_type("text/plain");
        if let Some(query) = r.args() {
            if let Some(done) = subrequest_op(r, &query) {
                return done;
            }
            let result = store_op(r, &query);
            log_info!(r, "phase-probe store {query} -> {result}");
            return answer(r, &format!("{result}\n"));
        }
        answer(r, &format!("phase-probe handler uri={}\n", r.uri()))
    }
}

/// Runs the subrequest or redirect a query string names, if it names one.
fn subrequest_op(r: &Request, query: &str) -> Option<HookResult> {
    let write = |text: String| answer(r, &text);
    let shown = |found: Result<mod_wasm_sdk::Lookup, mod_wasm_sdk::Error>| match found {
        Ok(l) => format!(
            "status={} filename={} exists={} type={} handler={}\n",
            l.status,
            l.filename.as_deref().unwrap_or("-"),
            l.exists,
            l.content_type.as_deref().unwrap_or("-"),
            l.handler.as_deref().unwrap_or("-")
        ),
        Err(e) => format!("error={e:?}\n"),
    };
    if let Some(uri) = query.strip_prefix("lookup-uri:") {
        return Some(write(shown(r.lookup_uri(uri))));
    }
    if let Some(path) = query.strip_prefix("lookup-file:") {
        return Some(write(shown(r.lookup_file(path))));
    }
    if let Some(uri) = query.strip_prefix("include:") {
        let _ = r.write_body(b"before|");
        let status = match r.include_uri(uri) {
            Ok(status) => status.to_string(),
            Err(e) => format!("{e:?}"),
        };
        return Some(write(format!("|after status={status}\n")));
    }
    if let Some(n) = query.strip_prefix("write-then-trap:") {
        let _ = r.write_body(&vec![b'x'; n.parse().unwrap_or(0)]);
        core::arch::wasm32::unreachable();
    }
    if let Some(uri) = query.strip_prefix("redirect-then-status:") {
        let _ = r.internal_redirect(uri);
        return Some(HookResult::HttpStatus(500));
    }
    if let Some(n) = query.strip_prefix("write-then-decline:") {
        if has(r, "second") {
            return Some(match r.internal_redirect("/page.txt") {
                Ok(()) => HookResult::Ok,
                Err(e) => write(format!("|error={e:?}\n")),
            });
        }
        let _ = r.write_body(&vec![b'x'; n.parse().unwrap_or(0)]);
        return Some(HookResult::Declined);
    }
    if let Some(uri) = query.strip_prefix("write-then-redirect:") {
        let _ = r.write_body(b"written|");
        return Some(match r.internal_redirect(uri) {
            Ok(()) => HookResult::Ok,
            Err(e) => write(format!("error={e:?}\n")),
        });
    }
    let target = match query.strip_prefix("redirect:") {
        Some(uri) => uri.to_owned(),
        None if query == "redirect-self" => r.unparsed_uri(),
        None => return None,
    };
    Some(match r.internal_redirect(&target) {
        Ok(()) => HookResult::Ok,
        Err(e) => write(format!("error={e:?}\n")),
    })
}

/// Runs the shared-store operation a query string names; the result as text.
fn store_op(r: &Request, query: &str) -> String {
    let parts: Vec<&str> = query.splitn(4, ':').collect();
    let shown = |result: Result<Option<Vec<u8>>, mod_wasm_sdk::Error>| match result {
        Ok(Some(value)) => format!("value={}", String::from_utf8_lossy(&value)),
        Ok(None) => "none".to_owned(),
        Err(e) => format!("error={e:?}"),
    };
    match parts.as_slice() {
        ["get", store, key] => shown(r.shared_store(store).get(key)),
        ["set", store, key, value] => shown(r.shared_store(store).set(key, value.as_bytes(), 60).map(|()| None)),
        ["del", store, key] => shown(r.shared_store(store).delete(key).map(|()| None)),
        ["big", store, key, n] => {
            let value = vec![b'x'; n.parse().unwrap_or(0)];
            shown(r.shared_store(store).set(key, &value, 60).map(|()| None))
        }
        _ => format!("error=bad query {query}"),
    }
}

export!(Probe => authz_provider, post_read_request, quick_handler, pre_translate_name, translate_name, map_to_storage, insert_filter, handler);
