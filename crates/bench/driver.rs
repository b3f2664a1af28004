//! The stage driver: config, run directory, stages in order, manifest, exit codes.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use bench_config::{Config, LoadError, Resolved, Sources};
use bench_types::manifest::StageRecord;
use bench_types::stage::exit;
use bench_types::{StageError, StageOutput};

use crate::cli::{Args, Command, Stage};
use crate::manifest;

/// A failure that ends the process with `code`.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    fn new(code: i32, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }
}

fn stage_failure<E: StageError>(stage: &str, e: E) -> Failure {
    Failure::new(e.exit_code(), format!("{stage} stage: {e}"))
}

fn load_config(args: &Args) -> Result<Resolved, Failure> {
    let file = match &args.config {
        Some(p) => {
            if p.is_dir() {
                return Err(Failure::new(
                    exit::BAD_INPUT,
                    format!("--config {}: is a directory, not a YAML file", p.display()),
                ));
            }
            if !p.is_file() {
                return Err(Failure::new(
                    exit::BAD_INPUT,
                    format!("config file {} not found", p.display()),
                ));
            }
            Some(p.clone())
        }
        None => Some(PathBuf::from("config.yaml")).filter(|p| p.is_file()),
    };
    let mut overrides = args.overrides.clone();
    if args.quiet {
        overrides.push("client.progress=false".into());
    }
    bench_config::load(&Sources {
        file,
        overrides,
        env: true,
    })
    .map_err(|e| match e {
        LoadError::Invalid(errs) => {
            let n = errs.0.len();
            let plural = if n == 1 { "" } else { "s" };
            Failure::new(
                exit::BAD_INPUT,
                format!("invalid config ({n} problem{plural}):\n{errs}"),
            )
        }
        other => Failure::new(exit::BAD_INPUT, other.to_string()),
    })
}

/// Runs what the arguments ask for; returns the exit status.
pub fn run(args: Args) -> Result<i32, Failure> {
    if args.overrides.iter().any(|o| o == "help") {
        print!("{}", bench_config::help_text());
        return Ok(exit::OK);
    }
    let resolved = load_config(&args)?;
    match &args.command {
        Some(Command::Sim { port, host }) => return serve_sim(&resolved.config, host, *port),
        Some(Command::Compare { runs, csv }) => {
            let table = bench_analysis::compare(runs, csv.as_deref())
                .map_err(|e| stage_failure("compare", e))?;
            print!("{table}");
            return Ok(exit::OK);
        }
        None => {}
    }
    if args.show_config {
        print!(
            "{}",
            serde_yaml::to_string(&manifest::redacted(&resolved.tree)).unwrap_or_default()
        );
        return Ok(exit::OK);
    }
    let run_dir = PathBuf::from(&resolved.config.run_dir);
    std::fs::create_dir_all(&run_dir)
        .map_err(|e| Failure::new(exit::FAILURE, format!("run_dir {}: {e}", run_dir.display())))?;
    let stages: &[Stage] = match args.stage {
        Stage::All => &[
            Stage::Dataset,
            Stage::Workload,
            Stage::Client,
            Stage::Analysis,
        ],
        s => std::slice::from_ref(match s {
            Stage::Dataset => &Stage::Dataset,
            Stage::Workload => &Stage::Workload,
            Stage::Client => &Stage::Client,
            _ => &Stage::Analysis,
        }),
    };
    for &stage in stages {
        let code = run_stage(stage, &resolved, &run_dir, args.quiet)?;
        if code == exit::INTERRUPTED && stage == Stage::Client && stages.contains(&Stage::Analysis)
        {
            // Ctrl-C during the client: every record is written, so summarize what finished
            // (analysis reads interrupted runs and says what it excluded), then exit 130. The
            // client's signal listener stays installed: a second Ctrl-C now exits at once.
            tracing::info!(
                "client interrupted: analysing the requests that finished (Ctrl-C again to skip)"
            );
            run_stage(Stage::Analysis, &resolved, &run_dir, args.quiet)?;
            return Ok(exit::INTERRUPTED);
        }
        if code != exit::OK {
            return Ok(code);
        }
    }
    Ok(exit::OK)
}

fn stage_name(s: Stage) -> &'static str {
    match s {
        Stage::All => "all",
        Stage::Dataset => "dataset",
        Stage::Workload => "workload",
        Stage::Client => "client",
        Stage::Analysis => "analysis",
    }
}

fn run_stage(stage: Stage, r: &Resolved, run_dir: &Path, quiet: bool) -> Result<i32, Failure> {
    let cfg: &Config = &r.config;
    let name = stage_name(stage);
    let started = SystemTime::now();
    let t0 = Instant::now();
    tracing::info!("{name}: starting (run_dir {})", run_dir.display());
    let mut code = exit::OK;
    if stage == Stage::Workload && cfg.workload.needs_dataset() {
        same_tokenizer_as_dataset(cfg, run_dir)?;
    }
    let out: StageOutput = match stage {
        Stage::Dataset => bench_dataset::run(cfg, run_dir).map_err(|e| stage_failure(name, e))?,
        Stage::Workload => bench_workload::run(cfg, run_dir).map_err(|e| stage_failure(name, e))?,
        Stage::Client => {
            let sim = if cfg.client.is_sim() {
                let bind = "127.0.0.1:0".parse().expect("valid address");
                let h = bench_sim::spawn_for_run(cfg, bind)
                    .map_err(|e| Failure::new(exit::FAILURE, e.to_string()))?;
                tracing::info!("client: simulated engine at {}", h.base_url());
                Some(h)
            } else {
                None
            };
            let base_url = sim
                .as_ref()
                .map(|h| h.base_url())
                .unwrap_or_else(|| cfg.client.endpoint.clone());
            let opts = bench_client::RunOptions {
                base_url,
                quiet,
                ..Default::default()
            };
            let res = bench_client::run(cfg, run_dir, &opts);
            if let Some(h) = sim {
                h.shutdown();
            }
            let outcome = res.map_err(|e| stage_failure(name, e))?;
            if outcome.interrupted {
                code = exit::INTERRUPTED;
            }
            outcome.output
        }
        Stage::Analysis => bench_analysis::run(cfg, run_dir).map_err(|e| stage_failure(name, e))?,
        Stage::All => unreachable!("expanded by the caller"),
    };
    let seconds = t0.elapsed().as_secs_f64();
    let record = StageRecord {
        stage: name.to_string(),
        started_at: manifest::rfc3339(started),
        seconds,
        outputs: out.outputs.clone(),
        stats: out.stats.clone(),
        config: serde_json::Value::Null,
    };
    let mut inputs = out.inputs.clone();
    if stage != Stage::Analysis && !cfg.tokenizer.starts_with("builtin:") {
        // a tokenizer.json decides every token count: checksum it like any input
        inputs.push(("tokenizer".into(), PathBuf::from(&cfg.tokenizer)));
    }
    manifest::record_stage(run_dir, &r.tree, cfg.seed, record, &inputs).map_err(|e| {
        Failure::new(
            exit::FAILURE,
            format!("writing manifest in {}: {e}", run_dir.display()),
        )
    })?;
    let stats: Vec<String> = out.stats.iter().map(|(k, v)| format!("{k}={v}")).collect();
    tracing::info!(
        "{name}: done in {seconds:.2}s -> {} {}",
        out.outputs.join(", "),
        stats.join(" ")
    );
    if let Some(text) = &out.display {
        println!("{text}");
    }
    Ok(code)
}

/// The workload stage matches prompts to lengths counted by the dataset stage: refuse to mix
/// tokenizers (the manifest says which one made dataset.jsonl).
fn same_tokenizer_as_dataset(cfg: &Config, run_dir: &Path) -> Result<(), Failure> {
    let Some(m) = manifest::read(run_dir) else {
        return Ok(());
    };
    let path = run_dir.join(bench_types::files::MANIFEST);
    let made_with = m
        .stages
        .iter()
        .find(|s| s.stage == "dataset")
        .and_then(|s| s.config.get("tokenizer"))
        .and_then(|t| t.as_str());
    match made_with {
        Some(t) if t != cfg.tokenizer => Err(Failure::new(
            exit::BAD_INPUT,
            format!(
                "`tokenizer`: {} was made with `{t}` ({}), this run uses `{}`: its prompt lengths \
                 would be wrong; run --stage dataset again or use --override tokenizer={t}",
                run_dir.join(bench_types::files::DATASET).display(),
                path.display(),
                cfg.tokenizer
            ),
        )),
        _ => Ok(()),
    }
}

fn serve_sim(cfg: &Config, host: &str, port: u16) -> Result<i32, Failure> {
    let bind = format!("{host}:{port}")
        .parse()
        .map_err(|e| Failure::new(exit::BAD_INPUT, format!("--host {host} --port {port}: {e}")))?;
    let h = bench_sim::spawn_for_run(cfg, bind)
        .map_err(|e| Failure::new(exit::FAILURE, e.to_string()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(exit::FAILURE, e.to_string()))?;
    rt.block_on(async {
        // The handlers are installed before the URL is printed: whoever reads the URL and then
        // sends SIGINT or SIGTERM gets a clean stop, never the default disposition.
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let kinds = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            );
            let (Ok(mut int), Ok(mut term)) = kinds else {
                return Err(Failure::new(
                    exit::FAILURE,
                    "could not install signal handlers",
                ));
            };
            announce(cfg, &h);
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let stop = tokio::signal::ctrl_c();
            announce(cfg, &h);
            let _ = stop.await;
        }
        Ok(())
    })?;
    h.shutdown();
    Ok(exit::OK)
}

fn announce(cfg: &Config, h: &bench_sim::SimHandle) {
    use std::io::Write;
    println!(
        "bench sim: serving model `{}` at {} (Ctrl-C stops)",
        cfg.sim.model,
        h.base_url()
    );
    let _ = std::io::stdout().flush();
}
