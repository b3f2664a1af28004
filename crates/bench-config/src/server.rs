//! `metrics.*`: the server's Prometheus metrics, scraped while the client runs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::errors::Errors;

/// `metrics`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Scrape the server's Prometheus endpoint from before the first request to after the
    /// last, into `server_metrics.parquet`; analysis puts the server's view beside the
    /// client's. When the endpoint has no /metrics (404, or not the text format at the first
    /// scrape) scraping turns itself off with a line saying so.
    pub enabled: bool,
    /// The metrics URL (null: `<client.endpoint>/metrics`).
    pub url: Option<String>,
    /// Seconds between scrapes.
    #[schemars(range(min = 0.05))]
    pub interval_s: f64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            url: None,
            interval_s: 1.0,
        }
    }
}

impl MetricsConfig {
    pub(crate) fn validate(&self, e: &mut Errors) {
        if let Some(u) = &self.url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            e.push("metrics.url", format!("`{u}` is not an http(s):// URL"));
        }
    }
}
