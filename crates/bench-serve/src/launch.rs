//! `POST /benchmark/run-workflow`: Bud's wizard fields (accumulated over step-wise posts, or all
//! in one) or a full bench config, turned into a `bench` child process. Runs wait for a free
//! slot (`serve.max_parallel`) and each is the `bench` binary in its own process, so a run
//! cannot disturb the service or another run, and its dispatch timing is its own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use bench_catalog::Status;
use serde::Deserialize;
use serde_json::Value;

use crate::{ApiError, State};

/// The fields a post may carry: Bud's, then bench's own. Unknown fields are refused.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowPost {
    // Bud's wizard
    pub name: Option<String>,
    pub tags: Option<Vec<String>>,
    pub description: Option<String>,
    pub concurrent_requests: Option<u32>,
    pub eval_with: Option<String>,
    pub max_input_tokens: Option<u32>,
    pub max_output_tokens: Option<u32>,
    #[serde(alias = "datset_ids")]
    pub dataset_ids: Option<Vec<String>>,
    /// bench's own: relative weights of `dataset_ids` in the mix (default: equal).
    pub dataset_weights: Option<Vec<f64>>,
    pub workflow_id: Option<String>,
    pub workflow_total_steps: Option<u32>,
    pub step_number: Option<u32>,
    pub trigger_workflow: Option<bool>,
    pub cluster_id: Option<String>,
    pub nodes: Option<Value>,
    pub model_id: Option<String>,
    pub credential_id: Option<String>,
    pub user_confirmation: Option<bool>,
    pub run_as_simulation: Option<bool>,
    // bench's own
    /// `sim` (default) or the server's base URL.
    pub endpoint: Option<String>,
    /// The served model (default: the only one the server lists).
    pub model: Option<String>,
    /// openai-chat, openai-completions, tgi.
    pub api: Option<String>,
    /// Requests in the run (default: 5 per concurrent request, at least 20).
    pub num_requests: Option<u64>,
    /// Name of the environment variable (of the service) holding the endpoint's API key.
    pub api_key_env: Option<String>,
    /// More config as `key=value` overrides.
    pub overrides: Option<Vec<String>>,
    /// A whole bench config (YAML's JSON form) instead of Bud's fields.
    pub config: Option<Value>,
    /// An experiment file (docs/EXPERIMENTS.md, as JSON) to run as a sweep instead of one run.
    pub experiment: Option<Value>,
}

impl WorkflowPost {
    /// This post's fields over `prev`'s (a step-wise wizard).
    pub fn over(self, prev: WorkflowPost) -> WorkflowPost {
        macro_rules! pick {
            ($($f:ident),*) => { WorkflowPost { $($f: self.$f.or(prev.$f)),* } };
        }
        pick!(
            name,
            tags,
            description,
            concurrent_requests,
            eval_with,
            max_input_tokens,
            max_output_tokens,
            dataset_ids,
            dataset_weights,
            workflow_id,
            workflow_total_steps,
            step_number,
            trigger_workflow,
            cluster_id,
            nodes,
            model_id,
            credential_id,
            user_confirmation,
            run_as_simulation,
            endpoint,
            model,
            api,
            num_requests,
            api_key_env,
            overrides,
            config,
            experiment
        )
    }
}

/// Config keys a request may not set: where files go, the catalog, the service itself.
const RESERVED: [&str; 5] = ["run_dir", "catalog", "serve", "storage", "base"];

fn bad(field: &str, msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(Some(field), msg)
}

/// A string value that would reach outside the service's roots: an absolute path or one that
/// climbs with `..`.
fn escapes(v: &str) -> bool {
    let p = Path::new(v);
    p.is_absolute() || p.components().any(|c| c == std::path::Component::ParentDir)
}

/// The prefix of the service's environment variables a request may name as an endpoint's API
/// key (`api_key_env`): a request must not make a run send another of the service's secrets
/// (its storage credentials, say) to an endpoint of the request's choosing.
pub const KEY_PREFIX: &str = "BENCH_KEY_";

fn check_key_env(field: &str, name: &str) -> Result<(), ApiError> {
    if name.starts_with(KEY_PREFIX) {
        Ok(())
    } else {
        Err(bad(
            field,
            format!("`{name}`: a request may only name the service's {KEY_PREFIX}* variables"),
        ))
    }
}

fn check_value(field: &str, v: &Value) -> Result<(), ApiError> {
    match v {
        Value::String(s) if escapes(s) => Err(bad(
            field,
            format!("`{s}`: paths must stay inside the service's roots (no absolute paths, no ..)"),
        )),
        // `${VAR}` would be filled in from the service's environment
        Value::String(s) if s.contains("${") => Err(bad(
            field,
            format!(
                "`{s}`: no `${{...}}` templates in a request (they read the service's environment)"
            ),
        )),
        Value::Array(a) => a.iter().try_for_each(|x| check_value(field, x)),
        Value::Object(o) => o.iter().try_for_each(|(k, x)| {
            let f = format!("{field}.{k}");
            if k.ends_with("api_key_env")
                && let Some(name) = x.as_str()
            {
                check_key_env(&f, name)?;
            }
            check_value(&f, x)
        }),
        _ => Ok(()),
    }
}

/// What a triggered workflow runs: the config files and the overrides of the child.
#[derive(Debug)]
pub struct Plan {
    pub id: String,
    pub name: String,
    pub run_dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub overrides: Vec<String>,
    /// A request's own config, written into the run directory before the run.
    pub config_text: Option<String>,
    /// An experiment: its file (written before it runs) and text; the child is `bench sweep`.
    pub experiment: Option<(PathBuf, String)>,
}

/// The child's config from the accumulated fields.
pub fn plan(state: &State, w: &WorkflowPost) -> Result<Plan, ApiError> {
    let name = w.name.clone().ok_or_else(|| bad("name", "is required"))?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(bad(
            "name",
            format!("`{name}`: letters, digits, `-`, `_` or `.`"),
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let run_dir = state.opts.runs_dir.join(format!("{name}-{}", &id[..8]));
    let q = |s: &str| serde_json::to_string(s).expect("a string serializes");
    let mut o: Vec<String> = state.opts.base_overrides.clone();
    let mut files = state.opts.config_files.clone();
    let mut config_text = None;
    if let Some(x) = &w.experiment {
        let experiment = experiment_file(state, x, &name, &id, &run_dir)?;
        return Ok(Plan {
            id,
            name,
            run_dir,
            files,
            overrides: o,
            config_text,
            experiment: Some(experiment),
        });
    }
    if let Some(cfg) = &w.config {
        if !cfg.is_object() {
            return Err(bad("config", "must be an object (a bench config)"));
        }
        for k in RESERVED {
            if cfg.get(k).is_some() {
                return Err(bad(
                    &format!("config.{k}"),
                    "is set by the service, not by a request",
                ));
            }
        }
        check_value("config", cfg)?;
        config_text = Some(serde_yaml::to_string(cfg).map_err(|e| bad("config", e.to_string()))?);
        files.push(run_dir.join("request-config.yaml"));
    } else {
        match w.eval_with.as_deref() {
            Some("configuration") | None => {
                o.push("dataset.type=random".into());
                if let Some(n) = w.max_input_tokens {
                    o.push(format!("dataset.random.input_tokens={n}"));
                }
                if let Some(n) = w.max_output_tokens {
                    o.push(format!("dataset.random.output_tokens={n}"));
                }
            }
            Some("dataset") => {
                let ids = w.dataset_ids.clone().unwrap_or_default();
                let dir = &state.opts.datasets_dir;
                let file = |ds: &str| {
                    crate::dataset_file(dir, ds).ok_or_else(|| {
                        bad(
                            "dataset_ids",
                            format!(
                                "unknown dataset `{ds}`: one of {}",
                                crate::dataset_ids(dir).join(", ")
                            ),
                        )
                    })
                };
                match ids.as_slice() {
                    [] => {
                        return Err(bad(
                            "dataset_ids",
                            format!(
                                "names no dataset (eval_with: dataset): one or more of {}",
                                crate::dataset_ids(dir).join(", ")
                            ),
                        ));
                    }
                    [ds] if w.dataset_weights.is_none() => files.push(file(ds)?),
                    _ => {
                        let weights = w.dataset_weights.clone().unwrap_or(vec![1.0; ids.len()]);
                        let mut parts = Vec::with_capacity(ids.len());
                        for ds in &ids {
                            parts.push((ds.as_str(), file(ds)?));
                        }
                        config_text = Some(dataset_mix(&parts, &weights)?);
                        files.push(run_dir.join("request-config.yaml"));
                    }
                }
            }
            Some(x) => {
                return Err(bad("eval_with", format!("`{x}`: configuration or dataset")));
            }
        }
        if let Some(c) = w.concurrent_requests {
            if c == 0 {
                return Err(bad("concurrent_requests", "must be at least 1"));
            }
            o.push("workload.type=concurrency".into());
            o.push(format!("workload.concurrency.concurrency={c}"));
            o.push(format!(
                "workload.num_requests={}",
                w.num_requests.unwrap_or((u64::from(c) * 5).max(20))
            ));
        } else if let Some(n) = w.num_requests {
            o.push(format!("workload.num_requests={n}"));
        }
    }
    if let Some(e) = &w.endpoint {
        if e != "sim" && !(e.starts_with("http://") || e.starts_with("https://")) {
            return Err(bad(
                "endpoint",
                format!("`{e}`: `sim` or an http(s):// URL"),
            ));
        }
        o.push(format!("client.endpoint={}", q(e)));
    }
    if let Some(m) = &w.model {
        o.push(format!("client.model={}", q(m)));
    }
    if let Some(a) = &w.api {
        o.push(format!("client.api={}", q(a)));
    }
    if let Some(k) = &w.api_key_env {
        check_key_env("api_key_env", k)?;
        o.push(format!("client.api_key_env={}", q(k)));
    }
    for (i, ov) in w.overrides.iter().flatten().enumerate() {
        let field = format!("overrides[{i}]");
        let Some((k, v)) = ov.split_once('=') else {
            return Err(bad(&field, format!("`{ov}` is not key=value")));
        };
        let top = k.split('.').next().unwrap_or(k);
        if RESERVED.contains(&top) {
            return Err(bad(
                &field,
                format!("`{k}` is set by the service, not by a request"),
            ));
        }
        let parsed: Value = serde_yaml::from_str(v).unwrap_or(Value::String(v.into()));
        check_value(&field, &parsed)?;
        if k.ends_with("api_key_env")
            && let Some(name) = parsed.as_str()
        {
            check_key_env(&field, name)?;
        }
        o.push(ov.clone());
    }
    o.push(format!("name={}", q(&name)));
    if let Some(d) = &w.description {
        o.push(format!("description={}", q(d)));
    }
    if let Some(t) = &w.tags {
        o.push(format!(
            "tags={}",
            serde_json::to_string(t).expect("strings serialize")
        ));
    }
    o.push(format!("run_dir={}", q(&run_dir.display().to_string())));
    o.push(format!("catalog.url={}", q(&state.opts.catalog_url)));
    o.push(format!("catalog.run_id={id}"));
    Ok(Plan {
        id,
        name,
        run_dir,
        files,
        overrides: o,
        config_text,
        experiment: None,
    })
}

/// The experiment file a request's `experiment` becomes: its id, name and directory the
/// service's, its base the service's config, its runs in the service's catalog.
fn experiment_file(
    state: &State,
    x: &Value,
    name: &str,
    id: &str,
    dir: &Path,
) -> Result<(PathBuf, String), ApiError> {
    let Value::Object(m) = x else {
        return Err(bad("experiment", "must be an object (an experiment file)"));
    };
    for k in ["id", "exp_dir", "base", "name"] {
        if m.contains_key(k) {
            return Err(bad(
                &format!("experiment.{k}"),
                "is set by the service, not by a request",
            ));
        }
    }
    check_value("experiment", x)?;
    let mut m = m.clone();
    if let Some(Value::Object(o)) = m.get("overrides") {
        for k in o.keys() {
            if RESERVED.contains(&k.split('.').next().unwrap_or(k)) {
                return Err(bad(
                    &format!("experiment.overrides.{k}"),
                    "is set by the service, not by a request",
                ));
            }
        }
    }
    let mut ov = match m.remove("overrides") {
        Some(Value::Object(o)) => o,
        None => serde_json::Map::new(),
        Some(_) => {
            return Err(bad(
                "experiment.overrides",
                "must be a mapping of keys to values",
            ));
        }
    };
    ov.insert(
        "catalog.url".into(),
        Value::String(state.opts.catalog_url.clone()),
    );
    ov.insert("catalog.enabled".into(), Value::Bool(true));
    m.insert("overrides".into(), Value::Object(ov));
    m.insert("id".into(), Value::String(id.into()));
    m.insert("name".into(), Value::String(name.into()));
    m.insert("exp_dir".into(), Value::String(dir.display().to_string()));
    if let Some(base) = state.opts.config_files.first() {
        m.insert("base".into(), Value::String(base.display().to_string()));
    }
    let text =
        serde_yaml::to_string(&Value::Object(m)).map_err(|e| bad("experiment", e.to_string()))?;
    Ok((dir.with_extension("experiment.yaml"), text))
}

/// Checks an experiment as `bench sweep --dry-run` does (every cell's config), without running.
pub fn validate_experiment(state: &State, p: &Plan) -> Result<(), ApiError> {
    let Some((_, text)) = &p.experiment else {
        return Ok(());
    };
    let dir = tempdir_for(p)?;
    let f = dir.join("experiment.yaml");
    std::fs::write(&f, text).map_err(|e| ApiError::internal(e.to_string()))?;
    let o = Command::new(&state.opts.exe)
        .args(["sweep", "--dry-run", "-q"])
        .arg(&f)
        .output()
        .map_err(|e| ApiError::internal(e.to_string()));
    let _ = std::fs::remove_dir_all(&dir);
    let o = o?;
    if !o.status.success() {
        let msg = String::from_utf8_lossy(&o.stderr)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_string())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(bad(
            "experiment",
            msg.replace(&f.display().to_string(), "experiment"),
        ));
    }
    Ok(())
}

/// Bud's list of datasets as one config: each dataset file's `dataset` section under
/// `datasets:` by its id (its file paths made absolute, as they were relative to its file),
/// and `dataset.use` the weighted mix of them (equal weights unless given).
fn dataset_mix(parts: &[(&str, PathBuf)], weights: &[f64]) -> Result<String, ApiError> {
    if weights.len() != parts.len() {
        return Err(bad(
            "dataset_weights",
            format!("{} weights for {} datasets", weights.len(), parts.len()),
        ));
    }
    if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
        return Err(bad("dataset_weights", format!("{w} must be > 0")));
    }
    let mut datasets = serde_json::Map::new();
    let mut uses = Vec::new();
    for ((id, f), w) in parts.iter().zip(weights) {
        if datasets.contains_key(*id) {
            return Err(bad("dataset_ids", format!("`{id}` is named twice")));
        }
        let text = std::fs::read_to_string(f).map_err(|e| ApiError::internal(e.to_string()))?;
        let file: Value = serde_yaml::from_str(&text)
            .map_err(|e| ApiError::internal(format!("{}: {e}", f.display())))?;
        let mut tree =
            serde_json::json!({ "dataset": file.get("dataset").cloned().unwrap_or_default() });
        bench_config::anchor_paths(&mut tree, f.parent().unwrap_or(Path::new(".")));
        datasets.insert(id.to_string(), tree["dataset"].take());
        uses.push(serde_json::json!({"name": id, "weight": w}));
    }
    let cfg = serde_json::json!({"datasets": datasets, "dataset": {"use": uses}});
    serde_yaml::to_string(&cfg).map_err(|e| ApiError::internal(e.to_string()))
}

/// Checks the plan's config as the run will (every problem, with its key), without running.
pub fn validate(p: &Plan) -> Result<bench_config::Config, ApiError> {
    let dir = tempdir_for(p)?;
    let mut files = p.files.clone();
    if let Some(t) = &p.config_text {
        let f = dir.join("request-config.yaml");
        std::fs::write(&f, t).map_err(|e| ApiError::internal(e.to_string()))?;
        files.pop();
        files.push(f);
    }
    let r = bench_config::load(&bench_config::Sources {
        files,
        overrides: p.overrides.clone(),
        env: true,
    });
    let _ = std::fs::remove_dir_all(&dir);
    r.map(|r| r.config).map_err(|e| match e {
        bench_config::LoadError::Invalid(errs) => {
            let first = errs.0.first().map(|x| x.key.clone());
            ApiError::bad_request(first.as_deref(), format!("invalid config: {errs}"))
        }
        other => ApiError::bad_request(None, other.to_string()),
    })
}

fn tempdir_for(p: &Plan) -> Result<PathBuf, ApiError> {
    let d = std::env::temp_dir().join(format!("bench-serve-{}", p.id));
    std::fs::create_dir_all(&d).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(d)
}

/// One step of a run as the service saw it (Bud's events).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    pub step: String,
    pub status: String,
    pub at: String,
    pub message: Option<String>,
}

pub(crate) fn event(state: &State, id: &str, step: &str, status: &str, message: Option<String>) {
    let mut ev = state.events.lock().unwrap_or_else(|e| e.into_inner());
    ev.entry(id.to_string()).or_default().push(Event {
        step: step.into(),
        status: status.into(),
        at: bench_catalog::now(),
        message,
    });
}

/// Registers the run (processing), then runs it when a slot is free.
pub async fn start(state: Arc<State>, p: Plan, cfg: bench_config::Config) -> Result<(), ApiError> {
    std::fs::create_dir_all(&p.run_dir).map_err(|e| ApiError::internal(e.to_string()))?;
    if let Some(t) = &p.config_text {
        std::fs::write(p.run_dir.join("request-config.yaml"), t)
            .map_err(|e| ApiError::internal(e.to_string()))?;
    }
    let mut entry = bench_catalog::config_entry::run_entry(&cfg, &p.id, &p.run_dir);
    if let Some((f, text)) = &p.experiment {
        std::fs::write(f, text).map_err(|e| ApiError::internal(e.to_string()))?;
        entry.kind = bench_catalog::Kind::Experiment;
        entry.name = p.name.clone();
        (
            entry.dataset_type,
            entry.workload_type,
            entry.concurrency,
            entry.rate,
        ) = (None, None, None, None);
    }
    state
        .catalog
        .upsert(&entry)
        .await
        .map_err(ApiError::catalog)?;
    event(&state, &p.id, "queued", "success", None);
    tokio::spawn(async move {
        let permit = state.slots.clone().acquire_owned().await;
        event(&state, &p.id, "run", "processing", None);
        let st = state.clone();
        let exe = state.opts.exe.clone();
        let res = tokio::task::spawn_blocking(move || {
            let r = run_child(&st, &exe, &p);
            (r, p)
        })
        .await;
        drop(permit);
        match res {
            Ok((Ok(code), p)) => finished(&state, &p, code).await,
            Ok((Err(e), p)) => {
                event(&state, &p.id, "run", "failed", Some(e.clone()));
                let _ = state
                    .catalog
                    .finish(&p.id, Status::Failed, Some(&e), None)
                    .await;
            }
            Err(e) => tracing::warn!("serve: a run's task failed: {e}"),
        }
    });
    Ok(())
}

fn run_child(state: &State, exe: &Path, p: &Plan) -> Result<i32, String> {
    let fail = |e: String| e;
    let log =
        std::fs::File::create(p.run_dir.join("bench.log")).map_err(|e| fail(e.to_string()))?;
    let log2 = log.try_clone().map_err(|e| fail(e.to_string()))?;
    let mut cmd = Command::new(exe);
    if let Some((f, _)) = &p.experiment {
        cmd.arg("sweep").arg(f);
    } else {
        cmd.arg("-q");
        for f in &p.files {
            cmd.arg("--config").arg(f);
        }
        for o in &p.overrides {
            cmd.arg("--override").arg(o);
        }
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2));
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| fail(format!("starting {}: {e}", exe.display())))?;
    state
        .children
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(p.id.clone(), child.id());
    let status = child.wait();
    state
        .children
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&p.id);
    let status = status.map_err(|e| fail(e.to_string()))?;
    Ok(status.code().unwrap_or(128 + 9))
}

async fn finished(state: &State, p: &Plan, code: i32) {
    let (status, label) = match code {
        0 => (Status::Success, "success"),
        3 => (Status::Failed, "failed"),
        130 | 143 => (Status::Interrupted, "interrupted"),
        _ => (Status::Failed, "failed"),
    };
    let msg = (code != 0).then(|| last_error(&p.run_dir.join("bench.log")));
    event(state, &p.id, "run", label, msg.clone().flatten());
    // the run records its own end; a run that died before registering (bad config at start,
    // a crash) is ended here
    if let Ok(Some(e)) = state.catalog.get(&p.id).await
        && e.status == Status::Processing
    {
        let err = msg
            .flatten()
            .unwrap_or_else(|| format!("exit status {code}"));
        let _ = state.catalog.finish(&p.id, status, Some(&err), None).await;
    }
}

/// The last line of a log that says what went wrong.
fn last_error(log: &Path) -> Option<String> {
    let t = std::fs::read_to_string(log).ok()?;
    let lines: Vec<&str> = t.lines().filter(|l| !l.trim().is_empty()).collect();
    lines
        .iter()
        .rev()
        .find(|l| l.starts_with("error:"))
        .or(lines.last())
        .map(|l| l.chars().take(500).collect())
}

/// The accumulated wizard state of each workflow id.
pub type Workflows = BTreeMap<String, WorkflowPost>;
