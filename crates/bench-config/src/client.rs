//! `client.*`: how the workload is sent.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::errors::Errors;

/// Wire protocol of the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
pub enum Api {
    /// OpenAI `/v1/completions`.
    #[serde(rename = "openai-completions")]
    OpenaiCompletions,
    /// OpenAI `/v1/chat/completions`.
    #[default]
    #[serde(rename = "openai-chat")]
    OpenaiChat,
    /// Hugging Face TGI `/generate_stream` and `/generate`.
    #[serde(rename = "tgi")]
    Tgi,
}

/// `client`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    /// `sim` (start the simulated engine in-process on 127.0.0.1) or a base URL such as
    /// `http://localhost:8000`.
    pub endpoint: String,
    /// Wire protocol.
    pub api: Api,
    /// Model name sent in each request.
    pub model: String,
    /// Stream the response (needed for TTFT, TPOT, ITL).
    pub stream: bool,
    /// Name of the environment variable holding the API key (sent as a Bearer token). The key
    /// itself is never written to any file or log.
    pub api_key_env: Option<String>,
    /// Extra HTTP headers on every request.
    pub headers: BTreeMap<String, String>,
    /// Value of AIBrix's `routing-strategy` header (null: not sent).
    pub routing_strategy: Option<String>,
    /// Per-request timeout in seconds (whole response).
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub timeout_s: f64,
    /// At most this many requests in flight (null: no cap). Held requests record their wait.
    #[schemars(range(min = 1))]
    pub max_concurrency: Option<u32>,
    /// Multiplies every workload timestamp at dispatch: 0.5 sends twice as fast.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub time_scale: f64,
    /// Stop sending after this many seconds; unsent requests are recorded as not_sent and
    /// in-flight ones as cancelled after `grace_s`.
    pub duration_limit_s: Option<f64>,
    /// Seconds to wait for in-flight requests after Ctrl-C or the duration limit.
    #[schemars(range(min = 0.0))]
    pub grace_s: f64,
    /// Requests sent before the measured run (copies of the first workload prompts), recorded
    /// with `warmup = true` and excluded from results.
    pub warmup_requests: u32,
    /// Cap on `max_tokens` for every request (null: the workload's output_length).
    pub max_output_tokens: Option<u32>,
    /// Ask the server to produce exactly `max_tokens` (`min_tokens` and `ignore_eos`, where
    /// the server supports them).
    pub force_output_length: bool,
    /// Sampling temperature sent with each request (null: not sent).
    pub temperature: Option<f64>,
    /// Also write AIBrix's output.jsonl fields to `<run_dir>/output.jsonl`.
    pub write_aibrix_output: bool,
    /// Show the progress bar on stderr (`-q` turns it off).
    pub progress: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            endpoint: "sim".into(),
            api: Api::OpenaiChat,
            model: "sim-model".into(),
            stream: true,
            api_key_env: None,
            headers: BTreeMap::new(),
            routing_strategy: None,
            timeout_s: 120.0,
            max_concurrency: None,
            time_scale: 1.0,
            duration_limit_s: None,
            grace_s: 5.0,
            warmup_requests: 0,
            max_output_tokens: None,
            force_output_length: true,
            temperature: None,
            write_aibrix_output: false,
            progress: true,
        }
    }
}

impl ClientConfig {
    /// Whether the endpoint is the in-process simulated engine.
    pub fn is_sim(&self) -> bool {
        self.endpoint == "sim"
    }

    pub(crate) fn validate(&self, e: &mut Errors) {
        if !self.is_sim() && !(self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://")) {
            e.push("client.endpoint", format!("`{}` is neither `sim` nor an http(s):// URL", self.endpoint));
        }
        if let Some(d) = self.duration_limit_s
            && d <= 0.0
        {
            e.push("client.duration_limit_s", format!("{d} must be > 0"));
        }
        if let Some(name) = &self.api_key_env
            && name.is_empty()
        {
            e.push("client.api_key_env", "is empty; give the name of an environment variable");
        }
    }
}
