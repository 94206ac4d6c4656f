//! Statistics and activity, read from the jobs, images and variants.

use serde::Serialize;

use super::jobs::JOB_COLUMNS;
use super::{Db, HOUR_MS, JobView, now_ms};

/// Jobs done per worker (the `worker` that last took each job), for the scaling report.
pub async fn done_by_worker(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT COALESCE(worker, '') AS worker, COUNT(*) AS n FROM jobs WHERE status = 'done' \
         GROUP BY worker ORDER BY worker",
    )
    .fetch_all(&db.pool)
    .await
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
    let counts: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
            .fetch_all(&db.pool)
            .await?;
    status_breakdown.extend(counts);
    let day: Day = sqlx::query_as(
        "SELECT SUM(CASE WHEN status = 'done' THEN 1 ELSE 0 END) AS done, SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed, \
         SUM(CASE WHEN status = 'failed' AND error_code = 'timeout' THEN 1 ELSE 0 END) AS timed_out, \
         CAST(AVG(CASE WHEN status = 'done' THEN processing_ms END) AS DOUBLE PRECISION) AS avg_ms, \
         CAST(AVG(CASE WHEN status = 'done' THEN finished_at - created_at END) AS DOUBLE PRECISION) AS avg_total_ms \
         FROM jobs WHERE finished_at > $1",
    )
    .bind(now - 24 * HOUR_MS)
    .fetch_one(&db.pool)
    .await?;
    let (total_images, original_bytes): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS b FROM images",
    )
    .fetch_one(&db.pool)
    .await?;
    let (total_variants, variant_bytes): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS b FROM variants",
    )
    .fetch_one(&db.pool)
    .await?;
    let total_jobs = status_breakdown.values().sum();
    // Seconds, to the hundredth (as the original service reported them).
    let seconds = |ms: Option<f64>| ms.map(|ms| (ms / 10.0).round() / 100.0);
    Ok(DbStats {
        status_breakdown,
        completed_24h: day.done.unwrap_or(0),
        failed_24h: day.failed.unwrap_or(0),
        timed_out_24h: day.timed_out.unwrap_or(0),
        avg_processing_time_seconds: seconds(day.avg_total_ms),
        avg_run_time_seconds: seconds(day.avg_ms),
        total_images,
        total_jobs,
        original_bytes,
        variant_bytes,
        total_variants,
    })
}

/// The jobs that ended in the last 24 hours (the sums are NULL when none did).
#[derive(sqlx::FromRow)]
struct Day {
    done: Option<i64>,
    failed: Option<i64>,
    timed_out: Option<i64>,
    avg_ms: Option<f64>,
    avg_total_ms: Option<f64>,
}

/// Jobs finished per 5-minute bucket over the last hour (oldest first), and the newest failures.
pub async fn activity(db: &Db) -> Result<(Vec<(i64, i64, i64)>, Vec<JobView>), sqlx::Error> {
    let now = now_ms();
    let bucket = 5 * 60_000;
    let start = now - HOUR_MS;
    let mut buckets: Vec<(i64, i64, i64)> = (0..12).map(|i| (start + i * bucket, 0, 0)).collect();
    let ends: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT (finished_at - $1) / $2 AS b, SUM(CASE WHEN status = 'done' THEN 1 ELSE 0 END) AS done, SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed \
         FROM jobs WHERE finished_at > $1 GROUP BY b",
    )
    .bind(start)
    .bind(bucket)
    .fetch_all(&db.pool)
    .await?;
    for (b, done, failed) in ends {
        if let Some(slot) = buckets.get_mut(b.clamp(0, 11) as usize) {
            slot.1 += done;
            slot.2 += failed;
        }
    }
    let failures = sqlx::query_as(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'failed' ORDER BY finished_at DESC LIMIT 10"
    ))
    .fetch_all(&db.pool)
    .await?;
    Ok((buckets, failures))
}
