//! `client.template`: any HTTP API described by a YAML file (`client.api: template`).
//!
//! A template says how to build a request (method, path, headers, a JSON body with
//! `{{placeholders}}`) and how to read its reply (the framing, and JSON pointers to the text,
//! the token counts and the end marker). The file is read and checked here, when the config
//! loads, so a typo is a config error naming `client.template` and the key inside the file;
//! the client compiles it once before the run (`bench_client::protocol::template`).
//!
//! ```yaml
//! method: POST
//! path: /api/generate
//! body: {model: "{{model}}", prompt: "{{prompt}}", options: {num_predict: "{{max_tokens}}"}}
//! reply:
//!   framing: json_lines
//!   text: [/response]
//!   output_tokens: /eval_count
//!   end: {pointer: /done, equals: true}
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How the reply's body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    /// Server-sent events (`data: {...}` lines), each event's data one JSON object.
    Sse,
    /// One JSON object per line (Ollama's `/api/generate` stream).
    JsonLines,
    /// One JSON body (not streamed).
    Json,
}

impl Framing {
    /// Whether the reply streams.
    pub fn streams(self) -> bool {
        self != Framing::Json
    }
    /// The name used in the file.
    pub fn name(self) -> &'static str {
        match self {
            Framing::Sse => "sse",
            Framing::JsonLines => "json_lines",
            Framing::Json => "json",
        }
    }
}

/// A condition on an event: the value at `pointer` exists and is not null (and, with
/// `equals`, equals it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// JSON pointer (RFC 6901) into the event or body.
    pub pointer: String,
    /// The value it must equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Value>,
}

/// The end marker of a streamed reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct End {
    /// SSE: the data of the end event (`[DONE]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// An event matching this is the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// With `pointer`: the value it must equal (absent: any non-null value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Value>,
}

/// Where the reply carries what the client records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplySpec {
    /// How the body is framed.
    pub framing: Framing,
    /// Pointers to generated text in each event (or the body); every one present is appended.
    #[serde(default)]
    pub text: Vec<String>,
    /// Pointers to reasoning text (counted as output, and as a first token).
    #[serde(default)]
    pub reasoning: Vec<String>,
    /// Events matching any of these carry no text (TGI's special tokens).
    #[serde(default)]
    pub skip_text_when: Vec<Match>,
    /// The server's prompt token count.
    #[serde(default)]
    pub prompt_tokens: Option<String>,
    /// The server's output token count.
    #[serde(default)]
    pub output_tokens: Option<String>,
    /// The server's cached prompt tokens.
    #[serde(default)]
    pub cached_tokens: Option<String>,
    /// Why generation stopped.
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// The server's own prefill time, ms.
    #[serde(default)]
    pub prefill_ms: Option<String>,
    /// The server's own decode time, ms.
    #[serde(default)]
    pub decode_ms: Option<String>,
    /// The stream's end marker (streamed framings).
    #[serde(default)]
    pub end: End,
    /// An event or body matching any of these is an error from the server.
    #[serde(default)]
    pub error: Vec<Match>,
    /// Where the error's message is (else the event itself is quoted).
    #[serde(default)]
    pub error_message: Vec<String>,
}

/// A template file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    /// What the template is for (free text).
    #[serde(default)]
    pub description: Option<String>,
    /// HTTP method: POST, PUT or PATCH.
    #[serde(default = "post")]
    pub method: String,
    /// Request path, appended to the endpoint's base URL (a base ending in `/v1` does not get
    /// a second one).
    pub path: String,
    /// Headers sent with every request (`client.headers` wins on the same name).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The JSON body. A string that is exactly `{{name}}` is replaced by that value (a member
    /// whose value is absent is left out); `{{name}}` inside a longer string is replaced by its
    /// text. Names: [`PLACEHOLDERS`], and `field.NAME` for a field of the workload request's
    /// `fields`.
    pub body: Value,
    /// JSON pointer of the object `client.extra_body` is merged into (`""`: the body).
    #[serde(default)]
    pub extra_body_at: String,
    /// How to read the reply.
    pub reply: ReplySpec,
}

fn post() -> String {
    "POST".into()
}

/// The placeholders a body may use, besides `field.NAME`.
pub const PLACEHOLDERS: [(&str, &str); 12] = [
    (
        "prompt",
        "the prompt text (with a session's history joined by blank lines, unless the body uses `messages`)",
    ),
    (
        "messages",
        "the chat messages so far, ending with this turn's user message (a JSON array)",
    ),
    (
        "max_tokens",
        "the request's output length (absent: left out)",
    ),
    (
        "min_tokens",
        "max_tokens when client.force_output_length is on (else left out)",
    ),
    (
        "ignore_eos",
        "true when client.force_output_length is on and max_tokens is given (else left out)",
    ),
    ("model", "client.model"),
    (
        "stream",
        "whether the reply streams (the framing is not `json`)",
    ),
    ("temperature", "client.temperature (absent: left out)"),
    (
        "image_url",
        "the request's image as a data: URL (absent: left out)",
    ),
    (
        "image_base64",
        "the request's image as bare base64 (absent: left out)",
    ),
    (
        "image_urls",
        "every image of the request (its file's, then dataset.images'), a JSON array of data: URLs (none: left out)",
    ),
    (
        "seed",
        "the request's id (a per-request number for APIs that want a seed)",
    ),
];

/// Every `{{name}}` in `s`, as (start, end, name) byte ranges of the whole `{{...}}`.
pub fn placeholders(s: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = s[from..].find("{{") {
        let start = from + i;
        let Some(j) = s[start + 2..].find("}}") else {
            break;
        };
        let end = start + 2 + j + 2;
        out.push((start, end, s[start + 2..end - 2].trim()));
        from = end;
    }
    out
}

/// Whether `name` is a placeholder a template may use.
pub fn known_placeholder(name: &str) -> bool {
    PLACEHOLDERS.iter().any(|(n, _)| *n == name)
        || name.strip_prefix("field.").is_some_and(|f| !f.is_empty())
}

fn check_pointer(key: &str, p: &str, out: &mut Vec<String>) {
    if !p.is_empty() && !p.starts_with('/') {
        out.push(format!(
            "{key}: `{p}` is not a JSON pointer (it starts with `/`, like /choices/0/text)"
        ));
    }
}

impl TemplateSpec {
    /// Reads and checks `path`; errors name the key inside the file.
    pub fn load(path: &Path) -> Result<TemplateSpec, Vec<String>> {
        let text =
            std::fs::read_to_string(path).map_err(|e| vec![format!("{}: {e}", path.display())])?;
        TemplateSpec::from_yaml(&text).map_err(|problems| {
            problems
                .into_iter()
                .map(|p| format!("{}: {p}", path.display()))
                .collect()
        })
    }

    /// Parses and checks a template's text.
    pub fn from_yaml(text: &str) -> Result<TemplateSpec, Vec<String>> {
        let spec: TemplateSpec = serde_yaml::from_str(text).map_err(|e| vec![e.to_string()])?;
        let problems = spec.check();
        if problems.is_empty() {
            Ok(spec)
        } else {
            Err(problems)
        }
    }

    /// Every problem of a parsed template.
    pub fn check(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !["POST", "PUT", "PATCH"].contains(&self.method.as_str()) {
            out.push(format!(
                "method: `{}`: one of POST, PUT, PATCH (the request has a JSON body)",
                self.method
            ));
        }
        if !self.path.starts_with('/') {
            out.push(format!("path: `{}` must start with `/`", self.path));
        }
        for (k, v) in &self.headers {
            let bad = k.is_empty()
                || !k
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if bad || v.bytes().any(|b| b == b'\r' || b == b'\n') {
                out.push(format!("headers.{k}: not a valid header (name or value)"));
            }
        }
        walk_body(&self.body, "body", &mut out);
        check_pointer("extra_body_at", &self.extra_body_at, &mut out);
        let r = &self.reply;
        for (i, p) in r.text.iter().enumerate() {
            check_pointer(&format!("reply.text[{i}]"), p, &mut out);
        }
        for (i, p) in r.reasoning.iter().enumerate() {
            check_pointer(&format!("reply.reasoning[{i}]"), p, &mut out);
        }
        if r.text.is_empty() && r.reasoning.is_empty() {
            out.push("reply.text: give at least one pointer to the generated text".into());
        }
        let single = [
            ("prompt_tokens", &r.prompt_tokens),
            ("output_tokens", &r.output_tokens),
            ("cached_tokens", &r.cached_tokens),
            ("finish_reason", &r.finish_reason),
            ("prefill_ms", &r.prefill_ms),
            ("decode_ms", &r.decode_ms),
            ("end.pointer", &r.end.pointer),
        ];
        for (k, p) in single {
            if let Some(p) = p {
                check_pointer(&format!("reply.{k}"), p, &mut out);
            }
        }
        for (i, m) in r.skip_text_when.iter().enumerate() {
            check_pointer(&format!("reply.skip_text_when[{i}]"), &m.pointer, &mut out);
        }
        for (i, m) in r.error.iter().enumerate() {
            check_pointer(&format!("reply.error[{i}]"), &m.pointer, &mut out);
        }
        for (i, p) in r.error_message.iter().enumerate() {
            check_pointer(&format!("reply.error_message[{i}]"), p, &mut out);
        }
        if r.end.equals.is_some() && r.end.pointer.is_none() {
            out.push("reply.end.equals: needs reply.end.pointer".into());
        }
        match r.framing {
            Framing::Json if r.end.data.is_some() || r.end.pointer.is_some() => out.push(
                "reply.end: a `json` reply is one body and has no end marker; leave reply.end out"
                    .into(),
            ),
            Framing::JsonLines if r.end.data.is_some() => out.push(
                "reply.end.data: JSON lines have no SSE data marker; use reply.end.pointer".into(),
            ),
            Framing::Sse | Framing::JsonLines if r.end.data.is_none() && r.end.pointer.is_none() => {
                out.push(format!(
                    "reply.end: a streamed ({}) reply needs an end marker (`data: \"[DONE]\"` or a pointer)",
                    r.framing.name()
                ))
            }
            _ => {}
        }
        out
    }

    /// Whether the body uses `{{name}}` anywhere.
    pub fn uses(&self, name: &str) -> bool {
        fn walk(v: &Value, name: &str) -> bool {
            match v {
                Value::String(s) => placeholders(s).iter().any(|(_, _, n)| *n == name),
                Value::Array(a) => a.iter().any(|x| walk(x, name)),
                Value::Object(m) => m.values().any(|x| walk(x, name)),
                _ => false,
            }
        }
        walk(&self.body, name)
    }
}

fn walk_body(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            for (_, _, n) in placeholders(s) {
                if !known_placeholder(n) {
                    let names: Vec<&str> = PLACEHOLDERS.iter().map(|(n, _)| *n).collect();
                    let near = crate::schema::closest(n, names.iter().copied())
                        .map(|x| format!(" (did you mean `{x}`?)"))
                        .unwrap_or_default();
                    out.push(format!(
                        "{at}: unknown placeholder `{{{{{n}}}}}`{near}; known: {}, field.NAME",
                        names.join(", ")
                    ));
                }
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                walk_body(x, &format!("{at}[{i}]"), out);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                walk_body(x, &format!("{at}.{k}"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> Result<TemplateSpec, Vec<String>> {
        TemplateSpec::from_yaml(yaml)
    }

    #[test]
    fn every_problem_names_its_key() {
        let e = spec(
            r#"
method: GET
path: api
body: {a: "{{promt}}", b: ["{{field.}}"]}
extra_body_at: params
reply: {framing: sse, text: [choices/0/text], end: {pointer: /done}, error: [{pointer: err}]}
"#,
        )
        .unwrap_err();
        let want = [
            "method: `GET`",
            "path: `api`",
            "body.a: unknown placeholder `{{promt}}` (did you mean `prompt`?)",
            "body.b[0]: unknown placeholder `{{field.}}`",
            "extra_body_at: `params` is not a JSON pointer",
            "reply.text[0]: `choices/0/text` is not a JSON pointer",
            "reply.error[0]: `err`",
        ];
        for w in want {
            assert!(e.iter().any(|x| x.starts_with(w)), "missing {w} in {e:#?}");
        }
        assert_eq!(e.len(), want.len(), "{e:#?}");
    }

    #[test]
    fn framing_and_end_marker_agree() {
        let e = spec("path: /x\nbody: {}\nreply: {framing: json_lines, text: [/t]}").unwrap_err();
        assert!(
            e[0].starts_with("reply.end: a streamed (json_lines) reply needs"),
            "{e:?}"
        );
        let e = spec("path: /x\nbody: {}\nreply: {framing: json, text: [/t], end: {data: x}}")
            .unwrap_err();
        assert!(e[0].starts_with("reply.end: a `json` reply"), "{e:?}");
        let e = spec("path: /x\nbody: {}\nreply: {framing: xml, text: [/t]}").unwrap_err();
        assert!(e[0].contains("unknown variant `xml`"), "{e:?}");
        let s = spec("path: /x\nbody: {p: 'say {{prompt}}'}\nreply: {framing: json, text: [/t]}")
            .unwrap();
        assert!(s.uses("prompt") && !s.uses("messages"));
    }
}
