//! Typed config for every stage: defaults < config.yaml < `BENCH_` env < `--override`.
//!
//! Loading is two-phase (see [`load`]): the layers are merged into one value tree with figment,
//! `${VAR}` / `${other.key}` templates are resolved, the tree is checked against the schema
//! derived from these types (unknown keys, wrong types, out-of-range values: all reported
//! together, each with its key path and origin), then deserialized and cross-checked.
//!
//! Every key, its type, default and meaning is listed by `bench --override help`
//! ([`help_text`]); the doc comments on the fields below are that text.

pub mod analysis;
pub mod api_template;
pub mod catalog;
pub mod client;
pub mod dataset;
mod errors;
mod load;
pub mod parsed;
mod schema;
pub mod server;
pub mod sim;
pub mod storage;
mod template;
pub mod workload;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The longest prompt bench generates or asks for, in tokens: the bound of every prompt-length
/// key, and of the lengths the workload stage reads from files.
pub const MAX_PROMPT_TOKENS: u32 = 10_000_000;

/// The most requests (or prompts) one run may hold: beyond it the arrival times alone take
/// gigabytes and the run would take days; a bad rate in a file or the config is the likelier cause.
pub const MAX_REQUESTS: u64 = 10_000_000;

pub use analysis::AnalysisConfig;
pub use bench_text::TokenizerSpec;
pub use catalog::{CatalogConfig, ServeConfig};
pub use client::ClientConfig;
pub use dataset::DatasetConfig;
pub use errors::{ConfigError, Errors, LoadError};
pub use load::{Resolved, Sources, anchor_paths, load};
pub use parsed::{Endpoint, Op, Pair, PairField, Threshold};
pub use schema::help_text;
pub use server::MetricsConfig;
pub use sim::SimConfig;
pub use storage::StorageConfig;
pub use workload::WorkloadConfig;

/// The whole config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// A config file this one extends (relative to the file): its keys apply first. Only
    /// meaningful inside a file.
    pub base: Option<String>,
    /// Name of the run (the default run directory starts with it; shown in the report and by
    /// `bench compare`).
    pub name: String,
    /// What the run is for, in a sentence (manifest, summary, report, catalog).
    pub description: String,
    /// Labels to find the run by (`bench runs list --tag T`).
    pub tags: Vec<String>,
    /// Run directory: every stage reads and writes its files here. The default gives every run
    /// a new directory (`${now}` is the start time, UTC); `output/latest` links to the last.
    pub run_dir: String,
    /// Seed of every random choice in every stage.
    pub seed: u64,
    /// Tokenizer for all token counts: `builtin:cl100k_base`, `builtin:o200k_base`, a path to
    /// a Hugging Face tokenizer.json, or `auto`: the served model's (`client.model`) when a local
    /// copy is found (a directory of that name, or the Hugging Face cache), else the default.
    #[serde(with = "parsed::as_string")]
    #[schemars(schema_with = "parsed::tokenizer_schema")]
    pub tokenizer: TokenizerSpec,
    /// `dataset`: prompts.
    pub dataset: DatasetConfig,
    /// Named datasets, each a `dataset` section of its own, for `dataset.use` (one name or a
    /// weighted mix).
    pub datasets: std::collections::BTreeMap<String, DatasetConfig>,
    /// `workload`: when each request is sent.
    pub workload: WorkloadConfig,
    /// `client`: how it is sent.
    pub client: ClientConfig,
    /// `metrics`: the server's Prometheus metrics, scraped during the client stage.
    pub metrics: MetricsConfig,
    /// `sim`: the simulated engine (used when `client.endpoint` is `sim`).
    pub sim: SimConfig,
    /// `analysis`: metrics, goodput, plots, report.
    pub analysis: AnalysisConfig,
    /// `catalog`: where runs and experiments are registered.
    pub catalog: CatalogConfig,
    /// `serve`: the HTTP service (`bench serve`).
    pub serve: ServeConfig,
    /// `storage`: object storage the run is pushed to at its end.
    pub storage: StorageConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            base: None,
            name: "run".into(),
            description: String::new(),
            tags: Vec::new(),
            run_dir: "./output/${name}-${now}".into(),
            seed: 42,
            tokenizer: TokenizerSpec::default(),
            dataset: DatasetConfig::default(),
            datasets: Default::default(),
            workload: WorkloadConfig::default(),
            client: ClientConfig::default(),
            metrics: MetricsConfig::default(),
            sim: SimConfig::default(),
            analysis: AnalysisConfig::default(),
            catalog: CatalogConfig::default(),
            serve: ServeConfig::default(),
            storage: StorageConfig::default(),
        }
    }
}

impl Config {
    /// Cross-field checks that the schema cannot express; collects every problem.
    pub fn validate(&self) -> Result<(), Errors> {
        let mut e = Errors::default();
        if self.run_dir.trim().is_empty() {
            e.push("run_dir", "is empty");
        }
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            e.push(
                "name",
                format!(
                    "`{}` must be letters, digits, `-`, `_` or `.` (it names the run's directory)",
                    self.name
                ),
            );
        }
        if self.dataset.use_.is_some() {
            self.validate_use(&mut e);
        } else {
            self.dataset.validate(&mut e);
        }
        for (name, d) in &self.datasets {
            dataset::validate_named(name, d, &mut e);
        }
        self.workload.validate(&mut e);
        if self.dataset.unique_prefix
            && self.workload.kind == workload::WorkloadType::Mooncake
            && !self.workload.mooncake.materialize
        {
            e.push(
                "dataset.unique_prefix",
                "Mooncake prompts are shared hash blocks the client builds; a prefix needs them as text: set workload.mooncake.materialize: true",
            );
        }
        self.client.validate(&mut e);
        if let Err(m) = analysis::WorkloadUnit::parse(&self.analysis.workload_unit) {
            e.push("analysis.workload_unit", m);
        }
        self.metrics.validate(&mut e);
        self.sim.validate(&mut e);
        self.catalog.validate(&mut e);
        self.serve.validate(&mut e);
        for (i, t) in self.tags.iter().enumerate() {
            if t.trim().is_empty() || t.len() > 64 {
                e.push(&format!("tags[{i}]"), "a tag is 1 to 64 characters");
            }
        }
        self.storage.validate(&mut e);
        e.into_result()
    }
}
