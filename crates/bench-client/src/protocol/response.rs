//! Turning a response (SSE stream or one JSON body) into text, chunk instants and usage.
//!
//! A *content chunk* is a stream event that carries generated text: `delta.content`,
//! `delta.reasoning_content` / `delta.reasoning` (chat), `text` (completions), or a non-special
//! `token.text` (TGI). A role-only or empty event is not one. Every content chunk's arrival is
//! kept; the first is the first token.

use std::borrow::Cow;
use std::time::Instant;

use bench_config::client::Api;
use serde::Deserialize;

use crate::http::Sink;
use crate::sse::{Event, SseError, SseParser};

/// Bytes of a non-2xx body kept for the error message.
const ERROR_BODY_MAX: usize = 2048;
/// Largest non-streamed body accepted.
const BODY_MAX: usize = 256 << 20;

#[derive(Deserialize)]
struct Str<'a>(#[serde(borrow)] Cow<'a, str>);

#[derive(Deserialize, Default)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
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
    sse: SseParser,
    /// Non-streamed body, or the start of an error body.
    body: Vec<u8>,
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
        Some(m) => m.to_string(),
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
            content: String::new(),
            reasoning: String::new(),
            usage_prompt: None,
            usage_output: None,
            finish_reason: None,
            done: false,
            sse: SseParser::new(),
            body: Vec::new(),
        }
    }

    /// Whether the status is 2xx.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// The start of a non-2xx body, for the error message.
    pub fn error_body(&self) -> String {
        let t = error_message(&self.body);
        if t.is_empty() {
            "(empty body)".into()
        } else {
            t
        }
    }

    /// The response ended cleanly at the transport level: parse what is left.
    pub fn finish(&mut self, end: i64) -> Result<(), String> {
        if !self.success() {
            return Ok(());
        }
        if self.stream {
            let mut sse = std::mem::take(&mut self.sse);
            let r = sse.finish(&mut |e: Event<'_>| self.event(e, end));
            self.sse = sse;
            return r.map_err(sse_msg);
        }
        let body = std::mem::take(&mut self.body);
        let r = self.whole_body(&body);
        self.body = body;
        r
    }

    fn event(&mut self, e: Event<'_>, at: i64) -> Result<(), String> {
        if e.data == b"[DONE]" {
            self.done = true;
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
                if let Some(u) = c.usage {
                    self.usage_prompt = u.prompt_tokens.map(clip).or(self.usage_prompt);
                    self.usage_output = u.completion_tokens.map(clip).or(self.usage_output);
                }
                match c.choices.into_iter().next() {
                    Some(ch) => self.take_choice(ch),
                    None => false,
                }
            }
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
                }
                match t.token {
                    Some(tok) if !tok.special => match tok.text {
                        Some(s) if !s.0.is_empty() => {
                            self.content.push_str(&s.0);
                            true
                        }
                        _ => false,
                    },
                    _ => false,
                }
            }
        };
        if got {
            self.chunks.push(at);
            self.first_token.get_or_insert(at);
        }
        Ok(())
    }

    /// Appends a choice's text; true when it carried any.
    fn take_choice(&mut self, ch: Choice<'_>) -> bool {
        let mut got = false;
        if let Some(f) = ch.finish_reason {
            self.finish_reason = Some(f.0.into_owned());
        }
        if let Some(t) = ch.text.filter(|t| !t.0.is_empty()) {
            self.content.push_str(&t.0);
            got = true;
        }
        if let Some(m) = ch.delta.or(ch.message) {
            if let Some(t) = m.content.filter(|t| !t.0.is_empty()) {
                self.content.push_str(&t.0);
                got = true;
            }
            if let Some(t) = m
                .reasoning_content
                .or(m.reasoning)
                .filter(|t| !t.0.is_empty())
            {
                self.reasoning.push_str(&t.0);
                got = true;
            }
        }
        got
    }

    fn whole_body(&mut self, body: &[u8]) -> Result<(), String> {
        match self.api {
            Api::OpenaiChat | Api::OpenaiCompletions => {
                let c: OaBody<'_> = serde_json::from_slice(body)
                    .map_err(|e| format!("malformed response body ({e}): {}", snippet(body)))?;
                if c.error.is_some() || c.object.as_ref().is_some_and(|o| o.0 == "error") {
                    return Err(format!("server error: {}", error_message(body)));
                }
                if let Some(u) = c.usage {
                    self.usage_prompt = u.prompt_tokens.map(clip);
                    self.usage_output = u.completion_tokens.map(clip);
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
                    _ => serde_json::from_slice(body)
                        .map_err(|e| format!("malformed response body ({e}): {}", snippet(body)))?,
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

impl Sink for Collector {
    fn head(&mut self, status: u16, first_byte: Instant) {
        self.status = Some(status);
        self.first_byte = Some(ns(self.base, first_byte));
    }

    fn data(&mut self, bytes: &[u8], at: Instant) -> Result<(), String> {
        if !self.success() {
            let room = ERROR_BODY_MAX.saturating_sub(self.body.len());
            self.body.extend_from_slice(&bytes[..bytes.len().min(room)]);
            return Ok(());
        }
        if self.stream {
            let at = ns(self.base, at);
            let mut sse = std::mem::take(&mut self.sse);
            let r = sse.feed(bytes, &mut |e: Event<'_>| self.event(e, at));
            self.sse = sse;
            return r.map_err(sse_msg);
        }
        if self.body.len() + bytes.len() > BODY_MAX {
            return Err(format!("response body larger than {} MiB", BODY_MAX >> 20));
        }
        self.body.extend_from_slice(bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn feed(c: &mut Collector, base: Instant, parts: &[(&str, u64)]) -> Result<(), String> {
        c.head(200, base + Duration::from_millis(1));
        for (p, ms) in parts {
            c.data(p.as_bytes(), base + Duration::from_millis(*ms))?;
        }
        c.finish(0)
    }

    #[test]
    fn chat_stream_role_chunk_is_not_a_token_reasoning_is() {
        let base = Instant::now();
        let mut c = Collector::new(Api::OpenaiChat, true, base);
        feed(
            &mut c,
            base,
            &[
                ("data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n", 5),
                ("data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"hmm\"}}]}\n\n", 7),
                ("data: {\"choices\":[{\"delta\":{\"content\":\"Hi\\n\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\" you\"},\"finish_reason\":\"length\"}]}\n\n", 9),
                ("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3,\"total_tokens\":15}}\n\ndata: [DONE]\n\n", 10),
            ],
        )
        .unwrap();
        assert_eq!(c.first_byte, Some(1_000_000));
        assert_eq!(c.first_token, Some(7_000_000));
        assert_eq!(c.chunks, vec![7_000_000, 9_000_000, 9_000_000]);
        assert_eq!(c.content, "Hi\n you");
        assert_eq!(c.reasoning, "hmm");
        assert_eq!((c.usage_prompt, c.usage_output), (Some(12), Some(3)));
        assert_eq!(c.finish_reason.as_deref(), Some("length"));
        assert!(c.done);
    }

    #[test]
    fn completions_and_tgi_streams() {
        let base = Instant::now();
        let mut c = Collector::new(Api::OpenaiCompletions, true, base);
        feed(&mut c, base, &[("data: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: {\"choices\":[{\"text\":\"b\"}]}\n\ndata: [DONE]\n\n", 3)]).unwrap();
        assert_eq!((c.content.as_str(), c.chunks.len()), ("ab", 2));

        let mut t = Collector::new(Api::Tgi, true, base);
        feed(
            &mut t,
            base,
            &[
                ("data:{\"token\":{\"id\":1,\"text\":\"x\",\"special\":false},\"generated_text\":null,\"details\":null}\n\n", 2),
                ("data:{\"token\":{\"id\":2,\"text\":\"</s>\",\"special\":true},\"generated_text\":\"x\",\"details\":{\"finish_reason\":\"eos_token\",\"generated_tokens\":2}}\n\n", 4),
            ],
        )
        .unwrap();
        assert_eq!(
            (t.content.as_str(), t.chunks.clone(), t.usage_output, t.done),
            ("x", vec![2_000_000], Some(2), true)
        );
        assert_eq!(t.finish_reason.as_deref(), Some("eos_token"));
    }

    #[test]
    fn stream_errors() {
        let base = Instant::now();
        let mut c = Collector::new(Api::OpenaiChat, true, base);
        let e = feed(
            &mut c,
            base,
            &[(
                "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {not json\n\n",
                2,
            )],
        )
        .unwrap_err();
        assert!(e.starts_with("malformed SSE data"), "{e}");
        assert_eq!(c.chunks.len(), 1, "chunks before the bad line are kept");
        let mut c = Collector::new(Api::OpenaiChat, true, base);
        let e = feed(
            &mut c,
            base,
            &[(
                "data: {\"object\":\"error\",\"message\":\"out of memory\"}\n\n",
                2,
            )],
        )
        .unwrap_err();
        assert_eq!(e, "server error in stream: out of memory");
    }

    #[test]
    fn non_streamed_bodies() {
        let base = Instant::now();
        let mut c = Collector::new(Api::OpenaiChat, false, base);
        feed(
            &mut c,
            base,
            &[
                (
                    "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"hel",
                    2,
                ),
                (
                    "lo\"}}],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2}}",
                    3,
                ),
            ],
        )
        .unwrap();
        assert_eq!(
            (c.content.as_str(), c.usage_output, c.first_token),
            ("hello", Some(2), None)
        );
        let mut t = Collector::new(Api::Tgi, false, base);
        feed(&mut t, base, &[("[{\"generated_text\":\"yo\",\"details\":{\"finish_reason\":\"length\",\"generated_tokens\":1}}]", 2)]).unwrap();
        assert_eq!((t.content.as_str(), t.usage_output), ("yo", Some(1)));
    }

    #[test]
    fn error_bodies_keep_the_message() {
        let base = Instant::now();
        let mut c = Collector::new(Api::OpenaiChat, true, base);
        c.head(429, base);
        c.data(
            b"{\"error\":{\"message\":\"rate limited\",\"type\":\"x\"}}",
            base,
        )
        .unwrap();
        c.finish(0).unwrap();
        assert!(!c.success());
        assert_eq!(c.error_body(), "rate limited");
    }
}
