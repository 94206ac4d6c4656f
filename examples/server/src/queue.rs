//! The job queue on Redis (`REDIS_URL`): the API process only enqueues, `imgest-server worker`
//! processes consume.
//!
//! The database stays the record of every job; Redis carries them to the workers:
//! - a stream (`imgest:jobs`) with one consumer group (`workers`): the API adds the job's id
//!   after the upload is committed, a worker reads it (`XREADGROUP`), claims the job in the
//!   database by id (a lease with a token, as in the single-process setup), runs it, records the
//!   result, and only then acknowledges and deletes the message;
//! - a worker that dies leaves its message pending: after the visibility timeout (the lease,
//!   `IMGEST_JOB_LEASE_SECS`) another worker takes it over (`XAUTOCLAIM`) and, once the
//!   database lease has run out too, runs the job again. A live worker keeps both its lease and
//!   its message fresh while the pipeline runs;
//! - a sweeper (one worker at a time, elected with a short Redis lock) sends again what Redis
//!   may not hold: uploads accepted while Redis was down, retries whose delay has ended, jobs
//!   whose worker died. A message delivered twice runs once: only one claim of a job succeeds;
//! - each worker writes a heartbeat key that expires after three missed beats; `/api/v1/health/stats`
//!   lists the live ones and the queue's depth.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::db;

/// The stream of job ids.
pub const STREAM: &str = "imgest:jobs";
/// The consumer group every worker reads through.
pub const GROUP: &str = "workers";
const WORKERS: &str = "imgest:workers";
const SWEEP_LOCK: &str = "imgest:sweeper";
const EPOCH: &str = "imgest:epoch";
/// How long a worker's read blocks before it looks for abandoned messages again.
const BLOCK: Duration = Duration::from_secs(2);
/// How long a job must have been due (or its lease expired) before the sweeper sends it again.
const SWEEP_GRACE_MS: i64 = 2_000;

fn worker_key(id: &str) -> String {
    format!("imgest:worker:{id}")
}

/// A connection to the queue (it reconnects by itself after Redis restarts).
#[derive(Clone)]
pub struct RedisQueue {
    client: redis::Client,
    conn: ConnectionManager,
}

/// What the queue holds, from Redis.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct QueueDepth {
    /// Messages no worker has read yet.
    pub waiting: u64,
    /// Messages read and not yet acknowledged (jobs running, or abandoned by a dead worker).
    pub in_progress: u64,
}

/// A worker process as its last heartbeat described it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkerInfo {
    /// `host-pid-random`, also recorded on every job it takes.
    pub id: String,
    /// The machine's name.
    pub host: String,
    /// The process id.
    pub pid: u32,
    /// Jobs it runs at once.
    pub slots: u64,
    /// Jobs running now.
    pub busy: u64,
    /// Jobs it finished.
    pub done: u64,
    /// Attempts that failed (retried or final).
    pub failed: u64,
    /// When it started (ms since the epoch).
    pub started_at: i64,
    /// Its last heartbeat (ms since the epoch).
    pub last_seen: i64,
}

impl RedisQueue {
    /// Connects to `url` (fails when Redis cannot be reached now) and creates the consumer
    /// group if it does not exist.
    pub async fn connect(url: &str) -> Result<RedisQueue, String> {
        let client = redis::Client::open(url).map_err(|e| format!("REDIS_URL: {e}"))?;
        let conn = ConnectionManager::new_with_config(client.clone(), manager_config(None))
            .await
            .map_err(|e| format!("REDIS_URL: {e}"))?;
        let queue = RedisQueue { client, conn };
        queue
            .ensure_group()
            .await
            .map_err(|e| format!("REDIS_URL: {e}"))?;
        Ok(queue)
    }

    /// Creates the stream and its group unless they exist (after a restart without
    /// persistence, the next read recreates them).
    async fn ensure_group(&self) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let created: redis::RedisResult<()> = conn.xgroup_create_mkstream(STREAM, GROUP, "0").await;
        match created {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    /// Adds job `id` to the stream.
    pub async fn enqueue(&self, id: &str) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let _: String = conn.xadd(STREAM, "*", &[("job", id)]).await?;
        Ok(())
    }

    /// Acknowledges a message and deletes it (the stream holds only unfinished work).
    async fn ack(&self, entry: &str) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .cmd("XACK")
            .arg(STREAM)
            .arg(GROUP)
            .arg(entry)
            .ignore()
            .cmd("XDEL")
            .arg(STREAM)
            .arg(entry)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
    }

    /// Resets a message's idle time, so no other worker takes it over while its job runs.
    pub async fn touch(&self, entry: &str, consumer: &str) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("XCLAIM")
            .arg(STREAM)
            .arg(GROUP)
            .arg(consumer)
            .arg(0)
            .arg(entry)
            .arg("JUSTID")
            .query_async::<()>(&mut conn)
            .await
    }

    /// The queue's depth.
    pub async fn depth(&self) -> redis::RedisResult<QueueDepth> {
        let mut conn = self.conn.clone();
        let (len, pending): (u64, redis::Value) = redis::pipe()
            .cmd("XLEN")
            .arg(STREAM)
            .cmd("XPENDING")
            .arg(STREAM)
            .arg(GROUP)
            .query_async(&mut conn)
            .await?;
        let in_progress = match pending {
            redis::Value::Array(items) => match items.first() {
                Some(redis::Value::Int(n)) => *n as u64,
                _ => 0,
            },
            _ => 0,
        };
        Ok(QueueDepth {
            waiting: len.saturating_sub(in_progress),
            in_progress,
        })
    }

    /// The workers whose heartbeat has not expired; forgets the others.
    pub async fn workers(&self) -> redis::RedisResult<Vec<WorkerInfo>> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn.smembers(WORKERS).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| worker_key(id)).collect();
        let beats: Vec<Option<String>> =
            redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
        let mut live = Vec::new();
        for (id, beat) in ids.iter().zip(beats) {
            match beat.and_then(|b| serde_json::from_str::<WorkerInfo>(&b).ok()) {
                Some(w) => live.push(w),
                None => {
                    let _: redis::RedisResult<()> = conn.srem(WORKERS, id).await;
                }
            }
        }
        live.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(live)
    }
}

fn manager_config(response_timeout: Option<Duration>) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(response_timeout.unwrap_or(Duration::from_secs(5))))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1))
}

/// Sends an accepted upload's job to the workers and records when. A failure (Redis down) is
/// logged and left to the sweeper: the job is already durable in the database.
pub async fn dispatch(state: &AppState, queue: &RedisQueue, job_id: &str) {
    let at = db::now_ms();
    let sent = tokio::time::timeout(Duration::from_secs(3), queue.enqueue(job_id)).await;
    match sent {
        Ok(Ok(())) => {
            if let Err(e) = db::mark_dispatched(&state.db, job_id, at, true).await {
                tracing::warn!(job = %job_id, "recording a dispatch: {e}");
            }
        }
        Ok(Err(e)) => {
            tracing::warn!(job = %job_id, "queueing in Redis (the sweeper will resend): {e}")
        }
        Err(_) => {
            tracing::warn!(job = %job_id, "queueing in Redis timed out (the sweeper will resend)")
        }
    }
}

/// Counters a worker process reports in its heartbeat.
#[derive(Default)]
struct Counters {
    busy: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
}

/// Runs this process as a worker until Ctrl-C/SIGTERM: `state.config.workers` jobs at once,
/// a heartbeat, and a share of the sweeping. On a signal it stops reading and lets the jobs in
/// hand finish.
pub async fn run_worker(
    state: AppState,
    queue: RedisQueue,
    on_ready: impl FnOnce(&str),
) -> Result<(), String> {
    let id = format!(
        "{}-{}-{:04x}",
        hostname(),
        std::process::id(),
        rand::random::<u16>()
    );
    let counters = Arc::new(Counters::default());
    let started_at = db::now_ms();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    let beat = {
        let (queue, id, counters, state) =
            (queue.clone(), id.clone(), counters.clone(), state.clone());
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let every = state.config.heartbeat;
            loop {
                let info = WorkerInfo {
                    id: id.clone(),
                    host: hostname(),
                    pid: std::process::id(),
                    slots: state.config.workers as u64,
                    busy: counters.busy.load(Ordering::Relaxed),
                    done: counters.done.load(Ordering::Relaxed),
                    failed: counters.failed.load(Ordering::Relaxed),
                    started_at,
                    last_seen: db::now_ms(),
                };
                let mut conn = queue.conn.clone();
                let sent: redis::RedisResult<()> = redis::pipe()
                    .cmd("SET")
                    .arg(worker_key(&id))
                    .arg(serde_json::to_string(&info).unwrap_or_default())
                    .arg("PX")
                    .arg((every * 3).as_millis() as u64)
                    .ignore()
                    .cmd("SADD")
                    .arg(WORKERS)
                    .arg(&id)
                    .ignore()
                    .query_async(&mut conn)
                    .await;
                if let Err(e) = sent {
                    tracing::warn!("heartbeat: {e}");
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.changed() => break,
                }
            }
            let mut conn = queue.conn.clone();
            let _: redis::RedisResult<()> = redis::pipe()
                .cmd("DEL")
                .arg(worker_key(&id))
                .cmd("SREM")
                .arg(WORKERS)
                .arg(&id)
                .query_async(&mut conn)
                .await;
        })
    };
    let sweeper = {
        let (queue, id, state) = (queue.clone(), id.clone(), state.clone());
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = sweep(&state, &queue, &id).await {
                    tracing::warn!("sweeping: {e}");
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => break,
                }
            }
        })
    };
    let mut slots = Vec::new();
    for _ in 0..state.config.workers {
        let conn = ConnectionManager::new_with_config(
            queue.client.clone(),
            manager_config(Some(BLOCK + Duration::from_secs(5))),
        )
        .await
        .map_err(|e| format!("REDIS_URL: {e}"))?;
        let (queue, id, counters, state) =
            (queue.clone(), id.clone(), counters.clone(), state.clone());
        let stop = stop_rx.clone();
        slots.push(tokio::spawn(async move {
            consume(state, queue, conn, id, counters, stop).await;
        }));
    }
    on_ready(&id);
    crate::shutdown_signal().await;
    tracing::info!("stopping: finishing the jobs in hand");
    let _ = stop_tx.send(true);
    for s in slots {
        let _ = s.await;
    }
    let _ = sweeper.await;
    let _ = beat.await;
    Ok(())
}

/// One slot of a worker: takes over abandoned messages first, else reads a new one.
async fn consume(
    state: AppState,
    queue: RedisQueue,
    mut conn: ConnectionManager,
    consumer: String,
    counters: Arc<Counters>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let idle_ms = state.config.job_lease.as_millis() as u64 + 1_000;
    let mut cursor = String::from("0-0");
    while !*stop.borrow() {
        let next = next_message(&mut conn, &consumer, idle_ms, &mut cursor).await;
        match next {
            Ok(Some(msg)) => handle(&state, &queue, &consumer, &counters, msg).await,
            Ok(None) => {}
            Err(e) => {
                if e.code() == Some("NOGROUP") {
                    // Redis lost the stream (restarted without persistence): recreate it and
                    // let the sweeper send every queued job again.
                    tracing::warn!("the queue's stream is gone; recreating it");
                    let _ = queue.ensure_group().await;
                    if let Err(e) = db::forget_dispatches(&state.db).await {
                        tracing::warn!("marking queued jobs for resending: {e}");
                    }
                } else {
                    tracing::warn!("reading the queue: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// Takes over one message idle for `idle_ms` (its worker died), scanning the pending list from
/// `cursor` on (XAUTOCLAIM looks at a few entries per call); else reads a new one, blocking.
async fn next_message(
    conn: &mut ConnectionManager,
    consumer: &str,
    idle_ms: u64,
    cursor: &mut String,
) -> redis::RedisResult<Option<StreamId>> {
    let claimed: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
        .arg(STREAM)
        .arg(GROUP)
        .arg(consumer)
        .arg(idle_ms)
        .arg(cursor.as_str())
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    // "0-0" when the scan went round; messages deleted while pending need nothing.
    *cursor = claimed.next_stream_id;
    if let Some(msg) = claimed.claimed.into_iter().next() {
        tracing::info!(entry = %msg.id, "took over a message whose worker stopped answering");
        return Ok(Some(msg));
    }
    if *cursor != "0-0" {
        return Ok(None);
    }
    let read: Option<StreamReadReply> = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg(consumer)
        .arg("COUNT")
        .arg(1)
        .arg("BLOCK")
        .arg(BLOCK.as_millis() as u64)
        .arg("STREAMS")
        .arg(STREAM)
        .arg(">")
        .query_async(conn)
        .await?;
    Ok(read.and_then(|r| r.keys.into_iter().next()?.ids.into_iter().next()))
}

async fn handle(
    state: &AppState,
    queue: &RedisQueue,
    consumer: &str,
    counters: &Counters,
    msg: StreamId,
) {
    let job_id: Option<String> = msg.get("job");
    let Some(job_id) = job_id else {
        tracing::warn!(entry = %msg.id, "a message without a job id; dropped");
        let _ = queue.ack(&msg.id).await;
        return;
    };
    match db::claim_job_by_id(&state.db, &job_id, state.config.job_lease, consumer).await {
        Ok(Some(job)) => {
            counters.busy.fetch_add(1, Ordering::Relaxed);
            let beat = crate::jobs::Beat {
                queue,
                entry: &msg.id,
                consumer,
            };
            let outcome = crate::jobs::run(state, job, Some(beat)).await;
            counters.busy.fetch_sub(1, Ordering::Relaxed);
            match outcome {
                crate::jobs::Outcome::Done => counters.done.fetch_add(1, Ordering::Relaxed),
                crate::jobs::Outcome::Failed => counters.failed.fetch_add(1, Ordering::Relaxed),
                crate::jobs::Outcome::Other => 0,
            };
        }
        // Done, failed, deleted, held by a live worker, or not due yet (a retry's delay, or
        // the API's clock ahead of this one): whatever still has to happen to it, the sweeper
        // sends it again when due.
        Ok(None) => {
            if let Err(e) = db::undispatch(&state.db, &job_id).await {
                tracing::warn!(job = %job_id, "marking a job for resending: {e}");
            }
        }
        Err(e) => {
            // Left pending: another worker takes it over after the visibility timeout.
            tracing::warn!(job = %job_id, "claiming a job: {e}");
            tokio::time::sleep(Duration::from_secs(1)).await;
            return;
        }
    }
    if let Err(e) = queue.ack(&msg.id).await {
        // Still pending: taken over later, then acknowledged by whoever finds it finished.
        tracing::warn!(entry = %msg.id, "acknowledging: {e}");
    }
}

/// Sends again the jobs Redis may not hold, if this worker holds the sweeper's lock.
async fn sweep(state: &AppState, queue: &RedisQueue, id: &str) -> Result<(), String> {
    let mut conn = queue.conn.clone();
    let locked: Option<String> = redis::cmd("SET")
        .arg(SWEEP_LOCK)
        .arg(id)
        .arg("NX")
        .arg("PX")
        .arg(900)
        .query_async(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    if locked.is_none() {
        return Ok(());
    }
    // A Redis that lost its data (restarted without its append-only file, or a new one) has no
    // epoch key: every queued job may be gone from the stream, so all are sent again.
    let fresh: Option<String> = redis::cmd("SET")
        .arg(EPOCH)
        .arg(db::now_ms())
        .arg("NX")
        .query_async(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    if fresh.is_some() {
        db::forget_dispatches(&state.db)
            .await
            .map_err(|e| e.to_string())?;
    }
    let now = db::now_ms();
    // A queued job still undelivered after ten leases (at least 10 minutes) is sent again, in
    // case its message was lost some way no worker noticed.
    let resend_ms = (state.config.job_lease.as_millis() as i64 * 10).max(600_000);
    let ids = db::stranded_jobs(&state.db, now - SWEEP_GRACE_MS, now - resend_ms, 500)
        .await
        .map_err(|e| e.to_string())?;
    for job in ids {
        queue.enqueue(&job).await.map_err(|e| e.to_string())?;
        db::mark_dispatched(&state.db, &job, now, false)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(job = %job, "sent again to the queue");
    }
    Ok(())
}

/// The machine's name (`HOSTNAME`, else `/etc/hostname`).
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_string())
}
