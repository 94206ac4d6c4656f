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

#[cfg(test)]
mod tests {
    use super::super::testing::{self, upload, variant};
    use super::super::{audit_events, image_for_user};
    use super::*;

    const LEASE: Duration = Duration::from_secs(60);

    async fn status(db: &Db, n: i64) -> (String, String) {
        let job = job_for_user(db, &format!("job-{n}"), "u")
            .await
            .unwrap()
            .unwrap();
        let image = image_for_user(db, &format!("img-{n}"), "u")
            .await
            .unwrap()
            .unwrap();
        (job.status, image.status)
    }

    #[tokio::test]
    async fn a_claimed_job_is_leased_once_and_completed_by_its_lease_holder() {
        let (_tmp, db) = testing::db().await;
        upload(&db, "u", 1).await;
        let job = claim_job(&db, LEASE, "w1").await.unwrap().unwrap();
        assert_eq!(
            (
                job.id.as_str(),
                job.image_id.as_str(),
                job.user_id.as_str(),
                job.attempt,
                job.max_attempts,
                job.request_id.as_deref()
            ),
            ("job-1", "img-1", "u", 1, 4, Some("req-1"))
        );
        assert_eq!(job.lease_token.len(), 36, "{job:?}");
        assert_eq!(
            status(&db, 1).await,
            ("processing".into(), "processing".into())
        );
        // Leased: neither claim takes it again.
        assert!(claim_job(&db, LEASE, "w2").await.unwrap().is_none());
        assert!(
            claim_job_by_id(&db, "job-1", LEASE, "w2")
                .await
                .unwrap()
                .is_none()
        );
        assert!(renew_lease(&db, &job, LEASE).await.unwrap());
        // Another token is not the lease holder.
        let stranger = ClaimedJob {
            lease_token: "not-the-token".into(),
            ..job.clone()
        };
        assert!(!renew_lease(&db, &stranger, LEASE).await.unwrap());
        assert!(!complete_job(&db, &stranger, &[], "{}", 1).await.unwrap());
        let thumb = variant("thumbnail", "variants/t", 3);
        assert!(
            complete_job(&db, &job, &[thumb], "{\"a\":1}", 42)
                .await
                .unwrap()
        );
        assert_eq!(status(&db, 1).await, ("done".into(), "done".into()));
        let view = job_for_user(&db, "job-1", "u").await.unwrap().unwrap();
        assert_eq!((view.attempts, view.processing_ms), (1, Some(42)));
        assert!(view.started_at.is_some() && view.finished_at.is_some());
        assert_eq!(view.error_code, None);
        let image = image_for_user(&db, "img-1", "u").await.unwrap().unwrap();
        assert_eq!(image.result_json.as_deref(), Some("{\"a\":1}"));
        // Done: completing again, or claiming, does nothing.
        assert!(!complete_job(&db, &job, &[], "{}", 1).await.unwrap());
        assert!(claim_job(&db, LEASE, "w2").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_failed_attempt_is_retried_later_then_fails_for_good() {
        let (_tmp, db) = testing::db().await;
        upload(&db, "u", 1).await;
        let first = claim_job(&db, LEASE, "w").await.unwrap().unwrap();
        let retry = Some(Duration::from_secs(3600));
        assert!(
            fail_job(&db, &first, "storage", "disk full", retry)
                .await
                .unwrap()
        );
        assert_eq!(status(&db, 1).await, ("queued".into(), "queued".into()));
        let view = job_for_user(&db, "job-1", "u").await.unwrap().unwrap();
        assert_eq!(
            (view.error_code.as_deref(), view.error_message.as_deref()),
            (Some("storage"), Some("disk full"))
        );
        // Not due for an hour.
        assert!(claim_job(&db, LEASE, "w").await.unwrap().is_none());
        assert!(
            claim_job_by_id(&db, "job-1", LEASE, "w")
                .await
                .unwrap()
                .is_none()
        );
        // The old lease is gone.
        assert!(!fail_job(&db, &first, "x", "y", None).await.unwrap());
        assert!(
            audit_events(&db, 10, 0, Some("job_failed"))
                .await
                .unwrap()
                .is_empty()
        );

        sqlx::query("UPDATE jobs SET run_after = 0")
            .execute(&db.pool)
            .await
            .unwrap();
        let second = claim_job_by_id(&db, "job-1", LEASE, "w")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.attempt, 2);
        assert_ne!(second.lease_token, first.lease_token);
        assert!(
            fail_job(&db, &second, "corrupt_input", "bad bytes", None)
                .await
                .unwrap()
        );
        assert_eq!(status(&db, 1).await, ("failed".into(), "failed".into()));
        let failed = audit_events(&db, 10, 0, Some("job_failed")).await.unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(
            (
                failed[0].user_id.as_deref(),
                failed[0].image_id.as_deref(),
                failed[0].client.as_deref(),
                failed[0].outcome.as_str(),
                failed[0].detail.as_deref()
            ),
            (
                Some("u"),
                Some("img-1"),
                None,
                "failed",
                Some("corrupt_input")
            )
        );
    }

    #[tokio::test]
    async fn an_expired_lease_frees_the_job_and_a_restart_requeues_it() {
        let (_tmp, db) = testing::db().await;
        upload(&db, "u", 1).await;
        let dead = claim_job(&db, Duration::ZERO, "dead")
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let taken = claim_job(&db, LEASE, "alive").await.unwrap().unwrap();
        assert_eq!((taken.id.as_str(), taken.attempt), ("job-1", 2));
        assert!(!complete_job(&db, &dead, &[], "{}", 1).await.unwrap());
        assert_eq!(requeue_interrupted(&db).await.unwrap(), 1);
        assert_eq!(status(&db, 1).await, ("queued".into(), "queued".into()));
        assert!(!renew_lease(&db, &taken, LEASE).await.unwrap());
    }

    #[tokio::test]
    async fn dispatches_are_stamped_and_strandeds_found() {
        let (_tmp, db) = testing::db().await;
        upload(&db, "u", 1).await;
        upload(&db, "u", 2).await;
        let now = now_ms() + 1;
        let stranded = stranded_jobs(&db, now, now - 60_000, 10).await.unwrap();
        assert_eq!(stranded, ["job-1", "job-2"]);
        mark_dispatched(&db, "job-1", now, true).await.unwrap();
        assert_eq!(
            stranded_jobs(&db, now, now - 60_000, 10).await.unwrap(),
            ["job-2"]
        );
        // Sent long ago: sent again.
        assert_eq!(
            stranded_jobs(&db, now, now + 1, 10).await.unwrap(),
            ["job-1", "job-2"]
        );
        undispatch(&db, "job-1").await.unwrap();
        mark_dispatched(&db, "job-2", now, false).await.unwrap();
        assert_eq!(
            stranded_jobs(&db, now, now - 60_000, 10).await.unwrap(),
            ["job-1"]
        );
        forget_dispatches(&db).await.unwrap();
        assert_eq!(
            stranded_jobs(&db, now, now - 60_000, 1).await.unwrap(),
            ["job-1"]
        );
        // Claimed: the first-only stamp leaves it alone.
        let job = claim_job(&db, LEASE, "w").await.unwrap().unwrap();
        mark_dispatched(&db, &job.id, now, true).await.unwrap();
        let dispatched: Option<i64> =
            sqlx::query_scalar("SELECT dispatched_at FROM jobs WHERE id = $1")
                .bind(&job.id)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!(dispatched, None);
    }
}
