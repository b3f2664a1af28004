//! `manifest.json`: what a run was, so it can be reproduced and compared.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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

/// What one stage did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    /// Stage name.
    pub stage: String,
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
}
