//! The stage driver: config, run directory, stages in order, manifest, exit codes.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use bench_config::{Config, LoadError, Resolved, Sources, TokenizerSpec};
use bench_types::manifest::{self, Stage, StageRecord, StageUpdate};
use bench_types::stage::exit;
use bench_types::{StageError, StageOutput};

use crate::cli::{Args, Command, K8sCommand, StageArg};
use crate::signals::Signals;

/// A failure that ends the process with `code`.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub(crate) fn new(code: i32, message: impl Into<String>) -> Self {
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
    for p in &args.config {
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
    }
    let files = config_files(args);
    // the flags first: an explicit --override of the same key wins
    let mut overrides = args.common.overrides();
    if let Some(Command::Serve {
        catalog,
        listen,
        max_parallel,
    }) = &args.command
    {
        let q = |v: &str| serde_json::to_string(v).expect("a string serializes");
        if let Some(c) = catalog {
            overrides.push(format!("catalog.url={}", q(c)));
        }
        if let Some(l) = listen {
            overrides.push(format!("serve.listen={}", q(l)));
        }
        if let Some(n) = max_parallel {
            overrides.push(format!("serve.max_parallel={n}"));
        }
    }
    overrides.extend(args.overrides.iter().cloned());
    if args.quiet {
        overrides.push("client.progress=false".into());
    }
    bench_config::load(&Sources {
        files,
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

/// The config files: those given, else ./config.yaml when present.
fn config_files(args: &Args) -> Vec<PathBuf> {
    if args.config.is_empty() {
        Some(PathBuf::from("config.yaml"))
            .filter(|p| p.is_file())
            .into_iter()
            .collect()
    } else {
        args.config.clone()
    }
}

/// When the process started (Unix ns): `client.start_at: +30s` counts from it.
static PROCESS_START: std::sync::OnceLock<i64> = std::sync::OnceLock::new();

/// Runs what the arguments ask for; returns the exit status.
pub fn run(args: Args) -> Result<i32, Failure> {
    PROCESS_START.get_or_init(bench_client::clock::unix_now_ns);
    if args.overrides.iter().any(|o| o == "help") {
        print!("{}", bench_config::help_text());
        return Ok(exit::OK);
    }
    if let Some(Command::Sweep {
        file,
        resume,
        dry_run,
    }) = &args.command
    {
        let signals = Signals::install().map_err(|e| Failure::new(exit::FAILURE, e))?;
        let sweep = crate::sweep::SweepArgs {
            file: file.clone(),
            overrides: args.overrides.clone(),
            resume: *resume,
            dry_run: *dry_run,
        };
        return crate::sweep::run(&sweep, &signals);
    }
    if let Some(Command::Merge {
        shards,
        out,
        force,
        clock_bound_ms,
    }) = &args.command
    {
        // object-store inputs, and the upload of the merged run, take the storage settings
        // from the config layers
        let storage = load_config(&args)?.config.storage;
        let signals = Signals::install().map_err(|e| Failure::new(exit::FAILURE, e))?;
        let m = crate::merge::MergeArgs {
            inputs: shards.clone(),
            out: out.clone(),
            force: *force,
            clock_bound_ms: *clock_bound_ms,
            storage: storage.clone(),
        };
        let code = merge_and_analyse(&m, args.quiet, &signals)?;
        // the merged run is a run: with storage.url set it is uploaded like one
        let upload = crate::storage::upload_run(&storage, out);
        return Ok(crate::storage::exit_status(code, &upload, &storage));
    }
    if let Some(Command::K8s {
        command:
            K8sCommand::Render {
                input,
                out,
                shards,
                image,
                namespace,
                storage,
                start_at,
                cpu,
                memory,
                wait_image,
            },
    }) = &args.command
    {
        return crate::k8s::run(&crate::k8s::RenderArgs {
            input: input.clone(),
            out: out.clone(),
            shards: *shards,
            image: image.clone(),
            namespace: namespace.clone(),
            storage: storage.clone(),
            start_at: start_at.clone(),
            cpu: cpu.clone(),
            memory: memory.clone(),
            wait_image: wait_image.clone(),
            overrides: args.overrides.clone(),
        });
    }
    let mut resolved = load_config(&args)?;
    let signals = Signals::install().map_err(|e| Failure::new(exit::FAILURE, e))?;
    match &args.command {
        Some(Command::Sim { port, host }) => {
            return serve_sim(&resolved.config, host, *port, &signals);
        }
        Some(Command::Compare { runs, csv }) => {
            let runs = crate::sweep::expand_runs(runs);
            let table = bench_analysis::compare(&runs, csv.as_deref())
                .map_err(|e| stage_failure("compare", e))?;
            print!("{table}");
            return Ok(exit::OK);
        }
        Some(Command::Runs { cmd }) => return crate::runs::run(&resolved.config, cmd),
        Some(Command::Chat) => return crate::chat::run(resolved, &signals, args.quiet),
        Some(Command::Serve { .. }) => {
            return crate::serve::run(resolved, &signals, config_files(&args), &args.overrides);
        }
        Some(Command::Push { run_dir, to }) => {
            return crate::storage::push(&resolved.config, run_dir, to.as_deref());
        }
        Some(Command::Pull { url, dir }) => {
            return crate::storage::pull(&resolved.config, url, dir);
        }
        Some(Command::Sweep { .. } | Command::Merge { .. } | Command::K8s { .. }) | None => {}
    }
    if args.show_config {
        print!(
            "{}",
            serde_yaml::to_string(&manifest::redacted(&resolved.tree)).unwrap_or_default()
        );
        return Ok(exit::OK);
    }
    for w in &resolved.warnings {
        tracing::warn!("config: {w}");
    }
    let stages = stages(&args.stage, &resolved.config);
    // the server first: a dead endpoint or a wrong model ends the run before any file is made
    let server = check_server(&mut resolved, &stages)?;
    preflight(&mut resolved, &stages)?;
    let run_dir = run_dir(&resolved, &stages, args.force)?;
    let identity = identity(&resolved, &run_dir)?;
    let registration = crate::catalog::Registration::start(
        &resolved.config,
        crate::catalog::run_entry(&resolved.config, &identity.id, &run_dir),
    );
    let ctx = StageCtx {
        resolved: &resolved,
        run_dir: &run_dir,
        quiet: args.quiet,
        signals: &signals,
        server,
        identity,
    };
    let outcome = run_stages(&ctx, &stages);
    // whatever the outcome: the directory holds what the run wrote
    let upload = crate::storage::upload_run(&resolved.config.storage, &run_dir);
    record_remote(&registration, &upload, &resolved.config.storage);
    finish_registration(&registration, &outcome, &run_dir);
    Ok(crate::storage::exit_status(
        outcome?,
        &upload,
        &resolved.config.storage,
    ))
}

/// Where the run's object-store copy is, and whether it is complete, in its catalog entry.
fn record_remote(
    registration: &crate::catalog::Registration,
    upload: &crate::storage::Upload,
    cfg: &bench_config::StorageConfig,
) {
    match upload {
        Some(Ok(r)) => registration.remote(&r.url, &r.status()),
        Some(Err(e)) => registration.remote(
            cfg.url.as_deref().unwrap_or_default(),
            &format!("failed: {e}"),
        ),
        None => {}
    }
}

/// The catalog entry's end, from the run's exit status.
fn finish_registration(
    registration: &crate::catalog::Registration,
    outcome: &Result<i32, Failure>,
    run_dir: &Path,
) {
    use bench_catalog::Status;
    match outcome {
        Ok(code) if *code == exit::OK => registration.finish(Status::Success, None, run_dir),
        Ok(code) if *code == exit::RUN_FAILED => registration.finish(
            Status::Failed,
            Some("thresholds or verdict failed"),
            run_dir,
        ),
        Ok(_) => registration.finish(Status::Interrupted, Some("interrupted"), run_dir),
        Err(f) => registration.finish(Status::Failed, Some(&f.message), run_dir),
    }
}

/// The run's identity: the id its directory already has (a later stage of the same run), else
/// a new one; name, description and tags from the config, or kept from the directory's
/// manifest when this invocation does not give them (`--stage analysis` of a named run).
fn identity(r: &Resolved, run_dir: &Path) -> Result<manifest::Identity, Failure> {
    let cfg = &r.config;
    let m = manifest::read(run_dir).map_err(|e| Failure::new(exit::BAD_INPUT, e.to_string()))?;
    let had = m.is_some();
    let keep = |key: &str| had && !r.is_explicit(key);
    let id = m
        .as_ref()
        .map(|m| m.id.clone())
        .filter(|id| !id.is_empty())
        .or_else(|| cfg.catalog.run_id.clone())
        .unwrap_or_else(manifest::new_id);
    let old = m.unwrap_or_else(|| manifest::Manifest::empty(cfg.seed));
    Ok(manifest::Identity {
        id,
        name: if keep("name") && !old.name.is_empty() {
            old.name
        } else {
            cfg.name.clone()
        },
        description: if keep("description") {
            old.description
        } else {
            cfg.description.clone()
        },
        tags: if keep("tags") {
            old.tags
        } else {
            cfg.tags.clone()
        },
    })
}

/// The stages in order; the exit status (3 for a failed verdict, 130 for an interrupted run).
fn run_stages(ctx: &StageCtx<'_>, stages: &[Stage]) -> Result<i32, Failure> {
    let mut code = exit::OK;
    for &stage in stages {
        let (interrupted, out) = run_stage(ctx, stage)?;
        if stage == Stage::Analysis
            && out.stats.get("verdict").and_then(|v| v.as_str()) == Some("failed")
        {
            code = exit::RUN_FAILED;
        }
        if interrupted {
            if stages.contains(&Stage::Analysis) {
                // Every record is written: summarize what finished (analysis reads interrupted
                // runs and says what it excluded). A signal now ends the process at once.
                tracing::info!(
                    "client interrupted: analysing the requests that finished (Ctrl-C again to skip)"
                );
                run_stage(ctx, Stage::Analysis)?;
            }
            return Ok(ctx.signals.interrupted_status());
        }
    }
    Ok(code)
}

/// The stages to run, in pipeline order. `all` leaves out the dataset stage when the workload
/// does not read prompts from a dataset (a Mooncake replay, generated prompts).
fn stages(args: &[StageArg], cfg: &Config) -> Vec<Stage> {
    let asked = |s: Stage| {
        args.iter().any(|a| match a {
            StageArg::All => s != Stage::Dataset || cfg.workload.needs_dataset(),
            StageArg::Dataset => s == Stage::Dataset,
            StageArg::Workload => s == Stage::Workload,
            StageArg::Client => s == Stage::Client,
            StageArg::Analysis => s == Stage::Analysis,
        })
    };
    Stage::ALL.into_iter().filter(|&s| asked(s)).collect()
}

/// The link to the last run started with the default run directory.
const LATEST: &str = "latest";

/// The run directory, created. Without an explicit `run_dir`, a run that starts by reading
/// another stage's output (`--stage analysis`, `--stage client`) continues the last run
/// (`output/latest`); otherwise every run gets a new directory and `output/latest` points to
/// it. A directory holding a finished run (its client stage done) is only written again with
/// `--force`; the analysis alone may always run again.
fn run_dir(r: &Resolved, stages: &[Stage], force: bool) -> Result<PathBuf, Failure> {
    let configured = PathBuf::from(&r.config.run_dir);
    let parent = configured
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let first_needed = if r.config.workload.needs_dataset() {
        Stage::Dataset
    } else {
        Stage::Workload
    };
    let continues = stages.first().is_some_and(|&s| s != first_needed);
    let dir = if !r.is_explicit("run_dir") && continues {
        let latest = parent.join(LATEST);
        let target = std::fs::canonicalize(&latest).map_err(|_| {
            Failure::new(
                exit::BAD_INPUT,
                format!(
                    "no run to continue: {} does not exist; give the run directory with --run-dir",
                    latest.display()
                ),
            )
        })?;
        tracing::info!("run_dir: continuing the last run, {}", target.display());
        target
    } else {
        configured
    };
    if !force && stages.iter().any(|s| *s != Stage::Analysis) {
        let m = manifest::read(&dir).map_err(|e| Failure::new(exit::BAD_INPUT, e.to_string()))?;
        if let Some(done) = m.as_ref().and_then(|m| m.stage(Stage::Client)) {
            return Err(Failure::new(
                exit::BAD_INPUT,
                format!(
                    "run_dir {} holds a finished run (client stage of {}): give another --run-dir, or --force to replace it",
                    dir.display(),
                    done.started_at
                ),
            ));
        }
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::new(exit::FAILURE, format!("run_dir {}: {e}", dir.display())))?;
    if !r.is_explicit("run_dir") && !continues {
        point_latest(&parent, &dir);
    }
    Ok(dir)
}

/// `<parent>/latest` -> `dir` (a relative symbolic link); a failure only costs the link.
fn point_latest(parent: &Path, dir: &Path) {
    let link = parent.join(LATEST);
    let Some(name) = dir.file_name() else {
        return;
    };
    let _ = std::fs::remove_file(&link);
    #[cfg(unix)]
    if let Err(e) = std::os::unix::fs::symlink(name, &link) {
        tracing::debug!("{}: {e}", link.display());
    }
}

/// The server's preflight (`client.preflight`) for a run whose client stage sends to a URL:
/// reachable (waiting up to `client.wait_ready_s`), serving the model (taken from its list when
/// `client.model` is not given), answering one probe the way `client.api` says. The in-process
/// simulated engine is checked when it has started ([`run_client`]).
pub(crate) fn check_server(
    r: &mut Resolved,
    stages: &[Stage],
) -> Result<Option<bench_client::preflight::ServerInfo>, Failure> {
    let c = &r.config.client;
    let bench_config::Endpoint::Url(url) = &c.endpoint else {
        return Ok(None);
    };
    if !stages.contains(&Stage::Client) {
        return Ok(None);
    }
    if !c.preflight {
        if !r.is_explicit("client.model") {
            return Err(Failure::new(
                exit::BAD_INPUT,
                "client.model: not given, and with client.preflight: false nothing asks the server which model it serves; set client.model (--model)",
            ));
        }
        return Ok(None);
    }
    let mut asked = c.clone();
    if !r.is_explicit("client.model") {
        asked.model = String::new();
    }
    let url = url.clone();
    let info =
        bench_client::preflight::check(&asked, &url).map_err(|e| stage_failure("preflight", e))?;
    if info.model != r.config.client.model {
        r.config.client.model = info.model.clone();
        r.tree["client"]["model"] = serde_json::Value::String(info.model.clone());
    }
    tracing::info!(
        "preflight: {url} serves `{}`{}{}",
        info.model,
        info.engine
            .as_deref()
            .map(|e| format!(
                " ({e}{})",
                info.version
                    .as_deref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default()
            ))
            .unwrap_or_default(),
        info.probe
            .as_ref()
            .map(|p| format!("; probe answered in {:.2} s", p.seconds))
            .unwrap_or_default()
    );
    Ok(Some(info))
}

/// Checks that fail fast, before any stage writes: the tokenizer loads (`auto` picks the served
/// model's local copy), and the API key's variable is set when the client will run.
fn preflight(r: &mut Resolved, stages: &[Stage]) -> Result<(), Failure> {
    if stages.iter().any(|s| *s != Stage::Analysis) {
        resolve_tokenizer(r)?;
    }
    if stages.contains(&Stage::Client)
        && let Some(var) = &r.config.client.api_key_env
        && std::env::var_os(var).is_none()
    {
        return Err(Failure::new(
            exit::BAD_INPUT,
            format!("client.api_key_env: environment variable {var} is not set"),
        ));
    }
    Ok(())
}

/// The tokenizer resolved (`auto` picks the served model's local copy) and loaded once, so a
/// bad one is an error before anything is sent.
pub(crate) fn resolve_tokenizer(r: &mut Resolved) -> Result<(), Failure> {
    if r.config.tokenizer == TokenizerSpec::Auto {
        let spec = auto_tokenizer(&r.config);
        r.tree["tokenizer"] = serde_json::Value::String(spec.to_string());
        r.config.tokenizer = spec;
    }
    bench_text::Tokenizer::open(&r.config.tokenizer)
        .map(drop)
        .map_err(|e| Failure::new(exit::BAD_INPUT, format!("`tokenizer`: {e}")))
}

/// `tokenizer: auto`: the served model's tokenizer.json when a local copy is found, else the
/// default builtin, with a line saying which.
fn auto_tokenizer(cfg: &Config) -> TokenizerSpec {
    let model = &cfg.client.model;
    match bench_text::find_local_tokenizer(model) {
        Some(p) => {
            tracing::info!(
                "tokenizer: auto: using {} (a local copy of `{model}`)",
                p.display()
            );
            TokenizerSpec::File(p)
        }
        None => {
            let d = TokenizerSpec::default();
            if cfg.client.endpoint != bench_config::Endpoint::Sim {
                tracing::warn!(
                    "tokenizer: auto: no local tokenizer for `{model}` (a directory of that name, or the Hugging Face cache); counting with {d}: set `tokenizer` to the model's tokenizer.json for counts that match the server's"
                );
            }
            d
        }
    }
}

/// What every stage runs with.
struct StageCtx<'a> {
    resolved: &'a Resolved,
    run_dir: &'a Path,
    quiet: bool,
    signals: &'a Signals,
    /// What the preflight learnt of the server (a URL endpoint).
    server: Option<bench_client::preflight::ServerInfo>,
    /// The run's id, name, description, tags.
    identity: manifest::Identity,
}

/// Runs one stage and records it in the manifest; returns whether a signal interrupted it, and
/// what the stage reported.
fn run_stage(ctx: &StageCtx<'_>, stage: Stage) -> Result<(bool, StageOutput), Failure> {
    let cfg: &Config = &ctx.resolved.config;
    let run_dir = ctx.run_dir;
    let name = stage.as_str();
    let started = SystemTime::now();
    let t0 = Instant::now();
    tracing::debug!("{name}: starting (run_dir {})", run_dir.display());
    if stage == Stage::Workload && cfg.workload.needs_dataset() {
        same_tokenizer_as_dataset(cfg, run_dir)?;
    }
    let mut interrupted = false;
    let out: StageOutput = match stage {
        Stage::Dataset => bench_dataset::run(cfg, run_dir).map_err(|e| stage_failure(name, e))?,
        Stage::Workload => bench_workload::run(cfg, run_dir).map_err(|e| stage_failure(name, e))?,
        Stage::Client => {
            let outcome = run_client(ctx)?;
            interrupted = outcome.interrupted;
            outcome.output
        }
        Stage::Analysis => bench_analysis::run(cfg, run_dir).map_err(|e| stage_failure(name, e))?,
    };
    let seconds = t0.elapsed().as_secs_f64();
    let mut inputs = out.inputs.clone();
    if stage != Stage::Analysis
        && let TokenizerSpec::File(p) = &cfg.tokenizer
    {
        // a tokenizer.json decides every token count: checksum it like any input
        inputs.push(("tokenizer".into(), p.clone()));
    }
    manifest::record_stage(
        run_dir,
        StageUpdate {
            config: &ctx.resolved.tree,
            seed: cfg.seed,
            record: StageRecord {
                stage,
                started_at: manifest::rfc3339(started),
                seconds,
                outputs: out.outputs.clone(),
                stats: out.stats.clone(),
                config: serde_json::Value::Null,
            },
            inputs: &inputs,
            identity: &ctx.identity,
        },
    )
    .map_err(|e| Failure::new(exit::FAILURE, format!("writing the manifest: {e}")))?;
    tracing::info!("{name}: done in {seconds:.2} s");
    let stats: Vec<String> = out.stats.iter().map(|(k, v)| format!("{k}={v}")).collect();
    tracing::debug!(
        "{name}: wrote {} ({})",
        out.outputs.join(", "),
        stats.join(" ")
    );
    if let Some(text) = &out.display {
        println!("{text}");
    }
    Ok((interrupted, out))
}

/// The client stage, against the in-process simulated engine or the configured endpoint, with
/// signals stopping it.
fn run_client(ctx: &StageCtx<'_>) -> Result<bench_client::ClientOutcome, Failure> {
    let cfg = &ctx.resolved.config;
    let sim = match &cfg.client.endpoint {
        bench_config::Endpoint::Sim => {
            let bind = "127.0.0.1:0".parse().expect("valid address");
            let h = bench_sim::spawn_for_run(cfg, bind)
                .map_err(|e| Failure::new(exit::FAILURE, e.to_string()))?;
            tracing::debug!("client: simulated engine at {}", h.base_url());
            Some(h)
        }
        bench_config::Endpoint::Url(_) => None,
    };
    let base_url = match &sim {
        Some(h) => h.base_url(),
        None => cfg.client.endpoint.to_string(),
    };
    let mut server = ctx.server.clone();
    if sim.is_some() && cfg.client.preflight {
        match bench_client::preflight::check(&cfg.client, &base_url) {
            Ok(info) => server = Some(info),
            Err(e) => {
                if let Some(h) = sim {
                    h.shutdown();
                }
                return Err(stage_failure("preflight", e));
            }
        }
    }
    let opts = bench_client::RunOptions {
        base_url,
        quiet: ctx.quiet,
        stop: bench_client::StopHandle::new(),
        process_start_unix_ns: PROCESS_START.get().copied(),
    };
    let res = ctx
        .signals
        .during_run(&opts.stop, || bench_client::run(cfg, ctx.run_dir, &opts));
    if let Some(h) = sim {
        h.shutdown();
    }
    let mut outcome = res.map_err(|e| stage_failure("client", e))?;
    if let Some(info) = server {
        outcome.output.stat(
            "server",
            serde_json::to_value(&info).unwrap_or(serde_json::Value::Null),
        );
    }
    Ok(outcome)
}

/// The workload stage matches prompts to lengths counted by the dataset stage: refuse to mix
/// tokenizers (the manifest says which one made dataset.jsonl).
fn same_tokenizer_as_dataset(cfg: &Config, run_dir: &Path) -> Result<(), Failure> {
    let m = manifest::read(run_dir).map_err(|e| Failure::new(exit::BAD_INPUT, e.to_string()))?;
    let Some(m) = m else {
        return Ok(());
    };
    let made_with = m
        .stage(Stage::Dataset)
        .and_then(|s| s.config.get("tokenizer"))
        .and_then(|t| t.as_str());
    let ours = cfg.tokenizer.to_string();
    match made_with {
        Some(t) if t != ours => Err(Failure::new(
            exit::BAD_INPUT,
            format!(
                "`tokenizer`: {} was made with `{t}` ({}), this run uses `{ours}`: its prompt lengths \
                 would be wrong; run --stage dataset again or use --override tokenizer={t}",
                run_dir.join(bench_types::files::DATASET).display(),
                run_dir.join(bench_types::files::MANIFEST).display(),
            ),
        )),
        _ => Ok(()),
    }
}

/// `bench sim`: serves the simulated engine until SIGINT or SIGTERM, then stops cleanly (0).
fn serve_sim(cfg: &Config, host: &str, port: u16, signals: &Signals) -> Result<i32, Failure> {
    use std::io::Write;
    let bind = format!("{host}:{port}")
        .parse()
        .map_err(|e| Failure::new(exit::BAD_INPUT, format!("--host {host} --port {port}: {e}")))?;
    let h = bench_sim::spawn_for_run(cfg, bind)
        .map_err(|e| Failure::new(exit::FAILURE, e.to_string()))?;
    // Signals wake the waiter from now on: whoever reads the URL and then sends SIGINT or
    // SIGTERM gets a clean stop.
    let stop = signals.catch();
    println!(
        "bench sim: serving model `{}` at {} (Ctrl-C stops)",
        cfg.sim.model,
        h.base_url()
    );
    let _ = std::io::stdout().flush();
    let _ = stop.recv();
    h.shutdown();
    Ok(exit::OK)
}

/// `bench merge`: the shards into one run directory, then its analysis.
fn merge_and_analyse(
    m: &crate::merge::MergeArgs,
    quiet: bool,
    signals: &Signals,
) -> Result<i32, Failure> {
    let merged = crate::merge::merge(m)?;
    if let Some(w) = &merged.clock_warning {
        tracing::warn!("merge: {w}");
    }
    let config: Config = serde_json::from_value(merged.tree.clone()).map_err(|e| {
        Failure::new(
            exit::BAD_INPUT,
            format!("the shards' config (in their manifest.json) does not load: {e}"),
        )
    })?;
    let shards = merged.record.stats["shards"].as_array().map_or(0, Vec::len);
    tracing::info!(
        "merge: {} shards, {} requests ({} ok, {} not sent{}) -> {}",
        shards,
        merged.by_status.total(),
        merged.by_status.get(bench_types::RequestStatus::Ok),
        merged.by_status.get(bench_types::RequestStatus::NotSent),
        if merged.filled.is_empty() {
            String::new()
        } else {
            format!(
                "; not recorded by their shard: {}",
                merged
                    .filled
                    .iter()
                    .map(|(s, k)| format!("shard {s}: {k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        m.out.display()
    );
    let resolved = Resolved {
        config,
        tree: merged.tree,
        explicit: Vec::new(),
        warnings: Vec::new(),
    };
    let identity = identity(&resolved, &m.out)?;
    let registration = crate::catalog::Registration::start(
        &resolved.config,
        crate::catalog::run_entry(&resolved.config, &identity.id, &m.out),
    );
    let ctx = StageCtx {
        resolved: &resolved,
        run_dir: &m.out,
        quiet,
        signals,
        server: None,
        identity,
    };
    let outcome = run_stage(&ctx, Stage::Analysis).map(|(_, out)| {
        if out.stats.get("verdict").and_then(|v| v.as_str()) == Some("failed") {
            exit::RUN_FAILED
        } else {
            exit::OK
        }
    });
    finish_registration(&registration, &outcome, &m.out);
    outcome
}
