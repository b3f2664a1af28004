//! `dataset.*`: where prompts come from. docs/DATASETS.md describes every type, its output
//! layout and the choices made where the sources are silent.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::errors::Errors;

/// Kind of dataset the dataset stage produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum DatasetType {
    /// Controlled shared-prefix synthetic prompts (AIBrix synthetic_shared); plain layout.
    SyntheticShared,
    /// Multi-turn synthetic sessions (Pareto prompt lengths, Normal turn counts); session layout.
    SyntheticMultiturn,
    /// ShareGPT JSON converted to sessions with prompts and completions.
    Sharegpt,
    /// A client output file (AIBrix output.jsonl or ours) converted to plain prompts.
    ClientTrace,
    /// Fixed or distributed input/output token lengths; plain layout.
    #[default]
    Random,
    /// A user JSONL with `prompt` (and optional `image_path`, `output_length`).
    Custom,
    /// Image generation jobs (width, height, steps, a ComfyUI workflow) for `client.api:
    /// template` with `config/templates/comfyui-runsync.yaml`; plain layout with `fields`.
    ImageJobs,
}

impl DatasetType {
    /// The name used in config files (`synthetic_shared`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetType::SyntheticShared => "synthetic_shared",
            DatasetType::SyntheticMultiturn => "synthetic_multiturn",
            DatasetType::Sharegpt => "sharegpt",
            DatasetType::ClientTrace => "client_trace",
            DatasetType::Random => "random",
            DatasetType::Custom => "custom",
            DatasetType::ImageJobs => "image_jobs",
        }
    }
}

/// `dataset`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DatasetConfig {
    /// Which generator or converter runs.
    #[serde(rename = "type")]
    pub kind: DatasetType,
    /// `dataset.random`
    pub random: RandomDataset,
    /// `dataset.synthetic_shared`
    pub synthetic_shared: SyntheticSharedDataset,
    /// `dataset.synthetic_multiturn`
    pub synthetic_multiturn: SyntheticMultiturnDataset,
    /// `dataset.sharegpt`
    pub sharegpt: SharegptDataset,
    /// `dataset.client_trace`
    pub client_trace: ClientTraceDataset,
    /// `dataset.custom`
    pub custom: CustomDataset,
    /// `dataset.image_jobs`
    pub image_jobs: ImageJobsDataset,
    /// Start every request's prompt with a short code of its own (`[3f9a01c2]` and a newline),
    /// so no two requests share a cached prefix beyond what the dataset intends (a prompt used
    /// twice, the same dataset in two runs). Counted in the prompt lengths. Added when the
    /// workload is written; Mooncake block prompts need `workload.mooncake.materialize: true`.
    pub unique_prefix: bool,
    /// Synthetic images sent with every plain prompt (`{count, size, format}`); null: none.
    /// Made by the client from the seed ahead of each send and attached as `data:` URLs (needs
    /// `client.api: openai-chat` or a template with `{{image_url}}`). docs/DATASETS.md lists
    /// the sizes and what the pixels are.
    pub images: Option<ImagesConfig>,
    /// A text file that wraps every prompt: `{prompt}` marks where the prompt goes, `{NAME}`
    /// takes the record's field NAME (`output_length`, `dataset`, a key of a custom line's
    /// `fields`); `{{` and `}}` are literal braces, other braces are kept as they are. With
    /// `dataset.type: random` the wrapped prompt has exactly the sampled length, template
    /// included; other types measure the wrapped text (docs/DATASETS.md).
    #[schemars(extend("format" = "bench-path"))]
    pub prompt_template: Option<String>,
    /// Named datasets (the top-level `datasets:` map) to use instead of this section's own
    /// type: one name, or a weighted mix (`[{name: sharegpt, weight: 0.7}, {name: long_docs,
    /// weight: 0.3}]`). Each request records which one it came from.
    #[serde(rename = "use")]
    pub use_: Option<DatasetUse>,
    /// Records (plain prompts or sessions) in a mix (null: as many as the named datasets allow
    /// at their weights). Split by weight with the largest-remainder rule (docs/DATASETS.md).
    #[schemars(range(min = 1, max = crate::MAX_REQUESTS))]
    pub records: Option<u64>,
}

/// `dataset.images`: synthetic images per prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ImagesConfig {
    /// Images per prompt.
    #[schemars(range(min = 1, max = 16))]
    pub count: u32,
    /// `small` (500x500), `medium` (1000x1000), `large` (2000x2000) or `WxH` (each side
    /// 1..=8192), SambaNova's presets.
    pub size: String,
    /// `jpeg` (quality 85) or `png`.
    pub format: ImageFormatName,
}

impl Default for ImagesConfig {
    fn default() -> Self {
        ImagesConfig {
            count: 1,
            size: "medium".into(),
            format: ImageFormatName::Jpeg,
        }
    }
}

/// Encoding of synthetic images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum ImageFormatName {
    /// JPEG, quality 85.
    #[default]
    Jpeg,
    /// 8-bit RGB PNG.
    Png,
}

impl ImagesConfig {
    /// The images' width and height (the size string checked by validation).
    pub fn dims(&self) -> Result<(u32, u32), String> {
        bench_types::image::parse_image_size(&self.size)
    }

    /// The record-level format.
    pub fn format(&self) -> bench_types::image::ImageFormat {
        match self.format {
            ImageFormatName::Jpeg => bench_types::image::ImageFormat::Jpeg,
            ImageFormatName::Png => bench_types::image::ImageFormat::Png,
        }
    }
}

/// `dataset.use`: one named dataset, or a weighted mix of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum DatasetUse {
    /// One name of `datasets:`.
    One(String),
    /// A weighted mix.
    Mix(Vec<MixPart>),
}

/// One part of a dataset mix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MixPart {
    /// A name of `datasets:`.
    pub name: String,
    /// Relative weight (> 0); weights need not sum to 1.
    #[serde(default = "unit_weight")]
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub weight: f64,
}

fn unit_weight() -> f64 {
    1.0
}

impl DatasetUse {
    /// The parts: (name, weight), a single name weighing 1.
    pub fn parts(&self) -> Vec<(&str, f64)> {
        match self {
            DatasetUse::One(n) => vec![(n.as_str(), 1.0)],
            DatasetUse::Mix(v) => v.iter().map(|p| (p.name.as_str(), p.weight)).collect(),
        }
    }
}

/// Splits `total` records among `weights` exactly: each part gets `floor(total x w / sum)`,
/// and the records left over go one each to the parts with the largest fractional remainders
/// (ties: the earlier part), the largest-remainder (Hamilton) rule. The counts sum to `total`.
pub fn split_by_weight(total: u64, weights: &[f64]) -> Vec<u64> {
    let sum: f64 = weights.iter().sum();
    if weights.is_empty() || sum <= 0.0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<f64> = weights.iter().map(|w| total as f64 * w / sum).collect();
    let mut counts: Vec<u64> = exact.iter().map(|x| x.floor() as u64).collect();
    let mut left = total.saturating_sub(counts.iter().sum());
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    for i in order.into_iter().cycle() {
        if left == 0 {
            break;
        }
        counts[i] += 1;
        left -= 1;
    }
    counts
}

impl Default for DatasetConfig {
    fn default() -> Self {
        DatasetConfig {
            kind: DatasetType::Random,
            random: RandomDataset::default(),
            synthetic_shared: SyntheticSharedDataset::default(),
            synthetic_multiturn: SyntheticMultiturnDataset::default(),
            sharegpt: SharegptDataset::default(),
            client_trace: ClientTraceDataset::default(),
            custom: CustomDataset::default(),
            image_jobs: ImageJobsDataset::default(),
            unique_prefix: false,
            images: None,
            prompt_template: None,
            use_: None,
            records: None,
        }
    }
}

/// Shape of a length distribution. Every shape is truncated to the configured [min, max]
/// range (sampled from the distribution conditioned on the range, so no pile-up at the
/// bounds), then rounded to whole tokens. A std of 0 gives exactly the mean for every shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum LengthDistribution {
    /// Every prompt has exactly the mean length (std ignored).
    #[default]
    Fixed,
    /// Normal(mean, std), truncated to [min, max].
    Normal,
    /// Uniform in [mean - std*sqrt(3), mean + std*sqrt(3)] (so the std is `std`), truncated.
    Uniform,
    /// Log-normal with the given mean and std, truncated.
    Lognormal,
}

/// `dataset.random`: the "configuration" mode of Bud (max_input_tokens / max_output_tokens)
/// and SambaNova's synthetic mode (input/output tokens), with optional spread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RandomDataset {
    /// Number of prompts to generate.
    #[schemars(range(min = 1, max = crate::MAX_REQUESTS))]
    pub num_prompts: u64,
    /// Mean prompt length in tokens (the exact length when the distribution is fixed).
    #[schemars(range(min = 1, max = crate::MAX_PROMPT_TOKENS))]
    pub input_tokens: u32,
    /// Standard deviation of the prompt length (ignored for `fixed`).
    #[schemars(range(min = 0.0))]
    pub input_std: f64,
    /// Shortest sampled prompt length in tokens.
    #[schemars(range(min = 1, max = crate::MAX_PROMPT_TOKENS))]
    pub input_min: u32,
    /// Longest sampled prompt length in tokens.
    #[schemars(range(min = 1, max = crate::MAX_PROMPT_TOKENS))]
    pub input_max: u32,
    /// Mean output length in tokens (written as each prompt's `output_length`).
    #[schemars(range(min = 1))]
    pub output_tokens: u32,
    /// Standard deviation of the output length (ignored for `fixed`).
    #[schemars(range(min = 0.0))]
    pub output_std: f64,
    /// Shortest sampled output length in tokens.
    #[schemars(range(min = 1))]
    pub output_min: u32,
    /// Longest sampled output length in tokens.
    #[schemars(range(min = 1))]
    pub output_max: u32,
    /// Distribution of both lengths.
    pub distribution: LengthDistribution,
}

impl Default for RandomDataset {
    fn default() -> Self {
        RandomDataset {
            num_prompts: 200,
            input_tokens: 512,
            input_std: 0.0,
            input_min: 1,
            input_max: 131_072,
            output_tokens: 128,
            output_std: 0.0,
            output_min: 1,
            output_max: 131_072,
            distribution: LengthDistribution::Fixed,
        }
    }
}

/// One group of AIBrix's controlled shared-prefix generator (one "config" of its
/// comma-separated lists).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SharedPrefixGroup {
    /// Mean prompt length in tokens (prefix + unique part); Normal, truncated at 1.
    #[schemars(range(min = 1, max = crate::MAX_PROMPT_TOKENS))]
    pub prompt_length: u32,
    /// Std of the prompt length.
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub prompt_std: f64,
    /// Mean fraction of each prompt that is its group's shared prefix.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub shared_prop: f64,
    /// Std of the shared fraction (Normal, truncated to [0, 1] of the prompt).
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub shared_prop_std: f64,
    /// Prompts per prefix (AIBrix's num_samples = num_samples_per_prefix); the group has
    /// `num_prefix * num_samples` prompts.
    #[schemars(range(min = 1))]
    pub num_samples: u32,
    /// Distinct shared prefixes in this group.
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub num_prefix: u32,
}

fn one() -> u32 {
    1
}

/// `dataset.synthetic_shared`: AIBrix's controlled shared-prefix generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticSharedDataset {
    /// The groups (AIBrix's comma-separated per-config lists, one entry per config).
    pub groups: Vec<SharedPrefixGroup>,
    /// Output length written with each prompt (null: leave to the workload).
    #[schemars(range(min = 1))]
    pub output_length: Option<u32>,
    /// Shuffle prompts across groups and prefixes (false: group by group, prefix by prefix,
    /// as AIBrix's dataset mode writes them).
    pub shuffle: bool,
}

impl Default for SyntheticSharedDataset {
    fn default() -> Self {
        // AIBrix's config.yaml defaults.
        let g = |prompt_length, prompt_std, shared_prop, num_samples| SharedPrefixGroup {
            prompt_length,
            prompt_std,
            shared_prop,
            shared_prop_std: 0.00001,
            num_samples,
            num_prefix: 1,
        };
        SyntheticSharedDataset {
            groups: vec![
                g(3997, 17.0, 0.95, 12),
                g(5868, 28.0, 0.97, 8),
                g(2617, 1338.0, 0.03, 79),
            ],
            output_length: None,
            shuffle: false,
        }
    }
}

/// `dataset.synthetic_multiturn`: sessions with Pareto prompt lengths and Normal turn counts
/// (AIBrix's multiturn generator).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticMultiturnDataset {
    /// Mean number of sessions (Normal, truncated toward zero, at least 1).
    #[schemars(range(min = 1.0))]
    pub num_sessions: f64,
    /// Std of the number of sessions (0: exactly `num_sessions`).
    #[schemars(range(min = 0.0))]
    pub num_sessions_std: f64,
    /// Mean prompt length in tokens (Pareto with alpha = 2 + 1/r^2, r = std/mean).
    #[schemars(range(min = 1.0))]
    pub prompt_length: f64,
    /// Std parameter of the prompt length (0: every prompt has the mean length).
    #[schemars(range(min = 0.0))]
    pub prompt_std: f64,
    /// Mean turns per session (Normal, truncated toward zero, at least 1).
    #[schemars(range(min = 1.0))]
    pub num_turns: f64,
    /// Std of the turns per session.
    #[schemars(range(min = 0.0))]
    pub num_turns_std: f64,
    /// Tokens of a prefix shared by every session's first turn (a system prompt); 0 for none.
    pub shared_prefix_length: u32,
    /// Upper clamp for a sampled prompt length (the shared prefix comes on top).
    #[schemars(range(min = 1, max = crate::MAX_PROMPT_TOKENS))]
    pub max_prompt_length: u32,
    /// Output length per turn, written as each session's `completion_lengths` (null: leave
    /// to the workload).
    #[schemars(range(min = 1))]
    pub output_length: Option<u32>,
}

impl Default for SyntheticMultiturnDataset {
    fn default() -> Self {
        // AIBrix's config.yaml defaults (num_sessions lowered so the default run is short).
        SyntheticMultiturnDataset {
            num_sessions: 100.0,
            num_sessions_std: 0.0,
            prompt_length: 80.0,
            prompt_std: 472.0,
            num_turns: 3.55,
            num_turns_std: 2.89,
            shared_prefix_length: 0,
            max_prompt_length: 16384,
            output_length: None,
        }
    }
}

/// What happens to a ShareGPT `system` turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum SystemPrompt {
    /// Prepend the system text (and a blank line) to the next user prompt, so the tokens the
    /// server processes are kept.
    #[default]
    Fold,
    /// Drop system turns.
    Drop,
}

/// What happens to a ShareGPT turn whose `from` is not a known user, assistant or system
/// spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum UnknownRoles {
    /// Stop with an error naming the file, position, conversation and role.
    #[default]
    Error,
    /// Drop the turn (counted in the stage's stats).
    Skip,
}

/// Layout of the ShareGPT output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum SharegptLayout {
    /// One session per conversation (prompts, completions, and their token lengths).
    #[default]
    Sessions,
    /// One plain prompt per kept turn (output_length = the reference reply's tokens); with
    /// `max_turns: 1` this is vLLM's first-turn ShareGPT benchmark.
    Plain,
}

/// `dataset.sharegpt`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SharegptDataset {
    /// ShareGPT JSON file: an array of {id, conversations:[{from, value}]} (pretty-printed or
    /// one line), or JSONL with one such object per line.
    #[schemars(extend("format" = "bench-path"))]
    pub path: Option<String>,
    /// Output layout.
    pub layout: SharegptLayout,
    /// What to do with `system` turns.
    pub system_prompt: SystemPrompt,
    /// What to do with turns whose `from` is not recognised.
    pub unknown_roles: UnknownRoles,
    /// Drop turns whose prompt is shorter than this many tokens.
    pub min_prompt_tokens: Option<u32>,
    /// Drop turns whose prompt is longer than this many tokens.
    pub max_prompt_tokens: Option<u32>,
    /// Drop turns whose reference reply is shorter than this many tokens (answered
    /// conversations only).
    pub min_completion_tokens: Option<u32>,
    /// Drop turns whose reference reply is longer than this many tokens.
    pub max_completion_tokens: Option<u32>,
    /// Keep at most this many sessions (in file order, after the filters).
    #[schemars(range(min = 1))]
    pub max_sessions: Option<u64>,
    /// Keep at most this many turns per session (the first ones, after the filters).
    #[schemars(range(min = 1))]
    pub max_turns: Option<u32>,
}

/// Which part of a client-output request becomes the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum TraceMessages {
    /// Every message's content, in order, joined by a blank line: the replayed prompt carries
    /// the tokens the original request sent (history included).
    #[default]
    Joined,
    /// Only the last user message (the new turn of a multi-turn request).
    LastUser,
}

/// `dataset.client_trace`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ClientTraceDataset {
    /// Client output file: AIBrix output.jsonl, or the output.jsonl a bench run writes with
    /// `client.write_aibrix_output`.
    #[schemars(extend("format" = "bench-path"))]
    pub path: Option<String>,
    /// How the request's messages become the prompt text.
    pub messages: TraceMessages,
}

/// `dataset.custom`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CustomDataset {
    /// JSONL with `prompt` (required), optional `image_path` (relative to the JSONL file's
    /// directory), `output_length`.
    #[schemars(extend("format" = "bench-path"))]
    pub path: Option<String>,
}

/// Checks `datasets.<name>`: the checks of a `dataset` section, under its own keys; the keys
/// that only make sense on `dataset` itself are refused.
pub(crate) fn validate_named(name: &str, d: &DatasetConfig, e: &mut Errors) {
    let prefix = format!("datasets.{name}");
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_'))
    {
        e.push(
            &prefix,
            "a dataset name must be letters, digits, `-` or `_` (it is written in every record)",
        );
    }
    for (key, set) in [
        ("use", d.use_.is_some()),
        ("records", d.records.is_some()),
        ("unique_prefix", d.unique_prefix),
    ] {
        if set {
            e.push(
                &format!("{prefix}.{key}"),
                "belongs on `dataset` (it applies to the whole run), not on a named dataset",
            );
        }
    }
    let mut own = Errors::default();
    d.validate(&mut own);
    for x in own.0 {
        let key = match x.key.strip_prefix("dataset") {
            Some(rest) => format!("{prefix}{rest}"),
            None => x.key,
        };
        e.push(&key, x.msg);
    }
}

impl crate::Config {
    /// Checks `dataset.use` against `datasets:`.
    pub(crate) fn validate_use(&self, e: &mut Errors) {
        let Some(u) = &self.dataset.use_ else {
            return;
        };
        let parts = u.parts();
        if parts.is_empty() {
            e.push("dataset.use", "names no dataset");
        }
        for (i, (name, w)) in parts.iter().enumerate() {
            let key = match u {
                DatasetUse::One(_) => "dataset.use".to_string(),
                DatasetUse::Mix(_) => format!("dataset.use[{i}]"),
            };
            if !self.datasets.contains_key(*name) {
                let near = self
                    .datasets
                    .keys()
                    .map(|k| (strsim::normalized_damerau_levenshtein(name, k), k))
                    .filter(|(s, _)| *s >= 0.6)
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                let msg = match (near, self.datasets.is_empty()) {
                    (_, true) => format!("`{name}` is not defined: `datasets:` is empty"),
                    (Some((_, k)), _) => {
                        format!("`{name}` is not in `datasets:`; did you mean `{k}`?")
                    }
                    (None, _) => format!(
                        "`{name}` is not in `datasets:` (defined: {})",
                        self.datasets.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                };
                e.push(&key, msg);
            }
            if !(w.is_finite() && *w > 0.0) {
                e.push(&format!("{key}.weight"), format!("{w} must be > 0"));
            }
            if parts[..i].iter().any(|(n, _)| n == name) {
                e.push(&key, format!("`{name}` is named twice"));
            }
        }
    }
}

/// `dataset.image_jobs`: `num_jobs` image generation jobs, each a ComfyUI workflow with its
/// size, steps, prompt and seed filled in. Each dataset line carries them as `fields`
/// (`width`, `height`, `steps`, `seed`, `workflow`), which the workload passes on and a
/// template's body places (`{{field.workflow}}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ImageJobsDataset {
    /// Number of jobs.
    #[schemars(range(min = 1, max = 1_000_000))]
    pub num_jobs: u64,
    /// Image width, pixels.
    #[schemars(range(min = 8, max = 16384))]
    pub width: u32,
    /// Image height, pixels.
    #[schemars(range(min = 8, max = 16384))]
    pub height: u32,
    /// Sampling steps.
    #[schemars(range(min = 1, max = 10000))]
    pub steps: u32,
    /// Prompts, used in turn.
    pub prompts: Vec<String>,
    /// A ComfyUI workflow in API format (JSON) in which `{{width}}`, `{{height}}`,
    /// `{{steps}}`, `{{prompt}}` and `{{seed}}` are replaced (a string that is exactly one
    /// becomes a number where the value is one). Null: a built-in Stable Diffusion 1.5
    /// text-to-image workflow.
    #[schemars(extend("format" = "bench-path"))]
    pub workflow: Option<String>,
}

impl Default for ImageJobsDataset {
    fn default() -> Self {
        ImageJobsDataset {
            num_jobs: 4,
            width: 512,
            height: 512,
            steps: 20,
            prompts: vec!["a lighthouse on a cliff at dusk, oil painting".into()],
            workflow: None,
        }
    }
}

impl DatasetConfig {
    /// The config key and value of the input file the selected type reads, if any.
    pub fn input_path(&self) -> Option<(&'static str, &str)> {
        let (key, v) = match self.kind {
            DatasetType::Sharegpt => ("dataset.sharegpt.path", &self.sharegpt.path),
            DatasetType::ClientTrace => ("dataset.client_trace.path", &self.client_trace.path),
            DatasetType::Custom => ("dataset.custom.path", &self.custom.path),
            _ => return None,
        };
        v.as_deref().map(|p| (key, p))
    }

    pub(crate) fn validate(&self, e: &mut Errors) {
        let need = |e: &mut Errors, key: &str, v: &Option<String>| {
            if v.as_deref().is_none_or(str::is_empty) {
                e.push(
                    key,
                    format!(
                        "is required when dataset.type is {}",
                        key.split('.').nth(1).unwrap_or("")
                    ),
                );
            }
        };
        match self.kind {
            DatasetType::Sharegpt => need(e, "dataset.sharegpt.path", &self.sharegpt.path),
            DatasetType::ClientTrace => {
                need(e, "dataset.client_trace.path", &self.client_trace.path)
            }
            DatasetType::Custom => need(e, "dataset.custom.path", &self.custom.path),
            DatasetType::ImageJobs if self.image_jobs.prompts.is_empty() => {
                e.push("dataset.image_jobs.prompts", "needs at least one prompt");
            }
            DatasetType::SyntheticShared if self.synthetic_shared.groups.is_empty() => {
                e.push(
                    "dataset.synthetic_shared.groups",
                    "needs at least one group",
                );
            }
            _ => {}
        }
        if let Some(im) = &self.images {
            if let Err(m) = im.dims() {
                e.push("dataset.images.size", m);
            }
            if !(1..=16).contains(&im.count) {
                e.push(
                    "dataset.images.count",
                    format!("{} is outside 1..=16", im.count),
                );
            }
        }
        if self.prompt_template.is_some() {
            let kind = self.kind;
            if matches!(
                kind,
                DatasetType::SyntheticShared
                    | DatasetType::SyntheticMultiturn
                    | DatasetType::ImageJobs
            ) && self.use_.is_none()
            {
                e.push(
                    "dataset.prompt_template",
                    format!(
                        "is not supported with dataset.type {}: use random (exact lengths, template included) or a dataset of given prompts (sharegpt, client_trace, custom)",
                        kind.as_str()
                    ),
                );
            }
        }
        let r = &self.random;
        for (name, mean, min, max) in [
            ("input", r.input_tokens, r.input_min, r.input_max),
            ("output", r.output_tokens, r.output_min, r.output_max),
        ] {
            if min > max {
                e.push(
                    &format!("dataset.random.{name}_min"),
                    format!("{min} is above dataset.random.{name}_max ({max})"),
                );
            } else if mean < min || mean > max {
                e.push(
                    &format!("dataset.random.{name}_tokens"),
                    format!("{mean} is outside [dataset.random.{name}_min, dataset.random.{name}_max] = [{min}, {max}]"),
                );
            }
        }
        let s = &self.sharegpt;
        if let (Some(a), Some(b)) = (s.min_prompt_tokens, s.max_prompt_tokens)
            && a > b
        {
            e.push(
                "dataset.sharegpt.min_prompt_tokens",
                format!("{a} is above dataset.sharegpt.max_prompt_tokens ({b})"),
            );
        }
        if let (Some(a), Some(b)) = (s.min_completion_tokens, s.max_completion_tokens)
            && a > b
        {
            e.push(
                "dataset.sharegpt.min_completion_tokens",
                format!("{a} is above dataset.sharegpt.max_completion_tokens ({b})"),
            );
        }
        let m = &self.synthetic_multiturn;
        for (key, v) in [
            ("num_sessions", m.num_sessions),
            ("num_sessions_std", m.num_sessions_std),
            ("prompt_length", m.prompt_length),
            ("prompt_std", m.prompt_std),
            ("num_turns", m.num_turns),
            ("num_turns_std", m.num_turns_std),
        ] {
            if !v.is_finite() {
                e.push(
                    &format!("dataset.synthetic_multiturn.{key}"),
                    format!("{v} is not a finite number"),
                );
            }
        }
        if m.num_sessions.is_finite() && m.num_sessions > 1e8 {
            e.push(
                "dataset.synthetic_multiturn.num_sessions",
                format!("{} is above the limit of 1e8", m.num_sessions),
            );
        }
        for (i, g) in self.synthetic_shared.groups.iter().enumerate() {
            let total = u64::from(g.num_samples) * u64::from(g.num_prefix);
            if total > 100_000_000 {
                e.push(
                    &format!("dataset.synthetic_shared.groups[{i}].num_samples"),
                    format!("num_samples * num_prefix = {total} prompts is above the limit of 1e8"),
                );
            }
            if !g.prompt_std.is_finite() || !g.shared_prop_std.is_finite() {
                e.push(
                    &format!("dataset.synthetic_shared.groups[{i}].prompt_std"),
                    "std values must be finite",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(d: &DatasetConfig) -> Vec<String> {
        let mut e = Errors::default();
        d.validate(&mut e);
        e.0.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn defaults_are_valid() {
        assert!(errors(&DatasetConfig::default()).is_empty());
    }

    #[test]
    fn random_ranges_are_checked() {
        let mut d = DatasetConfig::default();
        d.random.input_min = 600;
        d.random.output_max = 10;
        let e = errors(&d);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("`dataset.random.input_tokens`: 512 is outside"),
            "{e:?}"
        );
        assert!(
            e[1].starts_with("`dataset.random.output_tokens`: 128 is outside"),
            "{e:?}"
        );
        d.random.input_min = 2000;
        d.random.input_max = 1000;
        assert!(
            errors(&d)[0].starts_with("`dataset.random.input_min`: 2000 is above"),
            "{:?}",
            errors(&d)
        );
    }

    #[test]
    fn input_path_follows_type() {
        let mut d = DatasetConfig::default();
        assert_eq!(d.input_path(), None);
        d.kind = DatasetType::Custom;
        d.custom.path = Some("x.jsonl".into());
        assert_eq!(d.input_path(), Some(("dataset.custom.path", "x.jsonl")));
        assert_eq!(DatasetType::ClientTrace.as_str(), "client_trace");
    }

    #[test]
    fn keys_load_from_overrides_with_ranges_checked() {
        let load = |o: &[&str]| {
            crate::load(&crate::Sources {
                files: vec![],
                overrides: o.iter().map(|s| s.to_string()).collect(),
                env: false,
            })
        };
        let r = load(&[
            "dataset.type=sharegpt",
            "dataset.sharegpt.path=sg.json",
            "dataset.sharegpt.layout=plain",
            "dataset.sharegpt.system_prompt=drop",
            "dataset.sharegpt.max_turns=1",
            "dataset.client_trace.messages=last_user",
            "dataset.random.distribution=lognormal",
        ])
        .unwrap();
        let d = &r.config.dataset;
        assert_eq!(d.sharegpt.layout, SharegptLayout::Plain);
        assert_eq!(d.sharegpt.system_prompt, SystemPrompt::Drop);
        assert_eq!(d.sharegpt.max_turns, Some(1));
        assert_eq!(d.client_trace.messages, TraceMessages::LastUser);
        assert_eq!(d.random.distribution, LengthDistribution::Lognormal);
        let e = load(&["dataset.sharegpt.max_turns=0"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("dataset.sharegpt.max_turns"), "{e}");
        let e = load(&["dataset.sharegpt.layuot=plain"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean `layout`"), "{e}");
    }

    #[test]
    fn completion_filters_are_ordered() {
        let mut d = DatasetConfig::default();
        d.sharegpt.min_completion_tokens = Some(10);
        d.sharegpt.max_completion_tokens = Some(5);
        let e = errors(&d);
        assert!(
            e[0].contains("dataset.sharegpt.min_completion_tokens"),
            "{e:?}"
        );
    }
}
