//! Object storage of runs: `push` copies a run (or experiment) directory to an S3-compatible
//! store, `pull` brings it back, every file checked against the sha256 the manifest recorded.
//!
//! Layout: a run directory `D` pushed to `s3://bucket/prefix` lands under
//! `s3://bucket/prefix/<D's name>/<relative path>`. Its `manifest.json` goes last, with an
//! `artifacts` map (path -> bytes, sha256) of every other file: its presence marks a complete
//! copy, and `pull` refuses a copy without it. An experiment directory (experiment.json, no
//! manifest) is marked the same way by a `SHA256SUMS` file (sha256sum's format) listing every
//! file, the runs' included.
//!
//! The S3 client is object_store's `AmazonS3` (async); the functions here are blocking (each
//! runs a tokio runtime of its own), for the synchronous CLI. Requests retry with exponential
//! backoff (object_store's `RetryConfig`, from `retries` and `timeout_s`). Credentials come
//! from the AWS environment variables, else the AWS profile files ([`profile`]); they are held
//! in memory only.

mod profile;
mod pull;
mod push;
mod sums;

use std::path::{Path, PathBuf};
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;

pub use pull::{PullReport, list_runs, pull};
pub use push::{PushReport, push, push_experiment_files};

/// The name of the file that marks an experiment's complete copy.
pub const SHA256SUMS: &str = "SHA256SUMS";

/// Where and how to reach the store.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// `s3://bucket[/prefix]`.
    pub url: String,
    /// S3-compatible endpoint (`http://127.0.0.1:9000`); None: AWS.
    pub endpoint: Option<String>,
    /// Region; None: the environment's, the profile's, else us-east-1.
    pub region: Option<String>,
    /// Retries of a failed request.
    pub retries: u32,
    /// Seconds a request, and all its retries, may take.
    pub timeout_s: f64,
}

impl StoreConfig {
    /// The config's `storage` section, when `storage.url` is set.
    pub fn from_config(c: &bench_config::StorageConfig) -> Option<StoreConfig> {
        Some(StoreConfig {
            url: c.url.clone()?,
            endpoint: c.endpoint.clone(),
            region: c.region.clone(),
            retries: c.retries,
            timeout_s: c.timeout_s,
        })
    }

    /// The same store settings for another URL.
    pub fn with_url(&self, url: &str) -> StoreConfig {
        StoreConfig {
            url: url.to_string(),
            ..self.clone()
        }
    }
}

/// Why a push or pull failed as a whole (a push's per-file failures are in its report).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Not an `s3://bucket[/prefix]` URL, or a client that cannot be built from the settings.
    #[error("storage URL {0}")]
    BadUrl(String),
    /// The store did not answer (within the timeout), or refused the request.
    #[error("storage {url}: unreachable: {msg}")]
    Unreachable { url: String, msg: String },
    /// No marker file: the copy was never completed.
    #[error("incomplete copy: no manifest.json at {0}")]
    Incomplete(String),
    /// A file the marker lists is not in the store, or could not be read from it.
    #[error("{url}: {msg}")]
    Object { url: String, msg: String },
    /// A downloaded file differs from its recorded checksum (it was not kept).
    #[error(
        "{file}: checksum mismatch: the manifest says {expected}, the store's copy has {got}; the file was not kept"
    )]
    Checksum {
        file: String,
        expected: String,
        got: String,
    },
    /// A local file or directory.
    #[error("{path}: {msg}")]
    Local { path: PathBuf, msg: String },
}

impl StoreError {
    fn local(path: &Path, e: impl std::fmt::Display) -> StoreError {
        StoreError::Local {
            path: path.to_path_buf(),
            msg: e.to_string(),
        }
    }
}

/// An error's text on one line (object_store's carry their causes, some over several lines).
fn one_line(e: impl std::fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The bucket's client and the key prefix of a URL.
struct Remote {
    store: AmazonS3,
    prefix: String,
    url: String,
    timeout: Duration,
}

impl Remote {
    fn connect(cfg: &StoreConfig) -> Result<Remote, StoreError> {
        let (bucket, prefix) =
            bench_config::storage::parse_s3_url(&cfg.url).map_err(StoreError::BadUrl)?;
        let timeout = Duration::from_secs_f64(cfg.timeout_s.max(0.1));
        let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            let p = profile::current();
            if let (Some(id), Some(secret)) = (p.access_key_id, p.secret_access_key) {
                b = b.with_access_key_id(id).with_secret_access_key(secret);
                if let Some(t) = p.session_token {
                    b = b.with_token(t);
                }
            }
            if std::env::var_os("AWS_REGION").is_none()
                && std::env::var_os("AWS_DEFAULT_REGION").is_none()
                && let Some(r) = p.region
            {
                b = b.with_region(r);
            }
        }
        if let Some(r) = &cfg.region {
            b = b.with_region(r);
        }
        if let Some(e) = &cfg.endpoint {
            b = b.with_endpoint(e);
        }
        let retry = object_store::RetryConfig {
            backoff: object_store::BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(15).min(timeout),
                base: 2.0,
            },
            max_retries: cfg.retries as usize,
            retry_timeout: timeout,
        };
        // the builder's client options are replaced whole: allow_http is set here, for the
        // configured endpoint or the environment's
        let http = cfg
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT").ok())
            .is_some_and(|e| e.starts_with("http://"));
        let options = object_store::ClientOptions::new()
            .with_allow_http(http)
            .with_timeout(timeout)
            .with_connect_timeout(timeout.min(Duration::from_secs(10)));
        let store = b
            .with_retry(retry)
            .with_client_options(options)
            .build()
            .map_err(|e| StoreError::BadUrl(format!("{}: {}", cfg.url, one_line(e))))?;
        Ok(Remote {
            store,
            prefix,
            url: cfg.url.trim_end_matches('/').to_string(),
            timeout,
        })
    }

    /// The key of `rel` (a `/`-separated relative path) under the prefix.
    fn key(&self, rel: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(rel)
        } else {
            ObjectPath::from(format!("{}/{rel}", self.prefix))
        }
    }

    /// `s3://bucket/prefix/rel`, for messages.
    fn url_of(&self, rel: &str) -> String {
        format!("{}/{rel}", self.url)
    }

    /// The error of a request that found no answer, or a refusal (credentials, permissions).
    fn unreachable(&self, e: object_store::Error) -> StoreError {
        match e {
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => StoreError::Object {
                url: self.url.clone(),
                msg: format!("refused (check the credentials): {}", one_line(e)),
            },
            e => StoreError::Unreachable {
                url: self.url.clone(),
                msg: one_line(e),
            },
        }
    }

    /// Runs `f`, an error once the store's time is up (a bound over object_store's own).
    async fn bounded<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, object_store::Error>>,
    ) -> Result<T, object_store::Error> {
        match tokio::time::timeout(self.timeout + Duration::from_secs(1), f).await {
            Ok(r) => r,
            Err(_) => Err(object_store::Error::Generic {
                store: "S3",
                source: format!("no answer within {:.1} s", self.timeout.as_secs_f64()).into(),
            }),
        }
    }
}

/// A runtime for one blocking call.
fn runtime() -> Result<tokio::runtime::Runtime, StoreError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::local(Path::new("."), format!("starting the I/O runtime: {e}")))
}

/// Files at most this big are sent in one PUT; bigger ones in parts of this size.
const PART_BYTES: usize = 16 << 20;

/// Requests in flight at once.
const PARALLEL: usize = 8;

/// Whether a file name is a temporary or hidden file, never pushed.
fn is_temporary(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with(".tmp")
        || name.ends_with(".part")
        || name.ends_with('~')
}

/// What a directory holds.
#[derive(Debug, Default)]
struct Listing {
    /// Every regular file (recursively), as sorted `/`-separated relative paths, without
    /// temporary and hidden files.
    files: Vec<String>,
    /// The run directories inside it (relative, holding a manifest.json): an experiment's.
    runs: Vec<String>,
    /// Files whose path is not UTF-8 (shown lossily): no object key can name them.
    unnamable: Vec<String>,
}

/// Lists `dir`.
fn walk(dir: &Path) -> Result<Listing, StoreError> {
    fn go(root: &Path, d: &Path, out: &mut Listing) -> Result<(), StoreError> {
        let rd = std::fs::read_dir(d).map_err(|e| StoreError::local(d, e))?;
        for entry in rd {
            let entry = entry.map_err(|e| StoreError::local(d, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_temporary(&name) {
                continue;
            }
            let p = entry.path();
            let t = entry.file_type().map_err(|e| StoreError::local(&p, e))?;
            let sub = p.strip_prefix(root).expect("under the root");
            let rel = sub
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            if t.is_dir() {
                if p.join(bench_types::files::MANIFEST).is_file() {
                    out.runs.push(rel);
                }
                go(root, &p, out)?;
            } else if t.is_file() && sub.to_str().is_none() {
                out.unnamable.push(rel);
            } else if t.is_file() {
                out.files.push(rel);
            }
            // symbolic links (an experiment's `latest`) are not artifacts
        }
        Ok(())
    }
    let mut out = Listing::default();
    go(dir, dir, &mut out)?;
    out.files.sort();
    out.runs.sort();
    out.unnamable.sort();
    Ok(out)
}

/// The name a directory's copy takes in the store: its last path component (of its canonical
/// path: `output/latest` pushes under the name of the run it points to).
pub fn name_in_store(dir: &Path) -> Result<String, StoreError> {
    let abs = std::fs::canonicalize(dir).map_err(|e| StoreError::local(dir, e))?;
    abs.components()
        .next_back()
        .and_then(|c| match c {
            std::path::Component::Normal(n) => n.to_str().map(str::to_string),
            _ => None,
        })
        .ok_or_else(|| StoreError::local(dir, "has no name to push under"))
}
