//! Run counters and the progress display: a one-line bar on stderr redrawn four times a second
//! by its own timer (never per request), or, when stderr is not a terminal, a log line every
//! five seconds.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Counters of workload requests (warmup excluded), updated once per request (relaxed
/// atomics: no locks on the hot path).
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests handed to the transport.
    pub sent: AtomicU64,
    /// Requests finished (any status, not_sent excluded).
    pub done: AtomicU64,
    /// Finished with a status other than ok.
    pub errors: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.sent.load(Relaxed),
            self.done.load(Relaxed),
            self.errors.load(Relaxed),
        )
    }
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// Nothing.
    Off,
    /// The bar on stderr.
    Bar,
    /// `info` log lines.
    Log,
}

impl Display {
    /// Off when `enabled` is false, the bar on a terminal, log lines otherwise.
    pub fn choose(enabled: bool) -> Self {
        match (enabled, std::io::stderr().is_terminal()) {
            (false, _) => Display::Off,
            (true, true) => Display::Bar,
            (true, false) => Display::Log,
        }
    }
}

fn line(total: u64, (sent, done, errors): (u64, u64, u64), rate: f64, elapsed: Duration) -> String {
    let pct = if total > 0 {
        100.0 * done as f64 / total as f64
    } else {
        100.0
    };
    let width = 24usize;
    let filled = ((pct / 100.0) * width as f64).round() as usize;
    let s = elapsed.as_secs();
    format!(
        "[{}{}] {pct:5.1}% | sent {sent}/{total} | done {done} | errors {errors} | in flight {} | {rate:.1} req/s | {:02}:{:02}",
        "#".repeat(filled.min(width)),
        "-".repeat(width - filled.min(width)),
        sent.saturating_sub(done),
        s / 60,
        s % 60,
    )
}

/// Runs until `stop` resolves; then clears the bar.
pub async fn run(
    display: Display,
    counters: &Counters,
    total: u64,
    stop: impl std::future::Future<Output = ()>,
) {
    if display == Display::Off {
        stop.await;
        return;
    }
    let every = if display == Display::Bar {
        Duration::from_millis(250)
    } else {
        Duration::from_secs(5)
    };
    let start = Instant::now();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = (Instant::now(), 0u64);
    let mut rate = 0.0;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        let snap = counters.snapshot();
        let now = Instant::now();
        let dt = (now - last.0).as_secs_f64();
        if dt > 0.0 {
            let inst = (snap.1 - last.1) as f64 / dt;
            rate = if rate == 0.0 {
                inst
            } else {
                0.7 * rate + 0.3 * inst
            };
        }
        last = (now, snap.1);
        let text = line(total, snap, rate, start.elapsed());
        match display {
            Display::Bar => {
                let mut e = std::io::stderr().lock();
                let _ = write!(e, "\r\x1b[2K{text}");
                let _ = e.flush();
            }
            Display::Log => tracing::info!("client: {text}"),
            Display::Off => {}
        }
    }
    if display == Display::Bar {
        let snap = counters.snapshot();
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "\r\x1b[2K{}", line(total, snap, rate, start.elapsed()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_counts_and_rate() {
        let l = line(200, (120, 100, 3), 41.26, Duration::from_secs(75));
        assert!(l.contains(" 50.0% "), "{l}");
        assert!(
            l.contains("sent 120/200 | done 100 | errors 3 | in flight 20 | 41.3 req/s | 01:15"),
            "{l}"
        );
        assert!(l.starts_with("[############------------]"), "{l}");
    }
}
