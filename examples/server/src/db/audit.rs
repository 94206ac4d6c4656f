//! The audit log: who did what, when, from where, and how it ended; and the hourly upload
//! limit, counted from it.

use serde::Serialize;

use super::{Db, HOUR_MS, now_ms};

/// One audit event.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct AuditEvent {
    /// When (ms since the epoch).
    pub at: i64,
    /// The user, when known.
    pub user_id: Option<String>,
    /// `upload`, `delete`, `auth_failure`, `rate_limited`, `job_failed`.
    pub action: String,
    /// The image concerned, if any.
    pub image_id: Option<String>,
    /// The client's address.
    pub client: Option<String>,
    /// `accepted`, `rejected`, `ok`, `failed`, ...
    pub outcome: String,
    /// A short detail (an error code, a reason).
    pub detail: Option<String>,
}

/// Appends an audit event.
pub async fn audit(
    db: &Db,
    user_id: Option<&str>,
    action: &str,
    image_id: Option<&str>,
    client: Option<&str>,
    outcome: &str,
    detail: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (at, user_id, action, image_id, client, outcome, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(now_ms())
    .bind(user_id)
    .bind(action)
    .bind(image_id)
    .bind(client)
    .bind(outcome)
    .bind(detail)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The newest audit events, newest first.
pub async fn audit_events(
    db: &Db,
    limit: i64,
    offset: i64,
    action: Option<&str>,
) -> Result<Vec<AuditEvent>, sqlx::Error> {
    sqlx::query_as(
        "SELECT at, user_id, action, image_id, client, outcome, detail FROM audit_log \
         WHERE ($1 IS NULL OR action = $1) ORDER BY id DESC LIMIT $2 OFFSET $3",
    )
    .bind(action)
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await
}

/// Accepted uploads of `user` in the last hour, and when the oldest of them leaves the window.
pub async fn uploads_in_window(
    db: &Db,
    user: &str,
    now: i64,
) -> Result<(i64, Option<i64>), sqlx::Error> {
    sqlx::query_as(
        "SELECT COUNT(*) AS n, MIN(at) AS oldest FROM audit_log \
         WHERE user_id = $1 AND action = 'upload' AND outcome = 'accepted' AND at > $2",
    )
    .bind(user)
    .bind(now - HOUR_MS)
    .fetch_one(&db.pool)
    .await
}

/// Seconds until `user` may upload again, given the oldest upload in the window.
pub fn retry_after_secs(oldest: Option<i64>, now: i64) -> u64 {
    oldest.map_or(1, |o| {
        ((o + HOUR_MS - now).max(0) as u64).div_ceil(1000).max(1)
    })
}
