//! `bench sweep EXPERIMENT.yaml`: many runs of one experiment, each an ordinary run directory
//! (`<exp_dir>/cells/<cell>/r<k>/`), then what lies across them: experiment.json, cells.csv and
//! a table.
//!
//! Each run is this binary again in a child process of its own (its own process group, signals
//! forwarded): a run that crashes, fails or finds its server down is recorded with its status
//! and error and the sweep goes on. experiment.json is rewritten after every run, so an
//! interrupted sweep leaves every finished run and a state `--resume` continues from.

pub(crate) mod file;
mod outputs;
pub(crate) mod plan;
mod search;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bench_types::stage::exit;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::driver::Failure;
use crate::signals::Signals;

pub use file::Experiment;

/// How one run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Exit 0.
    Ok,
    /// Exit 3: the run finished, its verdict failed (errors, thresholds).
    Failed,
    /// Exit 1: the server was down, or the run could not start.
    Error,
    /// Exit 2: the run's config or input was refused.
    ConfigError,
    /// Killed by a signal, or an exit status bench never gives: a crash.
    Crashed,
    /// Stopped by Ctrl-C or SIGTERM.
    Interrupted,
    /// Not run yet (the sweep was stopped before it).
    Pending,
}

impl RunStatus {
    /// Its name in experiment.json and cells.csv.
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Failed => "failed",
            RunStatus::Error => "error",
            RunStatus::ConfigError => "config_error",
            RunStatus::Crashed => "crashed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Pending => "pending",
        }
    }
}

/// One run in experiment.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// The cell's id.
    pub cell: String,
    /// The cell's values.
    pub params: serde_json::Map<String, Value>,
    /// Repeat number, from 1.
    pub repeat: u32,
    /// Run directory, relative to the experiment's directory.
    pub run_dir: String,
    /// How it ended.
    pub status: RunStatus,
    /// The child's exit status.
    pub exit_code: Option<i32>,
    /// The error line of a run that did not succeed.
    pub error: Option<String>,
    /// Its seed.
    pub seed: u64,
    /// sha256 of its resolved config.
    pub config_hash: String,
    /// Wall seconds the run took.
    pub seconds: Option<f64>,
    /// Headline figures from its summary.json.
    pub headline: serde_json::Map<String, Value>,
    /// The run whose dataset (and workload, when that is identical too) this one reused (same
    /// resolved sections, tokenizer and seed), relative to the experiment's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_from: Option<String>,
}

/// The headline figures kept in experiment.json for each run.
const HEADLINE: [&str; 13] = [
    "slo.attainment",
    "verdict.outcome",
    "request_throughput",
    "output_token_throughput",
    "offered_rate",
    "error_rate",
    "ttft_ms.p50",
    "ttft_ms.p99",
    "tpot_ms.p50",
    "itl_ms.p99",
    "e2el_ms.p50",
    "workload_unit",
    "workload_unit_throughput",
];

/// The last line of a run's log that says what went wrong.
fn error_line(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines
        .iter()
        .rev()
        .find(|l| l.starts_with("error:") || l.starts_with("FAILED"))
        .or(lines.last())
        .map(|l| l.trim().chars().take(500).collect())
}

fn status_of(code: Option<i32>) -> RunStatus {
    match code {
        Some(0) => RunStatus::Ok,
        Some(3) => RunStatus::Failed,
        Some(1) => RunStatus::Error,
        Some(2) => RunStatus::ConfigError,
        Some(130 | 143 | 129) => RunStatus::Interrupted,
        _ => RunStatus::Crashed,
    }
}

/// The child that is running now, for the signal forwarder.
pub(crate) type Current = Arc<Mutex<Option<u32>>>;

/// Forwards every signal the sweep gets to the running child, and remembers that one came.
fn forward_signals(signals: &Signals, current: Current) -> Arc<std::sync::atomic::AtomicI32> {
    let got = Arc::new(std::sync::atomic::AtomicI32::new(0));
    let rx = signals.catch();
    let g = got.clone();
    std::thread::spawn(move || {
        while let Ok(signo) = rx.recv() {
            let _ = g.compare_exchange(
                0,
                signo,
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
            );
            let pid = *current.lock().unwrap_or_else(|e| e.into_inner());
            if let (Some(pid), Some(sig)) = (
                pid.and_then(|p| rustix::process::Pid::from_raw(p as i32)),
                rustix::process::Signal::from_named_raw(signo),
            ) {
                let _ = rustix::process::kill_process(pid, sig);
            }
        }
    });
    got
}

/// Options of `bench sweep`.
#[derive(Debug)]
pub struct SweepArgs {
    /// The experiment file.
    pub file: PathBuf,
    /// Overrides from the command line (over the file's, under the axes').
    pub overrides: Vec<String>,
    /// Skip runs already done with the same config.
    pub resume: bool,
    /// Print the plan only.
    pub dry_run: bool,
}

/// Runs the sweep; returns the exit status.
pub fn run(args: &SweepArgs, signals: &Signals) -> Result<i32, Failure> {
    let mut e = file::read(&args.file).map_err(|errs| bad_experiment(&errs))?;
    let planned = plan::plan(&e, &args.overrides).map_err(|errs| bad_experiment(&errs))?;
    if args.dry_run {
        print!("{}", outputs::plan_text(&e, &planned));
        return Ok(exit::OK);
    }
    std::fs::create_dir_all(&e.exp_dir).map_err(|err| {
        Failure::new(
            exit::FAILURE,
            format!("exp_dir {}: {err}", e.exp_dir.display()),
        )
    })?;
    let state_path = e.exp_dir.join("experiment.json");
    let previous = if args.resume {
        outputs::read_runs(&state_path)
    } else {
        Vec::new()
    };
    // the file's own id (bench serve sets one), else the one --resume continues, else a new one
    if e.id.is_empty() {
        e.id = args
            .resume
            .then(|| outputs::read_id(&state_path))
            .flatten()
            .unwrap_or_else(bench_types::manifest::new_id);
    }
    let registration = register(&e, &args.overrides);
    let code = sweep(args, &e, &planned, &state_path, &previous, signals);
    use bench_catalog::Status;
    match &code {
        Ok(0) => registration.finish(Status::Success, None, &e.exp_dir),
        Ok(3) => registration.finish(
            Status::Failed,
            Some("some runs did not succeed"),
            &e.exp_dir,
        ),
        Ok(_) => registration.finish(Status::Interrupted, Some("interrupted"), &e.exp_dir),
        Err(f) => registration.finish(Status::Failed, Some(&f.message), &e.exp_dir),
    }
    code
}

/// Registers the experiment in the catalog of its base config (with the file's and the
/// command line's overrides).
fn register(e: &Experiment, cli: &[String]) -> crate::catalog::Registration {
    let cfg = bench_config::load(&bench_config::Sources {
        files: e.base.iter().cloned().collect(),
        overrides: e.overrides.iter().chain(cli).cloned().collect(),
        env: true,
    })
    .map(|r| r.config)
    .unwrap_or_default();
    let mut entry = crate::catalog::run_entry(&cfg, &e.id, &e.exp_dir);
    entry.kind = bench_catalog::Kind::Experiment;
    entry.name = e.name.clone();
    entry.description = e.description.clone();
    entry.tags = e.tags.clone();
    entry.experiment_id = None;
    (
        entry.dataset_type,
        entry.workload_type,
        entry.concurrency,
        entry.rate,
    ) = (None, None, None, None);
    crate::catalog::Registration::start(&cfg, entry)
}

fn sweep(
    args: &SweepArgs,
    e: &Experiment,
    planned: &plan::Plan,
    state_path: &Path,
    previous: &[RunRecord],
    signals: &Signals,
) -> Result<i32, Failure> {
    let plan = &planned.runs;
    let mut records: Vec<RunRecord> = plan.iter().map(|p| record(e, p)).collect();
    let current: Current = Arc::new(Mutex::new(None));
    let got = forward_signals(signals, current.clone());
    let exe = std::env::current_exe()
        .map_err(|err| Failure::new(exit::FAILURE, format!("finding the bench binary: {err}")))?;
    let t0 = Instant::now();
    // stage key -> a finished run's directory whose files can be reused
    let mut made: std::collections::HashMap<String, PathBuf> = Default::default();
    if let Some(s) = &e.search {
        let ctx = search::Ctx {
            exe: &exe,
            e,
            s,
            resolver: &planned.resolver,
            current: &current,
            got: &got,
            state_path,
            previous,
        };
        let code = search::run(&ctx, &planned.cells, t0)?;
        return Ok(upload(e, &planned.resolver, code));
    }
    let mut ran_one = false;
    let n = plan.len();
    for (i, p) in plan.iter().enumerate() {
        if got.load(std::sync::atomic::Ordering::SeqCst) != 0 {
            break;
        }
        let done = previous.iter().find(|r| {
            r.run_dir == records[i].run_dir
                && r.config_hash == p.hash
                && matches!(r.status, RunStatus::Ok | RunStatus::Failed)
        });
        if let Some(r) = done
            && p.run_dir.join(bench_types::files::SUMMARY).is_file()
        {
            records[i] = r.clone();
            eprintln!(
                "[{}/{n}] {} r{}: done before, kept ({})",
                i + 1,
                p.cell,
                p.repeat,
                r.status.name()
            );
            continue;
        }
        if ran_one && e.cooldown_s > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(e.cooldown_s));
            if got.load(std::sync::atomic::Ordering::SeqCst) != 0 {
                break;
            }
        }
        ran_one = true;
        let (ds_key, wl_key) = stage_keys(&p.tree);
        let (ds, wl) = (bench_types::files::DATASET, bench_types::files::WORKLOAD);
        let (reuse, from) = match (made.get(&wl_key), made.get(&ds_key)) {
            (Some(f), _) if copy_stages(f, &p.run_dir, &[ds, wl]) => (Reuse::Workload, Some(f)),
            (_, Some(f)) if copy_stages(f, &p.run_dir, &[ds]) => (Reuse::Dataset, Some(f)),
            _ => (Reuse::None, None),
        };
        let mut rec = records[i].clone();
        rec.reused_from = from.map(|f| {
            f.strip_prefix(&e.exp_dir)
                .unwrap_or(f)
                .display()
                .to_string()
        });
        records[i] = run_one(&exe, e, p, &current, rec, reuse)?;
        if matches!(records[i].status, RunStatus::Ok | RunStatus::Failed) {
            made.entry(wl_key).or_insert_with(|| p.run_dir.clone());
            if p.run_dir.join(ds).is_file() {
                made.entry(ds_key).or_insert_with(|| p.run_dir.clone());
            }
        }
        let r = &records[i];
        eprintln!(
            "[{}/{n}] {} r{}: {}{} ({:.1} s)",
            i + 1,
            p.cell,
            p.repeat,
            r.status.name(),
            r.error
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default(),
            r.seconds.unwrap_or(0.0)
        );
        outputs::write_state(e, &records, state_path)?;
    }
    outputs::write_state(e, &records, state_path)?;
    outputs::write_cells_csv(e, &records)?;
    outputs::write_report(e, &records);
    print!("{}", outputs::table(e, &records, t0.elapsed()));
    let interrupted = got.load(std::sync::atomic::Ordering::SeqCst);
    if interrupted != 0 {
        eprintln!(
            "bench sweep: interrupted; finished runs are kept: `bench sweep {} --resume` continues",
            args.file.display()
        );
        return Ok(upload(e, &planned.resolver, 128 + interrupted));
    }
    let all_ok = records.iter().all(|r| r.status == RunStatus::Ok);
    let code = if all_ok { exit::OK } else { exit::RUN_FAILED };
    Ok(upload(e, &planned.resolver, code))
}

/// The experiment's own files to `storage.url` (when set), its runs having pushed
/// themselves; the exit status after it.
fn upload(e: &Experiment, resolver: &plan::Resolver, code: i32) -> i32 {
    let storage = resolver.storage();
    let up = crate::storage::upload_experiment(&storage, &e.exp_dir);
    crate::storage::exit_status(code, &up, &storage)
}

/// A run's record before it runs.
fn record(e: &Experiment, p: &plan::Planned) -> RunRecord {
    RunRecord {
        cell: p.cell.clone(),
        params: p.params.iter().cloned().collect(),
        repeat: p.repeat,
        run_dir: p
            .run_dir
            .strip_prefix(&e.exp_dir)
            .unwrap_or(&p.run_dir)
            .display()
            .to_string(),
        status: RunStatus::Pending,
        exit_code: None,
        error: None,
        seed: p.seed,
        config_hash: p.hash.clone(),
        seconds: None,
        headline: Default::default(),
        reused_from: None,
    }
}

/// The keys of what the dataset stage makes (its section, the tokenizer, the seed) and of
/// what the workload stage makes (those and the workload section): nothing else reaches them,
/// so runs with the same key have the same file.
fn stage_keys(tree: &Value) -> (String, String) {
    use sha2::Digest;
    let hash = |v: Value| format!("{:x}", sha2::Sha256::digest(v.to_string().as_bytes()));
    let ds = hash(serde_json::json!({
        "dataset": tree["dataset"],
        "datasets": tree["datasets"],
        "tokenizer": tree["tokenizer"],
        "seed": tree["seed"],
    }));
    let wl = hash(serde_json::json!({"dataset": ds, "workload": tree["workload"]}));
    (ds, wl)
}

/// What a run reuses of an earlier identical one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reuse {
    /// Nothing: every stage runs.
    None,
    /// dataset.jsonl: the run starts at the workload stage.
    Dataset,
    /// dataset.jsonl and workload.jsonl: the run starts at the client stage.
    Workload,
}

/// Copies `files` (and the manifest that records how they were made) of `from` into `to`;
/// false when `from` lacks the last of them.
fn copy_stages(from: &Path, to: &Path, files: &[&str]) -> bool {
    let Some(last) = files.last() else {
        return false;
    };
    if !from.join(last).is_file() || std::fs::create_dir_all(to).is_err() {
        return false;
    }
    files
        .iter()
        .chain([&bench_types::files::MANIFEST])
        .all(|f| !from.join(f).is_file() || std::fs::copy(from.join(f), to.join(f)).is_ok())
}

fn bad_experiment(errs: &[String]) -> Failure {
    let n = errs.iter().map(|e| e.lines().count()).sum::<usize>();
    Failure::new(
        exit::BAD_INPUT,
        format!(
            "invalid experiment ({n} problem{}):\n{}",
            if n == 1 { "" } else { "s" },
            errs.join("\n")
        ),
    )
}

/// One run: the pipeline in a child process, its output in `<run_dir>/bench.log`.
pub(crate) fn run_one(
    exe: &Path,
    e: &Experiment,
    p: &plan::Planned,
    current: &Current,
    mut rec: RunRecord,
    reused: Reuse,
) -> Result<RunRecord, Failure> {
    std::fs::create_dir_all(&p.run_dir)
        .map_err(|err| Failure::new(exit::FAILURE, format!("{}: {err}", p.run_dir.display())))?;
    let log_path = p.run_dir.join("bench.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|err| Failure::new(exit::FAILURE, format!("{}: {err}", log_path.display())))?;
    let log2 = log
        .try_clone()
        .map_err(|err| Failure::new(exit::FAILURE, format!("{}: {err}", log_path.display())))?;
    let mut cmd = Command::new(exe);
    if let Some(b) = &e.base {
        cmd.arg("--config").arg(b);
    }
    for o in &p.overrides {
        cmd.arg("--override").arg(o);
    }
    if !e.id.is_empty() {
        cmd.arg("--override")
            .arg(format!("catalog.experiment_id={}", e.id));
    }
    let storage: bench_config::StorageConfig =
        serde_json::from_value(p.tree["storage"].clone()).unwrap_or_default();
    if let Some(url) = crate::storage::child_url(&storage, &e.exp_dir, &p.run_dir) {
        // the run lands at its place in the experiment's copy
        cmd.arg("--override")
            .arg(format!("storage.url={}", Value::String(url)));
    }
    match reused {
        // the files are already there, copied from an identical run
        Reuse::Workload => {
            cmd.args(["--stage", "client,analysis"]);
        }
        Reuse::Dataset => {
            cmd.args(["--stage", "workload,client,analysis"]);
        }
        Reuse::None => {}
    }
    // a run directory left by an interrupted or changed run is replaced
    cmd.args(["--force", "-q"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2));
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // its own process group: a Ctrl-C reaches the sweep, which forwards it once
        cmd.process_group(0);
    }
    let t0 = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|err| Failure::new(exit::FAILURE, format!("starting {}: {err}", exe.display())))?;
    *current.lock().unwrap_or_else(|e| e.into_inner()) = Some(child.id());
    let status = child.wait();
    *current.lock().unwrap_or_else(|e| e.into_inner()) = None;
    let code = match status {
        Ok(s) => s.code(),
        Err(_) => None,
    };
    rec.exit_code = code;
    rec.status = status_of(code);
    rec.seconds = Some((t0.elapsed().as_secs_f64() * 1000.0).round() / 1000.0);
    if rec.status != RunStatus::Ok {
        rec.error = error_line(&log_path);
    } else {
        rec.error = None;
    }
    let summary = p.run_dir.join(bench_types::files::SUMMARY);
    rec.headline = Default::default();
    if let Ok(text) = std::fs::read_to_string(&summary)
        && let Ok(v) = serde_json::from_str::<Value>(&text)
    {
        for k in HEADLINE {
            if let Some(x) = bench_analysis::csv::lookup(&v, k) {
                rec.headline.insert(k.to_string(), x.clone());
            }
        }
    }
    let _ = std::io::stderr().flush();
    Ok(rec)
}

/// `bench compare` arguments with every experiment directory replaced by its runs.
pub fn expand_runs(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in dirs {
        let state = d.join("experiment.json");
        if state.is_file() {
            let runs = outputs::read_runs(&state);
            out.extend(
                runs.into_iter()
                    .map(|r| d.join(r.run_dir))
                    .filter(|p| p.join(bench_types::files::SUMMARY).is_file()),
            );
        } else {
            out.push(d.clone());
        }
    }
    out
}
