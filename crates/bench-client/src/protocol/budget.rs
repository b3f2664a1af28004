//! The run's budget for response buffers (`client.max_buffer_mib`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The memory all in-flight responses of a run may hold in their buffers
/// (`client.max_buffer_mib`): bytes received and not yet consumed (a partial SSE line, an SSE
/// event's data not yet dispatched, a non-streamed body, the start of an error body). Each
/// request is charged as its buffers grow and credited as they are consumed and when it ends;
/// a request whose buffers would take the total past the budget fails. The per-response caps
/// (64 MiB for an SSE line, 256 MiB for a body) bound one response; this bounds them together.
#[derive(Debug)]
pub struct BufferBudget {
    limit: usize,
    used: AtomicUsize,
}

impl BufferBudget {
    /// A budget of `mib` MiB, to share between the requests of a run.
    pub fn shared(mib: u32) -> Arc<BufferBudget> {
        Arc::new(BufferBudget {
            limit: (mib as usize).saturating_mul(1 << 20),
            used: AtomicUsize::new(0),
        })
    }

    /// Takes `n` more bytes, unless that would exceed the budget.
    pub(crate) fn charge(&self, n: usize) -> bool {
        self.used
            .fetch_update(Relaxed, Relaxed, |u| {
                u.checked_add(n).filter(|&t| t <= self.limit)
            })
            .is_ok()
    }

    pub(crate) fn release(&self, n: usize) {
        self.used.fetch_sub(n, Relaxed);
    }

    /// The budget, MiB.
    pub fn limit_mib(&self) -> usize {
        self.limit >> 20
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        self.used.load(Relaxed)
    }
}
