//! The catalog's schema, as numbered migrations applied in order. Each is idempotent (`IF NOT
//! EXISTS`, `ON CONFLICT DO NOTHING`), so two processes opening a new catalog at once both
//! succeed; `schema_version` says which have been applied. The SQL is the same for SQLite and
//! PostgreSQL.

use sqlx::{AnyPool, Row};

use crate::Backend;

/// `(version, statements)`, in order. Never edit one that has shipped: add the next.
const MIGRATIONS: &[(i64, &[&str])] = &[(
    1,
    &[
        "CREATE TABLE IF NOT EXISTS runs (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            description TEXT NOT NULL,
            status TEXT NOT NULL,
            error TEXT,
            model TEXT,
            endpoint TEXT,
            api TEXT,
            dataset_type TEXT,
            workload_type TEXT,
            concurrency BIGINT,
            rate DOUBLE PRECISION,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            metrics TEXT,
            local_dir TEXT,
            remote_url TEXT,
            remote_status TEXT,
            experiment_id TEXT,
            updated_at TEXT NOT NULL
        )",
        "CREATE TABLE IF NOT EXISTS run_tags (
            run_id TEXT NOT NULL,
            tag TEXT NOT NULL,
            PRIMARY KEY (run_id, tag)
        )",
        "CREATE INDEX IF NOT EXISTS runs_started_at ON runs (started_at)",
        "CREATE INDEX IF NOT EXISTS runs_name ON runs (name)",
        "CREATE INDEX IF NOT EXISTS runs_experiment ON runs (experiment_id)",
        "CREATE INDEX IF NOT EXISTS run_tags_tag ON run_tags (tag)",
    ],
)];

/// The newest schema version this build knows.
pub const LATEST: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Applies the migrations not yet applied. A catalog written by a newer `bench` (a version
/// beyond [`LATEST`]) is refused rather than written with an older schema.
pub(crate) fn run(
    pool: &AnyPool,
    backend: Backend,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + '_>> {
    Box::pin(async move {
        let e = |x: sqlx::Error| x.to_string();
        let mut conn = pool.acquire().await.map_err(e)?;
        // One migrator at a time across processes: SQLite's write lock taken at BEGIN, PostgreSQL's
        // advisory lock (released at COMMIT). Without it, two processes creating the same table at
        // once fail on PostgreSQL even with IF NOT EXISTS.
        let begin: &[&str] = match backend {
            Backend::Sqlite => &["BEGIN IMMEDIATE"],
            Backend::Postgres => &["BEGIN", "SELECT pg_advisory_xact_lock(7340611)"],
        };
        for b in begin {
            sqlx::query(b).execute(&mut *conn).await.map_err(e)?;
        }
        let res = apply(&mut conn).await;
        let end = if res.is_ok() { "COMMIT" } else { "ROLLBACK" };
        sqlx::query(end).execute(&mut *conn).await.map_err(e)?;
        res
    })
}

fn apply(
    conn: &mut sqlx::AnyConnection,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + '_>> {
    Box::pin(async move {
        let e = |x: sqlx::Error| x.to_string();
        sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)",
    )
    .execute(&mut *conn)
    .await
    .map_err(e)?;
        let current: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            .fetch_one(&mut *conn)
            .await
            .and_then(|r| r.try_get::<i64, _>(0))
            .map_err(e)?;
        if current > LATEST {
            return Err(format!(
                "schema version {current} is newer than this bench knows ({LATEST}): upgrade bench"
            ));
        }
        for (version, statements) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            for s in *statements {
                sqlx::query(s).execute(&mut *conn).await.map_err(e)?;
            }
            sqlx::query(
            "INSERT INTO schema_version (version, applied_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(*version)
        .bind(crate::now())
        .execute(&mut *conn)
        .await
        .map_err(e)?;
        }
        Ok(())
    })
}
