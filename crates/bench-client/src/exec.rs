//! Sending one request and turning whatever happens into its [`Outcome`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bench_config::client::Api;
use bench_types::RequestStatus;
use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::http::{Failure, Marks, Transport};
use crate::outcome::Outcome;
use crate::plan::Plan;
use crate::progress::Counters;
pub use crate::protocol::BufferBudget;
use crate::protocol::request::Extra;
use crate::protocol::{
    BodyBuilder, Collector, Prompt, assistant_message, user_message, user_message_with,
};
use crate::records::{Msg, SESSION_SEPARATOR};
use crate::stop::Phase;

/// Everything a request task needs, shared by all of them.
pub struct Ctx {
    /// The HTTP transport.
    pub transport: Transport,
    /// Body builder (session turns are built at send time).
    pub builder: BodyBuilder,
    /// API.
    pub api: Api,
    /// Streaming.
    pub stream: bool,
    /// Instant all recorded times are measured from (before the warmup).
    pub base: Instant,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Run phase (drain / abort).
    pub phase: watch::Receiver<Phase>,
    /// To the record writer.
    pub writer: std::sync::mpsc::Sender<Msg>,
    /// Progress counters.
    pub counters: Counters,
    /// `client.max_concurrency` (open loop).
    pub cap: Option<Arc<Semaphore>>,
    /// Keep the sent body in the outcome (for output.jsonl).
    pub keep_body: bool,
    /// The plan.
    pub plan: Arc<Plan>,
    /// Which workload requests already have their row.
    pub accounted: Vec<AtomicBool>,
    /// The writer went away (an output error): stop.
    pub writer_gone: AtomicBool,
    /// `client.max_buffer_mib`: what the responses in flight may buffer together.
    pub buffers: Arc<BufferBudget>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("api", &self.api)
            .field("stream", &self.stream)
            .finish()
    }
}

impl Ctx {
    /// ns from the base instant.
    pub fn ns(&self, at: Instant) -> i64 {
        // signed: a late shard's anchor (the shared start) may precede the base
        match at.checked_duration_since(self.base) {
            Some(d) => d.as_nanos() as i64,
            None => -(self.base.duration_since(at).as_nanos() as i64),
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    /// Resolves once the phase reaches `at_least` (never, if the controller is gone).
    pub async fn reached(&self, at_least: Phase) {
        let mut rx = self.phase.clone();
        if rx.wait_for(|p| *p >= at_least).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// A blank outcome for plan item `idx`.
    pub fn outcome(&self, idx: u32, scheduled: i64) -> Outcome {
        let item = &self.plan.items[idx as usize];
        let mut o = Outcome::new(idx, item.id, scheduled, RequestStatus::NotSent, self.stream);
        o.session = item.session;
        o.turn = item.turn;
        o.max_tokens = self.builder.max_tokens(item.req.output_length);
        o
    }

    /// Hands a finished outcome to the writer (exactly once per workload request).
    pub fn record(&self, o: Outcome) {
        if !o.warmup {
            let first = !self.accounted[o.idx as usize].swap(true, Relaxed);
            debug_assert!(first, "request {} recorded twice", o.id);
            if !first {
                return;
            }
        }
        if o.sent.is_some() && !o.warmup {
            self.counters.done.fetch_add(1, Relaxed);
            if o.status != RequestStatus::Ok {
                self.counters.errors.fetch_add(1, Relaxed);
            }
        }
        if self.writer.send(Msg::Row(Box::new(o))).is_err() {
            self.writer_gone.store(true, Relaxed);
        }
    }

    /// Records `o` as not sent, with `why`.
    pub fn not_sent(&self, mut o: Outcome, why: &str) {
        o.status = RequestStatus::NotSent;
        o.error = Some(why.to_string());
        self.record(o);
    }

    /// A concurrency slot (None without a cap), or Err when the run stops first.
    pub async fn slot(&self) -> Result<Option<OwnedSemaphorePermit>, ()> {
        let Some(sem) = &self.cap else {
            return Ok(None);
        };
        if let Ok(p) = sem.clone().try_acquire_owned() {
            return Ok(Some(p));
        }
        tokio::select! {
            biased;
            _ = self.reached(Phase::Draining) => Err(()),
            p = sem.clone().acquire_owned() => p.map(Some).map_err(|_| ()),
        }
    }
}

/// What sending returned: `None` when the run aborted it, `Err` at the timeout, else the
/// transport's result.
type Sent = Option<Result<Result<Instant, Failure>, tokio::time::error::Elapsed>>;

/// Sends `body` and fills in `o`: sent, response instants, text, usage, status.
pub async fn execute(ctx: &Ctx, body: &Bytes, o: &mut Outcome) {
    let mut col = Collector::new(ctx.api, ctx.stream, ctx.base)
        .with_template(ctx.builder.template().cloned())
        .with_budget(ctx.buffers.clone());
    let mut marks = Marks::default();
    let sent = Instant::now();
    o.sent = Some(ctx.ns(sent));
    o.request_bytes = Some(body.len() as u64);
    if !o.warmup {
        ctx.counters.sent.fetch_add(1, Relaxed);
    }
    if ctx.keep_body {
        o.body = Some(body.clone());
    }
    let result = {
        let send = ctx.transport.send(body, &mut col, &mut marks);
        tokio::select! {
            biased;
            r = tokio::time::timeout(ctx.timeout, send) => Some(r),
            _ = ctx.reached(Phase::Aborted) => None,
        }
    };
    let now = Instant::now();
    o.connected = marks.connected.map(|t| ctx.ns(t));
    if let Some(why) = marks.retried.take() {
        o.retried = true;
        o.notes.push(format!(
            "retried once on a new connection: {why} on the first attempt"
        ));
    }
    if let Some(note) = marks.unterminated.take() {
        o.notes.push(note);
    }
    let (status, error, end) = classify(ctx, &mut col, &marks, result, now, &mut o.notes);
    // A server may echo the request head (the API key) in what it answers.
    let secrets = ctx.transport.secrets();
    o.status = status;
    o.error = error.map(|e| secrets.redact(&e));
    for n in &mut o.notes {
        *n = secrets.redact(n);
    }
    o.end = Some(end);
    o.http_status = col.status;
    o.first_byte = col.first_byte;
    o.first_token = col.first_token;
    o.first_reasoning = col.first_reasoning;
    o.first_answer = col.first_answer;
    o.usage_reasoning = col.usage_reasoning;
    o.chunks = std::mem::take(&mut col.chunks);
    o.content = std::mem::take(&mut col.content);
    o.reasoning = std::mem::take(&mut col.reasoning);
    o.usage_prompt = col.usage_prompt;
    o.usage_output = col.usage_output;
    o.server = col.server;
    o.finish_reason = col.finish_reason.take();
}

/// How a request ended, from what the transport returned (`None`: the run aborted it, `Err`:
/// the timeout) and what the collector saw: (status, error, end ns). Remarks for the `note`
/// column go to `notes`.
fn classify(
    ctx: &Ctx,
    col: &mut Collector,
    marks: &Marks,
    result: Sent,
    now: Instant,
    notes: &mut Vec<String>,
) -> (RequestStatus, Option<String>, i64) {
    let timeout_s = ctx.timeout.as_secs_f64();
    match result {
        None => (
            RequestStatus::Cancelled,
            Some("cancelled: the run was stopped while the request was in flight".to_string()),
            ctx.ns(now),
        ),
        // The stream had ended ([DONE], TGI's final event) and only the end of the body or the
        // close was missing: it finished, at its marker.
        Some(Err(_)) if col.success() && col.done => {
            notes.push(format!(
                "the server did not close the stream after its end marker (timed out after {timeout_s} s waiting for it): the request ends at the marker"
            ));
            (RequestStatus::Ok, None, col.done_at.unwrap_or(ctx.ns(now)))
        }
        // A finish_reason (and maybe the usage event after it) came, only [DONE] or the end of
        // the body did not: the reply is complete.
        Some(Err(_)) if col.success() && ctx.stream && col.finish_reason.is_some() => {
            notes.push(format!(
                "the stream sent its finish_reason but not its end ([DONE] or the end of the body) within {timeout_s} s: the request ends at its last event"
            ));
            (
                RequestStatus::Ok,
                None,
                col.last_event_at.unwrap_or(ctx.ns(now)),
            )
        }
        Some(Err(_)) => {
            let msg = if marks.connecting {
                format!("connect timed out after {timeout_s} s")
            } else {
                let what = match (col.status, col.first_token) {
                    (None, _) => "no response head",
                    (Some(_), None) if ctx.stream => "no token",
                    _ => "response incomplete",
                };
                format!("timed out after {timeout_s} s ({what})")
            };
            (RequestStatus::Timeout, Some(msg), ctx.ns(now))
        }
        // Failed in the read that brought the end marker (say, garbage after `[DONE]`).
        Some(Ok(Err(f))) if col.success() && col.done => {
            notes.push(crate::http::after_marker_note(&f.to_string()));
            (RequestStatus::Ok, None, col.done_at.unwrap_or(ctx.ns(now)))
        }
        Some(Ok(Err(f))) => {
            let msg = f.to_string();
            match col.status {
                Some(_) if !col.success() => (
                    RequestStatus::HttpError,
                    Some(format!("{} ({msg})", col.http_error())),
                    ctx.ns(now),
                ),
                _ => {
                    let msg = if matches!(f, Failure::Io(_)) && !col.chunks.is_empty() {
                        format!("{msg} ({} chunks received)", col.chunks.len())
                    } else {
                        msg
                    };
                    (RequestStatus::TransportError, Some(msg), ctx.ns(now))
                }
            }
        }
        Some(Ok(Ok(end))) => {
            let end = ctx.ns(end);
            match col.finish(end) {
                _ if !col.success() => (RequestStatus::HttpError, Some(col.http_error()), end),
                // Whatever follows the end marker does not undo the reply.
                Err(m) if col.done => {
                    notes.push(format!("after the stream's end marker: {m}"));
                    (RequestStatus::Ok, None, col.done_at.unwrap_or(end))
                }
                Err(m) => (RequestStatus::TransportError, Some(m), end),
                Ok(())
                    if ctx.stream
                        && col.chunks.is_empty()
                        && col.content.is_empty()
                        && !col.done =>
                {
                    (
                        RequestStatus::TransportError,
                        Some("stream ended without any event".into()),
                        end,
                    )
                }
                // A stream closed cleanly before its end marker ([DONE], a finish_reason, TGI's
                // final event) may be a reply cut short by a proxy or a crash: not `ok`.
                Ok(()) if ctx.stream && !col.done && col.finish_reason.is_none() => (
                    RequestStatus::TransportError,
                    Some(
                        "stream ended before its end marker ([DONE], a finish_reason or TGI's final event): \
                         the reply may be cut short"
                            .into(),
                    ),
                    end,
                ),
                Ok(()) => (RequestStatus::Ok, None, end),
            }
        }
    }
}

/// The conversation of one session so far.
#[derive(Debug)]
pub struct History {
    /// Sent as chat messages (else as text joined by blank lines).
    chat: bool,
    /// Chat: the JSON messages so far, comma-separated. Others: the concatenated text.
    acc: String,
    /// Completed turns in `acc`.
    pub turns: u32,
}

impl History {
    /// An empty conversation, sent as chat messages when `chat` (see
    /// [`BodyBuilder::chat_history`]).
    pub fn new(chat: bool) -> Self {
        History {
            chat,
            acc: String::new(),
            turns: 0,
        }
    }

    /// The body of the next turn: the history, then `text` (and its image).
    pub fn body(
        &self,
        b: &BodyBuilder,
        text: &str,
        x: &Extra<'_>,
        max_tokens: Option<u32>,
    ) -> Bytes {
        let x = Extra {
            turn_text: text,
            ..*x
        };
        let body = if self.chat {
            let user = user_message_with(text, x.images);
            if self.acc.is_empty() {
                b.build_ext(Prompt::Messages(&user), max_tokens, &x)
            } else {
                let mut m = String::with_capacity(self.acc.len() + user.len() + 1);
                m.push_str(&self.acc);
                m.push(',');
                m.push_str(&user);
                b.build_ext(Prompt::Messages(&m), max_tokens, &x)
            }
        } else if self.acc.is_empty() {
            b.build_ext(Prompt::Text(text), max_tokens, &x)
        } else {
            let mut t = String::with_capacity(self.acc.len() + text.len() + 2);
            t.push_str(&self.acc);
            t.push_str(SESSION_SEPARATOR);
            t.push_str(text);
            b.build_ext(Prompt::Text(&t), max_tokens, &x)
        };
        Bytes::from(body)
    }

    /// Appends a completed exchange.
    pub fn push(&mut self, text: &str, image: Option<&str>, reply: &str) {
        if self.chat {
            if !self.acc.is_empty() {
                self.acc.push(',');
            }
            self.acc.push_str(&user_message(text, image));
            self.acc.push(',');
            self.acc.push_str(&assistant_message(reply));
        } else {
            if !self.acc.is_empty() {
                self.acc.push_str(SESSION_SEPARATOR);
            }
            self.acc.push_str(text);
            self.acc.push_str(SESSION_SEPARATOR);
            self.acc.push_str(reply);
        }
        self.turns += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench_config::ClientConfig;

    #[test]
    fn history_for_chat_and_text() {
        let b = BodyBuilder::new(&ClientConfig {
            api: Api::OpenaiChat,
            ..ClientConfig::default()
        });
        let mut h = History::new(true);
        h.push("q1", None, "a1");
        let v: serde_json::Value =
            serde_json::from_slice(&h.body(&b, "q2", &Extra::default(), Some(3))).unwrap();
        assert_eq!(
            v["messages"],
            serde_json::json!([{"role":"user","content":"q1"},{"role":"assistant","content":"a1"},{"role":"user","content":"q2"}])
        );
        let b = BodyBuilder::new(&ClientConfig {
            api: Api::OpenaiCompletions,
            ..ClientConfig::default()
        });
        let mut h = History::new(false);
        h.push("q1", None, "a1");
        h.push("q2", None, "a2");
        let v: serde_json::Value =
            serde_json::from_slice(&h.body(&b, "q3", &Extra::default(), None)).unwrap();
        assert_eq!(v["prompt"], "q1\n\na1\n\nq2\n\na2\n\nq3");
        assert_eq!(h.turns, 2);
    }
}
