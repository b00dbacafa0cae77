//! httpd's error log, with our module index (so `LogLevel wasm:debug` works): a message is
//! always an argument, never a format string.

use std::ffi::CString;
use std::os::raw::{c_char, c_int};

use host::LogLevel;

use crate::ffi::*;

fn log_level(level: LogLevel) -> c_int {
    (match level {
        LogLevel::Emerg => APLOG_EMERG,
        LogLevel::Alert => APLOG_ALERT,
        LogLevel::Crit => APLOG_CRIT,
        LogLevel::Error => APLOG_ERR,
        LogLevel::Warn => APLOG_WARNING,
        LogLevel::Notice => APLOG_NOTICE,
        LogLevel::Info => APLOG_INFO,
        LogLevel::Debug => APLOG_DEBUG,
        LogLevel::Trace1 => APLOG_TRACE1,
        LogLevel::Trace2 => APLOG_TRACE2,
        LogLevel::Trace3 => APLOG_TRACE3,
        LogLevel::Trace4 => APLOG_TRACE4,
        LogLevel::Trace5 => APLOG_TRACE5,
        LogLevel::Trace6 => APLOG_TRACE6,
        LogLevel::Trace7 => APLOG_TRACE7,
        LogLevel::Trace8 => APLOG_TRACE8,
    }) as c_int
}

fn message_cstring(message: &str) -> CString {
    CString::new(message.replace('\0', "\\0")).unwrap_or_default()
}

/// Logs `message` for request `r`; the text is an argument, never the format string.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn log_request(r: *const request_rec, level: LogLevel, message: &str) {
    let text = message_cstring(message);
    // SAFETY: `r` is live (caller); the message is an argument of a constant "%s" format.
    unsafe { ap_log_rerror_(c"mod_wasm".as_ptr(), 0, module_index(), log_level(level), 0, r, c"%s".as_ptr(), text.as_ptr()) };
}

/// Logs `message` for server `s` (outside requests).
///
/// # Safety
/// `s` must be a live server record.
pub unsafe fn log_server(s: *const server_rec, level: LogLevel, message: &str) {
    let text = message_cstring(message);
    // SAFETY: `s` is live (caller); the message is an argument of a constant "%s" format.
    unsafe { ap_log_error_(c"mod_wasm".as_ptr(), 0, module_index(), log_level(level), 0, s, c"%s".as_ptr(), text.as_ptr()) };
}

/// APR's text for a status code.
pub fn status_text(rv: apr_status_t) -> String {
    let mut buf = [0 as c_char; 256];
    // SAFETY: APR writes at most buf.len() bytes, NUL-terminated.
    unsafe {
        apr_strerror(rv, buf.as_mut_ptr(), buf.len() as apr_size_t);
        c_str(buf.as_ptr())
    }
}
