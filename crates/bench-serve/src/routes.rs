//! The route handlers: Bud's shapes from the catalog and the runs' files.

use super::*;

pub(crate) async fn dashboard() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("dashboard.html"),
    )
        .into_response()
}

pub(crate) async fn openapi() -> Json<Value> {
    Json(openapi::spec())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    page: Option<u64>,
    limit: Option<u64>,
    search: Option<String>,
    name: Option<String>,
    tag: Option<String>,
    status: Option<String>,
    model: Option<String>,
    kind: Option<String>,
}

pub(crate) async fn list(AxState(s): St, q: Result<Query<ListQuery>, QueryRejection>) -> ApiResult {
    let q = query(q)?;
    let status = q
        .status
        .as_deref()
        .map(|x| {
            Status::parse(x).ok_or_else(|| {
                ApiError::bad_request(
                    Some("status"),
                    format!("`{x}`: processing, success, failed or interrupted"),
                )
            })
        })
        .transpose()?;
    let kind = match q.kind.as_deref() {
        None => None,
        Some("run") => Some(bench_catalog::Kind::Run),
        Some("experiment") => Some(bench_catalog::Kind::Experiment),
        Some(x) => {
            return Err(ApiError::bad_request(
                Some("kind"),
                format!("`{x}`: run or experiment"),
            ));
        }
    };
    let limit = q.limit.unwrap_or(20);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(Some("limit"), "1 to 1000"));
    }
    let f = Filter {
        search: q.search,
        name: q.name,
        tag: q.tag,
        model: q.model,
        status,
        kind,
        page: q.page.unwrap_or(1).max(1),
        limit,
        ..Filter::default()
    };
    let p = s.catalog.list(&f).await.map_err(ApiError::catalog)?;
    Ok(Json(json!({
        "object": "benchmarks.list",
        "message": "Successfully list all benchmarks",
        "page": p.page,
        "limit": p.limit,
        "total_record": p.total,
        "total_pages": p.pages(),
        "benchmarks": p.entries.iter().map(bud::list_item).collect::<Vec<_>>(),
    })))
}

async fn entry(s: &State, id: &str) -> Result<Entry, ApiError> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(ApiError::bad_request(
            Some("benchmark_id"),
            format!("`{id}` is not a UUID"),
        ));
    }
    s.catalog
        .get(id)
        .await
        .map_err(ApiError::catalog)?
        .filter(|e| e.id == id)
        .ok_or_else(|| ApiError::not_found(format!("benchmark_id {id}: no such benchmark")))
}

fn run_dir(e: &Entry) -> Result<PathBuf, ApiError> {
    e.local_dir
        .as_ref()
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "benchmark {}: its directory is not on this machine{}",
                e.id,
                e.remote
                    .as_ref()
                    .map(|r| format!(" (a copy is at {}: bench pull)", r.url))
                    .unwrap_or_default()
            ))
        })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IdQuery {
    benchmark_id: String,
}

pub(crate) async fn result(AxState(s): St, q: Result<Query<IdQuery>, QueryRejection>) -> ApiResult {
    let q = query(q)?;
    let e = entry(&s, &q.benchmark_id).await?;
    let dir = run_dir(&e)?;
    let summary = bud::summary(&dir).map_err(|m| {
        ApiError::not_found(format!(
            "benchmark {}: no result yet ({}; status {})",
            e.id,
            m,
            e.status.as_str()
        ))
    })?;
    Ok(Json(json!({
        "object": "benchmark.result",
        "message": "Successfully fetched benchmark result",
        "param": {"result": bud::result(&e, &summary)},
    })))
}

pub(crate) async fn model_cluster_detail(
    AxState(s): St,
    UrlPath(id): UrlPath<String>,
) -> ApiResult {
    let e = entry(&s, &id).await?;
    let server = e
        .local_dir
        .as_deref()
        .and_then(|d| bench_types::manifest::read(Path::new(d)).ok().flatten())
        .and_then(|m| {
            m.stage(bench_types::manifest::Stage::Client)
                .and_then(|c| c.stats.get("server").cloned())
        });
    Ok(Json(json!({
        "object": "benchmark.model.cluster.detail",
        "message": "Successfully fetched model cluster detail for the benchmark.",
        "result": {
            "id": e.id,
            "name": e.name,
            "status": e.status.as_str(),
            "model": {
                "name": e.model,
                "uri": e.model,
                "source": e.api,
                "provider_type": if e.endpoint.as_deref() == Some("sim") { "simulated" } else { "endpoint" },
            },
            "cluster": {
                "name": e.endpoint,
                "ingress_url": e.endpoint,
                "engine": server.as_ref().and_then(|s| s.get("engine")).cloned(),
                "version": server.as_ref().and_then(|s| s.get("version")).cloned(),
            },
            "server": server,
            "deployment_config": null,
        },
    })))
}

/// The non-warmup request rows of a run, cached while requests.parquet is unchanged.
fn rows(s: &State, e: &Entry) -> Result<Arc<Vec<RequestRow>>, ApiError> {
    let dir = run_dir(e)?;
    let path = dir.join(bench_types::files::REQUESTS);
    let mtime = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .map_err(|_| {
            ApiError::not_found(format!(
                "benchmark {}: no requests.parquet yet (status {})",
                e.id,
                e.status.as_str()
            ))
        })?;
    if let Some((t, r)) = s.cache.lock().unwrap_or_else(|x| x.into_inner()).get(&path)
        && *t == mtime
    {
        return Ok(r.clone());
    }
    let r = bud::request_rows(&dir).map_err(ApiError::internal)?;
    let mut c = s.cache.lock().unwrap_or_else(|x| x.into_inner());
    if c.len() >= 16 {
        c.clear();
    }
    c.insert(path, (mtime, r.clone()));
    Ok(r)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageQuery {
    benchmark_id: String,
    page: Option<u64>,
    limit: Option<u64>,
}

pub(crate) async fn request_metrics(
    AxState(s): St,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let e = entry(&s, &q.benchmark_id).await?;
    let (page, limit) = (q.page.unwrap_or(1).max(1), q.limit.unwrap_or(20));
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(Some("limit"), "1 to 1000"));
    }
    let s2 = s.clone();
    let r = tokio::task::spawn_blocking(move || rows(&s2, &e).map(|r| (r, e)))
        .await
        .map_err(|x| ApiError::internal(x.to_string()))?;
    let (rows, e) = r?;
    let total = rows.len() as u64;
    let items: Vec<Value> = rows
        .iter()
        .skip(((page - 1) * limit) as usize)
        .take(limit as usize)
        .map(|r| {
            let mut v = serde_json::to_value(r).expect("a row serializes");
            v["benchmark_id"] = json!(e.id);
            v["dataset_id"] = json!(e.dataset_type);
            v
        })
        .collect();
    Ok(Json(json!({
        "object": "benchmark.request.metrics.list",
        "message": "Successfully fetched request metrics",
        "page": page,
        "limit": limit,
        "total_record": total,
        "total_items": total,
        "total_pages": total.div_ceil(limit),
        "items": items,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BinsQuery {
    benchmark_id: String,
    num_bins: Option<usize>,
}

async fn distribution(
    s: Arc<State>,
    q: Result<Query<BinsQuery>, QueryRejection>,
    body: Bytes,
    by: &'static str,
) -> Result<Value, ApiError> {
    let q = query(q)?;
    if !body.is_empty() {
        // Bud posts the dataset ids; a run here has one dataset, so they only need to be ids
        serde_json::from_slice::<Vec<String>>(&body).map_err(|e| {
            ApiError::bad_request(Some("body"), format!("a JSON list of dataset ids: {e}"))
        })?;
    }
    let bins = q.num_bins.unwrap_or(10);
    if !(1..=1000).contains(&bins) {
        return Err(ApiError::bad_request(Some("num_bins"), "1 to 1000"));
    }
    let e = entry(&s, &q.benchmark_id).await?;
    let s2 = s.clone();
    let rows = tokio::task::spawn_blocking(move || rows(&s2, &e))
        .await
        .map_err(|x| ApiError::internal(x.to_string()))??;
    Ok(json!(bud::distribution(&rows, by, bins)))
}

pub(crate) async fn input_distribution(
    AxState(s): St,
    q: Result<Query<BinsQuery>, QueryRejection>,
    body: Bytes,
) -> ApiResult {
    let r = distribution(s, q, body, "prompt_len").await?;
    Ok(Json(json!({
        "object": "benchmark.dataset.input.distribution",
        "message": "Successfully fetched dataset input distribution",
        "param": {"result": r},
    })))
}

pub(crate) async fn output_distribution(
    AxState(s): St,
    q: Result<Query<BinsQuery>, QueryRejection>,
    body: Bytes,
) -> ApiResult {
    let r = distribution(s, q, body, "output_len").await?;
    Ok(Json(json!({
        "object": "benchmark.dataset.output.distribution",
        "message": "Successfully fetched dataset output distribution",
        "param": {"result": r},
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PairQuery {
    field1: String,
    field2: String,
}

pub(crate) async fn pair(
    AxState(s): St,
    UrlPath(id): UrlPath<String>,
    q: Result<Query<PairQuery>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    for (k, v) in [("field1", &q.field1), ("field2", &q.field2)] {
        if !PAIR_FIELDS.contains(&v.as_str()) {
            return Err(ApiError::bad_request(
                Some(k),
                format!("`{v}`: one of {}", PAIR_FIELDS.join(", ")),
            ));
        }
    }
    let e = entry(&s, &id).await?;
    let id = e.id.clone();
    let s2 = s.clone();
    let rows = tokio::task::spawn_blocking(move || rows(&s2, &e))
        .await
        .map_err(|x| ApiError::internal(x.to_string()))??;
    Ok(Json(json!({
        "object": "benchmark.request.metrics.detail",
        "message": format!("Successfully fetched {} vs {} analysis data for benchmark : {id}.", q.field1, q.field2),
        "param": {"result": bud::pairs(&rows, &q.field1, &q.field2)},
    })))
}

pub(crate) async fn events(AxState(s): St, UrlPath(id): UrlPath<String>) -> ApiResult {
    let e = entry(&s, &id).await?;
    let mut out: Vec<Value> = s
        .events
        .lock()
        .unwrap_or_else(|x| x.into_inner())
        .get(&id)
        .map(|v| v.iter().map(|x| json!(x)).collect())
        .unwrap_or_default();
    if let Some(m) = e
        .local_dir
        .as_deref()
        .and_then(|d| bench_types::manifest::read(Path::new(d)).ok().flatten())
    {
        for st in &m.stages {
            out.push(json!({
                "step": st.stage.as_str(),
                "status": "success",
                "at": st.started_at,
                "seconds": st.seconds,
                "message": null,
            }));
        }
    }
    out.push(json!({
        "step": "benchmark",
        "status": e.status.as_str(),
        "at": e.ended_at.clone().unwrap_or_else(|| e.started_at.clone()),
        "message": e.error,
    }));
    Ok(Json(json!({
        "object": "benchmark.events",
        "message": "Successfully fetched benchmark events",
        "benchmark_id": id,
        "status": e.status.as_str(),
        "events": out,
    })))
}

pub(crate) async fn datasets(AxState(s): St) -> ApiResult {
    Ok(Json(json!({
        "object": "benchmark.datasets",
        "message": "Datasets for eval_with: dataset",
        "datasets": dataset_ids(&s.opts.datasets_dir),
    })))
}

/// A file of a run, only from inside its own directory.
pub(crate) async fn file(
    AxState(s): St,
    UrlPath((id, rel)): UrlPath<(String, String)>,
) -> Response {
    match serve_file(&s, &id, &rel).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn serve_file(s: &State, id: &str, rel: &str) -> Result<Response, ApiError> {
    let e = entry(s, id).await?;
    let dir = run_dir(&e)?;
    let rp = Path::new(rel);
    if rel.is_empty()
        || rp.is_absolute()
        || rp.components().any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(ApiError::bad_request(
            Some("path"),
            format!("`{rel}`: a path inside the run directory"),
        ));
    }
    let root = dir
        .canonicalize()
        .map_err(|x| ApiError::internal(x.to_string()))?;
    let full = root
        .join(rp)
        .canonicalize()
        .map_err(|_| ApiError::not_found(format!("{rel}: no such file in the run")))?;
    // a link inside the run may not lead outside it
    if !full.starts_with(&root) || !full.is_file() {
        return Err(ApiError::not_found(format!(
            "{rel}: no such file in the run"
        )));
    }
    let bytes = tokio::fs::read(&full)
        .await
        .map_err(|x| ApiError::internal(x.to_string()))?;
    let ct = match full.extension().and_then(|x| x.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("csv") => "text/csv; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jsonl" | "log" | "txt" | "yaml") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    Ok((h, bytes).into_response())
}

pub(crate) async fn run_workflow(AxState(s): St, body: Bytes) -> ApiResult {
    let de = &mut serde_json::Deserializer::from_slice(&body);
    let post: launch::WorkflowPost = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let m = e.inner().to_string();
        let field = if path == "." {
            field_of(&m)
        } else {
            Some(path)
        };
        ApiError::bad_request(field.as_deref(), format!("body: {m}"))
    })?;
    let trigger = post.trigger_workflow.unwrap_or(false);
    let wid = post
        .workflow_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let merged = {
        let mut w = s.workflows.lock().unwrap_or_else(|x| x.into_inner());
        let prev = match (&post.workflow_id, w.get(&wid)) {
            (Some(_), None) => {
                return Err(ApiError::not_found(format!(
                    "workflow_id {wid}: no such workflow (start one by posting without workflow_id)"
                )));
            }
            (_, p) => p.cloned().unwrap_or_default(),
        };
        let merged = post.over(prev);
        w.insert(wid.clone(), merged.clone());
        merged
    };
    let step = merged.step_number.unwrap_or(1);
    if !trigger {
        return Ok(Json(json!({
            "object": "workflow.get",
            "message": "Workflow step saved",
            "workflow_id": wid,
            "current_step": step,
            "total_steps": merged.workflow_total_steps,
            "status": "in_progress",
        })));
    }
    let plan = launch::plan(&s, &merged)?;
    let cfg = launch::validate(&plan)?;
    let s2 = s.clone();
    let plan =
        tokio::task::spawn_blocking(move || launch::validate_experiment(&s2, &plan).map(|_| plan))
            .await
            .map_err(|x| ApiError::internal(x.to_string()))??;
    let id = plan.id.clone();
    let name = plan.name.clone();
    launch::start(s.clone(), plan, cfg).await?;
    s.workflows
        .lock()
        .unwrap_or_else(|x| x.into_inner())
        .remove(&wid);
    Ok(Json(json!({
        "object": "workflow.get",
        "message": format!("Benchmark {name} started"),
        "workflow_id": wid,
        "current_step": step,
        "total_steps": merged.workflow_total_steps,
        "status": "processing",
        "benchmark_id": id,
    })))
}
