//! The experiment planned: its cells (the axes' cartesian product), every run resolved and
//! checked by the run config's own rules, each run's seed, and the resolver of runs found along
//! the way (a capacity search's probes).

use std::path::PathBuf;

use bench_config::{LoadError, Sources};
use serde_json::Value;

use super::file::{Experiment, Search, show, slug, yaml};

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
    /// The experiment's own `storage` section (its base config and overrides, no cell's).
    pub fn storage(&self) -> bench_config::StorageConfig {
        bench_config::load(&Sources {
            files: self.files.clone(),
            overrides: self.base.clone(),
            env: true,
        })
        .map(|r| r.config.storage)
        .unwrap_or_default()
    }

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
