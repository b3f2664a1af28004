//! `pull`: a pushed run or experiment back into a local directory, every file checked.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use object_store::ObjectStore;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::{PARALLEL, Remote, SHA256SUMS, StoreConfig, StoreError, one_line};
use bench_types::files::MANIFEST;

/// What a pull did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullReport {
    /// Where it came from.
    pub url: String,
    /// Where it is now.
    pub dir: PathBuf,
    /// Files written, the marker included.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
}

/// A path from a manifest or SHA256SUMS that stays inside the directory (no `..`, no root).
fn safe(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.starts_with('/')
        && !rel.contains('\\')
        && rel
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..")
}

/// The complete run copies directly under `url` (`s3://bucket/prefix`): the URL of each
/// "directory" there that holds a manifest.json, sorted (a sharded run's shards, pushed to one
/// prefix).
pub fn list_runs(cfg: &StoreConfig, url: &str) -> Result<Vec<String>, StoreError> {
    let remote = Remote::connect(&cfg.with_url(url))?;
    let rt = crate::runtime()?;
    rt.block_on(async {
        let prefix = (!remote.prefix.is_empty())
            .then(|| object_store::path::Path::from(remote.prefix.as_str()));
        let listing = remote
            .bounded(object_store::ObjectStore::list_with_delimiter(
                &remote.store,
                prefix.as_ref(),
            ))
            .await
            .map_err(|e| remote.unreachable(e))?;
        let mut runs = Vec::new();
        for p in listing.common_prefixes {
            let Some(name) = p.filename().map(str::to_string) else {
                continue;
            };
            let marker = object_store::path::Path::from(format!("{p}/{MANIFEST}"));
            match remote
                .bounded(object_store::ObjectStore::head(&remote.store, &marker))
                .await
            {
                Ok(_) => runs.push(remote.url_of(&name)),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(remote.unreachable(e)),
            }
        }
        runs.sort();
        Ok(runs)
    })
}

/// Downloads the copy at `url` (`s3://bucket/prefix/<run>`; `cfg` gives the endpoint, region,
/// retries and timeout) into `dest`: the marker (manifest.json, or an experiment's SHA256SUMS)
/// first, then every file it lists, each checked against its sha256 (a mismatch is an error
/// naming the file, which is not kept); the marker is written last.
pub fn pull(cfg: &StoreConfig, url: &str, dest: &Path) -> Result<PullReport, StoreError> {
    let remote = Remote::connect(&cfg.with_url(url))?;
    for m in [MANIFEST, "experiment.json", SHA256SUMS] {
        if dest.join(m).exists() {
            return Err(StoreError::local(
                dest,
                format!("already holds {m}: pull into a new directory"),
            ));
        }
    }
    let rt = crate::runtime()?;
    rt.block_on(async {
        let (marker, text) = match fetch(&remote, MANIFEST).await? {
            Some(t) => (MANIFEST, t),
            None => match fetch(&remote, SHA256SUMS).await? {
                Some(t) => (SHA256SUMS, t),
                None => return Err(StoreError::Incomplete(remote.url.clone())),
            },
        };
        let bad = |msg: String| StoreError::Object {
            url: remote.url_of(marker),
            msg,
        };
        let listed: Vec<(String, String)> = if marker == MANIFEST {
            let m: bench_types::manifest::Manifest = serde_json::from_slice(&text)
                .map_err(|e| bad(format!("not a readable manifest: {e}")))?;
            if m.artifacts.is_empty() {
                return Err(bad(
                    "lists no artifacts (a manifest not written by `bench push`)".into(),
                ));
            }
            m.artifacts
                .into_iter()
                .map(|(p, a)| (p, a.sha256))
                .collect()
        } else {
            let t = String::from_utf8_lossy(&text);
            crate::sums::parse(&t, &remote.url_of(SHA256SUMS)).map_err(|m| StoreError::Object {
                url: remote.url.clone(),
                msg: m,
            })?
        };
        if let Some((p, _)) = listed.iter().find(|(p, _)| !safe(p) || p == marker) {
            return Err(bad(format!("lists `{p}`, a path outside the copy")));
        }
        std::fs::create_dir_all(dest).map_err(|e| StoreError::local(dest, e))?;
        let results: Vec<Result<u64, StoreError>> = futures_util::stream::iter(listed.iter())
            .map(|(p, sha)| get_file(&remote, dest, p, sha))
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        let mut bytes = 0;
        for r in results {
            bytes += r?;
        }
        write_atomic(&dest.join(marker), &text).await?;
        Ok(PullReport {
            url: remote.url.clone(),
            dir: dest.to_path_buf(),
            files: listed.len() + 1,
            bytes: bytes + text.len() as u64,
        })
    })
}

/// The content of `rel`, None when the store has no such object.
async fn fetch(remote: &Remote, rel: &str) -> Result<Option<bytes::Bytes>, StoreError> {
    let got = remote.bounded(remote.store.get(&remote.key(rel))).await;
    let r = match got {
        Ok(r) => r,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(remote.unreachable(e)),
    };
    r.bytes().await.map(Some).map_err(|e| remote.unreachable(e))
}

/// `.name.part` beside `path`: where a file is written before it is checked.
fn part_of(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.part"))
}

async fn write_atomic(path: &Path, data: &[u8]) -> Result<(), StoreError> {
    let part = part_of(path);
    tokio::fs::write(&part, data)
        .await
        .map_err(|e| StoreError::local(&part, e))?;
    tokio::fs::rename(&part, path)
        .await
        .map_err(|e| StoreError::local(path, e))
}

/// Downloads `rel` into `dest`, streaming through sha256; kept only when it matches.
async fn get_file(remote: &Remote, dest: &Path, rel: &str, sha: &str) -> Result<u64, StoreError> {
    let target = dest.join(rel);
    if let Some(parent) = target.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| StoreError::local(parent, e))?;
    }
    let part = part_of(&target);
    let res = download(remote, rel, &part).await;
    let outcome = match res {
        Ok((n, got)) if got == sha => tokio::fs::rename(&part, &target)
            .await
            .map(|()| n)
            .map_err(|e| StoreError::local(&target, e)),
        Ok((_, got)) => Err(StoreError::Checksum {
            file: rel.to_string(),
            expected: sha.to_string(),
            got,
        }),
        Err(e) => Err(e),
    };
    if outcome.is_err() {
        let _ = tokio::fs::remove_file(&part).await;
    }
    outcome
}

/// `(bytes, sha256)` of `rel` written to `to`.
async fn download(remote: &Remote, rel: &str, to: &Path) -> Result<(u64, String), StoreError> {
    let object_error = |msg: String| StoreError::Object {
        url: remote.url_of(rel),
        msg,
    };
    let r = match remote.bounded(remote.store.get(&remote.key(rel))).await {
        Ok(r) => r,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(object_error(
                "not in the store, though its marker lists it".into(),
            ));
        }
        Err(e) => return Err(object_error(one_line(e))),
    };
    let mut f = tokio::fs::File::create(to)
        .await
        .map_err(|e| StoreError::local(to, e))?;
    let mut stream = r.into_stream();
    let mut h = Sha256::new();
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| object_error(one_line(e)))?;
        h.update(&chunk);
        n += chunk.len() as u64;
        f.write_all(&chunk)
            .await
            .map_err(|e| StoreError::local(to, e))?;
    }
    f.flush().await.map_err(|e| StoreError::local(to, e))?;
    let hex = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((n, hex))
}

#[cfg(test)]
mod tests {
    #[test]
    fn listed_paths_stay_inside() {
        for ok in [
            "summary.json",
            "plots/ttft.svg",
            "cells/c=1/r1/manifest.json",
        ] {
            assert!(super::safe(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a\\b",
        ] {
            assert!(!super::safe(bad), "{bad}");
        }
    }
}
