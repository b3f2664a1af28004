//! `client.*`: how the workload is sent.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api_template::TemplateSpec;
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
    /// Any HTTP API, described by the YAML file `client.template`.
    #[serde(rename = "template")]
    Template,
}

/// Which HTTP implementation sends the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// `native` for `http://` endpoints, `reqwest` for `https://`.
    #[default]
    Auto,
    /// The client's own HTTP/1.1 implementation: lowest overhead, the request write and every
    /// read timed exactly. `http://` only.
    Native,
    /// reqwest (hyper) with rustls: HTTPS, proxies from the environment (HTTP_PROXY, ...).
    Reqwest,
}

/// `client`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    /// `sim` (start the simulated engine in-process on 127.0.0.1) or a base URL such as
    /// `http://localhost:8000`.
    pub endpoint: crate::Endpoint,
    /// Wire protocol.
    pub api: Api,
    /// With `api: template`: the YAML file describing the API (method, path, headers, body
    /// with placeholders, reply framing and JSON pointers); see `config/templates/`.
    #[schemars(extend("format" = "bench-path"))]
    pub template: Option<String>,
    /// Model name sent in each request. Not given (in no file and no override), the preflight
    /// takes the only model the endpoint lists (`sim-model` for `sim`); give it when the
    /// endpoint serves several, or when `client.preflight` is false.
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
    /// Show the progress bar on stderr (`-q` turns it off). When stderr is not a terminal a
    /// status line is logged every few seconds instead.
    pub progress: bool,
    /// HTTP implementation.
    pub transport: Transport,
    /// Ask for the server's token usage in streamed responses (`stream_options.include_usage`).
    /// Turn off for servers that reject the field.
    pub stream_usage: bool,
    /// JSON fields added to (or replacing fields of) every request body, e.g. `{top_k: 1}`.
    pub extra_body: BTreeMap<String, serde_json::Value>,
    /// Seconds between flushes of requests.parquet (each flush leaves a complete, readable file);
    /// a crash loses at most the requests finished since the last flush.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub flush_interval_s: f64,
    /// Memory budget (MiB) for request bodies prepared ahead of their send time. Small workloads
    /// are prepared entirely before the run starts; larger ones by a background thread that stays
    /// this far ahead.
    #[schemars(range(min = 1))]
    pub prepare_ahead_mib: u32,
    /// Keep each response's text in requests.parquet (`output_text` column).
    pub record_output_text: bool,
    /// Memory budget (MiB) for response bytes received and not yet consumed, across all
    /// requests in flight: partial SSE lines and events, non-streamed bodies, error bodies. A
    /// request whose buffers would take the total past it fails (`transport_error`). Normal
    /// streams hold a few KiB each; the default (1024) leaves most of a 2-core / 24 GiB
    /// machine's memory to the server and to the other stages.
    #[schemars(range(min = 16))]
    pub max_buffer_mib: u32,
    /// Before the clock starts, check the endpoint: it connects, lists its models
    /// (`/v1/models`, TGI's `/info`), serves `client.model`, and answers one probe request
    /// (outside the records) the way `client.api` says. An unreachable server or a model it
    /// does not serve ends the run (exit 1) before any record is written. `false` skips all
    /// of it, for endpoints that reject such requests.
    pub preflight: bool,
    /// Seconds to keep polling a server that is not ready yet (refusing connections, 503,
    /// model not loaded) before giving up, with a progress line: Dynamo's "wait for the model
    /// to be ready". 0: check once.
    #[schemars(range(min = 0.0))]
    pub wait_ready_s: f64,
    /// Seconds the preflight and each /metrics scrape wait for a connection and an answer.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub connect_timeout_s: f64,
    /// Send only shard `index` of `count` of the workload (null: all of it). The split is
    /// deterministic, keeps every session on one shard and balances requests and tokens; the
    /// shards together send the workload exactly once. The environment variable
    /// `JOB_COMPLETION_INDEX` (set by a Kubernetes Indexed Job) sets `index` unless an
    /// `--override client.shard.index` does. docs/KUBERNETES.md.
    pub shard: Option<Shard>,
    /// When the schedule starts: an absolute UTC time (`2026-12-07T03:00:00Z`), or `+30s`
    /// (`+500ms`, `+2m`) after this process starts. Null: as soon as the client is ready.
    /// Every shard of a sharded run anchors on the same instant.
    pub start_at: Option<String>,
    /// What a client that is ready only after `start_at` does: `refuse` (exit 2, naming the
    /// delay) or `allow` (keep the shared anchor: the requests already due are sent at once,
    /// their lateness shows as dispatch lag).
    pub late_start: LateStart,
}

/// `client.shard`: which part of the workload this process sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    /// This shard, 0-based (`JOB_COMPLETION_INDEX` when set).
    pub index: u32,
    /// Number of shards.
    #[schemars(range(min = 1))]
    pub count: u32,
}

/// `client.late_start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum LateStart {
    /// Exit with status 2, naming how late the client is.
    #[default]
    Refuse,
    /// Start late on the shared anchor.
    Allow,
}

/// `client.start_at`, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// This instant.
    At(jiff::Timestamp),
    /// This long after the process started.
    After(std::time::Duration),
}

impl StartAt {
    /// Parses `+30s`, `+500ms`, `+2m` or an RFC 3339 time with a UTC offset.
    pub fn parse(s: &str) -> Result<StartAt, String> {
        let s = s.trim();
        if let Some(rel) = s.strip_prefix('+') {
            let (num, unit) = rel
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .map_or((rel, ""), |i| rel.split_at(i));
            let mult = match unit {
                "ms" => 1e-3,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => {
                    return Err(format!(
                        "`{s}`: a relative start is `+N` with a unit ms, s, m or h (like `+30s`)"
                    ));
                }
            };
            let n: f64 = num
                .parse()
                .map_err(|_| format!("`{s}`: `{num}` is not a number"))?;
            return Ok(StartAt::After(std::time::Duration::from_secs_f64(n * mult)));
        }
        s.parse::<jiff::Timestamp>().map(StartAt::At).map_err(|e| {
            format!("`{s}`: not an RFC 3339 UTC time (like `2026-12-07T03:00:00Z`) nor `+30s`: {e}")
        })
    }

    /// The start as Unix ns, for a process that started at `process_start_unix_ns`.
    pub fn unix_ns(self, process_start_unix_ns: i64) -> i64 {
        match self {
            StartAt::At(t) => t.as_nanosecond() as i64,
            StartAt::After(d) => process_start_unix_ns + d.as_nanos() as i64,
        }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            endpoint: crate::Endpoint::Sim,
            api: Api::OpenaiChat,
            template: None,
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
            transport: Transport::Auto,
            stream_usage: true,
            extra_body: BTreeMap::new(),
            flush_interval_s: 1.0,
            prepare_ahead_mib: 256,
            record_output_text: false,
            max_buffer_mib: 1024,
            preflight: true,
            wait_ready_s: 0.0,
            connect_timeout_s: 10.0,
            shard: None,
            start_at: None,
            late_start: LateStart::Refuse,
        }
    }
}

impl ClientConfig {
    /// Whether the endpoint is the in-process simulated engine.
    pub fn is_sim(&self) -> bool {
        self.endpoint == crate::Endpoint::Sim
    }

    /// The template file of `api: template`, read and checked.
    pub fn template_spec(&self) -> Result<Option<TemplateSpec>, Vec<String>> {
        match (&self.api, &self.template) {
            (Api::Template, Some(p)) => TemplateSpec::load(std::path::Path::new(p)).map(Some),
            _ => Ok(None),
        }
    }

    pub(crate) fn validate(&self, e: &mut Errors) {
        match (self.api, &self.template) {
            (Api::Template, None) => e.push(
                "client.template",
                "is required with client.api: template (a YAML file such as config/templates/openai-chat.yaml)",
            ),
            (Api::Template, Some(_)) => {
                if let Err(problems) = self.template_spec() {
                    for p in problems {
                        e.push("client.template", p);
                    }
                }
            }
            (_, Some(_)) => e.push(
                "client.template",
                "is used only with client.api: template; set client.api: template or remove it",
            ),
            _ => {}
        }
        if let Some(d) = self.duration_limit_s
            && d <= 0.0
        {
            e.push("client.duration_limit_s", format!("{d} must be > 0"));
        }
        if let Some(name) = &self.api_key_env {
            let is_var_name = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if name.is_empty() {
                e.push(
                    "client.api_key_env",
                    "is empty; give the name of an environment variable",
                );
            } else if !is_var_name {
                // never echo the value: it may well be the key itself
                e.push(
                    "client.api_key_env",
                    "takes the name of the environment variable that holds the key (like OPENAI_API_KEY), not the key itself; the value given is not such a name and is not shown",
                );
            }
        }
        if self.transport == Transport::Native && self.endpoint.is_https() {
            e.push("client.transport", "`native` speaks plain http:// only; use `reqwest` (or `auto`) for an https:// endpoint");
        }
        if self.max_output_tokens == Some(0) {
            e.push(
                "client.max_output_tokens",
                "0 must be >= 1 (or null for no cap)",
            );
        }
        for (k, v) in &self.headers {
            let bad_name = k.is_empty()
                || !k
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if bad_name {
                e.push(
                    &format!("client.headers.{k}"),
                    "is not a valid HTTP header name",
                );
            } else if v.bytes().any(|b| b == b'\r' || b == b'\n') {
                e.push(
                    &format!("client.headers.{k}"),
                    "value must not contain a line break",
                );
            } else if ["content-length", "transfer-encoding", "connection"]
                .iter()
                .any(|h| k.eq_ignore_ascii_case(h))
            {
                e.push(
                    &format!("client.headers.{k}"),
                    "is set by the client for each request and cannot be given",
                );
            } else if k.eq_ignore_ascii_case("authorization") && self.api_key_env.is_some() {
                e.push(
                    &format!("client.headers.{k}"),
                    "conflicts with client.api_key_env, which sends `Authorization: Bearer <key>`: set one of them",
                );
            } else if k.eq_ignore_ascii_case("routing-strategy") && self.routing_strategy.is_some()
            {
                e.push(
                    &format!("client.headers.{k}"),
                    "conflicts with client.routing_strategy, which sends this header: set one of them",
                );
            }
        }
        for k in self.extra_body.keys() {
            let why = match k.as_str() {
                "messages" | "prompt" | "inputs" | "stream" | "parameters" => {
                    "is set by the client itself (prompt, conversation, client.stream, TGI parameters) and cannot be overridden"
                }
                "max_tokens" | "min_tokens" | "ignore_eos" | "max_new_tokens" => {
                    "is set from the workload's output lengths and recorded per request: use \
                     client.max_output_tokens (a cap) or client.force_output_length instead"
                }
                "model" => "use client.model (it is recorded with the run)",
                _ => continue,
            };
            e.push(&format!("client.extra_body.{k}"), why);
        }
        if let Some(r) = &self.routing_strategy
            && r.bytes().any(|b| b == b'\r' || b == b'\n')
        {
            e.push("client.routing_strategy", "must not contain a line break");
        }
        if let Some(s) = self.shard {
            if s.count == 0 {
                e.push("client.shard.count", "0 must be >= 1");
            } else if s.index >= s.count {
                e.push(
                    "client.shard.index",
                    format!("{} must be below client.shard.count ({})", s.index, s.count),
                );
            }
        }
        if let Some(s) = &self.start_at
            && let Err(m) = StartAt::parse(s)
        {
            e.push("client.start_at", m);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn problems(f: impl FnOnce(&mut Config)) -> Vec<String> {
        let mut c = Config::default();
        f(&mut c);
        match c.validate() {
            Ok(()) => vec![],
            Err(e) => {
                e.0.iter()
                    .map(|x| format!("{}: {}", x.key, x.msg))
                    .collect()
            }
        }
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(problems(|_| {}), Vec::<String>::new());
    }

    #[test]
    fn client_problems_are_all_reported_with_their_keys() {
        let p = problems(|c| {
            c.client.endpoint = crate::Endpoint::Url("https://api.example.com".into());
            c.client.transport = super::Transport::Native;
            c.client.max_output_tokens = Some(0);
            c.client
                .headers
                .insert("X-Bad".into(), "a\r\nInjected: 1".into());
            c.client.headers.insert("bad name".into(), "x".into());
            c.client
                .extra_body
                .insert("messages".into(), serde_json::json!([]));
            c.client
                .extra_body
                .insert("top_k".into(), serde_json::json!(1));
            c.client
                .extra_body
                .insert("max_tokens".into(), serde_json::json!(2));
            c.client.headers.insert("Content-Length".into(), "5".into());
            c.client
                .headers
                .insert("Authorization".into(), "Bearer x".into());
            c.client.api_key_env = Some(String::new());
        });
        let want = [
            "client.api_key_env: is empty",
            "client.transport: `native` speaks plain http:// only",
            "client.max_output_tokens: 0 must be >= 1",
            "client.headers.X-Bad: value must not contain a line break",
            "client.headers.bad name: is not a valid HTTP header name",
            "client.extra_body.messages: is set by the client itself",
            "client.extra_body.max_tokens: is set from the workload's output lengths",
            "client.headers.Content-Length: is set by the client",
            "client.headers.Authorization: conflicts with client.api_key_env",
        ];
        for w in want {
            assert!(
                p.iter().any(|x| x.starts_with(w)),
                "missing `{w}` in {p:#?}"
            );
        }
        assert_eq!(p.len(), want.len(), "{p:#?}");
    }

    #[test]
    fn new_keys_load_from_yaml_overrides() {
        use crate::{Sources, load};
        let r = load(&Sources {
            files: vec![],
            overrides: vec![
                "client.transport=reqwest".into(),
                "client.extra_body={top_k: 1}".into(),
                "client.flush_interval_s=0.5".into(),
                "client.prepare_ahead_mib=64".into(),
                "client.max_buffer_mib=64".into(),
            ],
            env: false,
        })
        .unwrap();
        let c = &r.config.client;
        assert_eq!(c.transport, super::Transport::Reqwest);
        assert_eq!(c.extra_body.get("top_k"), Some(&serde_json::json!(1)));
        assert_eq!((c.flush_interval_s, c.prepare_ahead_mib), (0.5, 64));
        assert_eq!(c.max_buffer_mib, 64);
        let e = load(&Sources {
            files: vec![],
            overrides: vec!["client.max_buffer_mib=8".into()],
            env: false,
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("client.max_buffer_mib"), "{e}");
        let e = load(&Sources {
            files: vec![],
            overrides: vec!["client.flush_interval_s=0".into()],
            env: false,
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("client.flush_interval_s"), "{e}");
    }

    #[test]
    fn shard_and_start_at_are_checked_with_their_keys() {
        use super::{LateStart, Shard, StartAt};
        use std::time::Duration;
        assert_eq!(
            StartAt::parse("+30s"),
            Ok(StartAt::After(Duration::from_secs(30)))
        );
        assert_eq!(
            StartAt::parse("+250ms"),
            Ok(StartAt::After(Duration::from_millis(250)))
        );
        assert_eq!(
            StartAt::parse("+2m"),
            Ok(StartAt::After(Duration::from_secs(120)))
        );
        let at = StartAt::parse("2026-12-07T03:00:00Z").unwrap();
        assert_eq!(at.unix_ns(0), 1_796_612_400_000_000_000);
        assert_eq!(
            StartAt::After(Duration::from_secs(2)).unix_ns(5),
            2_000_000_005
        );
        let p = problems(|c| {
            c.client.shard = Some(Shard { index: 3, count: 3 });
            c.client.start_at = Some("+30x".into());
        });
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].starts_with("client.shard.index: 3 must be below client.shard.count (3)"),
            "{p:?}"
        );
        assert!(
            p[1].starts_with("client.start_at: `+30x`: a relative start"),
            "{p:?}"
        );
        let p = problems(|c| c.client.start_at = Some("tomorrow".into()));
        assert!(p[0].contains("not an RFC 3339 UTC time"), "{p:?}");
        let p = problems(|c| c.client.shard = Some(Shard { index: 0, count: 0 }));
        assert_eq!(p, vec!["client.shard.count: 0 must be >= 1".to_string()]);

        use crate::{Sources, load};
        let r = load(&Sources {
            files: vec![],
            overrides: vec![
                "client.shard={index: 1, count: 4}".into(),
                "client.late_start=allow".into(),
                "client.start_at=+5s".into(),
            ],
            env: false,
        })
        .unwrap();
        assert_eq!(r.config.client.shard, Some(Shard { index: 1, count: 4 }));
        assert_eq!(r.config.client.late_start, LateStart::Allow);
        let e = load(&Sources {
            files: vec![],
            overrides: vec!["client.shard={index: 1, cuont: 4}".into()],
            env: false,
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("client.shard.cuont") && e.contains("count"),
            "{e}"
        );
    }

    #[test]
    fn an_api_key_given_as_the_variable_name_is_refused_without_echoing_it() {
        let key = "sk-abc123-not-a-variable";
        let p = problems(|c| c.client.api_key_env = Some(key.into()));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("client.api_key_env") && p[0].contains("not the key itself"),
            "{}",
            p[0]
        );
        assert!(
            !p[0].contains(key) && !p[0].contains("abc123"),
            "echoed: {}",
            p[0]
        );
        assert!(problems(|c| c.client.api_key_env = Some("OPENAI_API_KEY".into())).is_empty());
    }
}
