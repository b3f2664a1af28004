//! One conversation, turn by turn, for an interactive front end (`bench chat`).
//!
//! Each turn is one request built by the run's [`BodyBuilder`] with the conversation so far
//! (the [`History`] a workload session uses: chat messages for `openai-chat` and templates that
//! use `messages`, else the texts joined by blank lines), sent by the run's [`Transport`] and
//! read by its [`Collector`]. A thin [`Sink`] around the collector hands each new piece of text
//! to the caller as it is parsed, so a reply can be shown while it streams; the turn's figures
//! (TTFT, TPOT, tokens counted with the run's tokenizer, the server's usage) come back at its
//! end. A failed turn is an error naming the endpoint, and is left out of the history.
//!
//! Cancelling is dropping the future of [`Chat::send`]: the connection goes with it, and the
//! history is untouched (it is extended only when a reply completes).

use std::time::{Duration, Instant};

use bench_config::Config;
use bench_text::Tokenizer;
use bench_types::SessionRecord;

use crate::exec::History;
use crate::http::{Fields, Marks, Sink, Transport};
use crate::protocol::request::Extra;
use crate::protocol::{BodyBuilder, Collector};
use crate::{ClientError, run};

/// A piece of a reply, as it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delta<'a> {
    /// Reasoning text (`reasoning_content` / `reasoning` deltas, a template's `reasoning`).
    Reasoning(&'a str),
    /// Answer text.
    Answer(&'a str),
}

/// What one completed turn measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// Send to the first chunk with text (reasoning counts), ms.
    pub ttft_ms: Option<f64>,
    /// Send to the end of the reply, ms.
    pub e2e_ms: f64,
    /// Output tokens: the reply's text (answer and reasoning) counted with the run's tokenizer.
    pub output_tokens: u32,
    /// Of which reasoning.
    pub reasoning_tokens: u32,
    /// The server's `usage.prompt_tokens` (TGI: its `x-prompt-tokens` header).
    pub usage_prompt: Option<u32>,
    /// The server's `usage.completion_tokens` (TGI: `details.generated_tokens`).
    pub usage_completion: Option<u32>,
    /// Why generation stopped, as the server says.
    pub finish_reason: Option<String>,
    /// Bytes of the request body (the conversation so far, images included).
    pub request_bytes: u64,
}

impl Figures {
    /// (e2e - TTFT) / (output tokens - 1), ms, as analysis defines TPOT; None below 2 tokens.
    pub fn tpot_ms(&self) -> Option<f64> {
        let ttft = self.ttft_ms?;
        (self.output_tokens >= 2).then(|| (self.e2e_ms - ttft) / f64::from(self.output_tokens - 1))
    }

    /// Output tokens per second of the whole request (e2e).
    pub fn tokens_per_s(&self) -> Option<f64> {
        (self.e2e_ms > 0.0).then(|| f64::from(self.output_tokens) / (self.e2e_ms / 1e3))
    }
}

/// A completed exchange.
#[derive(Debug, Clone)]
struct Turn {
    prompt: String,
    reply: String,
}

/// A conversation with one endpoint.
#[derive(Debug)]
pub struct Chat {
    transport: Transport,
    builder: BodyBuilder,
    api: bench_config::client::Api,
    stream: bool,
    timeout: Duration,
    max_tokens: Option<u32>,
    tokenizer: Tokenizer,
    /// The request URL, for error messages.
    url: String,
    history: History,
    turns: Vec<Turn>,
    /// The image for the next message (`/image`): its `data:` URL and what it is.
    pending_image: Option<(String, String)>,
    /// Images attached so far (the seed of the next synthetic one).
    images: u64,
    /// Images sent in the conversation since the start or the last reset.
    sent_images: usize,
}

impl Chat {
    /// A conversation with `base_url` as the `client.*` config says (API, model, headers, key,
    /// transport, `max_output_tokens`, timeout), counting tokens with the config's tokenizer.
    /// Resolves the host; connects at the first turn.
    pub async fn new(cfg: &Config, base_url: &str) -> Result<Chat, ClientError> {
        let c = &cfg.client;
        let builder = BodyBuilder::for_config(c).map_err(ClientError::Input)?;
        let spec = run::request_spec(c, base_url, &builder)?;
        let transport = if run::use_native(c, &spec.endpoint)? {
            Transport::native(&spec).await
        } else {
            Transport::reqwest(&spec)
        }
        .map_err(|e| ClientError::Server(format!("client.endpoint {base_url}: {e}")))?;
        let tokenizer = Tokenizer::open(&cfg.tokenizer)
            .map_err(|e| ClientError::Input(format!("tokenizer: {e}")))?;
        Ok(Chat {
            transport,
            api: c.api,
            stream: builder.streams(),
            timeout: Duration::from_secs_f64(c.timeout_s),
            max_tokens: builder.max_tokens(None),
            history: History::new(builder.chat_history()),
            builder,
            tokenizer,
            url: spec.endpoint.url,
            turns: Vec::new(),
            pending_image: None,
            images: 0,
            sent_images: 0,
        })
    }

    /// Attaches an image to the next message: a file (png, jpeg, webp, gif, bmp), or a
    /// synthetic picture of a size (`small` 500x500, `medium`, `large`, `WxH`; `png` after
    /// it for a PNG, else JPEG), made as `dataset.images` makes them. Returns what was
    /// attached. Only a conversation sent as chat messages carries images.
    pub fn attach_image(&mut self, arg: &str) -> Result<String, String> {
        use bench_types::image::{ImageFormat, SyntheticImage, parse_image_size};
        if !self.sends_messages() {
            return Err(
                "images need client.api openai-chat (this conversation is sent as one prompt)"
                    .into(),
            );
        }
        let mut words = arg.split_whitespace();
        let first = words.next().ok_or(
            "/image needs a file or a size: /image FILE, /image medium, /image 640x480 png",
        )?;
        let (url, what) = match parse_image_size(first) {
            Ok((width, height)) => {
                let format = match words.next() {
                    Some("png") => ImageFormat::Png,
                    Some("jpeg" | "jpg") | None => ImageFormat::Jpeg,
                    Some(x) => {
                        return Err(format!("/image {first} {x}: the format is jpeg or png"));
                    }
                };
                let spec = SyntheticImage {
                    width,
                    height,
                    format,
                    seed: bench_text::seed::mix64(self.images + 1),
                };
                let (url, n) = crate::synth_image::data_url(&spec)?;
                let f = if format == ImageFormat::Png {
                    "PNG"
                } else {
                    "JPEG"
                };
                (
                    url,
                    format!(
                        "a synthetic {width}x{height} {f} of {:.1} KB",
                        n as f64 / 1e3
                    ),
                )
            }
            Err(_) => {
                let (url, n) = crate::prepare::file_data_url(std::path::Path::new(arg))?;
                (url, format!("{arg} ({:.1} KB)", n as f64 / 1e3))
            }
        };
        self.images += 1;
        self.pending_image = Some((url, what.clone()));
        Ok(what)
    }

    /// The request URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the conversation is sent as chat messages (else as one text).
    pub fn sends_messages(&self) -> bool {
        self.builder.chat_history()
    }

    /// Completed turns in the conversation.
    pub fn turns(&self) -> usize {
        self.turns.len()
    }

    /// Forgets the conversation.
    pub fn reset(&mut self) {
        self.history = History::new(self.builder.chat_history());
        self.turns.clear();
        self.pending_image = None;
        self.sent_images = 0;
    }

    /// Images sent in the conversation (a saved session keeps its text only).
    pub fn sent_images(&self) -> usize {
        self.sent_images
    }

    /// Sends `text` after the conversation so far; `on` gets the reply's text as it is
    /// parsed. The reply joins the conversation when it completes; an error (naming the
    /// endpoint) leaves the conversation as it was.
    pub async fn send(
        &mut self,
        text: &str,
        on: &mut dyn FnMut(Delta<'_>),
    ) -> Result<Figures, String> {
        // the image stays pending until a reply completes (a cancelled turn keeps it)
        let image = self.pending_image.as_ref().map(|(u, _)| u.as_str());
        let images = image.as_slice();
        let body = self.history.body(
            &self.builder,
            text,
            &Extra {
                turn_text: text,
                images,
                ..Extra::default()
            },
            self.max_tokens,
        );
        let sent = Instant::now();
        let col = Collector::new(self.api, self.stream, sent)
            .with_template(self.builder.template().cloned());
        let mut tee = Tee {
            col,
            on,
            answer: 0,
            reasoning: 0,
        };
        let mut marks = Marks::default();
        let r = tokio::time::timeout(
            self.timeout,
            self.transport.send(&body, &mut tee, &mut marks),
        )
        .await;
        let secrets = self.transport.secrets();
        let fail = |m: String| format!("{}: {}", self.url, secrets.redact(&m));
        let end = match r {
            Err(_) => {
                return Err(fail(format!(
                    "timed out after {} s (client.timeout_s)",
                    self.timeout.as_secs_f64()
                )));
            }
            Ok(Err(f)) if tee.col.status.is_some() && !tee.col.success() => {
                return Err(fail(format!("{} ({f})", tee.col.http_error())));
            }
            Ok(Err(f)) if !tee.col.done => return Err(fail(f.to_string())),
            // failed after the stream's end marker: the reply is complete
            Ok(Err(_)) => sent + Duration::from_nanos(tee.col.done_at.unwrap_or(0) as u64),
            Ok(Ok(end)) => end,
        };
        let end_ns = end.saturating_duration_since(sent).as_nanos() as i64;
        let parsed = tee.col.finish(end_ns);
        tee.emit();
        let mut col = tee.col;
        if !col.success() {
            return Err(fail(col.http_error()));
        }
        if let Err(m) = parsed
            && !col.done
        {
            return Err(fail(m));
        }
        if self.stream && !col.done && col.finish_reason.is_none() {
            return Err(fail(
                "the stream ended before its end marker ([DONE], a finish_reason or TGI's final event): the reply may be cut short".into(),
            ));
        }
        let answer = self.tokenizer.count_bounded(&col.content).0;
        let reasoning = self.tokenizer.count_bounded(&col.reasoning).0;
        let ms = |ns: i64| ns as f64 / 1e6;
        let figures = Figures {
            ttft_ms: col.first_token.map(ms),
            e2e_ms: ms(end_ns),
            output_tokens: clip(answer + reasoning),
            reasoning_tokens: clip(reasoning),
            usage_prompt: col.usage_prompt,
            usage_completion: col.usage_output,
            finish_reason: col.finish_reason.clone(),
            request_bytes: body.len() as u64,
        };
        let image = self.pending_image.take().map(|(u, _)| u);
        self.sent_images += usize::from(image.is_some());
        self.history.push(text, image.as_deref(), &col.content);
        self.turns.push(Turn {
            prompt: text.to_string(),
            reply: std::mem::take(&mut col.content),
        });
        Ok(figures)
    }

    /// The conversation as a dataset session (AIBrix's session layout): the prompts typed,
    /// the replies received, their lengths under the run's tokenizer (a reply counts at least
    /// 1, as the custom dataset measures replies). None before the first completed turn.
    pub fn session(&self, session_id: u64) -> Option<SessionRecord> {
        if self.turns.is_empty() {
            return None;
        }
        let count = |s: &str| clip(self.tokenizer.count_bounded(s).0);
        Some(SessionRecord {
            session_id,
            prompts: self.turns.iter().map(|t| t.prompt.clone()).collect(),
            completions: Some(self.turns.iter().map(|t| t.reply.clone()).collect()),
            prompt_lengths: Some(self.turns.iter().map(|t| count(&t.prompt)).collect()),
            completion_lengths: Some(self.turns.iter().map(|t| count(&t.reply).max(1)).collect()),
            source_id: None,
            dataset: None,
        })
    }
}

fn clip(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The collector, handing each new piece of text to `on` once parsed.
struct Tee<'a> {
    col: Collector,
    on: &'a mut dyn FnMut(Delta<'_>),
    /// Bytes of the answer (and of the reasoning) already handed over.
    answer: usize,
    reasoning: usize,
}

impl Tee<'_> {
    fn emit(&mut self) {
        // reasoning comes before the answer it leads to
        if self.col.reasoning.len() > self.reasoning {
            (self.on)(Delta::Reasoning(&self.col.reasoning[self.reasoning..]));
            self.reasoning = self.col.reasoning.len();
        }
        if self.col.content.len() > self.answer {
            (self.on)(Delta::Answer(&self.col.content[self.answer..]));
            self.answer = self.col.content.len();
        }
    }
}

impl Sink for Tee<'_> {
    fn head(&mut self, status: u16, first_byte: Instant) {
        self.col.head(status, first_byte);
    }

    fn fields(&mut self, fields: &Fields<'_>) {
        self.col.fields(fields);
    }

    fn data(&mut self, bytes: &[u8], at: Instant) -> Result<(), String> {
        let r = self.col.data(bytes, at);
        self.emit();
        r
    }

    fn complete(&self) -> bool {
        self.col.complete()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tpot_and_rate_follow_analysis() {
        let f = Figures {
            ttft_ms: Some(100.0),
            e2e_ms: 1000.0,
            output_tokens: 10,
            reasoning_tokens: 0,
            usage_prompt: None,
            usage_completion: None,
            finish_reason: None,
            request_bytes: 100,
        };
        assert_eq!(f.tpot_ms(), Some(100.0));
        assert_eq!(f.tokens_per_s(), Some(10.0));
        let one = Figures {
            output_tokens: 1,
            ..f
        };
        assert_eq!(one.tpot_ms(), None);
    }

    #[test]
    fn tee_hands_over_each_new_piece_once() {
        let (mut reasoning, mut answer, mut order) = (String::new(), String::new(), String::new());
        let mut on = |d: Delta<'_>| match d {
            Delta::Reasoning(t) => {
                reasoning.push_str(t);
                order.push('r');
            }
            Delta::Answer(t) => {
                answer.push_str(t);
                order.push('a');
            }
        };
        let t0 = Instant::now();
        let mut tee = Tee {
            col: Collector::new(bench_config::client::Api::OpenaiChat, true, t0),
            on: &mut on,
            answer: 0,
            reasoning: 0,
        };
        tee.head(200, t0);
        let ev = |field: &str, t: &str| {
            format!("data: {{\"choices\":[{{\"delta\":{{\"{field}\":\"{t}\"}}}}]}}\n\n")
        };
        let stream = [
            ev("reasoning_content", "hmm"),
            ev("content", "Hel"),
            // an event split across reads
            ev("content", "lo"),
            "data: [DONE]\n\n".to_string(),
        ]
        .concat();
        for part in stream.as_bytes().chunks(7) {
            tee.data(part, t0).unwrap();
        }
        tee.col.finish(1).unwrap();
        tee.emit();
        assert!(tee.complete());
        drop(tee);
        assert_eq!((reasoning.as_str(), answer.as_str()), ("hmm", "Hello"));
        // every piece once, the reasoning first, the answer in two events
        assert_eq!(order, "raa");
    }
}
