//! Every directive value mod_wasm reads, parsed here and only here, with the error text an
//! administrator sees at startup (mod_wasm adds the file and line). mod_wasm's directive
//! handlers split a line into its arguments and hand each value to one of these.

use std::time::Duration;

use crate::limits::MAX_MEMORY_LIMIT;
use crate::phase::{HookOrder, Provides, Scope};

/// Parses a duration the way httpd's `Timeout` reads one (a number with `ms`, `s` (the
/// default), `mi` or `h`), and also with a fraction (`1.5s`) and `m`/`min` for minutes.
pub fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a duration (like 30, 30s, 500ms, 2mi)"))?;
    let seconds = match unit.trim().to_ascii_lowercase().as_str() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "mi" | "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown unit `{other}` in `{text}` (use ms, s, mi or h)")),
    };
    if !seconds.is_finite() || !(0.001..=86_400.0).contains(&seconds) {
        return Err(format!("`{text}` is out of range (at least 1ms, at most 24h)"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses a size: a whole number of bytes, or with `K`, `M` or `G` (binary multiples).
pub fn size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number.parse().map_err(|_| format!("`{text}` is not a size (like 64M, 512K, 1G)"))?;
    let shift = match unit.trim().to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        _ => return Err(format!("unknown unit in `{text}` (use K, M or G)")),
    };
    let bytes = value.checked_shl(shift).filter(|b| b >> shift == value).ok_or(format!("`{text}` is too large"))?;
    if bytes == 0 || bytes > MAX_MEMORY_LIMIT {
        return Err(format!("`{text}` is out of range (more than 0, at most 4G)"));
    }
    Ok(bytes)
}

/// An origin outgoing requests may go to (`WasmHttpOutgoing`): scheme, host and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// Parses `http://host[:port]` or `https://host[:port]`, nothing after the authority.
    pub fn parse(text: &str) -> Result<Origin, String> {
        let bad = |why: &str| format!("`{text}` is not an origin ({why}; like http://127.0.0.1:8080 or https://api.example.com)");
        let uri: http::Uri = text.parse().map_err(|_| bad("not a URL"))?;
        let scheme = uri.scheme_str().ok_or_else(|| bad("no scheme"))?.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad("the scheme must be http or https"));
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("user information is not allowed"));
        }
        if uri.path_and_query().is_some_and(|p| p.as_str() != "/") || text.trim_end_matches('/').len() < text.len() - 1 {
            return Err(bad("an origin has no path"));
        }
        Origin::of(&uri).ok_or_else(|| bad("no host"))
    }

    /// The origin a request URI goes to.
    pub fn of(uri: &http::Uri) -> Option<Origin> {
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let host = uri.host()?.to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
        Some(Origin { scheme, host, port })
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// An environment variable's name (`WasmEnv NAME value`): not empty, no `=`.
pub fn env_name(name: &str) -> Result<&str, String> {
    if name.is_empty() || name.contains('=') {
        return Err(format!("`{name}` is not a valid environment variable name"));
    }
    Ok(name)
}

/// The name a filter or an authorization provider is defined under (`WasmOutputFilter NAME
/// …`): letters, digits, `_`, `-` or `.`.
pub fn definition_name(name: &str, provides: Provides) -> Result<&str, String> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)) {
        let noun = if provides == Provides::Authz { "provider" } else { "filter" };
        return Err(format!("`{name}` is not a {noun} name (letters, digits, _ - .)"));
    }
    Ok(name)
}

/// The longest shared store name.
pub const MAX_STORE_NAME: usize = 32;

/// A shared store's name (`WasmSharedStore NAME …`): 1 to [`MAX_STORE_NAME`] letters,
/// digits, `_`, `-` or `.`.
pub fn store_name(name: &str) -> Result<&str, String> {
    let valid = !name.is_empty() && name.len() <= MAX_STORE_NAME && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if valid {
        Ok(name)
    } else {
        Err(format!("`{name}` is not a store name (1 to {MAX_STORE_NAME} letters, digits, _ - .)"))
    }
}

/// A shared store's provider (`WasmSharedStore NAME provider[:args]`): httpd's socache
/// provider name and the arguments it is created with, if any.
pub fn store_provider(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once(':') {
        Some((provider, args)) => (provider, Some(args)),
        None => (spec, None),
    }
}

/// `WasmCacheDir Off | DIR`: the directory, or `None` for `Off` (any case).
pub fn cache_dir(arg: &str) -> Option<&str> {
    (!arg.eq_ignore_ascii_case("off")).then_some(arg)
}

/// A hook position (the last argument of `WasmApacheModule`): `first`, `middle` or `last`.
pub fn hook_order(word: &str) -> Result<HookOrder, String> {
    match word.to_ascii_lowercase().as_str() {
        "first" => Ok(HookOrder::First),
        "middle" => Ok(HookOrder::Middle),
        "last" => Ok(HookOrder::Last),
        _ => Err(format!("`{word}` is not a hook position: use first, middle or last")),
    }
}

/// `WasmApacheModuleScope request | server [max]`.
pub fn scope(word: &str, max: Option<&str>) -> Result<Scope, String> {
    match (word.to_ascii_lowercase().as_str(), max) {
        ("request", None) => Ok(Scope::Request),
        ("request", Some(_)) => Err("request takes no maximum: its instances are never kept".into()),
        ("server", None) => Ok(Scope::Server { max: None }),
        ("server", Some(max)) => match max.parse::<u32>() {
            Ok(n) if n >= 1 => Ok(Scope::Server { max: Some(n) }),
            _ => Err(format!("`{max}` is not a number of instances (1 or more)")),
        },
        _ => Err(format!("`{word}` is not a scope: use request or server")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        // httpd's Timeout syntax (ap_timeout_parameter_parse).
        assert_eq!(duration("2mi"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert!(duration("10 parsecs").unwrap_err().contains("unknown unit"));
        assert!(duration("0").is_err());
        // Found by the fuzzer: positive, but zero once converted.
        assert!(duration(".0000000000000000000000001").is_err());
        assert!(duration("fast").is_err());
        assert!(duration("48h").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(size("65536"), Ok(65536));
        assert_eq!(size("64K"), Ok(64 << 10));
        assert_eq!(size("128M"), Ok(128 << 20));
        assert_eq!(size("1g"), Ok(1 << 30));
        assert_eq!(size("256MiB"), Ok(256 << 20));
        assert!(size("5G").unwrap_err().contains("out of range"));
        assert!(size("12X").unwrap_err().contains("unknown unit"));
        assert!(size("99999999999999999999G").is_err());
        assert!(size("-1M").is_err());
    }

    #[test]
    fn origins() {
        let o = Origin::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(o, Origin { scheme: "http".into(), host: "127.0.0.1".into(), port: 8080 });
        assert_eq!(Origin::parse("HTTPS://API.Example.com/").unwrap().to_string(), "https://api.example.com:443");
        assert_eq!(Origin::parse("http://example.com").unwrap().port, 80);
        for bad in ["127.0.0.1:8080", "ftp://example.com", "http://example.com/path", "http://u@example.com", "http://"] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
        let uri: http::Uri = "http://Example.COM/x?y".parse().unwrap();
        assert_eq!(Origin::of(&uri), Some(Origin::parse("http://example.com:80").unwrap()));
    }

    #[test]
    fn names() {
        assert_eq!(env_name("APP_MODE"), Ok("APP_MODE"));
        assert!(env_name("A=B").is_err() && env_name("").is_err());
        assert_eq!(definition_name("INJECT-1.x", Provides::Authz), Ok("INJECT-1.x"));
        assert!(definition_name("a b", Provides::Authz).unwrap_err().contains("provider name"));
        assert!(definition_name("", Provides::Filter(crate::phase::FilterKind::Output)).unwrap_err().contains("filter name"));
    }

    #[test]
    fn stores_and_cache() {
        assert_eq!(store_name("sessions-1.a_b"), Ok("sessions-1.a_b"));
        for bad in ["", "a b", "x:y", &"n".repeat(MAX_STORE_NAME + 1)] {
            assert!(store_name(bad).unwrap_err().contains("not a store name"), "{bad}");
        }
        assert_eq!(store_provider("shmcb:/run/x(64000)"), ("shmcb", Some("/run/x(64000)")));
        assert_eq!(store_provider("redis:127.0.0.1:6379"), ("redis", Some("127.0.0.1:6379")));
        assert_eq!(store_provider("dbm"), ("dbm", None));
        assert_eq!(cache_dir("OFF"), None);
        assert_eq!(cache_dir("/var/cache/x"), Some("/var/cache/x"));
    }

    #[test]
    fn hook_orders_and_scopes() {
        assert_eq!(hook_order("FIRST"), Ok(HookOrder::First));
        assert!(hook_order("sideways").unwrap_err().contains("not a hook position"));
        assert_eq!(scope("server", Some("4")), Ok(Scope::Server { max: Some(4) }));
        assert_eq!(scope("Request", None), Ok(Scope::Request));
        assert!(scope("request", Some("2")).is_err());
        assert!(scope("server", Some("0")).is_err());
        assert!(scope("thread", None).is_err());
    }
}
