//! Turning a response (SSE stream or one JSON body) into text, chunk instants and usage.
//!
//! A *content chunk* is a stream event that carries generated text: `delta.content`,
//! `delta.reasoning_content` / `delta.reasoning` (chat), `text` (completions), or a non-special
//! `token.text` (TGI). A role-only or empty event is not one. Every content chunk's arrival is
//! kept; the first is the first token.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use bench_config::client::Api;
use serde::Deserialize;

use super::BufferBudget;
use super::template::{self, Lines, Template};
use crate::http::{Fields, Sink};
use crate::sse::{Event, SseError, SseParser};

/// Bytes of a non-2xx body kept for the error message.
const ERROR_BODY_MAX: usize = 2048;
/// Largest non-streamed body accepted.
const BODY_MAX: usize = 256 << 20;
/// Longest error message taken from a server's error object.
const MESSAGE_MAX: usize = 1000;

#[derive(Deserialize)]
struct Str<'a>(#[serde(borrow)] Cow<'a, str>);

#[derive(Deserialize, Default)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize, Default)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

/// llama.cpp's `timings` (last chunk of a stream, or the body).
#[derive(Deserialize, Default)]
struct LlamaTimings {
    #[serde(default)]
    cache_n: Option<u64>,
    #[serde(default)]
    prompt_ms: Option<f64>,
    #[serde(default)]
    predicted_ms: Option<f64>,
}

/// ms (a server's float) as whole µs; None when negative or not finite.
fn us(ms: f64) -> Option<u64> {
    (ms.is_finite() && ms >= 0.0).then(|| (ms * 1000.0).round() as u64)
}

#[derive(Deserialize, Default)]
struct Message<'a> {
    #[serde(default, borrow)]
    content: Option<Str<'a>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Str<'a>>,
    #[serde(default, borrow)]
    reasoning: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    delta: Option<Message<'a>>,
    #[serde(default, borrow)]
    message: Option<Message<'a>>,
    #[serde(default, borrow)]
    text: Option<Str<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Str<'a>>,
}

/// An OpenAI chunk or (non-streamed) response.
#[derive(Deserialize)]
struct OaBody<'a> {
    #[serde(default, borrow)]
    choices: Vec<Choice<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
    #[serde(default, borrow)]
    object: Option<Str<'a>>,
    #[serde(default)]
    timings: Option<LlamaTimings>,
}

#[derive(Deserialize)]
struct TgiToken<'a> {
    #[serde(default, borrow)]
    text: Option<Str<'a>>,
    #[serde(default)]
    special: bool,
}

#[derive(Deserialize)]
struct TgiDetails<'a> {
    #[serde(default, borrow)]
    finish_reason: Option<Str<'a>>,
    #[serde(default)]
    generated_tokens: Option<u64>,
}

/// A TGI stream event or `/generate` response.
#[derive(Deserialize)]
struct TgiBody<'a> {
    #[serde(default, borrow)]
    token: Option<TgiToken<'a>>,
    #[serde(default, borrow)]
    generated_text: Option<Str<'a>>,
    #[serde(default, borrow)]
    details: Option<TgiDetails<'a>>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

/// What kinds of generated text an event carried.
#[derive(Debug, Default, Clone, Copy)]
struct Got {
    answer: bool,
    reasoning: bool,
}

/// Everything received for one request.
#[derive(Debug)]
pub struct Collector {
    api: Api,
    stream: bool,
    base: Instant,
    /// HTTP status, once the head arrived.
    pub status: Option<u16>,
    /// First byte of the response (ns from the base instant).
    pub first_byte: Option<i64>,
    /// First content chunk.
    pub first_token: Option<i64>,
    /// Every content chunk.
    pub chunks: Vec<i64>,
    /// First chunk that carried reasoning text.
    pub first_reasoning: Option<i64>,
    /// First chunk that carried answer text (content, completions text, a TGI token).
    pub first_answer: Option<i64>,
    /// Server-reported reasoning tokens (`usage.completion_tokens_details.reasoning_tokens`).
    pub usage_reasoning: Option<u32>,
    /// Generated answer text.
    pub content: String,
    /// Generated reasoning text.
    pub reasoning: String,
    /// Server-reported prompt tokens.
    pub usage_prompt: Option<u32>,
    /// Server-reported output tokens.
    pub usage_output: Option<u32>,
    /// Why generation stopped, as the server says.
    pub finish_reason: Option<String>,
    /// The stream's end marker (`[DONE]`, TGI's final event) was seen.
    pub done: bool,
    /// When the end marker arrived.
    pub done_at: Option<i64>,
    /// When the last stream event arrived.
    pub last_event_at: Option<i64>,
    /// `Location` of the head.
    pub location: Option<String>,
    /// `Content-Encoding` of the head, unless `identity`.
    pub content_encoding: Option<String>,
    /// The body's `Content-Length`, when that delimits it.
    pub content_length: Option<u64>,
    /// The `object` of the first OpenAI event or body (`chat.completion.chunk`,
    /// `text_completion`): which API actually answered.
    pub object: Option<String>,
    /// What the server reported of its own time on the request.
    pub server: bench_types::record::ServerTimes,
    sse: SseParser,
    /// Non-streamed body, or the start of an error body.
    body: Vec<u8>,
    /// The run's buffer budget, and what this response holds of it.
    budget: Option<Arc<BufferBudget>>,
    charged: usize,
    /// `client.api: template`: the compiled template.
    tpl: Option<Arc<Template>>,
    /// JSON lines framing (templates).
    lines: Lines,
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.release(self.charged);
        }
    }
}

fn ns(base: Instant, at: Instant) -> i64 {
    at.saturating_duration_since(base).as_nanos() as i64
}

fn clip(n: u64) -> u32 {
    n.min(u32::MAX as u64) as u32
}

fn snippet(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned();
    if b.len() > 200 { format!("{s}...") } else { s }
}

/// At most `max` bytes of `s` (at a char boundary), `...` marking a cut.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// The message of an error object (`{"error": {"message": ...}}`, `{"error": "..."}`,
/// `{"object": "error", "message": ...}`).
pub(crate) fn error_message(b: &[u8]) -> String {
    // an error sent as one SSE event (`data: {...}`) reads the same as a JSON body
    let t = b.trim_ascii();
    let t = t.strip_prefix(b"data:").map_or(t, <[u8]>::trim_ascii);
    let v: serde_json::Value = match serde_json::from_slice(t) {
        Ok(v) => v,
        Err(_) => return snippet(b),
    };
    let m = v
        .get("error")
        .and_then(|e| {
            e.get("message")
                .and_then(|m| m.as_str())
                .or_else(|| e.as_str())
        })
        .or_else(|| v.get("message").and_then(|m| m.as_str()));
    match m {
        Some(m) => cut(m, MESSAGE_MAX),
        None => snippet(b),
    }
}

impl Collector {
    /// A collector for one request; instants are stored as ns from `base`.
    pub fn new(api: Api, stream: bool, base: Instant) -> Self {
        Collector {
            api,
            stream,
            base,
            status: None,
            first_byte: None,
            first_token: None,
            chunks: Vec::new(),
            first_reasoning: None,
            first_answer: None,
            usage_reasoning: None,
            content: String::new(),
            reasoning: String::new(),
            usage_prompt: None,
            usage_output: None,
            finish_reason: None,
            done: false,
            done_at: None,
            last_event_at: None,
            location: None,
            content_encoding: None,
            content_length: None,
            object: None,
            server: Default::default(),
            sse: SseParser::new(),
            body: Vec::new(),
            budget: None,
            charged: 0,
            tpl: None,
            lines: Lines::default(),
        }
    }

    /// Reads the reply the way `tpl` says (`client.api: template`); its framing decides
    /// whether the reply streams.
    pub fn with_template(mut self, tpl: Option<Arc<Template>>) -> Self {
        if let Some(t) = &tpl {
            self.stream = t.streams();
        }
        self.tpl = tpl;
        self
    }

    /// One event (or the body) read through the template.
    fn template_read(&mut self, raw: &[u8], at: Option<i64>) -> Result<(), String> {
        let tpl = self.tpl.take().expect("a template");
        let r = tpl.read(
            raw,
            &mut template::Into {
                content: &mut self.content,
                reasoning: &mut self.reasoning,
                usage_prompt: &mut self.usage_prompt,
                usage_output: &mut self.usage_output,
                finish_reason: &mut self.finish_reason,
                server: &mut self.server,
            },
        );
        self.tpl = Some(tpl);
        let r = r?;
        if let Some(at) = at {
            if r.text {
                self.chunks.push(at);
                self.first_token.get_or_insert(at);
            }
            if r.end {
                self.done = true;
                self.done_at.get_or_insert(at);
            }
        }
        Ok(())
    }

    /// A template's SSE event.
    fn template_event(&mut self, e: Event<'_>, at: i64) -> Result<(), String> {
        self.last_event_at = Some(at);
        let tpl = self.tpl.as_ref().expect("a template");
        if tpl.is_end_data(e.data) {
            self.done = true;
            self.done_at.get_or_insert(at);
            return Ok(());
        }
        if e.error {
            return Err(format!("server error event: {}", error_message(e.data)));
        }
        self.template_read(e.data, Some(at))
    }

    /// A template's JSON line.
    fn template_line(&mut self, l: &[u8], at: i64) -> Result<(), String> {
        self.last_event_at = Some(at);
        self.template_read(l, Some(at))
    }

    /// SSE errors under a template name the framing.
    fn framing_error(&self, m: String) -> String {
        match &self.tpl {
            Some(t) => t.mismatch("reply.framing", &format!("is `sse` but the reply has {m}")),
            _ => m,
        }
    }

    /// Charges what this response buffers to `budget`.
    pub fn with_budget(mut self, budget: Arc<BufferBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Whether the reply is JSON lines (a template's framing).
    fn json_lines(&self) -> bool {
        self.tpl
            .as_ref()
            .is_some_and(|t| t.framing == bench_config::api_template::Framing::JsonLines)
    }

    /// Whether the status is 2xx.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// The start of a non-2xx body, for the error message.
    pub fn error_body(&self) -> String {
        if let Some(enc) = &self.content_encoding
            && !self.body.is_empty()
        {
            return format!("(a Content-Encoding: {enc} body, which the client does not decode)");
        }
        let t = error_message(&self.body);
        if t.is_empty() {
            "(empty body)".into()
        } else {
            t
        }
    }

    /// The error text of a non-2xx response: a redirect names where to, anything else says
    /// what the body says.
    pub fn http_error(&self) -> String {
        let s = self.status.unwrap_or(0);
        match &self.location {
            Some(to) if (300..400).contains(&s) => {
                format!("HTTP {s} redirect to {to} (redirects are not followed)")
            }
            _ => format!("HTTP {s}: {}", self.error_body()),
        }
    }

    /// The response ended cleanly at the transport level: parse what is left.
    pub fn finish(&mut self, end: i64) -> Result<(), String> {
        if !self.success() {
            return Ok(());
        }
        if let Some(m) = self.encoded() {
            return Err(m);
        }
        let cut_at = self.content_length;
        if self.stream && self.json_lines() {
            let mut lines = std::mem::take(&mut self.lines);
            let r = lines.finish(&mut |l: &[u8]| self.template_line(l, end));
            self.lines = lines;
            return r;
        }
        if self.stream {
            let partial = self.sse.partial_line();
            let mut sse = std::mem::take(&mut self.sse);
            let r = sse.finish(&mut |e: Event<'_>| self.event(e, end));
            self.sse = sse;
            let r = r.map_err(|e| match e {
                SseError::Malformed(m) => SseError::Malformed(self.framing_error(m)),
                h => h,
            });
            return r.map_err(|e| match cut_at {
                // The body, delimited by its Content-Length, stops inside a line: the server
                // sent more than it announced (or announced too little).
                Some(n) if partial => format!(
                    "the body ran past its Content-Length ({n} bytes): the stream is cut inside an event there ({})",
                    sse_msg(e)
                ),
                _ => sse_msg(e),
            });
        }
        let body = std::mem::take(&mut self.body);
        let r = self.whole_body(&body);
        self.body = body;
        r
    }

    /// The error of a 2xx response with a compressed body.
    fn encoded(&self) -> Option<String> {
        self.content_encoding.as_ref().map(|enc| {
            format!(
                "the server sent a Content-Encoding: {enc} body, which the client does not decode (it asks for identity)"
            )
        })
    }

    /// Charges (or credits) the budget with what the response buffers now.
    fn account(&mut self) -> Result<(), String> {
        let Some(budget) = &self.budget else {
            return Ok(());
        };
        let held = if self.stream && self.success() {
            self.sse.buffered() + self.lines.buffered()
        } else {
            self.body.len()
        };
        if held == self.charged {
            return Ok(());
        }
        if held < self.charged {
            budget.release(self.charged - held);
            self.charged = held;
            return Ok(());
        }
        if budget.charge(held - self.charged) {
            self.charged = held;
            return Ok(());
        }
        let msg = format!(
            "response buffers would exceed client.max_buffer_mib = {} MiB across in-flight requests (this response buffered {:.1} MiB{})",
            budget.limit_mib(),
            held as f64 / (1 << 20) as f64,
            if self.stream && self.success() {
                " of an unfinished SSE line or event"
            } else {
                " of its body"
            }
        );
        // Free it now; the request ends with this error.
        self.sse = SseParser::new();
        self.body = Vec::new();
        Err(msg)
    }

    fn event(&mut self, e: Event<'_>, at: i64) -> Result<(), String> {
        if self.tpl.is_some() {
            return self.template_event(e, at);
        }
        self.last_event_at = Some(at);
        if e.data == b"[DONE]" {
            self.done = true;
            self.done_at.get_or_insert(at);
            return Ok(());
        }
        if e.error {
            return Err(format!("server error event: {}", error_message(e.data)));
        }
        let got = match self.api {
            Api::OpenaiChat | Api::OpenaiCompletions => {
                let c: OaBody<'_> = serde_json::from_slice(e.data)
                    .map_err(|err| format!("malformed SSE data ({err}): {}", snippet(e.data)))?;
                if c.error.is_some() || c.object.as_ref().is_some_and(|o| o.0 == "error") {
                    return Err(format!("server error in stream: {}", error_message(e.data)));
                }
                if self.object.is_none() {
                    self.object = c.object.as_ref().map(|o| o.0.clone().into_owned());
                }
                if let Some(u) = c.usage {
                    self.usage_prompt = u.prompt_tokens.map(clip).or(self.usage_prompt);
                    self.usage_output = u.completion_tokens.map(clip).or(self.usage_output);
                    self.take_details(u.prompt_tokens_details, u.completion_tokens_details);
                }
                if let Some(t) = c.timings {
                    self.take_timings(t);
                }
                match c.choices.into_iter().next() {
                    Some(ch) => self.take_choice(ch),
                    None => Got::default(),
                }
            }
            Api::Template => unreachable!("templates read their events in template_event"),
            Api::Tgi => {
                let t: TgiBody<'_> = serde_json::from_slice(e.data)
                    .map_err(|err| format!("malformed SSE data ({err}): {}", snippet(e.data)))?;
                if t.error.is_some() {
                    return Err(format!("server error in stream: {}", error_message(e.data)));
                }
                if let Some(d) = t.details {
                    self.usage_output = d.generated_tokens.map(clip).or(self.usage_output);
                    if let Some(f) = d.finish_reason {
                        self.finish_reason = Some(f.0.into_owned());
                    }
                }
                if t.generated_text.is_some() {
                    self.done = true;
                    self.done_at.get_or_insert(at);
                }
                let answer = match t.token {
                    Some(tok) if !tok.special => match tok.text {
                        Some(s) if !s.0.is_empty() => {
                            self.content.push_str(&s.0);
                            true
                        }
                        _ => false,
                    },
                    _ => false,
                };
                Got {
                    answer,
                    reasoning: false,
                }
            }
        };
        if got.answer || got.reasoning {
            self.chunks.push(at);
            self.first_token.get_or_insert(at);
        }
        if got.answer {
            self.first_answer.get_or_insert(at);
        }
        if got.reasoning {
            self.first_reasoning.get_or_insert(at);
        }
        Ok(())
    }

    /// `usage.prompt_tokens_details.cached_tokens` and
    /// `usage.completion_tokens_details.reasoning_tokens`.
    fn take_details(&mut self, p: Option<PromptDetails>, c: Option<CompletionDetails>) {
        if let Some(n) = p.and_then(|d| d.cached_tokens) {
            self.server.cached_prompt_tokens = Some(clip(n));
        }
        if let Some(n) = c.and_then(|d| d.reasoning_tokens) {
            self.usage_reasoning = Some(clip(n));
        }
    }

    /// llama.cpp's `timings`: prefill (`prompt_ms`), decode (`predicted_ms`), cached prompt
    /// tokens (`cache_n`).
    fn take_timings(&mut self, t: LlamaTimings) {
        let s = &mut self.server;
        s.prefill_us = t.prompt_ms.and_then(us).or(s.prefill_us);
        s.decode_us = t.predicted_ms.and_then(us).or(s.decode_us);
        if let (Some(p), Some(d)) = (s.prefill_us, s.decode_us) {
            s.inference_us = Some(p + d);
        }
        if let Some(n) = t.cache_n {
            s.cached_prompt_tokens = Some(clip(n));
        }
    }

    /// Appends a choice's text; says which kinds it carried.
    fn take_choice(&mut self, ch: Choice<'_>) -> Got {
        let mut got = Got::default();
        if let Some(f) = ch.finish_reason {
            self.finish_reason = Some(f.0.into_owned());
        }
        if let Some(t) = ch.text.filter(|t| !t.0.is_empty()) {
            self.content.push_str(&t.0);
            got.answer = true;
        }
        if let Some(m) = ch.delta.or(ch.message) {
            if let Some(t) = m.content.filter(|t| !t.0.is_empty()) {
                self.content.push_str(&t.0);
                got.answer = true;
            }
            if let Some(t) = m
                .reasoning_content
                .or(m.reasoning)
                .filter(|t| !t.0.is_empty())
            {
                self.reasoning.push_str(&t.0);
                got.reasoning = true;
            }
        }
        got
    }

    /// The error of a body that is not the JSON expected.
    fn malformed(&self, e: &serde_json::Error, body: &[u8]) -> String {
        match self.content_length {
            Some(n) if e.is_eof() => format!(
                "the body ran past its Content-Length ({n} bytes): the JSON is cut there ({e}): {}",
                snippet(body)
            ),
            _ => format!("malformed response body ({e}): {}", snippet(body)),
        }
    }

    fn whole_body(&mut self, body: &[u8]) -> Result<(), String> {
        if self.tpl.is_some() {
            self.template_read(body, None)?;
            self.done = true;
            return Ok(());
        }
        match self.api {
            Api::Template => unreachable!("templates read their bodies in template_read"),
            Api::OpenaiChat | Api::OpenaiCompletions => {
                let c: OaBody<'_> =
                    serde_json::from_slice(body).map_err(|e| self.malformed(&e, body))?;
                if c.error.is_some() || c.object.as_ref().is_some_and(|o| o.0 == "error") {
                    return Err(format!("server error: {}", error_message(body)));
                }
                self.object = c.object.as_ref().map(|o| o.0.clone().into_owned());
                if let Some(u) = c.usage {
                    self.usage_prompt = u.prompt_tokens.map(clip);
                    self.usage_output = u.completion_tokens.map(clip);
                    self.take_details(u.prompt_tokens_details, u.completion_tokens_details);
                }
                if let Some(t) = c.timings {
                    self.take_timings(t);
                }
                match c.choices.into_iter().next() {
                    Some(ch) => {
                        self.take_choice(ch);
                    }
                    None => return Err(format!("response has no choices: {}", snippet(body))),
                }
            }
            Api::Tgi => {
                // `/generate` answers an object; some versions a one-element list.
                let t: TgiBody<'_> = match serde_json::from_slice::<Vec<TgiBody<'_>>>(body) {
                    Ok(mut v) if !v.is_empty() => v.swap_remove(0),
                    _ => serde_json::from_slice(body).map_err(|e| self.malformed(&e, body))?,
                };
                if t.error.is_some() {
                    return Err(format!("server error: {}", error_message(body)));
                }
                let text = t
                    .generated_text
                    .ok_or_else(|| format!("response has no generated_text: {}", snippet(body)))?;
                self.content.push_str(&text.0);
                if let Some(d) = t.details {
                    self.usage_output = d.generated_tokens.map(clip);
                    self.finish_reason = d.finish_reason.map(|f| f.0.into_owned());
                }
            }
        }
        self.done = true;
        Ok(())
    }
}

fn sse_msg(e: SseError<String>) -> String {
    match e {
        SseError::Malformed(m) | SseError::Handler(m) => m,
    }
}

/// A header value as text: lossy UTF-8, at most 500 bytes.
fn field_text(v: &[u8]) -> String {
    cut(&String::from_utf8_lossy(v), 500)
}

impl Sink for Collector {
    fn head(&mut self, status: u16, first_byte: Instant) {
        self.status = Some(status);
        self.first_byte = Some(ns(self.base, first_byte));
    }

    fn fields(&mut self, f: &Fields<'_>) {
        self.location = f.location.map(field_text);
        self.content_encoding = f
            .content_encoding
            .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case(b"identity"))
            .map(field_text);
        self.content_length = f.content_length;
        // whole ms, as TGI writes them
        let ms = |v: Option<&[u8]>| {
            std::str::from_utf8(v?)
                .ok()?
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(us)
        };
        self.server.queue_us = ms(f.timing[0]).or(self.server.queue_us);
        self.server.inference_us = ms(f.timing[1]).or(self.server.inference_us);
        // TGI's bodies carry no prompt count: its router's header is the server's usage
        if self.api == Api::Tgi
            && let Some(n) = f.timing[2]
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        {
            self.usage_prompt = Some(clip(n));
        }
    }

    fn data(&mut self, bytes: &[u8], at: Instant) -> Result<(), String> {
        if !self.success() {
            let room = ERROR_BODY_MAX.saturating_sub(self.body.len());
            self.body.extend_from_slice(&bytes[..bytes.len().min(room)]);
            return self.account();
        }
        if let Some(m) = self.encoded() {
            return Err(m);
        }
        if self.stream && self.json_lines() {
            let at = ns(self.base, at);
            let mut lines = std::mem::take(&mut self.lines);
            let r = lines.feed(bytes, &mut |l: &[u8]| self.template_line(l, at));
            self.lines = lines;
            r?;
            return self.account();
        }
        if self.stream {
            let at = ns(self.base, at);
            let mut sse = std::mem::take(&mut self.sse);
            let r = sse.feed(bytes, &mut |e: Event<'_>| self.event(e, at));
            self.sse = sse;
            r.map_err(|e| match e {
                SseError::Malformed(m) => self.framing_error(m),
                SseError::Handler(m) => m,
            })?;
            return self.account();
        }
        if self.body.len() + bytes.len() > BODY_MAX {
            return Err(format!("response body larger than {} MiB", BODY_MAX >> 20));
        }
        self.body.extend_from_slice(bytes);
        self.account()
    }

    fn complete(&self) -> bool {
        self.stream && self.done
    }
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
