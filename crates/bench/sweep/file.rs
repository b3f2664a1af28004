//! The experiment file of `bench sweep`, read and checked whole: every problem is reported at
//! once with its path, as the run config's are, and then every run's resolved config is
//! checked, so a matrix value that makes an invalid run stops the sweep before it starts.

use std::path::{Path, PathBuf};

use bench_config::{LoadError, Sources};
use serde_json::Value;

/// The keys an experiment file may hold.
const KEYS: [&str; 12] = [
    "name",
    "description",
    "tags",
    "base",
    "overrides",
    "exp_dir",
    "axes",
    "repeats",
    "cooldown_s",
    "reuse_prompts",
    "seed",
    "search",
];

/// One axis: one key, or several zipped keys, and its values.
#[derive(Debug, Clone)]
pub struct Axis {
    /// The config keys it sets.
    pub keys: Vec<String>,
    /// Their short names in cell ids (the last part of each key).
    pub labels: Vec<String>,
    /// One entry per point: a value per key.
    pub points: Vec<Vec<Value>>,
}

/// A checked experiment file.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// The file.
    pub path: PathBuf,
    /// `name`.
    pub name: String,
    /// `description`.
    pub description: String,
    /// `tags`.
    pub tags: Vec<String>,
    /// `base`, resolved against the file's directory (None: ./config.yaml when present).
    pub base: Option<PathBuf>,
    /// `overrides`, in file order, as `key=value` strings.
    pub overrides: Vec<String>,
    /// `exp_dir` with `${name}` filled in.
    pub exp_dir: PathBuf,
    /// `axes`.
    pub axes: Vec<Axis>,
    /// `repeats`.
    pub repeats: u32,
    /// `cooldown_s`.
    pub cooldown_s: f64,
    /// `reuse_prompts`.
    pub reuse_prompts: bool,
    /// `seed` (None: the base config's).
    pub seed: Option<u64>,
    /// `search`: a capacity search in each cell instead of fixed runs.
    pub search: Option<Search>,
    /// The file as read (for experiment.json).
    pub raw: Value,
}

/// `search`: the highest load at which the SLOs hold, bracketed by doubling then bisected.
#[derive(Debug, Clone)]
pub struct Search {
    /// The load key (`workload.constant.target_qps`, `workload.concurrency.concurrency`).
    pub key: String,
    /// Its short name.
    pub label: String,
    /// The first load tried.
    pub low: f64,
    /// The highest load tried.
    pub high: f64,
    /// Stop when (lowest failing - highest passing) / highest passing is below this.
    pub resolution: f64,
    /// Share of requests that must meet every `analysis.slo.*` for a load to pass.
    pub attainment: f64,
    /// Overrides of every probe run (`run:`; `duration_ms` and `warmup_requests` are short for
    /// `workload.duration_ms` and `client.warmup_requests`).
    pub run: Vec<String>,
}

fn read_search(v: &Value, bad: &mut dyn FnMut(&str, String)) -> Option<Search> {
    let Value::Object(m) = v else {
        bad(
            "search",
            format!(
                "must be a mapping (key, low, high, resolution, attainment, run), not {}",
                type_name(v)
            ),
        );
        return None;
    };
    for k in m.keys() {
        if !["key", "low", "high", "resolution", "attainment", "run"].contains(&k.as_str()) {
            bad(
                &format!("search.{k}"),
                "unknown key; valid keys: key, low, high, resolution, attainment, run".into(),
            );
        }
    }
    let key = match m.get("key") {
        Some(Value::String(k)) => k.clone(),
        _ => {
            bad(
                "search.key",
                "is required: the load key, such as workload.constant.target_qps".into(),
            );
            return None;
        }
    };
    let mut num =
        |k: &str, default: Option<f64>, ok: &dyn Fn(f64) -> bool, what: &str| match m.get(k) {
            None | Some(Value::Null) => {
                if default.is_none() {
                    bad(&format!("search.{k}"), format!("is required ({what})"));
                }
                default
            }
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() && ok(x) => Some(x),
                _ => {
                    bad(
                        &format!("search.{k}"),
                        format!("must be {what}, not {}", show(v)),
                    );
                    None
                }
            },
        };
    let low = num("low", None, &|x| x > 0.0, "a load > 0");
    let high = num("high", None, &|x| x > 0.0, "a load > 0");
    let resolution = num(
        "resolution",
        Some(0.05),
        &|x| x > 0.0 && x < 1.0,
        "a fraction between 0 and 1",
    );
    let attainment = num(
        "attainment",
        Some(0.9),
        &|x| x > 0.0 && x <= 1.0,
        "a fraction in (0, 1]",
    );
    let mut run = Vec::new();
    match m.get("run") {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => {
            for (k, v) in o {
                let full = match k.as_str() {
                    "duration_ms" => "workload.duration_ms",
                    "warmup_requests" => "client.warmup_requests",
                    other => other,
                };
                run.push(format!("{full}={}", yaml(v)));
            }
        }
        Some(v) => bad(
            "search.run",
            format!(
                "must be a mapping of config keys to values, not {}",
                type_name(v)
            ),
        ),
    }
    let (low, high, resolution, attainment) = (low?, high?, resolution?, attainment?);
    if high <= low {
        bad(
            "search.high",
            format!("{high} must be above search.low ({low})"),
        );
        return None;
    }
    Some(Search {
        label: key.rsplit('.').next().unwrap_or(&key).to_string(),
        key,
        low,
        high,
        resolution,
        attainment,
        run,
    })
}

/// One run of the sweep: its cell, its repeat, and the overrides that make it.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Readable cell id: `concurrency=8,input_tokens=1024,output_tokens=1024`.
    pub cell: String,
    /// The cell's values, key by key.
    pub params: Vec<(String, Value)>,
    /// Repeat number, from 1.
    pub repeat: u32,
    /// Its run directory.
    pub run_dir: PathBuf,
    /// Every override of the run, in order (experiment, command line, cell, run).
    pub overrides: Vec<String>,
    /// Its dataset and workload seed.
    pub seed: u64,
    /// sha256 of the resolved config: the same hash means the same run.
    pub hash: String,
    /// Planned seconds (the workload's duration), when the config says.
    pub planned_s: Option<f64>,
    /// The resolved config.
    pub tree: Value,
}

/// A value as text in a cell id or an override: strings bare, the rest as JSON.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A value as an override's right-hand side (YAML: JSON is YAML's flow syntax).
fn yaml(v: &Value) -> String {
    v.to_string()
}

/// A cell id made safe for a directory name.
pub fn slug(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "=,._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.len() > 120 {
        s[..120].to_string()
    } else {
        s
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Reads and checks `path`; every problem at once.
pub fn read(path: &Path) -> Result<Experiment, Vec<String>> {
    let p = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| vec![format!("{p}: {e}")])?;
    let raw: Value = serde_yaml::from_str(&text).map_err(|e| vec![format!("{p}: {e}")])?;
    let Value::Object(map) = &raw else {
        return Err(vec![format!(
            "{p}: an experiment file is a mapping (name, base, axes, ...), not {}",
            type_name(&raw)
        )]);
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut errs = Vec::new();
    let mut bad = |key: &str, msg: String| errs.push(format!("{p}: `{key}`: {msg}"));
    for k in map.keys() {
        if !KEYS.contains(&k.as_str()) {
            bad(k, format!("unknown key; valid keys: {}", KEYS.join(", ")));
        }
    }
    let name = match map.get("name") {
        Some(Value::String(s))
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
        {
            s.clone()
        }
        Some(Value::String(s)) => {
            bad(
                "name",
                format!("`{s}` must be letters, digits, `-`, `_` or `.` (it names the directory)"),
            );
            String::new()
        }
        Some(v) => {
            bad("name", format!("must be a string, not {}", type_name(v)));
            String::new()
        }
        None => {
            bad("name", "is required".into());
            String::new()
        }
    };
    let string = |key: &str, bad: &mut dyn FnMut(&str, String)| match map.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => {
            bad(key, format!("must be a string, not {}", type_name(v)));
            None
        }
    };
    let description = string("description", &mut bad).unwrap_or_default();
    let tags = match map.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match t {
                Value::String(s) => Some(s.clone()),
                v => {
                    bad(
                        &format!("tags[{i}]"),
                        format!("must be a string, not {}", type_name(v)),
                    );
                    None
                }
            })
            .collect(),
        Some(v) => {
            bad(
                "tags",
                format!("must be a list of strings, not {}", type_name(v)),
            );
            Vec::new()
        }
    };
    let base = string("base", &mut bad).map(|b| dir.join(b));
    if let Some(b) = &base
        && !b.is_file()
    {
        bad("base", format!("{} not found", b.display()));
    }
    let mut overrides = Vec::new();
    match map.get("overrides") {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => {
            for (k, v) in o {
                overrides.push(format!("{k}={}", yaml(v)));
            }
        }
        Some(v) => bad(
            "overrides",
            format!(
                "must be a mapping of config keys to values, not {}",
                type_name(v)
            ),
        ),
    }
    let exp_dir = string("exp_dir", &mut bad)
        .unwrap_or_else(|| "./output/experiments/${name}".into())
        .replace("${name}", &name);
    let uint =
        |key: &str, default: u64, min: u64, bad: &mut dyn FnMut(&str, String)| match map.get(key) {
            None | Some(Value::Null) => default,
            Some(v) => match v.as_u64() {
                Some(n) if n >= min => n,
                _ => {
                    bad(
                        key,
                        format!("must be a whole number >= {min}, not {}", show(v)),
                    );
                    default
                }
            },
        };
    let repeats = uint("repeats", 1, 1, &mut bad).min(u32::MAX as u64) as u32;
    let seed = map.get("seed").map(|_| uint("seed", 0, 0, &mut bad));
    let cooldown_s = match map.get("cooldown_s") {
        None | Some(Value::Null) => 0.0,
        Some(v) => match v.as_f64() {
            Some(x) if x >= 0.0 && x.is_finite() => x,
            _ => {
                bad(
                    "cooldown_s",
                    format!("must be a number of seconds >= 0, not {}", show(v)),
                );
                0.0
            }
        },
    };
    let reuse_prompts = match map.get("reuse_prompts") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            bad(
                "reuse_prompts",
                format!("must be true or false, not {}", show(v)),
            );
            false
        }
    };
    let mut axes = Vec::new();
    match map.get("axes") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, a) in list.iter().enumerate() {
                let at = format!("axes[{i}]");
                if let Some(axis) = read_axis(a, &at, &mut bad) {
                    axes.push(axis);
                }
            }
        }
        Some(v) => bad(
            "axes",
            format!("must be a list of axes, not {}", type_name(v)),
        ),
    }
    let search = match map.get("search") {
        None | Some(Value::Null) => None,
        Some(v) => read_search(v, &mut bad),
    };
    let mut seen = Vec::new();
    if let Some(s) = &search {
        seen.push(s.key.clone());
    }
    for a in &axes {
        for k in &a.keys {
            if seen.contains(k) {
                bad(
                    "axes",
                    format!("`{k}` is set twice (by two axes, or an axis and search.key)"),
                );
            }
            seen.push(k.clone());
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(Experiment {
        path: path.to_path_buf(),
        name,
        description,
        tags,
        base,
        overrides,
        exp_dir: PathBuf::from(exp_dir),
        axes,
        repeats,
        cooldown_s,
        reuse_prompts,
        seed,
        search,
        raw,
    })
}

fn read_axis(a: &Value, at: &str, bad: &mut dyn FnMut(&str, String)) -> Option<Axis> {
    let Value::Object(m) = a else {
        bad(
            at,
            format!(
                "must be a mapping with `key` (or `keys`) and `values`, not {}",
                type_name(a)
            ),
        );
        return None;
    };
    for k in m.keys() {
        if !["key", "keys", "values"].contains(&k.as_str()) {
            bad(
                &format!("{at}.{k}"),
                "unknown key; an axis has `key` or `keys`, and `values`".into(),
            );
        }
    }
    let keys: Vec<String> = match (m.get("key"), m.get("keys")) {
        (Some(Value::String(k)), None) => vec![k.clone()],
        (None, Some(Value::Array(ks))) if !ks.is_empty() && ks.iter().all(Value::is_string) => {
            ks.iter().map(show).collect()
        }
        (Some(_), Some(_)) => {
            bad(at, "give `key` or `keys`, not both".into());
            return None;
        }
        _ => {
            bad(
                at,
                "needs `key: a.config.key` or `keys: [a.key, another.key]`".into(),
            );
            return None;
        }
    };
    let zipped = m.contains_key("keys");
    let values = match m.get("values") {
        Some(Value::Array(v)) if !v.is_empty() => v,
        _ => {
            bad(
                &format!("{at}.values"),
                "needs a non-empty list of values".into(),
            );
            return None;
        }
    };
    let mut points = Vec::new();
    for (j, v) in values.iter().enumerate() {
        if zipped {
            match v {
                Value::Array(t) if t.len() == keys.len() => points.push(t.clone()),
                _ => bad(
                    &format!("{at}.values[{j}]"),
                    format!(
                        "must be a list of {} values, one per key of `keys`, not {}",
                        keys.len(),
                        show(v)
                    ),
                ),
            }
        } else {
            points.push(vec![v.clone()]);
        }
    }
    let labels = keys
        .iter()
        .map(|k| k.rsplit('.').next().unwrap_or(k).to_string())
        .collect();
    Some(Axis {
        keys,
        labels,
        points,
    })
}

/// A stable hash of a cell id, for its seed.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The seed of one run: the experiment's seed, mixed with the cell and the repeat unless
/// prompts are reused, so every run gets fresh prompts (a server's prompt cache would otherwise
/// answer the second run of the same prompts from memory).
pub fn run_seed(exp_seed: u64, cell: &str, repeat: u32, reuse: bool) -> u64 {
    if reuse {
        return exp_seed;
    }
    bench_text::seed::splitmix64(
        exp_seed ^ fnv1a(cell) ^ u64::from(repeat).wrapping_mul(bench_text::seed::GOLDEN),
    )
}

/// One cell: its id and its values.
#[derive(Debug, Clone)]
pub struct Cell {
    /// Readable id.
    pub id: String,
    /// Its values, key by key.
    pub params: Vec<(String, Value)>,
}

/// Resolves and checks one run's config.
#[derive(Debug, Clone)]
pub struct Resolver {
    files: Vec<PathBuf>,
    /// The experiment's overrides, then the command line's.
    base: Vec<String>,
    exp_seed: u64,
    name: String,
    reuse_prompts: bool,
}

impl Resolver {
    /// The run of `cell` with `extra` overrides (a search's load) in `run_dir`, its seed mixed
    /// from `salt` (the cell id, and the load or repeat).
    pub fn run(
        &self,
        cell: &Cell,
        extra: &[String],
        run_dir: PathBuf,
        salt: &str,
        repeat: u32,
    ) -> Result<Planned, LoadError> {
        let seed = run_seed(self.exp_seed, salt, repeat, self.reuse_prompts);
        let mut overrides = self.base.clone();
        overrides.extend(cell.params.iter().map(|(k, v)| format!("{k}={}", yaml(v))));
        overrides.extend(extra.iter().cloned());
        overrides.push(format!(
            "run_dir={}",
            Value::String(run_dir.display().to_string())
        ));
        overrides.push(format!("seed={seed}"));
        overrides.push(format!("name={}", self.name));
        let r = bench_config::load(&Sources {
            files: self.files.clone(),
            overrides: overrides.clone(),
            env: true,
        })?;
        use sha2::Digest;
        let hash = format!("{:x}", sha2::Sha256::digest(r.tree.to_string().as_bytes()));
        // a closed loop lasts until its requests are done: not known ahead
        let planned_s = (r.tree["workload"]["type"] != "concurrency")
            .then(|| r.tree["workload"]["duration_ms"].as_f64())
            .flatten()
            .map(|ms| ms / 1000.0);
        let mut params = cell.params.clone();
        for o in extra {
            if let Some((k, v)) = o.split_once('=') {
                params.push((
                    k.to_string(),
                    serde_yaml::from_str(v).unwrap_or(Value::Null),
                ));
            }
        }
        Ok(Planned {
            cell: cell.id.clone(),
            params,
            repeat,
            run_dir,
            overrides,
            seed,
            hash,
            planned_s,
            tree: r.tree,
        })
    }
}

/// The experiment, planned: its cells, its runs (without a search), and how to resolve more
/// (a search's probes).
#[derive(Debug)]
pub struct Plan {
    /// The cells.
    pub cells: Vec<Cell>,
    /// Every run, in order (empty for a search, whose runs depend on what they find).
    pub runs: Vec<Planned>,
    /// Resolves further runs.
    pub resolver: Resolver,
}

/// The run directory of a search probe at `load`.
pub fn probe_dir(e: &Experiment, cell: &Cell, s: &Search, load: f64) -> PathBuf {
    e.exp_dir
        .join("cells")
        .join(slug(&cell.id))
        .join("search")
        .join(slug(&format!("{}={load}", s.label)))
}

/// A search load as an override value: whole for an integer key.
pub fn load_value(load: f64, integer: bool) -> String {
    if integer {
        format!("{}", load.round() as u64)
    } else {
        format!("{load}")
    }
}

/// Every run of the experiment, each resolved and checked against the run config's rules;
/// every problem of every cell at once. A search's cells are checked at its low and high load,
/// and must have SLOs to measure attainment against.
pub fn plan(e: &Experiment, cli_overrides: &[String]) -> Result<Plan, Vec<String>> {
    let files: Vec<PathBuf> = match &e.base {
        Some(b) => vec![b.clone()],
        None => Some(PathBuf::from("config.yaml"))
            .filter(|p| p.is_file())
            .into_iter()
            .collect(),
    };
    let base: Vec<String> = e.overrides.iter().chain(cli_overrides).cloned().collect();
    let exp_seed = match e.seed {
        Some(s) => s,
        None => bench_config::load(&Sources {
            files: files.clone(),
            overrides: base.clone(),
            env: true,
        })
        .map(|r| r.config.seed)
        .map_err(|err| vec![load_error("the base config", &err)])?,
    };
    let resolver = Resolver {
        files,
        base,
        exp_seed,
        name: e.name.clone(),
        reuse_prompts: e.reuse_prompts,
    };
    // the cartesian product of the axes, the first axis outermost
    let mut combos: Vec<Vec<(String, String, Value)>> = vec![Vec::new()];
    for a in &e.axes {
        let mut next = Vec::new();
        for c in &combos {
            for p in &a.points {
                let mut c = c.clone();
                for ((k, l), v) in a.keys.iter().zip(&a.labels).zip(p) {
                    c.push((k.clone(), l.clone(), v.clone()));
                }
                next.push(c);
            }
        }
        combos = next;
    }
    let cells: Vec<Cell> = combos
        .iter()
        .map(|c| Cell {
            id: if c.is_empty() {
                "all".to_string()
            } else {
                c.iter()
                    .map(|(_, l, v)| format!("{l}={}", show(v)))
                    .collect::<Vec<_>>()
                    .join(",")
            },
            params: c.iter().map(|(k, _, v)| (k.clone(), v.clone())).collect(),
        })
        .collect();
    let mut runs = Vec::new();
    let mut errs = Vec::new();
    for cell in &cells {
        if let Some(s) = &e.search {
            for load in [s.low, s.high] {
                let mut extra = s.run.clone();
                extra.push(format!("{}={load}", s.key));
                match resolver.run(cell, &extra, probe_dir(e, cell, s, load), &cell.id, 1) {
                    Ok(p) => {
                        let slo = &p.tree["analysis"]["slo"];
                        let any = ["ttft_ms", "tpot_ms", "itl_ms", "e2el_ms"]
                            .iter()
                            .any(|k| !slo[*k].is_null());
                        if !any && load == s.low {
                            errs.push(format!(
                                "cell {}: `search` measures the share of requests meeting analysis.slo.*, and no SLO is set",
                                cell.id
                            ));
                        }
                    }
                    Err(err) => {
                        errs.push(load_error(
                            &format!("cell {} at {}={load}", cell.id, s.label),
                            &err,
                        ));
                        break;
                    }
                }
            }
            continue;
        }
        for repeat in 1..=e.repeats {
            let run_dir = e
                .exp_dir
                .join("cells")
                .join(slug(&cell.id))
                .join(format!("r{repeat}"));
            match resolver.run(cell, &[], run_dir, &cell.id, repeat) {
                Ok(p) => runs.push(p),
                Err(err) => {
                    errs.push(load_error(&format!("cell {}", cell.id), &err));
                    break;
                }
            }
        }
    }
    if errs.is_empty() {
        Ok(Plan {
            cells,
            runs,
            resolver,
        })
    } else {
        Err(errs)
    }
}

fn load_error(what: &str, e: &LoadError) -> String {
    match e {
        LoadError::Invalid(errs) => errs
            .0
            .iter()
            .map(|x| format!("{what}: {x}"))
            .collect::<Vec<_>>()
            .join("\n"),
        other => format!("{what}: {other}"),
    }
}
