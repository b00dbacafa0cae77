//! Session-backed login: log in once at `/login` with any of httpd's authentication
//! providers (Basic against a password file, LDAP …); the module then keeps the user in a
//! shared store (`WasmSharedStore`) under a random session id sent as a cookie, and
//! check-user-id takes the user from the cookie on later requests — on every child, and on
//! every server that shares a redis store. `/logout` ends the session.
//!
//! Config string: `STORE SECONDS` (e.g. `sessions 3600`): the store and how long a session
//! lasts. Handlers: `session-login`, `session-logout`.

use mod_wasm_sdk::{export, log_error, log_warn, HookResult, Module, Request};

const COOKIE: &str = "wasm_session";

#[derive(Default)]
struct SessionLogin;

/// The parsed config string.
#[derive(Debug, PartialEq)]
struct Settings {
    store: String,
    seconds: u32,
}

fn parse(config: &str) -> Result<Settings, String> {
    let bad = || format!("`{config}` is not `STORE SECONDS` (e.g. `sessions 3600`)");
    match config.split_whitespace().collect::<Vec<_>>().as_slice() {
        [store, seconds] => match seconds.parse::<u32>() {
            Ok(seconds) if seconds > 0 => Ok(Settings { store: (*store).to_owned(), seconds }),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

fn settings(r: &Request) -> Option<Settings> {
    parse(&r.module_config().unwrap_or_default()).map_err(|e| log_error!(r, "session-login: bad config string: {e}")).ok()
}

/// The session id of the request's cookie, if it has a well-formed one.
fn session_id(cookie_header: &str) -> Option<&str> {
    let id = cookie_header.split(';').find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))?;
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// The session id the request's cookies carry, if any.
fn request_session_id(r: &Request) -> Option<String> {
    session_id(&r.headers_in().get_all("Cookie").join("; ")).map(str::to_owned)
}

/// A new session id: 128 random bits, in hex.
fn new_session_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Module for SessionLogin {
    /// The user of a live session; declines otherwise, so that httpd's own authentication
    /// (e.g. Basic) decides.
    fn check_user_id(&mut self, r: &Request) -> HookResult {
        let Some(settings) = settings(r) else { return HookResult::HttpStatus(500) };
        let Some(id) = request_session_id(r) else { return HookResult::Declined };
        match r.shared_store(&settings.store).get(&id) {
            Ok(Some(user)) => match String::from_utf8(user) {
                Ok(user) if r.set_user(Some(&user)).is_ok() => HookResult::Ok,
                _ => HookResult::Declined,
            },
            Ok(None) => HookResult::Declined, // expired or logged out
            Err(e) => {
                log_warn!(r, "session-login: the session store failed: {e:?}");
                HookResult::Declined
            }
        }
    }

    fn handler(&mut self, r: &Request) -> HookResult {
        match r.handler().as_deref() {
            Some("session-login") => login(r),
            Some("session-logout") => logout(r),
            _ => HookResult::Declined,
        }
    }
}

/// `/login`, after httpd authenticated the user: a new session, its cookie, and a redirect
/// to `?next=/path` (a local path) or `/`.
fn login(r: &Request) -> HookResult {
    let Some(settings) = settings(r) else { return HookResult::HttpStatus(500) };
    let Some(user) = r.user() else {
        log_error!(r, "session-login: no user at /login: protect it with AuthType and Require valid-user");
        return HookResult::HttpStatus(500);
    };
    let id = match new_session_id() {
        Ok(id) => id,
        Err(e) => {
            log_error!(r, "session-login: no random session id: {e}");
            return HookResult::HttpStatus(500);
        }
    };
    if let Err(e) = r.shared_store(&settings.store).set(&id, user.as_bytes(), settings.seconds) {
        log_error!(r, "session-login: the session store failed: {e:?}");
        return HookResult::HttpStatus(503);
    }
    let next = r
        .args()
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("next=").map(str::to_owned)))
        .filter(|p| p.starts_with('/') && !p.starts_with("//") && p.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "/".into());
    let secure = if r.is_https() { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={id}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}", settings.seconds);
    let headers = r.headers_out();
    if headers.add("Set-Cookie", &cookie).is_err() || headers.set("Location", &next).is_err() || r.set_status(303).is_err() {
        return HookResult::HttpStatus(500);
    }
    let _ = r.set_content_type("text/plain");
    match r.write_body(format!("logged in as {user}\n").as_bytes()) {
        Ok(()) => HookResult::Ok,
        Err(_) => HookResult::Done, // the client went away
    }
}

/// `/logout`: the session ends here and on every server sharing the store.
fn logout(r: &Request) -> HookResult {
    let Some(settings) = settings(r) else { return HookResult::HttpStatus(500) };
    if let Some(id) = request_session_id(r) {
        if let Err(e) = r.shared_store(&settings.store).delete(&id) {
            log_error!(r, "session-login: the session store failed: {e:?}");
            return HookResult::HttpStatus(503);
        }
    }
    let _ = r.headers_out().add("Set-Cookie", &format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"));
    let _ = r.set_content_type("text/plain");
    match r.write_body(b"logged out\n") {
        Ok(()) => HookResult::Ok,
        Err(_) => HookResult::Done,
    }
}

export!(SessionLogin => check_user_id, handler);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_strings() {
        assert_eq!(parse("sessions 3600"), Ok(Settings { store: "sessions".into(), seconds: 3600 }));
        for bad in ["", "sessions", "sessions 0", "sessions x", "sessions 60 more"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_session_cookie_among_others() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(session_id(&format!("a=b; {COOKIE}={id}; c=d")), Some(id));
        assert_eq!(session_id(&format!("{COOKIE}={id}")), Some(id));
        assert_eq!(session_id(&format!("{COOKIE}x={id}")), None);
        assert_eq!(session_id(&format!("{COOKIE}=short")), None);
        assert_eq!(session_id(&format!("{COOKIE}={}", "z".repeat(32))), None);
        assert_eq!(session_id(""), None);
    }

    #[test]
    fn session_ids_are_new_each_time() {
        let (a, b) = (new_session_id().unwrap(), new_session_id().unwrap());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
