//! Object storage from the CLI: `bench push`, `bench pull`, and the upload at the end of a run
//! or experiment (`storage.url`). The files are all local when an upload fails, so a failure is
//! a warning naming the files and the exit status is unchanged, unless `storage.required: true`
//! (then 1, when the run itself succeeded).

use std::path::Path;
use std::time::Instant;

use bench_config::{Config, StorageConfig};
use bench_store::{PushReport, StoreConfig, StoreError};
use bench_types::stage::exit;

use crate::driver::Failure;

/// What an upload at the end of a run or experiment came to; None when `storage.url` is unset.
pub type Upload = Option<Result<PushReport, StoreError>>;

fn failure(e: StoreError) -> Failure {
    let code = match e {
        StoreError::BadUrl(_) | StoreError::Local { .. } => exit::BAD_INPUT,
        _ => exit::FAILURE,
    };
    Failure::new(code, e.to_string())
}

/// Logs how a push went: one line, and one warning per failed file.
fn log(r: &Result<PushReport, StoreError>, dir: &Path, t0: Instant) {
    match r {
        Ok(rep) if rep.complete() => tracing::info!(
            "storage: pushed {} files ({:.1} MB) to {} in {:.1} s",
            rep.files,
            rep.bytes as f64 / 1e6,
            rep.url,
            t0.elapsed().as_secs_f64()
        ),
        Ok(rep) => {
            tracing::warn!(
                "storage: {}: {}; the files are all in {}",
                rep.url,
                rep.status(),
                dir.display()
            );
            for (f, e) in &rep.failed {
                tracing::warn!("storage: {f}: {e}");
            }
        }
        Err(e) => tracing::warn!("storage: {e}; the files are all in {}", dir.display()),
    }
}

/// The upload at the end of a run (after analysis, whatever its verdict, interrupted or not):
/// the run directory to `<storage.url>/<its name>/`.
pub fn upload_run(cfg: &StorageConfig, run_dir: &Path) -> Upload {
    let store = StoreConfig::from_config(cfg)?;
    let t0 = Instant::now();
    let r = bench_store::push(&store, run_dir);
    log(&r, run_dir, t0);
    Some(r)
}

/// The upload at the end of an experiment: its own files (each run uploaded itself, under
/// [`child_url`]).
pub fn upload_experiment(cfg: &StorageConfig, exp_dir: &Path) -> Upload {
    let store = StoreConfig::from_config(cfg)?;
    let t0 = Instant::now();
    let r = bench_store::push_experiment_files(&store, exp_dir);
    log(&r, exp_dir, t0);
    Some(r)
}

/// The exit status once the upload is done: a failed upload makes a successful run's status 1
/// only when `storage.required` is set.
pub fn exit_status(code: i32, upload: &Upload, cfg: &StorageConfig) -> i32 {
    let failed = match upload {
        Some(Ok(r)) => !r.complete(),
        Some(Err(_)) => true,
        None => false,
    };
    if failed && cfg.required && code == exit::OK {
        exit::FAILURE
    } else {
        code
    }
}

/// The `storage.url` of a sweep's child run in `run_dir`, so that it lands where its place in
/// the experiment says: `<url>/<experiment dir name>/cells/<cell>` (the run adds `r<k>`).
pub fn child_url(cfg: &StorageConfig, exp_dir: &Path, run_dir: &Path) -> Option<String> {
    let url = cfg.url.as_deref()?.trim_end_matches('/');
    let exp = bench_store::name_in_store(exp_dir).ok()?;
    let rel = run_dir.strip_prefix(exp_dir).ok()?.parent()?;
    let mut out = format!("{url}/{exp}");
    for c in rel.components() {
        out.push('/');
        out.push_str(&c.as_os_str().to_string_lossy());
    }
    Some(out)
}

/// `bench push RUN_DIR [--to URL]`: 0 complete, 1 partial or unreachable, 2 bad input.
pub fn push(cfg: &Config, dir: &Path, to: Option<&str>) -> Result<i32, Failure> {
    let url = to.or(cfg.storage.url.as_deref()).ok_or_else(|| {
        Failure::new(
            exit::BAD_INPUT,
            "bench push: no storage URL: give --to s3://bucket[/prefix] or set storage.url",
        )
    })?;
    bench_config::storage::parse_s3_url(url)
        .map_err(|m| Failure::new(exit::BAD_INPUT, format!("--to: {m}")))?;
    let mut s = cfg.storage.clone();
    s.url = Some(url.to_string());
    let store = StoreConfig::from_config(&s).expect("the url is set");
    let t0 = Instant::now();
    let r = bench_store::push(&store, dir).map_err(failure)?;
    println!(
        "{}: {} ({} files, {:.1} MB, {:.1} s)",
        r.url,
        r.status(),
        r.files,
        r.bytes as f64 / 1e6,
        t0.elapsed().as_secs_f64()
    );
    for (f, e) in &r.failed {
        eprintln!("  {f}: {e}");
    }
    Ok(if r.complete() {
        exit::OK
    } else {
        exit::FAILURE
    })
}

/// `bench pull URL DIR`.
pub fn pull(cfg: &Config, url: &str, dir: &Path) -> Result<i32, Failure> {
    bench_config::storage::parse_s3_url(url)
        .map_err(|m| Failure::new(exit::BAD_INPUT, format!("bench pull: {m}")))?;
    let mut s = cfg.storage.clone();
    s.url = Some(url.to_string());
    let store = StoreConfig::from_config(&s).expect("the url is set");
    let t0 = Instant::now();
    let r = bench_store::pull(&store, url, dir).map_err(failure)?;
    println!(
        "{} -> {}: {} files checked, {:.1} MB, {:.1} s",
        r.url,
        r.dir.display(),
        r.files,
        r.bytes as f64 / 1e6,
        t0.elapsed().as_secs_f64()
    );
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_lands_under_its_cell() {
        let d = std::env::temp_dir().join(format!("bench-child-url-{}", std::process::id()));
        let run = d.join("cells/c=1/r2");
        std::fs::create_dir_all(&run).unwrap();
        let mut s = StorageConfig::default();
        assert_eq!(child_url(&s, &d, &run), None);
        s.url = Some("s3://b/p/".into());
        let name = d.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            child_url(&s, &d, &run).unwrap(),
            format!("s3://b/p/{name}/cells/c=1")
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn only_a_required_upload_changes_the_status() {
        let mut s = StorageConfig::default();
        let bad: Upload = Some(Ok(PushReport {
            url: "s3://b/r".into(),
            files: 3,
            bytes: 0,
            failed: vec![("a".into(), "x".into())],
        }));
        assert_eq!(exit_status(exit::OK, &bad, &s), exit::OK);
        s.required = true;
        assert_eq!(exit_status(exit::OK, &bad, &s), exit::FAILURE);
        assert_eq!(exit_status(exit::RUN_FAILED, &bad, &s), exit::RUN_FAILED);
        assert_eq!(exit_status(exit::OK, &None, &s), exit::OK);
    }
}
