//! The process's one signal listener (SIGINT, SIGTERM, SIGHUP).
//!
//! What a signal does depends on what the process is doing:
//! - during a client run it steps the run's [`StopHandle`]: the first signal drains (nothing
//!   more is sent, in-flight requests get `client.grace_s`), the next one aborts;
//! - while `bench sim` serves, it goes to [`Signals::catch`]'s receiver, and the server shuts
//!   down cleanly; under `bench chat` the same receiver cancels the reply in flight;
//! - otherwise (dataset, workload, analysis) it ends the process now with 128 + the signal
//!   number, as the default action would.
//!
//! The handlers are installed before [`Signals::install`] returns, so a signal sent right after
//! a URL or a progress line is printed never meets the default disposition. The exit status of
//! an interrupted run is decided by the driver from [`Signals::first`].

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use bench_client::StopHandle;

/// Where signals go right now.
enum Target {
    /// End the process (128 + the signal number).
    Exit,
    /// Step this client run's stop handle.
    Run(StopHandle),
    /// Wake a waiter.
    Wake(mpsc::Sender<i32>),
}

struct Shared {
    target: Mutex<Target>,
    /// The first signal that stopped a run or woke a waiter (0: none yet).
    first: AtomicI32,
}

/// The installed listener.
#[derive(Clone)]
pub struct Signals {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signals")
            .field("first", &self.first())
            .finish()
    }
}

impl Signals {
    /// Starts the listener thread; returns once the handlers are installed.
    pub fn install() -> Result<Signals, String> {
        let shared = Arc::new(Shared {
            target: Mutex::new(Target::Exit),
            first: AtomicI32::new(0),
        });
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let s = shared.clone();
        std::thread::Builder::new()
            .name("bench-signals".into())
            .spawn(move || listen(s, ready_tx))
            .map_err(|e| format!("starting the signal listener: {e}"))?;
        ready_rx
            .recv()
            .map_err(|_| "the signal listener stopped before it started".to_string())??;
        Ok(Signals { shared })
    }

    fn set(&self, t: Target) {
        *self.shared.target.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }

    /// Runs `f` with signals stepping `stop`; afterwards a signal ends the process again.
    pub fn during_run<T>(&self, stop: &StopHandle, f: impl FnOnce() -> T) -> T {
        self.set(Target::Run(stop.clone()));
        let out = f();
        self.set(Target::Exit);
        out
    }

    /// From now on, signals are sent to the returned receiver (the process no longer ends on
    /// one): `bench sim` blocks on it, then shuts down cleanly.
    pub fn catch(&self) -> mpsc::Receiver<i32> {
        let (tx, rx) = mpsc::channel();
        self.set(Target::Wake(tx));
        rx
    }

    /// The first signal that stopped a run or woke a waiter.
    pub fn first(&self) -> Option<i32> {
        match self.shared.first.load(Ordering::SeqCst) {
            0 => None,
            n => Some(n),
        }
    }

    /// The exit status of a run a signal interrupted: 128 + the signal (130 for Ctrl-C).
    pub fn interrupted_status(&self) -> i32 {
        128 + self.first().unwrap_or(SIGINT)
    }
}

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;
const SIGHUP: i32 = 1;

fn deliver(shared: &Shared, signo: i32) {
    let target = shared.target.lock().unwrap_or_else(|e| e.into_inner());
    match &*target {
        Target::Exit => {
            eprintln!("bench: interrupted: stopping now");
            std::process::exit(128 + signo);
        }
        Target::Run(stop) => {
            let _ = shared
                .first
                .compare_exchange(0, signo, Ordering::SeqCst, Ordering::SeqCst);
            stop.escalate();
        }
        Target::Wake(tx) => {
            let _ = shared
                .first
                .compare_exchange(0, signo, Ordering::SeqCst, Ordering::SeqCst);
            let _ = tx.send(signo);
        }
    }
}

fn listen(shared: Arc<Shared>, ready: mpsc::Sender<Result<(), String>>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(format!("starting the signal listener: {e}")));
            return;
        }
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
                let _ = ready.send(Err("could not install signal handlers".into()));
                return;
            };
            let _ = ready.send(Ok(()));
            loop {
                let signo = tokio::select! {
                    _ = int.recv() => SIGINT,
                    _ = term.recv() => SIGTERM,
                    _ = hup.recv() => SIGHUP,
                };
                deliver(&shared, signo);
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ready.send(Ok(()));
            while tokio::signal::ctrl_c().await.is_ok() {
                deliver(&shared, SIGINT);
            }
        }
    });
}
