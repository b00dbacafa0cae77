//! A rate limiter (access-checker): at most N requests per client address in each window of
//! S seconds, counted in a shared store (`WasmSharedStore`), so that every child process —
//! and every server sharing a redis store — counts together. Over the limit: 429 with
//! `Retry-After` (the seconds until the window ends).
//!
//! Config string: `STORE N/S`, e.g. `ratelimit 100/60`. If the store cannot be reached the
//! request is let through (fail open) and a warning logged: a limiter should not take the
//! site down with its store.

use std::time::{SystemTime, UNIX_EPOCH};

use mod_wasm_sdk::{export, log_error, log_warn, HookResult, Module, Request};

#[derive(Default)]
struct RateLimit;

/// The parsed config string.
#[derive(Debug, PartialEq)]
struct Settings {
    store: String,
    limit: u32,
    window: u32,
}

fn parse(config: &str) -> Result<Settings, String> {
    let bad = || format!("`{config}` is not `STORE N/SECONDS` (e.g. `ratelimit 100/60`)");
    let mut words = config.split_whitespace();
    let (store, rate) = (words.next().ok_or_else(bad)?, words.next().ok_or_else(bad)?);
    if words.next().is_some() {
        return Err(bad());
    }
    let (limit, window) = rate.split_once('/').ok_or_else(bad)?;
    let (limit, window): (u32, u32) = (limit.parse().map_err(|_| bad())?, window.parse().map_err(|_| bad())?);
    if limit == 0 || window == 0 {
        return Err(bad());
    }
    Ok(Settings { store: store.to_owned(), limit, window })
}

impl Module for RateLimit {
    fn access_checker(&mut self, r: &Request) -> HookResult {
        let settings = match parse(&r.module_config().unwrap_or_default()) {
            Ok(settings) => settings,
            Err(e) => {
                log_error!(r, "rate-limit: bad config string: {e}");
                return HookResult::HttpStatus(500);
            }
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let window = now / u64::from(settings.window);
        let retry_after = (window + 1) * u64::from(settings.window) - now;
        let key = format!("{}:{window}", r.useragent_ip());
        let store = r.shared_store(&settings.store);
        let count = match store.get(&key) {
            Ok(value) => value.and_then(|v| String::from_utf8(v).ok()?.parse::<u32>().ok()).unwrap_or(0),
            Err(e) => {
                log_warn!(r, "rate-limit: letting the request through, the store failed: {e:?}");
                return HookResult::Declined;
            }
        };
        if count >= settings.limit {
            let _ = r.err_headers_out().set("Retry-After", &retry_after.to_string());
            return HookResult::HttpStatus(429);
        }
        // The entry outlives its window by a little, never by more than one window.
        if let Err(e) = store.set(&key, (count + 1).to_string().as_bytes(), retry_after as u32 + 1) {
            log_warn!(r, "rate-limit: the request was not counted, the store failed: {e:?}");
        }
        HookResult::Declined
    }
}

export!(RateLimit => access_checker);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_strings() {
        assert_eq!(parse("ratelimit 100/60"), Ok(Settings { store: "ratelimit".into(), limit: 100, window: 60 }));
        for bad in ["", "ratelimit", "ratelimit 100", "ratelimit 0/60", "ratelimit 5/0", "ratelimit 5/60 extra", "r a/b"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
