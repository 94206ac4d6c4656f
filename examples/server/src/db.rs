//! The SQLite database: images, variants, the job queue and the audit log.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Opens (creating if needed) the database and runs the migrations.
pub async fn open(path: &Path) -> Result<SqlitePool, sqlx::Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
    }
    let options = SqliteConnectOptions::from_str("sqlite:")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await?;
    sqlx::migrate!("./migrations").run(&pool).await?;
    Ok(pool)
}

/// One audit event.
#[derive(Debug, Clone, Serialize)]
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
    pool: &SqlitePool,
    user_id: Option<&str>,
    action: &str,
    image_id: Option<&str>,
    client: Option<&str>,
    outcome: &str,
    detail: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (at, user_id, action, image_id, client, outcome, detail) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(now_ms())
    .bind(user_id)
    .bind(action)
    .bind(image_id)
    .bind(client)
    .bind(outcome)
    .bind(detail)
    .execute(pool)
    .await?;
    Ok(())
}

/// The newest audit events, newest first.
pub async fn audit_events(
    pool: &SqlitePool,
    limit: i64,
    offset: i64,
    action: Option<&str>,
) -> Result<Vec<AuditEvent>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT at, user_id, action, image_id, client, outcome, detail FROM audit_log \
         WHERE (?1 IS NULL OR action = ?1) ORDER BY id DESC LIMIT ?2 OFFSET ?3",
    )
    .bind(action)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
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
    pool: &SqlitePool,
    user: &str,
    now: i64,
) -> Result<(i64, Option<i64>), sqlx::Error> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, MIN(at) AS oldest FROM audit_log \
         WHERE user_id = ? AND action = 'upload' AND outcome = 'accepted' AND at > ?",
    )
    .bind(user)
    .bind(now - HOUR_MS)
    .fetch_one(pool)
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
}

/// Records an upload — audit event, image and queued job — in one transaction, unless the
/// user already has `limit` accepted uploads in the last hour. Returns whether it was recorded.
///
/// The count and the insert are one statement inside a write transaction, so concurrent
/// uploads cannot both take the last slot.
pub async fn insert_upload(
    pool: &SqlitePool,
    image: &NewImage<'_>,
    limit: u32,
    max_attempts: u32,
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let mut tx = pool.begin().await?;
    let counted = sqlx::query(
        "INSERT INTO audit_log (at, user_id, action, image_id, client, outcome, detail) \
         SELECT ?1, ?2, 'upload', ?3, ?4, 'accepted', ?5 \
         WHERE (SELECT COUNT(*) FROM audit_log WHERE user_id = ?2 AND action = 'upload' \
                AND outcome = 'accepted' AND at > ?6) < ?7",
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
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO images (id, user_id, filename, format, bytes, original_key, original_sha256, \
         status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
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
        "INSERT INTO jobs (id, image_id, user_id, status, attempts, max_attempts, run_after, created_at) \
         VALUES (?, ?, ?, 'queued', 0, ?, ?, ?)",
    )
    .bind(image.job_id)
    .bind(image.id)
    .bind(image.user_id)
    .bind(i64::from(max_attempts))
    .bind(now)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
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
}

/// Claims the oldest runnable job: queued and due, or processing with an expired lease (its
/// worker died). One `UPDATE ... RETURNING`, so two workers never claim the same job.
pub async fn claim_job(
    pool: &SqlitePool,
    lease: Duration,
) -> Result<Option<ClaimedJob>, sqlx::Error> {
    let now = now_ms();
    let token = uuid::Uuid::new_v4().to_string();
    let row = sqlx::query(
        "UPDATE jobs SET status = 'processing', attempts = attempts + 1, lease_until = ?1, \
         lease_token = ?2, started_at = ?3 \
         WHERE id = (SELECT id FROM jobs WHERE (status = 'queued' AND run_after <= ?3) \
                     OR (status = 'processing' AND lease_until < ?3) \
                     ORDER BY run_after, created_at LIMIT 1) \
         RETURNING id, image_id, user_id, attempts, max_attempts",
    )
    .bind(now + lease.as_millis() as i64)
    .bind(&token)
    .bind(now)
    .fetch_optional(pool)
    .await?;
    if let Some(r) = &row {
        // Cosmetic (an image's status mirrors its job's): a failure here must not strand the
        // job just claimed.
        let marked = sqlx::query(
            "UPDATE images SET status = 'processing', updated_at = ? WHERE id = ? AND status = 'queued'",
        )
        .bind(now)
        .bind(r.get::<String, _>("image_id"))
        .execute(pool)
        .await;
        if let Err(e) = marked {
            tracing::warn!("marking an image processing: {e}");
        }
    }
    Ok(row.map(|r| ClaimedJob {
        id: r.get("id"),
        image_id: r.get("image_id"),
        user_id: r.get("user_id"),
        attempt: r.get("attempts"),
        max_attempts: r.get("max_attempts"),
        lease_token: token,
    }))
}

/// Extends a claimed job's lease. `false` when the lease is no longer this worker's.
pub async fn renew_lease(
    pool: &SqlitePool,
    job: &ClaimedJob,
    lease: Duration,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE jobs SET lease_until = ? WHERE id = ? AND status = 'processing' AND lease_token = ?",
    )
    .bind(now_ms() + lease.as_millis() as i64)
    .bind(&job.id)
    .bind(&job.lease_token)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Puts every job a previous run of this process left in `processing` back in the queue.
/// Only for the single-process SQLite setup: no other process can hold a lease on this file.
pub async fn requeue_interrupted(pool: &SqlitePool) -> Result<u64, sqlx::Error> {
    let now = now_ms();
    let n = sqlx::query(
        "UPDATE jobs SET status = 'queued', lease_until = NULL, lease_token = NULL, run_after = ? \
         WHERE status = 'processing'",
    )
    .bind(now)
    .execute(pool)
    .await?
    .rows_affected();
    sqlx::query("UPDATE images SET status = 'queued', updated_at = ? WHERE status = 'processing'")
        .bind(now)
        .execute(pool)
        .await?;
    Ok(n)
}

/// The original's key of an image.
pub async fn original_key(
    pool: &SqlitePool,
    image_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT original_key FROM images WHERE id = ?")
        .bind(image_id)
        .fetch_optional(pool)
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
    pool: &SqlitePool,
    job: &ClaimedJob,
    variants: &[VariantRow],
    result_json: &str,
    processing_ms: i64,
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let mut tx = pool.begin().await?;
    let updated = sqlx::query(
        "UPDATE jobs SET status = 'done', finished_at = ?, processing_ms = ?, lease_until = NULL, \
         error_code = NULL, error_message = NULL WHERE id = ? AND status = 'processing' AND lease_token = ?",
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
    sqlx::query("DELETE FROM variants WHERE image_id = ?")
        .bind(&job.image_id)
        .execute(&mut *tx)
        .await?;
    for v in variants {
        sqlx::query(
            "INSERT INTO variants (image_id, name, storage_key, content_type, width, height, format, \
             bytes, sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE images SET status = 'done', result_json = ?, updated_at = ? WHERE id = ?")
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
    pool: &SqlitePool,
    job: &ClaimedJob,
    code: &str,
    message: &str,
    retry_in: Option<Duration>,
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let mut tx = pool.begin().await?;
    let updated = match retry_in {
        Some(delay) => sqlx::query(
            "UPDATE jobs SET status = 'queued', run_after = ?, lease_until = NULL, lease_token = NULL, \
             error_code = ?, error_message = ? WHERE id = ? AND status = 'processing' AND lease_token = ?",
        )
        .bind(now + delay.as_millis() as i64),
        None => sqlx::query(
            "UPDATE jobs SET status = 'failed', finished_at = ?, lease_until = NULL, \
             error_code = ?, error_message = ? WHERE id = ? AND status = 'processing' AND lease_token = ?",
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
        sqlx::query("UPDATE images SET status = ?, updated_at = ? WHERE id = ?")
            .bind(status)
            .bind(now)
            .bind(&job.image_id)
            .execute(&mut *tx)
            .await?;
        if retry_in.is_none() {
            sqlx::query(
                "INSERT INTO audit_log (at, user_id, action, image_id, client, outcome, detail) \
                 VALUES (?, ?, 'job_failed', ?, NULL, 'failed', ?)",
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
#[derive(Debug, Clone, Serialize)]
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
}

/// A job of `user` (none for another user's).
pub async fn job_for_user(
    pool: &SqlitePool,
    id: &str,
    user: &str,
) -> Result<Option<JobView>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE id = ? AND user_id = ?"
    ))
    .bind(id)
    .bind(user)
    .fetch_optional(pool)
    .await?;
    Ok(row.as_ref().map(job_view))
}

const JOB_COLUMNS: &str = "id, image_id, status, attempts, max_attempts, error_code, \
    error_message, created_at, started_at, finished_at, processing_ms";

fn job_view(r: &sqlx::sqlite::SqliteRow) -> JobView {
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

fn image_row(r: &sqlx::sqlite::SqliteRow) -> ImageRow {
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
    pool: &SqlitePool,
    id: &str,
    user: &str,
) -> Result<Option<ImageRow>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {IMAGE_COLUMNS} FROM images i WHERE i.id = ? AND i.user_id = ?"
    ))
    .bind(id)
    .bind(user)
    .fetch_optional(pool)
    .await?;
    Ok(row.as_ref().map(image_row))
}

/// A page of `user`'s images, newest first, and the total.
pub async fn images_of_user(
    pool: &SqlitePool,
    user: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ImageRow>, i64), sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {IMAGE_COLUMNS} FROM images i WHERE i.user_id = ? \
         ORDER BY i.created_at DESC, i.id LIMIT ? OFFSET ?"
    ))
    .bind(user)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM images WHERE user_id = ?")
        .bind(user)
        .fetch_one(pool)
        .await?;
    Ok((rows.iter().map(image_row).collect(), total))
}

/// The variants of an image, in the pipeline's order.
pub async fn variants_of(
    pool: &SqlitePool,
    image_id: &str,
) -> Result<Vec<VariantRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT name, storage_key, content_type, width, height, format, bytes, sha256 FROM variants \
         WHERE image_id = ? ORDER BY rowid",
    )
    .bind(image_id)
    .fetch_all(pool)
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
    pool: &SqlitePool,
    id: &str,
    user: &str,
    client: Option<&str>,
) -> Result<Option<Vec<String>>, sqlx::Error> {
    // IMMEDIATE: this transaction reads before it writes, and a deferred one cannot upgrade
    // its lock once another connection has committed (SQLITE_BUSY_SNAPSHOT).
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let original: Option<String> =
        sqlx::query_scalar("SELECT original_key FROM images WHERE id = ? AND user_id = ?")
            .bind(id)
            .bind(user)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(original) = original else {
        tx.rollback().await?;
        return Ok(None);
    };
    let mut keys: Vec<String> =
        sqlx::query_scalar("SELECT storage_key FROM variants WHERE image_id = ?")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
    keys.push(original);
    sqlx::query("DELETE FROM images WHERE id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO audit_log (at, user_id, action, image_id, client, outcome, detail) \
         VALUES (?, ?, 'delete', ?, ?, 'ok', NULL)",
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

/// `/health/stats`: the original service's shape, from the database.
#[derive(Debug, Clone, Serialize)]
pub struct DbStats {
    /// Jobs per status.
    pub status_breakdown: std::collections::BTreeMap<String, i64>,
    /// Jobs done in the last 24 hours.
    pub completed_24h: i64,
    /// Jobs failed in the last 24 hours.
    pub failed_24h: i64,
    /// Mean processing time of the jobs done in the last 24 hours, in seconds.
    pub avg_processing_time_seconds: Option<f64>,
    /// Images stored.
    pub total_images: i64,
    /// Bytes of originals.
    pub original_bytes: i64,
    /// Bytes of variants.
    pub variant_bytes: i64,
    /// Variants stored.
    pub total_variants: i64,
}

/// Computes [`DbStats`].
pub async fn stats(pool: &SqlitePool) -> Result<DbStats, sqlx::Error> {
    let now = now_ms();
    let mut status_breakdown: std::collections::BTreeMap<String, i64> =
        ["queued", "processing", "done", "failed"]
            .into_iter()
            .map(|s| (s.to_string(), 0))
            .collect();
    for r in sqlx::query("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
        .fetch_all(pool)
        .await?
    {
        status_breakdown.insert(r.get("status"), r.get("n"));
    }
    let day = sqlx::query(
        "SELECT SUM(status = 'done') AS done, SUM(status = 'failed') AS failed, \
         AVG(CASE WHEN status = 'done' THEN processing_ms END) AS avg_ms \
         FROM jobs WHERE finished_at > ?",
    )
    .bind(now - 24 * HOUR_MS)
    .fetch_one(pool)
    .await?;
    let images = sqlx::query("SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM images")
        .fetch_one(pool)
        .await?;
    let variants = sqlx::query("SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM variants")
        .fetch_one(pool)
        .await?;
    Ok(DbStats {
        status_breakdown,
        completed_24h: day.get::<Option<i64>, _>("done").unwrap_or(0),
        failed_24h: day.get::<Option<i64>, _>("failed").unwrap_or(0),
        avg_processing_time_seconds: day.get::<Option<f64>, _>("avg_ms").map(|ms| ms / 1000.0),
        total_images: images.get("n"),
        original_bytes: images.get("b"),
        variant_bytes: variants.get("b"),
        total_variants: variants.get("n"),
    })
}

/// Jobs finished per 5-minute bucket over the last hour (oldest first), and the newest failures.
pub async fn activity(
    pool: &SqlitePool,
) -> Result<(Vec<(i64, i64, i64)>, Vec<JobView>), sqlx::Error> {
    let now = now_ms();
    let bucket = 5 * 60_000;
    let start = now - HOUR_MS;
    let mut buckets: Vec<(i64, i64, i64)> = (0..12).map(|i| (start + i * bucket, 0, 0)).collect();
    for r in sqlx::query(
        "SELECT (finished_at - ?1) / ?2 AS b, SUM(status = 'done') AS done, SUM(status = 'failed') AS failed \
         FROM jobs WHERE finished_at > ?1 GROUP BY b",
    )
    .bind(start)
    .bind(bucket)
    .fetch_all(pool)
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
    .fetch_all(pool)
    .await?
    .iter()
    .map(job_view)
    .collect();
    Ok((buckets, failures))
}
