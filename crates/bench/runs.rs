//! `bench runs`: the catalog from the command line (list, show, tag, rm, import).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use bench_catalog::{Catalog, Entry, Filter, Kind, Status};
use bench_config::Config;
use bench_types::manifest;
use bench_types::stage::exit;

use crate::cli::RunsCmd;
use crate::driver::Failure;

fn failure(e: impl std::fmt::Display) -> Failure {
    Failure::new(exit::FAILURE, e.to_string())
}

/// Runs one `bench runs` command against `catalog.url`; an unreachable catalog is an error
/// here (exit 1).
pub fn run(cfg: &Config, cmd: &RunsCmd) -> Result<i32, Failure> {
    bench_catalog::block_on(async {
        let c = Catalog::open(&cfg.catalog.url).await.map_err(failure)?;
        let code = command(&c, cmd).await;
        c.close().await;
        code
    })
}

async fn command(c: &Catalog, cmd: &RunsCmd) -> Result<i32, Failure> {
    match cmd {
        RunsCmd::List {
            search,
            tag,
            model,
            status,
            since,
            page,
            limit,
            json,
        } => {
            let status = status
                .as_deref()
                .map(|s| {
                    Status::parse(s).ok_or_else(|| {
                        Failure::new(
                            exit::BAD_INPUT,
                            format!(
                                "--status {s}: one of processing, success, failed, interrupted"
                            ),
                        )
                    })
                })
                .transpose()?;
            let since = since.as_deref().map(since_arg).transpose()?;
            let f = Filter {
                search: search.clone(),
                tag: tag.clone(),
                model: model.clone(),
                status,
                since,
                page: *page,
                limit: *limit,
                ..Filter::default()
            };
            let p = c.list(&f).await.map_err(failure)?;
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&p).expect("a page serializes")
                );
            } else {
                print!("{}", table(&p.entries));
                println!(
                    "page {} of {} ({} in all{})",
                    p.page,
                    p.pages().max(1),
                    p.total,
                    if p.page < p.pages() {
                        format!("; --page {} for more", p.page + 1)
                    } else {
                        String::new()
                    }
                );
            }
            Ok(exit::OK)
        }
        RunsCmd::Show { id, json } => {
            let e = found(c, id).await?;
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&e).expect("an entry serializes")
                );
            } else {
                print!("{}", show(&e));
            }
            Ok(exit::OK)
        }
        RunsCmd::Tag { id, changes } => {
            let e = found(c, id).await?;
            let (mut add, mut remove) = (Vec::new(), Vec::new());
            for ch in changes {
                match (ch.strip_prefix('+'), ch.strip_prefix('-')) {
                    (Some(t), _) if !t.is_empty() => add.push(t.to_string()),
                    (_, Some(t)) if !t.is_empty() => remove.push(t.to_string()),
                    _ => {
                        return Err(Failure::new(
                            exit::BAD_INPUT,
                            format!("`{ch}`: a tag change is +TAG or -TAG"),
                        ));
                    }
                }
            }
            let tags = c.tag(&e.id, &add, &remove).await.map_err(failure)?;
            println!("{} {}: tags {}", e.id, e.name, tags.join(", "));
            Ok(exit::OK)
        }
        RunsCmd::Rm { id, files } => {
            let e = found(c, id).await?;
            if *files && let Some(dir) = &e.local_dir {
                let p = Path::new(dir);
                // only a directory bench wrote: a run's manifest or an experiment's file
                let ours = p.join(bench_types::files::MANIFEST).is_file()
                    || p.join("experiment.json").is_file();
                if ours {
                    std::fs::remove_dir_all(p)
                        .map_err(|e| failure(format!("removing {}: {e}", p.display())))?;
                    println!("removed {}", p.display());
                } else if p.exists() {
                    return Err(Failure::new(
                        exit::BAD_INPUT,
                        format!(
                            "{}: not a bench run directory (no manifest.json): left in place, entry kept",
                            p.display()
                        ),
                    ));
                }
            }
            c.remove(&e.id).await.map_err(failure)?;
            println!("removed {} {} from the catalog", e.id, e.name);
            Ok(exit::OK)
        }
        RunsCmd::Import { dirs } => {
            let mut n = 0;
            for d in dirs {
                for e in entries_of_dir(d)? {
                    c.upsert(&e).await.map_err(failure)?;
                    println!(
                        "imported {} {} ({}, {})",
                        e.id,
                        e.name,
                        e.kind.as_str(),
                        e.status.as_str()
                    );
                    n += 1;
                }
            }
            println!("{n} imported into {}", c.url());
            Ok(exit::OK)
        }
    }
}

async fn found(c: &Catalog, id: &str) -> Result<Entry, Failure> {
    c.get(id).await.map_err(failure)?.ok_or_else(|| {
        Failure::new(
            exit::BAD_INPUT,
            format!(
                "no run or experiment `{id}` in {} (bench runs list)",
                c.url()
            ),
        )
    })
}

/// `--since`: a date (`2026-12-01`, midnight UTC) or an RFC 3339 time, as the catalog's text.
fn since_arg(s: &str) -> Result<String, Failure> {
    if let Ok(d) = s.parse::<jiff::civil::Date>() {
        return Ok(format!("{d}T00:00:00Z"));
    }
    s.parse::<jiff::Timestamp>()
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .map_err(|_| {
            Failure::new(
                exit::BAD_INPUT,
                format!("--since {s}: not a date (2026-12-01) or an RFC 3339 time"),
            )
        })
}

fn num(m: &Option<serde_json::Value>, k: &str) -> String {
    m.as_ref()
        .and_then(|m| m.get(k))
        .and_then(|v| v.as_f64())
        .map(|v| {
            if v >= 100.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        })
        .unwrap_or_else(|| "-".into())
}

fn table(es: &[Entry]) -> String {
    let mut rows = vec![[
        "ID".to_string(),
        "NAME".into(),
        "STATUS".into(),
        "MODEL".into(),
        "STARTED".into(),
        "TTFT p50 ms".into(),
        "OUT tok/s".into(),
        "TAGS".into(),
    ]];
    for e in es {
        rows.push([
            e.id.chars().take(8).collect(),
            if e.kind == Kind::Experiment {
                format!("{} (experiment)", e.name)
            } else {
                e.name.clone()
            },
            e.status.as_str().into(),
            e.model.clone().unwrap_or_else(|| "-".into()),
            e.started_at
                .chars()
                .take(19)
                .collect::<String>()
                .replace('T', " "),
            num(&e.metrics, "ttft_ms_p50"),
            num(&e.metrics, "output_throughput"),
            e.tags.join(","),
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut o = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(o, "{}", line.join("  ").trim_end());
    }
    o
}

fn show(e: &Entry) -> String {
    let mut o = String::new();
    let mut kv = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            let _ = writeln!(o, "{k:<14}{v}");
        }
    };
    kv("id", Some(e.id.clone()));
    kv("kind", Some(e.kind.as_str().into()));
    kv("name", Some(e.name.clone()));
    kv("description", Some(e.description.clone()));
    kv("tags", Some(e.tags.join(", ")));
    kv("status", Some(e.status.as_str().into()));
    kv("error", e.error.clone());
    kv("model", e.model.clone());
    kv("endpoint", e.endpoint.clone());
    kv("api", e.api.clone());
    kv(
        "evaluation",
        Some(format!(
            "dataset {}, workload {}",
            e.dataset_type.as_deref().unwrap_or("-"),
            e.workload_type.as_deref().unwrap_or("-")
        )),
    );
    kv("concurrency", e.concurrency.map(|c| c.to_string()));
    kv("rate", e.rate.map(|r| format!("{r} req/s")));
    kv("started", Some(e.started_at.clone()));
    kv("ended", e.ended_at.clone());
    kv("directory", e.local_dir.clone());
    kv(
        "remote",
        e.remote
            .as_ref()
            .map(|r| format!("{} ({})", r.url, r.status)),
    );
    kv("experiment", e.experiment_id.clone());
    if let Some(serde_json::Value::Object(m)) = &e.metrics {
        for (k, v) in m {
            kv(k, Some(v.to_string().trim_matches('"').to_string()));
        }
    }
    o
}

/// A stable id for a directory whose manifest has none (written before ids existed): a UUID
/// made from its absolute path, so importing it twice gives one entry.
fn id_for_path(p: &Path) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(crate::catalog::absolute(p).as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8: custom
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    uuid::Uuid::from_bytes(b).to_string()
}

/// The catalog entries of a run directory, or of an experiment directory and its runs.
pub fn entries_of_dir(dir: &Path) -> Result<Vec<Entry>, Failure> {
    let bad = |m: String| Failure::new(exit::BAD_INPUT, format!("{}: {m}", dir.display()));
    if dir.join("experiment.json").is_file() {
        return experiment_entries(dir);
    }
    let m = manifest::read(dir)
        .map_err(|e| Failure::new(exit::BAD_INPUT, e.to_string()))?
        .ok_or_else(|| {
            bad(
                "not a run directory (no manifest.json) nor an experiment (no experiment.json)"
                    .into(),
            )
        })?;
    Ok(vec![run_entry_of(dir, &m, None)])
}

fn run_entry_of(dir: &Path, m: &manifest::Manifest, experiment: Option<&str>) -> Entry {
    // the config the requests were sent with (a later `--stage analysis` may have had another)
    let c = m
        .stage(manifest::Stage::Client)
        .map(|s| &s.config)
        .filter(|c| c.is_object())
        .unwrap_or(&m.config);
    let text = |ptr: &str| c.pointer(ptr).and_then(|v| v.as_str()).map(str::to_string);
    let id = if m.id.is_empty() {
        id_for_path(dir)
    } else {
        m.id.clone()
    };
    let workload_type = text("/workload/type");
    let (concurrency, rate) = match workload_type.as_deref() {
        Some("concurrency") => (
            c.pointer("/workload/concurrency/concurrency")
                .and_then(|v| v.as_i64()),
            None,
        ),
        Some("constant") => (
            None,
            c.pointer("/workload/constant/target_qps")
                .and_then(|v| v.as_f64()),
        ),
        _ => (None, None),
    };
    let first = m.stages.first();
    let last = m.stages.last();
    let summary = crate::catalog::headline(dir);
    let verdict = summary
        .as_ref()
        .and_then(|s| s.get("verdict"))
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let (status, error) = match (summary.is_some(), verdict.as_deref()) {
        (true, Some("failed")) => (Status::Failed, Some("verdict failed".to_string())),
        (true, _) => (Status::Success, None),
        (false, _) if dir.join(bench_types::files::REQUESTS).is_file() => (
            Status::Interrupted,
            Some("no summary.json: the analysis never ran".into()),
        ),
        (false, _) => (Status::Failed, Some("no requests.parquet".into())),
    };
    let ended = last.and_then(|s| {
        let t: jiff::Timestamp = s.started_at.parse().ok()?;
        let end = t
            .checked_add(jiff::SignedDuration::from_secs_f64(s.seconds))
            .ok()?;
        Some(end.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
    });
    let name = if m.name.is_empty() {
        text("/name").unwrap_or_else(|| "run".into())
    } else {
        m.name.clone()
    };
    Entry {
        id,
        kind: Kind::Run,
        name,
        description: m.description.clone(),
        tags: m.tags.clone(),
        status,
        error,
        model: text("/client/model").filter(|s| !s.is_empty()),
        endpoint: text("/client/endpoint"),
        api: text("/client/api"),
        dataset_type: text("/dataset/type"),
        workload_type,
        concurrency,
        rate,
        started_at: first
            .map(|s| s.started_at.clone())
            .unwrap_or_else(bench_catalog::now),
        ended_at: ended,
        metrics: summary,
        local_dir: Some(crate::catalog::absolute(dir)),
        remote: None,
        experiment_id: experiment.map(str::to_string),
    }
}

fn experiment_entries(dir: &Path) -> Result<Vec<Entry>, Failure> {
    let path = dir.join("experiment.json");
    let x: serde_json::Value = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            Failure::new(
                exit::BAD_INPUT,
                format!("{}: not a readable experiment.json", path.display()),
            )
        })?;
    let text = |k: &str| x.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let id = text("id").unwrap_or_else(|| id_for_path(dir));
    let runs: Vec<PathBuf> = crate::sweep::expand_runs(&[dir.to_path_buf()]);
    let mut out = Vec::new();
    let mut failed = 0;
    for r in &runs {
        if let Ok(Some(m)) = manifest::read(r) {
            let e = run_entry_of(r, &m, Some(&id));
            failed += usize::from(e.status != Status::Success);
            out.push(e);
        }
    }
    let started = out
        .iter()
        .map(|e| e.started_at.clone())
        .min()
        .unwrap_or_else(bench_catalog::now);
    let ended = out.iter().filter_map(|e| e.ended_at.clone()).max();
    out.insert(
        0,
        Entry {
            id,
            kind: Kind::Experiment,
            name: text("name").unwrap_or_else(|| "experiment".into()),
            description: text("description").unwrap_or_default(),
            tags: x
                .get("tags")
                .and_then(|t| serde_json::from_value(t.clone()).ok())
                .unwrap_or_default(),
            status: if failed == 0 {
                Status::Success
            } else {
                Status::Failed
            },
            error: (failed > 0).then(|| format!("{failed} of {} runs did not succeed", runs.len())),
            model: None,
            endpoint: None,
            api: None,
            dataset_type: None,
            workload_type: None,
            concurrency: None,
            rate: None,
            started_at: started,
            ended_at: ended,
            metrics: None,
            local_dir: Some(crate::catalog::absolute(dir)),
            remote: None,
            experiment_id: None,
        },
    );
    Ok(out)
}
