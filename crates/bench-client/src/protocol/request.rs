//! Request bodies for the OpenAI chat / completions APIs and TGI.
//!
//! Bodies are spliced, not built as `serde_json::Value`: the prompt (or the conversation) is
//! escaped straight into the output buffer once, and the small per-request object (model,
//! max_tokens, stream, ...) is serialized after it. The long prompt is never copied into a
//! JSON tree.

use bench_config::ClientConfig;
use bench_config::client::Api;
use serde_json::{Map, Value, json};
use std::sync::Arc;

use super::template::{Template, Vars};

/// Keys the client sets itself; `client.extra_body` may not override them.
pub const RESERVED_KEYS: [&str; 4] = ["messages", "prompt", "inputs", "stream"];

/// What a request carries as its prompt.
#[derive(Debug, Clone, Copy)]
pub enum Prompt<'a> {
    /// Plain text (completions, TGI; wrapped as one user message for chat).
    Text(&'a str),
    /// Chat: the comma-separated JSON messages (see [`user_message`], [`assistant_message`]).
    Messages(&'a str),
}

/// Builds the request bodies of a run.
#[derive(Debug, Clone)]
pub struct BodyBuilder {
    api: Api,
    stream: bool,
    stream_usage: bool,
    model: String,
    force_output_length: bool,
    max_output_tokens: Option<u32>,
    temperature: Option<f64>,
    extra: Map<String, Value>,
    /// `client.api: template`.
    template: Option<Arc<Template>>,
}

/// What a request carries besides its prompt: this turn's own text, its images, its workload
/// fields and id (used by templates; the built-in APIs take the images inside the messages).
#[derive(Debug, Clone, Copy, Default)]
pub struct Extra<'a> {
    /// This turn's own user text (the prompt of a session turn sent as messages).
    pub turn_text: &'a str,
    /// The images' `data:` URLs, in order.
    pub images: &'a [&'a str],
    /// The workload request's `fields`.
    pub fields: Option<&'a Map<String, Value>>,
    /// The request id.
    pub id: u64,
}

impl BodyBuilder {
    /// From the `client.*` config.
    pub fn new(c: &ClientConfig) -> Self {
        let extra = c
            .extra_body
            .iter()
            .filter(|(k, _)| !RESERVED_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        BodyBuilder {
            api: c.api,
            stream: c.stream,
            stream_usage: c.stream_usage,
            model: c.model.clone(),
            force_output_length: c.force_output_length,
            max_output_tokens: c.max_output_tokens,
            temperature: c.temperature,
            extra,
            template: None,
        }
    }

    /// From the `client.*` config, with `client.template` compiled when the API is a template.
    pub fn for_config(c: &ClientConfig) -> Result<Self, String> {
        let t = Template::for_config(c)?.map(Arc::new);
        Ok(BodyBuilder::new(c).with_template(t))
    }

    /// Builds bodies from `t` (None: the built-in API).
    pub fn with_template(mut self, t: Option<Arc<Template>>) -> Self {
        self.template = t;
        self
    }

    /// The compiled template (`client.api: template`).
    pub fn template(&self) -> Option<&Arc<Template>> {
        self.template.as_ref()
    }

    /// Whether a session's history is sent as chat messages (else as text joined by blank
    /// lines).
    pub fn chat_history(&self) -> bool {
        match &self.template {
            Some(t) => t.uses_messages(),
            None => self.api == Api::OpenaiChat,
        }
    }

    /// Whether replies stream (a template's framing, else `client.stream`).
    pub fn streams(&self) -> bool {
        self.template.as_ref().map_or(self.stream, |t| t.streams())
    }

    /// The API.
    pub fn api(&self) -> Api {
        self.api
    }

    /// `max_tokens` for a request whose workload output length is `output_length`: that length
    /// capped by `client.max_output_tokens`; the cap alone when the workload gives none.
    pub fn max_tokens(&self, output_length: Option<u32>) -> Option<u32> {
        match (output_length, self.max_output_tokens) {
            (Some(o), Some(c)) => Some(o.min(c)),
            (Some(o), None) => Some(o),
            (None, c) => c,
        }
    }

    /// The JSON body for `prompt`.
    pub fn build(&self, prompt: Prompt<'_>, max_tokens: Option<u32>) -> Vec<u8> {
        self.build_ext(prompt, max_tokens, &Extra::default())
    }

    /// The JSON body for `prompt` and what else the request carries.
    pub fn build_ext(&self, prompt: Prompt<'_>, max_tokens: Option<u32>, x: &Extra<'_>) -> Vec<u8> {
        if let Some(t) = &self.template {
            let (text, messages) = match prompt {
                Prompt::Text(t) => (t, None),
                Prompt::Messages(m) => (x.turn_text, Some(m)),
            };
            return t.build(&Vars {
                prompt: text,
                messages,
                images: x.images,
                max_tokens,
                fields: x.fields,
                id: x.id,
            });
        }
        let rest = serde_json::to_vec(&self.rest(max_tokens)).expect("a JSON map serializes");
        let prompt_len = match prompt {
            Prompt::Text(t) | Prompt::Messages(t) => t.len(),
        };
        let mut out = Vec::with_capacity(prompt_len + prompt_len / 16 + rest.len() + 64);
        match (self.api, prompt) {
            (Api::OpenaiChat, Prompt::Text(t)) => {
                out.extend_from_slice(b"{\"messages\":[");
                write_user_message(&mut out, t, &[]);
                out.push(b']');
            }
            (Api::OpenaiChat, Prompt::Messages(m)) => {
                out.extend_from_slice(b"{\"messages\":[");
                out.extend_from_slice(m.as_bytes());
                out.push(b']');
            }
            (Api::OpenaiCompletions, Prompt::Text(t) | Prompt::Messages(t)) => {
                out.extend_from_slice(b"{\"prompt\":");
                write_json_str(&mut out, t);
            }
            (Api::Tgi, Prompt::Text(t) | Prompt::Messages(t)) => {
                out.extend_from_slice(b"{\"inputs\":");
                write_json_str(&mut out, t);
            }
            (Api::Template, _) => unreachable!("a template API has its template"),
        }
        // `rest` is a non-empty object: splice its members after the prompt.
        out.push(b',');
        out.extend_from_slice(&rest[1..]);
        out
    }

    fn rest(&self, max_tokens: Option<u32>) -> Map<String, Value> {
        let mut m = Map::new();
        match self.api {
            Api::OpenaiChat | Api::OpenaiCompletions | Api::Template => {
                m.insert("model".into(), Value::String(self.model.clone()));
                if let Some(n) = max_tokens {
                    m.insert("max_tokens".into(), json!(n));
                    if self.force_output_length {
                        m.insert("min_tokens".into(), json!(n));
                        m.insert("ignore_eos".into(), json!(true));
                    }
                }
                m.insert("stream".into(), json!(self.stream));
                if self.stream && self.stream_usage {
                    m.insert("stream_options".into(), json!({"include_usage": true}));
                }
                if let Some(t) = self.temperature {
                    m.insert("temperature".into(), json!(t));
                }
            }
            Api::Tgi => {
                let mut p = Map::new();
                if let Some(n) = max_tokens {
                    p.insert("max_new_tokens".into(), json!(n));
                }
                p.insert("details".into(), json!(true));
                // TGI wants temperature > 0; 0 means greedy, its default.
                if let Some(t) = self.temperature.filter(|t| *t > 0.0) {
                    p.insert("temperature".into(), json!(t));
                    p.insert("do_sample".into(), json!(true));
                }
                // TGI reads every generation option from `parameters`
                for (k, v) in &self.extra {
                    p.insert(k.clone(), v.clone());
                }
                m.insert("parameters".into(), Value::Object(p));
                return m;
            }
        }
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        m
    }
}

/// Appends `s` as a JSON string literal.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

fn write_user_message(out: &mut Vec<u8>, text: &str, image_data_urls: &[&str]) {
    out.extend_from_slice(b"{\"role\":\"user\",\"content\":");
    if image_data_urls.is_empty() {
        write_json_str(out, text);
    } else {
        out.extend_from_slice(b"[{\"type\":\"text\",\"text\":");
        write_json_str(out, text);
        for url in image_data_urls {
            out.extend_from_slice(b"},{\"type\":\"image_url\",\"image_url\":{\"url\":");
            write_json_str(out, url);
            out.push(b'}');
        }
        out.extend_from_slice(b"}]");
    }
    out.push(b'}');
}

/// A user chat message as JSON, with an image content part when `image_data_url` is given.
pub fn user_message(text: &str, image_data_url: Option<&str>) -> String {
    user_message_with(text, image_data_url.as_slice())
}

/// A user chat message as JSON, with one image content part per `data:` URL, in order.
pub fn user_message_with(text: &str, image_data_urls: &[&str]) -> String {
    let urls: usize = image_data_urls.iter().map(|u| u.len() + 48).sum();
    let mut out = Vec::with_capacity(text.len() + urls + 64);
    write_user_message(&mut out, text, image_data_urls);
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// An assistant chat message as JSON.
pub fn assistant_message(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len() + 40);
    out.extend_from_slice(b"{\"role\":\"assistant\",\"content\":");
    write_json_str(&mut out, text);
    out.push(b'}');
    String::from_utf8(out).expect("JSON is UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(api: Api, stream: bool) -> ClientConfig {
        ClientConfig {
            api,
            stream,
            model: "m".into(),
            ..ClientConfig::default()
        }
    }

    fn parse(b: &[u8]) -> Value {
        serde_json::from_slice(b).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(b)))
    }

    #[test]
    fn chat_streaming_body() {
        let b = BodyBuilder::new(&cfg(Api::OpenaiChat, true));
        let v = parse(&b.build(Prompt::Text("hi \"there\"\n"), Some(7)));
        assert_eq!(
            v,
            json!({"messages": [{"role": "user", "content": "hi \"there\"\n"}], "model": "m", "max_tokens": 7,
                   "min_tokens": 7, "ignore_eos": true, "stream": true, "stream_options": {"include_usage": true}})
        );
    }

    #[test]
    fn completions_without_length_or_force() {
        let mut c = cfg(Api::OpenaiCompletions, false);
        c.force_output_length = false;
        c.temperature = Some(0.0);
        c.extra_body.insert("top_k".into(), json!(1));
        c.extra_body.insert("stream".into(), json!(true));
        let b = BodyBuilder::new(&c);
        let v = parse(&b.build(Prompt::Text("p"), b.max_tokens(None)));
        assert_eq!(
            v,
            json!({"prompt": "p", "model": "m", "stream": false, "temperature": 0.0, "top_k": 1})
        );
    }

    #[test]
    fn cap_and_tgi_parameters() {
        let mut c = cfg(Api::Tgi, true);
        c.max_output_tokens = Some(5);
        c.temperature = Some(0.7);
        c.extra_body.insert("top_k".into(), json!(1));
        let b = BodyBuilder::new(&c);
        assert_eq!(b.max_tokens(Some(9)), Some(5));
        assert_eq!(b.max_tokens(Some(3)), Some(3));
        assert_eq!(b.max_tokens(None), Some(5));
        let v = parse(&b.build(Prompt::Text("x"), Some(5)));
        assert_eq!(
            v,
            json!({"inputs": "x", "parameters": {"max_new_tokens": 5, "details": true, "temperature": 0.7, "do_sample": true, "top_k": 1}})
        );
    }

    #[test]
    fn chat_history_and_image_parts() {
        let b = BodyBuilder::new(&cfg(Api::OpenaiChat, true));
        let msgs = [
            user_message("q1", None),
            assistant_message("a1"),
            user_message("q2", Some("data:image/png;base64,AAAA")),
        ]
        .join(",");
        let v = parse(&b.build(Prompt::Messages(&msgs), None));
        assert_eq!(
            v["messages"],
            json!([
                {"role": "user", "content": "q1"},
                {"role": "assistant", "content": "a1"},
                {"role": "user", "content": [{"type": "text", "text": "q2"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}
            ])
        );
    }
}
