//! A run's (or an experiment's) entry in the catalog: registered as `processing` when it
//! starts, updated with its outcome and headline figures when it ends. The catalog is a
//! convenience for a run: one that cannot be reached costs a warning, never the run.

use std::path::Path;

pub use bench_catalog::config_entry::{absolute, run_entry};
use bench_catalog::{Catalog, Entry, Status};
use bench_config::Config;

/// The catalog's runtime and pool for one run; `None` inside when disabled or unreachable.
pub struct Registration {
    inner: Option<(tokio::runtime::Runtime, Catalog)>,
    id: String,
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

impl Registration {
    /// Registers `entry` (status processing) in the configured catalog.
    pub fn start(cfg: &Config, entry: Entry) -> Registration {
        let id = entry.id.clone();
        if !cfg.catalog.enabled {
            return Registration { inner: None, id };
        }
        let opened = runtime().map_err(|e| e.to_string()).and_then(|rt| {
            let c = rt.block_on(async {
                let c = Catalog::open(&cfg.catalog.url).await?;
                c.upsert(&entry).await?;
                Ok::<_, bench_catalog::CatalogError>(c)
            });
            c.map(|c| (rt, c)).map_err(|e| e.to_string())
        });
        match opened {
            Ok(inner) => {
                tracing::debug!("catalog: registered {} `{}`", entry.id, entry.name);
                Registration {
                    inner: Some(inner),
                    id,
                }
            }
            Err(e) => {
                tracing::warn!("{e}: this run is not in the catalog (its directory is complete)");
                Registration { inner: None, id }
            }
        }
    }

    /// Records the end: status, error, and the headline figures of `<dir>/summary.json` when
    /// there is one.
    pub fn finish(&self, status: Status, error: Option<&str>, dir: &Path) {
        let Some((rt, c)) = &self.inner else {
            return;
        };
        let metrics = headline(dir);
        if let Err(e) = rt.block_on(c.finish(&self.id, status, error, metrics.as_ref())) {
            tracing::warn!("{e}");
        }
    }

    /// Records where the object-store copy is and whether it is complete.
    pub fn remote(&self, url: &str, status: &str) {
        let Some((rt, c)) = &self.inner else {
            return;
        };
        let r = bench_catalog::RemoteCopy {
            url: url.to_string(),
            status: status.to_string(),
        };
        if let Err(e) = rt.block_on(c.set_remote(&self.id, &r)) {
            tracing::warn!("{e}");
        }
    }
}

/// The figures a listing shows, from summary.json (run) or experiment.json (experiment).
pub fn headline(dir: &Path) -> Option<serde_json::Value> {
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(bench_types::files::SUMMARY)).ok()?).ok()?;
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, ptr: &str| {
        if let Some(v) = s.pointer(ptr).filter(|v| !v.is_null()) {
            m.insert(k.to_string(), v.clone());
        }
    };
    put("verdict", "/verdict/outcome");
    put("completed", "/counts/measured");
    put("failed", "/counts/failed");
    put("duration_s", "/duration_s");
    put("request_throughput", "/request_throughput");
    put("output_throughput", "/output_token_throughput");
    put("ttft_ms_p50", "/ttft_ms/p50");
    put("ttft_ms_p99", "/ttft_ms/p99");
    put("tpot_ms_p50", "/tpot_ms/p50");
    put("tpot_ms_p99", "/tpot_ms/p99");
    put("e2el_ms_p50", "/e2el_ms/p50");
    put("e2el_ms_p99", "/e2el_ms/p99");
    put("goodput_ratio", "/goodput_ratio");
    put("achieved_rate", "/achieved_rate");
    Some(serde_json::Value::Object(m))
}
