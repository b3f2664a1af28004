//! The run catalog: every run and experiment, where its files are and how it ended, in SQL.
//!
//! One schema, one set of migrations and one code path for both backends, through sqlx's `Any`
//! driver: SQLite (`sqlite://./output/catalog.db`, embedded, the default) and PostgreSQL
//! (`postgres://...`, one catalog shared by a team). Queries use `$N` placeholders and only
//! types both databases have (TEXT, BIGINT, DOUBLE PRECISION); times are RFC 3339 UTC text, so
//! they sort and compare as strings on both.
//!
//! Concurrent writers (a sweep, its runs and a service at once) are safe: every change is one
//! statement or one transaction; SQLite runs in WAL mode with a busy timeout, so a writer waits
//! for another instead of failing; migrations are idempotent, so two processes opening a new
//! catalog at once both succeed.

pub mod config_entry;
mod entry;
mod migrate;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

pub use entry::{Entry, Filter, Kind, Page, RemoteCopy, Status};

/// A catalog that cannot be opened or queried: the message names the catalog URL (without
/// credentials) and the cause.
#[derive(Debug, thiserror::Error)]
#[error("catalog {url}: {message}")]
pub struct CatalogError {
    /// The catalog's URL, its password removed.
    pub url: String,
    /// What went wrong.
    pub message: String,
}

/// Which database holds the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A file, opened in-process.
    Sqlite,
    /// A server.
    Postgres,
}

/// A catalog operation's future, boxed as `Send`: sqlx's transactions in a plain `async fn`
/// trip the compiler's "not general enough" limit when the future is spawned (axum handlers).
pub type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T, CatalogError>> + Send + 'a>>;

/// An open catalog (a connection pool; cheap to clone).
#[derive(Debug, Clone)]
pub struct Catalog {
    pool: AnyPool,
    url: String,
    backend: Backend,
}

/// The URL with any password replaced by `***`: what messages and files may show.
pub fn redact_url(url: &str) -> String {
    bench_types::manifest::redact_url_password(url)
}

const SELECT: &str = "SELECT id, kind, name, description, status, error, model, endpoint, api, \
    dataset_type, workload_type, concurrency, rate, started_at, ended_at, metrics, local_dir, \
    remote_url, remote_status, experiment_id FROM runs";

impl Catalog {
    /// Opens (creating a SQLite file and its directory when needed) and migrates the catalog.
    pub async fn open(url: &str) -> Result<Catalog, CatalogError> {
        sqlx::any::install_default_drivers();
        let shown = redact_url(url);
        let err = |m: String| CatalogError {
            url: shown.clone(),
            message: m,
        };
        let (backend, connect) = if let Some(path) = url.strip_prefix("sqlite://") {
            let (file, query) = path.split_once('?').unwrap_or((path, ""));
            if file.is_empty() {
                return Err(err("no file path after sqlite://".into()));
            }
            if file != ":memory:"
                && let Some(dir) = Path::new(file).parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir)
                    .map_err(|e| err(format!("creating {}: {e}", dir.display())))?;
            }
            let query = if query.contains("mode=") {
                query.to_string()
            } else if query.is_empty() {
                "mode=rwc".to_string()
            } else {
                format!("{query}&mode=rwc")
            };
            (Backend::Sqlite, format!("sqlite://{file}?{query}"))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(err(
                "not a catalog URL: use sqlite://PATH or postgres://USER@HOST:PORT/DB".into(),
            ));
        };
        // one connection first, for the real cause when there is none (the pool would only say
        // that it timed out)
        {
            use sqlx::Connection;
            let c = tokio::time::timeout(
                Duration::from_secs(5),
                sqlx::AnyConnection::connect(&connect),
            )
            .await
            .map_err(|_| err("no answer within 5 s".into()))?
            .map_err(|e| err(one_line(&e)))?;
            let _ = c.close().await;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .acquire_timeout(Duration::from_secs(3))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers never wait for the writer; a writer waits (busy timeout)
                        // for another instead of failing.
                        sqlx::query("PRAGMA journal_mode=WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout=10000")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&connect)
            .await
            .map_err(|e| err(one_line(&e)))?;
        let c = Catalog {
            pool,
            url: shown,
            backend,
        };
        migrate::run(&c.pool, backend)
            .await
            .map_err(|e| c.error(e))?;
        Ok(c)
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL, without its password.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn error(&self, e: impl std::fmt::Display) -> CatalogError {
        CatalogError {
            url: self.url.clone(),
            message: one_line(&e),
        }
    }

    /// Registers an entry, or replaces every field of the one with its id (a run registering
    /// again, an import of a directory already known).
    pub fn upsert<'a>(&'a self, e: &'a Entry) -> Fut<'a, ()> {
        Box::pin(async move {
            let metrics = e.metrics.as_ref().map(|m| m.to_string());
            let now = now();
            let mut tx = self.pool.begin().await.map_err(|x| self.error(x))?;
            sqlx::query(
            "INSERT INTO runs (id, kind, name, description, status, error, model, endpoint, api, \
             dataset_type, workload_type, concurrency, rate, started_at, ended_at, metrics, \
             local_dir, remote_url, remote_status, experiment_id, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) \
             ON CONFLICT (id) DO UPDATE SET kind = $2, name = $3, description = $4, status = $5, \
             error = $6, model = $7, endpoint = $8, api = $9, dataset_type = $10, \
             workload_type = $11, concurrency = $12, rate = $13, \
             started_at = $14, \
             ended_at = $15, metrics = $16, local_dir = $17, remote_url = $18, \
             remote_status = $19, experiment_id = $20, updated_at = $21",
        )
        .bind(e.id.clone())
        .bind(e.kind.as_str())
        .bind(e.name.clone())
        .bind(e.description.clone())
        .bind(e.status.as_str())
        .bind(e.error.clone())
        .bind(e.model.clone())
        .bind(e.endpoint.clone())
        .bind(e.api.clone())
        .bind(e.dataset_type.clone())
        .bind(e.workload_type.clone())
        .bind(e.concurrency)
        .bind(e.rate)
        .bind(e.started_at.clone())
        .bind(e.ended_at.clone())
        .bind(metrics.clone())
        .bind(e.local_dir.clone())
        .bind(e.remote.as_ref().map(|r| r.url.clone()))
        .bind(e.remote.as_ref().map(|r| r.status.clone()))
        .bind(e.experiment_id.clone())
        .bind(now.clone())
        // prepared afresh each time: through sqlx's Any driver a NULL number is bound with
        // another type than a number, and PostgreSQL's cached statement would keep the first
        .persistent(false)
        .execute(&mut *tx)
        .await
        .map_err(|x| self.error(x))?;
            write_tags(&mut tx, &e.id, &e.tags)
                .await
                .map_err(|x| self.error(x))?;
            tx.commit().await.map_err(|x| self.error(x))
        })
    }

    /// Marks a run's end: its status, error, end time and headline figures.
    pub async fn finish(
        &self,
        id: &str,
        status: Status,
        error: Option<&str>,
        metrics: Option<&serde_json::Value>,
    ) -> Result<(), CatalogError> {
        let n = sqlx::query(
            "UPDATE runs SET status = $2, error = $3, ended_at = $4, \
             metrics = COALESCE($5, metrics), updated_at = $4 WHERE id = $1",
        )
        .bind(id.to_owned())
        .bind(status.as_str())
        .bind(error.to_owned())
        .bind(now())
        .bind(metrics.map(|m| m.to_string()))
        .execute(&self.pool)
        .await
        .map_err(|x| self.error(x))?
        .rows_affected();
        self.found(id, n)
    }

    /// Records where the run's remote copy is and whether it is complete.
    pub async fn set_remote(&self, id: &str, remote: &RemoteCopy) -> Result<(), CatalogError> {
        let n = sqlx::query(
            "UPDATE runs SET remote_url = $2, remote_status = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(id.to_owned())
        .bind(remote.url.clone())
        .bind(remote.status.clone())
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(|x| self.error(x))?
        .rows_affected();
        self.found(id, n)
    }

    fn found(&self, id: &str, rows: u64) -> Result<(), CatalogError> {
        if rows == 0 {
            return Err(self.error(format!("no run or experiment with id {id}")));
        }
        Ok(())
    }

    /// The entry with this id; else the newest whose name is this; else the one whose id
    /// starts with it (at least 6 characters, and only one such).
    pub async fn get(&self, id_or_name: &str) -> Result<Option<Entry>, CatalogError> {
        let prefix = if id_or_name.len() >= 6 {
            format!("{}%", id_or_name.replace(['%', '_'], ""))
        } else {
            id_or_name.to_owned()
        };
        let rows = sqlx::query(&format!(
            "{SELECT} WHERE id = $1 OR name = $1 OR id LIKE $2 \
             ORDER BY CASE WHEN id = $1 THEN 0 WHEN name = $1 THEN 1 ELSE 2 END, \
             started_at DESC, id LIMIT 2"
        ))
        .bind(id_or_name.to_owned())
        .bind(prefix)
        .fetch_all(&self.pool)
        .await
        .map_err(|x| self.error(x))?;
        let mut es = rows
            .iter()
            .map(entry::from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|x| self.error(x))?;
        let exact = |e: &Entry| e.id == id_or_name || e.name == id_or_name;
        if es.len() == 2 && !exact(&es[0]) {
            return Err(self.error(format!(
                "`{id_or_name}` is the start of several ids ({}, {}, ...): give more of it",
                es[0].id, es[1].id
            )));
        }
        let Some(mut e) = es.drain(..).next() else {
            return Ok(None);
        };
        e.tags = self.tags_of(&e.id).await?;
        Ok(Some(e))
    }

    /// An entry's tags, sorted.
    async fn tags_of(&self, id: &str) -> Result<Vec<String>, CatalogError> {
        let rows = sqlx::query("SELECT tag FROM run_tags WHERE run_id = $1 ORDER BY tag")
            .bind(id.to_owned())
            .fetch_all(&self.pool)
            .await
            .map_err(|x| self.error(x))?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()
            .map_err(|x| self.error(x))
    }

    /// One page of entries matching the filter, newest first, and how many match in all.
    pub async fn list(&self, f: &Filter) -> Result<Page, CatalogError> {
        let (cond, args) = f.condition();
        let count_sql = format!("SELECT COUNT(*) FROM runs{cond}");
        let mut q = sqlx::query(&count_sql);
        for a in &args {
            q = q.bind(a.clone());
        }
        let total: i64 = q
            .fetch_one(&self.pool)
            .await
            .and_then(|r: AnyRow| r.try_get(0))
            .map_err(|x| self.error(x))?;
        let limit = f.limit.clamp(1, 1000);
        let page = f.page.max(1);
        let sql = format!(
            "{SELECT}{cond} ORDER BY started_at DESC, id LIMIT {limit} OFFSET {}",
            (page - 1) * limit
        );
        let mut q = sqlx::query(&sql);
        for a in &args {
            q = q.bind(a.clone());
        }
        let rows = q.fetch_all(&self.pool).await.map_err(|x| self.error(x))?;
        let mut entries = rows
            .iter()
            .map(entry::from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|x| self.error(x))?;
        for e in &mut entries {
            e.tags = self.tags_of(&e.id).await?;
        }
        Ok(Page {
            entries,
            total: total.max(0) as u64,
            page,
            limit,
        })
    }

    /// Adds and removes tags; returns the entry's tags after.
    pub fn tag<'a>(
        &'a self,
        id: &'a str,
        add: &'a [String],
        remove: &'a [String],
    ) -> Fut<'a, Vec<String>> {
        Box::pin(async move {
            // a write first: a SQLite transaction that reads before it writes cannot wait for
            // another writer (it would fail with "database is locked" instead)
            let mut tx = self.pool.begin().await.map_err(|x| self.error(x))?;
            let n = sqlx::query("UPDATE runs SET updated_at = $2 WHERE id = $1")
                .bind(id.to_owned())
                .bind(now())
                .execute(&mut *tx)
                .await
                .map_err(|x| self.error(x))?
                .rows_affected();
            self.found(id, n)?;
            for t in remove {
                sqlx::query("DELETE FROM run_tags WHERE run_id = $1 AND tag = $2")
                    .bind(id.to_owned())
                    .bind(t.to_owned())
                    .execute(&mut *tx)
                    .await
                    .map_err(|x| self.error(x))?;
            }
            for t in add {
                insert_tag(&mut tx, id, t)
                    .await
                    .map_err(|x| self.error(x))?;
            }
            tx.commit().await.map_err(|x| self.error(x))?;
            self.tags_of(id).await
        })
    }

    /// Removes an entry (and its tags); false when there was none.
    pub fn remove<'a>(&'a self, id: &'a str) -> Fut<'a, bool> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await.map_err(|x| self.error(x))?;
            sqlx::query("DELETE FROM run_tags WHERE run_id = $1")
                .bind(id.to_owned())
                .execute(&mut *tx)
                .await
                .map_err(|x| self.error(x))?;
            let n = sqlx::query("DELETE FROM runs WHERE id = $1")
                .bind(id.to_owned())
                .execute(&mut *tx)
                .await
                .map_err(|x| self.error(x))?
                .rows_affected();
            tx.commit().await.map_err(|x| self.error(x))?;
            Ok(n > 0)
        })
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

async fn write_tags(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    tags: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM run_tags WHERE run_id = $1")
        .bind(id.to_owned())
        .execute(&mut **tx)
        .await?;
    for t in tags {
        insert_tag(tx, id, t).await?;
    }
    Ok(())
}

async fn insert_tag(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    tag: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO run_tags (run_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(id.to_owned())
        .bind(tag.to_owned())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Now, RFC 3339 UTC with microseconds (sorts as text).
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn one_line(e: &impl std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// Runs a future on a runtime of its own: the catalog from synchronous code (the CLI, a run's
/// driver).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
        .block_on(f)
}

#[cfg(test)]
mod tests;
