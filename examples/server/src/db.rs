//! The database: images, variants, the job queue and the audit log, on SQLite (the default: one
//! file, no server) or PostgreSQL (`DATABASE_URL=postgres://…`, for several API processes and
//! workers). One set of queries serves both (sqlx's `Any` driver, `$N` parameters); the few
//! places where the engines differ branch on [`Backend`].

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use sqlx::Row;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor};

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

/// One audit event.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEvent {
    /// When (ms since the epoch).
    pub at: i64,
    /// The user, when known.
    pub user_id: Option<String>,
    /// `upload`, `delete`, `auth_failure`, `rate_limited`, `job_failed`.
    pub action: String,
    /// The image concerned, if any.
    pub image_id: Option<String>,
    /// The client's address.
    pub client: Option<String>,
    /// `accepted`, `rejected`, `ok`, `failed`, ...
    pub outcome: String,
    /// A short detail (an error code, a reason).
    pub detail: Option<String>,
}

/// Appends an audit event.
pub async fn audit(
    db: &Db,
    user_id: Option<&str>,
    action: &str,
    image_id: Option<&str>,
    client: Option<&str>,
    outcome: &str,
    detail: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (at, user_id, action, image_id, client, outcome, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(now_ms())
    .bind(user_id)
    .bind(action)
    .bind(image_id)
    .bind(client)
    .bind(outcome)
    .bind(detail)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The newest audit events, newest first.
pub async fn audit_events(
    db: &Db,
    limit: i64,
    offset: i64,
    action: Option<&str>,
) -> Result<Vec<AuditEvent>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT at, user_id, action, image_id, client, outcome, detail FROM audit_log \
         WHERE ($1 IS NULL OR action = $1) ORDER BY id DESC LIMIT $2 OFFSET $3",
    )
    .bind(action)
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| AuditEvent {
            at: r.get("at"),
            user_id: r.get("user_id"),
            action: r.get("action"),
            image_id: r.get("image_id"),
            client: r.get("client"),
            outcome: r.get("outcome"),
            detail: r.get("detail"),
        })
        .collect())
}

const HOUR_MS: i64 = 3_600_000;

/// Accepted uploads of `user` in the last hour, and when the oldest of them leaves the window.
pub async fn uploads_in_window(
    db: &Db,
    user: &str,
    now: i64,
) -> Result<(i64, Option<i64>), sqlx::Error> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, MIN(at) AS oldest FROM audit_log \
         WHERE user_id = $1 AND action = 'upload' AND outcome = 'accepted' AND at > $2",
    )
    .bind(user)
    .bind(now - HOUR_MS)
    .fetch_one(&db.pool)
    .await?;
    Ok((row.get("n"), row.get::<Option<i64>, _>("oldest")))
}

/// Seconds until `user` may upload again, given the oldest upload in the window.
pub fn retry_after_secs(oldest: Option<i64>, now: i64) -> u64 {
    oldest.map_or(1, |o| {
        ((o + HOUR_MS - now).max(0) as u64).div_ceil(1000).max(1)
    })
}

/// A new upload to record.
#[derive(Debug, Clone)]
pub struct NewImage<'a> {
    /// The image's id.
    pub id: &'a str,
    /// Its job's id.
    pub job_id: &'a str,
    /// The owner.
    pub user_id: &'a str,
    /// The uploaded file name, if any.
    pub filename: Option<&'a str>,
    /// The sniffed format.
    pub format: &'a str,
    /// Its size.
    pub bytes: i64,
    /// Where the original is stored.
    pub original_key: &'a str,
    /// The original's sha256.
    pub original_sha256: &'a str,
    /// The client's address.
    pub client: Option<&'a str>,
    /// The request's id (`X-Request-Id`), kept on the job.
    pub request_id: Option<&'a str>,
    /// The request's `Idempotency-Key` and the upload's fingerprint.
    pub idempotency: Option<(&'a str, &'a str)>,
}

/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * HOUR_MS;

/// The first upload made with an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentUpload {
    /// sha256 of its file name and bytes.
    pub fingerprint: String,
    /// The image it created.
    pub image_id: String,
    /// Its job.
    pub job_id: String,
}

/// The upload `user` made with `key` in the last 24 hours, if any.
pub async fn idempotent_upload(
    db: &Db,
    user: &str,
    key: &str,
) -> Result<Option<IdempotentUpload>, sqlx::Error> {
    idempotent_upload_in(&db.pool, user, key, now_ms()).await
}

async fn idempotent_upload_in<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    executor: E,
    user: &str,
    key: &str,
    now: i64,
) -> Result<Option<IdempotentUpload>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT fingerprint, image_id, job_id FROM idempotency_keys \
         WHERE user_id = $1 AND idempotency_key = $2 AND created_at > $3",
    )
    .bind(user)
    .bind(key)
    .bind(now - IDEMPOTENCY_WINDOW_MS)
    .fetch_optional(executor)
    .await?;
    Ok(row.map(|r| IdempotentUpload {
        fingerprint: r.get("fingerprint"),
        image_id: r.get("image_id"),
        job_id: r.get("job_id"),
    }))
}

/// What [`insert_upload`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The upload is recorded.
    Yes,
    /// The user has reached the hourly limit; nothing was written.
    RateLimited,
    /// Another upload with the same `Idempotency-Key` was recorded first; nothing was written.
    Earlier(IdempotentUpload),
}

/// Records an upload — audit event, image, queued job and its idempotency key — in one
/// transaction, unless the user already has `limit` accepted uploads in the last hour or
/// another upload took the same idempotency key first.
///
/// The count and the insert are one statement inside a write transaction, so concurrent
/// uploads cannot both take the last slot.
pub async fn insert_upload(
    db: &Db,
    image: &NewImage<'_>,
    limit: u32,
    max_attempts: u32,
) -> Result<Recorded, sqlx::Error> {
    let now = now_ms();
    let mut tx = begin_write(db).await?;
    if db.backend == Backend::Postgres {
        // Serialises one user's uploads across every API process until this transaction ends
        // (SQLite's single writer does the same by itself).
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(image.user_id)
            .execute(&mut *tx)
            .await?;
    }
    if let Some((key, fingerprint)) = image.idempotency {
        // A key older than the window is free again; this user's expired keys go with it.
        sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1 AND created_at <= $2")
            .bind(image.user_id)
            .bind(now - IDEMPOTENCY_WINDOW_MS)
            .execute(&mut *tx)
            .await?;
        if let Some(earlier) = idempotent_upload_in(&mut *tx, image.user_id, key, now).await? {
            tx.rollback().await?;
            return Ok(Recorded::Earlier(earlier));
        }
        sqlx::query(
            "INSERT INTO idempotency_keys (user_id, idempotency_key, fingerprint, image_id, job_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(image.user_id)
        .bind(key)
        .bind(fingerprint)
        .bind(image.id)
        .bind(image.job_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    let counted = sqlx::query(
        "INSERT INTO audit_log (at, user_id, action, image_id, client, outcome, detail) \
         SELECT $1, $2, 'upload', $3, $4, 'accepted', $5 \
         WHERE (SELECT COUNT(*) FROM audit_log WHERE user_id = $2 AND action = 'upload' \
                AND outcome = 'accepted' AND at > $6) < $7",
    )
    .bind(now)
    .bind(image.user_id)
    .bind(image.id)
    .bind(image.client)
    .bind(format!("{} {} bytes", image.format, image.bytes))
    .bind(now - HOUR_MS)
    .bind(i64::from(limit))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if counted == 0 {
        tx.rollback().await?;
        return Ok(Recorded::RateLimited);
    }
    sqlx::query(
        "INSERT INTO images (id, user_id, filename, format, bytes, original_key, original_sha256, \
         status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9)",
    )
    .bind(image.id)
    .bind(image.user_id)
    .bind(image.filename)
    .bind(image.format)
    .bind(image.bytes)
    .bind(image.original_key)
    .bind(image.original_sha256)
    .bind(now)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO jobs (id, image_id, user_id, status, attempts, max_attempts, run_after, \
         created_at, request_id) VALUES ($1, $2, $3, 'queued', 0, $4, $5, $6, $7)",
    )
    .bind(image.job_id)
    .bind(image.id)
    .bind(image.user_id)
    .bind(i64::from(max_attempts))
    .bind(now)
    .bind(now)
    .bind(image.request_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Recorded::Yes)
}

/// A job claimed by a worker.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    /// The job's id.
    pub id: String,
    /// The image it processes.
    pub image_id: String,
    /// The owner.
    pub user_id: String,
    /// This attempt's number (1 for the first).
    pub attempt: i64,
    /// The most attempts allowed.
    pub max_attempts: i64,
    /// Proves the lease is still this worker's when it reports back.
    pub lease_token: String,
    /// The id of the upload request that created the job.
    pub request_id: Option<String>,
}

/// Claims the oldest runnable job: queued and due, or processing with an expired lease (its
/// worker died). One `UPDATE ... RETURNING`, so two workers never claim the same job.
pub async fn claim_job(
    db: &Db,
    lease: Duration,
    worker: &str,
) -> Result<Option<ClaimedJob>, sqlx::Error> {
    // On PostgreSQL, `SKIP LOCKED` lets concurrent claimers pass over each other's rows; SQLite
    // has one writer at a time.
    let lock = match db.backend {
        Backend::Sqlite => "",
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
    };
    let target = format!(
        "id = (SELECT id FROM jobs WHERE {RUNNABLE} ORDER BY run_after, created_at LIMIT 1 {lock})"
    );
    claim(db, &target, None, lease, worker).await
}

/// Claims the job `id` if it is runnable (see [`claim_job`]); `None` when it is not (done,
/// failed, deleted, not yet due, or leased to a live worker). Workers fed by a queue in Redis
/// claim the job named in each message this way, so a message delivered twice runs once.
pub async fn claim_job_by_id(
    db: &Db,
    id: &str,
    lease: Duration,
    worker: &str,
) -> Result<Option<ClaimedJob>, sqlx::Error> {
    claim(
        db,
        &format!("id = $5 AND {RUNNABLE}"),
        Some(id),
        lease,
        worker,
    )
    .await
}

/// Which jobs a worker may take at time `$3`: queued and due, or processing with an expired
/// lease (its worker died).
const RUNNABLE: &str = "((status = 'queued' AND run_after <= $3) \
    OR (status = 'processing' AND lease_until < $3))";

/// Leases the job `target` selects (`$5` = `id`) to `worker` with a fresh token.
async fn claim(
    db: &Db,
    target: &str,
    id: Option<&str>,
    lease: Duration,
    worker: &str,
) -> Result<Option<ClaimedJob>, sqlx::Error> {
    let now = now_ms();
    let token = uuid::Uuid::new_v4().to_string();
    let sql = format!(
        "UPDATE jobs SET status = 'processing', attempts = attempts + 1, lease_until = $1, \
         lease_token = $2, started_at = $3, worker = $4 WHERE {target} \
         RETURNING id, image_id, user_id, attempts, max_attempts, request_id"
    );
    let mut query = sqlx::query(&sql)
        .bind(now + lease.as_millis() as i64)
        .bind(&token)
        .bind(now)
        .bind(worker);
    if let Some(id) = id {
        query = query.bind(id);
    }
    let row = query.fetch_optional(&db.pool).await?;
    if let Some(r) = &row {
        mark_processing(db, r.get("image_id"), now).await;
    }
    Ok(row.map(|r| ClaimedJob {
        id: r.get("id"),
        image_id: r.get("image_id"),
        user_id: r.get("user_id"),
        attempt: r.get("attempts"),
        max_attempts: r.get("max_attempts"),
        lease_token: token,
        request_id: r.get("request_id"),
    }))
}

/// Marks an image `processing` when its job is claimed. Cosmetic (an image's status mirrors its
/// job's): a failure here must not strand the job just claimed.
async fn mark_processing(db: &Db, image_id: String, now: i64) {
    let marked = sqlx::query(
        "UPDATE images SET status = 'processing', updated_at = $1 WHERE id = $2 AND status = 'queued'",
    )
    .bind(now)
    .bind(image_id)
    .execute(&db.pool)
    .await;
    if let Err(e) = marked {
        tracing::warn!("marking an image processing: {e}");
    }
}

/// Jobs the Redis queue may have lost, to send again (oldest first, at most `limit`):
/// - queued and due since before `due_before`, and not sent since they became due (an upload
///   made while Redis was down, a retry whose delay ended) or not since `resend_before` (a
///   message lost some other way);
/// - processing with a lease that ran out before `due_before`, and not sent since (its worker
///   died).
///
/// A job sent twice still runs once: workers claim it by id.
pub async fn stranded_jobs(
    db: &Db,
    due_before: i64,
    resend_before: i64,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM jobs WHERE \
         (status = 'queued' AND run_after <= $1 \
          AND (dispatched_at IS NULL OR dispatched_at < run_after OR dispatched_at < $2)) \
         OR (status = 'processing' AND lease_until < $1 \
          AND (dispatched_at IS NULL OR dispatched_at < lease_until)) \
         ORDER BY run_after, created_at LIMIT $3",
    )
    .bind(due_before)
    .bind(resend_before)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

/// Records that job `id` was sent to the queue at `at` (taken before sending). With
/// `first_only`, only while no worker has claimed it yet: the API's stamp must not hide a
/// retry that a fast worker already scheduled.
pub async fn mark_dispatched(
    db: &Db,
    id: &str,
    at: i64,
    first_only: bool,
) -> Result<(), sqlx::Error> {
    let only = if first_only { " AND attempts = 0" } else { "" };
    sqlx::query(&format!(
        "UPDATE jobs SET dispatched_at = $1 WHERE id = $2{only}"
    ))
    .bind(at)
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Forgets that a queued job was sent (a worker found it not yet due, by its clock), so the
/// sweeper sends it again once it is due.
pub async fn undispatch(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE jobs SET dispatched_at = NULL WHERE id = $1 AND status = 'queued'")
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Forgets that queued jobs were sent to the queue (it lost them), so the sweeper sends them
/// again.
pub async fn forget_dispatches(db: &Db) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE jobs SET dispatched_at = NULL WHERE status = 'queued'")
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Jobs done per worker (the `worker` that last took each job), for the scaling report.
pub async fn done_by_worker(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT COALESCE(worker, '') AS worker, COUNT(*) AS n FROM jobs WHERE status = 'done' \
         GROUP BY worker ORDER BY worker",
    )
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().map(|r| (r.get("worker"), r.get("n"))).collect())
}

/// Extends a claimed job's lease. `false` when the lease is no longer this worker's.
pub async fn renew_lease(db: &Db, job: &ClaimedJob, lease: Duration) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND status = 'processing' AND lease_token = $3",
    )
    .bind(now_ms() + lease.as_millis() as i64)
    .bind(&job.id)
    .bind(&job.lease_token)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Puts every job a previous run of this process left in `processing` back in the queue.
/// Only for the single-process SQLite setup: no other process can hold a lease on this file.
pub async fn requeue_interrupted(db: &Db) -> Result<u64, sqlx::Error> {
    let now = now_ms();
    let n = sqlx::query(
        "UPDATE jobs SET status = 'queued', lease_until = NULL, lease_token = NULL, run_after = $1 \
         WHERE status = 'processing'",
    )
    .bind(now)
    .execute(&db.pool)
    .await?
    .rows_affected();
    sqlx::query("UPDATE images SET status = 'queued', updated_at = $1 WHERE status = 'processing'")
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(n)
}

/// The original's key of an image.
pub async fn original_key(db: &Db, image_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT original_key FROM images WHERE id = $1")
        .bind(image_id)
        .fetch_optional(&db.pool)
        .await
}

/// A variant row.
#[derive(Debug, Clone, Serialize)]
pub struct VariantRow {
    /// Its name (`thumbnail`, ...).
    pub name: String,
    /// Its storage key.
    #[serde(skip)]
    pub storage_key: String,
    /// Its MIME type, as stored.
    #[serde(skip)]
    pub content_type: String,
    /// Width in pixels.
    pub width: i64,
    /// Height in pixels.
    pub height: i64,
    /// `webp`, ...
    pub format: String,
    /// Size in bytes.
    pub bytes: i64,
    /// sha256 of the bytes (hex).
    pub sha256: String,
}

/// Records a finished job: its variants, the image's result and the job's end, if the lease
/// is still this worker's and the image still exists. Returns whether it was recorded.
pub async fn complete_job(
    db: &Db,
    job: &ClaimedJob,
    variants: &[VariantRow],
    result_json: &str,
    processing_ms: i64,
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let mut tx = db.pool.begin().await?;
    let updated = sqlx::query(
        "UPDATE jobs SET status = 'done', finished_at = $1, processing_ms = $2, lease_until = NULL, \
         error_code = NULL, error_message = NULL WHERE id = $3 AND status = 'processing' AND lease_token = $4",
    )
    .bind(now)
    .bind(processing_ms)
    .bind(&job.id)
    .bind(&job.lease_token)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query("DELETE FROM variants WHERE image_id = $1")
        .bind(&job.image_id)
        .execute(&mut *tx)
        .await?;
    for (position, v) in variants.iter().enumerate() {
        sqlx::query(
            "INSERT INTO variants (image_id, name, storage_key, content_type, width, height, format, \
             bytes, sha256, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&job.image_id)
        .bind(&v.name)
        .bind(&v.storage_key)
        .bind(&v.content_type)
        .bind(v.width)
        .bind(v.height)
        .bind(&v.format)
        .bind(v.bytes)
        .bind(&v.sha256)
        .bind(position as i64)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "UPDATE images SET status = 'done', result_json = $1, updated_at = $2 WHERE id = $3",
    )
    .bind(result_json)
    .bind(now)
    .bind(&job.image_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Ends an attempt that failed: back in the queue after `retry_in` when given, failed otherwise.
pub async fn fail_job(
    db: &Db,
    job: &ClaimedJob,
    code: &str,
    message: &str,
    retry_in: Option<Duration>,
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let mut tx = db.pool.begin().await?;
    let updated = match retry_in {
        Some(delay) => sqlx::query(
            "UPDATE jobs SET status = 'queued', run_after = $1, lease_until = NULL, lease_token = NULL, \
             dispatched_at = NULL, error_code = $2, error_message = $3 WHERE id = $4 AND status = 'processing' AND lease_token = $5",
        )
        .bind(now + delay.as_millis() as i64),
        None => sqlx::query(
            "UPDATE jobs SET status = 'failed', finished_at = $1, lease_until = NULL, \
             error_code = $2, error_message = $3 WHERE id = $4 AND status = 'processing' AND lease_token = $5",
        )
        .bind(now),
    }
    .bind(code)
    .bind(message)
    .bind(&job.id)
    .bind(&job.lease_token)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 1 {
        let status = if retry_in.is_some() {
            "queued"
        } else {
            "failed"
        };
        sqlx::query("UPDATE images SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status)
            .bind(now)
            .bind(&job.image_id)
            .execute(&mut *tx)
            .await?;
        if retry_in.is_none() {
            sqlx::query(
                "INSERT INTO audit_log (at, user_id, action, image_id, client, outcome, detail) \
                 VALUES ($1, $2, 'job_failed', $3, NULL, 'failed', $4)",
            )
            .bind(now)
            .bind(&job.user_id)
            .bind(&job.image_id)
            .bind(code)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(updated == 1)
}

/// What a client sees of a job.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobView {
    /// The job's id.
    pub id: String,
    /// The image it processes.
    pub image_id: String,
    /// `queued`, `processing`, `done` or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
    /// The most attempts allowed.
    pub max_attempts: i64,
    /// The last error's code (a failed job's reason, or the last retried error).
    pub error_code: Option<String>,
    /// The last error's message.
    pub error_message: Option<String>,
    /// When it was queued (ms since the epoch).
    pub created_at: i64,
    /// When its last attempt started.
    pub started_at: Option<i64>,
    /// When it ended.
    pub finished_at: Option<i64>,
    /// How long the successful attempt took, in ms.
    pub processing_ms: Option<i64>,
    /// The `X-Request-Id` of the upload that created it (also on its log lines).
    pub request_id: Option<String>,
}

/// A job of `user` (none for another user's).
pub async fn job_for_user(db: &Db, id: &str, user: &str) -> Result<Option<JobView>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 AND user_id = $2"
    ))
    .bind(id)
    .bind(user)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.as_ref().map(job_view))
}

const JOB_COLUMNS: &str = "id, image_id, status, attempts, max_attempts, error_code, \
    error_message, created_at, started_at, finished_at, processing_ms, request_id";

fn job_view(r: &AnyRow) -> JobView {
    JobView {
        id: r.get("id"),
        image_id: r.get("image_id"),
        status: r.get("status"),
        attempts: r.get("attempts"),
        max_attempts: r.get("max_attempts"),
        error_code: r.get("error_code"),
        error_message: r.get("error_message"),
        created_at: r.get("created_at"),
        started_at: r.get("started_at"),
        finished_at: r.get("finished_at"),
        processing_ms: r.get("processing_ms"),
        request_id: r.get("request_id"),
    }
}

/// An image row.
#[derive(Debug, Clone)]
pub struct ImageRow {
    /// Its id.
    pub id: String,
    /// The uploaded file name.
    pub filename: Option<String>,
    /// The sniffed input format.
    pub format: String,
    /// The upload's size.
    pub bytes: i64,
    /// The original's key.
    pub original_key: String,
    /// `queued`, `processing`, `done`, `failed`.
    pub status: String,
    /// The processing result (colours and source report) once done.
    pub result_json: Option<String>,
    /// When it was uploaded.
    pub created_at: i64,
    /// Its job.
    pub job_id: Option<String>,
}

fn image_row(r: &AnyRow) -> ImageRow {
    ImageRow {
        id: r.get("id"),
        filename: r.get("filename"),
        format: r.get("format"),
        bytes: r.get("bytes"),
        original_key: r.get("original_key"),
        status: r.get("status"),
        result_json: r.get("result_json"),
        created_at: r.get("created_at"),
        job_id: r.get("job_id"),
    }
}

const IMAGE_COLUMNS: &str = "i.id, i.filename, i.format, i.bytes, i.original_key, i.status, \
    i.result_json, i.created_at, (SELECT j.id FROM jobs j WHERE j.image_id = i.id) AS job_id";

/// An image of `user` (none for another user's).
pub async fn image_for_user(
    db: &Db,
    id: &str,
    user: &str,
) -> Result<Option<ImageRow>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {IMAGE_COLUMNS} FROM images i WHERE i.id = $1 AND i.user_id = $2"
    ))
    .bind(id)
    .bind(user)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.as_ref().map(image_row))
}

/// A page of `user`'s images, newest first, and the total.
pub async fn images_of_user(
    db: &Db,
    user: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ImageRow>, i64), sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {IMAGE_COLUMNS} FROM images i WHERE i.user_id = $1 \
         ORDER BY i.created_at DESC, i.id LIMIT $2 OFFSET $3"
    ))
    .bind(user)
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM images WHERE user_id = $1")
        .bind(user)
        .fetch_one(&db.pool)
        .await?;
    Ok((rows.iter().map(image_row).collect(), total))
}

/// The variants of an image, in the pipeline's order.
pub async fn variants_of(db: &Db, image_id: &str) -> Result<Vec<VariantRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT name, storage_key, content_type, width, height, format, bytes, sha256 FROM variants \
         WHERE image_id = $1 ORDER BY position",
    )
    .bind(image_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| VariantRow {
            name: r.get("name"),
            storage_key: r.get("storage_key"),
            content_type: r.get("content_type"),
            width: r.get("width"),
            height: r.get("height"),
            format: r.get("format"),
            bytes: r.get("bytes"),
            sha256: r.get("sha256"),
        })
        .collect())
}

/// Deletes an image of `user` with its variants and job, and records it in the audit log, in
/// one transaction. Returns the storage keys it used (the caller deletes them), or none if
/// there was no such image.
pub async fn delete_image(
    db: &Db,
    id: &str,
    user: &str,
    client: Option<&str>,
) -> Result<Option<Vec<String>>, sqlx::Error> {
    let mut tx = begin_write(db).await?;
    // On PostgreSQL the row lock makes a job completing at the same moment either finish first
    // (its variants are in the list read below) or fail on the deleted image.
    let lock = match db.backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE",
    };
    let original: Option<String> = sqlx::query_scalar(&format!(
        "SELECT original_key FROM images WHERE id = $1 AND user_id = $2{lock}"
    ))
    .bind(id)
    .bind(user)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(original) = original else {
        tx.rollback().await?;
        return Ok(None);
    };
    let mut keys: Vec<String> =
        sqlx::query_scalar("SELECT storage_key FROM variants WHERE image_id = $1")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
    keys.push(original);
    sqlx::query("DELETE FROM images WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO audit_log (at, user_id, action, image_id, client, outcome, detail) \
         VALUES ($1, $2, 'delete', $3, $4, 'ok', NULL)",
    )
    .bind(now_ms())
    .bind(user)
    .bind(id)
    .bind(client)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    keys.sort();
    keys.dedup();
    Ok(Some(keys))
}

/// `/api/v1/health/stats`: the original service's shape, from the database.
#[derive(Debug, Clone, Serialize)]
pub struct DbStats {
    /// Jobs per status.
    pub status_breakdown: std::collections::BTreeMap<String, i64>,
    /// Jobs done in the last 24 hours.
    pub completed_24h: i64,
    /// Jobs failed in the last 24 hours.
    pub failed_24h: i64,
    /// Of those, the ones stopped by their time budget (`timeout`).
    pub timed_out_24h: i64,
    /// Mean time from upload to result of the jobs done in the last 24 hours, in seconds
    /// (queueing, retries and processing: the original service's measure).
    pub avg_processing_time_seconds: Option<f64>,
    /// Mean duration of the successful attempt of those jobs, in seconds.
    pub avg_run_time_seconds: Option<f64>,
    /// Images stored.
    pub total_images: i64,
    /// Jobs recorded (one per image).
    pub total_jobs: i64,
    /// Bytes of originals.
    pub original_bytes: i64,
    /// Bytes of variants.
    pub variant_bytes: i64,
    /// Variants stored.
    pub total_variants: i64,
}

/// Computes [`DbStats`].
pub async fn stats(db: &Db) -> Result<DbStats, sqlx::Error> {
    let now = now_ms();
    let mut status_breakdown: std::collections::BTreeMap<String, i64> =
        ["queued", "processing", "done", "failed"]
            .into_iter()
            .map(|s| (s.to_string(), 0))
            .collect();
    for r in sqlx::query("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
        .fetch_all(&db.pool)
        .await?
    {
        status_breakdown.insert(r.get("status"), r.get("n"));
    }
    let day = sqlx::query(
        "SELECT SUM(CASE WHEN status = 'done' THEN 1 ELSE 0 END) AS done, SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed, \
         SUM(CASE WHEN status = 'failed' AND error_code = 'timeout' THEN 1 ELSE 0 END) AS timed_out, \
         CAST(AVG(CASE WHEN status = 'done' THEN processing_ms END) AS DOUBLE PRECISION) AS avg_ms, \
         CAST(AVG(CASE WHEN status = 'done' THEN finished_at - created_at END) AS DOUBLE PRECISION) AS avg_total_ms \
         FROM jobs WHERE finished_at > $1",
    )
    .bind(now - 24 * HOUR_MS)
    .fetch_one(&db.pool)
    .await?;
    let images = sqlx::query(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS b FROM images",
    )
    .fetch_one(&db.pool)
    .await?;
    let variants = sqlx::query(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS b FROM variants",
    )
    .fetch_one(&db.pool)
    .await?;
    let total_jobs = status_breakdown.values().sum();
    // Seconds, to the hundredth (as the original service reported them).
    let seconds = |ms: Option<f64>| ms.map(|ms| (ms / 10.0).round() / 100.0);
    Ok(DbStats {
        status_breakdown,
        completed_24h: day.get::<Option<i64>, _>("done").unwrap_or(0),
        failed_24h: day.get::<Option<i64>, _>("failed").unwrap_or(0),
        timed_out_24h: day.get::<Option<i64>, _>("timed_out").unwrap_or(0),
        avg_processing_time_seconds: seconds(day.get("avg_total_ms")),
        avg_run_time_seconds: seconds(day.get("avg_ms")),
        total_images: images.get("n"),
        total_jobs,
        original_bytes: images.get("b"),
        variant_bytes: variants.get("b"),
        total_variants: variants.get("n"),
    })
}

/// Jobs finished per 5-minute bucket over the last hour (oldest first), and the newest failures.
pub async fn activity(db: &Db) -> Result<(Vec<(i64, i64, i64)>, Vec<JobView>), sqlx::Error> {
    let now = now_ms();
    let bucket = 5 * 60_000;
    let start = now - HOUR_MS;
    let mut buckets: Vec<(i64, i64, i64)> = (0..12).map(|i| (start + i * bucket, 0, 0)).collect();
    for r in sqlx::query(
        "SELECT (finished_at - $1) / $2 AS b, SUM(CASE WHEN status = 'done' THEN 1 ELSE 0 END) AS done, SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed \
         FROM jobs WHERE finished_at > $1 GROUP BY b",
    )
    .bind(start)
    .bind(bucket)
    .fetch_all(&db.pool)
    .await?
    {
        let b: i64 = r.get("b");
        if let Some(slot) = buckets.get_mut(b.clamp(0, 11) as usize) {
            slot.1 += r.get::<i64, _>("done");
            slot.2 += r.get::<i64, _>("failed");
        }
    }
    let failures = sqlx::query(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'failed' ORDER BY finished_at DESC LIMIT 10"
    ))
    .fetch_all(&db.pool)
    .await?
    .iter()
    .map(job_view)
    .collect();
    Ok((buckets, failures))
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
