//! `manifest.json`: what a run was, so it can be reproduced and compared. One reader and one
//! updater, used by the stage driver and by analysis. A manifest that exists but cannot be read
//! is an error naming the file: it is never silently replaced.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::FormatError;
use crate::files;

/// A stage of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Prompts -> dataset.jsonl.
    Dataset,
    /// Timing -> workload.jsonl.
    Workload,
    /// Sending -> requests.parquet.
    Client,
    /// Metrics, plots, report -> summary.json, report.html.
    Analysis,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 4] = [
        Stage::Dataset,
        Stage::Workload,
        Stage::Client,
        Stage::Analysis,
    ];
    /// The stage's name (`dataset`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Dataset => "dataset",
            Stage::Workload => "workload",
            Stage::Client => "client",
            Stage::Analysis => "analysis",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A file the run read, with its checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    /// The path as given in the config.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
}

/// A file of the run directory as it was pushed to object storage (`bench push`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// Size in bytes.
    pub bytes: u64,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
}

/// What one stage did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    /// The stage.
    pub stage: Stage,
    /// Wall-clock start, RFC 3339 UTC.
    pub started_at: String,
    /// Duration in seconds.
    pub seconds: f64,
    /// Files written, relative to the run directory.
    pub outputs: Vec<String>,
    /// Free-form figures the stage reports (counts, spans).
    #[serde(default)]
    pub stats: BTreeMap<String, serde_json::Value>,
    /// The resolved config this stage ran with (secrets redacted): stages of one run directory
    /// may be run separately, with different overrides.
    #[serde(default)]
    pub config: serde_json::Value,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The run's stable id, a UUID (made when the run directory is first written; the catalog's
    /// key). Empty in manifests written before ids existed.
    #[serde(default)]
    pub id: String,
    /// The config's `name`.
    #[serde(default)]
    pub name: String,
    /// The config's `description`.
    #[serde(default)]
    pub description: String,
    /// The config's `tags`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `bench` version that wrote the manifest.
    pub tool_version: String,
    /// The run's seed.
    pub seed: u64,
    /// The fully resolved config (after defaults, file, env, overrides and templates) of the
    /// stage run last; each stage's own is in its record.
    pub config: serde_json::Value,
    /// Every input file the stages read, keyed by config key.
    #[serde(default)]
    pub inputs: BTreeMap<String, InputFile>,
    /// Stages run into this directory, in order (a later run of a stage replaces its entry).
    #[serde(default)]
    pub stages: Vec<StageRecord>,
    /// Host facts: os, arch, cpus, hostname.
    #[serde(default)]
    pub host: BTreeMap<String, String>,
    /// Every other file of the run directory, keyed by its path relative to it (`/`-separated),
    /// with its size and checksum: filled in just before the run is pushed to object storage,
    /// and checked by `bench pull`. Absent until a push; a stage run afterwards clears it (its
    /// files changed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub artifacts: BTreeMap<String, Artifact>,
}

impl Manifest {
    /// A manifest with no stage yet.
    pub fn empty(seed: u64) -> Manifest {
        Manifest {
            id: String::new(),
            name: String::new(),
            description: String::new(),
            tags: Vec::new(),
            tool_version: String::new(),
            seed,
            config: serde_json::Value::Null,
            inputs: BTreeMap::new(),
            stages: Vec::new(),
            host: BTreeMap::new(),
            artifacts: BTreeMap::new(),
        }
    }

    /// The record of `stage`, when it ran into this directory.
    pub fn stage(&self, stage: Stage) -> Option<&StageRecord> {
        self.stages.iter().find(|s| s.stage == stage)
    }
}

/// Header names whose values never reach the manifest.
const SECRET_HEADERS: [&str; 5] = [
    "authorization",
    "api-key",
    "x-api-key",
    "cookie",
    "proxy-authorization",
];

/// Whether a header's value is a secret (by its name): credentials, tokens, keys, cookies.
pub fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET_HEADERS.contains(&n.as_str())
        || n.contains("token")
        || n.contains("secret")
        || n.contains("key")
}

/// A URL with the password of its user info replaced by `***` (`postgres://u:***@h/db`).
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((u, _)) => format!("{scheme}://{u}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// The config tree with the values of secret headers replaced by `<redacted>` and the password
/// of the catalog's URL by `***`.
pub fn redacted(tree: &serde_json::Value) -> serde_json::Value {
    let mut t = tree.clone();
    if let Some(serde_json::Value::String(u)) = t.pointer_mut("/catalog/url") {
        *u = redact_url_password(u);
    }
    if let Some(h) = t
        .pointer_mut("/client/headers")
        .and_then(|h| h.as_object_mut())
    {
        for (k, v) in h.iter_mut() {
            if is_secret_header(k) {
                *v = serde_json::Value::String("<redacted>".into());
            }
        }
    }
    t
}

/// `(bytes, lower-case hex SHA-256)` of the file at `path`.
pub fn sha256_file(path: &Path) -> std::io::Result<(u64, String)> {
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
    Ok((n, h.finalize().iter().map(|b| format!("{b:02x}")).collect()))
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

/// `<run_dir>/manifest.json`: `None` when there is none; an error naming the file when it
/// exists but is not a readable manifest.
pub fn read(run_dir: &Path) -> Result<Option<Manifest>, FormatError> {
    let path = run_dir.join(files::MANIFEST);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(FormatError::io(&path, e)),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        FormatError::content(
            &path,
            format!(
                "not a readable manifest ({e}); move it away to start this run directory afresh"
            ),
        )
    })
}

/// What one stage adds to the manifest.
#[derive(Debug, Clone)]
pub struct StageUpdate<'a> {
    /// The resolved config tree of the run (redacted before it is written).
    pub config: &'a serde_json::Value,
    /// The run's seed.
    pub seed: u64,
    /// The stage's record (its `config` is filled in here).
    pub record: StageRecord,
    /// Input files to checksum, keyed by the config key that named them.
    pub inputs: &'a [(String, PathBuf)],
    /// The run's id, name, description and tags.
    pub identity: &'a Identity,
}

/// What names a run: its id (kept from the first stage written into the directory), name,
/// description and tags (the latest stage's config).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// A UUID.
    pub id: String,
    /// `name`.
    pub name: String,
    /// `description`.
    pub description: String,
    /// `tags`.
    pub tags: Vec<String>,
}

/// A new random (version 4) UUID.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Adds one stage's record to the run's manifest (creating the file when there is none), and
/// writes it atomically (a temporary file renamed over it).
pub fn record_stage(run_dir: &Path, u: StageUpdate<'_>) -> Result<Manifest, FormatError> {
    let mut m = read(run_dir)?.unwrap_or_else(|| Manifest::empty(u.seed));
    if m.id.is_empty() {
        m.id = if u.identity.id.is_empty() {
            new_id()
        } else {
            u.identity.id.clone()
        };
    }
    m.name = u.identity.name.clone();
    m.description = u.identity.description.clone();
    m.tags = u.identity.tags.clone();
    // the stage rewrites files: checksums of an earlier push no longer hold
    m.artifacts.clear();
    m.tool_version = env!("CARGO_PKG_VERSION").to_string();
    m.seed = u.seed;
    m.config = redacted(u.config);
    m.host = host();
    for (key, p) in u.inputs {
        let (bytes, sha256) = sha256_file(p).map_err(|e| FormatError::io(p, e))?;
        m.inputs.insert(
            key.clone(),
            InputFile {
                path: p.display().to_string(),
                bytes,
                sha256,
            },
        );
    }
    let mut stage = u.record;
    stage.config = m.config.clone();
    m.stages.retain(|s| s.stage != stage.stage);
    m.stages.push(stage);
    write(run_dir, &m)?;
    Ok(m)
}

/// Writes `<run_dir>/manifest.json` atomically (a temporary file renamed over it).
fn write(run_dir: &Path, m: &Manifest) -> Result<(), FormatError> {
    let path = run_dir.join(files::MANIFEST);
    let text = serde_json::to_string_pretty(m).expect("a manifest serializes") + "\n";
    let tmp = run_dir.join(format!(".{}.tmp", files::MANIFEST));
    std::fs::write(&tmp, text).map_err(|e| FormatError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| FormatError::io(&path, e))
}

/// Records the checksums of `files` (paths relative to the run directory, `/`-separated) as
/// the manifest's `artifacts`, replacing any earlier ones; the manifest must exist.
pub fn record_artifacts(run_dir: &Path, files: &[String]) -> Result<Manifest, FormatError> {
    let path = run_dir.join(files::MANIFEST);
    let mut m = read(run_dir)?
        .ok_or_else(|| FormatError::content(&path, "not found: not a run directory"))?;
    m.artifacts.clear();
    for f in files {
        let p = run_dir.join(f);
        let (bytes, sha256) = sha256_file(&p).map_err(|e| FormatError::io(&p, e))?;
        m.artifacts.insert(f.clone(), Artifact { bytes, sha256 });
    }
    write(run_dir, &m)?;
    Ok(m)
}

/// RFC 3339 UTC of a system time, to the second (`2026-12-06T19:27:11Z`).
pub fn rfc3339(t: std::time::SystemTime) -> String {
    jiff::Timestamp::try_from(t)
        .map(|ts| ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(stage: Stage) -> StageRecord {
        StageRecord {
            stage,
            started_at: rfc3339(std::time::UNIX_EPOCH),
            seconds: 1.5,
            outputs: vec!["x".into()],
            stats: BTreeMap::new(),
            config: serde_json::Value::Null,
        }
    }

    #[test]
    fn rfc3339_known_dates() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(std::time::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn secrets_are_redacted() {
        let t = serde_json::json!({"client": {"headers": {"Authorization": "Bearer x", "X-Api-Token": "t", "X-Trace": "1"}}});
        let r = redacted(&t);
        assert_eq!(r["client"]["headers"]["Authorization"], "<redacted>");
        assert_eq!(r["client"]["headers"]["X-Api-Token"], "<redacted>");
        assert_eq!(r["client"]["headers"]["X-Trace"], "1");
        let t = serde_json::json!({"catalog": {"url": "postgres://team:hunter2@db:5432/bench"}});
        assert_eq!(
            redacted(&t)["catalog"]["url"],
            "postgres://team:***@db:5432/bench"
        );
        assert_eq!(
            redact_url_password("sqlite://./output/c.db"),
            "sqlite://./output/c.db"
        );
    }

    #[test]
    fn stages_accumulate_and_a_rerun_replaces_its_entry() {
        let d = tempfile::tempdir().unwrap();
        let cfg = serde_json::json!({"seed": 1});
        let input = d.path().join("in.txt");
        std::fs::write(&input, "abc").unwrap();
        let inputs = [("dataset.path".to_string(), input)];
        for s in [Stage::Dataset, Stage::Workload, Stage::Dataset] {
            record_stage(
                d.path(),
                StageUpdate {
                    config: &cfg,
                    seed: 1,
                    record: record(s),
                    inputs: &inputs,
                    identity: &Identity::default(),
                },
            )
            .unwrap();
        }
        let m = read(d.path()).unwrap().unwrap();
        let order: Vec<Stage> = m.stages.iter().map(|s| s.stage).collect();
        assert_eq!(order, [Stage::Workload, Stage::Dataset]);
        assert_eq!(m.stage(Stage::Dataset).unwrap().config, cfg);
        // sha256("abc")
        assert_eq!(
            m.inputs["dataset.path"].sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            2,
            "no temp file left"
        );
    }

    #[test]
    fn a_corrupt_manifest_is_an_error_naming_it_and_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(files::MANIFEST);
        std::fs::write(&p, "{ not json").unwrap();
        let e = read(d.path()).unwrap_err().to_string();
        assert!(e.starts_with(&p.display().to_string()), "{e}");
        assert!(e.contains("not a readable manifest"), "{e}");
        let cfg = serde_json::json!({});
        let u = StageUpdate {
            config: &cfg,
            seed: 1,
            record: record(Stage::Client),
            inputs: &[],
            identity: &Identity::default(),
        };
        assert!(record_stage(d.path(), u).is_err());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{ not json");
        assert_eq!(read(&d.path().join("absent")).unwrap(), None);
    }

    #[test]
    fn artifacts_are_recorded_and_a_later_stage_clears_them() {
        let d = tempfile::tempdir().unwrap();
        let cfg = serde_json::json!({"seed": 1});
        let id = Identity::default();
        let u = |s| StageUpdate {
            config: &cfg,
            seed: 1,
            record: record(s),
            inputs: &[],
            identity: &id,
        };
        record_stage(d.path(), u(Stage::Client)).unwrap();
        let plain = std::fs::read_to_string(d.path().join(files::MANIFEST)).unwrap();
        assert!(!plain.contains("artifacts"), "absent while empty");
        std::fs::create_dir(d.path().join("plots")).unwrap();
        std::fs::write(d.path().join("plots/a.svg"), "abc").unwrap();
        let m = record_artifacts(d.path(), &["plots/a.svg".to_string()]).unwrap();
        assert_eq!(m.artifacts["plots/a.svg"].bytes, 3);
        assert_eq!(
            read(d.path()).unwrap().unwrap().artifacts["plots/a.svg"].sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        record_stage(d.path(), u(Stage::Analysis)).unwrap();
        assert!(read(d.path()).unwrap().unwrap().artifacts.is_empty());
        let e = record_artifacts(&d.path().join("plots"), &[]).unwrap_err();
        assert!(e.to_string().contains("not a run directory"), "{e}");
    }
}
