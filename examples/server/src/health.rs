//! Health, statistics, the dashboard's data, metrics and the monitoring page: what load
//! balancers, monitoring and operators read (no token needed).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::db;
use crate::error::{ApiError, ErrorBody};

/// Now as ISO 8601 in UTC, to the microsecond (`2025-11-09T07:31:16.179161+00:00`).
pub fn iso_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

/// Liveness (`GET /api/v1/health`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `healthy`, or `unhealthy` when the database does not answer (with status 503).
    #[schema(example = "healthy")]
    pub status: String,
    /// `imgest-server`.
    pub service: String,
    /// The server's version.
    pub version: String,
    /// ISO 8601, UTC.
    #[schema(example = "2025-11-09T07:31:16.179161+00:00")]
    pub timestamp: String,
}

/// Liveness and version.
///
/// Also at `/api/v1/health/` and `/health` (for load balancers).
#[utoipa::path(get, path = "/api/v1/health", tag = "health", responses(
    (status = 200, body = Health, description = "healthy"),
    (status = 503, body = Health, description = "the database does not answer")))]
pub async fn health(State(state): State<AppState>) -> Response {
    let db_ok = sqlx::query("SELECT 1")
        .execute(&state.db.pool)
        .await
        .is_ok();
    let body = Health {
        status: if db_ok { "healthy" } else { "unhealthy" }.to_string(),
        service: "imgest-server".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        timestamp: iso_now(),
    };
    let status = if db_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `/api/v1/health/stats`: the original service's keys (`status_breakdown`, `performance_24h`,
/// `storage`, `celery`, `timestamp`) and imgest's own beside them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Stats {
    /// Jobs per status: `queued`, `processing`, `done`, `failed`.
    pub status_breakdown: std::collections::BTreeMap<String, i64>,
    /// The last 24 hours.
    pub performance_24h: Performance24h,
    /// What is stored.
    pub storage: StorageStats,
    /// The worker figures under the original service's names (there is no Celery: the workers
    /// are the server's own, or `imgest-server worker` processes with Redis).
    pub celery: CeleryStats,
    /// Job slots.
    pub workers: WorkerStats,
    /// The queue.
    pub queue: QueueStats,
    /// ISO 8601, UTC.
    pub timestamp: String,
}

/// The last 24 hours' jobs.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Performance24h {
    /// Jobs done.
    pub completed_24h: i64,
    /// Mean time from upload to result of those jobs, in seconds (to the hundredth), `null`
    /// when there are none.
    pub avg_processing_time_seconds: Option<f64>,
    /// Jobs failed.
    pub failed_24h: i64,
    /// Of those, the ones stopped by their time budget (`IMGEST_JOB_TIMEOUT_SECS`).
    pub timed_out_24h: i64,
    /// Mean duration of their successful attempt (the pipeline and storing), in seconds.
    pub avg_run_time_seconds: Option<f64>,
}

/// Storage figures.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StorageStats {
    /// Images recorded.
    pub total_images: i64,
    /// Jobs recorded.
    pub total_jobs: i64,
    /// `local` or `s3`.
    pub backend: String,
    /// Variants stored.
    pub total_variants: i64,
    /// Bytes of originals.
    pub original_bytes: i64,
    /// Bytes of variants.
    pub variant_bytes: i64,
    /// Both.
    pub total_bytes: i64,
}

/// Worker figures, named as the original service's Celery figures.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CeleryStats {
    /// Worker processes alive: this server (its in-process pool), or every live
    /// `imgest-server worker` with Redis.
    pub active_workers: u64,
    /// Jobs running now.
    pub active_tasks: u64,
}

/// Job slots.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkerStats {
    /// Jobs that can run at once.
    pub total: u64,
    /// Running now.
    pub busy: u64,
    /// Free.
    pub idle: u64,
    /// With Redis: the live worker processes (empty for in-process workers).
    pub live: Vec<crate::queue::WorkerInfo>,
}

/// Queue figures.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueueStats {
    /// `database` (in-process workers) or `redis`.
    pub backend: String,
    /// Jobs not yet taken (`null` while Redis is down).
    pub waiting: Option<u64>,
    /// Jobs taken and not finished (`null` while Redis is down).
    pub in_progress: Option<u64>,
    /// `unavailable` while Redis is down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

async fn stats_value(state: &AppState) -> Result<Stats, ApiError> {
    let s = db::stats(&state.db).await?;
    let queued = s
        .status_breakdown
        .get("queued")
        .copied()
        .unwrap_or(0)
        .max(0) as u64;
    // In-process workers count this process's slots; with Redis, every live worker process's.
    let (workers, queue) = match &state.queue {
        None => {
            let total = state.config.workers as u64;
            let busy = total - (state.cpu.available_permits() as u64).min(total);
            let queue = QueueStats {
                backend: "database".into(),
                waiting: Some(queued),
                in_progress: Some(busy),
                error: None,
            };
            (
                WorkerStats {
                    total,
                    busy,
                    idle: total - busy,
                    live: Vec::new(),
                },
                queue,
            )
        }
        Some(q) => {
            // Redis down: the database's part of the page still shows.
            let live = q.workers().await.unwrap_or_default();
            let total = live.iter().map(|w| w.slots).sum::<u64>();
            let busy = live.iter().map(|w| w.busy).sum::<u64>();
            let queue = match q.depth().await {
                Ok(d) => QueueStats {
                    backend: "redis".into(),
                    waiting: Some(d.waiting),
                    in_progress: Some(d.in_progress),
                    error: None,
                },
                Err(e) => {
                    tracing::warn!("queue depth: {e}");
                    QueueStats {
                        backend: "redis".into(),
                        waiting: None,
                        in_progress: None,
                        error: Some("unavailable".into()),
                    }
                }
            };
            (
                WorkerStats {
                    total,
                    busy,
                    idle: total.saturating_sub(busy),
                    live,
                },
                queue,
            )
        }
    };
    let active_workers = match &state.queue {
        None => 1,
        Some(_) => workers.live.len() as u64,
    };
    Ok(Stats {
        performance_24h: Performance24h {
            completed_24h: s.completed_24h,
            avg_processing_time_seconds: s.avg_processing_time_seconds,
            failed_24h: s.failed_24h,
            timed_out_24h: s.timed_out_24h,
            avg_run_time_seconds: s.avg_run_time_seconds,
        },
        storage: StorageStats {
            total_images: s.total_images,
            total_jobs: s.total_jobs,
            backend: match state.config.storage {
                crate::config::StorageBackend::Local(_) => "local",
                crate::config::StorageBackend::S3 { .. } => "s3",
            }
            .into(),
            total_variants: s.total_variants,
            original_bytes: s.original_bytes,
            variant_bytes: s.variant_bytes,
            total_bytes: s.original_bytes + s.variant_bytes,
        },
        celery: CeleryStats {
            active_workers,
            active_tasks: workers.busy,
        },
        status_breakdown: s.status_breakdown,
        workers,
        queue,
        timestamp: iso_now(),
    })
}

/// Queue, job, storage and worker statistics (the original service's keys and more).
///
/// Also at `/health/stats`.
#[utoipa::path(get, path = "/api/v1/health/stats", tag = "health", responses(
    (status = 200, body = Stats, description = "status breakdown, last 24 h, storage, workers, queue"),
    (status = 500, body = ErrorBody, description = "the database does not answer")))]
pub async fn stats(State(state): State<AppState>) -> Result<Json<Stats>, ApiError> {
    Ok(Json(stats_value(&state).await?))
}

/// Jobs finished in one 5-minute bucket.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Bucket {
    /// Its start (ms since the epoch).
    pub start: i64,
    /// Jobs done.
    pub done: i64,
    /// Jobs failed.
    pub failed: i64,
}

/// A failed job, as the dashboard lists it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Failure {
    /// Its error code.
    pub code: Option<String>,
    /// Its message.
    pub message: Option<String>,
    /// Attempts made.
    pub attempts: i64,
    /// When it failed (ms since the epoch).
    pub finished_at: Option<i64>,
}

/// The dashboard's data.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Activity {
    /// The last hour in 5-minute buckets, oldest first.
    pub throughput: Vec<Bucket>,
    /// The ten newest failures.
    pub recent_failures: Vec<Failure>,
}

/// Throughput over the last hour and the newest failures (the dashboard's data).
///
/// Also at `/health/activity`.
#[utoipa::path(get, path = "/api/v1/health/activity", tag = "health", responses(
    (status = 200, body = Activity, description = "5-minute buckets and recent failures"),
    (status = 500, body = ErrorBody, description = "the database does not answer")))]
pub async fn activity(State(state): State<AppState>) -> Result<Json<Activity>, ApiError> {
    let (buckets, failures) = db::activity(&state.db).await?;
    Ok(Json(Activity {
        throughput: buckets
            .into_iter()
            .map(|(start, done, failed)| Bucket {
                start,
                done,
                failed,
            })
            .collect(),
        recent_failures: failures
            .into_iter()
            .map(|j| Failure {
                code: j.error_code,
                message: j.error_message,
                attempts: j.attempts,
                finished_at: j.finished_at,
            })
            .collect(),
    }))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "health", responses(
    (status = 200, content_type = "application/openmetrics-text", body = String, description = "OpenMetrics text"),
    (status = 500, body = ErrorBody, description = "the database does not answer")))]
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let s = db::stats(&state.db).await?;
    state
        .metrics
        .queue_depth
        .set(s.status_breakdown.get("queued").copied().unwrap_or(0));
    state
        .metrics
        .active_jobs
        .set(s.status_breakdown.get("processing").copied().unwrap_or(0));
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response())
}

/// The monitoring page.
pub async fn dashboard() -> Html<&'static str> {
    Html(include_str!("../assets/dashboard.html"))
}
