//! Running jobs: the in-process worker pool (claims persisted jobs from the database) and the
//! attempt itself, shared with the Redis workers (`queue.rs`): the core pipeline on a blocking
//! thread (bounded by a semaphore), variants stored, transient failures retried.

use std::time::{Duration, Instant};

use imgest::ErrorCode;
use tokio::sync::watch;
use tracing::Instrument;

use crate::AppState;
use crate::db::{self, ClaimedJob, VariantRow};

/// Starts `config.workers` worker tasks. Once `stop` turns true they take no new job and
/// end when the one in hand is finished.
pub fn spawn_workers(
    state: &AppState,
    stop: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..state.config.workers)
        .map(|_| {
            let state = state.clone();
            let stop = stop.clone();
            tokio::spawn(async move { worker(state, stop).await })
        })
        .collect()
}

async fn worker(state: AppState, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        match db::claim_job(&state.db, state.config.job_lease, &state.worker_name).await {
            Ok(Some(job)) => {
                run(&state, job, None).await;
            }
            Ok(None) => {
                // Woken by an upload, or polling for retries that became due.
                tokio::select! {
                    _ = tokio::time::timeout(Duration::from_millis(250), state.wake.notified()) => {}
                    _ = stop.changed() => {}
                }
            }
            Err(e) => {
                tracing::error!("claiming a job: {e}");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
}

/// How an attempt ended.
enum Attempt {
    Done(Vec<VariantRow>, String),
    /// Worth retrying (storage trouble).
    Transient(ErrorCode, String),
    /// The input's fault or a bug: retrying gives the same answer.
    Permanent(ErrorCode, String),
}

/// The storage prefix of an image's variants: `variants/{image_id}/`, under which each variant
/// has its content-addressed name. Keys are never shared between images, so deleting one image
/// cannot take objects from another.
pub fn variant_prefix(image_id: &str) -> String {
    format!("variants/{image_id}/")
}

/// The Redis message a job came in, kept fresh while the job runs.
pub struct Beat<'a> {
    /// The queue.
    pub queue: &'a crate::queue::RedisQueue,
    /// The message's id.
    pub entry: &'a str,
    /// The worker holding it.
    pub consumer: &'a str,
}

/// How a run ended, for a worker's counters.
pub enum Outcome {
    /// The result was recorded.
    Done,
    /// The attempt failed (retried later, or failed for good).
    Failed,
    /// Nothing to count: the image was deleted, or the lease was lost.
    Other,
}

/// Runs one claimed job to its end (done, queued again, or failed), inside a `job` span that
/// names the job and the request that created it.
pub async fn run(state: &AppState, job: ClaimedJob, beat: Option<Beat<'_>>) -> Outcome {
    let span = tracing::info_span!(
        "job",
        job_id = %job.id,
        request_id = job.request_id.as_deref().unwrap_or("-"),
        attempt = job.attempt,
    );
    run_job(state, job, beat).instrument(span).await
}

async fn run_job(state: &AppState, job: ClaimedJob, beat: Option<Beat<'_>>) -> Outcome {
    let started = Instant::now();
    if job.attempt > job.max_attempts {
        // Only reachable when earlier attempts were cut off (the process stopped each time).
        let why = format!("gave up after {} interrupted attempts", job.max_attempts);
        finish(state, &job, Attempt::Permanent(ErrorCode::Internal, why)).await;
        return Outcome::Failed;
    }
    let key = match db::original_key(&state.db, &job.image_id).await {
        Ok(Some(key)) => key,
        // The image was deleted (its job row went with it).
        Ok(None) => return Outcome::Other,
        Err(e) => {
            let attempt = Attempt::Transient(ErrorCode::Internal, format!("database: {e}"));
            finish(state, &job, attempt).await;
            return Outcome::Failed;
        }
    };
    let Ok(permit) = state.cpu.clone().acquire_owned().await else {
        return Outcome::Other;
    };
    let st = state.clone();
    let prefix = variant_prefix(&job.image_id);
    let span = tracing::Span::current();
    let mut task = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let _span = span.enter();
        process(&st, &key, &prefix)
    });
    // Keep the lease while the pipeline runs, however long it takes.
    let mut heartbeat =
        tokio::time::interval((state.config.job_lease / 3).max(Duration::from_millis(100)));
    heartbeat.tick().await;
    let outcome = loop {
        tokio::select! {
            joined = &mut task => {
                break joined.unwrap_or_else(|join| {
                    Attempt::Permanent(ErrorCode::Internal, format!("the pipeline panicked: {join}"))
                });
            }
            _ = heartbeat.tick() => {
                match db::renew_lease(&state.db, &job, state.config.job_lease).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(job = %job.id, "lost the lease of a running job"),
                    Err(e) => tracing::warn!(job = %job.id, "renewing a lease: {e}"),
                }
                if let Some(b) = &beat {
                    let touched =
                        tokio::time::timeout(Duration::from_secs(2), b.queue.touch(b.entry, b.consumer)).await;
                    if !matches!(touched, Ok(Ok(()))) {
                        tracing::warn!(job = %job.id, "could not keep the queue message fresh");
                    }
                }
            }
        }
    };
    if let Attempt::Done(..) = &outcome {
        state
            .metrics
            .job_seconds
            .observe(started.elapsed().as_secs_f64());
    }
    let ms = started.elapsed().as_millis() as i64;
    match outcome {
        Attempt::Done(variants, result) => {
            match db::complete_job(&state.db, &job, &variants, &result, ms).await {
                Ok(true) => {
                    state.metrics.job("done");
                    tracing::info!(image_id = %job.image_id, ms, "job done");
                    Outcome::Done
                }
                Ok(false) => {
                    // The lease was lost. If the image was deleted meanwhile, its objects go
                    // too; otherwise the worker that holds the job now writes the same keys.
                    tracing::warn!(job = %job.id, "finished a job no longer leased to this worker");
                    discard_if_deleted(state, &job, variants).await;
                    Outcome::Other
                }
                Err(e) => {
                    tracing::error!(job = %job.id, "recording a finished job: {e}");
                    // Deleted meanwhile (on PostgreSQL the insert fails on the missing image).
                    if discard_if_deleted(state, &job, variants).await {
                        return Outcome::Other;
                    }
                    let attempt = Attempt::Transient(ErrorCode::Internal, format!("database: {e}"));
                    finish(state, &job, attempt).await;
                    Outcome::Failed
                }
            }
        }
        other => {
            finish(state, &job, other).await;
            Outcome::Failed
        }
    }
}

/// Deletes the stored variants of a job whose image was deleted while it ran; whether it was.
async fn discard_if_deleted(state: &AppState, job: &ClaimedJob, variants: Vec<VariantRow>) -> bool {
    let deleted = matches!(db::original_key(&state.db, &job.image_id).await, Ok(None));
    if deleted {
        let keys = variants.into_iter().map(|v| v.storage_key).collect();
        crate::api::delete_keys(state, keys).await;
    }
    deleted
}

async fn finish(state: &AppState, job: &ClaimedJob, attempt: Attempt) {
    let (code, detail, retry) = match attempt {
        Attempt::Done(..) => return,
        Attempt::Transient(code, msg) if job.attempt < job.max_attempts => {
            let delay = state
                .config
                .retry_base
                .saturating_mul(1 << (job.attempt - 1).clamp(0, 16));
            (code, msg, Some(delay))
        }
        Attempt::Transient(code, msg) | Attempt::Permanent(code, msg) => (code, msg, None),
    };
    state.metrics.job(match (&retry, code) {
        (Some(_), _) => "retried",
        (None, ErrorCode::Timeout) => "timed_out",
        (None, _) => "failed",
    });
    tracing::info!(job = %job.id, attempt = job.attempt, code = code.as_str(), retry = ?retry, "{detail}");
    // What the owner (and the dashboard) sees: the input's problem, or a fixed line for the
    // service's own trouble, whose details (keys, endpoints, SQL) stay in the log.
    let message = match code {
        ErrorCode::Storage => "storage unavailable".to_string(),
        ErrorCode::Internal | ErrorCode::EncodeFailed => "internal error".to_string(),
        _ => detail,
    };
    if let Err(e) = db::fail_job(&state.db, job, code.as_str(), &message, retry).await {
        // The lease runs out and another worker takes the job again.
        tracing::error!(job = %job.id, "recording a failed attempt: {e}");
    }
}

fn process(state: &AppState, key: &str, prefix: &str) -> Attempt {
    let storage: &dyn imgest::storage::Storage = &*state.storage;
    let input = match storage.get(key) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            return Attempt::Permanent(
                ErrorCode::Storage,
                format!("the original {key} is missing"),
            );
        }
        Err(e) => return Attempt::Transient(e.code(), e.to_string()),
    };
    let output = match state.pipelines.run(&input) {
        Ok(output) => output,
        Err(e) if e.code() == ErrorCode::Storage => {
            return Attempt::Transient(e.code(), e.to_string());
        }
        Err(e) => return Attempt::Permanent(e.code(), e.to_string()),
    };
    let stored = match imgest::storage::store_output(storage, &output, prefix) {
        Ok(stored) => stored,
        Err(e) => return Attempt::Transient(e.code(), e.to_string()),
    };
    let variants = output
        .variants
        .iter()
        .zip(stored)
        .map(|(v, s)| VariantRow {
            name: state.public_name(&v.name).to_string(),
            storage_key: s.key,
            content_type: s.content_type.to_string(),
            width: i64::from(v.width),
            height: i64::from(v.height),
            format: v.format.as_str().to_string(),
            bytes: v.size as i64,
            sha256: v.sha256.clone(),
        })
        .collect();
    let result = serde_json::json!({
        "dominant_color": output.dominant_color,
        "palette": output.palette,
        "placeholder": output.placeholder,
        "source": output.source,
    });
    Attempt::Done(variants, result.to_string())
}
