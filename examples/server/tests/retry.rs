//! The worker pool in-process with a storage that fails on purpose: transient failures are
//! retried with backoff up to the attempt limit, and nothing is left half-stored.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use imgest::storage::{MemoryStorage, Storage};
use imgest_server::{AppState, Config, db, jobs};

/// Fails the first `fail` puts of variants; every get takes `slow`.
struct Flaky {
    inner: MemoryStorage,
    fail: usize,
    puts: AtomicUsize,
    slow: Duration,
}

impl Storage for Flaky {
    fn put(&self, key: &str, bytes: &[u8], content_type: &str) -> Result<(), imgest::Error> {
        if key.starts_with("variants/") && self.puts.fetch_add(1, Ordering::SeqCst) < self.fail {
            return Err(imgest::Error::Storage {
                detail: "injected failure".into(),
                source: None,
            });
        }
        self.inner.put(key, bytes, content_type)
    }
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, imgest::Error> {
        std::thread::sleep(self.slow);
        self.inner.get(key)
    }
    fn delete(&self, key: &str) -> Result<bool, imgest::Error> {
        self.inner.delete(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, imgest::Error> {
        self.inner.list(prefix)
    }
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 7])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

async fn run_with_failures(fail: usize) -> (db::JobView, Arc<Flaky>, AppState) {
    run_with(fail, Duration::ZERO, &[]).await
}

async fn run_with(
    fail: usize,
    slow: Duration,
    extra: &[(&'static str, &str)],
) -> (db::JobView, Arc<Flaky>, AppState) {
    let dir = tempfile::tempdir().unwrap();
    let env: HashMap<&str, String> = [
        ("JWT_SECRET_KEY", "retry-test-secret-0123456789".to_string()),
        (
            "DATABASE_PATH",
            dir.path().join("db.sqlite").display().to_string(),
        ),
        ("IMGEST_RETRY_BASE_MS", "20".to_string()),
        ("IMGEST_WORKERS", "1".to_string()),
    ]
    .into_iter()
    .chain(extra.iter().map(|(k, v)| (*k, v.to_string())))
    .collect();
    let config = Config::from_env(|k| env.get(k).cloned(), None).unwrap();
    let storage = Arc::new(Flaky {
        inner: MemoryStorage::new(),
        fail,
        puts: AtomicUsize::new(0),
        slow,
    });
    let state = AppState::new(config, Some(storage.clone() as Arc<dyn Storage>))
        .await
        .unwrap();
    let bytes = png(400, 300);
    storage
        .put("originals/aa/original", &bytes, "image/png")
        .unwrap();
    let image = db::NewImage {
        id: "img-1",
        job_id: "job-1",
        user_id: "u",
        filename: Some("a.png"),
        format: "png",
        bytes: bytes.len() as i64,
        original_key: "originals/aa/original",
        original_sha256: "aa",
        client: None,
        request_id: None,
        idempotency: None,
    };
    assert_eq!(
        db::insert_upload(&state.db, &image, 50, state.config.max_attempts)
            .await
            .unwrap(),
        db::Recorded::Yes
    );
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let workers = jobs::spawn_workers(&state, &stop_rx);
    let start = Instant::now();
    let job = loop {
        let job = db::job_for_user(&state.db, "job-1", "u")
            .await
            .unwrap()
            .unwrap();
        if job.status == "done" || job.status == "failed" {
            break job;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "job stuck: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    for w in workers {
        w.abort();
    }
    std::mem::forget(dir);
    (job, storage, state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried() {
    let (job, storage, state) = run_with_failures(2).await;
    assert_eq!((job.status.as_str(), job.attempts), ("done", 3), "{job:?}");
    // Four variants, two distinct: medium, large and original are all the 400 x 300 source.
    assert_eq!(storage.inner.list("variants/").unwrap().len(), 2);
    let metrics = state.metrics.render();
    assert!(
        metrics.contains("imgest_job_attempts_total{outcome=\"retried\"} 2"),
        "{metrics}"
    );
    // Each retry waited longer than the one before (20 ms, then 40 ms).
    let started = job.started_at.unwrap();
    assert!(started - job.created_at >= 60, "{job:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_failures_fail_after_four_attempts_leaving_nothing() {
    let (job, storage, state) = run_with_failures(usize::MAX).await;
    assert_eq!(
        (job.status.as_str(), job.attempts),
        ("failed", 4),
        "{job:?}"
    );
    assert_eq!(job.error_code.as_deref(), Some("storage"));
    assert_eq!(
        storage.inner.list("variants/").unwrap(),
        Vec::<String>::new()
    );
    let events = db::audit_events(&state.db, 10, 0, Some("job_failed"))
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].detail.as_deref(), Some("storage"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_job_keeps_its_lease() {
    // The lease is 1 s and reading the original takes 2.5 s: without renewal a second worker
    // would take the job over and it would run twice.
    let (job, _, state) = run_with(
        0,
        Duration::from_millis(2500),
        &[("IMGEST_JOB_LEASE_SECS", "1"), ("IMGEST_WORKERS", "2")],
    )
    .await;
    assert_eq!((job.status.as_str(), job.attempts), ("done", 1), "{job:?}");
    let metrics = state.metrics.render();
    assert!(
        metrics.contains("imgest_job_attempts_total{outcome=\"done\"} 1"),
        "{metrics}"
    );
}

/// An RGB PNG of noise: a full-size WebP of it takes over a second.
fn noise_png(w: u32, h: u32) -> Vec<u8> {
    let mut state = 0x2545_F491u32;
    let img = image::RgbImage::from_fn(w, h, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [r, g, b, _] = state.to_le_bytes();
        image::Rgb([r, g, b])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// `IMGEST_JOB_TIMEOUT_SECS`: a job whose pipeline runs past it fails with `timeout` after one
/// attempt (the same input would time out again), frees its worker at once, and the next job
/// runs; the stats and the metrics count it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_past_its_time_budget_fails_once_and_the_next_one_runs() {
    let dir = tempfile::tempdir().unwrap();
    let env: HashMap<&str, String> = [
        (
            "JWT_SECRET_KEY",
            "timeout-test-secret-0123456789".to_string(),
        ),
        (
            "DATABASE_PATH",
            dir.path().join("db.sqlite").display().to_string(),
        ),
        ("IMGEST_RETRY_BASE_MS", "20".to_string()),
        ("IMGEST_WORKERS", "1".to_string()),
        ("IMGEST_JOB_TIMEOUT_SECS", "0.25".to_string()),
    ]
    .into_iter()
    .collect();
    let config = Config::from_env(|k| env.get(k).cloned(), None).unwrap();
    assert_eq!(config.job_timeout, Duration::from_millis(250));
    let storage = Arc::new(MemoryStorage::new());
    let state = AppState::new(config, Some(storage.clone() as Arc<dyn Storage>))
        .await
        .unwrap();
    for (i, bytes) in [noise_png(1700, 1700), png(400, 300)].iter().enumerate() {
        let key = format!("originals/{i}/original");
        storage.put(&key, bytes, "image/png").unwrap();
        let (id, job_id) = (format!("img-{i}"), format!("job-{i}"));
        let image = db::NewImage {
            id: &id,
            job_id: &job_id,
            user_id: "u",
            filename: Some("a.png"),
            format: "png",
            bytes: bytes.len() as i64,
            original_key: &key,
            original_sha256: "aa",
            client: None,
            request_id: None,
            idempotency: None,
        };
        db::insert_upload(&state.db, &image, 50, state.config.max_attempts)
            .await
            .unwrap();
    }
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let workers = jobs::spawn_workers(&state, &stop_rx);
    let start = Instant::now();
    let finished = |id: &'static str| {
        let state = state.clone();
        async move {
            loop {
                let job = db::job_for_user(&state.db, id, "u").await.unwrap().unwrap();
                if job.status == "done" || job.status == "failed" {
                    return job;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    let slow = tokio::time::timeout(Duration::from_secs(30), finished("job-0"))
        .await
        .expect("the slow job ends");
    let next = tokio::time::timeout(Duration::from_secs(30), finished("job-1"))
        .await
        .expect("the next job ends");
    for w in workers {
        w.abort();
    }
    assert_eq!(
        (
            slow.status.as_str(),
            slow.attempts,
            slow.error_code.as_deref()
        ),
        ("failed", 1, Some("timeout")),
        "{slow:?}"
    );
    assert!(
        slow.error_message
            .as_deref()
            .is_some_and(|m| m.contains("250 ms budget")),
        "{slow:?}"
    );
    // Stopped soon after its 250 ms (the whole run takes over a second here).
    let ran = slow.finished_at.unwrap() - slow.started_at.unwrap();
    assert!(ran < 900, "the timed-out job ran {ran} ms");
    assert_eq!(
        (next.status.as_str(), next.attempts),
        ("done", 1),
        "{next:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(10));
    let stats = db::stats(&state.db).await.unwrap();
    assert_eq!((stats.failed_24h, stats.timed_out_24h), (1, 1));
    let metrics = state.metrics.render();
    assert!(
        metrics.contains("imgest_job_attempts_total{outcome=\"timed_out\"} 1"),
        "{metrics}"
    );
    std::mem::forget(dir);
}
