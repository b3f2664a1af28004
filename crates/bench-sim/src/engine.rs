//! The continuous-batching scheduler: a pure state machine, stepped by the engine loop
//! (runner.rs) and by unit tests with a virtual clock.
//!
//! One step, after vLLM v1's scheduler:
//! 1. Running sequences in admission order each ask for their next tokens: 1 when decoding, the
//!    rest of the prompt (a chunk of it) when prefilling, all out of one token budget
//!    (`max_num_batched_tokens`). A sequence that cannot get the KV blocks for its tokens
//!    preempts the most recently admitted running sequence (recompute: its blocks are freed,
//!    it goes back to the front of the queue keeping the tokens it generated).
//! 2. If nobody was preempted, waiting requests are admitted first come first served while
//!    there are batch slots, budget and blocks (keeping 1% of blocks free as a watermark).
//!    Blocks of the longest cached prefix are reused and skip prefill.
//! 3. The step lasts `step_base + decode_us_per_seq * decodes + decode_us_per_kv_ktoken *
//!    kv_tokens_read / 1000 + prefill_us_per_token * prefill_tokens`.
//! 4. At its end every sequence whose tokens are now all computed emits one token.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use bench_config::sim::SimParams;
use tokio::sync::mpsc::UnboundedSender;

use crate::cache::BlockPool;
use crate::metrics::{Finish, Metrics};
use crate::tokens::TokenBlocks;
use crate::words::Vocab;

/// What a request's response stream receives.
#[derive(Debug)]
pub(crate) enum Event {
    /// One generated token (an index into the output vocabulary).
    Token(u32),
    /// The last generated token, and the request's totals.
    Last(u32, Usage),
}

/// A finished request's totals.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// Prompt tokens served from the prefix cache at first admission.
    pub cached_tokens: u32,
    pub finish: Finish,
}

/// A request handed to the engine.
#[derive(Debug)]
pub(crate) struct Arrival {
    pub arrived: Instant,
    pub prompt: TokenBlocks,
    /// Tokens to generate (>= 1).
    pub output_len: u32,
    /// Finish reason once `output_len` tokens are out.
    pub finish: Finish,
    /// Seed of the reply's words.
    pub seed: u64,
    pub tx: UnboundedSender<Event>,
}

#[derive(Debug)]
struct Seq {
    arrived: Instant,
    /// Prompt and generated tokens so far.
    toks: TokenBlocks,
    prompt_len: u32,
    output_len: u32,
    generated: u32,
    finish: Finish,
    seed: u64,
    prev: Option<u32>,
    /// Tokens whose KV is computed.
    computed: u32,
    /// Blocks held.
    held: u64,
    /// Leading blocks of `toks.hashes` held as cached blocks.
    registered: usize,
    cached_tokens: Option<u32>,
    last_token_at: Instant,
    done: bool,
    tx: UnboundedSender<Event>,
}

/// Cost summary of one step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Step {
    /// Model time of the step, microseconds.
    pub duration_us: f64,
    /// Sequences scheduled.
    pub scheduled: usize,
    /// Decoding sequences among them.
    pub decodes: u32,
    /// Prefill tokens computed.
    pub prefill_tokens: u64,
    /// KV tokens read by the decodes.
    pub kv_read: u64,
}

/// The scheduler state.
pub(crate) struct Scheduler {
    p: SimParams,
    bs: u32,
    prefix_caching: bool,
    watermark: u64,
    pool: BlockPool,
    waiting: VecDeque<Seq>,
    running: Vec<Seq>,
    plan: Vec<(usize, u32)>,
    vocab: Arc<Vocab>,
    metrics: Arc<Metrics>,
}

fn blocks_for(tokens: u32, bs: u32) -> u64 {
    tokens.div_ceil(bs) as u64
}

impl Scheduler {
    pub fn new(
        p: SimParams,
        prefix_caching: bool,
        vocab: Arc<Vocab>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let total = p.kv_cache_tokens / p.block_size as u64;
        Scheduler {
            p,
            bs: p.block_size,
            prefix_caching,
            watermark: total / 100,
            pool: BlockPool::new(total),
            waiting: VecDeque::new(),
            running: Vec::new(),
            plan: Vec::new(),
            vocab,
            metrics,
        }
    }

    /// Queues a request.
    pub fn add(&mut self, a: Arrival) {
        let prompt_len = a.prompt.len;
        self.waiting.push_back(Seq {
            arrived: a.arrived,
            toks: a.prompt,
            prompt_len,
            output_len: a.output_len,
            generated: 0,
            finish: a.finish,
            seed: a.seed,
            prev: None,
            computed: 0,
            held: 0,
            registered: 0,
            cached_tokens: None,
            last_token_at: a.arrived,
            done: false,
            tx: a.tx,
        });
        self.metrics
            .waiting
            .store(self.waiting.len() as u64, Relaxed);
    }

    /// No request waiting or running.
    pub fn is_idle(&self) -> bool {
        self.running.is_empty() && self.waiting.is_empty()
    }

    /// Requests running / waiting.
    #[cfg(test)]
    pub fn counts(&self) -> (usize, usize) {
        (self.running.len(), self.waiting.len())
    }

    /// KV blocks in use / in the pool.
    #[cfg(test)]
    pub fn blocks(&self) -> (u64, u64) {
        (self.pool.used(), self.pool.total())
    }

    fn free_blocks(pool: &mut BlockPool, s: &mut Seq) {
        for &h in s.toks.hashes[..s.registered].iter().rev() {
            pool.release(h);
        }
        pool.free(s.held - s.registered as u64);
        s.held = 0;
        s.registered = 0;
        s.computed = 0;
    }

    /// Picks the next step's batch (at model time `now`) and returns its cost.
    pub fn schedule(&mut self, now: Instant) -> Step {
        let bs = self.bs;
        let mut budget = self.p.max_num_batched_tokens;
        let mut preempted = false;
        self.plan.clear();
        let mut i = 0;
        'running: while i < self.running.len() && budget > 0 {
            let s = &self.running[i];
            let n = (s.toks.len - s.computed).min(budget);
            loop {
                let s = &mut self.running[i];
                let want = blocks_for(s.computed + n, bs).saturating_sub(s.held);
                if self.pool.alloc(want) {
                    s.held += want;
                    break;
                }
                // Preempt the lowest-priority (most recently admitted) running sequence.
                let mut victim = self.running.pop().expect("running is not empty");
                let was_self = self.running.len() == i;
                Self::free_blocks(&mut self.pool, &mut victim);
                self.metrics.preemptions.fetch_add(1, Relaxed);
                self.waiting.push_front(victim);
                preempted = true;
                if was_self {
                    break 'running;
                }
            }
            self.plan.push((i, n));
            budget -= n;
            i += 1;
        }
        while !preempted && budget > 0 && self.running.len() < self.p.max_num_seqs as usize {
            let Some(s) = self.waiting.front() else { break };
            if s.tx.is_closed() {
                let mut s = self.waiting.pop_front().expect("front exists");
                Self::free_blocks(&mut self.pool, &mut s);
                self.metrics.finished(Finish::Abort);
                continue;
            }
            let total = s.toks.len;
            let (hit, hit_free) = if self.prefix_caching {
                let max = (total.saturating_sub(1) / bs) as usize;
                self.pool.match_prefix(&s.toks.hashes, max)
            } else {
                (0, 0)
            };
            let cached = hit as u32 * bs;
            let n = (total - cached).min(budget);
            let new = blocks_for(cached + n, bs) - hit as u64;
            let reserve = if self.running.is_empty() {
                0
            } else {
                self.watermark
            };
            if self.pool.available() < hit_free + new + reserve {
                break;
            }
            let mut s = self.waiting.pop_front().expect("front exists");
            for &h in &s.toks.hashes[..hit] {
                self.pool.acquire(h);
            }
            let ok = self.pool.alloc(new);
            debug_assert!(ok);
            s.held = hit as u64 + new;
            s.registered = hit;
            s.computed = cached;
            if self.prefix_caching {
                self.metrics.prefix_queries.fetch_add(total as u64, Relaxed);
                self.metrics.prefix_hits.fetch_add(cached as u64, Relaxed);
            }
            if s.cached_tokens.is_none() {
                s.cached_tokens = Some(cached);
                self.metrics
                    .queue
                    .observe(now.saturating_duration_since(s.arrived).as_secs_f64());
            }
            self.running.push(s);
            self.plan.push((self.running.len() - 1, n));
            budget -= n;
        }
        let mut st = Step {
            scheduled: self.plan.len(),
            ..Step::default()
        };
        for &(i, n) in &self.plan {
            let s = &self.running[i];
            if n == 1 && s.generated > 0 && s.computed + 1 == s.toks.len {
                st.decodes += 1;
                st.kv_read += s.computed as u64;
            } else {
                st.prefill_tokens += n as u64;
            }
        }
        if st.scheduled > 0 {
            let p = &self.p;
            st.duration_us = p.step_base_us
                + p.decode_us_per_seq * st.decodes as f64
                + p.decode_us_per_kv_ktoken * st.kv_read as f64 / 1000.0
                + p.prefill_us_per_token * st.prefill_tokens as f64;
        }
        self.publish();
        st
    }

    /// Applies the scheduled step, which ended at model time `now`: advances prefills, emits
    /// one token to every sequence whose tokens are all computed, retires finished ones.
    pub fn complete(&mut self, now: Instant) {
        let bs = self.bs;
        let Scheduler {
            running,
            plan,
            pool,
            vocab,
            metrics,
            prefix_caching,
            ..
        } = self;
        let mut any_done = false;
        for &(i, n) in plan.iter() {
            let s = &mut running[i];
            s.computed += n;
            if *prefix_caching {
                let full = ((s.computed / bs) as usize).min(s.toks.hashes.len());
                while s.registered < full {
                    pool.register(s.toks.hashes[s.registered]);
                    s.registered += 1;
                }
            }
            if s.computed < s.toks.len {
                continue;
            }
            let since = now.saturating_duration_since(if s.generated == 0 {
                s.arrived
            } else {
                s.last_token_at
            });
            if s.generated == 0 {
                metrics
                    .prompt_tokens
                    .fetch_add(s.prompt_len as u64, Relaxed);
                metrics.ttft.observe(since.as_secs_f64());
            } else {
                metrics.tpot.observe(since.as_secs_f64());
            }
            let w = vocab.pick(s.seed, s.generated, s.prev);
            s.generated += 1;
            s.prev = Some(w);
            s.toks.push(vocab.words[w as usize].id);
            s.last_token_at = now;
            metrics.generation_tokens.fetch_add(1, Relaxed);
            if s.generated >= s.output_len {
                let usage = Usage {
                    prompt_tokens: s.prompt_len,
                    completion_tokens: s.generated,
                    cached_tokens: s.cached_tokens.unwrap_or(0),
                    finish: s.finish,
                };
                let _ = s.tx.send(Event::Last(w, usage));
                metrics
                    .e2e
                    .observe(now.saturating_duration_since(s.arrived).as_secs_f64());
                metrics.finished(s.finish);
                s.done = true;
                any_done = true;
            } else if s.tx.send(Event::Token(w)).is_err() {
                metrics.finished(Finish::Abort);
                s.done = true;
                any_done = true;
            }
        }
        plan.clear();
        if any_done {
            for s in running.iter_mut().filter(|s| s.done) {
                Self::free_blocks(pool, s);
            }
            running.retain(|s| !s.done);
        }
        self.publish();
    }

    fn publish(&self) {
        let m = &self.metrics;
        m.running.store(self.running.len() as u64, Relaxed);
        m.waiting.store(self.waiting.len() as u64, Relaxed);
        let usage = if self.pool.total() == 0 {
            0.0
        } else {
            self.pool.used() as f64 / self.pool.total() as f64
        };
        m.kv_usage.store(usage.to_bits(), Relaxed);
    }
}
