//! The dispatcher: warmup, the anchor, open- or closed-loop sending, sessions, the stop
//! controller, and the final accounting (every workload request ends as exactly one row).
//!
//! Open loop: one dispatcher task walks the requests in scheduled order and, for each, sleeps
//! until `anchor + scheduled` with the precise timer (absolute deadlines: lateness never
//! accumulates), then releases it: a plain request gets its own task; a session turn goes to
//! its session's task, which sends turns in order, each when it is released *and* the previous
//! reply has ended, with the conversation so far. Closed loop: a slot (one of N) is taken, the
//! next chain (a plain request or a whole session) starts, the slot is freed when it ends.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bench_types::RequestStatus;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::exec::{Ctx, History, execute};
use crate::plan::Mode;
use crate::prepare::{Payload, Prepared, Unit};
use crate::progress::{self, Display};
use crate::protocol::request::Extra;
use crate::records::Msg;
use crate::stop::{Phase, StopHandle, StopRequest};
use crate::timer::PreciseTimer;

/// Inputs of the async part of a run.
pub struct Launch {
    /// Shared context (phase receiver inside).
    pub ctx: Arc<Ctx>,
    /// Sender side of the phase.
    pub phase_tx: watch::Sender<Phase>,
    /// Prepared units, in consumption order.
    pub units: mpsc::Receiver<Unit>,
    /// Fires when the producer's initial fill is done.
    pub filled: oneshot::Receiver<()>,
    /// Warmup payloads (plan index, payload).
    pub warmup: Vec<(u32, Payload)>,
    /// Stop requests from outside (the binary's signal listener, a caller's code).
    pub stop: StopHandle,
    /// `client.duration_limit_s`.
    pub duration_limit: Option<Duration>,
    /// `client.grace_s`.
    pub grace: Duration,
    /// Progress display.
    pub display: Display,
    /// The shared start (`client.start_at`), Unix ns: the anchor is this instant.
    pub start_unix_ns: Option<i64>,
}

/// What the async part reports.
#[derive(Debug, Clone, Copy)]
pub struct Ran {
    /// Stopped by a signal or the stop handle.
    pub interrupted: bool,
    /// The duration limit was reached.
    pub limited: bool,
    /// Wall-clock time of the anchor (ns since the epoch).
    pub anchor_unix_ns: i64,
    /// Time from the anchor to the last row.
    pub elapsed: Duration,
}

struct Released {
    idx: u32,
    payload: Payload,
    ready: Instant,
}

/// Runs the whole dispatch; returns once every request has its row.
pub async fn run(l: Launch) -> Ran {
    let Launch {
        ctx,
        phase_tx,
        mut units,
        filled,
        warmup,
        stop,
        duration_limit,
        grace,
        display,
        start_unix_ns,
    } = l;
    let done = Arc::new(Notify::new());
    let flags = Arc::new((AtomicBool::new(false), AtomicBool::new(false)));
    let limit_at = Arc::new(std::sync::OnceLock::<Instant>::new());
    let controller = tokio::spawn(controller(Controller {
        phase: phase_tx,
        stop: stop.subscribe(),
        limit_at: limit_at.clone(),
        limit: duration_limit,
        grace,
        flags: flags.clone(),
        done: done.clone(),
    }));
    let total = ctx.plan.len() as u64;
    let progress_done = Arc::new(Notify::new());
    let progress = {
        let ctx = ctx.clone();
        let pd = progress_done.clone();
        tokio::spawn(
            async move { progress::run(display, &ctx.counters, total, pd.notified()).await },
        )
    };

    if !warmup.is_empty() {
        run_warmup(&ctx, warmup).await;
    }
    // Wait for the producer's initial fill (everything, when it fits the budget).
    let t0 = Instant::now();
    tokio::select! {
        biased;
        _ = ctx.reached(Phase::Draining) => {}
        _ = filled => {}
    }
    if t0.elapsed() > Duration::from_millis(500) {
        tracing::info!(
            "client: request bodies prepared ahead in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
    }

    // The anchor: monotonic and wall clock read back to back; with a shared start, the
    // monotonic instant of that wall-clock time.
    let now = Instant::now();
    let now_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    let (anchor, unix_ns) = match start_unix_ns {
        None => (now, now_unix),
        Some(start) => {
            let ahead = start - now_unix;
            let at = if ahead >= 0 {
                now.checked_add(Duration::from_nanos(ahead as u64))
            } else {
                now.checked_sub(Duration::from_nanos(ahead.unsigned_abs()))
            };
            if ahead < 0 {
                tracing::warn!(
                    "client: ready {:.3} s after client.start_at: the shared anchor is kept, the requests already due are sent at once (their lateness shows as dispatch lag)",
                    -ahead as f64 / 1e9
                );
            } else if ahead > 1_000_000_000 {
                tracing::info!(
                    "client: waiting {:.1} s for client.start_at",
                    ahead as f64 / 1e9
                );
            }
            (at.unwrap_or(now), start)
        }
    };
    let anchor_offset_ns = ctx.ns(anchor);
    let _ = ctx.writer.send(Msg::Anchor {
        offset_ns: anchor_offset_ns,
        unix_ns,
    });
    if let Some(d) = duration_limit {
        let _ = limit_at.set(anchor + d);
    }

    if Instant::now() < anchor
        && let Ok(mut timer) = PreciseTimer::new()
    {
        // closed loops start at the anchor too (open loops would wait for each request anyway)
        tokio::select! {
            biased;
            _ = ctx.reached(Phase::Draining) => {}
            _ = timer.sleep_until(anchor) => {}
        }
    }
    let mut set = JoinSet::new();
    match ctx.plan.mode {
        Mode::OpenLoop => open_loop(&ctx, anchor, &mut units, &mut set).await,
        Mode::ClosedLoop(n) => closed_loop(&ctx, n, &mut units, &mut set).await,
    }
    // Stop the producer, then wait for every task.
    units.close();
    while units.recv().await.is_some() {}
    while set.join_next().await.is_some() {}

    // Requests that never got a row were never released.
    for (i, item) in ctx.plan.items.iter().enumerate() {
        if !ctx.accounted[i].load(Relaxed) {
            let o = ctx.outcome(i as u32, anchor_offset_ns + item.scheduled_ns);
            let why = if ctx.writer_gone.load(Relaxed) {
                "not sent: the record writer failed"
            } else {
                "not sent: the run was stopped before its time"
            };
            ctx.not_sent(o, why);
        }
    }
    let elapsed = anchor.elapsed();
    done.notify_one();
    let _ = controller.await;
    progress_done.notify_one();
    let _ = progress.await;
    Ran {
        interrupted: flags.0.load(Relaxed),
        limited: flags.1.load(Relaxed),
        anchor_unix_ns: unix_ns,
        elapsed,
    }
}

/// What the stop controller watches and drives.
struct Controller {
    phase: watch::Sender<Phase>,
    stop: watch::Receiver<StopRequest>,
    limit_at: Arc<std::sync::OnceLock<Instant>>,
    limit: Option<Duration>,
    grace: Duration,
    /// (interrupted by a stop request, duration limit reached)
    flags: Arc<(AtomicBool, AtomicBool)>,
    done: Arc<Notify>,
}

/// Moves the run through its phases: running until a stop request or the duration limit, then
/// draining for the grace period (or until a second request), then aborted.
async fn controller(c: Controller) {
    let Controller {
        phase,
        mut stop,
        limit_at,
        limit,
        grace,
        flags,
        done,
    } = c;
    let limit_reached = async {
        let Some(d) = limit else {
            return std::future::pending::<()>().await;
        };
        // The limit counts from the anchor, once it exists.
        loop {
            if let Some(at) = limit_at.get() {
                tokio::time::sleep_until((*at).into()).await;
                return;
            }
            tokio::time::sleep(d.min(Duration::from_millis(50))).await;
        }
    };
    // A closed channel (the handle's owner is gone) never asks for anything.
    async fn reaches(rx: &mut watch::Receiver<StopRequest>, level: StopRequest) {
        if rx.wait_for(|r| *r >= level).await.is_err() {
            std::future::pending::<()>().await
        }
    }
    tokio::select! {
        _ = done.notified() => return,
        _ = reaches(&mut stop, StopRequest::Drain) => {
            flags.0.store(true, Relaxed);
            tracing::info!(
                "client: stopping: no more requests are sent; in-flight ones get {:.1} s (Ctrl-C again to cancel them now)",
                grace.as_secs_f64()
            );
        }
        _ = limit_reached => {
            flags.1.store(true, Relaxed);
            tracing::info!("client: duration limit reached; no more requests are sent");
        }
    }
    let _ = phase.send(Phase::Draining);
    tokio::select! {
        _ = done.notified() => return,
        _ = tokio::time::sleep(grace) => {}
        _ = reaches(&mut stop, StopRequest::Abort) => {}
    }
    let _ = phase.send(Phase::Aborted);
    done.notified().await;
}

async fn run_warmup(ctx: &Arc<Ctx>, warmup: Vec<(u32, Payload)>) {
    let n = ctx.plan.workload_total;
    let mut set = JoinSet::new();
    for (k, (idx, payload)) in warmup.into_iter().enumerate() {
        let ctx = ctx.clone();
        set.spawn(async move {
            let permit = ctx.slot().await;
            let now = ctx.ns(Instant::now());
            let mut o = ctx.outcome(idx, now);
            o.id = n + k as u64;
            o.warmup = true;
            o.session = None;
            o.turn = None;
            o.ready = Some(now);
            match (permit, payload) {
                (Ok(_p), Payload::Body(body)) => execute(&ctx, &body, &mut o).await,
                (Ok(_), Payload::Failed(e)) => o.error = Some(e),
                (Ok(_), Payload::Turn { .. }) => {
                    o.error = Some("warmup payload is a session turn".into())
                }
                (Err(()), _) => o.error = Some("not sent: the run was stopped".into()),
            }
            ctx.record(o);
        });
    }
    while set.join_next().await.is_some() {}
}

async fn open_loop(
    ctx: &Arc<Ctx>,
    anchor: Instant,
    units: &mut mpsc::Receiver<Unit>,
    set: &mut JoinSet<()>,
) {
    let Ok(mut timer) = PreciseTimer::new() else {
        tracing::error!("client: cannot create the dispatch timer");
        return;
    };
    let plan = ctx.plan.clone();
    let mut sessions: HashMap<u32, (mpsc::UnboundedSender<Released>, usize)> = HashMap::new();
    'units: loop {
        let unit = tokio::select! {
            biased;
            _ = ctx.reached(Phase::Draining) => break,
            u = units.recv() => match u { Some(u) => u, None => break },
        };
        for Prepared { idx, payload } in unit {
            let item = &plan.items[idx as usize];
            let due = anchor + Duration::from_nanos(item.scheduled_ns.max(0) as u64);
            if Instant::now() < due {
                tokio::select! {
                    biased;
                    _ = ctx.reached(Phase::Draining) => break 'units,
                    _ = timer.sleep_until(due) => {}
                }
            }
            if ctx.writer_gone.load(Relaxed) {
                break 'units;
            }
            let ready = Instant::now();
            let scheduled = ctx.ns(anchor) + item.scheduled_ns;
            if item.session.is_none() {
                let ctx = ctx.clone();
                set.spawn(single(ctx, idx, payload, ready, scheduled));
            } else {
                let chain = plan.chain_of[idx as usize];
                let entry = sessions.entry(chain).or_insert_with(|| {
                    let (tx, rx) = mpsc::unbounded_channel();
                    set.spawn(session(ctx.clone(), chain, rx, anchor));
                    (tx, plan.chains[chain as usize].len())
                });
                let _ = entry.0.send(Released {
                    idx,
                    payload,
                    ready,
                });
                entry.1 -= 1;
                if entry.1 == 0 {
                    sessions.remove(&chain);
                }
            }
        }
        while set.try_join_next().is_some() {}
    }
}

async fn single(ctx: Arc<Ctx>, idx: u32, payload: Payload, ready: Instant, scheduled: i64) {
    let mut o = ctx.outcome(idx, scheduled);
    o.ready = Some(ctx.ns(ready));
    let Ok(_permit) = ctx.slot().await else {
        return ctx.not_sent(
            o,
            "not sent: the run was stopped while the request waited for a concurrency slot",
        );
    };
    match payload {
        Payload::Body(body) => execute(&ctx, &body, &mut o).await,
        Payload::Failed(e) => return ctx.not_sent(o, &e),
        Payload::Turn { .. } => {
            return ctx.not_sent(o, "internal: a session turn outside its session");
        }
    }
    ctx.record(o);
}

/// Sends one session's turns in order (open loop).
async fn session(
    ctx: Arc<Ctx>,
    chain: u32,
    mut rx: mpsc::UnboundedReceiver<Released>,
    anchor: Instant,
) {
    let plan = ctx.plan.clone();
    let turns = &plan.chains[chain as usize];
    let mut waiting: HashMap<u32, Released> = HashMap::new();
    let mut hist = History::new(ctx.builder.chat_history());
    for &idx in turns {
        let rel = loop {
            if let Some(r) = waiting.remove(&idx) {
                break Some(r);
            }
            match rx.recv().await {
                Some(r) => {
                    waiting.insert(r.idx, r);
                }
                None => break None,
            }
        };
        let Some(rel) = rel else { break };
        let scheduled = ctx.ns(anchor) + plan.items[idx as usize].scheduled_ns;
        send_turn(&ctx, &mut hist, rel, scheduled).await;
    }
    // Released but never sent (the run stopped while they waited for an earlier turn).
    for (_, r) in waiting {
        let mut o = ctx.outcome(
            r.idx,
            ctx.ns(anchor) + plan.items[r.idx as usize].scheduled_ns,
        );
        o.ready = Some(ctx.ns(r.ready));
        ctx.not_sent(
            o,
            "not sent: the run was stopped while the turn waited for the previous reply",
        );
    }
}

/// Sends one turn of a session (after the previous one ended) and extends the history.
async fn send_turn(ctx: &Arc<Ctx>, hist: &mut History, rel: Released, scheduled: i64) {
    let mut o = ctx.outcome(rel.idx, scheduled);
    o.ready = Some(ctx.ns(rel.ready));
    if ctx.phase() >= Phase::Draining {
        return ctx.not_sent(
            o,
            "not sent: the run was stopped while the turn waited for the previous reply",
        );
    }
    let Ok(_permit) = ctx.slot().await else {
        return ctx.not_sent(
            o,
            "not sent: the run was stopped while the request waited for a concurrency slot",
        );
    };
    let (text, image) = match rel.payload {
        Payload::Turn { text, image } => (text, image),
        Payload::Failed(e) => return ctx.not_sent(o, &e),
        Payload::Body(_) => return ctx.not_sent(o, "internal: a full body for a session turn"),
    };
    let req = &ctx.plan.items[rel.idx as usize];
    let image_ref = image.as_deref();
    let x = Extra {
        turn_text: &text,
        images: image_ref.as_slice(),
        fields: req.req.fields.as_ref(),
        id: req.id,
    };
    let body = hist.body(&ctx.builder, &text, &x, o.max_tokens);
    o.history_turns = hist.turns;
    execute(ctx, &body, &mut o).await;
    if o.status == RequestStatus::Ok {
        hist.push(&text, image.as_deref(), &o.content);
    }
    ctx.record(o);
}

async fn closed_loop(
    ctx: &Arc<Ctx>,
    n: u32,
    units: &mut mpsc::Receiver<Unit>,
    set: &mut JoinSet<()>,
) {
    let slots = Arc::new(Semaphore::new(n as usize));
    loop {
        let permit = tokio::select! {
            biased;
            _ = ctx.reached(Phase::Draining) => break,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let unit = tokio::select! {
            biased;
            _ = ctx.reached(Phase::Draining) => break,
            u = units.recv() => match u { Some(u) => u, None => break },
        };
        if ctx.writer_gone.load(Relaxed) {
            break;
        }
        let ctx = ctx.clone();
        set.spawn(async move {
            let _permit = permit;
            let mut hist = History::new(ctx.builder.chat_history());
            for Prepared { idx, payload } in unit {
                let now = Instant::now();
                let rel = Released {
                    idx,
                    payload,
                    ready: now,
                };
                let scheduled = ctx.ns(now);
                if ctx.plan.items[idx as usize].session.is_some() {
                    send_turn(&ctx, &mut hist, rel, scheduled).await;
                } else {
                    let mut o = ctx.outcome(idx, scheduled);
                    o.ready = Some(scheduled);
                    match rel.payload {
                        Payload::Body(body) if ctx.phase() < Phase::Draining => {
                            execute(&ctx, &body, &mut o).await
                        }
                        Payload::Failed(e) => {
                            ctx.not_sent(o, &e);
                            continue;
                        }
                        _ => {
                            ctx.not_sent(o, "not sent: the run was stopped");
                            continue;
                        }
                    }
                    ctx.record(o);
                }
            }
        });
        while set.try_join_next().is_some() {}
    }
}
