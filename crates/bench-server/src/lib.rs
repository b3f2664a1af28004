//! The server's side of a run: the Prometheus text exposition parsed into flat samples, which
//! engine exposes which series, and quantiles estimated from histogram bucket deltas.
//!
//! - [`expo`]: one scrape body to [`expo::FlatSample`] rows (the `openmetrics-parser` crate, behind
//!   a line filter for what real servers emit and the crate rejects);
//! - [`engine`]: which engine a scrape comes from and the names of its main series, engine-neutral
//!   ([`engine::Series`]), older names included; `docs/METRICS.md` holds the table;
//! - [`histogram`]: bucket deltas between two scrapes, and quantiles from them the way
//!   Prometheus' `histogram_quantile` computes them.

pub mod engine;
pub mod expo;
pub mod histogram;
