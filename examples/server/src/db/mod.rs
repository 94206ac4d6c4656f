//! The database: images, variants, the job queue and the audit log, on SQLite (the default: one
//! file, no server) or PostgreSQL (`DATABASE_URL=postgres://…`, for several API processes and
//! workers). One set of queries serves both (sqlx's `Any` driver, `$N` parameters); the few
//! places where the engines differ branch on [`Backend`].
//!
//! One module per table: the audit log and the hourly upload limit it counts, images (with
//! their variants and idempotency keys), the job queue, and the statistics read from them.

mod audit;
mod images;
mod jobs;
mod stats;

use std::path::Path;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use audit::{
    AuditEvent, NewAuditEvent, audit, audit_events, insert_audit, retry_after_secs,
    uploads_in_window,
};
pub use images::{
    IDEMPOTENCY_WINDOW_MS, IdempotentUpload, ImageRow, NewImage, Recorded, VariantRow,
    delete_image, idempotent_upload, image_for_user, images_of_user, insert_upload, original_key,
    variants_of,
};
pub use jobs::{
    ClaimedJob, JobView, claim_job, claim_job_by_id, complete_job, fail_job, forget_dispatches,
    job_for_user, mark_dispatched, renew_lease, requeue_interrupted, stranded_jobs, undispatch,
};
pub use stats::{DbStats, activity, done_by_worker, stats};

/// Which database engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file (WAL mode).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A pool of connections to the service's database.
#[derive(Debug, Clone)]
pub struct Db {
    /// The connections.
    pub pool: AnyPool,
    /// The engine behind them.
    pub backend: Backend,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The `sqlite:` URL of a database file (created if missing; its folder too): absolute and
/// percent-encoded, so a space, `%` or `..` in the path reaches SQLite as written.
pub fn sqlite_url(path: &Path) -> Result<String, std::io::Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    /// Everything but letters, digits and `/-_.~`.
    const PATH: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let absolute = std::path::absolute(path)?;
    let encoded = utf8_percent_encode(&absolute.to_string_lossy(), PATH).to_string();
    Ok(format!("sqlite://{encoded}?mode=rwc"))
}

/// Opens the database at `url` (`sqlite://…` or `postgres://…`) and runs the migrations for its
/// engine.
pub async fn open(url: &str) -> Result<Db, sqlx::Error> {
    sqlx::any::install_default_drivers();
    let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Backend::Postgres
    } else if url.starts_with("sqlite:") {
        Backend::Sqlite
    } else {
        return Err(sqlx::Error::Configuration(
            "expected a sqlite: or postgres:// URL".into(),
        ));
    };
    let options: AnyConnectOptions = url.parse()?;
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // WAL lets readers run beside the writer (and other processes on the same
                    // file); FULL keeps a committed job through a power cut.
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                    )
                    .await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    match backend {
        Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
        Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
    }
    Ok(Db { pool, backend })
}

/// Begins a transaction that will write after it reads: SQLite takes its write lock at once
/// (a deferred transaction cannot upgrade its lock once another connection has committed,
/// `SQLITE_BUSY_SNAPSHOT`); PostgreSQL's row locks and advisory locks do the rest.
async fn begin_write(db: &Db) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
    match db.backend {
        Backend::Sqlite => db.pool.begin_with("BEGIN IMMEDIATE").await,
        Backend::Postgres => db.pool.begin().await,
    }
}

/// One hour in milliseconds.
const HOUR_MS: i64 = 3_600_000;

/// What the tests of each table start from.
#[cfg(test)]
pub(super) mod testing {
    use super::*;

    /// A fresh SQLite database in a temporary folder (it lives as long as the folder).
    pub async fn db() -> (tempfile::TempDir, Db) {
        let tmp = tempfile::tempdir().unwrap();
        let url = sqlite_url(&tmp.path().join("imgest.db")).unwrap();
        let db = open(&url).await.unwrap();
        (tmp, db)
    }

    /// A new upload `img-{n}` (job `job-{n}`, original `originals/{n}`, 100 × n bytes) of
    /// `user`.
    pub fn image<'a>(ids: &'a (String, String, String), user: &'a str, n: i64) -> NewImage<'a> {
        NewImage {
            id: &ids.0,
            job_id: &ids.1,
            user_id: user,
            filename: Some("a.png"),
            format: "png",
            bytes: 100 * n,
            original_key: &ids.2,
            original_sha256: "aa",
            client: Some("127.0.0.1"),
            request_id: Some("req-1"),
            idempotency: None,
        }
    }

    /// The ids [`image`] borrows: image, job and original key.
    pub fn ids(n: i64) -> (String, String, String) {
        (
            format!("img-{n}"),
            format!("job-{n}"),
            format!("originals/{n}"),
        )
    }

    /// Records upload `n` of `user` (limit 50 an hour, 4 attempts).
    pub async fn upload(db: &Db, user: &str, n: i64) -> Recorded {
        let ids = ids(n);
        insert_upload(db, &image(&ids, user, n), 50, 4)
            .await
            .unwrap()
    }

    /// A variant stored under `key`.
    pub fn variant(name: &str, key: &str, bytes: i64) -> VariantRow {
        VariantRow {
            name: name.to_string(),
            storage_key: key.to_string(),
            content_type: "image/webp".to_string(),
            width: 10,
            height: 5,
            format: "webp".to_string(),
            bytes,
            sha256: format!("sha-{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sqlite_path_reaches_sqlite_as_written() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a dir/../odd %20 name/imgest.db");
        let url = sqlite_url(&path).unwrap();
        assert!(url.starts_with("sqlite:///"), "{url}");
        assert!(
            url.ends_with("/a%20dir/../odd%20%2520%20name/imgest.db?mode=rwc"),
            "{url}"
        );
        let db = open(&url).await.unwrap();
        assert_eq!(db.backend, Backend::Sqlite);
        sqlx::query("SELECT COUNT(*) FROM jobs")
            .execute(&db.pool)
            .await
            .unwrap();
        assert!(tmp.path().join("odd %20 name/imgest.db").is_file());
    }
}
