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
    /// TGI: tokens sent.
    index: u32,
}

fn tgi_finish(f: Finish) -> &'static str {
    match f {
        Finish::Stop => "eos_token",
        Finish::Length | Finish::Abort => "length",
    }
}

fn usage_json(u: &Usage) -> String {
    format!(
        "{{\"prompt_tokens\":{},\"total_tokens\":{},\"completion_tokens\":{},\"prompt_tokens_details\":{{\"cached_tokens\":{}}}}}",
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
        }
    }

    /// What is sent before the first token: the chat role chunk (vLLM sends it at once).
    pub fn start(&mut self, out: &mut BytesMut) {
        if self.kind == Kind::Chat {
            out.put_slice(b"data: ");
            out.put_slice(self.head.as_bytes());
            out.put_slice(b"\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
        }
    }

    fn openai_token(&self, w: &str, finish: Option<Finish>, out: &mut BytesMut) {
        out.put_slice(b"data: ");
        out.put_slice(self.head.as_bytes());
        if self.kind == Kind::Chat {
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
            self.openai_token(&self.vocab.words[w as usize].text, None, out);
        }
    }

    /// The last token chunk (with the finish reason), then the usage chunk if asked for and
    /// `[DONE]` (OpenAI).
    pub fn last(&mut self, w: u32, u: &Usage, out: &mut BytesMut) {
        if self.kind == Kind::Tgi {
            self.tgi_token(w, Some(u), out);
            return;
        }
        self.openai_token(&self.vocab.words[w as usize].text, Some(u.finish), out);
        if self.include_usage {
            out.put_slice(b"data: ");
            out.put_slice(self.head.as_bytes());
            out.put_slice(b"\"choices\":[],\"usage\":");
            out.put_slice(usage_json(u).as_bytes());
            out.put_slice(b"}\n\n");
        }
        out.put_slice(b"data: [DONE]\n\n");
    }

    /// The whole non-streamed body for the reply `words`.
    pub fn full(&self, words: &[u32], u: &Usage, details: bool) -> String {
        let mut text = String::with_capacity(words.len() * 8);
        for &w in words {
            text.push_str(&self.vocab.words[w as usize].text);
        }
        let text_json = serde_json::Value::from(text).to_string();
        match self.kind {
            Kind::Chat => format!(
                "{}\"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",\"content\":{text_json}}},\"logprobs\":null,\"finish_reason\":\"{}\",\"stop_reason\":null}}],\"usage\":{}}}",
                self.head,
                u.finish.as_str(),
                usage_json(u)
            ),
            Kind::Completion => format!(
                "{}\"choices\":[{{\"index\":0,\"text\":{text_json},\"logprobs\":null,\"finish_reason\":\"{}\",\"stop_reason\":null}}],\"usage\":{}}}",
                self.head,
                u.finish.as_str(),
                usage_json(u)
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
