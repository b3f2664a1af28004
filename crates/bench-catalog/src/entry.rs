//! A catalog entry, a filter over entries, and one page of them.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

/// A run or an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// One run directory.
    Run,
    /// A sweep: many runs and the files across them.
    Experiment,
}

impl Kind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Run => "run",
            Kind::Experiment => "experiment",
        }
    }
}

/// How an entry stands (Bud's status names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Started, not ended.
    Processing,
    /// Ended, passed (or had nothing to fail).
    Success,
    /// Ended in an error, or failed its thresholds.
    Failed,
    /// Stopped by a signal.
    Interrupted,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 4] = [
        Status::Processing,
        Status::Success,
        Status::Failed,
        Status::Interrupted,
    ];
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Processing => "processing",
            Status::Success => "success",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
        }
    }
    /// The status of a stored name.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Where the object-store copy of a run is, and whether it is whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteCopy {
    /// `s3://bucket/prefix/run`.
    pub url: String,
    /// `complete`, or `partial: <files that failed>`.
    pub status: String,
}

/// One run or experiment (its tags are sorted when read back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The run's UUID (its manifest's `id`).
    pub id: String,
    /// Run or experiment.
    pub kind: Kind,
    /// The config's `name`.
    pub name: String,
    /// The config's `description`.
    pub description: String,
    /// The config's `tags`, and any added since.
    pub tags: Vec<String>,
    /// How it stands.
    pub status: Status,
    /// The error a failed or interrupted run ended with.
    pub error: Option<String>,
    /// The model served.
    pub model: Option<String>,
    /// The endpoint (`sim`, or a URL without credentials).
    pub endpoint: Option<String>,
    /// The API (`openai-chat`, ...).
    pub api: Option<String>,
    /// `dataset.type`.
    pub dataset_type: Option<String>,
    /// `workload.type`.
    pub workload_type: Option<String>,
    /// Requests in flight (a closed loop).
    pub concurrency: Option<i64>,
    /// Requests per second offered (an open loop).
    pub rate: Option<f64>,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC, once ended.
    pub ended_at: Option<String>,
    /// Headline figures (summary.json's).
    pub metrics: Option<serde_json::Value>,
    /// The run (or experiment) directory on the machine that ran it.
    pub local_dir: Option<String>,
    /// The object-store copy.
    pub remote: Option<RemoteCopy>,
    /// The experiment this run belongs to.
    pub experiment_id: Option<String>,
}

/// What `list` selects; empty fields select everything.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Filter {
    /// Text in the name, description, model, id or a tag (case-insensitive).
    pub search: Option<String>,
    /// Exactly this name.
    pub name: Option<String>,
    /// Carries this tag.
    pub tag: Option<String>,
    /// Served this model.
    pub model: Option<String>,
    /// In this status.
    pub status: Option<Status>,
    /// Started at or after this RFC 3339 time (or date).
    pub since: Option<String>,
    /// Runs of this experiment.
    pub experiment_id: Option<String>,
    /// Runs or experiments only.
    pub kind: Option<Kind>,
    /// 1-based page.
    pub page: u64,
    /// Entries per page.
    pub limit: u64,
}

impl Filter {
    /// Everything, first page of `limit`.
    pub fn all(limit: u64) -> Filter {
        Filter {
            page: 1,
            limit,
            ..Filter::default()
        }
    }

    /// The WHERE clause (with a leading space, or empty) and its text arguments, `$1`...
    pub(crate) fn condition(&self) -> (String, Vec<String>) {
        let mut conds = Vec::new();
        let mut args: Vec<String> = Vec::new();
        let mut arg = |v: String| {
            args.push(v);
            format!("${}", args.len())
        };
        if let Some(s) = self.search.as_deref().filter(|s| !s.is_empty()) {
            let p = arg(format!("%{}%", s.to_lowercase()));
            conds.push(format!(
                "(LOWER(name) LIKE {p} OR LOWER(description) LIKE {p} OR LOWER(COALESCE(model, '')) LIKE {p} \
                 OR id LIKE {p} OR EXISTS (SELECT 1 FROM run_tags t WHERE t.run_id = runs.id AND LOWER(t.tag) LIKE {p}))"
            ));
        }
        if let Some(v) = &self.name {
            conds.push(format!("name = {}", arg(v.clone())));
        }
        if let Some(v) = &self.tag {
            conds.push(format!(
                "EXISTS (SELECT 1 FROM run_tags t WHERE t.run_id = runs.id AND t.tag = {})",
                arg(v.clone())
            ));
        }
        if let Some(v) = &self.model {
            conds.push(format!("model = {}", arg(v.clone())));
        }
        if let Some(v) = self.status {
            conds.push(format!("status = {}", arg(v.as_str().into())));
        }
        if let Some(v) = &self.since {
            conds.push(format!("started_at >= {}", arg(v.clone())));
        }
        if let Some(v) = &self.experiment_id {
            conds.push(format!("experiment_id = {}", arg(v.clone())));
        }
        if let Some(v) = self.kind {
            conds.push(format!("kind = {}", arg(v.as_str().into())));
        }
        let cond = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        (cond, args)
    }
}

/// One page of a listing.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    /// The entries, newest first.
    pub entries: Vec<Entry>,
    /// How many match in all.
    pub total: u64,
    /// This page (1-based).
    pub page: u64,
    /// Entries per page.
    pub limit: u64,
}

impl Page {
    /// Pages in all.
    pub fn pages(&self) -> u64 {
        self.total.div_ceil(self.limit.max(1))
    }
}

pub(crate) fn from_row(r: &AnyRow) -> Result<Entry, String> {
    let s = |k: &str| -> Result<Option<String>, String> { r.try_get(k).map_err(|e| e.to_string()) };
    let req = |k: &str| -> Result<String, String> { r.try_get(k).map_err(|e| e.to_string()) };
    let kind = match req("kind")?.as_str() {
        "experiment" => Kind::Experiment,
        _ => Kind::Run,
    };
    let status = req("status")?;
    let metrics = s("metrics")?
        .map(|m| serde_json::from_str(&m).map_err(|e| format!("metrics of a run: {e}")))
        .transpose()?;
    let remote = match (s("remote_url")?, s("remote_status")?) {
        (Some(url), status) => Some(RemoteCopy {
            url,
            status: status.unwrap_or_default(),
        }),
        _ => None,
    };
    Ok(Entry {
        id: req("id")?,
        kind,
        name: req("name")?,
        description: req("description")?,
        tags: Vec::new(),
        status: Status::parse(&status).ok_or_else(|| format!("unknown status `{status}`"))?,
        error: s("error")?,
        model: s("model")?,
        endpoint: s("endpoint")?,
        api: s("api")?,
        dataset_type: s("dataset_type")?,
        workload_type: s("workload_type")?,
        concurrency: r.try_get("concurrency").map_err(|e| e.to_string())?,
        rate: r.try_get("rate").map_err(|e| e.to_string())?,
        started_at: req("started_at")?,
        ended_at: s("ended_at")?,
        metrics,
        local_dir: s("local_dir")?,
        remote,
        experiment_id: s("experiment_id")?,
    })
}
