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
    /// The YAML file (None: defaults only).
    pub file: Option<PathBuf>,
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

/// Loads, merges, resolves and validates the config. Every problem is reported at once.
pub fn load(src: &Sources) -> Result<Resolved, LoadError> {
    let mut fig = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = &src.file {
        let text = read_yaml_file(path)?;
        if !text.trim().is_empty() {
            fig = fig.merge(Yaml::file_exact(path));
        }
    }
    if src.env {
        fig = fig.merge(Env::prefixed("BENCH_").split("__"));
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
    template::resolve(&mut tree, &mut errors);
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
    Ok(Resolved { config, tree })
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
        let dir = std::env::temp_dir().join(format!("bc-{}-{}", std::process::id(), yaml.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("config.yaml");
        std::fs::write(&p, yaml).unwrap();
        load(&Sources {
            file: Some(p),
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
        assert_eq!(r.config, Config::default());
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
