//! The HTTP handlers.

use axum::Json;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::User;
use crate::db::{self, JobView, NewImage};
use crate::error::ApiError;

/// Extra bytes allowed around the file in a multipart body (boundaries, part headers).
pub const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// `202 Accepted` to an upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadAccepted {
    /// The new image's id.
    pub image_id: String,
    /// Its processing job's id.
    pub job_id: String,
    /// Where to poll the job.
    pub status_url: String,
    /// Where the image's metadata will be.
    pub image_url: String,
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal("blocking task", e))
}

/// Deletes storage objects of one image (keys are never shared between images), logging
/// failures: a leftover object costs space, never correctness.
pub async fn delete_keys(state: &AppState, keys: Vec<String>) {
    let storage = state.storage.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        for key in keys {
            if let Err(e) = storage.delete(&key) {
                tracing::warn!("deleting {key}: {e}");
            }
        }
    })
    .await;
    if let Err(e) = outcome {
        tracing::warn!("deleting objects: {e}");
    }
}

async fn rate_limited(state: &AppState, user: &User, oldest: Option<i64>) -> ApiError {
    state.metrics.upload("rate_limited");
    let _ = db::audit(
        &state.db,
        Some(&user.id),
        "rate_limited",
        None,
        user.client.as_deref(),
        "rejected",
        None,
    )
    .await;
    let mut e = ApiError::new(
        "rate_limited",
        format!(
            "at most {} uploads per hour",
            state.config.rate_limit_max_uploads
        ),
    );
    e.retry_after = Some(db::retry_after_secs(oldest, db::now_ms()));
    e
}

async fn reject_upload(state: &AppState, user: &User, err: ApiError) -> ApiError {
    state.metrics.upload("rejected");
    let _ = db::audit(
        &state.db,
        Some(&user.id),
        "upload",
        None,
        user.client.as_deref(),
        "rejected",
        Some(err.code),
    )
    .await;
    err
}

/// Upload an image (multipart, field `file`).
#[utoipa::path(post, path = "/api/v1/images", tag = "images",
    request_body(content_type = "multipart/form-data", description = "field `file`: the image"),
    responses(
        (status = 202, body = UploadAccepted),
        (status = 401, description = "no or bad token"),
        (status = 413, description = "over MAX_UPLOAD_SIZE_MB"),
        (status = 415, description = "not an image, or an unsupported format"),
        (status = 429, description = "RATE_LIMIT_MAX_UPLOADS reached; see Retry-After"),
        (status = 503, description = "too many uploads in progress; see Retry-After"),
    ),
    security(("bearer" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    user: User,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let cap = state.config.max_upload_bytes;
    let too_large = || {
        ApiError::new(
            "payload_too_large",
            format!("uploads are limited to {} MB", cap / (1024 * 1024)),
        )
    };
    // Before reading anything: the declared length, then the hourly limit.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap + MULTIPART_OVERHEAD) {
        return Err(reject_upload(&state, &user, too_large()).await);
    }
    let mut multipart = match multipart {
        Ok(m) => m,
        Err(e) => {
            let err = ApiError::new(
                "bad_request",
                format!("expected a multipart form: {}", e.body_text()),
            );
            return Err(reject_upload(&state, &user, err).await);
        }
    };
    let (count, oldest) = db::uploads_in_window(&state.db, &user.id, db::now_ms()).await?;
    if count >= i64::from(state.config.rate_limit_max_uploads) {
        return Err(rate_limited(&state, &user, oldest).await);
    }
    // Bodies held in memory at once are bounded: beyond the limit, come back in a second.
    let Ok(_slot) = state.upload_slots.clone().try_acquire_owned() else {
        state.metrics.upload("busy");
        let mut e = ApiError::new("unavailable", "too many uploads in progress; retry shortly");
        e.retry_after = Some(1);
        return Err(e);
    };
    // The body, limited while streaming.
    let mut file: Option<(Option<String>, Vec<u8>)> = None;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(reject_upload(&state, &user, too_large()).await);
            }
            Err(e) => {
                let err = ApiError::new("bad_request", e.body_text());
                return Err(reject_upload(&state, &user, err).await);
            }
        };
        if field.name() != Some("file") || file.is_some() {
            continue;
        }
        let name = field
            .file_name()
            .map(|n| n.chars().take(255).collect::<String>());
        let mut data = Vec::new();
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if data.len() as u64 + chunk.len() as u64 > cap {
                        return Err(reject_upload(&state, &user, too_large()).await);
                    }
                    data.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    return Err(reject_upload(&state, &user, too_large()).await);
                }
                Err(e) => {
                    let err = ApiError::new("bad_request", e.body_text());
                    return Err(reject_upload(&state, &user, err).await);
                }
            }
        }
        file = Some((name, data));
    }
    let Some((filename, data)) = file else {
        let err = ApiError::new("bad_request", "no `file` field in the form");
        return Err(reject_upload(&state, &user, err).await);
    };
    // Magic bytes: the decoding waits for the job.
    let format = match imgest::validate::sniff(&data) {
        Ok(f) => f,
        Err(e) => return Err(reject_upload(&state, &user, e.into()).await),
    };
    // Store the original, then record image + job; a spawned task, so a client hanging up
    // cannot cut this short between the two and leave an orphan.
    let task_state = state.clone();
    let uploader = user.clone();
    let recorded = tokio::spawn(async move {
        let state = task_state;
        let user = uploader;
        let image_id = uuid::Uuid::new_v4().to_string();
        let job_id = uuid::Uuid::new_v4().to_string();
        let sha = hex::encode(Sha256::digest(&data));
        let key = crate::storage::original_key(&image_id);
        let storage = state.storage.clone();
        let (k, len) = (key.clone(), data.len());
        run_blocking(move || storage.put(&k, &data, format.mime_type())).await??;
        let recorded = db::insert_upload(
            &state.db,
            &NewImage {
                id: &image_id,
                job_id: &job_id,
                user_id: &user.id,
                filename: filename.as_deref(),
                format: format.as_str(),
                bytes: len as i64,
                original_key: &key,
                original_sha256: &sha,
                client: user.client.as_deref(),
            },
            state.config.rate_limit_max_uploads,
            state.config.max_attempts,
        )
        .await;
        match recorded {
            Ok(true) => Ok((image_id, job_id)),
            Ok(false) => {
                delete_keys(&state, vec![key]).await;
                let (_, oldest) = db::uploads_in_window(&state.db, &user.id, db::now_ms()).await?;
                Err(rate_limited(&state, &user, oldest).await)
            }
            Err(e) => {
                delete_keys(&state, vec![key]).await;
                Err(e.into())
            }
        }
    })
    .await
    .map_err(|e| ApiError::internal("upload task", e))?;
    let (image_id, job_id) = recorded?;
    state.metrics.upload("accepted");
    match &state.queue {
        Some(queue) => crate::queue::dispatch(&state, queue, &job_id).await,
        None => state.wake.notify_one(),
    }
    let status_url = format!("/api/v1/jobs/{job_id}");
    let location =
        HeaderValue::from_str(&status_url).map_err(|e| ApiError::internal("location", e))?;
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(UploadAccepted {
            image_url: format!("/api/v1/images/{image_id}"),
            status_url,
            image_id,
            job_id,
        }),
    )
        .into_response())
}

/// A job's status.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, description = "status, attempts, timings, error code"), (status = 404)),
    security(("bearer" = [])))]
pub async fn get_job(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    db::job_for_user(&state.db, &id, &user.id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("job"))
}

/// One variant in an image's metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct VariantInfo {
    /// `thumbnail`, `medium`, `large`, `original`.
    pub name: String,
    /// Where to fetch its bytes.
    pub url: String,
    /// Width in pixels.
    pub width: i64,
    /// Height in pixels.
    pub height: i64,
    /// `webp`.
    pub format: String,
    /// Size in bytes.
    pub bytes: i64,
    /// sha256 of the bytes (also the `ETag`).
    pub sha256: String,
}

/// An image's metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageInfo {
    /// Its id.
    pub id: String,
    /// `queued`, `processing`, `done`, `failed`.
    pub status: String,
    /// The uploaded file name.
    pub filename: Option<String>,
    /// The sniffed input format.
    pub format: String,
    /// The upload's size in bytes.
    pub bytes: i64,
    /// Upload time (ms since the epoch).
    pub created_at: i64,
    /// Its job's status URL.
    pub job_url: Option<String>,
    /// The variants, once processed.
    pub variants: Vec<VariantInfo>,
    /// `{hex, rgb}`, once processed.
    #[schema(value_type = Object)]
    pub dominant_color: serde_json::Value,
    /// `[{hex, rgb, weight}]`, once processed.
    #[schema(value_type = Object)]
    pub palette: serde_json::Value,
    /// A ThumbHash (base64), once processed.
    #[schema(value_type = Object)]
    pub placeholder: serde_json::Value,
    /// The core's report on the source (format, sizes, orientation, metadata removed).
    #[schema(value_type = Object)]
    pub source: serde_json::Value,
}

async fn image_info(state: &AppState, row: db::ImageRow) -> Result<ImageInfo, ApiError> {
    let variants = db::variants_of(&state.db, &row.id).await?;
    let result: serde_json::Value = row
        .result_json
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(serde_json::Value::Null);
    Ok(ImageInfo {
        variants: variants
            .into_iter()
            .map(|v| VariantInfo {
                url: format!("/api/v1/images/{}/{}", row.id, v.name),
                name: v.name,
                width: v.width,
                height: v.height,
                format: v.format,
                bytes: v.bytes,
                sha256: v.sha256,
            })
            .collect(),
        dominant_color: result["dominant_color"].clone(),
        palette: result["palette"].clone(),
        placeholder: result["placeholder"].clone(),
        source: result["source"].clone(),
        job_url: row.job_id.map(|j| format!("/api/v1/jobs/{j}")),
        id: row.id,
        status: row.status,
        filename: row.filename,
        format: row.format,
        bytes: row.bytes,
        created_at: row.created_at,
    })
}

/// An image's metadata.
#[utoipa::path(get, path = "/api/v1/images/{id}", tag = "images",
    params(("id" = String, Path, description = "image id")),
    responses((status = 200, body = ImageInfo), (status = 404)),
    security(("bearer" = [])))]
pub async fn get_image(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
) -> Result<Json<ImageInfo>, ApiError> {
    let row = db::image_for_user(&state.db, &id, &user.id)
        .await?
        .ok_or_else(|| ApiError::not_found("image"))?;
    Ok(Json(image_info(&state, row).await?))
}

/// A variant's bytes.
#[utoipa::path(get, path = "/api/v1/images/{id}/{variant}", tag = "images",
    params(("id" = String, Path), ("variant" = String, Path, description = "thumbnail, medium, large or original")),
    responses((status = 200, content_type = "image/webp", description = "the bytes; ETag = sha256"), (status = 304), (status = 404)),
    security(("bearer" = [])))]
pub async fn get_variant(
    State(state): State<AppState>,
    user: User,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if db::image_for_user(&state.db, &id, &user.id)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found("image"));
    }
    let variant = db::variants_of(&state.db, &id)
        .await?
        .into_iter()
        .find(|v| v.name == name)
        .ok_or_else(|| ApiError::not_found("variant"))?;
    let etag = format!("\"{}\"", variant.sha256);
    let etag_value = HeaderValue::from_str(&etag).map_err(|e| ApiError::internal("etag", e))?;
    let cache = HeaderValue::from_static("private, max-age=31536000, immutable");
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag_value), (header::CACHE_CONTROL, cache)],
        )
            .into_response());
    }
    let storage = state.storage.clone();
    let key = variant.storage_key.clone();
    let bytes = run_blocking(move || storage.get(&key))
        .await??
        .ok_or_else(|| {
            ApiError::internal(
                "variant",
                format!("{} is missing from storage", variant.storage_key),
            )
        })?;
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_str(&variant.content_type)
                    .map_err(|e| ApiError::internal("type", e))?,
            ),
            (header::ETAG, etag_value),
            (header::CACHE_CONTROL, cache),
        ],
        Body::from(bytes),
    )
        .into_response())
}

/// Paging.
#[derive(Debug, Deserialize, IntoParams)]
pub struct Page {
    /// 1-based page number (1).
    pub page: Option<u32>,
    /// Items per page (20, at most 100).
    pub per_page: Option<u32>,
}

impl Page {
    fn limits(&self) -> (i64, i64, u32, u32) {
        let page = self.page.unwrap_or(1).max(1);
        let per_page = self.per_page.unwrap_or(20).clamp(1, 100);
        (
            i64::from(per_page),
            i64::from(page - 1) * i64::from(per_page),
            page,
            per_page,
        )
    }
}

/// A page of images.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageList {
    /// This page's images, newest first.
    pub images: Vec<ImageInfo>,
    /// The page number.
    pub page: u32,
    /// Items per page.
    pub per_page: u32,
    /// All of the caller's images.
    pub total: i64,
}

/// The caller's images, newest first.
#[utoipa::path(get, path = "/api/v1/images", tag = "images", params(Page),
    responses((status = 200, body = ImageList)), security(("bearer" = [])))]
pub async fn list_images(
    State(state): State<AppState>,
    user: User,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<ImageList>, ApiError> {
    let Query(page) = page.map_err(|e| ApiError::new("bad_request", e.body_text()))?;
    let (limit, offset, p, per_page) = page.limits();
    let (rows, total) = db::images_of_user(&state.db, &user.id, limit, offset).await?;
    let mut images = Vec::with_capacity(rows.len());
    for row in rows {
        images.push(image_info(&state, row).await?);
    }
    Ok(Json(ImageList {
        images,
        page: p,
        per_page,
        total,
    }))
}

/// Deletes an image, its variants and its job.
#[utoipa::path(delete, path = "/api/v1/images/{id}", tag = "images",
    params(("id" = String, Path)), responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn delete_image(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let Some(keys) = db::delete_image(&state.db, &id, &user.id, user.client.as_deref()).await?
    else {
        return Err(ApiError::not_found("image"));
    };
    // The rows are gone; the objects follow even if the client hangs up now.
    let st = state.clone();
    let _ = tokio::spawn(async move { delete_keys(&st, keys).await }).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Audit filter and paging.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Only this action (`upload`, `delete`, `auth_failure`, `rate_limited`, `job_failed`).
    pub action: Option<String>,
    /// 1-based page number.
    pub page: Option<u32>,
    /// Items per page (20, at most 100).
    pub per_page: Option<u32>,
}

/// The audit trail, newest first (role `admin`).
#[utoipa::path(get, path = "/api/v1/audit", tag = "admin", params(AuditQuery),
    responses((status = 200, description = "events"), (status = 403)), security(("bearer" = [])))]
pub async fn audit(
    State(state): State<AppState>,
    user: User,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::new("bad_request", e.body_text()))?;
    if !user.admin {
        return Err(ApiError::new("forbidden", "the audit log needs role admin"));
    }
    let (limit, offset, page, per_page) = Page {
        page: q.page,
        per_page: q.per_page,
    }
    .limits();
    let events = db::audit_events(&state.db, limit, offset, q.action.as_deref()).await?;
    Ok(Json(
        serde_json::json!({"events": events, "page": page, "per_page": per_page}),
    ))
}

/// Liveness.
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, description = "{status, service, version, timestamp}")))]
pub async fn health(State(state): State<AppState>) -> Response {
    let db_ok = sqlx::query("SELECT 1")
        .execute(&state.db.pool)
        .await
        .is_ok();
    let body = serde_json::json!({
        "status": if db_ok { "healthy" } else { "unhealthy" },
        "service": "imgest-server",
        "version": env!("CARGO_PKG_VERSION"),
        "timestamp": db::now_ms() as f64 / 1000.0,
    });
    let status = if db_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn stats_value(state: &AppState) -> Result<serde_json::Value, ApiError> {
    let s = db::stats(&state.db).await?;
    // In-process workers count this process's slots; with Redis, every live worker process's.
    let (total, busy, live, queue) = match &state.queue {
        None => {
            let total = state.config.workers;
            let busy = total - state.cpu.available_permits().min(total);
            let queued = s.status_breakdown.get("queued").copied().unwrap_or(0);
            let queue =
                serde_json::json!({"backend": "database", "waiting": queued, "in_progress": busy});
            (total, busy, Vec::new(), queue)
        }
        Some(q) => {
            // Redis down: the database's part of the page still shows.
            let workers = q.workers().await.unwrap_or_default();
            let total = workers.iter().map(|w| w.slots as usize).sum();
            let busy = workers.iter().map(|w| w.busy as usize).sum();
            let queue = match q.depth().await {
                Ok(d) => {
                    serde_json::json!({"backend": "redis", "waiting": d.waiting, "in_progress": d.in_progress})
                }
                Err(e) => {
                    tracing::warn!("queue depth: {e}");
                    serde_json::json!({"backend": "redis", "waiting": null, "in_progress": null, "error": "unavailable"})
                }
            };
            (total, busy, workers, queue)
        }
    };
    Ok(serde_json::json!({
        "status_breakdown": s.status_breakdown,
        "recent_24h": {
            "completed": s.completed_24h,
            "failed": s.failed_24h,
            "avg_processing_time_seconds": s.avg_processing_time_seconds,
        },
        "storage": {
            "backend": match state.config.storage { crate::config::StorageBackend::Local(_) => "local", crate::config::StorageBackend::S3 { .. } => "s3" },
            "total_images": s.total_images,
            "total_variants": s.total_variants,
            "original_bytes": s.original_bytes,
            "variant_bytes": s.variant_bytes,
            "total_bytes": s.original_bytes + s.variant_bytes,
        },
        "workers": {"total": total, "busy": busy, "idle": total.saturating_sub(busy), "live": live},
        "queue": queue,
        "active_tasks": busy,
        "queue_depth": s.status_breakdown.get("queued").copied().unwrap_or(0),
        "timestamp": db::now_ms() as f64 / 1000.0,
    }))
}

/// Queue and storage statistics (the original service's shape).
#[utoipa::path(get, path = "/health/stats", tag = "health", responses((status = 200, description = "status breakdown, last 24 h, storage, workers")))]
pub async fn stats(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(stats_value(&state).await?))
}

/// Throughput over the last hour and the newest failures (the dashboard's data).
#[utoipa::path(get, path = "/health/activity", tag = "health", responses((status = 200, description = "5-minute buckets and recent failures")))]
pub async fn activity(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let (buckets, failures) = db::activity(&state.db).await?;
    let failures: Vec<serde_json::Value> = failures
        .into_iter()
        .map(|j| serde_json::json!({"code": j.error_code, "message": j.error_message, "attempts": j.attempts, "finished_at": j.finished_at}))
        .collect();
    Ok(Json(serde_json::json!({
        "throughput": buckets.iter().map(|(start, done, failed)| serde_json::json!({"start": start, "done": done, "failed": failed})).collect::<Vec<_>>(),
        "recent_failures": failures,
    })))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, content_type = "text/plain", description = "Prometheus text format")))]
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

/// The API reference page (renders `/openapi.json`).
pub async fn docs() -> Html<&'static str> {
    Html(include_str!("../assets/docs.html"))
}
