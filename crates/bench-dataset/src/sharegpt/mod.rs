//! `dataset.type: sharegpt`: ShareGPT conversations -> sessions (or plain prompts).
//!
//! The file is read one conversation at a time ([`parse`]), each conversation is shaped into
//! (prompt, reply) pairs ([`turns`]), batches of conversations are tokenized in parallel,
//! the length filters run, and sessions are numbered in file order. Lengths are tokens of
//! the text as written (AIBrix counted completion lengths in characters).

mod parse;
mod turns;

use std::path::Path;

use bench_config::dataset::{SharegptDataset, SharegptLayout};
use bench_types::{DatasetRecord, PlainPrompt, SessionRecord};

use crate::output::{DatasetWriter, par_map};
use crate::text::Text;
use crate::{DatasetError, Report};
use turns::{ShapeCounts, ShapeOpts, Shaped};

/// Conversations tokenized together.
const BATCH: usize = 2048;

/// A shaped conversation waiting for tokenization.
struct Pending {
    source_id: Option<String>,
    shaped: Shaped,
}

/// Token lengths of a shaped conversation: per prompt, and per reply when answered.
struct Lengths {
    prompts: Vec<u32>,
    replies: Option<Vec<u32>>,
}

#[derive(Default)]
struct Counts {
    conversations: u64,
    shape: ShapeCounts,
    filtered_turns: u64,
    truncated_turns: u64,
    empty_sessions: u64,
    beyond_max_sessions: u64,
    sessions: u64,
    answered: u64,
}

struct Converter<'a> {
    cfg: &'a SharegptDataset,
    text: &'a Text,
    threads: usize,
    batch: Vec<Pending>,
    counts: Counts,
}

impl Converter<'_> {
    fn full(&self) -> bool {
        self.cfg
            .max_sessions
            .is_some_and(|m| self.counts.sessions >= m)
    }

    fn keep(&self, prompt: u32, reply: Option<u32>) -> bool {
        let c = self.cfg;
        let ok_prompt = c.min_prompt_tokens.is_none_or(|m| prompt >= m)
            && c.max_prompt_tokens.is_none_or(|m| prompt <= m);
        let ok_reply = reply.is_none_or(|r| {
            c.min_completion_tokens.is_none_or(|m| r >= m)
                && c.max_completion_tokens.is_none_or(|m| r <= m)
        });
        ok_prompt && ok_reply
    }

    /// Tokenizes the batch, filters, and writes what is kept.
    fn flush(&mut self, w: &mut DatasetWriter) -> Result<(), DatasetError> {
        let batch = std::mem::take(&mut self.batch);
        let text = self.text;
        let lengths = par_map(&batch, self.threads, |p| Lengths {
            prompts: p.shaped.prompts.iter().map(|s| text.count(s)).collect(),
            replies: p
                .shaped
                .replies
                .as_ref()
                .map(|r| r.iter().map(|s| text.count(s)).collect()),
        });
        for (p, len) in batch.into_iter().zip(lengths) {
            if self.full() {
                self.counts.beyond_max_sessions += 1;
                continue;
            }
            self.write_one(w, p, len)?;
        }
        Ok(())
    }

    fn write_one(
        &mut self,
        w: &mut DatasetWriter,
        p: Pending,
        len: Lengths,
    ) -> Result<(), DatasetError> {
        let Shaped { prompts, replies } = p.shaped;
        let answered = replies.is_some();
        let mut replies = replies.map(Vec::into_iter);
        let mut reply_lens = len.replies.map(Vec::into_iter);
        let max_turns = self.cfg.max_turns.map_or(usize::MAX, |m| m as usize);
        let mut s = SessionRecord {
            session_id: self.counts.sessions,
            prompts: Vec::new(),
            completions: answered.then(Vec::new),
            prompt_lengths: Some(Vec::new()),
            completion_lengths: answered.then(Vec::new),
            source_id: p.source_id,
            dataset: None,
        };
        for (prompt, plen) in prompts.into_iter().zip(len.prompts) {
            let reply = replies.as_mut().and_then(Iterator::next);
            let rlen = reply_lens.as_mut().and_then(Iterator::next);
            if !self.keep(plen, rlen) {
                self.counts.filtered_turns += 1;
                continue;
            }
            if s.prompts.len() == max_turns {
                self.counts.truncated_turns += 1;
                continue;
            }
            s.prompts.push(prompt);
            s.prompt_lengths.as_mut().expect("set above").push(plen);
            if let (Some(c), Some(cl), Some(r), Some(rl)) = (
                s.completions.as_mut(),
                s.completion_lengths.as_mut(),
                reply,
                rlen,
            ) {
                c.push(r);
                cl.push(rl);
            }
        }
        if s.prompts.is_empty() {
            self.counts.empty_sessions += 1;
            return Ok(());
        }
        self.counts.sessions += 1;
        self.counts.answered += u64::from(answered);
        match self.cfg.layout {
            SharegptLayout::Sessions => w.write(&DatasetRecord::Session(s)),
            SharegptLayout::Plain => {
                let lens = s.prompt_lengths.unwrap_or_default();
                let outs = s.completion_lengths.unwrap_or_default();
                for (k, prompt) in s.prompts.into_iter().enumerate() {
                    let rec = PlainPrompt {
                        prompt_length: lens.get(k).copied(),
                        output_length: outs.get(k).copied(),
                        ..PlainPrompt::new(prompt)
                    };
                    w.write(&DatasetRecord::Plain(rec))?;
                }
                Ok(())
            }
        }
    }
}

/// Converts the ShareGPT file at `path`.
pub(crate) fn run(
    cfg: &SharegptDataset,
    path: &Path,
    text: &Text,
    w: &mut DatasetWriter,
    threads: usize,
) -> Result<Report, DatasetError> {
    let opts = ShapeOpts {
        system: cfg.system_prompt,
        unknown: cfg.unknown_roles,
    };
    let mut conv = Converter {
        cfg,
        text,
        threads,
        batch: Vec::with_capacity(BATCH),
        counts: Counts::default(),
    };
    // An error from writing stops the parse; it is kept here and reported as itself.
    let mut write_err: Option<DatasetError> = None;
    parse::read(path, |index, raw| {
        conv.counts.conversations += 1;
        if conv.full() {
            conv.counts.beyond_max_sessions += 1;
            return Ok(());
        }
        let source_id = raw.source_id();
        let what = match &source_id {
            Some(id) => format!("conversation {index} (id {id})"),
            None => format!("conversation {index}"),
        };
        let shaped = turns::shape(raw.conversations, opts, &what, &mut conv.counts.shape)?;
        conv.batch.push(Pending { source_id, shaped });
        if conv.batch.len() >= BATCH
            && let Err(e) = conv.flush(w)
        {
            write_err = Some(e);
            return Err("stopped: writing the dataset failed".into());
        }
        Ok(())
    })
    .map_err(|e| write_err.take().unwrap_or(DatasetError::Format(e)))?;
    conv.flush(w)?;

    let c = &conv.counts;
    tracing::info!(
        "sharegpt: {} conversations -> {} sessions ({} with reference replies); {} turns filtered by length, {} beyond max_turns, {} sessions left empty",
        c.conversations,
        c.sessions,
        c.answered,
        c.filtered_turns,
        c.truncated_turns,
        c.empty_sessions
    );
    let mut rep = Report::default();
    rep.stat("conversations", c.conversations);
    rep.stat("kept_conversations", c.sessions);
    rep.stat("answered_sessions", c.answered);
    for (k, v) in c.shape.stats() {
        rep.stat(k, v);
    }
    rep.stat("filtered_turns", c.filtered_turns);
    rep.stat("truncated_turns", c.truncated_turns);
    rep.stat("empty_sessions_dropped", c.empty_sessions);
    rep.stat("beyond_max_sessions", c.beyond_max_sessions);
    Ok(rep)
}
