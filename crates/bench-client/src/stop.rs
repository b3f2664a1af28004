//! Stopping a run: Ctrl-C / SIGTERM / SIGHUP, the duration limit, or a [`StopHandle`].
//!
//! A stop first *drains* (nothing more is sent; in-flight requests may finish within
//! `client.grace_s`), then *aborts* (in-flight requests end as `cancelled`). A second Ctrl-C
//! aborts at once.
//!
//! Signals are caught by one process-wide listener thread, started by the first run. tokio
//! cannot uninstall its handlers, so outside a run the listener restores the default
//! behaviour itself: a signal that arrives while no run is active ends the process with
//! 128 + the signal number, as if it had not been caught.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::watch;

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// Sending on schedule.
    Running,
    /// Not sending any more; in-flight requests may finish.
    Draining,
    /// In-flight requests are cancelled now.
    Aborted,
}

/// Stops a run from another thread, as Ctrl-C would (the run reports `interrupted`).
#[derive(Debug, Clone)]
pub struct StopHandle {
    tx: Arc<watch::Sender<u8>>,
}

impl Default for StopHandle {
    fn default() -> Self {
        StopHandle {
            tx: Arc::new(watch::channel(0).0),
        }
    }
}

impl StopHandle {
    /// A handle not yet triggered.
    pub fn new() -> Self {
        Self::default()
    }
    /// Like the first Ctrl-C: stop sending, let in-flight requests finish within the grace.
    pub fn stop(&self) {
        self.tx.send_if_modified(|v| {
            let changed = *v < 1;
            *v = (*v).max(1);
            changed
        });
    }
    /// Like a second Ctrl-C: cancel in-flight requests now.
    pub fn abort(&self) {
        self.tx.send_replace(2);
    }
    pub(crate) fn subscribe(&self) -> watch::Receiver<u8> {
        self.tx.subscribe()
    }
}

static ACTIVE_RUNS: AtomicUsize = AtomicUsize::new(0);
static SIGNALS: OnceLock<watch::Sender<u64>> = OnceLock::new();

/// Counts the signals received (SIGINT, SIGTERM, SIGHUP) since the listener started.
pub(crate) fn signals() -> watch::Receiver<u64> {
    SIGNALS
        .get_or_init(|| {
            let (tx, _) = watch::channel(0u64);
            let tx2 = tx.clone();
            let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
            let spawned = std::thread::Builder::new()
                .name("bench-signals".into())
                .spawn(move || listen(tx2, ready_tx));
            if spawned.is_ok() {
                // Handlers are installed before the first run starts sending.
                let _ = ready_rx.recv_timeout(std::time::Duration::from_secs(2));
            }
            tx
        })
        .subscribe()
}

fn listen(tx: watch::Sender<u64>, ready: std::sync::mpsc::Sender<()>) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        tracing::warn!(
            "could not start the signal listener; Ctrl-C will not stop the client cleanly"
        );
        return;
    };
    rt.block_on(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) else {
                tracing::warn!("could not install signal handlers");
                return;
            };
            let _ = ready.send(());
            loop {
                let code = tokio::select! {
                    _ = int.recv() => 130,
                    _ = term.recv() => 143,
                    _ = hup.recv() => 129,
                };
                if ACTIVE_RUNS.load(Ordering::SeqCst) == 0 {
                    exit_between_runs(code);
                }
                tx.send_modify(|n| *n += 1);
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ready.send(());
            while tokio::signal::ctrl_c().await.is_ok() {
                if ACTIVE_RUNS.load(Ordering::SeqCst) == 0 {
                    exit_between_runs(130);
                }
                tx.send_modify(|n| *n += 1);
            }
        }
    });
}

/// A signal while no client run is active (e.g. during the analysis that follows an interrupted
/// run): the process stops now, as it would without a handler, with 128 + the signal number.
fn exit_between_runs(code: i32) -> ! {
    eprintln!("bench: interrupted: stopping now");
    std::process::exit(code)
}

/// Marks a run as active for the signal listener while alive.
#[derive(Debug)]
pub(crate) struct ActiveRun;

impl ActiveRun {
    pub(crate) fn enter() -> Self {
        ACTIVE_RUNS.fetch_add(1, Ordering::SeqCst);
        ActiveRun
    }
}

impl Drop for ActiveRun {
    fn drop(&mut self) {
        ACTIVE_RUNS.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_levels_only_rise() {
        let h = StopHandle::new();
        let rx = h.subscribe();
        assert_eq!(*rx.borrow(), 0);
        h.stop();
        assert_eq!(*rx.borrow(), 1);
        h.abort();
        h.stop();
        assert_eq!(*rx.borrow(), 2, "stop after abort must not lower the level");
    }
}
