//! An authorization provider (`WasmAuthzProvider`): `Require office-hours 08:00-18:00` lets
//! requests through only during the given times of day.
//!
//! - The `Require` line lists one or more ranges `HH:MM-HH:MM`; the start is included, the
//!   end is not; `24:00` is the end of the day, and a range may run past midnight
//!   (`22:00-06:00`).
//! - Times are UTC, or UTC plus the fixed offset the config string gives (`+01:00`,
//!   `-05:30`). Daylight saving time is not followed.
//! - A line or config string of any other form answers a general error (httpd's 500) with
//!   an error-log line saying what is wrong.

use std::time::{SystemTime, UNIX_EPOCH};

use mod_wasm_sdk::{export, log_error, AuthzResult, Module, Request};

const DAY: u32 = 24 * 60;

#[derive(Default)]
struct OfficeHours;

impl Module for OfficeHours {
    fn authz_provider(&mut self, r: &Request, require_line: String) -> AuthzResult {
        let offset = match r.module_config().as_deref().map(parse_offset).unwrap_or(Ok(0)) {
            Ok(offset) => offset,
            Err(e) => {
                log_error!(r, "office-hours: bad config string: {e}");
                return AuthzResult::GeneralError;
            }
        };
        let ranges = match parse_ranges(&require_line) {
            Ok(ranges) => ranges,
            Err(e) => {
                log_error!(r, "office-hours: Require office-hours {require_line}: {e}");
                return AuthzResult::GeneralError;
            }
        };
        let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let minute = ((seconds / 60) as i64 + offset as i64).rem_euclid(DAY as i64) as u32;
        if ranges.iter().any(|range| range.contains(minute)) {
            AuthzResult::Granted
        } else {
            AuthzResult::Denied
        }
    }
}

export!(OfficeHours => authz_provider);

/// A time range in minutes since midnight, the end excluded.
#[derive(Debug, PartialEq)]
struct Range {
    start: u32,
    end: u32,
}

impl Range {
    fn contains(&self, minute: u32) -> bool {
        if self.start <= self.end {
            self.start <= minute && minute < self.end
        } else {
            // Past midnight: 22:00-06:00.
            minute >= self.start || minute < self.end
        }
    }
}

/// `HH:MM`, 00:00 to 24:00, in minutes.
fn parse_time(text: &str) -> Result<u32, String> {
    let bad = || format!("`{text}` is not a time (HH:MM, 00:00 to 24:00)");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m >= 60 || h * 60 + m > DAY {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// The `Require` line's arguments: one or more `HH:MM-HH:MM`.
fn parse_ranges(line: &str) -> Result<Vec<Range>, String> {
    let ranges = line
        .split_whitespace()
        .map(|word| {
            let (start, end) = word.split_once('-').ok_or_else(|| format!("`{word}` is not a range (HH:MM-HH:MM)"))?;
            Ok(Range { start: parse_time(start)?, end: parse_time(end)? })
        })
        .collect::<Result<Vec<_>, String>>()?;
    if ranges.is_empty() {
        return Err("no time range given (Require office-hours HH:MM-HH:MM ...)".into());
    }
    Ok(ranges)
}

/// The config string: a fixed offset from UTC, `+HH:MM` or `-HH:MM`, in minutes.
fn parse_offset(text: &str) -> Result<i32, String> {
    let text = text.trim();
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(format!("`{text}` is not an offset from UTC (+HH:MM or -HH:MM)")),
    };
    let minutes = parse_time(rest).map_err(|_| format!("`{text}` is not an offset from UTC (+HH:MM or -HH:MM)"))?;
    Ok(sign * minutes as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_include_their_start_and_not_their_end() {
        let day = &parse_ranges("08:00-18:00").unwrap()[0];
        assert!(!day.contains(7 * 60 + 59) && day.contains(8 * 60) && day.contains(17 * 60 + 59) && !day.contains(18 * 60));
        let always = &parse_ranges("00:00-24:00").unwrap()[0];
        assert!((0..DAY).all(|m| always.contains(m)));
        let never = &parse_ranges("00:00-00:00").unwrap()[0];
        assert!((0..DAY).all(|m| !never.contains(m)));
    }

    #[test]
    fn a_range_may_run_past_midnight() {
        let night = &parse_ranges("22:00-06:00").unwrap()[0];
        assert!(night.contains(23 * 60) && night.contains(0) && night.contains(5 * 60 + 59));
        assert!(!night.contains(6 * 60) && !night.contains(12 * 60) && !night.contains(21 * 60 + 59));
    }

    #[test]
    fn several_ranges_and_bad_ones() {
        assert_eq!(parse_ranges("08:00-12:00 13:00-17:30").unwrap().len(), 2);
        for bad in ["", "8-18", "08:00", "08:00-25:00", "08:60-09:00", "ab:cd-09:00", "24:01-00:00"] {
            assert!(parse_ranges(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+01:00"), Ok(60));
        assert_eq!(parse_offset("-05:30"), Ok(-330));
        assert!(parse_offset("01:00").is_err() && parse_offset("+1").is_err());
    }
}
