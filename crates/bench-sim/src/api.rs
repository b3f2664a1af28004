//! Request bodies of the OpenAI and TGI APIs, and their translation into what the engine
//! needs: prompt tokens, output length, finish reason, reply seed.
//!
//! Parsing is lenient where servers are (unknown fields are ignored, `model` may be omitted)
//! and strict where they are (missing prompt/messages, bad numbers, too long for the context:
//! HTTP 400; unknown model: 404).

use serde::Deserialize;

use crate::metrics::Finish;
use crate::server::Shared;
use crate::tokens::{TokenBlocks, image_ids, mix64};

/// Which API a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Chat,
    Completion,
    Tgi,
}

/// An error response: status and message (rendered per API by the server).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn bad(message: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            message: message.into(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ImageUrl {
    Obj { url: String },
    Str(String),
}

#[derive(Debug, Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
    image_url: Option<ImageUrl>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Deserialize)]
struct Message {
    #[allow(dead_code)]
    role: String,
    content: Option<Content>,
}

#[derive(Debug, Deserialize)]
struct ChatRequest {
    model: Option<String>,
    messages: Vec<Message>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    min_tokens: Option<u32>,
    ignore_eos: Option<bool>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    n: Option<u32>,
    seed: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Prompt {
    Text(String),
    Ids(Vec<u32>),
    Texts(Vec<String>),
    IdLists(Vec<Vec<u32>>),
}

#[derive(Debug, Deserialize)]
struct CompletionRequest {
    model: Option<String>,
    prompt: Prompt,
    max_tokens: Option<u32>,
    min_tokens: Option<u32>,
    ignore_eos: Option<bool>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    n: Option<u32>,
    seed: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
struct TgiParameters {
    max_new_tokens: Option<u32>,
    details: Option<bool>,
    seed: Option<u64>,
    /// Extension (TGI has no way to force the length): emit exactly max_new_tokens.
    ignore_eos: Option<bool>,
    /// Extension: emit at least this many tokens.
    min_new_tokens: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct TgiRequest {
    inputs: String,
    #[serde(default)]
    parameters: Option<TgiParameters>,
    #[serde(default)]
    stream: Option<bool>,
}

/// vLLM's default `max_tokens` of the legacy completions API.
const COMPLETIONS_DEFAULT_MAX_TOKENS: u32 = 16;
/// TGI's default `max_new_tokens`.
const TGI_DEFAULT_MAX_NEW_TOKENS: u32 = 100;

/// A validated generation request.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub kind: Kind,
    pub stream: bool,
    /// OpenAI: send a final usage chunk.
    pub include_usage: bool,
    /// TGI: per-token details in the non-streamed response.
    pub details: bool,
    pub prompt: TokenBlocks,
    pub output_len: u32,
    pub finish: Finish,
    pub seed: u64,
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("invalid request body: {e}")))
}

fn check_model(sh: &Shared, model: &Option<String>) -> Result<(), ApiError> {
    match model {
        Some(m) if *m != sh.model => Err(ApiError {
            status: 404,
            message: format!("The model `{m}` does not exist."),
        }),
        _ => Ok(()),
    }
}

fn check_n(n: Option<u32>) -> Result<(), ApiError> {
    match n {
        None | Some(1) => Ok(()),
        Some(n) => Err(ApiError::bad(format!(
            "n = {n} is not supported by the simulated engine (only n = 1)"
        ))),
    }
}

/// Output length requested or allowed.
struct Lengths {
    max: Option<u32>,
    /// Used when `max` is None (None: the room left in the context).
    default_max: Option<u32>,
    min: u32,
    ignore_eos: bool,
    req_seed: u64,
}

/// Natural reply length: geometric with mean `mean` (EOS with probability 1/mean per token).
pub(crate) fn natural_length(seed: u64, mean: f64) -> u32 {
    if mean <= 1.0 {
        return 1;
    }
    let u = (mix64(seed ^ 0x0E05_0E05_0E05_0E05) >> 11) as f64 / (1u64 << 53) as f64;
    let l = 1.0 + ((1.0 - u).ln() / (1.0 - 1.0 / mean).ln()).floor();
    if l.is_finite() {
        l.clamp(1.0, u32::MAX as f64) as u32
    } else {
        u32::MAX
    }
}

fn finish_prepare(
    sh: &Shared,
    kind: Kind,
    stream: bool,
    include_usage: bool,
    details: bool,
    prompt: TokenBlocks,
    l: Lengths,
) -> Result<Prepared, ApiError> {
    let p = prompt.len;
    let ctx = sh.params.max_model_len;
    if p == 0 {
        return Err(ApiError::bad("the prompt is empty (0 tokens)"));
    }
    let too_long = |m: u64| {
        ApiError::bad(format!(
            "This model's maximum context length is {ctx} tokens. However, you requested {} tokens ({p} in the messages, {m} in the completion). Please reduce the length of the messages or completion.",
            p as u64 + m
        ))
    };
    if p >= ctx {
        return Err(too_long(l.max.unwrap_or(1) as u64));
    }
    let room = ctx - p;
    let max = match (l.max, l.default_max) {
        (Some(0), _) => return Err(ApiError::bad("max_tokens must be at least 1, got 0")),
        (Some(m), _) | (None, Some(m)) => m,
        (None, None) => room,
    };
    if max > room {
        return Err(too_long(max as u64));
    }
    if l.min > max {
        return Err(ApiError::bad(format!(
            "min_tokens ({}) must be less than or equal to max_tokens ({max})",
            l.min
        )));
    }
    let seed =
        mix64(sh.seed ^ mix64(prompt.digest()) ^ l.req_seed.wrapping_mul(0xA076_1D64_78BD_642F));
    let out = if l.ignore_eos {
        max
    } else {
        natural_length(seed, sh.eos_mean_tokens).max(l.min).min(max)
    };
    let finish = if out == max {
        Finish::Length
    } else {
        Finish::Stop
    };
    Ok(Prepared {
        kind,
        stream,
        include_usage,
        details,
        prompt,
        output_len: out,
        finish,
        seed,
    })
}

fn encode_text(sh: &Shared, text: &str, out: &mut TokenBlocks) {
    if !text.is_empty() {
        out.extend(&sh.tok.encode(text));
    }
}

/// `POST /v1/chat/completions`.
pub(crate) fn prepare_chat(sh: &Shared, body: &[u8]) -> Result<Prepared, ApiError> {
    let r: ChatRequest = parse(body)?;
    check_model(sh, &r.model)?;
    check_n(r.n)?;
    if r.messages.is_empty() {
        return Err(ApiError::bad("messages is empty"));
    }
    let mut prompt = TokenBlocks::new(sh.params.block_size);
    for m in &r.messages {
        match &m.content {
            None => {}
            Some(Content::Text(t)) => encode_text(sh, t, &mut prompt),
            Some(Content::Parts(parts)) => {
                for part in parts {
                    match (part.kind.as_str(), &part.text, &part.image_url) {
                        ("text", Some(t), _) => encode_text(sh, t, &mut prompt),
                        ("image_url", _, Some(ImageUrl::Obj { url } | ImageUrl::Str(url))) => {
                            image_ids(url, sh.images.tokens(url), &mut prompt)
                        }
                        ("text", None, _) => {
                            return Err(ApiError::bad(
                                "a content part of type `text` has no `text`",
                            ));
                        }
                        ("image_url", _, None) => {
                            return Err(ApiError::bad(
                                "a content part of type `image_url` has no `image_url`",
                            ));
                        }
                        (k, _, _) => {
                            return Err(ApiError::bad(format!(
                                "unsupported content part type `{k}` (text and image_url are)"
                            )));
                        }
                    }
                }
            }
        }
    }
    let stream = r.stream.unwrap_or(false);
    let include_usage = r
        .stream_options
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let lengths = Lengths {
        max: r.max_completion_tokens.or(r.max_tokens),
        default_max: None,
        min: r.min_tokens.unwrap_or(0),
        ignore_eos: r.ignore_eos.unwrap_or(false),
        req_seed: r.seed.unwrap_or(0) as u64,
    };
    finish_prepare(
        sh,
        Kind::Chat,
        stream,
        include_usage,
        false,
        prompt,
        lengths,
    )
}

/// `POST /v1/completions`.
pub(crate) fn prepare_completion(sh: &Shared, body: &[u8]) -> Result<Prepared, ApiError> {
    let r: CompletionRequest = parse(body)?;
    check_model(sh, &r.model)?;
    check_n(r.n)?;
    let mut prompt = TokenBlocks::new(sh.params.block_size);
    match &r.prompt {
        Prompt::Text(t) => encode_text(sh, t, &mut prompt),
        Prompt::Ids(ids) => prompt.extend(ids),
        Prompt::Texts(v) if v.len() == 1 => encode_text(sh, &v[0], &mut prompt),
        Prompt::IdLists(v) if v.len() == 1 => prompt.extend(&v[0]),
        Prompt::Texts(_) | Prompt::IdLists(_) => {
            return Err(ApiError::bad(
                "batched prompts are not supported by the simulated engine: send one prompt per request",
            ));
        }
    }
    let stream = r.stream.unwrap_or(false);
    let include_usage = r
        .stream_options
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let lengths = Lengths {
        max: r.max_tokens,
        default_max: Some(COMPLETIONS_DEFAULT_MAX_TOKENS),
        min: r.min_tokens.unwrap_or(0),
        ignore_eos: r.ignore_eos.unwrap_or(false),
        req_seed: r.seed.unwrap_or(0) as u64,
    };
    finish_prepare(
        sh,
        Kind::Completion,
        stream,
        include_usage,
        false,
        prompt,
        lengths,
    )
}

/// TGI `POST /generate`, `/generate_stream` and `/` (`stream_route`: the route streams).
pub(crate) fn prepare_tgi(
    sh: &Shared,
    body: &[u8],
    stream_route: bool,
) -> Result<Prepared, ApiError> {
    let r: TgiRequest = parse(body)?;
    let p = r.parameters.unwrap_or_default();
    let mut prompt = TokenBlocks::new(sh.params.block_size);
    encode_text(sh, &r.inputs, &mut prompt);
    let lengths = Lengths {
        max: p.max_new_tokens,
        default_max: Some(TGI_DEFAULT_MAX_NEW_TOKENS),
        min: p.min_new_tokens.unwrap_or(0),
        ignore_eos: p.ignore_eos.unwrap_or(false),
        req_seed: p.seed.unwrap_or(0),
    };
    let stream = stream_route || r.stream.unwrap_or(false);
    finish_prepare(
        sh,
        Kind::Tgi,
        stream,
        false,
        p.details.unwrap_or(false),
        prompt,
        lengths,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_length_is_geometric_with_the_given_mean() {
        let n = 20_000;
        let mean: f64 = (0..n)
            .map(|i| natural_length(mix64(i), 100.0) as f64)
            .sum::<f64>()
            / n as f64;
        assert!((mean - 100.0).abs() < 3.0, "mean {mean}");
        let ones = (0..n)
            .filter(|&i| natural_length(mix64(i), 100.0) == 1)
            .count() as f64
            / n as f64;
        assert!((ones - 0.01).abs() < 0.003, "P(L=1) = {ones}");
        assert_eq!(natural_length(5, 1.0), 1);
    }
}
