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

#[cfg(test)]
mod tests {
    use super::super::testing;
    use super::*;

    fn event<'a>(at: i64, user: &'a str, action: &'a str, outcome: &'a str) -> NewAuditEvent<'a> {
        NewAuditEvent {
            at,
            user_id: Some(user),
            action,
            image_id: None,
            client: Some("10.0.0.1"),
            outcome,
            detail: Some("why"),
        }
    }

    #[tokio::test]
    async fn insert_audit_writes_through_the_pool_and_transactions() {
        let (_tmp, db) = testing::db().await;
        insert_audit(&db.pool, &event(1, "u", "delete", "ok"))
            .await
            .unwrap();
        let mut tx = db.pool.begin().await.unwrap();
        insert_audit(&mut *tx, &event(2, "u", "upload", "rejected"))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut tx = db.pool.begin().await.unwrap();
        insert_audit(&mut *tx, &event(3, "u", "upload", "rolled back"))
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        audit(&db, None, "auth_failure", None, None, "rejected", None)
            .await
            .unwrap();

        let all = audit_events(&db, 10, 0, None).await.unwrap();
        let seen: Vec<(&str, &str)> = all
            .iter()
            .map(|e| (e.action.as_str(), e.outcome.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("auth_failure", "rejected"),
                ("upload", "rejected"),
                ("delete", "ok")
            ]
        );
        let newest = &all[0];
        assert_eq!(
            (newest.user_id.as_deref(), newest.detail.as_deref()),
            (None, None)
        );
        assert!(newest.at >= now_ms() - 60_000, "{newest:?}");
        let first = &all[2];
        assert_eq!(first.at, 1);
        assert_eq!(first.user_id.as_deref(), Some("u"));
        assert_eq!(first.client.as_deref(), Some("10.0.0.1"));
        assert_eq!(first.detail.as_deref(), Some("why"));
        assert_eq!(first.image_id, None);

        let uploads = audit_events(&db, 10, 0, Some("upload")).await.unwrap();
        assert_eq!(uploads.len(), 1);
        assert_eq!(uploads[0].at, 2);
        let paged = audit_events(&db, 1, 1, None).await.unwrap();
        assert_eq!(paged[0].action, "upload");
    }

    #[tokio::test]
    async fn the_window_counts_accepted_uploads_of_the_last_hour() {
        let (_tmp, db) = testing::db().await;
        let now = now_ms();
        for e in [
            event(now - 2 * HOUR_MS, "u", "upload", "accepted"),
            event(now - 30 * 60_000, "u", "upload", "accepted"),
            event(now - 10 * 60_000, "u", "upload", "accepted"),
            event(now - 5 * 60_000, "u", "upload", "rejected"),
            event(now - 5 * 60_000, "u", "delete", "ok"),
            event(now - 5 * 60_000, "v", "upload", "accepted"),
        ] {
            insert_audit(&db.pool, &e).await.unwrap();
        }
        let (n, oldest) = uploads_in_window(&db, "u", now).await.unwrap();
        assert_eq!((n, oldest), (2, Some(now - 30 * 60_000)));
        assert_eq!(retry_after_secs(oldest, now), 30 * 60);
        assert_eq!(uploads_in_window(&db, "w", now).await.unwrap(), (0, None));
        assert_eq!(retry_after_secs(None, now), 1);
    }
}
