//! `catalog.*` (where runs are registered) and `serve.*` (`bench serve`, the HTTP service).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::errors::Errors;

/// `catalog`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogConfig {
    /// Register every run and experiment (status `processing` when it starts, its outcome and
    /// headline figures when it ends). A catalog that cannot be reached is a warning for a run.
    pub enabled: bool,
    /// `sqlite://PATH` (embedded; the file and its directory are created) or
    /// `postgres://USER@HOST:PORT/DB` (one catalog for a team; a password as a
    /// `${PGPASSWORD}` template: manifests and messages show it as `***`).
    pub url: String,
    /// The experiment this run belongs to (set by `bench sweep` for its runs).
    pub experiment_id: Option<String>,
    /// The run's id, when a new run directory should take this one instead of a new UUID (set
    /// by `bench serve`, which answers with the id before the run starts).
    pub run_id: Option<String>,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            enabled: true,
            url: "sqlite://./output/catalog.db".into(),
            experiment_id: None,
            run_id: None,
        }
    }
}

impl CatalogConfig {
    pub(crate) fn validate(&self, e: &mut Errors) {
        if let Some(id) = &self.run_id
            && (id.len() != 36 || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
        {
            e.push("catalog.run_id", format!("`{id}` is not a UUID"));
        }
        if !(self.url.starts_with("sqlite://")
            || self.url.starts_with("postgres://")
            || self.url.starts_with("postgresql://"))
        {
            e.push(
                "catalog.url",
                format!(
                    "`{}` is not sqlite://PATH or postgres://USER@HOST:PORT/DB",
                    self.url
                ),
            );
        }
    }
}

/// `serve`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Address to listen on. Anything beyond loopback needs a token (`serve.token_env`).
    pub listen: String,
    /// Name of the environment variable holding the bearer token every request must carry
    /// (`Authorization: Bearer <token>`). Unset variable: no token, loopback only.
    pub token_env: String,
    /// Runs (or experiments) executing at once; later ones wait their turn.
    #[schemars(range(min = 1, max = 64))]
    pub max_parallel: u32,
    /// Where runs started through the API write their directories. Every file the API serves
    /// is inside a run directory the catalog lists under this root or the catalog's own runs.
    pub runs_dir: String,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: "127.0.0.1:8080".into(),
            token_env: "BENCH_SERVE_TOKEN".into(),
            max_parallel: 1,
            runs_dir: "./output/serve".into(),
        }
    }
}

impl ServeConfig {
    pub(crate) fn validate(&self, e: &mut Errors) {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            e.push(
                "serve.listen",
                format!("`{}` is not HOST:PORT (e.g. 127.0.0.1:8080)", self.listen),
            );
        }
    }
}
