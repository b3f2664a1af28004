//! `client.api: template`: a [`TemplateSpec`] compiled once before the run.
//!
//! The body becomes a small tree whose constant parts are pre-serialized bytes
//! ([`Node::Raw`]); building a request walks it once, splicing the prompt (or the messages)
//! straight into the output buffer as the built-in bodies do. The reply's JSON pointers are
//! split into their tokens once and laid out as one tree of paths; each event is walked along
//! those paths only, keeping the values where pointers end ([`super::capture`]).
//!
//! A reply that does not fit the template (a line that is not the framing's, an event none of
//! the template's pointers finds, a body without the text) fails its request with an error
//! naming `client.template`, the template's key and the offending part of the reply. The same
//! text is logged once per run, not once per request: a wrong template fails every request the
//! same way.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use bench_config::ClientConfig;
use bench_config::api_template::{End, Framing, Match, TemplateSpec, placeholders};
use serde_json::{Map, Value};

use super::capture::{Cap, Caps, Trie, capture};
use super::request::{user_message_with, write_json_str};

/// A placeholder of the body.
#[derive(Debug, Clone, PartialEq)]
enum Var {
    Prompt,
    Messages,
    MaxTokens,
    MinTokens,
    IgnoreEos,
    Model,
    Stream,
    Temperature,
    ImageUrl,
    ImageBase64,
    ImageUrls,
    Seed,
    Field(String),
}

impl Var {
    fn parse(name: &str) -> Var {
        match name {
            "prompt" => Var::Prompt,
            "messages" => Var::Messages,
            "max_tokens" => Var::MaxTokens,
            "min_tokens" => Var::MinTokens,
            "ignore_eos" => Var::IgnoreEos,
            "model" => Var::Model,
            "stream" => Var::Stream,
            "temperature" => Var::Temperature,
            "image_url" => Var::ImageUrl,
            "image_base64" => Var::ImageBase64,
            "image_urls" => Var::ImageUrls,
            "seed" => Var::Seed,
            // checked when the config loaded: anything else is `field.NAME`
            f => Var::Field(f.strip_prefix("field.").unwrap_or(f).to_string()),
        }
    }
}

/// A piece of a string with placeholders inside it.
#[derive(Debug, Clone)]
enum Piece {
    Lit(String),
    Var(Var),
}

/// The compiled body.
#[derive(Debug, Clone)]
enum Node {
    /// Serialized JSON without placeholders.
    Raw(Box<[u8]>),
    /// A whole value.
    Var(Var),
    /// A string with placeholders in it.
    Interp(Vec<Piece>),
    /// Members (the serialized `"key":`, the value).
    Obj(Vec<(Box<[u8]>, Node)>),
    Arr(Vec<Node>),
}

fn compile(v: &Value) -> Node {
    match v {
        Value::String(s) => {
            let ph = placeholders(s);
            if ph.is_empty() {
                return Node::Raw(serde_json::to_vec(v).expect("JSON").into());
            }
            if ph.len() == 1 && ph[0].0 == 0 && ph[0].1 == s.len() {
                return Node::Var(Var::parse(ph[0].2));
            }
            let mut pieces = Vec::new();
            let mut at = 0;
            for (a, b, name) in ph {
                if a > at {
                    pieces.push(Piece::Lit(s[at..a].to_string()));
                }
                pieces.push(Piece::Var(Var::parse(name)));
                at = b;
            }
            if at < s.len() {
                pieces.push(Piece::Lit(s[at..].to_string()));
            }
            Node::Interp(pieces)
        }
        Value::Array(a) => {
            let nodes: Vec<Node> = a.iter().map(compile).collect();
            if nodes.iter().all(|n| matches!(n, Node::Raw(_))) {
                Node::Raw(serde_json::to_vec(v).expect("JSON").into())
            } else {
                Node::Arr(nodes)
            }
        }
        Value::Object(m) => {
            let members: Vec<(Box<[u8]>, Node)> = m
                .iter()
                .map(|(k, x)| {
                    let mut key = Vec::with_capacity(k.len() + 3);
                    write_json_str(&mut key, k);
                    key.push(b':');
                    (key.into(), compile(x))
                })
                .collect();
            if members.iter().all(|(_, n)| matches!(n, Node::Raw(_))) {
                Node::Raw(serde_json::to_vec(v).expect("JSON").into())
            } else {
                Node::Obj(members)
            }
        }
        _ => Node::Raw(serde_json::to_vec(v).expect("JSON").into()),
    }
}

/// What one request fills the placeholders with.
#[derive(Debug, Clone, Copy, Default)]
pub struct Vars<'a> {
    /// The prompt text (a session's history joined in, when the body has no `messages`).
    pub prompt: &'a str,
    /// The chat messages, comma-separated JSON objects (None: one user message of `prompt`).
    pub messages: Option<&'a str>,
    /// The images' `data:` URLs, in order (`image_url` is the first).
    pub images: &'a [&'a str],
    /// `max_tokens`.
    pub max_tokens: Option<u32>,
    /// The workload request's `fields`.
    pub fields: Option<&'a Map<String, Value>>,
    /// The request's id.
    pub id: u64,
}

impl Vars<'_> {
    /// The first image's `data:` URL (empty without images).
    fn first_image(&self) -> &str {
        self.images.first().copied().unwrap_or_default()
    }
}

/// A pointer's tokens: the text, and the index when the text is a number.
type Tokens = Vec<(String, Option<usize>)>;

fn tokens(p: &str) -> Tokens {
    p.split('/')
        .skip(1)
        .map(|t| {
            let t = t.replace("~1", "/").replace("~0", "~");
            let i = t.parse::<usize>().ok();
            (t, i)
        })
        .collect()
}

/// A JSON pointer of the reply, located in the template's [`Trie`]: the value an event holds
/// at its first `depth` tokens is captured in slot `slot`; the rest is looked up inside it.
#[derive(Debug, Clone)]
struct Pointer {
    text: String,
    tokens: Tokens,
    slot: usize,
    depth: usize,
}

impl Pointer {
    fn new(p: &str, trie: &Trie) -> Pointer {
        let tokens = tokens(p);
        let (slot, depth) = trie.locate(&tokens);
        Pointer {
            text: p.to_string(),
            tokens,
            slot,
            depth,
        }
    }

    /// The non-null value at the pointer.
    fn get<'a>(&self, caps: &'a Caps<'_>) -> Option<Got<'a>> {
        let c = caps.get(self.slot)?.as_ref()?;
        let rest = &self.tokens[self.depth..];
        match c {
            Cap::Str(s) => rest.is_empty().then_some(Got::Str(s)),
            Cap::Val(v) => {
                let mut at = v;
                for (t, i) in rest {
                    at = match at {
                        Value::Object(m) => m.get(t.as_str())?,
                        Value::Array(a) => a.get((*i)?)?,
                        _ => return None,
                    };
                }
                (!at.is_null()).then_some(Got::Val(at))
            }
        }
    }
}

/// A value found by a pointer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Got<'a> {
    Str(&'a str),
    Val(&'a Value),
}

impl Got<'_> {
    fn as_str(&self) -> Option<&str> {
        match self {
            Got::Str(s) => Some(s),
            Got::Val(v) => v.as_str(),
        }
    }
    fn text(&self) -> String {
        match self.as_str() {
            Some(s) => s.to_string(),
            None => match self {
                Got::Val(v) => v.to_string(),
                Got::Str(s) => s.to_string(),
            },
        }
    }
    fn equals(&self, want: &Value) -> bool {
        match self {
            Got::Str(s) => want.as_str() == Some(s),
            Got::Val(v) => *v == want,
        }
    }
    fn number(&self) -> Option<&Value> {
        match self {
            Got::Val(v) if v.is_number() => Some(v),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Cond {
    at: Pointer,
    equals: Option<Value>,
}

impl Cond {
    fn new(m: &Match, trie: &Trie) -> Cond {
        Cond {
            at: Pointer::new(&m.pointer, trie),
            equals: m.equals.clone(),
        }
    }
    fn holds(&self, caps: &Caps<'_>) -> bool {
        match (self.at.get(caps), &self.equals) {
            (Some(x), Some(want)) => x.equals(want),
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// What one event (or the body) of a reply said.
#[derive(Debug, Default)]
pub struct Read {
    /// Generated text (appended).
    pub text: bool,
    /// The event is the stream's end marker.
    pub end: bool,
}

/// A compiled template.
#[derive(Debug)]
pub struct Template {
    /// The file, for messages.
    pub name: String,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Headers of the template (client.headers come after and win).
    pub headers: Vec<(String, String)>,
    /// How the reply is framed.
    pub framing: Framing,
    body: Node,
    model: String,
    force: bool,
    temperature: Option<f64>,
    uses_messages: bool,
    text: Vec<Pointer>,
    reasoning: Vec<Pointer>,
    skip_text: Vec<Cond>,
    prompt_tokens: Option<Pointer>,
    output_tokens: Option<Pointer>,
    cached_tokens: Option<Pointer>,
    finish_reason: Option<Pointer>,
    prefill_ms: Option<Pointer>,
    decode_ms: Option<Pointer>,
    end_data: Option<Vec<u8>>,
    end: Option<Cond>,
    error: Vec<Cond>,
    error_message: Vec<Pointer>,
    /// Every pointer of the reply: what an event is parsed into (the rest is skipped).
    trie: Trie,
    /// The first mismatch was logged.
    reported: AtomicBool,
    mismatches: AtomicU64,
}

fn pointer(p: &Option<String>, trie: &Trie) -> Option<Pointer> {
    p.as_deref().map(|p| Pointer::new(p, trie))
}

fn snippet(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned();
    if b.len() > 200 { format!("{s}...") } else { s }
}

fn count(g: Got<'_>) -> Option<u32> {
    let v = g.number()?;
    v.as_u64()
        .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
        .map(|n| n.min(u32::MAX as u64) as u32)
}

fn ms_to_us(g: Got<'_>) -> Option<u64> {
    g.number()?
        .as_f64()
        .filter(|f| f.is_finite() && *f >= 0.0)
        .map(|f| (f * 1000.0).round() as u64)
}

impl Template {
    /// Compiles `spec` (read from `name`) for a run with client config `c`; merges
    /// `client.extra_body` into the body at `extra_body_at`.
    pub fn compile(spec: &TemplateSpec, name: &str, c: &ClientConfig) -> Result<Template, String> {
        let mut body = spec.body.clone();
        if !c.extra_body.is_empty() {
            let at = body
                .pointer_mut(&spec.extra_body_at)
                .and_then(Value::as_object_mut);
            let Some(obj) = at else {
                return Err(format!(
                    "client.template {name}: extra_body_at: `{}` is not an object of the body (client.extra_body goes there)",
                    spec.extra_body_at
                ));
            };
            for (k, v) in &c.extra_body {
                obj.insert(k.clone(), v.clone());
            }
        }
        let r = &spec.reply;
        let mut trie = Trie::default();
        let singles = [
            &r.prompt_tokens,
            &r.output_tokens,
            &r.cached_tokens,
            &r.finish_reason,
            &r.prefill_ms,
            &r.decode_ms,
            &r.end.pointer,
        ];
        for p in r
            .text
            .iter()
            .chain(&r.reasoning)
            .chain(&r.error_message)
            .chain(r.skip_text_when.iter().map(|m| &m.pointer))
            .chain(r.error.iter().map(|m| &m.pointer))
            .chain(singles.into_iter().flatten())
        {
            trie.add(&tokens(p));
        }
        trie.number(&mut 0);
        Ok(Template {
            name: name.to_string(),
            method: spec.method.clone(),
            path: spec.path.clone(),
            headers: spec
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            framing: r.framing,
            body: compile(&body),
            model: c.model.clone(),
            force: c.force_output_length,
            temperature: c.temperature,
            uses_messages: spec.uses("messages"),
            text: r.text.iter().map(|p| Pointer::new(p, &trie)).collect(),
            reasoning: r.reasoning.iter().map(|p| Pointer::new(p, &trie)).collect(),
            skip_text: r
                .skip_text_when
                .iter()
                .map(|m| Cond::new(m, &trie))
                .collect(),
            prompt_tokens: pointer(&r.prompt_tokens, &trie),
            output_tokens: pointer(&r.output_tokens, &trie),
            cached_tokens: pointer(&r.cached_tokens, &trie),
            finish_reason: pointer(&r.finish_reason, &trie),
            prefill_ms: pointer(&r.prefill_ms, &trie),
            decode_ms: pointer(&r.decode_ms, &trie),
            end_data: r.end.data.as_ref().map(|d| d.as_bytes().to_vec()),
            end: end_cond(&r.end, &trie),
            error: r.error.iter().map(|m| Cond::new(m, &trie)).collect(),
            error_message: r
                .error_message
                .iter()
                .map(|p| Pointer::new(p, &trie))
                .collect(),
            trie,
            reported: AtomicBool::new(false),
            mismatches: AtomicU64::new(0),
        })
    }

    /// Reads and compiles `client.template` for `c` (None unless `client.api: template`).
    pub fn for_config(c: &ClientConfig) -> Result<Option<Template>, String> {
        let spec = c
            .template_spec()
            .map_err(|p| format!("client.template: {}", p.join("; ")))?;
        match (spec, &c.template) {
            (Some(s), Some(name)) => Template::compile(&s, name, c).map(Some),
            _ => Ok(None),
        }
    }

    /// Whether a session's history goes in as chat messages (the body uses `{{messages}}`).
    pub fn uses_messages(&self) -> bool {
        self.uses_messages
    }

    /// Whether the reply streams.
    pub fn streams(&self) -> bool {
        self.framing.streams()
    }

    /// Mismatches are not logged (the preflight's probe reports its own finding).
    pub fn silence(&self) {
        self.reported.store(true, Relaxed);
    }

    /// How many replies did not fit the template so far.
    pub fn mismatches(&self) -> u64 {
        self.mismatches.load(Relaxed)
    }

    /// The request body for `v`.
    pub fn build(&self, v: &Vars<'_>) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            v.prompt.len()
                + v.messages.map_or(0, str::len)
                + v.images.iter().map(|u| u.len()).sum::<usize>()
                + 256,
        );
        self.node(&self.body, v, &mut out);
        out
    }

    fn node(&self, n: &Node, v: &Vars<'_>, out: &mut Vec<u8>) {
        match n {
            Node::Raw(b) => out.extend_from_slice(b),
            Node::Var(x) => {
                if !self.var(x, v, out) {
                    out.extend_from_slice(b"null");
                }
            }
            Node::Interp(pieces) => {
                let mut s = String::new();
                for p in pieces {
                    match p {
                        Piece::Lit(l) => s.push_str(l),
                        Piece::Var(x) => self.text_of(x, v, &mut s),
                    }
                }
                write_json_str(out, &s);
            }
            Node::Obj(members) => {
                out.push(b'{');
                let mut first = true;
                for (key, val) in members {
                    if let Node::Var(x) = val
                        && !self.present(x, v)
                    {
                        continue;
                    }
                    if !std::mem::take(&mut first) {
                        out.push(b',');
                    }
                    out.extend_from_slice(key);
                    self.node(val, v, out);
                }
                out.push(b'}');
            }
            Node::Arr(items) => {
                out.push(b'[');
                let mut first = true;
                for it in items {
                    if let Node::Var(x) = it
                        && !self.present(x, v)
                    {
                        continue;
                    }
                    if !std::mem::take(&mut first) {
                        out.push(b',');
                    }
                    self.node(it, v, out);
                }
                out.push(b']');
            }
        }
    }

    fn present(&self, x: &Var, v: &Vars<'_>) -> bool {
        match x {
            Var::MaxTokens => v.max_tokens.is_some(),
            Var::MinTokens | Var::IgnoreEos => self.force && v.max_tokens.is_some(),
            Var::Temperature => self.temperature.is_some(),
            Var::ImageUrl | Var::ImageBase64 | Var::ImageUrls => !v.images.is_empty(),
            Var::Field(f) => v.fields.and_then(|m| m.get(f)).is_some(),
            _ => true,
        }
    }

    /// Writes the JSON value of `x`; false when it has none.
    fn var(&self, x: &Var, v: &Vars<'_>, out: &mut Vec<u8>) -> bool {
        if !self.present(x, v) {
            return false;
        }
        match x {
            Var::Prompt => write_json_str(out, v.prompt),
            Var::Messages => {
                out.push(b'[');
                match v.messages {
                    Some(m) => out.extend_from_slice(m.as_bytes()),
                    None => out.extend_from_slice(user_message_with(v.prompt, v.images).as_bytes()),
                }
                out.push(b']');
            }
            Var::MaxTokens | Var::MinTokens => {
                out.extend_from_slice(v.max_tokens.unwrap_or(0).to_string().as_bytes())
            }
            Var::IgnoreEos => out.extend_from_slice(b"true"),
            Var::Model => write_json_str(out, &self.model),
            Var::Stream => out.extend_from_slice(if self.streams() { b"true" } else { b"false" }),
            Var::Temperature => {
                serde_json::to_writer(&mut *out, &self.temperature).expect("JSON");
            }
            Var::ImageUrl => write_json_str(out, v.first_image()),
            Var::ImageBase64 => write_json_str(out, bare_base64(v.first_image())),
            Var::ImageUrls => serde_json::to_writer(&mut *out, v.images).expect("JSON"),
            Var::Seed => out.extend_from_slice(v.id.to_string().as_bytes()),
            Var::Field(f) => {
                let val = v.fields.and_then(|m| m.get(f)).expect("present");
                serde_json::to_writer(&mut *out, val).expect("JSON");
            }
        }
        true
    }

    /// The text of `x` inside a longer string.
    fn text_of(&self, x: &Var, v: &Vars<'_>, s: &mut String) {
        match x {
            Var::Prompt => s.push_str(v.prompt),
            Var::Model => s.push_str(&self.model),
            Var::ImageUrl => s.push_str(v.first_image()),
            Var::ImageBase64 => s.push_str(bare_base64(v.first_image())),
            Var::Field(f) => match v.fields.and_then(|m| m.get(f)) {
                Some(Value::String(t)) => s.push_str(t),
                Some(other) => s.push_str(&other.to_string()),
                None => {}
            },
            other => {
                let mut b = Vec::new();
                if self.var(other, v, &mut b) {
                    s.push_str(&String::from_utf8_lossy(&b));
                }
            }
        }
    }

    /// A reply part that does not fit the template: the error text for the record, logged
    /// the first time only.
    pub fn mismatch(&self, key: &str, what: &str) -> String {
        let msg = format!("client.template {}: {key}: {what}", self.name);
        self.mismatches.fetch_add(1, Relaxed);
        if !self.reported.swap(true, Relaxed) {
            tracing::error!(
                "{msg} (requests whose replies do not fit the template fail; this is logged once)"
            );
        }
        msg
    }

    /// Whether `data` is the SSE end event.
    pub fn is_end_data(&self, data: &[u8]) -> bool {
        self.end_data.as_deref() == Some(data)
    }

    /// Reads one event (or, with `json` framing, the body) into `into`.
    pub fn read(&self, raw: &[u8], into: &mut Into<'_>) -> Result<Read, String> {
        let what = if self.framing.streams() {
            "event"
        } else {
            "body"
        };
        let v = capture(raw, &self.trie).map_err(|e| {
            self.mismatch(
                "reply.framing",
                &format!(
                    "is `{}` but a{} {what} is not JSON ({e}): {}",
                    self.framing.name(),
                    if what == "event" { "n" } else { "" },
                    snippet(raw)
                ),
            )
        })?;
        if self.error.iter().any(|c| c.holds(&v)) {
            let m = self
                .error_message
                .iter()
                .find_map(|p| p.get(&v))
                .map(|m| m.text())
                .unwrap_or_else(|| snippet(raw));
            return Err(format!("server error: {m}"));
        }
        let mut matched = false;
        let mut out = Read::default();
        let skip = self.skip_text.iter().any(|c| c.holds(&v));
        matched |= skip;
        for (ptrs, dst) in [
            (&self.text, &mut *into.content),
            (&self.reasoning, &mut *into.reasoning),
        ] {
            for p in ptrs {
                if let Some(t) = p.get(&v) {
                    matched = true;
                    if let (Some(s), false) = (t.as_str(), skip)
                        && !s.is_empty()
                    {
                        dst.push_str(s);
                        out.text = true;
                    }
                }
            }
        }
        let mut take = |p: &Option<Pointer>| {
            let x = p.as_ref().and_then(|p| p.get(&v));
            matched |= x.is_some();
            x
        };
        if let Some(n) = take(&self.prompt_tokens).and_then(count) {
            *into.usage_prompt = Some(n);
        }
        if let Some(n) = take(&self.output_tokens).and_then(count) {
            *into.usage_output = Some(n);
        }
        if let Some(n) = take(&self.cached_tokens).and_then(count) {
            into.server.cached_prompt_tokens = Some(n);
        }
        if let Some(f) = take(&self.finish_reason) {
            *into.finish_reason = Some(f.text());
        }
        if let Some(us) = take(&self.prefill_ms).and_then(ms_to_us) {
            into.server.prefill_us = Some(us);
        }
        if let Some(us) = take(&self.decode_ms).and_then(ms_to_us) {
            into.server.decode_us = Some(us);
        }
        if let (Some(p), Some(d)) = (into.server.prefill_us, into.server.decode_us) {
            into.server.inference_us = Some(p + d);
        }
        if let Some(e) = &self.end {
            matched |= e.at.get(&v).is_some();
            out.end = e.holds(&v);
        }
        if !self.framing.streams() && !out.text && self.text.iter().all(|p| p.get(&v).is_none()) {
            let ptrs: Vec<&str> = self.text.iter().map(|p| p.text.as_str()).collect();
            return Err(self.mismatch(
                "reply.text",
                &format!(
                    "none of {} is in the body: {}",
                    ptrs.join(", "),
                    snippet(raw)
                ),
            ));
        }
        if !matched {
            return Err(self.mismatch(
                "reply",
                &format!(
                    "none of the template's pointers (text {}) is in the {what}: {}",
                    self.text
                        .iter()
                        .map(|p| p.text.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    snippet(raw)
                ),
            ));
        }
        Ok(out)
    }
}

fn end_cond(e: &End, trie: &Trie) -> Option<Cond> {
    e.pointer.as_ref().map(|p| Cond {
        at: Pointer::new(p, trie),
        equals: e.equals.clone(),
    })
}

/// The base64 of a `data:` URL.
fn bare_base64(url: &str) -> &str {
    url.split_once(";base64,").map_or(url, |(_, b)| b)
}

/// Where [`Template::read`] puts what it finds (the collector's fields).
#[derive(Debug)]
pub struct Into<'a> {
    /// Answer text.
    pub content: &'a mut String,
    /// Reasoning text.
    pub reasoning: &'a mut String,
    /// Server's prompt tokens.
    pub usage_prompt: &'a mut Option<u32>,
    /// Server's output tokens.
    pub usage_output: &'a mut Option<u32>,
    /// Finish reason.
    pub finish_reason: &'a mut Option<String>,
    /// Server times.
    pub server: &'a mut bench_types::record::ServerTimes,
}

/// JSON lines, split from arbitrary read boundaries (LF or CRLF; blank lines skipped).
#[derive(Debug, Default)]
pub struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    /// Bytes of an unfinished line.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    /// Calls `on` for every line completed in `input`.
    pub fn feed(
        &mut self,
        input: &[u8],
        on: &mut impl FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', input) {
            let seg = &input[start..nl];
            start = nl + 1;
            if self.partial.is_empty() {
                line(seg, on)?;
            } else {
                let mut l = std::mem::take(&mut self.partial);
                l.extend_from_slice(seg);
                line(&l, on)?;
            }
        }
        self.partial.extend_from_slice(&input[start..]);
        Ok(())
    }

    /// The end of the body: a last line without its newline.
    pub fn finish(
        &mut self,
        on: &mut impl FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        let l = std::mem::take(&mut self.partial);
        line(&l, on)
    }
}

fn line(l: &[u8], on: &mut impl FnMut(&[u8]) -> Result<(), String>) -> Result<(), String> {
    let l = l.strip_suffix(b"\r").unwrap_or(l);
    if l.trim_ascii().is_empty() {
        return Ok(());
    }
    on(l)
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
