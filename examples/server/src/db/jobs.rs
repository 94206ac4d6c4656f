//! The job queue: claims, leases, dispatches to the Redis queue, and each attempt's end.

use std::time::Duration;

use serde::Serialize;

use super::{Backend, Db, NewAuditEvent, VariantRow, insert_audit, now_ms};

/// A job claimed by a worker.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedJob {
    /// The job's id.
    pub id: String,
    /// The image it processes.
    pub image_id: String,
    /// The owner.
    pub user_id: String,
    /// This attempt's number (1 for the first).
    #[sqlx(rename = "attempts")]
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
         RETURNING id, image_id, user_id, attempts, max_attempts, lease_token, request_id"
    );
    let mut query = sqlx::query_as::<_, ClaimedJob>(&sql)
        .bind(now + lease.as_millis() as i64)
        .bind(&token)
        .bind(now)
        .bind(worker);
    if let Some(id) = id {
        query = query.bind(id);
    }
    let job = query.fetch_optional(&db.pool).await?;
    if let Some(job) = &job {
        mark_processing(db, &job.image_id, now).await;
    }
    Ok(job)
}

/// Marks an image `processing` when its job is claimed. Cosmetic (an image's status mirrors its
/// job's): a failure here must not strand the job just claimed.
async fn mark_processing(db: &Db, image_id: &str, now: i64) {
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
            let event = NewAuditEvent {
                at: now,
                user_id: Some(&job.user_id),
                action: "job_failed",
                image_id: Some(&job.image_id),
                client: None,
                outcome: "failed",
                detail: Some(code),
            };
            insert_audit(&mut *tx, &event).await?;
        }
    }
    tx.commit().await?;
    Ok(updated == 1)
}

/// What a client sees of a job.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, sqlx::FromRow)]
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
    sqlx::query_as(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 AND user_id = $2"
    ))
    .bind(id)
    .bind(user)
    .fetch_optional(&db.pool)
    .await
}

pub(super) const JOB_COLUMNS: &str = "id, image_id, status, attempts, max_attempts, error_code, \
    error_message, created_at, started_at, finished_at, processing_ms, request_id";
