//! Exact date-time parsing for trace timestamps: integers only, nanosecond resolution.
//!
//! Accepts `YYYY-M-D[ T]H:M:S[.fraction][Z|±HH:MM]` with 0 to 9 fractional digits (the Azure
//! 2023 trace has 7, i.e. 100 ns units; the 2024 trace has 6 plus `+00:00`). No float is ever
//! involved, so two timestamps 100 ns apart are always 100 ns apart. The fields are split here
//! (jiff's parsers want two-digit months, days and hours; Grafana writes `2024-10-1 0:00:00`);
//! the calendar (valid dates, the civil time to Unix time conversion) is jiff's.

use jiff::civil::{Date, Time};
use jiff::tz::Offset;

/// Nanoseconds since 1970-01-01T00:00:00 UTC (a naive time is taken as UTC).
pub(crate) fn parse_ns(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let bad = |why: &str| format!("timestamp `{s}`: {why}");
    let (date, rest) = s
        .split_once([' ', 'T'])
        .ok_or_else(|| bad("expected `YYYY-MM-DD HH:MM:SS[.fraction]`"))?;
    let mut d = date.split('-');
    let (y, m, day) = match (d.next(), d.next(), d.next(), d.next()) {
        (Some(y), Some(m), Some(dd), None) => (
            num(y, 4).ok_or_else(|| bad("bad year"))?,
            num(m, 2),
            num(dd, 2),
        ),
        _ => return Err(bad("bad date")),
    };
    // Any two times within these years are less than 292 years apart, so their difference
    // fits i64 nanoseconds exactly (a trace's times are only ever used relative to its first).
    if !(1900..=2100).contains(&y) {
        return Err(bad("year outside 1900 to 2100"));
    }
    let date = match (m, day) {
        (Some(m), Some(d)) => {
            Date::new(y, m as i8, d as i8).map_err(|e| bad(&format!("bad month or day: {e}")))?
        }
        _ => return Err(bad("bad month or day")),
    };
    // Split off a zone suffix: `Z`, `+HH:MM`, `-HH:MM` (after the time, so the date's '-' is gone).
    let (time, offset) = if let Some(t) = rest.strip_suffix('Z') {
        (t, Offset::UTC)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (t, z) = rest.split_at(i);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let (hh, mm) = z[1..].split_once(':').unwrap_or((&z[1..], "0"));
        match (num(hh, 2), num(mm, 2)) {
            (Some(h), Some(mi)) if h <= 23 && mi <= 59 => (
                t,
                Offset::from_seconds(sign * (i32::from(h) * 3600 + i32::from(mi) * 60))
                    .map_err(|e| bad(&format!("bad time zone offset: {e}")))?,
            ),
            _ => return Err(bad("bad time zone offset")),
        }
    } else {
        (rest, Offset::UTC)
    };
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.split(':');
    let tod = match (
        t.next().and_then(|x| num(x, 2)),
        t.next().and_then(|x| num(x, 2)),
        t.next().and_then(|x| num(x, 2)),
        t.next(),
    ) {
        (Some(h), Some(mi), Some(sec), None) => Time::new(h as i8, mi as i8, sec as i8, 0)
            .map_err(|e| bad(&format!("bad time of day: {e}")))?,
        _ => return Err(bad("bad time of day")),
    };
    if frac.len() > 9
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (time.contains('.') && frac.is_empty())
    {
        return Err(bad("bad fractional seconds (0 to 9 digits)"));
    }
    let mut ns = 0i32;
    for k in 0..9 {
        ns = ns * 10 + frac.as_bytes().get(k).map_or(0, |b| i32::from(b - b'0'));
    }
    let tod = tod
        .with()
        .subsec_nanosecond(ns)
        .build()
        .map_err(|e| bad(&e.to_string()))?;
    let ts = offset
        .to_timestamp(date.to_datetime(tod))
        .map_err(|e| bad(&e.to_string()))?;
    // Years 1900 to 2100 are well within i64 nanoseconds (1677 to 2262).
    i64::try_from(ts.as_nanosecond()).map_err(|_| bad("out of range"))
}

/// A non-negative integer of 1 to `max_digits` digits (4 for years allows 1 to 9999).
fn num(s: &str, max_digits: usize) -> Option<i16> {
    if s.is_empty() || s.len() > max_digits || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_known_dates() {
        assert_eq!(parse_ns("1970-01-01 00:00:00").unwrap(), 0);
        assert_eq!(
            parse_ns("2000-03-01 00:00:00").unwrap(),
            951_868_800 * 1_000_000_000
        );
        // 2023-11-16 18:15:46 UTC = 1700158546
        assert_eq!(
            parse_ns("2023-11-16 18:15:46.6805900").unwrap(),
            1_700_158_546_680_590_000
        );
        assert_eq!(
            parse_ns("2024-02-29T23:59:59Z").unwrap(),
            1_709_251_199 * 1_000_000_000
        );
    }

    #[test]
    fn seven_digits_are_100ns_exact() {
        let a = parse_ns("2023-11-16 18:17:03.9799600").unwrap();
        let b = parse_ns("2023-11-16 18:17:03.9799601").unwrap();
        assert_eq!(b - a, 100);
        let c = parse_ns("2023-11-16 19:14:08.4025270").unwrap();
        let d = parse_ns("2023-11-16 18:15:46.6805900").unwrap();
        assert_eq!(c - d, 3_501_721_937_000);
    }

    #[test]
    fn azure_2024_offsets_and_grafana_short_fields() {
        let a = parse_ns("2024-05-10 00:00:00.009930+00:00").unwrap();
        let b = parse_ns("2024-05-10 02:00:00.009930+02:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a % 1_000_000_000, 9_930_000);
        assert_eq!(
            parse_ns("2024-10-1 0:00:00").unwrap(),
            parse_ns("2024-10-01 00:00:00").unwrap()
        );
        assert_eq!(
            parse_ns("2024-05-10 00:00:00-01:30").unwrap(),
            parse_ns("2024-05-10 01:30:00").unwrap()
        );
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "2023-11-16",
            "2023-13-01 00:00:00",
            "2023-02-29 00:00:00",
            "2023-11-16 24:00:00",
            "2023-11-16 18:15:46.",
            "2023-11-16 18:15:46.1234567890",
            "2023-11-16 18:15:4x",
            "2023-11-16 18:15:46+25:00",
            "16/11/2023 18:15:46",
            "1700-01-01 00:00:00",
            "9999-12-31 23:59:59",
        ] {
            assert!(parse_ns(s).is_err(), "{s} should be rejected");
        }
    }
}
