//! Images, their variants and the idempotency keys of their uploads.

use serde::Serialize;

use super::audit::uploads_in_window_in;
use super::{Backend, Db, HOUR_MS, NewAuditEvent, begin_write, insert_audit, now_ms};

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
    /// The request's id (`X-Request-Id`), kept on the job.
    pub request_id: Option<&'a str>,
    /// The request's `Idempotency-Key` and the upload's fingerprint.
    pub idempotency: Option<(&'a str, &'a str)>,
}

/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * HOUR_MS;

/// The first upload made with an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IdempotentUpload {
    /// sha256 of its file name and bytes.
    pub fingerprint: String,
    /// The image it created.
    pub image_id: String,
    /// Its job.
    pub job_id: String,
}

/// The upload `user` made with `key` in the last 24 hours, if any.
pub async fn idempotent_upload(
    db: &Db,
    user: &str,
    key: &str,
) -> Result<Option<IdempotentUpload>, sqlx::Error> {
    idempotent_upload_in(&db.pool, user, key, now_ms()).await
}

async fn idempotent_upload_in<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    executor: E,
    user: &str,
    key: &str,
    now: i64,
) -> Result<Option<IdempotentUpload>, sqlx::Error> {
    sqlx::query_as(
        "SELECT fingerprint, image_id, job_id FROM idempotency_keys \
         WHERE user_id = $1 AND idempotency_key = $2 AND created_at > $3",
    )
    .bind(user)
    .bind(key)
    .bind(now - IDEMPOTENCY_WINDOW_MS)
    .fetch_optional(executor)
    .await
}

/// What [`insert_upload`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The upload is recorded.
    Yes,
    /// The user has reached the hourly limit; nothing was written.
    RateLimited,
    /// Another upload with the same `Idempotency-Key` was recorded first; nothing was written.
    Earlier(IdempotentUpload),
}

/// Records an upload — audit event, image, queued job and its idempotency key — in one
/// transaction, unless the user already has `limit` accepted uploads in the last hour or
/// another upload took the same idempotency key first.
///
/// The count and the insert run in one write transaction that holds the user's uploads
/// (SQLite's write lock, PostgreSQL's advisory lock on the user), so concurrent uploads
/// cannot both take the last slot.
pub async fn insert_upload(
    db: &Db,
    image: &NewImage<'_>,
    limit: u32,
    max_attempts: u32,
) -> Result<Recorded, sqlx::Error> {
    let now = now_ms();
    let mut tx = begin_write(db).await?;
    if db.backend == Backend::Postgres {
        // Serialises one user's uploads across every API process until this transaction ends
        // (SQLite's single writer does the same by itself).
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(image.user_id)
            .execute(&mut *tx)
            .await?;
    }
    if let Some((key, fingerprint)) = image.idempotency {
        // A key older than the window is free again; this user's expired keys go with it.
        sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1 AND created_at <= $2")
            .bind(image.user_id)
            .bind(now - IDEMPOTENCY_WINDOW_MS)
            .execute(&mut *tx)
            .await?;
        if let Some(earlier) = idempotent_upload_in(&mut *tx, image.user_id, key, now).await? {
            tx.rollback().await?;
            return Ok(Recorded::Earlier(earlier));
        }
        sqlx::query(
            "INSERT INTO idempotency_keys (user_id, idempotency_key, fingerprint, image_id, job_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(image.user_id)
        .bind(key)
        .bind(fingerprint)
        .bind(image.id)
        .bind(image.job_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    let (accepted, _) = uploads_in_window_in(&mut *tx, image.user_id, now).await?;
    if accepted >= i64::from(limit) {
        tx.rollback().await?;
        return Ok(Recorded::RateLimited);
    }
    let detail = format!("{} {} bytes", image.format, image.bytes);
    let event = NewAuditEvent {
        at: now,
        user_id: Some(image.user_id),
        action: "upload",
        image_id: Some(image.id),
        client: image.client,
        outcome: "accepted",
        detail: Some(&detail),
    };
    insert_audit(&mut *tx, &event).await?;
    sqlx::query(
        "INSERT INTO images (id, user_id, filename, format, bytes, original_key, original_sha256, \
         status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9)",
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
        "INSERT INTO jobs (id, image_id, user_id, status, attempts, max_attempts, run_after, \
         created_at, request_id) VALUES ($1, $2, $3, 'queued', 0, $4, $5, $6, $7)",
    )
    .bind(image.job_id)
    .bind(image.id)
    .bind(image.user_id)
    .bind(i64::from(max_attempts))
    .bind(now)
    .bind(now)
    .bind(image.request_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Recorded::Yes)
}

/// The original's key of an image.
pub async fn original_key(db: &Db, image_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT original_key FROM images WHERE id = $1")
        .bind(image_id)
        .fetch_optional(&db.pool)
        .await
}

/// A variant row.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
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

/// An image row.
#[derive(Debug, Clone, sqlx::FromRow)]
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

const IMAGE_COLUMNS: &str = "i.id, i.filename, i.format, i.bytes, i.original_key, i.status, \
    i.result_json, i.created_at, (SELECT j.id FROM jobs j WHERE j.image_id = i.id) AS job_id";

/// An image of `user` (none for another user's).
pub async fn image_for_user(
    db: &Db,
    id: &str,
    user: &str,
) -> Result<Option<ImageRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {IMAGE_COLUMNS} FROM images i WHERE i.id = $1 AND i.user_id = $2"
    ))
    .bind(id)
    .bind(user)
    .fetch_optional(&db.pool)
    .await
}

/// A page of `user`'s images, newest first, and the total.
pub async fn images_of_user(
    db: &Db,
    user: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ImageRow>, i64), sqlx::Error> {
    let rows = sqlx::query_as(&format!(
        "SELECT {IMAGE_COLUMNS} FROM images i WHERE i.user_id = $1 \
         ORDER BY i.created_at DESC, i.id LIMIT $2 OFFSET $3"
    ))
    .bind(user)
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM images WHERE user_id = $1")
        .bind(user)
        .fetch_one(&db.pool)
        .await?;
    Ok((rows, total))
}

/// The variants of an image, in the pipeline's order.
pub async fn variants_of(db: &Db, image_id: &str) -> Result<Vec<VariantRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT name, storage_key, content_type, width, height, format, bytes, sha256 FROM variants \
         WHERE image_id = $1 ORDER BY position",
    )
    .bind(image_id)
    .fetch_all(&db.pool)
    .await
}

/// Deletes an image of `user` with its variants and job, and records it in the audit log, in
/// one transaction. Returns the storage keys it used (the caller deletes them), or none if
/// there was no such image.
pub async fn delete_image(
    db: &Db,
    id: &str,
    user: &str,
    client: Option<&str>,
) -> Result<Option<Vec<String>>, sqlx::Error> {
    let mut tx = begin_write(db).await?;
    // On PostgreSQL the row lock makes a job completing at the same moment either finish first
    // (its variants are in the list read below) or fail on the deleted image.
    let lock = match db.backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE",
    };
    let original: Option<String> = sqlx::query_scalar(&format!(
        "SELECT original_key FROM images WHERE id = $1 AND user_id = $2{lock}"
    ))
    .bind(id)
    .bind(user)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(original) = original else {
        tx.rollback().await?;
        return Ok(None);
    };
    let mut keys: Vec<String> =
        sqlx::query_scalar("SELECT storage_key FROM variants WHERE image_id = $1")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
    keys.push(original);
    sqlx::query("DELETE FROM images WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let event = NewAuditEvent {
        at: now_ms(),
        user_id: Some(user),
        action: "delete",
        image_id: Some(id),
        client,
        outcome: "ok",
        detail: None,
    };
    insert_audit(&mut *tx, &event).await?;
    tx.commit().await?;
    keys.sort();
    keys.dedup();
    Ok(Some(keys))
}
