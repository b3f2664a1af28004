//! Locating the real traces in `../shared/data` for tests and benchmarks.
//!
//! The traces are never committed. Tests fetch them by path: `$BENCH_SHARED_DATA` when set,
//! else `<repo>/../shared/data`. When the directory is missing, [`shared_data`] panics under
//! `CI=true` (a missing input is a failure there) and otherwise returns `None` after printing
//! why the caller is skipping.

use std::path::PathBuf;

/// The repository root (the directory holding the workspace Cargo.toml).
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // crates/bench-types -> repo root
    here.parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .unwrap_or(here)
}

/// Path of `rel` inside the shared data directory, if present (see the module docs).
pub fn shared_data(rel: &str) -> Option<PathBuf> {
    let base = std::env::var_os("BENCH_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("..").join("shared").join("data"));
    let p = base.join(rel);
    if p.exists() {
        return Some(p);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!(
            "CI=true but the shared data file {} is missing",
            p.display()
        );
    }
    eprintln!(
        "skipping: shared data file {} not found (set BENCH_SHARED_DATA)",
        p.display()
    );
    None
}
