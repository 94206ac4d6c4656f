//! The in-process worker pool: claims persisted jobs, runs the core pipeline on blocking
//! threads (bounded by a semaphore), stores variants, retries transient failures.

use std::time::{Duration, Instant};

use imgest::{ErrorCode, Pipeline};

use crate::AppState;
use crate::db::{self, ClaimedJob, VariantRow};
use crate::storage::VARIANT_PREFIX;

/// Starts `config.workers` worker tasks.
pub fn spawn_workers(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    (0..state.config.workers)
        .map(|_| {
            let state = state.clone();
            tokio::spawn(async move { worker(state).await })
        })
        .collect()
}

async fn worker(state: AppState) {
    loop {
        match db::claim_job(&state.db, state.config.job_lease).await {
            Ok(Some(job)) => run(&state, job).await,
            Ok(None) => {
                // Woken by an upload, or polling for retries that became due.
                let _ =
                    tokio::time::timeout(Duration::from_millis(250), state.wake.notified()).await;
            }
            Err(e) => {
                tracing::error!("claiming a job: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
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

/// Runs one claimed job to its end (done, queued again, or failed).
pub async fn run(state: &AppState, job: ClaimedJob) {
    let started = Instant::now();
    if job.attempt > job.max_attempts {
        // Only reachable when earlier attempts were cut off (the process stopped each time).
        finish(
            state,
            &job,
            Attempt::Permanent(
                ErrorCode::Internal,
                format!("gave up after {} interrupted attempts", job.max_attempts),
            ),
        )
        .await;
        return;
    }
    let key = match db::original_key(&state.db, &job.image_id).await {
        Ok(Some(key)) => key,
        // The image was deleted (its job row went with it).
        Ok(None) => return,
        Err(e) => {
            finish(
                state,
                &job,
                Attempt::Transient(ErrorCode::Internal, format!("database: {e}")),
            )
            .await;
            return;
        }
    };
    let Ok(permit) = state.cpu.clone().acquire_owned().await else {
        return;
    };
    let st = state.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        process(&st, &key)
    })
    .await
    .unwrap_or_else(|join| {
        Attempt::Permanent(
            ErrorCode::Internal,
            format!("the pipeline panicked: {join}"),
        )
    });
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
                Ok(true) => state.metrics.job("done"),
                Ok(false) => {
                    // The lease was lost (or the image deleted): leave no orphans behind.
                    tracing::warn!(job = %job.id, "finished a job no longer leased to this worker");
                    crate::api::delete_unused(
                        state,
                        variants.into_iter().map(|v| v.storage_key).collect(),
                    )
                    .await;
                }
                Err(e) => {
                    tracing::error!(job = %job.id, "recording a finished job: {e}");
                    finish(
                        state,
                        &job,
                        Attempt::Transient(ErrorCode::Internal, format!("database: {e}")),
                    )
                    .await;
                }
            }
        }
        other => finish(state, &job, other).await,
    }
}

async fn finish(state: &AppState, job: &ClaimedJob, attempt: Attempt) {
    let (code, message, retry) = match attempt {
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
    state
        .metrics
        .job(if retry.is_some() { "retried" } else { "failed" });
    tracing::info!(job = %job.id, attempt = job.attempt, code = code.as_str(), retry = ?retry, "{message}");
    if let Err(e) = db::fail_job(&state.db, job, code.as_str(), &message, retry).await {
        // The lease runs out and another worker takes the job again.
        tracing::error!(job = %job.id, "recording a failed attempt: {e}");
    }
}

fn process(state: &AppState, key: &str) -> Attempt {
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
    let output = match Pipeline::new(state.options.clone()).and_then(|mut p| p.run(&input)) {
        Ok(output) => output,
        Err(e) if e.code() == ErrorCode::Storage => {
            return Attempt::Transient(e.code(), e.to_string());
        }
        Err(e) => return Attempt::Permanent(e.code(), e.to_string()),
    };
    let stored = match imgest::storage::store_output(storage, &output, VARIANT_PREFIX) {
        Ok(stored) => stored,
        Err(e) => return Attempt::Transient(e.code(), e.to_string()),
    };
    let variants = output
        .variants
        .iter()
        .zip(stored)
        .map(|(v, s)| VariantRow {
            name: v.name.clone(),
            storage_key: s.key,
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
