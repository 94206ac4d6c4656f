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

/// An audit event to append (see [`AuditEvent`] for the fields).
#[derive(Debug, Clone, Copy)]
pub struct NewAuditEvent<'a> {
    /// When (ms since the epoch).
    pub at: i64,
    /// The user, when known.
    pub user_id: Option<&'a str>,
    /// What was done.
    pub action: &'a str,
    /// The image concerned, if any.
    pub image_id: Option<&'a str>,
    /// The client's address.
    pub client: Option<&'a str>,
    /// How it ended.
    pub outcome: &'a str,
    /// A short detail.
    pub detail: Option<&'a str>,
}

/// Appends an audit event through `executor`: the pool, or the transaction that does what it
/// records.
pub async fn insert_audit<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    executor: E,
    event: &NewAuditEvent<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (at, user_id, action, image_id, client, outcome, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(event.at)
    .bind(event.user_id)
    .bind(event.action)
    .bind(event.image_id)
    .bind(event.client)
    .bind(event.outcome)
    .bind(event.detail)
    .execute(executor)
    .await?;
    Ok(())
}

/// Appends an audit event dated now.
pub async fn audit(
    db: &Db,
    user_id: Option<&str>,
    action: &str,
    image_id: Option<&str>,
    client: Option<&str>,
    outcome: &str,
    detail: Option<&str>,
) -> Result<(), sqlx::Error> {
    let event = NewAuditEvent {
        at: now_ms(),
        user_id,
        action,
        image_id,
        client,
        outcome,
        detail,
    };
    insert_audit(&db.pool, &event).await
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
    uploads_in_window_in(&db.pool, user, now).await
}

/// [`uploads_in_window`] through `executor`.
pub(super) async fn uploads_in_window_in<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    executor: E,
    user: &str,
    now: i64,
) -> Result<(i64, Option<i64>), sqlx::Error> {
    sqlx::query_as(
        "SELECT COUNT(*) AS n, MIN(at) AS oldest FROM audit_log \
         WHERE user_id = $1 AND action = 'upload' AND outcome = 'accepted' AND at > $2",
    )
    .bind(user)
    .bind(now - HOUR_MS)
    .fetch_one(executor)
    .await
}

/// Seconds until `user` may upload again, given the oldest upload in the window.
pub fn retry_after_secs(oldest: Option<i64>, now: i64) -> u64 {
    oldest.map_or(1, |o| {
        ((o + HOUR_MS - now).max(0) as u64).div_ceil(1000).max(1)
    })
}
