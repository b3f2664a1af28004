//! The entry a run starts with, from its resolved config.

use std::path::Path;

use bench_config::Config;

use crate::{Entry, Kind, Status};

/// The endpoint as the catalog shows it: `sim`, or the URL without user info or query.
pub fn endpoint_shown(cfg: &Config) -> String {
    let e = cfg.client.endpoint.to_string();
    let Some((scheme, rest)) = e.split_once("://") else {
        return e;
    };
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    format!("{scheme}://{rest}")
}

/// The entry a run starts with.
pub fn run_entry(cfg: &Config, id: &str, run_dir: &Path) -> Entry {
    use bench_config::workload::WorkloadType;
    let w = &cfg.workload;
    let (concurrency, rate) = match w.kind {
        WorkloadType::Concurrency => (Some(i64::from(w.concurrency.concurrency)), None),
        WorkloadType::Constant => (None, Some(w.constant.target_qps)),
        _ => (None, None),
    };
    Entry {
        id: id.to_string(),
        kind: Kind::Run,
        name: cfg.name.clone(),
        description: cfg.description.clone(),
        tags: cfg.tags.clone(),
        status: Status::Processing,
        error: None,
        model: Some(cfg.client.model.clone()).filter(|m| !m.is_empty()),
        endpoint: Some(endpoint_shown(cfg)),
        api: serialized_name(&cfg.client.api),
        dataset_type: serialized_name(&cfg.dataset.kind),
        workload_type: serialized_name(&w.kind),
        concurrency,
        rate,
        started_at: crate::now(),
        ended_at: None,
        metrics: None,
        local_dir: Some(absolute(run_dir)),
        remote: None,
        experiment_id: cfg.catalog.experiment_id.clone(),
    }
}

/// A config enum's name as the config file spells it.
fn serialized_name<T: serde::Serialize>(x: &T) -> Option<String> {
    serde_json::to_value(x)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
}

/// The path made absolute (not resolved through links), as the catalog records it.
pub fn absolute(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}
