//! Number and time formatting shared by the table, the report and the CSV files.

/// RFC 3339 UTC time (millisecond precision, truncated) of `unix_ns` nanoseconds since the epoch.
pub fn rfc3339_ns(unix_ns: i64) -> String {
    // Every i64 of nanoseconds (years 1677 to 2262) is within jiff's range (years -9999 to 9999).
    jiff::Timestamp::from_nanosecond(i128::from(unix_ns))
        .expect("i64 nanoseconds are within jiff's range")
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// A figure for people: 4 significant digits or so, thousands unseparated, `-` for none.
pub fn num(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if !x.is_finite() => x.to_string(),
        Some(x) => {
            let a = x.abs();
            if a == 0.0 {
                "0".into()
            } else if a >= 1000.0 {
                format!("{x:.0}")
            } else if a >= 100.0 {
                format!("{x:.1}")
            } else if a >= 10.0 {
                format!("{x:.2}")
            } else if a >= 0.01 {
                format!("{x:.3}")
            } else {
                format!("{x:.2e}")
            }
        }
    }
}

/// A share as a percentage with one decimal.
pub fn pct(v: Option<f64>) -> String {
    v.map(|x| format!("{:.1}%", x * 100.0))
        .unwrap_or_else(|| "-".into())
}

/// A CSV field: full precision (shortest round-trip) for numbers, empty for none.
pub fn csv_num(v: Option<f64>) -> String {
    match v {
        Some(x) if !x.is_nan() => x.to_string(),
        _ => String::new(),
    }
}

/// A CSV field for text: quoted when it holds a comma, quote or line break.
pub fn csv_text(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339_ns(0), "1970-01-01T00:00:00.000Z");
        // 2023-11-14T22:13:20Z = 1_700_000_000 s
        assert_eq!(
            rfc3339_ns(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123Z"
        );
        // 2024-02-29T12:00:00Z (leap day) = 1_709_208_000 s
        assert_eq!(
            rfc3339_ns(1_709_208_000_000_000_000),
            "2024-02-29T12:00:00.000Z"
        );
    }

    #[test]
    fn numbers_and_csv_fields() {
        assert_eq!(num(None), "-");
        assert_eq!(num(Some(1234.56)), "1235");
        assert_eq!(num(Some(12.3456)), "12.35");
        assert_eq!(num(Some(0.5)), "0.500");
        assert_eq!(pct(Some(0.1234)), "12.3%");
        assert_eq!(csv_num(Some(0.1 + 0.2)), "0.30000000000000004");
        assert_eq!(csv_num(Some(f64::NAN)), "");
        assert_eq!(csv_text("a,\"b\""), "\"a,\"\"b\"\"\"");
        assert_eq!(csv_text("plain"), "plain");
    }
}
