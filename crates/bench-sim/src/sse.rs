//! Response encoding: SSE chunks (one per generated token) and whole JSON bodies, for the
//! OpenAI chat and completions APIs and TGI. Per-request constant JSON is formatted once; a
//! token chunk is that prefix, the word and a fixed suffix.

use std::fmt::Write;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};

use crate::api::Kind;
use crate::engine::Usage;
use crate::metrics::Finish;
use crate::tokens::mix64;
use crate::words::Vocab;

/// Encodes one request's response.
#[derive(Debug)]
pub(crate) struct Encoder {
    kind: Kind,
    include_usage: bool,
    /// `{"id":"..","object":"..","created":..,"model":"..",` (OpenAI).
    head: String,
    vocab: Arc<Vocab>,
    /// TGI: the reply so far (the last event carries all of it); also used for non-streamed.
    text: String,
    /// Tokens sent.
    index: u32,
    /// Chat: the first `reasoning` tokens of the reply are reasoning (see [`reasoning_tokens`]).
    reasoning: u32,
    /// The delta / message key of reasoning text.
    reasoning_key: &'static str,
}

/// Reasoning tokens of a reply of `output_len` tokens: `floor(share x output_len)`, so a share
/// of 0.25 on 8 tokens gives exactly 2, and a share of 1 makes the whole reply reasoning.
pub(crate) fn reasoning_tokens(share: f64, output_len: u32) -> u32 {
    ((share * output_len as f64).floor() as u32).min(output_len)
}

fn tgi_finish(f: Finish) -> &'static str {
    match f {
        Finish::Stop => "eos_token",
        Finish::Length | Finish::Abort => "length",
    }
}

/// The usage object; with `reasoning`, OpenAI's `completion_tokens_details.reasoning_tokens`.
fn usage_json(u: &Usage, reasoning: Option<u32>) -> String {
    let details = reasoning
        .map(|r| format!(",\"completion_tokens_details\":{{\"reasoning_tokens\":{r}}}"))
        .unwrap_or_default();
    format!(
        "{{\"prompt_tokens\":{},\"total_tokens\":{},\"completion_tokens\":{},\"prompt_tokens_details\":{{\"cached_tokens\":{}}}{details}}}",
        u.prompt_tokens,
        u.prompt_tokens + u.completion_tokens,
        u.completion_tokens,
        u.cached_tokens
    )
}

/// A plausible log-probability for token `index` of id `id` (deterministic).
fn logprob(id: u32, index: u32) -> f64 {
    -((mix64(((id as u64) << 32) | index as u64) % 3000) as f64) / 1000.0
}

impl Encoder {
    /// An encoder for request `id` (a number; the API's prefix is added), created at unix
    /// time `created`, serving `model_json` (the model name as a JSON string).
    pub fn new(
        kind: Kind,
        stream: bool,
        include_usage: bool,
        id: u64,
        created: u64,
        model_json: &str,
        vocab: Arc<Vocab>,
    ) -> Self {
        let (prefix, object) = match (kind, stream) {
            (Kind::Chat, true) => ("chatcmpl", "chat.completion.chunk"),
            (Kind::Chat, false) => ("chatcmpl", "chat.completion"),
            _ => ("cmpl", "text_completion"),
        };
        let head = format!(
            "{{\"id\":\"{prefix}-{id:016x}\",\"object\":\"{object}\",\"created\":{created},\"model\":{model_json},"
        );
        Encoder {
            kind,
            include_usage,
            head,
            vocab,
            text: String::new(),
            index: 0,
            reasoning: 0,
            reasoning_key: "reasoning_content",
        }
    }

    /// Streams the first `tokens` tokens of a chat reply as reasoning under `key` (other APIs
    /// have no reasoning field: ignored there).
    pub fn with_reasoning(mut self, tokens: u32, key: &'static str) -> Self {
        if self.kind == Kind::Chat {
            self.reasoning = tokens;
            self.reasoning_key = key;
        }
        self
    }

    /// The usage's reasoning count: in reasoning mode only.
    fn reasoning_usage(&self, u: &Usage) -> Option<u32> {
        (self.reasoning > 0).then(|| self.reasoning.min(u.completion_tokens))
    }

    /// What is sent before the first token: the chat role chunk (vLLM sends it at once).
    pub fn start(&mut self, out: &mut BytesMut) {
        if self.kind == Kind::Chat {
            out.put_slice(b"data: ");
            out.put_slice(self.head.as_bytes());
            out.put_slice(b"\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
        }
    }

    fn openai_token(&mut self, w: u32, finish: Option<Finish>, out: &mut BytesMut) {
        let w = &self.vocab.words[w as usize].text;
        self.index += 1;
        out.put_slice(b"data: ");
        out.put_slice(self.head.as_bytes());
        if self.kind == Kind::Chat && self.index <= self.reasoning {
            out.put_slice(b"\"choices\":[{\"index\":0,\"delta\":{\"");
            out.put_slice(self.reasoning_key.as_bytes());
            out.put_slice(b"\":\"");
            out.put_slice(w.as_bytes());
            out.put_slice(b"\"},\"logprobs\":null,");
        } else if self.kind == Kind::Chat {
            out.put_slice(b"\"choices\":[{\"index\":0,\"delta\":{\"content\":\"");
            out.put_slice(w.as_bytes());
            out.put_slice(b"\"},\"logprobs\":null,");
        } else {
            out.put_slice(b"\"choices\":[{\"index\":0,\"text\":\"");
            out.put_slice(w.as_bytes());
            out.put_slice(b"\",\"logprobs\":null,");
        }
        match finish {
            None => out.put_slice(b"\"finish_reason\":null}]}\n\n"),
            Some(f) => {
                out.put_slice(b"\"finish_reason\":\"");
                out.put_slice(f.as_str().as_bytes());
                out.put_slice(b"\",\"stop_reason\":null}]}\n\n");
            }
        }
    }

    fn tgi_token(&mut self, w: u32, last: Option<&Usage>, out: &mut BytesMut) {
        let word = &self.vocab.words[w as usize];
        self.index += 1;
        self.text.push_str(&word.text);
        let mut s = String::with_capacity(160);
        let _ = write!(
            s,
            "data:{{\"index\":{},\"token\":{{\"id\":{},\"text\":\"{}\",\"logprob\":{:.3},\"special\":false}},",
            self.index,
            word.id,
            word.text,
            logprob(word.id, self.index)
        );
        match last {
            None => s.push_str("\"generated_text\":null,\"details\":null,\"top_tokens\":null}\n\n"),
            Some(u) => {
                let _ = write!(
                    s,
                    "\"generated_text\":{},\"details\":{{\"finish_reason\":\"{}\",\"generated_tokens\":{},\"seed\":null,\"input_length\":{}}},\"top_tokens\":null}}\n\n",
                    serde_json::Value::from(self.text.as_str()),
                    tgi_finish(u.finish),
                    u.completion_tokens,
                    u.prompt_tokens
                );
            }
        }
        out.put_slice(s.as_bytes());
    }

    /// One token chunk.
    pub fn token(&mut self, w: u32, out: &mut BytesMut) {
        if self.kind == Kind::Tgi {
            self.tgi_token(w, None, out);
        } else {
            self.openai_token(w, None, out);
        }
    }

    /// The last token chunk (with the finish reason), then the usage chunk if asked for and
    /// `[DONE]` (OpenAI).
    pub fn last(&mut self, w: u32, u: &Usage, out: &mut BytesMut) {
        if self.kind == Kind::Tgi {
            self.tgi_token(w, Some(u), out);
            return;
        }
        self.openai_token(w, Some(u.finish), out);
        if self.include_usage {
            out.put_slice(b"data: ");
            out.put_slice(self.head.as_bytes());
            out.put_slice(b"\"choices\":[],\"usage\":");
            out.put_slice(usage_json(u, self.reasoning_usage(u)).as_bytes());
            out.put_slice(b"}\n\n");
        }
        out.put_slice(b"data: [DONE]\n\n");
    }

    /// The whole non-streamed body for the reply `words`.
    pub fn full(&self, words: &[u32], u: &Usage, details: bool) -> String {
        let join = |ws: &[u32]| {
            let mut text = String::with_capacity(ws.len() * 8);
            for &w in ws {
                text.push_str(&self.vocab.words[w as usize].text);
            }
            serde_json::Value::from(text).to_string()
        };
        let r = (self.reasoning as usize).min(words.len());
        let text_json = join(&words[r..]);
        match self.kind {
            Kind::Chat => {
                let reasoning = if r > 0 {
                    format!(",\"{}\":{}", self.reasoning_key, join(&words[..r]))
                } else {
                    String::new()
                };
                format!(
                    "{}\"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",\"content\":{text_json}{reasoning}}},\"logprobs\":null,\"finish_reason\":\"{}\",\"stop_reason\":null}}],\"usage\":{}}}",
                    self.head,
                    u.finish.as_str(),
                    usage_json(u, self.reasoning_usage(u))
                )
            }
            Kind::Completion => format!(
                "{}\"choices\":[{{\"index\":0,\"text\":{text_json},\"logprobs\":null,\"finish_reason\":\"{}\",\"stop_reason\":null}}],\"usage\":{}}}",
                self.head,
                u.finish.as_str(),
                usage_json(u, None)
            ),
            Kind::Tgi => {
                let mut tokens = String::new();
                if details {
                    for (i, &w) in words.iter().enumerate() {
                        let word = &self.vocab.words[w as usize];
                        if i > 0 {
                            tokens.push(',');
                        }
                        let _ = write!(
                            tokens,
                            "{{\"id\":{},\"text\":\"{}\",\"logprob\":{:.3},\"special\":false}}",
                            word.id,
                            word.text,
                            logprob(word.id, i as u32 + 1)
                        );
                    }
                }
                format!(
                    "{{\"generated_text\":{text_json},\"details\":{{\"finish_reason\":\"{}\",\"generated_tokens\":{},\"seed\":null,\"prefill\":[],\"tokens\":[{tokens}]}}}}",
                    tgi_finish(u.finish),
                    u.completion_tokens
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench_text::Tokenizer;

    fn encoder(kind: Kind, stream: bool, reasoning: u32) -> Encoder {
        let vocab =
            Arc::new(Vocab::build(&Tokenizer::load("builtin:cl100k_base").unwrap()).unwrap());
        Encoder::new(kind, stream, true, 1, 0, "\"m\"", vocab)
            .with_reasoning(reasoning, "reasoning")
    }

    fn usage(n: u32) -> Usage {
        Usage {
            prompt_tokens: 3,
            completion_tokens: n,
            cached_tokens: 0,
            finish: Finish::Length,
        }
    }

    #[test]
    fn reasoning_share_rounds_down_and_splits_the_reply() {
        assert_eq!(reasoning_tokens(0.3, 40), 12);
        assert_eq!(reasoning_tokens(0.25, 7), 1);
        assert_eq!(reasoning_tokens(1.0, 5), 5);
        assert_eq!(reasoning_tokens(0.0, 5), 0);
        // streamed: 2 reasoning deltas, then 2 content deltas, then the usage with the details
        let mut e = encoder(Kind::Chat, true, 2);
        let mut out = BytesMut::new();
        for w in 0..3 {
            e.token(w, &mut out);
        }
        e.last(3, &usage(4), &mut out);
        let s = String::from_utf8(out.to_vec()).unwrap();
        assert_eq!(s.matches("\"delta\":{\"reasoning\":").count(), 2, "{s}");
        assert_eq!(s.matches("\"delta\":{\"content\":").count(), 2, "{s}");
        assert!(s.find("\"reasoning\":").unwrap() < s.find("\"content\":").unwrap());
        assert!(
            s.contains("\"completion_tokens_details\":{\"reasoning_tokens\":2}"),
            "{s}"
        );
        // not streamed: both fields in the message
        let body = encoder(Kind::Chat, false, 1).full(&[0, 1, 2], &usage(3), false);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let m = &v["choices"][0]["message"];
        assert!(
            m["reasoning"].as_str().is_some_and(|r| !r.is_empty()),
            "{body}"
        );
        assert!(
            m["content"].as_str().is_some_and(|r| !r.is_empty()),
            "{body}"
        );
        assert_eq!(
            v["usage"]["completion_tokens_details"]["reasoning_tokens"],
            1
        );
        // completions have no reasoning field: the share is ignored, and so are the details
        let body = encoder(Kind::Completion, false, 2).full(&[0, 1], &usage(2), false);
        assert!(!body.contains("reasoning"), "{body}");
    }
}
