//! The engine loop: one task that runs scheduler steps back to back while there is work,
//! each lasting its model time (scaled by `sim.time_scale`).
//!
//! Steps are timed on an absolute timeline: step k+1 starts where step k was due to end, not
//! when the timer actually woke up (tokio's timer has millisecond granularity), so wake-up
//! lateness does not accumulate into the model's timing. If the loop falls more than
//! [`MAX_LAG`] behind (the thread was starved), the timeline restarts from now.

use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;

use crate::engine::{Arrival, Scheduler};

/// How far behind its timeline the loop may run before it resynchronizes.
const MAX_LAG: Duration = Duration::from_millis(2);

/// Runs until every request sender is dropped.
pub(crate) async fn run(mut sched: Scheduler, mut rx: UnboundedReceiver<Arrival>, time_scale: f64) {
    let mut clock: Option<Instant> = None;
    loop {
        if sched.is_idle() {
            clock = None;
            match rx.recv().await {
                Some(a) => sched.add(a),
                None => return,
            }
        }
        while let Ok(a) = rx.try_recv() {
            sched.add(a);
        }
        let now = Instant::now();
        let start = match clock {
            Some(c) if now.saturating_duration_since(c) <= MAX_LAG => c,
            _ => now,
        };
        let step = sched.schedule(start);
        if step.scheduled == 0 {
            // Nothing could be scheduled (every queued client left): wait for news.
            clock = None;
            if !sched.is_idle() {
                match rx.recv().await {
                    Some(a) => sched.add(a),
                    None => return,
                }
            }
            continue;
        }
        let real_us = (step.duration_us * time_scale).max(0.0);
        let end = start + Duration::from_nanos((real_us * 1000.0) as u64);
        if end > Instant::now() {
            tokio::time::sleep_until(end.into()).await;
        } else {
            tokio::task::yield_now().await;
        }
        sched.complete(end);
        clock = Some(end);
    }
}
