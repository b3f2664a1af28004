//! Stopping a run early: a [`StopHandle`] (the binary turns Ctrl-C and SIGTERM into calls on
//! it), or the run's duration limit.
//!
//! A stop first *drains* (nothing more is sent; in-flight requests may finish within
//! `client.grace_s`), then *aborts* (in-flight requests end as `cancelled`). Asking again while
//! draining aborts at once. The library never installs signal handlers and never exits the
//! process: that is the binary's business.

use std::sync::Arc;

use tokio::sync::watch;

/// What a run has been asked to do; requests only ever rise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum StopRequest {
    /// Keep going.
    #[default]
    None,
    /// Send nothing more; let in-flight requests finish within the grace period.
    Drain,
    /// Cancel in-flight requests now.
    Abort,
}

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

/// Stops a run from another thread (the run then reports `interrupted`). Clones share the
/// request.
#[derive(Debug, Clone)]
pub struct StopHandle {
    tx: Arc<watch::Sender<StopRequest>>,
}

impl Default for StopHandle {
    fn default() -> Self {
        StopHandle {
            tx: Arc::new(watch::channel(StopRequest::None).0),
        }
    }
}

impl StopHandle {
    /// A handle not yet triggered.
    pub fn new() -> Self {
        Self::default()
    }
    fn raise(&self, to: StopRequest) {
        self.tx.send_if_modified(|v| {
            let changed = *v < to;
            *v = (*v).max(to);
            changed
        });
    }
    /// Stop sending, let in-flight requests finish within the grace period.
    pub fn stop(&self) {
        self.raise(StopRequest::Drain);
    }
    /// Cancel in-flight requests now.
    pub fn abort(&self) {
        self.raise(StopRequest::Abort);
    }
    /// One step further: a first call drains, a second aborts (Ctrl-C, then Ctrl-C again).
    /// Returns the request now in force.
    pub fn escalate(&self) -> StopRequest {
        let next = match self.requested() {
            StopRequest::None => StopRequest::Drain,
            _ => StopRequest::Abort,
        };
        self.raise(next);
        self.requested()
    }
    /// The request in force.
    pub fn requested(&self) -> StopRequest {
        *self.tx.borrow()
    }
    pub(crate) fn subscribe(&self) -> watch::Receiver<StopRequest> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_only_rise_and_escalate_steps_once_per_call() {
        let h = StopHandle::new();
        let rx = h.subscribe();
        assert_eq!(*rx.borrow(), StopRequest::None);
        assert_eq!(h.escalate(), StopRequest::Drain);
        h.stop();
        assert_eq!(*rx.borrow(), StopRequest::Drain);
        assert_eq!(h.clone().escalate(), StopRequest::Abort);
        h.stop();
        assert_eq!(
            h.requested(),
            StopRequest::Abort,
            "stop after abort must not lower it"
        );
        assert_eq!(h.escalate(), StopRequest::Abort);
    }
}
