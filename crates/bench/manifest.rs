//! `<run_dir>/manifest.json`: resolved config, seed, version, input checksums, host, stages.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use bench_types::files;
use bench_types::manifest::{InputFile, Manifest, StageRecord};
use sha2::{Digest, Sha256};

/// Header names whose values never reach the manifest.
const SECRET_HEADERS: [&str; 5] = [
    "authorization",
    "api-key",
    "x-api-key",
    "cookie",
    "proxy-authorization",
];

/// The config tree with secret-looking header values replaced.
pub fn redacted(tree: &serde_json::Value) -> serde_json::Value {
    let mut t = tree.clone();
    if let Some(h) = t
        .pointer_mut("/client/headers")
        .and_then(|h| h.as_object_mut())
    {
        for (k, v) in h.iter_mut() {
            let lk = k.to_ascii_lowercase();
            if SECRET_HEADERS.contains(&lk.as_str())
                || lk.contains("token")
                || lk.contains("secret")
                || lk.contains("key")
            {
                *v = serde_json::Value::String("<redacted>".into());
            }
        }
    }
    t
}

fn sha256_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        n += k as u64;
        h.update(&buf[..k]);
    }
    let digest = h.finalize();
    Ok((n, digest.iter().map(|b| format!("{b:02x}")).collect()))
}

fn host() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("os".into(), std::env::consts::OS.into());
    m.insert("arch".into(), std::env::consts::ARCH.into());
    if let Ok(n) = std::thread::available_parallelism() {
        m.insert("cpus".into(), n.to_string());
    }
    if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
        m.insert("hostname".into(), h.trim().to_string());
    }
    m
}

/// The run's manifest.json, when there is a readable one.
pub fn read(run_dir: &Path) -> Option<Manifest> {
    let b = std::fs::read(run_dir.join(files::MANIFEST)).ok()?;
    serde_json::from_slice(&b).ok()
}

/// Adds one stage's record to the run's manifest (creating it), and writes it.
pub fn record_stage(
    run_dir: &Path,
    config: &serde_json::Value,
    seed: u64,
    stage: StageRecord,
    inputs: &[(String, std::path::PathBuf)],
) -> std::io::Result<()> {
    let path = run_dir.join(files::MANIFEST);
    let mut m = read(run_dir).unwrap_or(Manifest {
        tool_version: String::new(),
        seed,
        config: serde_json::Value::Null,
        inputs: BTreeMap::new(),
        stages: Vec::new(),
        host: BTreeMap::new(),
    });
    m.tool_version = env!("CARGO_PKG_VERSION").to_string();
    m.seed = seed;
    m.config = redacted(config);
    m.host = host();
    for (key, p) in inputs {
        let (bytes, sha256) = sha256_file(p)?;
        m.inputs.insert(
            key.clone(),
            InputFile {
                path: p.display().to_string(),
                bytes,
                sha256,
            },
        );
    }
    let mut stage = stage;
    stage.config = m.config.clone();
    m.stages.retain(|s| s.stage != stage.stage);
    m.stages.push(stage);
    let text = serde_json::to_string_pretty(&m).map_err(std::io::Error::other)?;
    std::fs::write(&path, text + "\n")
}

/// RFC 3339 UTC for a system time (seconds precision), without a date library.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(std::time::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn secrets_are_redacted() {
        let t = serde_json::json!({"client": {"headers": {"Authorization": "Bearer x", "X-Trace": "1"}}});
        let r = redacted(&t);
        assert_eq!(r["client"]["headers"]["Authorization"], "<redacted>");
        assert_eq!(r["client"]["headers"]["X-Trace"], "1");
    }
}
