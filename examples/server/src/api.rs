//! The HTTP handlers.

use axum::Json;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, FromRequestParts, Multipart, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::headers::{ETag, HeaderMapExt, IfNoneMatch};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::User;
use crate::db::{self, AuditEvent, IdempotentUpload, JobView, NewImage, Recorded};
use crate::error::{ApiError, ErrorBody};
use crate::request_id::RequestId;

/// `Idempotency-Key`.
pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// `Idempotent-Replayed: true` on an upload answered from an earlier one.
pub static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Extra bytes allowed around the file in a multipart body (boundaries, part headers).
pub const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// `202 Accepted` to an upload.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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

/// The upload form.
#[derive(Debug, ToSchema)]
pub struct UploadForm {
    /// The image (JPEG, PNG, GIF, WebP, TIFF, BMP); other fields are ignored.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// Whether an `Idempotency-Key` is usable: 1 to 255 visible ASCII characters.
fn valid_idempotency_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

/// What identifies an upload for `Idempotency-Key`: the file's name and bytes (not the raw
/// body, whose multipart boundary a client picks anew on each try).
fn upload_fingerprint(filename: Option<&str>, data: &[u8]) -> String {
    let mut h = Sha256::new();
    let name = filename.unwrap_or("").as_bytes();
    h.update((name.len() as u64).to_be_bytes());
    h.update(name);
    h.update(data);
    hex::encode(h.finalize())
}

/// The `202` of an accepted upload (`replayed`: answered from an earlier one).
fn accepted(image_id: String, job_id: String, replayed: bool) -> Result<Response, ApiError> {
    let status_url = format!("/api/v1/jobs/{job_id}");
    let location =
        HeaderValue::from_str(&status_url).map_err(|e| ApiError::internal("location", e))?;
    let mut response = (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(UploadAccepted {
            image_url: format!("/api/v1/images/{image_id}"),
            status_url,
            image_id,
            job_id,
        }),
    )
        .into_response();
    if replayed {
        response.headers_mut().insert(
            IDEMPOTENT_REPLAYED.clone(),
            HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

/// Answers a retried upload from the first one made with its `Idempotency-Key`.
async fn replay(
    state: &AppState,
    user: &User,
    earlier: IdempotentUpload,
    fingerprint: &str,
) -> Result<Response, ApiError> {
    if earlier.fingerprint != fingerprint {
        let err = ApiError::new(
            "idempotency_key_reused",
            "this Idempotency-Key was used for another file in the last 24 hours",
        );
        return Err(reject_upload(state, user, err).await);
    }
    state.metrics.upload("replayed");
    tracing::info!(image_id = %earlier.image_id, job_id = %earlier.job_id, "upload replayed");
    accepted(earlier.image_id, earlier.job_id, true)
}

/// Upload an image (multipart, field `file`).
///
/// Also at `POST /api/v1/images/upload`, the path of the service imgest replaces.
#[utoipa::path(post, path = "/api/v1/images", tag = "images",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    params(("Idempotency-Key" = Option<String>, Header,
        description = "1-255 visible ASCII characters. The same key from the same user within 24 h \
            returns the first answer (same image_id, no second job, not counted again against \
            the rate limit); with another file it is refused with 422.")),
    responses(
        (status = 202, body = UploadAccepted, description = "accepted; `Location` is the job's URL \
            (`Idempotent-Replayed: true` when answered from an earlier upload)"),
        (status = 400, body = ErrorBody, description = "not a multipart form with a `file` field, or a bad Idempotency-Key"),
        (status = 401, body = ErrorBody, description = "no or bad token"),
        (status = 413, body = ErrorBody, description = "over MAX_UPLOAD_SIZE_MB"),
        (status = 415, body = ErrorBody, description = "not an image, or an unsupported format"),
        (status = 422, body = ErrorBody, description = "`idempotency_key_reused`: the key came with another file"),
        (status = 429, body = ErrorBody, description = "RATE_LIMIT_MAX_UPLOADS reached; see Retry-After"),
        (status = 503, body = ErrorBody, description = "too many uploads in progress; see Retry-After"),
    ),
    security(("bearer" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    user: User,
    request_id: Option<Extension<RequestId>>,
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
    let idempotency_key = match headers.get(&IDEMPOTENCY_KEY) {
        None => None,
        Some(v) => match v.to_str().ok().filter(|k| valid_idempotency_key(k)) {
            Some(k) => Some(k.to_string()),
            None => {
                let err = ApiError::new(
                    "bad_request",
                    "Idempotency-Key must be 1 to 255 visible ASCII characters",
                );
                return Err(reject_upload(&state, &user, err).await);
            }
        },
    };
    // A retry of an upload already accepted is answered from it, even past the hourly limit.
    let earlier = match &idempotency_key {
        Some(key) => db::idempotent_upload(&state.db, &user.id, key).await?,
        None => None,
    };
    if earlier.is_none() {
        let (count, oldest) = db::uploads_in_window(&state.db, &user.id, db::now_ms()).await?;
        if count >= i64::from(state.config.rate_limit_max_uploads) {
            return Err(rate_limited(&state, &user, oldest).await);
        }
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
    let idempotency =
        idempotency_key.map(|key| (key, upload_fingerprint(filename.as_deref(), &data)));
    if let (Some(earlier), Some((_, fingerprint))) = (earlier, &idempotency) {
        return replay(&state, &user, earlier, fingerprint).await;
    }
    // Magic bytes: the decoding waits for the job.
    let format = match imgest::validate::sniff(&data) {
        Ok(f) => f,
        Err(e) => return Err(reject_upload(&state, &user, e.into()).await),
    };
    // Store the original, then record image + job; a spawned task, so a client hanging up
    // cannot cut this short between the two and leave an orphan.
    let task_state = state.clone();
    let uploader = user.clone();
    let request_id = request_id.map(|Extension(RequestId(id))| id);
    let recording = async move {
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
                request_id: request_id.as_deref(),
                idempotency: idempotency.as_ref().map(|(k, f)| (k.as_str(), f.as_str())),
            },
            state.config.rate_limit_max_uploads,
            state.config.max_attempts,
        )
        .await;
        match recorded {
            Ok(Recorded::Yes) => Ok(Ok((image_id, job_id))),
            Ok(Recorded::RateLimited) => {
                delete_keys(&state, vec![key]).await;
                let (_, oldest) = db::uploads_in_window(&state.db, &user.id, db::now_ms()).await?;
                Err(rate_limited(&state, &user, oldest).await)
            }
            Ok(Recorded::Earlier(earlier)) => {
                // A concurrent try with the same key was recorded first.
                delete_keys(&state, vec![key]).await;
                Ok(Err((earlier, idempotency)))
            }
            Err(e) => {
                delete_keys(&state, vec![key]).await;
                Err(e.into())
            }
        }
    };
    let recorded = tokio::spawn(tracing::Instrument::in_current_span(recording))
        .await
        .map_err(|e| ApiError::internal("upload task", e))?;
    let (image_id, job_id) = match recorded? {
        Ok(ids) => ids,
        Err((earlier, Some((_, fingerprint)))) => {
            return replay(&state, &user, earlier, &fingerprint).await;
        }
        Err((_, None)) => return Err(ApiError::internal("upload", "replay without a key")),
    };
    state.metrics.upload("accepted");
    tracing::info!(%image_id, %job_id, "upload accepted");
    match &state.queue {
        Some(queue) => crate::queue::dispatch(&state, queue, &job_id).await,
        None => state.wake.notify_one(),
    }
    accepted(image_id, job_id, false)
}

/// A job's status.
///
/// Also at `GET /api/v1/images/jobs/{id}`, the path of the service imgest replaces.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "job id")),
    responses(
        (status = 200, body = JobView, description = "status, attempts, timings, error code, request id"),
        (status = 401, body = ErrorBody, description = "no or bad token"),
        (status = 404, body = ErrorBody, description = "no such job (or another user's)"),
    ),
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
    /// The format of `url`'s bytes for a client that accepts only this one: the first of
    /// `IMGEST_OUTPUT_FORMATS` (`webp` by default).
    pub format: String,
    /// Every format the variant is stored in (`["webp", "avif"]` with
    /// `IMGEST_OUTPUT_FORMATS=webp,avif`): `url` serves the one `Accept` prefers, and
    /// `url?format=avif` a given one. `bytes` and `sha256` are those of `format`.
    pub formats: Vec<String>,
    /// Size in bytes.
    pub bytes: i64,
    /// sha256 of the bytes (also the `ETag`).
    pub sha256: String,
    /// `url` signed to work without a token (for `<img src>` and CDNs) until it expires, at
    /// least `SIGNED_URL_TTL_SECS` from now.
    pub signed_url: String,
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
    let expires = state.signer.expiry(db::now_ms() as u64 / 1000);
    // One entry per variant name (its first stored format), listing every format stored.
    let mut listed: Vec<VariantInfo> = Vec::new();
    for v in variants {
        if let Some(seen) = listed.iter_mut().find(|l| l.name == v.name) {
            seen.formats.push(v.format);
            continue;
        }
        listed.push(VariantInfo {
            url: format!("/api/v1/images/{}/{}", row.id, v.name),
            signed_url: state.signer.url(&row.id, &v.name, expires),
            name: v.name,
            width: v.width,
            height: v.height,
            formats: vec![v.format.clone()],
            format: v.format,
            bytes: v.bytes,
            sha256: v.sha256,
        });
    }
    Ok(ImageInfo {
        variants: listed,
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
    responses(
        (status = 200, body = ImageInfo, description = "the image, its variants (with signed URLs) once processed"),
        (status = 401, body = ErrorBody, description = "no or bad token"),
        (status = 404, body = ErrorBody, description = "no such image (or another user's)"),
    ),
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

/// Who may read a variant: its owner (bearer token), or anyone holding a signed URL.
pub enum VariantAccess {
    /// A bearer token.
    Owner(User),
    /// `?expires=…&sig=…`, checked by the handler against the path.
    Signed {
        /// When the URL expires (seconds since the epoch).
        expires: u64,
        /// The signature.
        sig: String,
    },
}

/// The signed URL's query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SignedQuery {
    /// Expiry of a signed URL (seconds since the epoch).
    pub expires: Option<u64>,
    /// Signature of a signed URL.
    pub sig: Option<String>,
}

impl FromRequestParts<AppState> for VariantAccess {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<VariantAccess, ApiError> {
        let bad = || ApiError::new("forbidden", "invalid signed URL");
        let Query(q) = Query::<SignedQuery>::try_from_uri(&parts.uri).map_err(|_| bad())?;
        match (q.expires, q.sig) {
            (Some(expires), Some(sig)) => Ok(VariantAccess::Signed { expires, sig }),
            (None, None) => Ok(VariantAccess::Owner(
                User::from_request_parts(parts, state).await?,
            )),
            _ => Err(bad()),
        }
    }
}

/// A variant's bytes, with a bearer token or through its `signed_url`.
#[utoipa::path(get, path = "/api/v1/images/{id}/{variant}", tag = "images",
    params(("id" = String, Path), ("variant" = String, Path, description = "thumbnail, medium, large or original"), SignedQuery, FormatQuery),
    responses(
        (status = 200, content((Vec<u8> = "image/webp"), (Vec<u8> = "image/avif")), description = "the bytes, in the format `Accept` \
            prefers among those stored (AVIF when accepted and stored, else WebP; `Vary: Accept`) or the one `?format=` names; `ETag` = sha256. \
            `Cache-Control: private, immutable` with a token; `public, immutable` until the expiry through a signed URL"),
        (status = 304, description = "`If-None-Match` matched"),
        (status = 401, body = ErrorBody, description = "no signature and no or bad token"),
        (status = 403, body = ErrorBody, description = "a signed URL that was tampered with or has expired"),
        (status = 404, body = ErrorBody, description = "no such image (deleted, or another user's) or variant, or not in the `?format=` asked for"),
    ),
    security((), ("bearer" = [])))]
pub async fn get_variant(
    State(state): State<AppState>,
    access: VariantAccess,
    Path((id, name)): Path<(String, String)>,
    Query(choice): Query<FormatQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let cache = match access {
        VariantAccess::Owner(user) => {
            if db::image_for_user(&state.db, &id, &user.id)
                .await?
                .is_none()
            {
                return Err(ApiError::not_found("image"));
            }
            HeaderValue::from_static("private, max-age=31536000, immutable")
        }
        VariantAccess::Signed { expires, sig } => {
            let now = db::now_ms() as u64 / 1000;
            match state.signer.check(&id, &name, expires, &sig, now) {
                Ok(()) => {}
                Err(crate::signed::Refusal::BadSignature) => {
                    return Err(ApiError::new("forbidden", "invalid signed URL"));
                }
                Err(crate::signed::Refusal::Expired) => {
                    return Err(ApiError::new("forbidden", "this signed URL has expired"));
                }
            }
            // Public until the URL expires: a cache must not serve it longer than the server
            // would.
            HeaderValue::from_str(&format!(
                "public, max-age={}, immutable",
                expires.saturating_sub(now)
            ))
            .map_err(|e| ApiError::internal("cache-control", e))?
        }
    };
    // A deleted image has no variants left: its signed URLs answer 404.
    let stored: Vec<db::VariantRow> = db::variants_of(&state.db, &id)
        .await?
        .into_iter()
        .filter(|v| v.name == name)
        .collect();
    if stored.is_empty() {
        return Err(ApiError::not_found("variant"));
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let variant = match &choice.format {
        Some(format) => stored
            .into_iter()
            .find(|v| v.format.eq_ignore_ascii_case(format))
            .ok_or_else(|| ApiError::not_found("variant in this format"))?,
        None => negotiate(stored, accept),
    };
    // Without `?format=` the answer depends on `Accept`: caches must key on it.
    let vary = choice
        .format
        .is_none()
        .then_some((header::VARY, HeaderValue::from_static("accept")));
    let etag = format!("\"{}\"", variant.sha256);
    let etag_value = HeaderValue::from_str(&etag).map_err(|e| ApiError::internal("etag", e))?;
    // Weak comparison, a list of tags or `*`, as RFC 9110 has it.
    let tag: ETag = etag.parse().map_err(|e| ApiError::internal("etag", e))?;
    let matches = headers
        .typed_get::<IfNoneMatch>()
        .is_some_and(|condition| !condition.precondition_passes(&tag));
    if matches {
        let mut response = (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag_value), (header::CACHE_CONTROL, cache)],
        )
            .into_response();
        response.headers_mut().extend(vary);
        return Ok(response);
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
    .map(|mut response: Response| {
        response.headers_mut().extend(vary);
        response
    })
}

/// `?format=` on a variant's URL.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FormatQuery {
    /// Serve this stored format (`webp`, `avif`) whatever `Accept` says; 404 when the variant
    /// is not stored in it.
    pub format: Option<String>,
}

/// The stored format a client gets without `?format=`: AVIF when `Accept` lists `image/avif`
/// (with a non-zero `q`) and the variant is stored as AVIF, else WebP, else the first stored
/// format. Wildcards (`image/*`, `*/*`) do not count: browsers that read AVIF name it.
fn negotiate(stored: Vec<db::VariantRow>, accept: &str) -> db::VariantRow {
    let accepts = |mime: &str| {
        accept.split(',').any(|range| {
            let mut parts = range.split(';').map(str::trim);
            parts.next().is_some_and(|m| m.eq_ignore_ascii_case(mime))
                && !parts.any(|p| {
                    p.strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                })
        })
    };
    let pick = |format: &str| stored.iter().position(|v| v.format == format);
    let at = pick("avif")
        .filter(|_| accepts("image/avif"))
        .or_else(|| pick("webp"))
        .unwrap_or(0);
    stored
        .into_iter()
        .nth(at)
        .expect("one stored variant at least")
}

/// Paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
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
    responses(
        (status = 200, body = ImageList, description = "a page of the caller's images"),
        (status = 400, body = ErrorBody, description = "a malformed query"),
        (status = 401, body = ErrorBody, description = "no or bad token"),
    ),
    security(("bearer" = [])))]
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
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "deleted, with its variants and job; its signed URLs now answer 404"),
        (status = 401, body = ErrorBody, description = "no or bad token"),
        (status = 404, body = ErrorBody, description = "no such image (or another user's)"),
    ),
    security(("bearer" = [])))]
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
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this action (`upload`, `delete`, `auth_failure`, `rate_limited`, `job_failed`).
    pub action: Option<String>,
    /// 1-based page number.
    pub page: Option<u32>,
    /// Items per page (20, at most 100).
    pub per_page: Option<u32>,
}

/// A page of the audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// The events, newest first.
    pub events: Vec<AuditEvent>,
    /// The page number.
    pub page: u32,
    /// Items per page.
    pub per_page: u32,
}

/// The audit trail, newest first (role `admin`).
#[utoipa::path(get, path = "/api/v1/audit", tag = "admin", params(AuditQuery),
    responses(
        (status = 200, body = AuditPage, description = "a page of events"),
        (status = 400, body = ErrorBody, description = "a malformed query"),
        (status = 401, body = ErrorBody, description = "no or bad token"),
        (status = 403, body = ErrorBody, description = "the token lacks role admin"),
    ),
    security(("bearer" = [])))]
pub async fn audit(
    State(state): State<AppState>,
    user: User,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
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
    Ok(Json(AuditPage {
        events,
        page,
        per_page,
    }))
}
