//! `bench merge SHARD_DIR... --out RUN_DIR`: the shards of a sharded run (each an ordinary run
//! directory whose client sent its part of one workload) back into one run directory, then the
//! normal analysis.
//!
//! Checks first, each refusal naming the shards: every input is a shard of the same workload
//! (the SHA-256 of its workload.jsonl) and the same count, each index once, none missing.
//! Then the union: every shard's rows with a `shard` column, their instants moved onto one
//! anchor (the shared start), and every workload request exactly once. A request no shard
//! recorded (its shard died mid-run) becomes a `not_sent` row naming the shard. The merged
//! manifest keeps every shard's manifest; the shards' clock offsets are compared against a
//! bound, with a warning saying how much timing error they allow.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{RecordBatch, UInt32Array};
use arrow_schema::{DataType, Field, Schema};
use bench_types::manifest::{self, Manifest, Stage, StageRecord, StageUpdate};
use bench_types::record::read::{FileMeta, read_rows};
use bench_types::record::schema::{RequestRecord, schema, to_batch, writer_properties};
use bench_types::record::{StatusCounts, meta};
use bench_types::stage::exit;
use bench_types::{RequestStatus, files};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;

use crate::driver::Failure;

/// The `shard` column of a merged requests.parquet.
pub const SHARD_COLUMN: &str = "shard";

/// What `bench merge` was asked.
#[derive(Debug, Clone)]
pub struct MergeArgs {
    /// Shard directories, directories holding shard directories, or object-store URLs.
    pub inputs: Vec<String>,
    /// The merged run directory.
    pub out: PathBuf,
    /// Replace a run already in `out`.
    pub force: bool,
    /// Warn when the shards' clocks may be this far apart (ms).
    pub clock_bound_ms: f64,
    /// The storage settings (endpoint, region, retries) for `s3://` inputs.
    pub storage: bench_config::StorageConfig,
}

/// The shards pushed under an object-store prefix, pulled (every file checked) into
/// `<out>.shards/<shard>/`, which is kept beside the merged run (its manifest points there).
fn pull_shards(
    url: &str,
    storage: &bench_config::StorageConfig,
    out: &Path,
) -> Result<Vec<PathBuf>, Failure> {
    bench_config::storage::parse_s3_url(url).map_err(|m| bad(format!("{url}: {m}")))?;
    let mut s = storage.clone();
    s.url = Some(url.to_string());
    let cfg = bench_store::StoreConfig::from_config(&s).expect("the url is set");
    let fail = |e: bench_store::StoreError| Failure::new(exit::FAILURE, e.to_string());
    let runs = bench_store::list_runs(&cfg, url).map_err(fail)?;
    if runs.is_empty() {
        return Err(bad(format!(
            "{url}: no complete run copy (a directory with manifest.json) under it"
        )));
    }
    let base = PathBuf::from(format!("{}.shards", out.display()));
    let mut dirs = Vec::new();
    for r in &runs {
        let name = r.rsplit('/').next().unwrap_or("shard");
        let dest = base.join(name);
        if !dest.join(files::MANIFEST).is_file() {
            bench_store::pull(&cfg, r, &dest).map_err(fail)?;
        }
        tracing::info!("merge: {r} -> {}", dest.display());
        dirs.push(dest);
    }
    Ok(dirs)
}

fn bad(msg: impl Into<String>) -> Failure {
    Failure::new(exit::BAD_INPUT, msg)
}

/// The shard directories the inputs name: a directory holding a manifest.json is a shard; one
/// without is searched one level down (`.../shards/shard-0`, ...). Object-store inputs need
/// the storage support (`storage.url`) and are refused until it exists.
pub fn shard_inputs(
    inputs: &[String],
    storage: &bench_config::StorageConfig,
    out: &Path,
) -> Result<Vec<PathBuf>, Failure> {
    let mut dirs = Vec::new();
    for i in inputs {
        if i.contains("://") {
            dirs.extend(pull_shards(i, storage, out)?);
            continue;
        }
        let p = PathBuf::from(i);
        if !p.is_dir() {
            return Err(bad(format!("{i}: no such directory")));
        }
        if p.join(files::MANIFEST).is_file() {
            dirs.push(p);
            continue;
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(&p)
            .map_err(|e| bad(format!("{i}: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|d| d.join(files::MANIFEST).is_file())
            .collect();
        if found.is_empty() {
            return Err(bad(format!(
                "{i}: no {} in it nor in its subdirectories: not a shard directory",
                files::MANIFEST
            )));
        }
        found.sort();
        dirs.extend(found);
    }
    Ok(dirs)
}

/// One shard, read.
struct ShardIn {
    dir: PathBuf,
    index: u32,
    count: u32,
    manifest: Manifest,
    workload_sha: String,
    /// The client stage finished (its record is in the manifest).
    finished: bool,
    /// Its requests.parquet's metadata, once read.
    file: FileMeta,
}

impl ShardIn {
    fn host(&self) -> String {
        self.clock()
            .and_then(|c| c.get("host"))
            .and_then(|h| h.as_str())
            .or_else(|| self.manifest.host.get("hostname").map(String::as_str))
            .unwrap_or("?")
            .to_string()
    }
    fn clock(&self) -> Option<&serde_json::Value> {
        self.manifest.stage(Stage::Client)?.stats.get("clock")
    }
    fn name(&self) -> String {
        format!("shard {} ({})", self.index, self.dir.display())
    }
}

fn read_shard(dir: &Path) -> Result<ShardIn, Failure> {
    let m = manifest::read(dir)
        .map_err(|e| bad(e.to_string()))?
        .ok_or_else(|| bad(format!("{}: no {}", dir.display(), files::MANIFEST)))?;
    let shard = &m.config["client"]["shard"];
    let (Some(index), Some(count)) = (shard["index"].as_u64(), shard["count"].as_u64()) else {
        return Err(bad(format!(
            "{}: not a shard: client.shard is not set in its {}",
            dir.display(),
            files::MANIFEST
        )));
    };
    let wl = dir.join(files::WORKLOAD);
    let (_, workload_sha) =
        manifest::sha256_file(&wl).map_err(|e| bad(format!("{}: {e}", wl.display())))?;
    let finished = m.stage(Stage::Client).is_some();
    let path = dir.join(files::REQUESTS);
    if finished && !path.is_file() {
        return Err(bad(format!(
            "{}: missing, though its manifest says the client finished",
            path.display()
        )));
    }
    Ok(ShardIn {
        dir: dir.to_path_buf(),
        index: index as u32,
        count: count as u32,
        manifest: m,
        workload_sha,
        finished,
        file: FileMeta::default(),
    })
}

/// The `bench.*` metadata of a requests.parquet (its footer only), when readable.
fn file_meta(path: &Path) -> Option<FileMeta> {
    use parquet::file::reader::FileReader;
    let f = std::fs::File::open(path).ok()?;
    let r = parquet::file::reader::SerializedFileReader::new(f).ok()?;
    let kv: Vec<(String, String)> = r
        .metadata()
        .file_metadata()
        .key_value_metadata()?
        .iter()
        .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
        .collect();
    Some(FileMeta::parse(&kv))
}

/// A shard's rows (none when it died before its first flush), read when its turn comes: one
/// shard's rows in memory at a time.
fn read_records(s: &mut ShardIn) -> Result<Vec<RequestRecord>, Failure> {
    let path = s.dir.join(files::REQUESTS);
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let (rows, kv) = read_rows(&path).map_err(|e| bad(e.to_string()))?;
    s.file = FileMeta::parse(&kv);
    Ok(rows)
}

/// Refuses inputs that are not the shards of one workload, each index once.
fn check_shards(shards: &[ShardIn]) -> Result<(), Failure> {
    let first = &shards[0];
    for s in &shards[1..] {
        if s.workload_sha != first.workload_sha {
            return Err(bad(format!(
                "{} and {} ran different workloads (workload.jsonl sha256 {} vs {}): not shards of one run",
                first.name(),
                s.name(),
                &first.workload_sha[..12],
                &s.workload_sha[..12]
            )));
        }
        if s.count != first.count {
            return Err(bad(format!(
                "{} is one of {} shards, {} one of {}",
                first.name(),
                first.count,
                s.name(),
                s.count
            )));
        }
    }
    let mut by_index: BTreeMap<u32, &ShardIn> = BTreeMap::new();
    for s in shards {
        if let Some(other) = by_index.insert(s.index, s) {
            return Err(bad(format!(
                "shard index {} twice: {} and {}",
                s.index,
                other.dir.display(),
                s.dir.display()
            )));
        }
    }
    let missing: Vec<String> = (0..first.count)
        .filter(|i| !by_index.contains_key(i))
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(bad(format!(
            "shard{} {} of {} missing (given: {})",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            first.count,
            by_index
                .keys()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(())
}

/// What the merge produced, for the manifest and the caller.
pub struct Merged {
    /// The resolved config of the shards (client.shard removed).
    pub tree: serde_json::Value,
    /// Rows by status (non-warmup).
    pub by_status: StatusCounts,
    /// Rows filled in for requests a shard never recorded, by shard.
    pub filled: BTreeMap<u32, u64>,
    /// The clock warning, when the offsets exceed the bound.
    pub clock_warning: Option<String>,
    /// The manifest's client stage record.
    pub record: StageRecord,
}

/// Merges the shards into `out` (requests.parquet, workload.jsonl, the client stage of the
/// manifest). Analysis is the caller's.
pub fn merge(args: &MergeArgs) -> Result<Merged, Failure> {
    let started = std::time::SystemTime::now();
    let t0 = std::time::Instant::now();
    let dirs = shard_inputs(&args.inputs, &args.storage, &args.out)?;
    let mut shards = dirs
        .iter()
        .map(|d| read_shard(d))
        .collect::<Result<Vec<_>, _>>()?;
    check_shards(&shards)?;
    shards.sort_by_key(|s| s.index);
    let count = shards[0].count;

    let wl_path = shards[0].dir.join(files::WORKLOAD);
    let wl = bench_types::workload::read(&wl_path).map_err(|e| bad(e.to_string()))?;
    let owner = bench_types::shard::assign(&wl, count);
    let time_scale = shards[0].manifest.config["client"]["time_scale"]
        .as_f64()
        .unwrap_or(1.0);
    // (scheduled ns, session, turn) of every workload request, by id
    let mut sched: Vec<(i64, Option<u64>, Option<u32>)> = Vec::with_capacity(owner.len());
    for e in &wl.entries {
        let ns = (e.timestamp * time_scale * 1e6).round() as i64;
        for r in &e.requests {
            sched.push((ns, r.session_id, r.turn));
        }
    }
    let n = sched.len() as u64;

    // one anchor: the shared start (every shard's when they agree; a shard that died before
    // its first flush has none)
    let anchor = shards
        .iter()
        .filter_map(|s| {
            let path = s.dir.join(files::REQUESTS);
            file_meta(&path).and_then(|m| m.anchor_unix_ns)
        })
        .min()
        .unwrap_or(0);

    let out = &args.out;
    if !args.force
        && manifest::read(out)
            .map_err(|e| bad(e.to_string()))?
            .is_some()
    {
        return Err(bad(format!(
            "--out {}: holds a run already; give another directory, or --force to replace it",
            out.display()
        )));
    }
    std::fs::create_dir_all(out)
        .map_err(|e| Failure::new(exit::FAILURE, format!("{}: {e}", out.display())))?;

    let mut seen = vec![false; sched.len()];
    let mut by_status = StatusCounts::default();
    let mut filled: BTreeMap<u32, u64> = BTreeMap::new();
    let ext = merged_schema();
    let path = out.join(files::REQUESTS);
    let file = std::fs::File::create(&path)
        .map_err(|e| Failure::new(exit::FAILURE, format!("{}: {e}", path.display())))?;
    let mut w = ArrowWriter::try_new(file, ext.clone(), Some(writer_properties("bench merge")))
        .map_err(|e| Failure::new(exit::FAILURE, format!("{}: {e}", path.display())))?;
    let werr = |e: &dyn std::fmt::Display| {
        Failure::new(exit::FAILURE, format!("writing {}: {e}", path.display()))
    };
    let mut shard_entries = Vec::new();
    for s in &mut shards {
        let mut rows = read_records(s)?;
        for r in rows.iter().filter(|r| !r.warmup) {
            let id = r.request_id as usize;
            if id >= owner.len() || owner[id] != s.index {
                return Err(bad(format!(
                    "{}: request {} is not one of this shard's requests (the shards split the workload differently: different bench versions?)",
                    s.name(),
                    r.request_id
                )));
            }
            if std::mem::replace(&mut seen[id], true) {
                return Err(bad(format!(
                    "{}: request {} recorded twice",
                    s.name(),
                    r.request_id
                )));
            }
            by_status.add(r.status);
        }
        let host = s.host();
        let mut missing = Vec::new();
        for (id, &o) in owner.iter().enumerate() {
            if o == s.index && !seen[id] {
                seen[id] = true;
                let (ns, session, turn) = sched[id];
                let mut r = RequestRecord::new(id as u64, ns, RequestStatus::NotSent);
                r.session_id = session;
                r.turn = turn;
                r.error = Some(if s.finished {
                    format!(
                        "not sent: missing from the records of shard {} ({host})",
                        s.index
                    )
                } else {
                    format!(
                        "not sent: shard {} ({host}) ended before recording it (it never finished)",
                        s.index
                    )
                });
                by_status.add(RequestStatus::NotSent);
                missing.push(r);
            }
        }
        if !missing.is_empty() {
            filled.insert(s.index, missing.len() as u64);
            tracing::warn!(
                "merge: {}: {} of its requests have no record: written as not_sent rows naming the shard",
                s.name(),
                missing.len()
            );
        }
        // the shard's instants are from its own anchor: move them onto the shared one
        let shift = match s.file.anchor_unix_ns {
            Some(a) => anchor - a,
            None => 0,
        };
        // the filled rows' schedule is already on the shared anchor
        for r in &mut missing {
            r.scheduled_ns += shift;
        }
        rows.extend(missing);
        let batch = to_batch(&rows, shift).map_err(|e| werr(&e))?;
        let shard_col = Arc::new(UInt32Array::from(vec![s.index; rows.len()]));
        let mut cols = batch.columns().to_vec();
        cols.push(shard_col);
        let batch = RecordBatch::try_new(ext.clone(), cols).map_err(|e| werr(&e))?;
        w.write(&batch).map_err(|e| werr(&e))?;
        shard_entries.push(serde_json::json!({
            "index": s.index,
            "dir": s.dir.display().to_string(),
            "host": host,
            "finished": s.finished,
            "rows": rows.iter().filter(|r| !r.warmup).count(),
            "not_recorded": filled.get(&s.index).copied().unwrap_or(0),
            "anchor_unix_ns": s.file.anchor_unix_ns,
            "clock": s.clock().cloned(),
            "manifest": serde_json::to_value(&s.manifest).unwrap_or_default(),
        }));
    }
    debug_assert!(seen.iter().all(|&x| x));
    let f0 = &shards[0].file;
    let mut kv = vec![
        (meta::ANCHOR_UNIX_NS, anchor.to_string()),
        (meta::WORKLOAD_REQUESTS, n.to_string()),
        (meta::TIME_SCALE, time_scale.to_string()),
        (meta::COMPLETE, "true".to_string()),
    ];
    if let Some(api) = &f0.api {
        kv.push((meta::API, api.clone()));
    }
    if let Some(mode) = &f0.mode {
        kv.push((
            meta::MODE,
            serde_json::json!({"mode": mode, "concurrency": f0.concurrency}).to_string(),
        ));
    }
    for (k, v) in kv {
        w.append_key_value_metadata(KeyValue::new(k.to_string(), v));
    }
    w.close().map_err(|e| werr(&e))?;
    let wl_out = out.join(files::WORKLOAD);
    std::fs::copy(&wl_path, &wl_out)
        .map_err(|e| Failure::new(exit::FAILURE, format!("{}: {e}", wl_out.display())))?;

    let clock_warning = clock_warning(&shards, args.clock_bound_ms);
    let mut tree = shards[0].manifest.config.clone();
    if let Some(c) = tree.get_mut("client").and_then(|c| c.as_object_mut()) {
        c.insert("shard".into(), serde_json::Value::Null);
    }
    tree["run_dir"] = out.display().to_string().into();
    let mut stats: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    stats.insert("requests".into(), n.into());
    for (st, k) in by_status.iter() {
        stats.insert(st.as_str().into(), k.into());
    }
    stats.insert("anchor_unix_ns".into(), anchor.into());
    stats.insert("shards".into(), shard_entries.into());
    if let Some(w) = &clock_warning {
        stats.insert("clock_warning".into(), w.clone().into());
    }
    let record = StageRecord {
        stage: Stage::Client,
        started_at: manifest::rfc3339(started),
        seconds: t0.elapsed().as_secs_f64(),
        outputs: vec![files::REQUESTS.into(), files::WORKLOAD.into()],
        stats,
        config: serde_json::Value::Null,
    };
    manifest::record_stage(
        out,
        StageUpdate {
            config: &tree,
            seed: shards[0].manifest.seed,
            record: record.clone(),
            inputs: &[("workload".to_string(), wl_out)],
            // a new run of its own, named as its shards were
            identity: &manifest::Identity {
                id: String::new(),
                name: shards[0].manifest.name.clone(),
                description: shards[0].manifest.description.clone(),
                tags: shards[0].manifest.tags.clone(),
            },
        },
    )
    .map_err(|e| Failure::new(exit::FAILURE, format!("writing the manifest: {e}")))?;
    Ok(Merged {
        tree,
        by_status,
        filled,
        clock_warning,
        record,
    })
}

/// requests.parquet's schema plus the `shard` column.
pub fn merged_schema() -> Arc<Schema> {
    let mut fields: Vec<Field> = schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new(SHARD_COLUMN, DataType::UInt32, false));
    Arc::new(Schema::new(fields))
}

/// The shards' clocks compared: a warning when two may be more than `bound_ms` apart.
fn clock_warning(shards: &[ShardIn], bound_ms: f64) -> Option<String> {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    let mut unc: f64 = 0.0;
    let mut unknown = Vec::new();
    for s in shards {
        let c = s.clock();
        let off = c.and_then(|c| c["offset_ms"].as_f64());
        let u = c.and_then(|c| c["uncertainty_ms"].as_f64());
        match (off, u) {
            (Some(o), Some(u)) => {
                lo = lo.min(o);
                hi = hi.max(o);
                unc = unc.max(u);
            }
            _ => unknown.push(s.index.to_string()),
        }
    }
    if !unknown.is_empty() {
        return Some(format!(
            "clock offset unknown for shard(s) {}: how far their schedules are out of step with the others' is not known",
            unknown.join(", ")
        ));
    }
    if shards.len() < 2 {
        return None;
    }
    let apart = hi - lo + 2.0 * unc;
    (apart > bound_ms).then(|| {
        format!(
            "the shards' clocks may be up to {apart:.1} ms apart (offsets {lo:+.1} to {hi:+.1} ms, each +/- {unc:.1} ms), more than {bound_ms} ms: \
             their schedules may be out of step by as much, which shifts the arrivals of one shard against another's \
             (rates over windows shorter than that are unreliable); each request's latencies are timed on one host and are unaffected"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(index: u32, clock: serde_json::Value) -> ShardIn {
        let mut stats = BTreeMap::new();
        stats.insert("clock".to_string(), clock);
        ShardIn {
            dir: PathBuf::from(format!("s{index}")),
            index,
            count: 3,
            manifest: Manifest {
                stages: vec![StageRecord {
                    stage: Stage::Client,
                    started_at: String::new(),
                    seconds: 0.0,
                    outputs: vec![],
                    stats,
                    config: serde_json::Value::Null,
                }],
                ..Manifest::empty(0)
            },
            workload_sha: String::new(),
            finished: true,
            file: FileMeta::default(),
        }
    }

    fn clock(offset: f64, unc: f64) -> serde_json::Value {
        serde_json::json!({"host": "h", "source": "chrony", "offset_ms": offset, "uncertainty_ms": unc})
    }

    #[test]
    fn clock_offsets_beyond_the_bound_are_a_warning_saying_what_they_allow() {
        let near = [shard(0, clock(0.5, 1.0)), shard(1, clock(-2.0, 1.0))];
        assert_eq!(clock_warning(&near, 10.0), None, "4.5 ms apart at most");
        let far = [
            shard(0, clock(0.5, 1.0)),
            shard(1, clock(12.0, 0.5)),
            shard(2, clock(-1.0, 0.2)),
        ];
        let w = clock_warning(&far, 10.0).unwrap();
        assert!(
            w.starts_with("the shards' clocks may be up to 15.0 ms apart (offsets -1.0 to +12.0 ms, each +/- 1.0 ms), more than 10 ms"),
            "{w}"
        );
        assert!(
            w.contains("latencies are timed on one host and are unaffected"),
            "{w}"
        );
        let unknown = [
            shard(0, clock(0.0, 1.0)),
            shard(1, serde_json::json!({"source": "none"})),
        ];
        assert!(
            clock_warning(&unknown, 10.0)
                .unwrap()
                .starts_with("clock offset unknown for shard(s) 1"),
        );
    }

    #[test]
    fn bad_inputs_are_named() {
        let s = bench_config::StorageConfig::default();
        let out = Path::new("/nonexistent/out");
        let e = shard_inputs(&["s3://Bad_Bucket/x".into()], &s, out)
            .err()
            .unwrap();
        assert_eq!(e.code, exit::BAD_INPUT);
        assert!(
            e.message.starts_with("s3://Bad_Bucket/x: "),
            "{}",
            e.message
        );
        let e = shard_inputs(&["/nonexistent/shards".into()], &s, out)
            .err()
            .unwrap();
        assert_eq!(e.message, "/nonexistent/shards: no such directory");
    }
}
