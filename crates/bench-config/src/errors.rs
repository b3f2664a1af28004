//! Config errors: every problem found, each with its key path.

use std::fmt;

/// One problem with one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key path (`workload.constant.target_qps`, `dataset.synthetic_shared.groups[1].num_samples`).
    pub key: String,
    /// What is wrong.
    pub msg: String,
    /// Where the value came from (`config.yaml`, `--override`, `env BENCH_...`), when known.
    pub origin: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.key, self.msg)?;
        if let Some(o) = &self.origin {
            write!(f, " (from {o})")?;
        }
        Ok(())
    }
}

/// All problems found in one config, in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Errors(pub Vec<ConfigError>);

impl Errors {
    /// Records a problem with `key`.
    pub fn push(&mut self, key: &str, msg: impl Into<String>) {
        self.0.push(ConfigError {
            key: key.to_string(),
            msg: msg.into(),
            origin: None,
        });
    }
    /// Whether nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Ok when empty, else Err(self).
    pub fn into_result(self) -> Result<(), Errors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "config error: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The config file is missing, unreadable or not YAML.
    #[error("{0}")]
    File(String),
    /// A `--override` is not `key=value`.
    #[error("--override `{0}`: expected key=value (try `--override help`)")]
    Override(String),
    /// The merged config has problems (all of them are listed).
    #[error("{0}")]
    Invalid(Errors),
}
