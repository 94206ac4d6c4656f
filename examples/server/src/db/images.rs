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

#[cfg(test)]
mod tests {
    use super::super::testing::{self, ids, image, upload, variant};
    use super::super::{audit_events, claim_job, complete_job, job_for_user};
    use super::*;

    #[tokio::test]
    async fn an_upload_records_its_image_job_and_audit_event() {
        let (_tmp, db) = testing::db().await;
        assert_eq!(upload(&db, "u", 1).await, Recorded::Yes);
        let row = image_for_user(&db, "img-1", "u").await.unwrap().unwrap();
        assert_eq!(
            (
                row.status.as_str(),
                row.format.as_str(),
                row.bytes,
                row.filename.as_deref(),
                row.original_key.as_str(),
                row.job_id.as_deref(),
                row.result_json.as_deref(),
            ),
            (
                "queued",
                "png",
                100,
                Some("a.png"),
                "originals/1",
                Some("job-1"),
                None
            )
        );
        assert!(image_for_user(&db, "img-1", "v").await.unwrap().is_none());
        let job = job_for_user(&db, "job-1", "u").await.unwrap().unwrap();
        assert_eq!(
            (job.status.as_str(), job.attempts, job.max_attempts),
            ("queued", 0, 4)
        );
        assert_eq!(job.request_id.as_deref(), Some("req-1"));
        let events = audit_events(&db, 10, 0, Some("upload")).await.unwrap();
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(
            (
                e.user_id.as_deref(),
                e.image_id.as_deref(),
                e.client.as_deref(),
                e.outcome.as_str(),
                e.detail.as_deref()
            ),
            (
                Some("u"),
                Some("img-1"),
                Some("127.0.0.1"),
                "accepted",
                Some("png 100 bytes")
            )
        );
        assert_eq!(
            original_key(&db, "img-1").await.unwrap().as_deref(),
            Some("originals/1")
        );
        assert_eq!(original_key(&db, "img-2").await.unwrap(), None);
    }

    #[tokio::test]
    async fn the_limit_refuses_an_upload_and_writes_nothing() {
        let (_tmp, db) = testing::db().await;
        for n in 1..=2 {
            let ids = ids(n);
            assert_eq!(
                insert_upload(&db, &image(&ids, "u", n), 2, 4)
                    .await
                    .unwrap(),
                Recorded::Yes
            );
        }
        let ids3 = ids(3);
        assert_eq!(
            insert_upload(&db, &image(&ids3, "u", 3), 2, 4)
                .await
                .unwrap(),
            Recorded::RateLimited
        );
        assert!(image_for_user(&db, "img-3", "u").await.unwrap().is_none());
        assert!(job_for_user(&db, "job-3", "u").await.unwrap().is_none());
        assert_eq!(audit_events(&db, 10, 0, None).await.unwrap().len(), 2);
        // Another user has slots of their own.
        assert_eq!(
            insert_upload(&db, &image(&ids3, "v", 3), 2, 4)
                .await
                .unwrap(),
            Recorded::Yes
        );
    }

    #[tokio::test]
    async fn an_idempotency_key_keeps_the_first_upload() {
        let (_tmp, db) = testing::db().await;
        let (first, second) = (ids(1), ids(2));
        let with_key = |ids, user| NewImage {
            idempotency: Some(("key-1", "fingerprint-1")),
            ..image(ids, user, 1)
        };
        assert_eq!(
            insert_upload(&db, &with_key(&first, "u"), 50, 4)
                .await
                .unwrap(),
            Recorded::Yes
        );
        let earlier = IdempotentUpload {
            fingerprint: "fingerprint-1".into(),
            image_id: "img-1".into(),
            job_id: "job-1".into(),
        };
        assert_eq!(
            insert_upload(&db, &with_key(&second, "u"), 50, 4)
                .await
                .unwrap(),
            Recorded::Earlier(earlier.clone())
        );
        assert!(image_for_user(&db, "img-2", "u").await.unwrap().is_none());
        assert_eq!(
            idempotent_upload(&db, "u", "key-1").await.unwrap(),
            Some(earlier)
        );
        assert_eq!(idempotent_upload(&db, "u", "key-2").await.unwrap(), None);
        assert_eq!(idempotent_upload(&db, "v", "key-1").await.unwrap(), None);
        // The same key is another user's own.
        assert_eq!(
            insert_upload(&db, &with_key(&second, "v"), 50, 4)
                .await
                .unwrap(),
            Recorded::Yes
        );
        let (_, total) = images_of_user(&db, "u", 10, 0).await.unwrap();
        assert_eq!(total, 1);
    }

    #[tokio::test]
    async fn images_are_listed_newest_first_and_deleted_with_their_objects() {
        let (_tmp, db) = testing::db().await;
        for n in 1..=3 {
            upload(&db, "u", n).await;
            // Distinct creation times.
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        upload(&db, "v", 4).await;
        let (rows, total) = images_of_user(&db, "u", 2, 0).await.unwrap();
        let listed: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!((listed, total), (vec!["img-3", "img-2"], 3));
        let (rows, _) = images_of_user(&db, "u", 2, 2).await.unwrap();
        assert_eq!(rows[0].id, "img-1");

        let job = claim_job(&db, std::time::Duration::from_secs(60), "w")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.image_id, "img-1");
        let variants = [
            variant("thumbnail", "variants/b", 7),
            variant("medium", "variants/a", 9),
            variant("original", "variants/a", 9),
        ];
        assert!(complete_job(&db, &job, &variants, "{}", 5).await.unwrap());
        let names: Vec<String> = variants_of(&db, "img-1")
            .await
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(names, ["thumbnail", "medium", "original"]);

        assert_eq!(delete_image(&db, "img-1", "v", None).await.unwrap(), None);
        let keys = delete_image(&db, "img-1", "u", Some("10.0.0.2"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(keys, ["originals/1", "variants/a", "variants/b"]);
        assert!(image_for_user(&db, "img-1", "u").await.unwrap().is_none());
        assert!(job_for_user(&db, "job-1", "u").await.unwrap().is_none());
        assert!(variants_of(&db, "img-1").await.unwrap().is_empty());
        let deletes = audit_events(&db, 10, 0, Some("delete")).await.unwrap();
        assert_eq!(deletes.len(), 1);
        assert_eq!(
            (
                deletes[0].user_id.as_deref(),
                deletes[0].image_id.as_deref(),
                deletes[0].client.as_deref(),
                deletes[0].outcome.as_str()
            ),
            (Some("u"), Some("img-1"), Some("10.0.0.2"), "ok")
        );
        assert_eq!(delete_image(&db, "img-1", "u", None).await.unwrap(), None);
    }
}
