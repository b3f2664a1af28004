//! `push`: a run or experiment directory to the store, its marker file last.

use std::path::Path;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

use crate::{PARALLEL, PART_BYTES, Remote, SHA256SUMS, StoreConfig, StoreError, one_line};
use bench_types::files::MANIFEST;

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// Where the copy is: `s3://bucket/prefix/<directory name>`.
    pub url: String,
    /// Files to upload (the marker included).
    pub files: usize,
    /// Bytes uploaded.
    pub bytes: u64,
    /// Files that failed, relative paths, with the error. When any failed, the marker
    /// (manifest.json or SHA256SUMS) is held back: the copy stays marked incomplete.
    pub failed: Vec<(String, String)>,
}

impl PushReport {
    /// Every file is in the store, the marker last.
    pub fn complete(&self) -> bool {
        self.failed.is_empty()
    }

    /// `complete`, or `partial: 2 of 14 files failed (a, b)`.
    pub fn status(&self) -> String {
        if self.complete() {
            return "complete".into();
        }
        let names: Vec<&str> = self.failed.iter().map(|(f, _)| f.as_str()).collect();
        format!(
            "partial: {} of {} files failed ({})",
            self.failed.len(),
            self.files,
            names.join(", ")
        )
    }
}

/// Uploads every file of `dir` (a run directory, or an experiment's with its runs) to
/// `<cfg.url>/<dir's name>/`, recursively, without temporary or hidden files. A run's
/// manifest.json first gets the checksums of the other files (`artifacts`) and goes last; an
/// experiment gets a SHA256SUMS file of all its files, uploaded last.
pub fn push(cfg: &StoreConfig, dir: &Path) -> Result<PushReport, StoreError> {
    push_dir(cfg, dir, false)
}

/// An experiment's own files, its runs left out (each run pushed itself) but for what changed
/// in them since (a run's log, and then its manifest): its SHA256SUMS lists every file, the
/// runs' included.
pub fn push_experiment_files(cfg: &StoreConfig, dir: &Path) -> Result<PushReport, StoreError> {
    push_dir(cfg, dir, true)
}

/// Whether `f` lies in one of the `runs` directories.
fn in_run(f: &str, runs: &[String]) -> bool {
    runs.iter().any(|r| {
        f.strip_prefix(r.as_str())
            .is_some_and(|t| t.starts_with('/'))
    })
}

/// The marker file of a copy, and the files of the experiment's runs that changed since each
/// run pushed itself (the run's log grows after its push; its manifest then changes too).
struct Marked {
    marker: &'static str,
    changed: Vec<String>,
}

/// Records the checksums that a pull verifies: a run's in its manifest; an experiment's runs'
/// in theirs and every file's in SHA256SUMS.
fn checksums(dir: &Path, files: &[String], runs: &[String]) -> Result<Marked, StoreError> {
    let manifest_error = |e: bench_types::FormatError| StoreError::Local {
        path: dir.to_path_buf(),
        msg: e.to_string(),
    };
    if dir.join(MANIFEST).is_file() {
        let others: Vec<String> = files.iter().filter(|f| *f != MANIFEST).cloned().collect();
        bench_types::manifest::record_artifacts(dir, &others).map_err(manifest_error)?;
        return Ok(Marked {
            marker: MANIFEST,
            changed: Vec::new(),
        });
    }
    if !dir.join("experiment.json").is_file() {
        return Err(StoreError::local(
            dir,
            "neither a run directory (manifest.json) nor an experiment directory (experiment.json)",
        ));
    }
    let mut changed = Vec::new();
    for r in runs {
        let rd = dir.join(r);
        let own: Vec<String> = files
            .iter()
            .filter_map(|f| f.strip_prefix(r.as_str())?.strip_prefix('/'))
            .filter(|f| *f != MANIFEST)
            .map(str::to_string)
            .collect();
        let before = bench_types::manifest::read(&rd)
            .map_err(manifest_error)?
            .map(|m| m.artifacts)
            .unwrap_or_default();
        let after = bench_types::manifest::record_artifacts(&rd, &own)
            .map_err(manifest_error)?
            .artifacts;
        if before != after {
            changed.extend(
                own.iter()
                    .filter(|f| before.get(*f) != after.get(*f))
                    .chain([&MANIFEST.to_string()])
                    .map(|f| format!("{r}/{f}")),
            );
        }
    }
    // after the runs' manifests: their final bytes are what it lists
    let listed: Vec<String> = files.iter().filter(|f| *f != SHA256SUMS).cloned().collect();
    let text = crate::sums::write(dir, &listed)?;
    let p = dir.join(SHA256SUMS);
    std::fs::write(&p, text).map_err(|e| StoreError::local(&p, e))?;
    Ok(Marked {
        marker: SHA256SUMS,
        changed,
    })
}

fn push_dir(cfg: &StoreConfig, dir: &Path, skip_runs: bool) -> Result<PushReport, StoreError> {
    let name = crate::name_in_store(dir)?;
    let url = format!("{}/{name}", cfg.url.trim_end_matches('/'));
    let remote = Remote::connect(&cfg.with_url(&url))?;
    let crate::Listing {
        files,
        runs,
        unnamable,
    } = crate::walk(dir)?;
    let Marked { marker, changed } = checksums(dir, &files, &runs)?;
    // a run's manifest after its files, the marker after everything
    let (manifests, others): (Vec<String>, Vec<String>) = files
        .into_iter()
        .filter(|f| f != marker && !(skip_runs && in_run(f, &runs) && !changed.contains(f)))
        .partition(|f| f.ends_with(&format!("/{MANIFEST}")));
    let rt = crate::runtime()?;
    rt.block_on(async {
        // a copy being replaced is incomplete until its new marker lands
        match remote
            .bounded(remote.store.delete(&remote.key(marker)))
            .await
        {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(remote.unreachable(e)),
        }
        let mut report = PushReport {
            url: url.clone(),
            files: others.len() + manifests.len() + unnamable.len() + 1,
            bytes: 0,
            failed: unnamable
                .iter()
                .map(|f| {
                    (
                        f.clone(),
                        "the file name is not UTF-8: no object key names it".into(),
                    )
                })
                .collect(),
        };
        for batch in [&others, &manifests] {
            let results: Vec<(String, Result<u64, String>)> =
                futures_util::stream::iter(batch.iter())
                    .map(|f| async { (f.clone(), put_file(&remote, dir, f).await) })
                    .buffer_unordered(PARALLEL)
                    .collect()
                    .await;
            for (f, r) in results {
                match r {
                    Ok(n) => report.bytes += n,
                    Err(e) => report.failed.push((f, e)),
                }
            }
        }
        report.failed.sort();
        if report.failed.is_empty() {
            match put_file(&remote, dir, marker).await {
                Ok(n) => report.bytes += n,
                Err(e) => report.failed.push((marker.to_string(), e)),
            }
        }
        Ok(report)
    })
}

/// Uploads one file (in parts when big); its size, or the error on one line.
async fn put_file(remote: &Remote, dir: &Path, rel: &str) -> Result<u64, String> {
    let path = dir.join(rel);
    let key = remote.key(rel);
    let mut f = tokio::fs::File::open(&path)
        .await
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    let len = f
        .metadata()
        .await
        .map_err(|e| format!("reading {}: {e}", path.display()))?
        .len();
    let read_error = |e: std::io::Error| format!("reading {}: {e}", path.display());
    if len <= PART_BYTES as u64 {
        let mut buf = Vec::with_capacity(len as usize);
        f.read_to_end(&mut buf).await.map_err(read_error)?;
        let n = buf.len() as u64;
        remote
            .bounded(remote.store.put(&key, PutPayload::from(Bytes::from(buf))))
            .await
            .map_err(one_line)?;
        return Ok(n);
    }
    let upload = remote
        .bounded(remote.store.put_multipart(&key))
        .await
        .map_err(one_line)?;
    let mut w = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
    let mut buf = vec![0u8; PART_BYTES];
    let mut n = 0u64;
    loop {
        let k = match f.read(&mut buf).await {
            Ok(k) => k,
            Err(e) => {
                let _ = w.abort().await;
                return Err(read_error(e));
            }
        };
        if k == 0 {
            break;
        }
        if let Err(e) = w.wait_for_capacity(2).await {
            return Err(one_line(e));
        }
        w.write(&buf[..k]);
        n += k as u64;
    }
    w.finish().await.map_err(one_line)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(failed: &[&str]) -> PushReport {
        PushReport {
            url: "s3://b/p/run".into(),
            files: 14,
            bytes: 10,
            failed: failed.iter().map(|f| (f.to_string(), "x".into())).collect(),
        }
    }

    #[test]
    fn status_lines() {
        assert_eq!(report(&[]).status(), "complete");
        assert!(report(&[]).complete());
        assert_eq!(
            report(&["a", "b"]).status(),
            "partial: 2 of 14 files failed (a, b)"
        );
    }

    #[test]
    fn runs_of_an_experiment() {
        let runs = vec!["cells/c=1/r1".to_string()];
        assert!(in_run("cells/c=1/r1/summary.json", &runs));
        assert!(!in_run("cells/c=1/r10/summary.json", &runs));
        assert!(!in_run("experiment.json", &runs));
    }
}
