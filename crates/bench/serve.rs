//! `bench serve`: the service's options from the layered config, then serving until SIGINT or
//! SIGTERM (runs still executing are interrupted and waited for).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use bench_config::Resolved;
use bench_types::stage::exit;

use crate::driver::Failure;
use crate::signals::Signals;

/// Serves; returns the exit status.
pub fn run(
    r: Resolved,
    signals: &Signals,
    files: Vec<PathBuf>,
    overrides: &[String],
) -> Result<i32, Failure> {
    let cfg = &r.config;
    let s = &cfg.serve;
    let listen = s
        .listen
        .parse()
        .map_err(|e| Failure::new(exit::BAD_INPUT, format!("serve.listen {}: {e}", s.listen)))?;
    let token = std::env::var(&s.token_env).ok().filter(|t| !t.is_empty());
    bench_serve::check_bind(&listen, token.as_deref())
        .map_err(|e| Failure::new(exit::BAD_INPUT, e))?;
    let exe = std::env::current_exe()
        .map_err(|e| Failure::new(exit::FAILURE, format!("finding the bench binary: {e}")))?;
    let base = files
        .first()
        .and_then(|f| f.parent())
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let opts = bench_serve::Options {
        listen,
        token,
        catalog_url: cfg.catalog.url.clone(),
        exe,
        config_files: files.iter().map(|f| absolute(f)).collect(),
        // the service's own overrides reach its runs, but not where files go nor the service
        base_overrides: overrides
            .iter()
            .filter(|o| {
                let k = o.split('=').next().unwrap_or("");
                !["serve", "catalog", "run_dir", "name", "description", "tags"]
                    .contains(&k.split('.').next().unwrap_or(""))
            })
            .cloned()
            .collect(),
        runs_dir: absolute(Path::new(&s.runs_dir)),
        datasets_dir: absolute(&base.join("config").join("dataset")),
        max_parallel: s.max_parallel as usize,
    };
    let stop = signals.catch();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = stop.recv();
        let _ = tx.send(());
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::new(exit::FAILURE, e.to_string()))?;
    let catalog = opts.catalog_url.clone();
    rt.block_on(bench_serve::serve(
        opts,
        move |addr| {
            println!(
                "bench serve: http://{addr}/ (catalog {}; Ctrl-C stops)",
                bench_catalog::redact_url(&catalog)
            );
            let _ = std::io::stdout().flush();
        },
        async move {
            let _ = rx.await;
        },
    ))
    .map_err(|e| Failure::new(exit::FAILURE, e))?;
    Ok(exit::OK)
}
