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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::{self, upload, variant};
    use super::super::{claim_job, complete_job, fail_job};
    use super::*;

    #[tokio::test]
    async fn stats_and_activity_count_what_the_jobs_did() {
        let (_tmp, db) = testing::db().await;
        let empty = stats(&db).await.unwrap();
        assert_eq!(
            empty.status_breakdown.values().copied().collect::<Vec<_>>(),
            [0, 0, 0, 0]
        );
        assert_eq!(
            (empty.completed_24h, empty.total_images, empty.variant_bytes),
            (0, 0, 0)
        );
        assert_eq!(empty.avg_run_time_seconds, None);

        for n in 1..=4 {
            upload(&db, "u", n).await;
        }
        let lease = Duration::from_secs(60);
        let one = claim_job(&db, lease, "w1").await.unwrap().unwrap();
        let variants = [variant("thumbnail", "v/1", 10), variant("large", "v/2", 30)];
        assert!(
            complete_job(&db, &one, &variants, "{}", 1500)
                .await
                .unwrap()
        );
        let two = claim_job(&db, lease, "w2").await.unwrap().unwrap();
        assert!(complete_job(&db, &two, &[], "{}", 500).await.unwrap());
        let three = claim_job(&db, lease, "w1").await.unwrap().unwrap();
        assert!(
            fail_job(&db, &three, "timeout", "too slow", None)
                .await
                .unwrap()
        );
        let four = claim_job(&db, lease, "w2").await.unwrap().unwrap();
        assert_eq!(four.id, "job-4");

        let s = stats(&db).await.unwrap();
        let breakdown: Vec<(&str, i64)> = s
            .status_breakdown
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(
            breakdown,
            [("done", 2), ("failed", 1), ("processing", 1), ("queued", 0)]
        );
        assert_eq!((s.completed_24h, s.failed_24h, s.timed_out_24h), (2, 1, 1));
        assert_eq!(s.avg_run_time_seconds, Some(1.0));
        assert!(s.avg_processing_time_seconds.is_some_and(|t| t >= 0.0));
        assert_eq!((s.total_images, s.total_jobs), (4, 4));
        assert_eq!(s.original_bytes, 100 + 200 + 300 + 400);
        assert_eq!((s.total_variants, s.variant_bytes), (2, 40));

        let (buckets, failures) = activity(&db).await.unwrap();
        assert_eq!(buckets.len(), 12);
        let ended = buckets
            .iter()
            .fold((0, 0), |(d, f), (_, done, failed)| (d + done, f + failed));
        assert_eq!(ended, (2, 1));
        assert_eq!(buckets[11].1 + buckets[11].2, 3, "{buckets:?}");
        assert_eq!(failures.len(), 1);
        assert_eq!(
            (failures[0].id.as_str(), failures[0].error_code.as_deref()),
            ("job-3", Some("timeout"))
        );

        assert_eq!(
            done_by_worker(&db).await.unwrap(),
            [("w1".to_string(), 1), ("w2".to_string(), 1)]
        );
    }
}
