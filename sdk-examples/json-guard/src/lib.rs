//! An input filter that lets a request body through only if it is well-formed JSON, up to
//! a size limit (the config string, `max 1M`; K, M and G are powers of 1024):
//!
//! ```apache
//! WasmInputFilter JSONCHECK /var/www/wasm/json_guard.wasm "max 1M"
//! <Location /api>
//!     SetInputFilter JSONCHECK
//! </Location>
//! ```
//!
//! A body over the limit is refused with 413, one that is not JSON with 400 (and a warning
//! in the error log saying why). An empty body passes.
mod json;

use mod_wasm_sdk::{export, log_error, log_info, log_warn, ChunkEnd, FilterResult, Module, Request};

/// The limit without a config string.
const DEFAULT_LIMIT: usize = 1 << 20;

#[derive(Default)]
struct JsonGuard {
    /// The body so far: a JSON document can only be checked whole.
    body: Vec<u8>,
    /// Read from the config string on the first piece.
    limit: Option<usize>,
}

impl Module for JsonGuard {
    fn input_filter(&mut self, r: &Request, data: Vec<u8>, at: ChunkEnd) -> FilterResult {
        let limit = match self.limit {
            Some(limit) => limit,
            None => match parse_limit(r.module_config().as_deref()) {
                Ok(limit) => *self.limit.insert(limit),
                Err(e) => {
                    log_error!(r, "json-guard: bad config string: {e}");
                    return FilterResult::HttpStatus(500);
                }
            },
        };
        if self.body.len() + data.len() > limit {
            log_info!(r, "json-guard: request body over {limit} bytes");
            return FilterResult::HttpStatus(413);
        }
        self.body.extend_from_slice(&data);
        // A flush too: the handler gets nothing before the whole body has been checked.
        if at != ChunkEnd::End {
            return FilterResult::Emit(Vec::new());
        }
        let body = std::mem::take(&mut self.body);
        // No body at all (a GET): nothing to check; whether one is needed is the handler's call.
        if body.is_empty() {
            return FilterResult::Emit(body);
        }
        match json::validate(&body) {
            Ok(()) => FilterResult::Emit(body),
            Err(reason) => {
                log_warn!(r, "json-guard: invalid JSON: {reason}");
                FilterResult::HttpStatus(400)
            }
        }
    }
}

/// The body size limit from a config string `max SIZE`: bytes, or a number with K, M or G.
fn parse_limit(config: Option<&str>) -> Result<usize, String> {
    let Some(config) = config.filter(|c| !c.trim().is_empty()) else {
        return Ok(DEFAULT_LIMIT);
    };
    let words: Vec<&str> = config.split_whitespace().collect();
    let ["max", size] = words[..] else {
        return Err(format!("expected \"max SIZE\", got {config:?}"));
    };
    let (digits, unit) = match size.as_bytes()[size.len() - 1].to_ascii_uppercase() {
        b'K' => (&size[..size.len() - 1], 1 << 10),
        b'M' => (&size[..size.len() - 1], 1 << 20),
        b'G' => (&size[..size.len() - 1], 1 << 30),
        _ => (size, 1),
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("{size:?} is not a size (bytes, or a number with K, M or G)"))
}

export!(JsonGuard => input_filter);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_limit() {
        assert_eq!(parse_limit(Some("max 1M")), Ok(1 << 20));
        assert_eq!(parse_limit(Some(" max  64k ")), Ok(64 << 10));
        assert_eq!(parse_limit(Some("max 1G")), Ok(1 << 30));
        assert_eq!(parse_limit(Some("max 1000")), Ok(1000));
        assert_eq!(parse_limit(None), Ok(DEFAULT_LIMIT));
        assert!(parse_limit(Some("max")).is_err());
        assert!(parse_limit(Some("max 1T")).is_err());
        assert!(parse_limit(Some("max -1")).is_err());
        assert!(parse_limit(Some("max M")).is_err());
        assert!(parse_limit(Some("1M")).is_err());
        assert!(parse_limit(Some("max 1M extra")).is_err());
    }
}
