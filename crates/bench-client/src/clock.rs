//! How far this host's wall clock is from a reference, for a shard of a sharded run.
//!
//! Every shard anchors on the same wall-clock instant (`client.start_at`), so a shard whose
//! clock is off by `d` sends its whole schedule `d` early or late relative to the others. Each
//! shard therefore records where its clock stands; `bench merge` compares them and warns.
//!
//! Sources, best first:
//! - `chrony`: `chronyc -c tracking` (the NTP daemon's own estimate: "System time" is the
//!   offset of the system clock from NTP time, root delay / 2 + root dispersion bound the error
//!   of NTP time itself). Kubernetes nodes usually run chrony or systemd-timesyncd; a pod sees
//!   the node's clock but rarely has `chronyc`: the image does not ship it.
//! - `http-date`: the endpoint's HTTP `Date` header (RFC 9110: the server's clock, whole
//!   seconds). One answer only bounds the offset to a second, so the header is polled every
//!   few ms until its second changes: the change lies between the two answers around it, which
//!   bounds the offset to half their spacing plus the round trip (a few ms on a cluster
//!   network). The reference is then the endpoint's clock, the same one for every shard.
//! - `none`: neither answered; the report says why.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Where the clock stands.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClockReport {
    /// The host's name.
    pub host: String,
    /// `chrony`, `http-date` or `none`.
    pub source: &'static str,
    /// This clock minus the reference, ms (positive: this clock is ahead).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset_ms: Option<f64>,
    /// Bound on the error of `offset_ms`, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uncertainty_ms: Option<f64>,
    /// What the reference was, or why there is none.
    pub detail: String,
}

impl ClockReport {
    /// The most this clock can be off the reference, ms (`|offset| + uncertainty`).
    pub fn bound_ms(&self) -> Option<f64> {
        Some(self.offset_ms?.abs() + self.uncertainty_ms?)
    }
}

/// The wall clock now, Unix ns.
pub fn unix_now_ns() -> i64 {
    unix_ns(SystemTime::now())
}

fn unix_ns(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// The host's name (`/proc/sys/kernel/hostname`, else `HOSTNAME`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Parses `chronyc -c tracking` output: (offset ms, uncertainty ms), or why not.
pub fn parse_chrony(csv: &str) -> Result<(f64, f64), String> {
    let f: Vec<&str> = csv.trim().split(',').collect();
    if f.len() < 14 {
        return Err(format!(
            "chronyc -c tracking: {} fields, expected 14",
            f.len()
        ));
    }
    let num = |i: usize| {
        f[i].trim().parse::<f64>().map_err(|_| {
            format!(
                "chronyc -c tracking: field {} `{}` is not a number",
                i + 1,
                f[i]
            )
        })
    };
    if f[13].trim() == "Not synchronised" {
        return Err("chrony is not synchronised".into());
    }
    let (system, root_delay, root_dispersion) = (num(4)?, num(10)?, num(11)?);
    // chrony's System time is positive when the system clock is behind NTP time
    Ok((-system * 1e3, (root_delay / 2.0 + root_dispersion) * 1e3))
}

fn chrony() -> Result<(f64, f64), String> {
    let out = std::process::Command::new("chronyc")
        .args(["-c", "-n", "tracking"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("chronyc: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "chronyc: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    parse_chrony(&String::from_utf8_lossy(&out.stdout))
}

/// Parses an HTTP date (`Mon, 07 Dec 2026 01:06:52 GMT`) into Unix seconds.
pub fn parse_http_date(s: &str) -> Option<i64> {
    jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(s.trim())
        .ok()
        .map(|t| t.as_second())
}

/// One answer's `Date`, with the local wall clock just before sending and just after the
/// answer (Unix ns).
async fn date_sample(http: &reqwest::Client, url: &str) -> Result<(i64, i64, i64), String> {
    let t0 = unix_ns(SystemTime::now());
    let r = http
        .get(url)
        .send()
        .await
        .map_err(|e| crate::http::rq::root_cause(&e))?;
    let t1 = unix_ns(SystemTime::now());
    let date = r
        .headers()
        .get("date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| format!("{url}: no Date header"))?;
    let secs = parse_http_date(date).ok_or_else(|| format!("{url}: Date `{date}` unreadable"))?;
    Ok((t0, t1, secs))
}

/// The offset against the endpoint's `Date` header, edge-detected (module doc).
async fn http_date(url: &str, headers: &[(String, String)]) -> Result<(f64, f64), String> {
    let http = crate::http::rq::side_client(headers, Duration::from_secs(2))?;
    let started = Instant::now();
    let mut prev = date_sample(&http, url).await?;
    while started.elapsed() < Duration::from_millis(2500) {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let cur = date_sample(&http, url).await?;
        if cur.2 == prev.2 + 1 {
            // the reference's second `cur.2` began between prev's send and cur's answer
            let lo = prev.0;
            let hi = cur.1;
            let mid = (lo + hi) / 2;
            let offset_ns = mid - cur.2 * 1_000_000_000;
            return Ok((offset_ns as f64 / 1e6, (hi - lo) as f64 / 2e6));
        }
        prev = cur;
    }
    Err(format!(
        "{url}: the Date header's second did not change in 2.5 s"
    ))
}

/// Measures this host's clock: chrony when it answers, else the `Date` header of `url`.
pub async fn measure(url: &str, headers: &[(String, String)]) -> ClockReport {
    let host = hostname();
    let chrony_err = match chrony() {
        Ok((offset, unc)) => {
            return ClockReport {
                host,
                source: "chrony",
                offset_ms: Some(offset),
                uncertainty_ms: Some(unc),
                detail: "chronyc tracking: system time against NTP time".into(),
            };
        }
        Err(e) => e,
    };
    match http_date(url, headers).await {
        Ok((offset, unc)) => ClockReport {
            host,
            source: "http-date",
            offset_ms: Some((offset * 1e3).round() / 1e3),
            uncertainty_ms: Some((unc * 1e3).round() / 1e3),
            detail: format!("Date header of {url} ({chrony_err})"),
        },
        Err(e) => ClockReport {
            host,
            source: "none",
            offset_ms: None,
            uncertainty_ms: None,
            detail: format!("{chrony_err}; {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chrony_and_http_dates_parse() {
        let line = "C0A80001,ntp.example,3,1796612400.123,-0.000250,0.000010,0.000100,-1.5,0.001,0.02,0.004000,0.000500,64.2,Normal\n";
        let (off, unc) = parse_chrony(line).unwrap();
        assert!((off - 0.25).abs() < 1e-9, "{off}");
        assert!((unc - 2.5).abs() < 1e-9, "{unc}");
        let unsync = line.replace("Normal", "Not synchronised");
        assert_eq!(
            parse_chrony(&unsync).unwrap_err(),
            "chrony is not synchronised"
        );
        assert!(parse_chrony("a,b").unwrap_err().contains("2 fields"));
        assert_eq!(
            parse_http_date("Mon, 07 Dec 2026 03:00:00 GMT"),
            Some(1_796_612_400)
        );
        assert_eq!(parse_http_date("yesterday"), None);
        let r = ClockReport {
            host: "h".into(),
            source: "http-date",
            offset_ms: Some(-3.0),
            uncertainty_ms: Some(1.5),
            detail: String::new(),
        };
        assert_eq!(r.bound_ms(), Some(4.5));
    }
}
