//! Before the clock starts: is the endpoint up, does it serve the model, does it answer the way
//! `client.api` says? And what is it (engine, version, models), for the manifest and the report.
//!
//! Steps, each bounded by `client.connect_timeout_s`:
//! 1. the model list: `GET /v1/models` (OpenAI APIs) or `GET /info` (TGI). Refused connections,
//!    timeouts, 502/503/504 and a model not listed yet are "not ready": with
//!    `client.wait_ready_s` the list is polled again until then, with a progress line. A 404
//!    means the server does not list models: said, and the model is not checked.
//! 2. the model: `client.model` must be listed; empty, the only model listed is taken.
//! 3. the engine and version, best effort: `owned_by`, TGI's `/info`, vLLM's `/version`, the
//!    `Server` header.
//! 4. one probe request (four output tokens, outside the records) sent by the run's own
//!    transport and parsed by its own parser: what it says wrong is a warning.

use std::time::{Duration, Instant};

use bench_config::ClientConfig;
use bench_config::client::Api;
use bytes::Bytes;
use serde::Serialize;

use crate::http::{self, Marks};
use crate::protocol::{BodyBuilder, Collector, Prompt};
use crate::{ClientError, run};

/// Output tokens the probe asks for.
const PROBE_TOKENS: u32 = 4;
/// Seconds between two progress lines while waiting for the server.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// Seconds between two polls of a server that is not ready.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// A model as the server lists it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ModelInfo {
    /// Its id (what `model` must say).
    pub id: String,
    /// `owned_by`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owned_by: Option<String>,
    /// `max_model_len` (vLLM, SGLang), `max_total_tokens` (TGI), `n_ctx` (llama.cpp).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_model_len: Option<u64>,
}

/// What the probe request got.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Probe {
    /// HTTP status.
    pub status: u16,
    /// Seconds from send to the end of the answer.
    pub seconds: f64,
    /// Content chunks received.
    pub chunks: usize,
    /// Output tokens the server reported (`usage`, TGI's details).
    pub usage_output_tokens: Option<u32>,
    /// The answer's `object` (`chat.completion.chunk`, `text_completion`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// `finish_reason`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
}

/// What the server told about itself (manifest `server`, the report's header).
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct ServerInfo {
    /// The base URL checked.
    pub url: String,
    /// The engine, when something says it (`vllm`, `sglang`, `tgi`, `llamacpp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Where the engine was read from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine_from: Option<String>,
    /// Its version, when the server says it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The `Server` response header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_header: Option<String>,
    /// The models listed (empty when the server does not list them).
    pub models: Vec<ModelInfo>,
    /// The model the run asks for.
    pub model: String,
    /// The model was taken from the list (client.model was empty).
    pub model_picked: bool,
    /// Seconds spent waiting for the server to be ready.
    pub waited_s: f64,
    /// The probe request, when sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<Probe>,
    /// What looked wrong (each also logged as a warning).
    pub warnings: Vec<String>,
}

/// The server's root URL: `base` without the API path or `/v1`.
pub fn root_url(base: &str) -> String {
    let mut r = base.trim_end_matches('/');
    for s in [
        "/chat/completions",
        "/completions",
        "/generate_stream",
        "/generate",
    ] {
        r = r.strip_suffix(s).unwrap_or(r);
    }
    r.strip_suffix("/v1").unwrap_or(r).to_string()
}

/// Why a model list could not be had.
enum NotListed {
    /// Not ready yet (worth polling again): the cause.
    Wait(String),
    /// The server answered, and will not list: a warning, and the run goes on unchecked.
    Unlisted(String),
    /// Nothing to wait for (credentials refused, ...): the run ends.
    Fatal(String),
}

/// A reqwest error's cause, in a few words.
fn cause(e: &reqwest::Error) -> String {
    let t = http::rq::root_cause(e);
    if e.is_timeout() {
        "no answer (timed out)".into()
    } else if t.contains("Connection refused") || t.contains("connection refused") {
        "connection refused".into()
    } else {
        t
    }
}

/// Blocking preflight, on its own small runtime. `sim_model`: the in-process engine's model
/// (taken when client.model is empty).
pub fn check(c: &ClientConfig, base_url: &str) -> Result<ServerInfo, ClientError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClientError::Other(format!("starting the runtime: {e}")))?;
    rt.block_on(check_async(c, base_url))
}

async fn check_async(c: &ClientConfig, base_url: &str) -> Result<ServerInfo, ClientError> {
    let headers = run::headers(c)?;
    let secrets = http::Secrets::of(&headers);
    let timeout = Duration::from_secs_f64(c.connect_timeout_s);
    let http = http::rq::side_client(&headers, timeout)
        .map_err(|e| ClientError::Other(format!("preflight client: {e}")))?;
    let root = root_url(base_url);
    let list_url = match c.api {
        Api::Tgi => format!("{root}/info"),
        _ => format!("{root}/v1/models"),
    };
    let mut info = ServerInfo {
        url: base_url.to_string(),
        ..ServerInfo::default()
    };
    let t0 = Instant::now();
    let wait = Duration::from_secs_f64(c.wait_ready_s);
    let mut said = t0;
    let listed = loop {
        let r = list_models(&http, &list_url, c.api, &mut info).await;
        let still = match r {
            Ok(models) if c.model.is_empty() || models.iter().any(|m| m.id == c.model) => {
                break Some(models);
            }
            Ok(models) => {
                let not_listed = format!(
                    "the server does not serve model `{}`; it serves: {}",
                    c.model,
                    ids(&models)
                );
                if t0.elapsed() + POLL_EVERY > wait {
                    return Err(ClientError::Server(format!(
                        "client.endpoint {base_url}: {not_listed} (set client.model, --model, to one of them)"
                    )));
                }
                not_listed
            }
            Err(NotListed::Unlisted(why)) => {
                warn(&mut info, format!("{why}: the model is not checked"));
                break None;
            }
            Err(NotListed::Fatal(why)) => {
                return Err(ClientError::Server(format!(
                    "client.endpoint {base_url}: {}",
                    secrets.redact(&why)
                )));
            }
            Err(NotListed::Wait(why)) => {
                if t0.elapsed() + POLL_EVERY > wait {
                    let waited = if wait.is_zero() {
                        String::new()
                    } else {
                        format!(
                            " after waiting {:.0} s (client.wait_ready_s)",
                            wait.as_secs_f64()
                        )
                    };
                    return Err(ClientError::Server(format!(
                        "client.endpoint {base_url}: {}{waited} ({list_url}){}",
                        secrets.redact(&why),
                        if wait.is_zero() {
                            "; client.wait_ready_s waits for a server that is starting"
                        } else {
                            ""
                        }
                    )));
                }
                why
            }
        };
        if said.elapsed() >= PROGRESS_EVERY || said == t0 {
            tracing::info!(
                "preflight: waiting for {base_url} to be ready: {} ({:.0} s of {:.0} s)",
                secrets.redact(&still),
                t0.elapsed().as_secs_f64(),
                wait.as_secs_f64()
            );
            said = Instant::now();
        }
        tokio::time::sleep(POLL_EVERY).await;
    };
    info.waited_s = (t0.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    info.model = c.model.clone();
    if let Some(models) = &listed {
        info.models = models.clone();
        if c.model.is_empty() {
            match models.as_slice() {
                [only] => {
                    info.model = only.id.clone();
                    info.model_picked = true;
                    tracing::info!(
                        "client.model: using `{}`, the only model {base_url} serves",
                        only.id
                    );
                }
                [] => {
                    return Err(ClientError::Server(format!(
                        "client.endpoint {base_url}: the server lists no model; set client.model (--model)"
                    )));
                }
                more => {
                    return Err(ClientError::Server(format!(
                        "client.endpoint {base_url}: the server serves {} models ({}): set client.model (--model) to one",
                        more.len(),
                        ids(more)
                    )));
                }
            }
        }
    } else if c.model.is_empty() {
        return Err(ClientError::Server(format!(
            "client.endpoint {base_url}: the server does not list its models; set client.model (--model)"
        )));
    }
    identify(&http, &root, c.api, &mut info).await;
    let mut probe_cfg = c.clone();
    probe_cfg.model = info.model.clone();
    probe(&probe_cfg, base_url, &secrets, &mut info).await?;
    Ok(info)
}

fn ids(models: &[ModelInfo]) -> String {
    let v: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
    if v.is_empty() {
        "(nothing)".into()
    } else {
        v.join(", ")
    }
}

fn warn(info: &mut ServerInfo, w: String) {
    tracing::warn!("preflight: {w}");
    info.warnings.push(w);
}

/// An answer's JSON, or why not.
async fn get_json(
    http: &reqwest::Client,
    url: &str,
) -> Result<(u16, Option<String>, Option<serde_json::Value>), reqwest::Error> {
    let r = http.get(url).send().await?;
    let status = r.status().as_u16();
    let server = r
        .headers()
        .get(reqwest::header::SERVER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = r.bytes().await?;
    Ok((status, server, serde_json::from_slice(&body).ok()))
}

async fn list_models(
    http: &reqwest::Client,
    url: &str,
    api: Api,
    info: &mut ServerInfo,
) -> Result<Vec<ModelInfo>, NotListed> {
    let (status, server, json) = get_json(http, url)
        .await
        .map_err(|e| NotListed::Wait(cause(&e)))?;
    if server.is_some() {
        info.server_header = server;
    }
    match status {
        200..=299 => {}
        401 | 403 => {
            return Err(NotListed::Fatal(format!(
                "GET {url} answered HTTP {status}: the server refused the credentials (client.api_key_env, client.headers)"
            )));
        }
        404 | 405 => {
            return Err(NotListed::Unlisted(format!(
                "GET {url} answered HTTP {status}: the server does not list its models"
            )));
        }
        502..=504 | 429 => {
            return Err(NotListed::Wait(format!("GET {url} answered HTTP {status}")));
        }
        s => {
            return Err(NotListed::Fatal(format!("GET {url} answered HTTP {s}")));
        }
    }
    let Some(v) = json else {
        return Err(NotListed::Unlisted(format!(
            "GET {url} did not answer JSON"
        )));
    };
    let num = |m: &serde_json::Value, keys: &[&str]| {
        keys.iter()
            .find_map(|k| m.get(*k).and_then(serde_json::Value::as_u64))
    };
    let models: Vec<ModelInfo> = match api {
        Api::Tgi => {
            if let Some(ver) = v.get("version").and_then(|x| x.as_str()) {
                info.version = Some(ver.to_string());
            }
            info.engine = Some("tgi".into());
            info.engine_from = Some("/info".into());
            v.get("model_id")
                .and_then(|x| x.as_str())
                .map(|id| ModelInfo {
                    id: id.to_string(),
                    owned_by: None,
                    max_model_len: num(&v, &["max_total_tokens", "max_input_length"]),
                })
                .into_iter()
                .collect()
        }
        _ => {
            v.get("data")
                .and_then(|d| d.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|m| {
                            Some(ModelInfo {
                                id: m.get("id")?.as_str()?.to_string(),
                                owned_by: m
                                    .get("owned_by")
                                    .and_then(|x| x.as_str())
                                    .map(str::to_string),
                                max_model_len: num(m, &["max_model_len", "context_length"])
                                    .or_else(|| {
                                        m.get("meta")
                                            .and_then(|x| num(x, &["n_ctx_train", "n_ctx"]))
                                    }),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default()
        }
    };
    if models.is_empty() {
        // a server still loading its model lists none yet
        return Err(NotListed::Wait(format!("GET {url} lists no model yet")));
    }
    Ok(models)
}

/// The engine and its version, best effort.
async fn identify(http: &reqwest::Client, root: &str, api: Api, info: &mut ServerInfo) {
    if info.engine.is_none() {
        let owners: Vec<&str> = info
            .models
            .iter()
            .filter_map(|m| m.owned_by.as_deref())
            .collect();
        for (needle, engine) in [
            ("vllm", "vllm"),
            ("sglang", "sglang"),
            ("llamacpp", "llamacpp"),
            ("llama.cpp", "llamacpp"),
        ] {
            if owners.iter().any(|o| o.eq_ignore_ascii_case(needle)) {
                info.engine = Some(engine.into());
                info.engine_from = Some("owned_by".into());
                break;
            }
        }
    }
    if info.engine.is_none()
        && let Some(s) = &info.server_header
        && s.to_ascii_lowercase().contains("llama")
    {
        info.engine = Some("llamacpp".into());
        info.engine_from = Some("Server header".into());
    }
    if api != Api::Tgi
        && info.version.is_none()
        && let Ok((200, _, Some(v))) = get_json(http, &format!("{root}/version")).await
        && let Some(ver) = v.get("version").and_then(|x| x.as_str())
    {
        info.version = Some(ver.to_string());
    }
}

/// One request of [`PROBE_TOKENS`] tokens through the run's transport and parser.
async fn probe(
    c: &ClientConfig,
    base_url: &str,
    secrets: &http::Secrets,
    info: &mut ServerInfo,
) -> Result<(), ClientError> {
    let builder = BodyBuilder::for_config(c).map_err(ClientError::Input)?;
    if let Some(t) = builder.template() {
        // the run logs a mismatch once; the probe's is one of its warnings
        t.silence();
    }
    let spec = run::request_spec(c, base_url, &builder)?;
    let native = run::use_native(c, &spec.endpoint)?;
    let transport = if native {
        http::Transport::native(&spec).await
    } else {
        http::Transport::reqwest(&spec)
    }
    .map_err(|e| ClientError::Server(format!("client.endpoint {base_url}: {e}")))?;
    let body =
        Bytes::from(builder.build(Prompt::Text("Say hello in one word."), Some(PROBE_TOKENS)));
    let t0 = Instant::now();
    let mut col = Collector::new(c.api, c.stream, t0).with_template(builder.template().cloned());
    let mut marks = Marks::default();
    let sent = tokio::time::timeout(
        Duration::from_secs_f64(c.timeout_s),
        transport.send(&body, &mut col, &mut marks),
    )
    .await;
    let end = match sent {
        Err(_) => {
            warn(
                info,
                format!(
                    "the probe request got no complete answer within client.timeout_s ({} s)",
                    c.timeout_s
                ),
            );
            return Ok(());
        }
        Ok(Err(f)) => {
            return Err(ClientError::Server(format!(
                "client.endpoint {base_url}: the probe request failed: {}",
                secrets.redact(&f.to_string())
            )));
        }
        Ok(Ok(end)) => end,
    };
    let parsed = col.finish(end.saturating_duration_since(t0).as_nanos() as i64);
    let status = col.status.unwrap_or(0);
    info.probe = Some(Probe {
        status,
        seconds: (end.saturating_duration_since(t0).as_secs_f64() * 1e3).round() / 1e3,
        chunks: col.chunks.len(),
        usage_output_tokens: col.usage_output,
        object: col.object.clone(),
        finish_reason: col.finish_reason.clone(),
    });
    if !col.success() {
        let e = secrets.redact(&col.http_error());
        if status == 404 && e.to_ascii_lowercase().contains("model") {
            return Err(ClientError::Server(format!(
                "client.endpoint {base_url}: the probe request for model `{}` answered {e}",
                c.model
            )));
        }
        warn(info, format!("the probe request answered {e}"));
        return Ok(());
    }
    if let Err(e) = parsed {
        warn(
            info,
            format!(
                "the probe's answer does not parse as {}: {}",
                run::api_name(c.api),
                secrets.redact(&e)
            ),
        );
        return Ok(());
    }
    for w in probe_findings(c, &col) {
        warn(info, w);
    }
    Ok(())
}

/// What a successful probe answer says about the server.
fn probe_findings(c: &ClientConfig, col: &Collector) -> Vec<String> {
    let mut out = Vec::new();
    let route = run::api_name(c.api);
    match (c.api, col.object.as_deref()) {
        (Api::OpenaiCompletions, Some(o)) if o.starts_with("chat.completion") => out.push(format!(
            "the server answers chat (`{o}`) on the completions route: client.api is {route}; use openai-chat"
        )),
        (Api::OpenaiChat, Some(o)) if o.starts_with("text_completion") => out.push(format!(
            "the server answers completions (`{o}`) on the chat route: client.api is {route}; use openai-completions"
        )),
        _ => {}
    }
    if col.chunks.is_empty() && col.content.is_empty() && col.reasoning.is_empty() {
        out.push(format!(
            "the probe's answer carried no text in the {route} shape: check client.api"
        ));
    }
    if !matches!(c.api, Api::Tgi | Api::Template) && col.usage_output.is_none() {
        if c.stream && c.stream_usage {
            out.push(
                "the server streams without `usage` (it ignores stream_options.include_usage): output token counts come from the client's tokenizer".into(),
            );
        } else if !c.stream {
            out.push(
                "the server's answer has no `usage`: token counts come from the client's tokenizer"
                    .into(),
            );
        }
    }
    let got = col
        .usage_output
        .map(|n| n as usize)
        .unwrap_or(col.chunks.len());
    if got > PROBE_TOKENS as usize {
        out.push(format!(
            "the server ignores max_tokens: the probe asked for {PROBE_TOKENS} tokens and got {got}{}",
            if col.usage_output.is_some() {
                ""
            } else {
                " chunks"
            }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_urls_drop_the_api_path() {
        for (base, root) in [
            ("http://h:8000", "http://h:8000"),
            ("http://h:8000/", "http://h:8000"),
            ("http://h:8000/v1", "http://h:8000"),
            ("http://h:8000/v1/chat/completions", "http://h:8000"),
            ("http://h:8000/v1/completions", "http://h:8000"),
            ("http://h/prefix/generate_stream", "http://h/prefix"),
        ] {
            assert_eq!(root_url(base), root, "{base}");
        }
    }
}
