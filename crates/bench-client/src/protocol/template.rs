//! `client.api: template`: a [`TemplateSpec`] compiled once before the run.
//!
//! The body becomes a small tree whose constant parts are pre-serialized bytes
//! ([`Node::Raw`]); building a request walks it once, splicing the prompt (or the messages)
//! straight into the output buffer as the built-in bodies do. The reply's JSON pointers are
//! split into their tokens once; each event is parsed into a `serde_json::Value` and looked up
//! with them.
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

use super::request::{user_message, user_message_with, write_json_str};

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
    /// The (first) image's `data:` URL.
    pub image: Option<&'a str>,
    /// Every image's `data:` URL, in order (empty: only `image`, if any).
    pub images: &'a [&'a str],
    /// `max_tokens`.
    pub max_tokens: Option<u32>,
    /// The workload request's `fields`.
    pub fields: Option<&'a Map<String, Value>>,
    /// The request's id.
    pub id: u64,
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
            v.prompt.len() + v.messages.map_or(0, str::len) + v.image.map_or(0, str::len) + 256,
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
            Var::ImageUrl | Var::ImageBase64 | Var::ImageUrls => v.image.is_some(),
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
                    None if v.images.is_empty() => {
                        out.extend_from_slice(user_message(v.prompt, v.image).as_bytes())
                    }
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
            Var::ImageUrl => write_json_str(out, v.image.unwrap_or_default()),
            Var::ImageBase64 => write_json_str(out, bare_base64(v.image.unwrap_or_default())),
            Var::ImageUrls => {
                let all: &[&str] = if v.images.is_empty() {
                    v.image.as_slice()
                } else {
                    v.images
                };
                serde_json::to_writer(&mut *out, all).expect("JSON");
            }
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
            Var::ImageUrl => s.push_str(v.image.unwrap_or_default()),
            Var::ImageBase64 => s.push_str(bare_base64(v.image.unwrap_or_default())),
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

/// The paths of a reply's pointers, as a tree. An event is walked along these paths only:
/// the value where a pointer (the shallowest one on a path) ends is captured in that node's
/// slot (a string borrowed from the input when it has no escapes), everything else is skipped
/// without allocating. Pointers then read the captured slots.
#[derive(Debug, Default)]
struct Trie {
    /// A pointer ends here: the slot that keeps the value.
    leaf: Option<usize>,
    ends: bool,
    keys: Vec<(String, Trie)>,
    indices: Vec<(usize, Trie)>,
    slots: usize,
}

impl Trie {
    fn add(&mut self, tokens: &[(String, Option<usize>)]) {
        let Some(((t, i), rest)) = tokens.split_first() else {
            self.ends = true;
            return;
        };
        let k = match self.keys.iter().position(|(k, _)| k == t) {
            Some(k) => k,
            None => {
                self.keys.push((t.clone(), Trie::default()));
                self.keys.len() - 1
            }
        };
        self.keys[k].1.add(rest);
        if let Some(i) = *i {
            let at = match self.indices.iter().position(|(j, _)| *j == i) {
                Some(at) => at,
                None => {
                    self.indices.push((i, Trie::default()));
                    self.indices.len() - 1
                }
            };
            self.indices[at].1.add(rest);
        }
    }

    /// Gives every node where a pointer ends a slot (nodes below one capture nothing of
    /// their own: their values are inside it). An array index shares the slots of the object
    /// key of the same digits: a value is one or the other, and pointers are located by key.
    fn number(&mut self, next: &mut usize) {
        if self.ends {
            self.leaf = Some(*next);
            *next += 1;
        } else {
            for (_, t) in &mut self.keys {
                t.number(next);
            }
            for (i, t) in &mut self.indices {
                let name = i.to_string();
                if let Some((_, k)) = self.keys.iter().find(|(k, _)| *k == name) {
                    t.mirror(k);
                }
            }
        }
        self.slots = *next;
    }

    /// Takes the slots of `from`, a node built by the same pointers.
    fn mirror(&mut self, from: &Trie) {
        self.leaf = from.leaf;
        for ((_, a), (_, b)) in self.keys.iter_mut().zip(&from.keys) {
            a.mirror(b);
        }
        for ((_, a), (_, b)) in self.indices.iter_mut().zip(&from.indices) {
            a.mirror(b);
        }
    }

    /// The slot holding `tokens`' value (or the value it is inside) and its depth.
    fn locate(&self, tokens: &[(String, Option<usize>)]) -> (usize, usize) {
        let mut node = self;
        for (d, (t, _)) in tokens.iter().enumerate() {
            if let Some(s) = node.leaf {
                return (s, d);
            }
            node = match node.keys.iter().find(|(k, _)| k == t) {
                Some((_, n)) => n,
                None => return (usize::MAX, d),
            };
        }
        (node.leaf.unwrap_or(usize::MAX), tokens.len())
    }
}

/// A captured value.
#[derive(Debug, PartialEq)]
enum Cap<'de> {
    Str(std::borrow::Cow<'de, str>),
    Val(Value),
}

/// The slots of one event.
type Caps<'de> = Vec<Option<Cap<'de>>>;

fn capture<'de>(raw: &'de [u8], trie: &Trie) -> Result<Caps<'de>, serde_json::Error> {
    use serde::de::DeserializeSeed;
    let mut caps: Caps<'de> = (0..trie.slots).map(|_| None).collect();
    let mut de = serde_json::Deserializer::from_slice(raw);
    Walk {
        node: trie,
        caps: &mut caps,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(caps)
}

/// Walks a value along a trie node.
struct Walk<'t, 'c, 'de> {
    node: &'t Trie,
    caps: &'c mut Caps<'de>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Walk<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if let Some(slot) = self.node.leaf {
            self.caps[slot] = Some(CapSeed.deserialize(d)?);
            return Ok(());
        }
        d.deserialize_any(self)
    }
}

/// Finds an object key among a trie node's keys without allocating.
struct Key<'t>(&'t Trie);

impl<'de, 't> serde::de::DeserializeSeed<'de> for Key<'t> {
    type Value = Option<&'t Trie>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, 't> serde::de::Visitor<'de> for Key<'t> {
    type Value = Option<&'t Trie>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, k: &str) -> Result<Self::Value, E> {
        Ok(self.0.keys.iter().find(|(x, _)| x == k).map(|(_, t)| t))
    }
}

impl<'de> serde::de::Visitor<'de> for Walk<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
        while let Some(k) = m.next_key_seed(Key(self.node))? {
            match k {
                Some(t) => m.next_value_seed(Walk {
                    node: t,
                    caps: self.caps,
                })?,
                None => {
                    m.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            let more = match self.node.indices.iter().find(|(j, _)| *j == i) {
                Some((_, t)) => s
                    .next_element_seed(Walk {
                        node: t,
                        caps: self.caps,
                    })?
                    .is_some(),
                None => s.next_element::<serde::de::IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }
    // a scalar where the pointers go deeper: no pointer finds anything in it
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Captures a value: a string borrowed when it can be, anything else as a `Value`.
struct CapSeed;

impl<'de> serde::de::DeserializeSeed<'de> for CapSeed {
    type Value = Cap<'de>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Cap<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for CapSeed {
    type Value = Cap<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Cap<'de>, E> {
        Ok(Cap::Str(std::borrow::Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Cap<'de>, E> {
        Ok(Cap::Str(std::borrow::Cow::Owned(s.to_string())))
    }
    fn visit_string<E>(self, s: String) -> Result<Cap<'de>, E> {
        Ok(Cap::Str(std::borrow::Cow::Owned(s)))
    }
    fn visit_bool<E>(self, b: bool) -> Result<Cap<'de>, E> {
        Ok(Cap::Val(Value::Bool(b)))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Cap<'de>, E> {
        Ok(Cap::Val(Value::from(n)))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Cap<'de>, E> {
        Ok(Cap::Val(Value::from(n)))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Cap<'de>, E> {
        Ok(Cap::Val(Value::from(n)))
    }
    fn visit_unit<E>(self) -> Result<Cap<'de>, E> {
        Ok(Cap::Val(Value::Null))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, m: A) -> Result<Cap<'de>, A::Error> {
        use serde::Deserialize;
        Value::deserialize(serde::de::value::MapAccessDeserializer::new(m)).map(Cap::Val)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, s: A) -> Result<Cap<'de>, A::Error> {
        use serde::Deserialize;
        Value::deserialize(serde::de::value::SeqAccessDeserializer::new(s)).map(Cap::Val)
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
mod tests {
    use super::*;

    fn tpl(yaml: &str, c: &ClientConfig) -> Template {
        let spec = TemplateSpec::from_yaml(yaml).unwrap();
        Template::compile(&spec, "t.yaml", c).unwrap()
    }

    #[test]
    fn body_fills_placeholders_and_leaves_out_absent_members() {
        let mut c = ClientConfig {
            model: "m".into(),
            ..ClientConfig::default()
        };
        c.extra_body.insert("top_k".into(), serde_json::json!(1));
        let t = tpl(
            r#"
path: /x
body: {model: "{{model}}", p: "{{prompt}}", n: "{{max_tokens}}", min: "{{min_tokens}}",
       t: "{{temperature}}", img: ["{{image_base64}}"], s: "{{stream}}",
       w: "{{field.workflow}}", label: "{{field.width}}x{{field.height}} for {{model}}",
       opts: {fixed: [1, "a"]}}
extra_body_at: /opts
reply: {framing: json, text: [/t]}
"#,
            &c,
        );
        let fields: Map<String, Value> =
            serde_json::from_str(r#"{"width": 512, "height": 768, "workflow": {"3": {"k": [1]}}}"#)
                .unwrap();
        let b = t.build(&Vars {
            prompt: "hi \"x\"",
            max_tokens: Some(7),
            fields: Some(&fields),
            ..Vars::default()
        });
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"model": "m", "p": "hi \"x\"", "n": 7, "min": 7, "img": [], "s": false,
                "w": {"3": {"k": [1]}}, "label": "512x768 for m", "opts": {"fixed": [1, "a"], "top_k": 1}})
        );
        let b = t.build(&Vars {
            prompt: "p",
            image: Some("data:image/png;base64,QUJD"),
            ..Vars::default()
        });
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["img"], serde_json::json!(["QUJD"]));
        assert!(v.get("n").is_none() && v.get("w").is_none(), "{v}");
    }

    #[test]
    fn every_image_in_image_urls_and_messages() {
        let t = tpl(
            r#"
path: /x
body: {first: "{{image_url}}", all: "{{image_urls}}", messages: "{{messages}}"}
reply: {framing: json, text: [/t]}
"#,
            &ClientConfig::default(),
        );
        let urls = ["data:image/png;base64,QQ==", "data:image/jpeg;base64,Qg=="];
        let v: Value = serde_json::from_slice(&t.build(&Vars {
            prompt: "two pictures",
            image: Some(urls[0]),
            images: &urls,
            ..Vars::default()
        }))
        .unwrap();
        assert_eq!(v["first"], urls[0]);
        assert_eq!(v["all"], serde_json::json!(urls));
        let parts = &v["messages"][0]["content"];
        assert_eq!(parts[0]["text"], "two pictures");
        assert_eq!(parts[1]["image_url"]["url"], urls[0]);
        assert_eq!(parts[2]["image_url"]["url"], urls[1]);
        // one image given as `image` alone (a session turn): the array holds it
        let v: Value = serde_json::from_slice(&t.build(&Vars {
            prompt: "p",
            image: Some(urls[1]),
            ..Vars::default()
        }))
        .unwrap();
        assert_eq!(v["all"], serde_json::json!([urls[1]]));
        // no image: left out
        let v: Value = serde_json::from_slice(&t.build(&Vars::default())).unwrap();
        assert!(v.get("all").is_none() && v.get("first").is_none(), "{v}");
    }

    #[test]
    fn captured_slots_read_like_the_whole_event() {
        let ptrs = [
            "/choices/0/delta/content",
            "/choices/2/text",
            "/usage",
            "/usage/prompt_tokens",
            "/error/message",
            "/0/k",
            "/esc",
            "/n",
        ];
        let mut t = Trie::default();
        for p in ptrs {
            t.add(&tokens(p));
        }
        t.number(&mut 0);
        let raw =
            br#"{"id":"x","choices":[{"delta":{"content":"hi","role":"a"},"logprobs":{"a":[1,2]}},
            {"text":"no"},{"text":"yes"}],"usage":{"prompt_tokens":3,"x":[{}]},"error":"flat",
            "0":{"k":1},"esc":"a\"b","n":2.5}"#;
        let caps = capture(raw, &t).unwrap();
        assert_eq!(
            caps.len(),
            7,
            "/usage/prompt_tokens is read inside /usage's slot; indices share their keys' slots"
        );
        let full: Value = serde_json::from_slice(raw).unwrap();
        for p in ptrs {
            let got = Pointer::new(p, &t).get(&caps).map(|g| g.text());
            let want = full
                .pointer(p)
                .filter(|v| !v.is_null())
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
            assert_eq!(got, want, "{p}");
        }
        assert!(matches!(
            caps[0],
            Some(Cap::Str(std::borrow::Cow::Borrowed("hi")))
        ));
        assert!(capture(b"{\"a\":1} x", &t).is_err());
        assert!(capture(b"data: {}", &t).is_err());
    }

    #[test]
    fn json_lines_split_anywhere() {
        let input = b"{\"a\":1}\r\n\n{\"b\":2}\n{\"c\":3}";
        for cut in 0..input.len() {
            let mut l = Lines::default();
            let mut got = Vec::new();
            let mut on = |x: &[u8]| {
                got.push(String::from_utf8(x.to_vec()).unwrap());
                Ok(())
            };
            l.feed(&input[..cut], &mut on).unwrap();
            l.feed(&input[cut..], &mut on).unwrap();
            l.finish(&mut on).unwrap();
            assert_eq!(got, ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"], "cut at {cut}");
        }
    }
}
