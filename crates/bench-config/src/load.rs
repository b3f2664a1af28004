//! Layering: defaults < config file < `BENCH_` env < `--override`, then templates, schema check,
//! typed deserialization and cross-field validation.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Yaml};
use figment::value::{Dict, Map, Value as FValue};
use figment::{Figment, Metadata, Profile, Provider};

use crate::errors::{ConfigError, Errors, LoadError};
use crate::{Config, schema, template};

/// Where the config comes from.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// YAML files, layered in order (each after the `base` files it names; none: defaults only).
    pub files: Vec<PathBuf>,
    /// `key=value` overrides, values parsed as YAML, applied in order.
    pub overrides: Vec<String>,
    /// Read `BENCH_`-prefixed environment variables (`BENCH_WORKLOAD__TYPE=azure`).
    pub env: bool,
}

/// A loaded config.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The typed, validated config.
    pub config: Config,
    /// The same config as a value tree (what `--show-config` prints and the manifest keeps).
    pub tree: serde_json::Value,
    /// Keys given a value (by a file, the environment or an override) rather than defaulted.
    pub explicit: Vec<String>,
    /// Things worth a warning that are not errors: keys set for a type the run does not use.
    pub warnings: Vec<String>,
}

impl Resolved {
    /// Whether `key` was given a value rather than defaulted.
    pub fn is_explicit(&self, key: &str) -> bool {
        self.explicit.iter().any(|k| k == key)
    }
}

/// One `--override key=value`, as a figment provider named `--override`.
struct Override {
    key: String,
    value: FValue,
}

impl Provider for Override {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("--override {}", self.key))
    }
    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let nested = figment::util::nest(&self.key, self.value.clone());
        match nested {
            FValue::Dict(_, d) => Ok(Profile::Default.collect(d)),
            _ => Err(figment::Error::from(format!(
                "override key `{}` is empty",
                self.key
            ))),
        }
    }
}

fn parse_override(s: &str) -> Result<Override, LoadError> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| LoadError::Override(s.to_string()))?;
    let key = k.trim();
    let valid = !key.is_empty()
        && key.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if !valid {
        return Err(LoadError::Override(s.to_string()));
    }
    Ok(Override {
        key: key.to_string(),
        value: override_value(s, v)?,
    })
}

/// The value of the override `o` (`key=v`) parsed as YAML; an empty value is the empty string.
fn override_value<T: serde::de::DeserializeOwned + From<String>>(
    o: &str,
    v: &str,
) -> Result<T, LoadError> {
    if v.trim().is_empty() {
        return Ok(T::from(String::new()));
    }
    serde_yaml::from_str(v)
        .map_err(|e| LoadError::File(format!("--override `{o}`: value is not valid YAML: {e}")))
}

fn read_yaml_file(path: &Path) -> Result<String, LoadError> {
    let text = bench_types::jsonl::read_text(path).map_err(LoadError::File)?;
    match serde_yaml::from_str::<serde_yaml::Value>(&text) {
        Ok(serde_yaml::Value::Mapping(_)) | Ok(serde_yaml::Value::Null) => Ok(text),
        Ok(_) => Err(LoadError::File(format!(
            "{}: the top level must be a mapping of keys",
            path.display()
        ))),
        Err(e) => {
            let at = e
                .location()
                .map(|l| format!(":{}:{}", l.line(), l.column()))
                .unwrap_or_default();
            Err(LoadError::File(format!(
                "{}{at}: not valid YAML: {e}",
                path.display()
            )))
        }
    }
}

/// Human name of where the value at `key` came from.
fn origin(fig: &Figment, key: &str) -> Option<String> {
    // figment paths use dots only; strip list indices.
    let k: String = key.split('[').next().unwrap_or(key).to_string();
    let md = fig.find_metadata(&k)?;
    if md.name.starts_with("--override") {
        return Some(md.name.to_string());
    }
    if md.name.to_lowercase().contains("environment") {
        let var = format!("BENCH_{}", k.replace('.', "__").to_uppercase());
        return Some(format!("environment variable {var}"));
    }
    match &md.source {
        Some(figment::Source::File(p)) => Some(p.display().to_string()),
        _ => None,
    }
}

/// `path` after the files it names as `base` (recursively, each relative to the file naming
/// it), appended to `out` unless already there.
fn with_bases(
    path: &Path,
    out: &mut Vec<PathBuf>,
    seen: &mut Vec<PathBuf>,
) -> Result<(), LoadError> {
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if seen.contains(&canonical) {
        return Err(LoadError::File(format!(
            "{}: `base` leads back to this file (a cycle)",
            path.display()
        )));
    }
    let text = read_yaml_file(path)?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap_or(serde_yaml::Value::Null);
    if let Some(base) = doc.get("base") {
        let Some(b) = base.as_str() else {
            return Err(LoadError::File(format!(
                "{}: `base` must be the path of a config file",
                path.display()
            )));
        };
        let b = path.parent().unwrap_or(Path::new(".")).join(b);
        if !b.is_file() {
            return Err(LoadError::File(format!(
                "{}: base config {} not found",
                path.display(),
                b.display()
            )));
        }
        // a clean path for the paths relative to it (`presets/../base.yaml` -> `base.yaml`)
        let b = b.canonicalize().unwrap_or(b);
        seen.push(canonical.clone());
        with_bases(&b, out, seen)?;
        seen.pop();
    }
    if !out
        .iter()
        .any(|p| p.canonicalize().ok().as_ref() == Some(&canonical))
    {
        out.push(path.to_path_buf());
    }
    Ok(())
}

/// Loads, merges, resolves and validates the config. Every problem is reported at once.
pub fn load(src: &Sources) -> Result<Resolved, LoadError> {
    let mut fig = Figment::from(Serialized::defaults(Config::default()));
    let mut files = Vec::new();
    for f in &src.files {
        with_bases(f, &mut files, &mut Vec::new())?;
    }
    for path in &files {
        let text = read_yaml_file(path)?;
        if !text.trim().is_empty() {
            fig = fig.merge(Yaml::file_exact(path));
        }
    }
    if src.env {
        // `BENCH_X__Y` is config; a one-part `BENCH_NAME` is config only when NAME is a top-level
        // key (`BENCH_SEED`, `BENCH_RUN_DIR`): other tools' variables (`BENCH_BIN`,
        // `BENCH_SHARED_DATA`) are theirs, not unknown keys
        let top: Vec<String> = serde_json::to_value(Config::default())
            .ok()
            .and_then(|v| v.as_object().map(|o| o.keys().cloned().collect()))
            .unwrap_or_default();
        fig = fig.merge(
            Env::prefixed("BENCH_")
                .filter(move |k| {
                    let k = k.as_str();
                    k.contains("__") || top.iter().any(|t| t.eq_ignore_ascii_case(k))
                })
                .split("__"),
        );
    }
    // `groups[1].prompt_length=5` sets one element of a list: applied to the merged tree, after
    // every layer (figment merges lists whole)
    let mut indexed = Vec::new();
    for o in &src.overrides {
        match o.split_once('=') {
            Some((k, v)) if k.contains('[') => indexed.push((o, k.trim(), v)),
            _ => fig = fig.merge(parse_override(o)?),
        }
    }
    let mut tree: serde_json::Value = fig.extract().map_err(|e| {
        // name the key as the other errors do, without figment's profile prefix
        let from = e
            .metadata
            .as_ref()
            .map(|m| format!(" (from {})", m.name))
            .unwrap_or_default();
        LoadError::File(format!(
            "config error: `{}`: {}{from}",
            e.path.join("."),
            e.kind
        ))
    })?;
    for (o, k, v) in indexed {
        let value: serde_json::Value = override_value(o, v)?;
        let slot = template::lookup_mut(&mut tree, k).ok_or_else(|| {
            LoadError::File(format!(
                "--override `{o}`: `{k}` is not in the config (a list element must exist: set the whole list to add one)"
            ))
        })?;
        *slot = value;
    }

    let mut errors = Errors::default();
    if src.env {
        job_completion_index(&mut tree, &src.overrides, &mut errors);
    }
    template::resolve(&mut tree, &mut errors);
    relative_to_files(&mut tree, &fig);
    schema::check(&tree, &mut errors);
    if !errors.is_empty() {
        // The checks across keys (a mean within its min and max, a tokenizer name) still run
        // on the keys that passed: put the defaults back where a value is wrong and validate
        // that, so every problem is reported in one go.
        let defaults = serde_json::to_value(Config::default()).expect("config serializes");
        let mut repaired = tree.clone();
        for e in &errors.0 {
            template::restore_default(&mut repaired, &defaults, &e.key);
        }
        if let Ok(c) = serde_json::from_value::<Config>(repaired)
            && let Err(more) = c.validate()
        {
            for m in more.0 {
                if !errors.0.iter().any(|e| e.key == m.key) {
                    errors.0.push(m);
                }
            }
        }
        return Err(LoadError::Invalid(with_origins(errors, &fig)));
    }
    let config: Config = serde_json::from_value(tree.clone()).map_err(|e| {
        LoadError::Invalid(Errors(vec![ConfigError {
            key: "(config)".into(),
            msg: e.to_string(),
            origin: None,
        }]))
    })?;
    config
        .validate()
        .map_err(|e| LoadError::Invalid(with_origins(e, &fig)))?;
    let tree = serde_json::to_value(&config).expect("config serializes");
    let explicit: Vec<String> = leaf_keys(&tree)
        .into_iter()
        .filter(|k| origin(&fig, k).is_some())
        .collect();
    let warnings = unused_type_keys(&tree, &explicit, &fig, &|k| {
        rank(&fig, k, &files, &src.overrides)
    });
    Ok(Resolved {
        config,
        tree,
        explicit,
        warnings,
    })
}

/// A Kubernetes Indexed Job gives each pod its index in `JOB_COMPLETION_INDEX`: it sets
/// `client.shard.index` of a sharded run (`client.shard` given), unless an override sets it.
fn job_completion_index(tree: &mut serde_json::Value, overrides: &[String], errors: &mut Errors) {
    const VAR: &str = "JOB_COMPLETION_INDEX";
    let Ok(v) = std::env::var(VAR) else {
        return;
    };
    let overridden = overrides.iter().any(|o| {
        o.split_once('=')
            .is_some_and(|(k, _)| k.trim() == "client.shard.index")
    });
    let Some(shard) = tree
        .get_mut("client")
        .and_then(|c| c.get_mut("shard"))
        .and_then(|s| s.as_object_mut())
    else {
        return;
    };
    if overridden {
        return;
    }
    match v.trim().parse::<u32>() {
        Ok(i) => {
            shard.insert("index".into(), i.into());
        }
        Err(_) => errors.push(
            "client.shard.index",
            format!("{VAR}=`{v}` is not a shard index (a whole number)"),
        ),
    }
}

/// Dotted paths of every leaf of `tree` (list elements are leaves).
fn leaf_keys(tree: &serde_json::Value) -> Vec<String> {
    fn walk(v: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) if !m.is_empty() => {
                for (k, v) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(v, &p, out);
                }
            }
            _ => out.push(prefix.to_string()),
        }
    }
    let mut out = Vec::new();
    walk(tree, "", &mut out);
    out
}

/// Where in the layering the value of `key` was set: 0 defaults, then the files in order, the
/// environment, the overrides in order.
fn rank(fig: &Figment, key: &str, files: &[PathBuf], overrides: &[String]) -> usize {
    let Some(md) = fig.find_metadata(key.split('[').next().unwrap_or(key)) else {
        return 0;
    };
    if let Some(k) = md.name.strip_prefix("--override ") {
        let i = overrides
            .iter()
            .rposition(|o| o.split_once('=').is_some_and(|(ok, _)| ok.trim() == k))
            .unwrap_or(0);
        return files.len() + 2 + i;
    }
    if md.name.to_lowercase().contains("environment") {
        return files.len() + 1;
    }
    match &md.source {
        Some(figment::Source::File(p)) => files.iter().position(|f| f == p).map_or(0, |i| i + 1),
        _ => 0,
    }
}

/// Keys set under a `dataset.<type>` or `workload.<type>` section that is not the chosen type,
/// by a layer no earlier than the one that chose the type: the run ignores them, which is worth
/// saying. (A base file's keys for other types, overridden by a later choice of type, are not.)
fn unused_type_keys(
    tree: &serde_json::Value,
    explicit: &[String],
    fig: &Figment,
    rank: &dyn Fn(&str) -> usize,
) -> Vec<String> {
    let mut out = Vec::new();
    for section in ["dataset", "workload"] {
        let Some(chosen) = tree
            .pointer(&format!("/{section}/type"))
            .and_then(|t| t.as_str())
        else {
            continue;
        };
        let types = schema::enum_strings(&format!("{section}.type"));
        for key in explicit {
            let Some(rest) = key.strip_prefix(&format!("{section}.")) else {
                continue;
            };
            let Some((sub, _)) = rest.split_once('.') else {
                continue;
            };
            if sub != chosen
                && types.iter().any(|t| t == sub)
                && rank(key) >= rank(&format!("{section}.type"))
            {
                let from = origin(fig, key)
                    .map(|o| format!(" (from {o})"))
                    .unwrap_or_default();
                out.push(format!(
                    "`{key}` is set{from} but {section}.type is `{chosen}`: only `{sub}` {section}s use it"
                ));
            }
        }
    }
    out
}

/// A relative path set in a config file is relative to that file's directory (so presets work
/// from any working directory); set anywhere else (environment, override) it is relative to
/// the working directory.
fn relative_to_files(tree: &mut serde_json::Value, fig: &Figment) {
    for key in schema::path_keys(tree) {
        let Some(md) = fig.find_metadata(&key) else {
            continue;
        };
        let Some(figment::Source::File(file)) = &md.source else {
            continue;
        };
        if let Some(slot) = template::lookup_mut(tree, &key) {
            anchor(slot, file.parent().unwrap_or(Path::new(".")));
        }
    }
}

/// A relative path in `slot` made relative to `dir` (empty, absolute and `builtin:` values
/// stay as they are).
fn anchor(slot: &mut serde_json::Value, dir: &Path) {
    let Some(s) = slot.as_str() else {
        return;
    };
    let p = Path::new(s);
    if s.is_empty() || p.is_absolute() || s.starts_with("builtin:") {
        return;
    }
    *slot = serde_json::Value::String(dir.join(p).display().to_string());
}

/// Every relative file path of `tree` (a config tree, as a config file holds it) made relative
/// to `dir`, as loading the file from `dir` would: for moving a section of one config file
/// into another file (the service's dataset mixes).
pub fn anchor_paths(tree: &mut serde_json::Value, dir: &Path) {
    for key in schema::path_keys(tree) {
        if let Some(slot) = template::lookup_mut(tree, &key) {
            anchor(slot, dir);
        }
    }
}

fn with_origins(mut errors: Errors, fig: &Figment) -> Errors {
    for e in &mut errors.0 {
        if e.origin.is_none() {
            e.origin = origin(fig, &e.key);
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(yaml: &str, overrides: &[&str]) -> Result<Resolved, LoadError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.yaml");
        std::fs::write(&p, yaml).unwrap();
        load(&Sources {
            files: vec![p],
            overrides: overrides.iter().map(|s| s.to_string()).collect(),
            env: false,
        })
    }

    fn errs(r: Result<Resolved, LoadError>) -> Vec<String> {
        match r {
            Err(LoadError::Invalid(e)) => e.0.iter().map(|e| e.to_string()).collect(),
            Err(e) => vec![e.to_string()],
            Ok(_) => vec![],
        }
    }

    #[test]
    fn defaults_load_and_validate() {
        let r = load(&Sources::default()).unwrap();
        // the default run directory is new for every run: name and start time
        assert_eq!(
            r.config.run_dir,
            format!("./output/run-{}", crate::template::now())
        );
        let mut c = r.config.clone();
        c.run_dir = Config::default().run_dir;
        assert_eq!(c, Config::default());
        assert!(
            r.explicit.is_empty() && r.warnings.is_empty(),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn files_layer_in_order_after_their_bases_with_paths_relative_to_each_file() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("presets")).unwrap();
        std::fs::write(
            d.path().join("base.yaml"),
            "seed: 1\nanalysis:\n  slo:\n    ttft_ms: 250\nworkload:\n  azure:\n    trace_path: traces/a.csv\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("presets/azure.yaml"),
            "base: ../base.yaml\nseed: 2\nworkload:\n  type: azure\n  mooncake:\n    trace_path: m.jsonl\n",
        )
        .unwrap();
        std::fs::write(d.path().join("last.yaml"), "seed: 3\n").unwrap();
        let r = load(&Sources {
            files: vec![
                d.path().join("presets/azure.yaml"),
                d.path().join("last.yaml"),
            ],
            overrides: vec![],
            env: false,
        })
        .unwrap();
        assert_eq!(r.config.seed, 3, "later files win");
        assert_eq!(
            r.config.analysis.slo.ttft_ms,
            Some(250.0),
            "the base applies"
        );
        assert_eq!(
            r.config.workload.azure.trace_path.as_deref(),
            Some(d.path().join("traces/a.csv").to_str().unwrap()),
            "relative to the file that set it"
        );
        assert!(r.is_explicit("seed") && !r.is_explicit("client.model"));
        // the mooncake key does not apply to an azure workload: a warning, not an error
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert!(
            r.warnings[0].contains("`workload.mooncake.trace_path`")
                && r.warnings[0].contains("workload.type is `azure`"),
            "{}",
            r.warnings[0]
        );
        // a cycle is an error naming the file
        std::fs::write(d.path().join("base.yaml"), "base: presets/azure.yaml\n").unwrap();
        let e = load(&Sources {
            files: vec![d.path().join("presets/azure.yaml")],
            ..Sources::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("cycle"), "{e}");
    }

    #[test]
    fn overrides_beat_file_and_parse_as_yaml() {
        let r = load_str(
            "seed: 3\nworkload:\n  constant:\n    target_qps: 1\n",
            &[
                "workload.constant.target_qps=2.5",
                "dataset.type=sharegpt",
                "dataset.sharegpt.path=/x.json",
            ],
        )
        .unwrap();
        assert_eq!(r.config.seed, 3);
        assert_eq!(r.config.workload.constant.target_qps, 2.5);
        assert_eq!(r.config.dataset.kind, crate::dataset::DatasetType::Sharegpt);
    }

    #[test]
    fn overrides_reach_list_elements_and_huge_numbers_name_their_key() {
        let r = load_str("", &["dataset.synthetic_shared.groups[0].prompt_length=5"]).unwrap();
        assert_eq!(r.config.dataset.synthetic_shared.groups[0].prompt_length, 5);
        let e = errs(load_str(
            "",
            &["dataset.synthetic_shared.groups[9].prompt_length=5"],
        ));
        assert!(e[0].contains("a list element must exist"), "{e:?}");
        let e = errs(load_str("", &["seed=99999999999999999999999"]));
        assert!(e[0].starts_with("config error: `seed`: "), "{e:?}");
        let e = errs(load_str(
            "workload:\n  constant:\n    target_qps: .nan\n",
            &[],
        ));
        assert!(e[0].contains("got no value"), "{e:?}");
    }

    #[test]
    fn all_errors_reported_together_with_paths_and_suggestions() {
        let e = errs(load_str(
            "seed: -1\nworkload:\n  type: constnt\n  constant:\n    target_qsp: 3\n    burstiness: 0\nclient:\n  timeout_s: \"soon\"\n",
            &["dataset.random.num_prompts=0"],
        ));
        let all = e.join("\n");
        assert!(all.contains("`seed`"), "{all}");
        assert!(
            all.contains("`workload.type`") && all.contains("constant"),
            "{all}"
        );
        assert!(
            all.contains("`workload.constant.target_qsp`: unknown key; did you mean `target_qps`"),
            "{all}"
        );
        assert!(all.contains("`workload.constant.burstiness`"), "{all}");
        assert!(
            all.contains("`client.timeout_s`: expected a number"),
            "{all}"
        );
        assert!(
            all.contains("`dataset.random.num_prompts`") && all.contains("--override"),
            "{all}"
        );
        assert_eq!(e.len(), 6, "{all}");
    }

    #[test]
    fn checks_across_keys_run_beside_type_errors() {
        let e = errs(load_str(
            "seed: -1\ntokenizer: builtin:cl100k\n",
            &[
                "workload.time_scale=0.5",
                "workload.constant.target_qps=0",
                "dataset.random.input_tokens=5",
                "dataset.random.input_min=10",
            ],
        ));
        let all = e.join("\n");
        for key in [
            "`seed`",
            "`tokenizer`",
            "`workload.time_scale`",
            "`workload.constant.target_qps`",
            "`dataset.random.input_tokens`",
        ] {
            assert!(all.contains(key), "{key} missing from:\n{all}");
        }
    }

    #[test]
    fn unknown_key_at_wrong_level_suggests_full_path() {
        let e = errs(load_str("workload:\n  target_qps: 3\n", &[]));
        assert!(
            e[0].contains("did you mean `workload.constant.target_qps`"),
            "{e:?}"
        );
    }

    #[test]
    fn templates_resolve_keys_and_env() {
        let home = std::env::var("HOME").expect("HOME is set");
        let r = load_str("run_dir: ${HOME}/${workload.type}-${seed}\nseed: 9\n", &[]).unwrap();
        assert_eq!(r.config.run_dir, format!("{home}/constant-9"));
        let e = errs(load_str("run_dir: ${NOPE_NOT_SET_ANYWHERE}\n", &[]));
        assert!(
            e[0].contains("`run_dir`") && e[0].contains("NOPE_NOT_SET_ANYWHERE"),
            "{e:?}"
        );
    }

    #[test]
    fn bad_yaml_names_file_and_line() {
        let e = errs(load_str("seed: 1\n  bad: [\n", &[]));
        assert!(e[0].contains("config.yaml:"), "{e:?}");
    }

    #[test]
    fn cross_field_rules() {
        let e = errs(load_str("dataset:\n  type: sharegpt\n", &[]));
        assert!(
            e[0].contains("`dataset.sharegpt.path`: is required"),
            "{e:?}"
        );
    }
}
