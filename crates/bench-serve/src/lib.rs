//! `bench serve`: Bud's benchmark API over the run catalog, and a web dashboard.
//!
//! Every API route answers JSON in Bud's shapes (`object`, `message`; `page`, `limit`,
//! `total_record` on lists; `benchmark_id` query parameters) and needs `Authorization: Bearer
//! <token>` when a token is configured; without one the service only binds to loopback. Bad
//! input (an unknown field, a wrong type, an unknown id) is a 4xx JSON error naming the field.
//! Files are only served from inside a catalogued run's own directory.

mod bud;
mod launch;
mod openapi;
mod routes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path as UrlPath, Query, Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bench_catalog::{Catalog, Entry, Filter, Status};
use serde::Deserialize;
use serde_json::{Value, json};

pub use bud::{PAIR_FIELDS, RequestRow};

/// What the service is started with.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The bearer token (None: no token; then only loopback).
    pub token: Option<String>,
    /// The catalog's URL.
    pub catalog_url: String,
    /// The `bench` binary that runs are started with.
    pub exe: PathBuf,
    /// The service's own config files: the base of every run it starts.
    pub config_files: Vec<PathBuf>,
    /// The service's own overrides, passed on to runs.
    pub base_overrides: Vec<String>,
    /// Where runs started through the API write their directories.
    pub runs_dir: PathBuf,
    /// The datasets offered by id (`<id>.yaml` dataset configs).
    pub datasets_dir: PathBuf,
    /// Runs executing at once.
    pub max_parallel: usize,
}

/// Request rows of runs, by requests.parquet path, with the file's modification time.
type RowCache = HashMap<PathBuf, (SystemTime, Arc<Vec<RequestRow>>)>;

/// The service's state.
pub struct State {
    opts: Options,
    catalog: Catalog,
    slots: Arc<tokio::sync::Semaphore>,
    workflows: Mutex<launch::Workflows>,
    events: Mutex<HashMap<String, Vec<launch::Event>>>,
    children: Mutex<HashMap<String, u32>>,
    cache: Mutex<RowCache>,
}

/// An error answer: status, and `{"object": "error", "message", "code", "field"}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    field: Option<String>,
}

impl ApiError {
    fn bad_request(field: Option<&str>, msg: impl Into<String>) -> ApiError {
        let message = msg.into();
        let message = match field {
            Some(f) if !message.contains(f) => format!("{f}: {message}"),
            _ => message,
        };
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message,
            field: field.map(str::to_string),
        }
    }
    fn not_found(what: String) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: what,
            field: None,
        }
    }
    fn internal(msg: String) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: msg,
            field: None,
        }
    }
    fn catalog(e: bench_catalog::CatalogError) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: e.to_string(),
            field: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "object": "error",
            "message": self.message,
            "code": self.status.as_u16(),
            "field": self.field,
        });
        (self.status, Json(body)).into_response()
    }
}

type ApiResult = Result<Json<Value>, ApiError>;
type St = AxState<Arc<State>>;

/// A query string, or a 400 naming what is wrong with it.
fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::bad_request(field_of(&e.body_text()).as_deref(), e.body_text()))
}

/// The field a serde message names (`unknown field `x``, `invalid type ... for key `x``).
fn field_of(msg: &str) -> Option<String> {
    let i = msg.find('`')?;
    let rest = &msg[i + 1..];
    Some(rest[..rest.find('`')?].to_string())
}

/// The datasets `dir` offers: the `<id>.yaml` files in it, sorted.
pub fn dataset_ids(dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "yaml").then(|| p.file_stem()?.to_str().map(str::to_string))?
        })
        .collect();
    ids.sort();
    ids
}

/// The config file of dataset `id` (only ids `dataset_ids` lists).
pub fn dataset_file(dir: &Path, id: &str) -> Option<PathBuf> {
    dataset_ids(dir)
        .iter()
        .any(|x| x == id)
        .then(|| dir.join(format!("{id}.yaml")))
}

/// Checks the bind address against the token rule: beyond loopback only with a token.
pub fn check_bind(listen: &SocketAddr, token: Option<&str>) -> Result<(), String> {
    if !listen.ip().is_loopback() && token.is_none() {
        return Err(format!(
            "serve.listen {listen}: binding beyond loopback needs a token (set the variable named by serve.token_env)"
        ));
    }
    Ok(())
}

/// Serves until `shutdown` resolves; runs still executing then are interrupted (SIGINT, they
/// write what they have) and waited for.
pub async fn serve(
    opts: Options,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    check_bind(&opts.listen, opts.token.as_deref())?;
    let catalog = Catalog::open(&opts.catalog_url)
        .await
        .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| format!("serve.listen {}: {e}", opts.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let state = Arc::new(State {
        slots: Arc::new(tokio::sync::Semaphore::new(opts.max_parallel.max(1))),
        opts,
        catalog,
        workflows: Mutex::default(),
        events: Mutex::default(),
        children: Mutex::default(),
        cache: Mutex::default(),
    });
    let app = router(state.clone());
    ready(addr);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| e.to_string())?;
    stop_children(&state).await;
    Ok(())
}

async fn stop_children(state: &State) {
    let pids: Vec<u32> = state
        .children
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .copied()
        .collect();
    for pid in &pids {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &format!("-{pid}")])
            .status();
    }
    for _ in 0..600 {
        if state
            .children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The routes.
pub fn router(state: Arc<State>) -> Router {
    let api = Router::new()
        .route("/benchmark", get(routes::list))
        .route("/benchmark/run-workflow", post(routes::run_workflow))
        .route("/benchmark/result", get(routes::result))
        .route("/benchmark/request-metrics", get(routes::request_metrics))
        .route(
            "/benchmark/dataset/input-distribution",
            post(routes::input_distribution),
        )
        .route(
            "/benchmark/dataset/output-distribution",
            post(routes::output_distribution),
        )
        .route("/benchmark/datasets", get(routes::datasets))
        .route(
            "/benchmark/{id}/model-cluster-detail",
            get(routes::model_cluster_detail),
        )
        .route(
            "/benchmark/{id}/analysis/field1_vs_field2",
            post(routes::pair),
        )
        .route("/benchmark/{id}/events", get(routes::events))
        .route("/benchmark/{id}/files/{*path}", get(routes::file))
        .route("/openapi.json", get(routes::openapi))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth))
        .with_state(state);
    Router::new()
        .route("/", get(routes::dashboard))
        .merge(api)
        .fallback(|| async {
            ApiError::not_found("no such route (GET /openapi.json lists them)".into())
        })
}

async fn auth(AxState(state): St, req: Request, next: Next) -> Response {
    if let Some(token) = &state.opts.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
            let mut r = ApiError {
                status: StatusCode::UNAUTHORIZED,
                message: "missing or wrong bearer token (Authorization: Bearer <token>)".into(),
                field: None,
            }
            .into_response();
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    next.run(req).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
