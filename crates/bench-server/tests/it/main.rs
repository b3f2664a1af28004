//! Integration tests of bench-server: the four engines' expositions (tests/data, written from
//! each engine's metric definitions), hostile input, the mapping table and its doc, and
//! histogram quantiles against hand-computed values.

mod engines;
mod expo;
mod histogram;
mod table;

use bench_server::expo::FlatSample;

/// A file of tests/data.
fn data(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The one row named `metric` with these labels and no `le`.
fn value(samples: &[FlatSample], metric: &str, labels: &str) -> f64 {
    let rows: Vec<&FlatSample> = samples
        .iter()
        .filter(|s| s.metric == metric && s.labels == labels && s.le.is_none())
        .collect();
    assert_eq!(rows.len(), 1, "{metric}{{{labels}}}: {rows:?}");
    rows[0].value
}
