//! The experiment file of `bench sweep`, read and checked whole: every problem is reported at
//! once with its path, as the run config's are, and then every run's resolved config is
//! checked, so a matrix value that makes an invalid run stops the sweep before it starts.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The keys an experiment file may hold.
const KEYS: [&str; 13] = [
    "id",
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
    /// The experiment's id (a UUID; kept by `--resume`; the catalog's key).
    pub id: String,
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

fn read_search(f: &mut Fields<'_>) -> Option<Search> {
    const SEARCH_KEYS: [&str; 6] = ["key", "low", "high", "resolution", "attainment", "run"];
    f.unknown_keys(&SEARCH_KEYS);
    let Some(key) = f.string("key") else {
        f.bad(
            "key",
            "is required: the load key, such as workload.constant.target_qps".into(),
        );
        return None;
    };
    let load = |x: f64| x > 0.0;
    let low = f.number("low", None, &load, "a load > 0");
    let high = f.number("high", None, &load, "a load > 0");
    let resolution = f.number(
        "resolution",
        Some(0.05),
        &|x| x > 0.0 && x < 1.0,
        "a fraction between 0 and 1",
    );
    let attainment = f.number(
        "attainment",
        Some(0.9),
        &|x| x > 0.0 && x <= 1.0,
        "a fraction in (0, 1]",
    );
    let run = f.overrides("run", &|k| match k {
        "duration_ms" => "workload.duration_ms",
        "warmup_requests" => "client.warmup_requests",
        other => other,
    });
    let (low, high, resolution, attainment) = (low?, high?, resolution?, attainment?);
    if high <= low {
        f.bad("high", format!("{high} must be above search.low ({low})"));
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

/// Typed reads of one mapping's keys: every problem goes to `errs` as `<file>: `<path>`: why`.
struct Fields<'a> {
    map: &'a serde_json::Map<String, Value>,
    /// The file, as errors name it.
    file: String,
    /// The mapping's own path (`search.`), or empty at the top.
    prefix: &'a str,
    errs: &'a mut Vec<String>,
}

impl Fields<'_> {
    fn bad(&mut self, key: &str, msg: String) {
        self.errs
            .push(format!("{}: `{}{key}`: {msg}", self.file, self.prefix));
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn unknown_keys(&mut self, known: &[&str]) {
        let unknown: Vec<String> = self
            .map
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in unknown {
            self.bad(&k, format!("unknown key; valid keys: {}", known.join(", ")));
        }
    }

    fn string(&mut self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            v => {
                let t = type_name(v);
                self.bad(key, format!("must be a string, not {t}"));
                None
            }
        }
    }

    fn strings(&mut self, key: &str) -> Vec<String> {
        let v = match self.get(key) {
            None => return Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(v) => {
                let t = type_name(v);
                self.bad(key, format!("must be a list of strings, not {t}"));
                return Vec::new();
            }
        };
        v.iter()
            .enumerate()
            .filter_map(|(i, t)| match t {
                Value::String(s) => Some(s.clone()),
                v => {
                    let t = type_name(v);
                    self.bad(&format!("{key}[{i}]"), format!("must be a string, not {t}"));
                    None
                }
            })
            .collect()
    }

    fn uint(&mut self, key: &str, default: u64, min: u64) -> u64 {
        match self.get(key).map(|v| (v.as_u64(), show(v))) {
            None => default,
            Some((Some(n), _)) if n >= min => n,
            Some((_, v)) => {
                self.bad(key, format!("must be a whole number >= {min}, not {v}"));
                default
            }
        }
    }

    /// A number `ok` accepts; `default` None makes the key required.
    fn number(
        &mut self,
        key: &str,
        default: Option<f64>,
        ok: &dyn Fn(f64) -> bool,
        what: &str,
    ) -> Option<f64> {
        match self.get(key).map(|v| (v.as_f64(), show(v))) {
            None => {
                if default.is_none() {
                    self.bad(key, format!("is required ({what})"));
                }
                default
            }
            Some((Some(x), _)) if x.is_finite() && ok(x) => Some(x),
            Some((_, v)) => {
                self.bad(key, format!("must be {what}, not {v}"));
                None
            }
        }
    }

    fn boolean(&mut self, key: &str) -> bool {
        match self.get(key) {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(v) => {
                let v = show(v);
                self.bad(key, format!("must be true or false, not {v}"));
                false
            }
        }
    }

    /// A mapping of config keys to values, as `key=value` overrides (`alias` spells out short
    /// keys).
    fn overrides(&mut self, key: &str, alias: &dyn Fn(&str) -> &str) -> Vec<String> {
        match self.get(key) {
            None => Vec::new(),
            Some(Value::Object(o)) => o
                .iter()
                .map(|(k, v)| format!("{}={}", alias(k), yaml(v)))
                .collect(),
            Some(v) => {
                let t = type_name(v);
                self.bad(
                    key,
                    format!("must be a mapping of config keys to values, not {t}"),
                );
                Vec::new()
            }
        }
    }
}

/// A value as text in a cell id or an override: strings bare, the rest as JSON.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A value as an override's right-hand side (YAML: JSON is YAML's flow syntax).
pub(crate) fn yaml(v: &Value) -> String {
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
    let mut f = Fields {
        map,
        file: p.to_string(),
        prefix: "",
        errs: &mut errs,
    };
    f.unknown_keys(&KEYS);
    let name = read_name(&mut f);
    let id = f.string("id").unwrap_or_default();
    if !id.is_empty() && !is_uuid(&id) {
        f.bad("id", format!("`{id}` is not a UUID"));
    }
    let description = f.string("description").unwrap_or_default();
    let tags = f.strings("tags");
    let base = f.string("base").map(|b| dir.join(b));
    if let Some(b) = &base
        && !b.is_file()
    {
        f.bad("base", format!("{} not found", b.display()));
    }
    let overrides = f.overrides("overrides", &|k| k);
    let exp_dir = f
        .string("exp_dir")
        .unwrap_or_else(|| "./output/experiments/${name}".into())
        .replace("${name}", &name);
    let repeats = f.uint("repeats", 1, 1).min(u32::MAX as u64) as u32;
    let seed = f.get("seed").is_some().then(|| f.uint("seed", 0, 0));
    let cooldown_s = f
        .number(
            "cooldown_s",
            Some(0.0),
            &|x| x >= 0.0,
            "a number of seconds >= 0",
        )
        .unwrap_or(0.0);
    let reuse_prompts = f.boolean("reuse_prompts");
    let axes = read_axes(&mut f);
    let search = match map.get("search").filter(|v| !v.is_null()) {
        None => None,
        Some(Value::Object(m)) => read_search(&mut Fields {
            map: m,
            file: p.to_string(),
            prefix: "search.",
            errs: f.errs,
        }),
        Some(v) => {
            let t = type_name(v);
            f.bad(
                "search",
                format!("must be a mapping (key, low, high, resolution, attainment, run), not {t}"),
            );
            None
        }
    };
    let mut seen: Vec<&String> = search.iter().map(|s| &s.key).collect();
    for k in axes.iter().flat_map(|a| &a.keys) {
        if seen.contains(&k) {
            f.bad(
                "axes",
                format!("`{k}` is set twice (by two axes, or an axis and search.key)"),
            );
        }
        seen.push(k);
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(Experiment {
        id,
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

/// Whether `s` is a UUID in its text form.
fn is_uuid(s: &str) -> bool {
    // the hyphenated form only: it is what the catalog stores and shows
    s.len() == 36 && uuid::Uuid::try_parse(s).is_ok()
}

/// `name`: required, and usable as a directory name.
fn read_name(f: &mut Fields<'_>) -> String {
    match f.get("name") {
        None => {
            f.bad("name", "is required".into());
            String::new()
        }
        Some(Value::String(s))
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
        {
            s.clone()
        }
        Some(Value::String(s)) => {
            let msg =
                format!("`{s}` must be letters, digits, `-`, `_` or `.` (it names the directory)");
            f.bad("name", msg);
            String::new()
        }
        Some(v) => {
            let t = type_name(v);
            f.bad("name", format!("must be a string, not {t}"));
            String::new()
        }
    }
}

/// `axes`: a list of axes.
fn read_axes(f: &mut Fields<'_>) -> Vec<Axis> {
    let list = match f.get("axes") {
        None => return Vec::new(),
        Some(Value::Array(list)) => list.clone(),
        Some(v) => {
            let t = type_name(v);
            f.bad("axes", format!("must be a list of axes, not {t}"));
            return Vec::new();
        }
    };
    list.iter()
        .enumerate()
        .filter_map(|(i, a)| read_axis(a, &format!("axes[{i}]"), &mut |k, m| f.bad(k, m)))
        .collect()
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
