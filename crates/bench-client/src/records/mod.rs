//! The record writer: a background thread (lower CPU priority than the dispatcher) that counts
//! tokens, converts outcomes to rows and keeps requests.parquet (and output.jsonl) up to date.
//!
//! Everything that is not needed to time a request happens here, off the runtime thread:
//! tokenizing the received text (`output_tokens`), counting prompt tokens when the workload
//! gives no length, session prompt totals, Arrow/Parquet encoding, the AIBrix lines.

pub mod aibrix;
pub mod parquet_out;

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use bench_text::Tokenizer;
use bench_types::RequestStatus;
use bench_types::record::{Reasoning, RequestRecord, SentBytes, StatusCounts, meta, schema};
use parquet::file::metadata::KeyValue;

use crate::outcome::Outcome;
use crate::plan::Plan;
use parquet_out::ParquetOut;

/// Messages to the writer.
#[derive(Debug)]
pub enum Msg {
    /// The run's anchor: `offset_ns` after the base instant, at `unix_ns` wall-clock time.
    Anchor {
        /// Anchor - base, in ns.
        offset_ns: i64,
        /// Wall-clock time of the anchor.
        unix_ns: i64,
    },
    /// A finished request.
    Row(Box<Outcome>),
}

/// What the writer needs.
#[derive(Debug)]
pub struct WriterConfig {
    /// requests.parquet.
    pub path: PathBuf,
    /// output.jsonl, when asked for.
    pub aibrix_path: Option<PathBuf>,
    /// Static key-value metadata.
    pub kv: Vec<KeyValue>,
    /// Tokenizer for client-side counts.
    pub tokenizer: Tokenizer,
    /// The plan (prompt lengths and texts).
    pub plan: Arc<Plan>,
    /// Session histories go as chat messages (else as text joined by separators, which count
    /// as prompt tokens).
    pub chat_history: bool,
    /// Keep the output text.
    pub record_text: bool,
    /// Minimum time between flushes.
    pub flush_interval: Duration,
}

/// Totals the writer saw.
#[derive(Debug, Clone, Default)]
pub struct WriterStats {
    /// Rows written (warmup included).
    pub rows: u64,
    /// Warmup rows.
    pub warmup: u64,
    /// Non-warmup rows by status.
    pub by_status: StatusCounts,
    /// Dispatch lags (sent - scheduled) of sent, non-warmup requests, sorted.
    pub lags_ns: Vec<i64>,
    /// Client-counted output tokens of ok requests.
    pub output_tokens: u64,
    /// Row groups flushed.
    pub flushes: u64,
    /// Snapshots of requests.parquet that failed during the run (tried again at the next flush).
    pub snapshot_failures: u64,
    /// CPU time of the writer thread (Linux), ns.
    pub cpu_ns: Option<u64>,
}

/// Separator between the parts of a concatenated (completions / TGI) session prompt.
pub const SESSION_SEPARATOR: &str = "\n\n";

struct State {
    cfg: WriterConfig,
    out: ParquetOut,
    aibrix: Option<BufWriter<std::fs::File>>,
    pending: Vec<RequestRecord>,
    shift: Option<i64>,
    anchor_unix_ns: i64,
    /// AIBrix lines waiting for the anchor.
    early: Vec<(Box<Outcome>, RequestRecord)>,
    /// Per session: prompt + reply tokens of its completed turns.
    sessions: HashMap<u64, u64>,
    sep_tokens: u32,
    stats: WriterStats,
}

/// The writer thread's handle: its totals, or why writing failed.
pub type WriterHandle = std::thread::JoinHandle<Result<WriterStats, String>>;

/// Starts the writer thread. The output file is created before this returns.
pub fn spawn(cfg: WriterConfig) -> Result<(Sender<Msg>, WriterHandle), String> {
    let out = ParquetOut::create(&cfg.path, cfg.kv.clone())?;
    let aibrix = match &cfg.aibrix_path {
        Some(p) => Some(BufWriter::new(
            std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?,
        )),
        None => None,
    };
    let sep_tokens = cfg.tokenizer.count(SESSION_SEPARATOR) as u32;
    let (tx, rx) = std::sync::mpsc::channel();
    let state = State {
        cfg,
        out,
        aibrix,
        pending: Vec::new(),
        shift: None,
        anchor_unix_ns: 0,
        early: Vec::new(),
        sessions: HashMap::new(),
        sep_tokens,
        stats: WriterStats::default(),
    };
    let h = std::thread::Builder::new()
        .name("bench-records".into())
        .spawn(move || {
            crate::lower_thread_priority();
            state.run(rx)
        })
        .map_err(|e| format!("starting the record writer: {e}"))?;
    Ok((tx, h))
}

fn clip(n: usize) -> u32 {
    n.min(u32::MAX as usize) as u32
}

impl State {
    fn run(mut self, rx: Receiver<Msg>) -> Result<WriterStats, String> {
        let mut next_flush = Instant::now() + self.cfg.flush_interval;
        loop {
            let wait = next_flush.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(Msg::Row(o)) => self.add(o)?,
                Ok(Msg::Anchor { offset_ns, unix_ns }) => {
                    self.shift = Some(offset_ns);
                    self.anchor_unix_ns = unix_ns;
                    for (o, row) in std::mem::take(&mut self.early) {
                        self.aibrix_line(&o, &row)?;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if Instant::now() >= next_flush {
                if self.shift.is_some() && !self.pending.is_empty() {
                    self.flush(false)?;
                }
                let every = self.cfg.flush_interval.max(self.out.last_snapshot * 20);
                next_flush = Instant::now() + every;
            }
        }
        if self.shift.is_none() {
            self.shift = Some(0);
            for (o, row) in std::mem::take(&mut self.early) {
                self.aibrix_line(&o, &row)?;
            }
        }
        self.write_pending()?;
        if let Some(a) = self.aibrix.as_mut() {
            a.flush().map_err(|e| format!("output.jsonl: {e}"))?;
        }
        let kv = self.dynamic_kv(true);
        self.out.finish(&kv)?;
        self.stats.lags_ns.sort_unstable();
        self.stats.cpu_ns = crate::thread_cpu_times().map(|t| t.0);
        Ok(self.stats)
    }

    fn dynamic_kv(&self, complete: bool) -> Vec<KeyValue> {
        vec![
            KeyValue::new(
                meta::ANCHOR_UNIX_NS.to_string(),
                self.anchor_unix_ns.to_string(),
            ),
            KeyValue::new(meta::COMPLETE.to_string(), complete.to_string()),
        ]
    }

    fn write_pending(&mut self) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = schema::to_batch(&self.pending, self.shift.unwrap_or(0))
            .map_err(|e| format!("building records: {e}"))?;
        self.out.write(&batch)?;
        self.pending.clear();
        self.stats.flushes += 1;
        Ok(())
    }

    fn flush(&mut self, complete: bool) -> Result<(), String> {
        self.write_pending()?;
        if let Some(a) = self.aibrix.as_mut() {
            a.flush().map_err(|e| format!("output.jsonl: {e}"))?;
        }
        let kv = self.dynamic_kv(complete);
        // A failed snapshot (no descriptor for the temporary file, a full disk) loses nothing:
        // the rows are in the live file, which becomes requests.parquet at the end. Say so once,
        // and try again at the next flush.
        if let Err(e) = self.out.snapshot(&kv) {
            if self.stats.snapshot_failures == 0 {
                tracing::warn!(
                    "client: could not update requests.parquet during the run ({e}); the records are kept and written at the end; trying again at each flush"
                );
            }
            self.stats.snapshot_failures += 1;
        }
        Ok(())
    }

    /// Prompt tokens of the item's own text: the workload's length, else counted.
    fn own_prompt_tokens(&self, idx: u32) -> Option<u32> {
        let req = &self.cfg.plan.items.get(idx as usize)?.req;
        req.prompt_length.or_else(|| {
            req.prompt
                .as_deref()
                .map(|p| clip(self.cfg.tokenizer.count(p)))
        })
    }

    /// The request's scalar workload fields (numbers, strings, booleans) as a JSON object; a
    /// workflow and other nested values stay out of the records.
    fn scalar_fields(&self, idx: u32) -> Option<String> {
        let f = self.cfg.plan.items.get(idx as usize)?.req.fields.as_ref()?;
        let m: serde_json::Map<String, serde_json::Value> = f
            .iter()
            .filter(|(_, v)| !(v.is_object() || v.is_array() || v.is_null()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (!m.is_empty()).then(|| serde_json::Value::Object(m).to_string())
    }

    fn add(&mut self, mut o: Box<Outcome>) -> Result<(), String> {
        let tok = &self.cfg.tokenizer;
        let (content, approx_c) = tok.count_bounded(&o.content);
        let (reasoning, approx_r) = tok.count_bounded(&o.reasoning);
        let content_tokens = clip(content);
        let output_tokens = content_tokens + clip(reasoning);
        if approx_c || approx_r {
            o.notes.push(format!(
                "output_tokens approximate: a run of more than {} bytes without whitespace was estimated at 4 bytes per token",
                bench_text::MAX_PIECE
            ));
        }
        let own = self.own_prompt_tokens(o.idx);
        let mut prompt_tokens = own;
        if let (Some(s), false) = (o.session, o.warmup) {
            let before = self.sessions.get(&s).copied().unwrap_or(0);
            let seps = if self.cfg.chat_history {
                0
            } else {
                2 * o.history_turns * self.sep_tokens
            };
            prompt_tokens = own.map(|n| clip(before as usize + n as usize + seps as usize));
            if o.status == RequestStatus::Ok {
                let added = own.unwrap_or(0) as u64 + content_tokens as u64;
                *self.sessions.entry(s).or_insert(0) += added;
            }
        }
        let sent_any = o.sent.is_some();
        let row = RequestRecord {
            request_id: o.id,
            session_id: o.session,
            turn: o.turn,
            warmup: o.warmup,
            status: o.status,
            http_status: o.http_status,
            error: o.error.clone(),
            scheduled_ns: o.scheduled,
            ready_ns: o.ready,
            sent_ns: o.sent,
            connect_ns: o.connected,
            first_byte_ns: o.first_byte,
            first_token_ns: o.first_token,
            end_ns: o.end,
            chunk_ns: o.chunks.clone(),
            prompt_tokens,
            output_tokens: if sent_any { Some(output_tokens) } else { None },
            usage_prompt_tokens: o.usage_prompt,
            usage_output_tokens: o.usage_output,
            max_tokens: o.max_tokens,
            finish_reason: o.finish_reason.clone(),
            stream: o.stream,
            output_text: if self.cfg.record_text && sent_any {
                Some(o.content.clone())
            } else {
                None
            },
            retried: o.retried,
            note: (!o.notes.is_empty()).then(|| o.notes.join("; ")),
            server: o.server,
            reasoning: Reasoning {
                first_reasoning_ns: o.first_reasoning,
                first_answer_ns: o.first_answer,
                reasoning_tokens: sent_any.then_some(clip(reasoning)),
                usage_reasoning_tokens: o.usage_reasoning,
            },
            dataset: self
                .cfg
                .plan
                .items
                .get(o.idx as usize)
                .and_then(|it| it.req.dataset.clone()),
            fields: self.scalar_fields(o.idx),
            bytes: SentBytes {
                request_bytes: o.request_bytes,
                image_bytes: self.cfg.plan.image_bytes(o.idx),
            },
        };
        self.stats.rows += 1;
        if o.warmup {
            self.stats.warmup += 1;
        } else {
            self.stats.by_status.add(o.status);
            if let Some(sent) = o.sent {
                self.stats.lags_ns.push(sent - o.scheduled);
            }
            if o.status == RequestStatus::Ok {
                self.stats.output_tokens += output_tokens as u64;
            }
        }
        if self.aibrix.is_some() && !o.warmup {
            if self.shift.is_some() {
                self.aibrix_line(&o, &row)?;
            } else {
                self.early.push((o, row.clone()));
            }
        }
        self.pending.push(row);
        Ok(())
    }

    fn aibrix_line(&mut self, o: &Outcome, row: &RequestRecord) -> Result<(), String> {
        let shift = self.shift.unwrap_or(0);
        let unix = self.anchor_unix_ns;
        if let Some(a) = self.aibrix.as_mut() {
            let l = aibrix::line(o, row, shift, unix);
            a.write_all(l.as_bytes())
                .and_then(|_| a.write_all(b"\n"))
                .map_err(|e| format!("output.jsonl: {e}"))?;
        }
        Ok(())
    }
}
