//! The service spread over processes — an API, `imgest-server worker` processes, Redis,
//! PostgreSQL and S3 (`moto_server`) — and the local servers it runs against.
//!
//! Each part skips with a message when its server is not installed, unless
//! `IMGEST_REQUIRE_SCALE=1`.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::services::{Moto, Postgres, Redis, required};
use common::{Server, png};
use serde_json::Value;

#[test]
fn local_services_start_and_restart() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    redis_survives_sigkill();
    postgres_answers();
    moto_lists_an_empty_bucket();
}

fn redis_survives_sigkill() {
    let t = Instant::now();
    let Some(mut redis) = Redis::start(true) else {
        assert!(
            !required(),
            "IMGEST_REQUIRE_SCALE=1 but redis-server is not installed"
        );
        eprintln!("SKIPPED: the Redis part of the scale test needs redis-server");
        return;
    };
    eprintln!(
        "redis-server started in {:?} at {}",
        t.elapsed(),
        redis.url()
    );
    assert_eq!(redis.command(&["SET", "imgest:k", "v1"]), "+OK\r\n");
    redis.kill();
    let t = Instant::now();
    redis.restart();
    eprintln!("redis-server restarted in {:?}", t.elapsed());
    assert_eq!(redis.command(&["GET", "imgest:k"]), "$2\r\nv1\r\n");
    assert_eq!(redis.command(&["GET", "imgest:missing"]), "$-1\r\n");
    assert_eq!(redis.command(&["DBSIZE"]), ":1\r\n");
}

fn postgres_answers() {
    let t = Instant::now();
    let Some(pg) = Postgres::start() else {
        assert!(
            !required(),
            "IMGEST_REQUIRE_SCALE=1 but postgres is not installed"
        );
        eprintln!("SKIPPED: the PostgreSQL part of the scale test needs postgres");
        return;
    };
    eprintln!("postgres started in {:?} at {}", t.elapsed(), pg.url());
    assert_eq!(pg.psql("select 1"), "1");
    let url = pg.create_database("imgest_scale");
    assert_eq!(
        url,
        format!("postgres://imgest@127.0.0.1:{}/imgest_scale", pg.port())
    );
    assert_eq!(
        pg.psql("select count(*) from pg_database where datname = 'imgest_scale'"),
        "1"
    );
}

fn moto_lists_an_empty_bucket() {
    let t = Instant::now();
    let Some(moto) = Moto::start() else {
        assert!(
            !required(),
            "IMGEST_REQUIRE_SCALE=1 but moto_server is not installed"
        );
        eprintln!("SKIPPED: the S3 part of the scale test needs moto_server");
        return;
    };
    eprintln!(
        "moto_server started in {:?} at {}",
        t.elapsed(),
        moto.endpoint()
    );
    moto.create_bucket("imgest-scale");
    assert_eq!(moto.keys("imgest-scale"), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// The service spread over processes: one API (or two), `imgest-server worker` processes, Redis,
// PostgreSQL and S3.

/// The scale tests share the machine's two cores: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Redis, PostgreSQL and an S3 server, with the environment every process of a cluster shares.
struct Cluster {
    redis: Redis,
    pg: Postgres,
    moto: Moto,
    env: Vec<(String, String)>,
}

const BUCKET: &str = "imgest-scale";

impl Cluster {
    /// `None` (with a message) when a server is not installed and `IMGEST_REQUIRE_SCALE` is unset.
    fn start(test: &str) -> Option<Cluster> {
        Cluster::start_with(test, true)
    }

    /// With Redis's append-only file (`aof`) or without persistence.
    fn start_with(test: &str, aof: bool) -> Option<Cluster> {
        let (Some(redis), Some(pg), Some(moto)) =
            (Redis::start(aof), Postgres::start(), Moto::start())
        else {
            assert!(
                !required(),
                "IMGEST_REQUIRE_SCALE=1 but redis-server, postgres or moto_server is missing"
            );
            eprintln!("SKIPPED: {test} needs redis-server, postgres and moto_server");
            return None;
        };
        moto.create_bucket(BUCKET);
        let db = pg.create_database("imgest");
        let env = [
            ("DATABASE_URL", db.as_str()),
            ("REDIS_URL", &redis.url()),
            ("STORAGE_BACKEND", "s3"),
            ("S3_BUCKET", BUCKET),
            ("S3_ENDPOINT", moto.endpoint()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("RATE_LIMIT_MAX_UPLOADS", "100000"),
            ("IMGEST_HEARTBEAT_SECS", "1"),
            ("IMGEST_JOB_LEASE_SECS", "4"),
            ("IMGEST_WORKERS", "1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Some(Cluster {
            redis,
            pg,
            moto,
            env,
        })
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn api(&self) -> Server {
        Server::start(&self.env())
    }

    fn worker(&self, slots: u32) -> Worker {
        let mut env = self.env();
        let slots = slots.to_string();
        env.push(("IMGEST_WORKERS", &slots));
        Worker::start(&env)
    }

    /// Jobs done per worker, from the database.
    fn done_by_worker(&self) -> BTreeMap<String, u64> {
        self.pg
            .psql_db(
                "imgest",
                "SELECT worker, COUNT(*) FROM jobs WHERE status = 'done' GROUP BY worker",
            )
            .lines()
            .filter_map(|l| l.split_once('|'))
            .map(|(w, n)| (w.to_string(), n.parse().unwrap()))
            .collect()
    }

    fn sql(&self, sql: &str) -> String {
        self.pg.psql_db("imgest", sql)
    }

    /// The jobs `worker` is processing now.
    fn held_by(&self, worker: &Worker) -> Vec<String> {
        self.sql(&format!(
            "SELECT id FROM jobs WHERE status = 'processing' AND worker = '{}'",
            worker.id
        ))
        .lines()
        .map(str::to_string)
        .collect()
    }

    /// Objects in the bucket per image: (originals, variants).
    fn objects(&self) -> BTreeMap<String, (usize, usize)> {
        let mut per_image: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for key in self.moto.keys(BUCKET) {
            let mut parts = key.split('/');
            match (parts.next(), parts.next()) {
                (Some("originals"), Some(id)) => {
                    per_image.entry(id.to_string()).or_default().0 += 1
                }
                (Some("variants"), Some(id)) => per_image.entry(id.to_string()).or_default().1 += 1,
                _ => panic!("unexpected object {key}"),
            }
        }
        per_image
    }
}

/// An `imgest-server worker` process.
struct Worker {
    child: Child,
    id: String,
}

impl Worker {
    fn start(env: &[(&str, &str)]) -> Worker {
        let mut cmd = Command::new(common::server_bin());
        cmd.arg("worker")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("JWT_SECRET_KEY", common::SECRET)
            .env("RUST_LOG", "imgest_server=warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start imgest-server worker");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let id = loop {
            let line = lines
                .next()
                .expect("worker exited before consuming")
                .unwrap();
            if let Some(rest) = line.strip_prefix("imgest-server worker ") {
                break rest.trim_end_matches(" consuming").to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Worker { child, id }
    }

    /// SIGKILL: no cleanup, no acknowledgement, no goodbye.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Small accepted corpus images (the debug build decodes slowly), or generated PNGs without
/// the corpus.
fn small_images() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if let Some(dir) = common::corpus_dir() {
        let expected: Value =
            serde_json::from_slice(&std::fs::read(dir.join("EXPECTED.json")).unwrap()).unwrap();
        for f in expected["files"].as_array().unwrap() {
            let path = f["path"].as_str().unwrap();
            let (w, h) = (
                f["decoded"]["width"].as_u64().unwrap_or(0),
                f["decoded"]["height"].as_u64().unwrap_or(0),
            );
            let bytes = std::fs::read(dir.join(path)).unwrap();
            if f["outcome"] == "accept" && bytes.len() <= 200_000 && w * h <= 1_000_000 {
                out.push((path.rsplit('/').next().unwrap().to_string(), bytes));
            }
        }
    }
    if out.is_empty() {
        for i in 0..20 {
            out.push((format!("generated-{i}.png"), png(64 + 37 * i, 48 + 23 * i)));
        }
    }
    out
}

/// Uploads `n` images (cycling through `images`) from four client threads; the accepted
/// (image id, job id) pairs.
fn upload_many(
    s: &Server,
    user: &str,
    images: &[(String, Vec<u8>)],
    n: usize,
) -> Vec<(String, String)> {
    let token = s.token(user);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let accepted = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let (name, bytes) = &images[i % images.len()];
                    let r = s.upload(&token, name, bytes.clone());
                    assert_eq!(r.status(), 202, "{name}");
                    let v: Value = r.json().unwrap();
                    accepted.lock().unwrap().push((
                        v["image_id"].as_str().unwrap().to_string(),
                        v["job_id"].as_str().unwrap().to_string(),
                    ));
                }
            });
        }
    });
    accepted.into_inner().unwrap()
}

/// Polls `ready` every `every` until it holds; panics with `what` after `timeout`.
fn wait_for(timeout: Duration, every: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < timeout, "{what} after {timeout:?}");
        std::thread::sleep(every);
    }
}

/// Waits until no job is queued or processing (per the database), at most `timeout`.
fn wait_all(c: &Cluster, total: usize, timeout: Duration) {
    let start = Instant::now();
    loop {
        let finished: usize = c
            .sql("SELECT COUNT(*) FROM jobs WHERE status IN ('done', 'failed')")
            .parse()
            .unwrap();
        if finished == total {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "{finished} of {total} jobs finished after {timeout:?}: {}",
            c.sql("SELECT status, COUNT(*) FROM jobs GROUP BY status")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every job done once: done, one attempt each (unless `retried` lists it), its 4 variant rows,
/// and in S3 exactly its original and its variants' distinct objects.
fn check_done_once(c: &Cluster, jobs: &[(String, String)], retried: &[String]) {
    let rows = c.sql("SELECT id, status, attempts FROM jobs ORDER BY id");
    let rows: BTreeMap<&str, (&str, u32)> = rows
        .lines()
        .map(|l| {
            let mut f = l.split('|');
            let id = f.next().unwrap();
            (id, (f.next().unwrap(), f.next().unwrap().parse().unwrap()))
        })
        .collect();
    assert_eq!(rows.len(), jobs.len());
    for (_, job) in jobs {
        let (status, attempts) = rows[job.as_str()];
        assert_eq!(status, "done", "job {job}");
        let expected = if retried.contains(job) { 2 } else { 1 };
        assert_eq!(attempts, expected, "job {job}: attempts");
    }
    let variants: usize = c.sql("SELECT COUNT(*) FROM variants").parse().unwrap();
    assert_eq!(variants, 4 * jobs.len(), "variant rows");
    // Variants with equal bytes share their content-addressed key.
    let keys: BTreeMap<String, usize> = c
        .sql("SELECT image_id, COUNT(DISTINCT storage_key) FROM variants GROUP BY image_id")
        .lines()
        .map(|l| l.split_once('|').unwrap())
        .map(|(id, n)| (id.to_string(), n.parse().unwrap()))
        .collect();
    let objects = c.objects();
    assert_eq!(objects.len(), jobs.len(), "images with objects in S3");
    for (image, _) in jobs {
        let distinct = keys[image.as_str()];
        assert!((1..=4).contains(&distinct));
        assert_eq!(
            objects.get(image),
            Some(&(1, distinct)),
            "objects of image {image}"
        );
    }
}

#[test]
fn api_and_three_workers_do_200_jobs_exactly_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = Cluster::start("the 1 API + 3 workers test") else {
        return;
    };
    let api = c.api();
    let workers: Vec<Worker> = (0..3).map(|_| c.worker(1)).collect();
    let images = small_images();
    let t = Instant::now();
    let jobs = upload_many(&api, "scale", &images, 200);
    wait_all(&c, 200, Duration::from_secs(300));
    let elapsed = t.elapsed();
    check_done_once(&c, &jobs, &[]);
    let by_worker = c.done_by_worker();
    eprintln!(
        "200 jobs ({} distinct images) in {elapsed:.1?} over 3 workers: {by_worker:?}",
        images.len()
    );
    assert_eq!(by_worker.values().sum::<u64>(), 200);
    for w in &workers {
        let n = by_worker.get(&w.id).copied().unwrap_or(0);
        assert!(
            n >= 20,
            "worker {} did only {n} of 200 jobs: {by_worker:?}",
            w.id
        );
    }
    // The stats list the live workers, with what each did, and an empty queue.
    // Heartbeats come every second: wait for the last ones to report every job.
    let start = Instant::now();
    let stats = loop {
        let stats = api.stats();
        let done: u64 = stats["workers"]["live"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["done"].as_u64().unwrap())
            .sum();
        if done == 200 || start.elapsed() > Duration::from_secs(10) {
            break stats;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let live = stats["workers"]["live"].as_array().unwrap();
    let mut ids: Vec<&str> = live.iter().map(|w| w["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    let mut expected: Vec<&str> = workers.iter().map(|w| w.id.as_str()).collect();
    expected.sort_unstable();
    assert_eq!(ids, expected, "{stats}");
    let done: u64 = live.iter().map(|w| w["done"].as_u64().unwrap()).sum();
    assert_eq!(done, 200, "{stats}");
    assert_eq!(stats["workers"]["total"], 3);
    // The original service's name for them: three live worker processes.
    assert_eq!(stats["celery"]["active_workers"], 3, "{stats}");
    assert_eq!(stats["queue"]["backend"], "redis");
    assert_eq!(stats["queue"]["waiting"], 0, "{stats}");
    assert_eq!(stats["status_breakdown"]["done"], 200);
    // A worker that stops leaves the list within three heartbeats.
    drop(workers);
    wait_for(
        Duration::from_secs(10),
        Duration::from_millis(200),
        "stopped workers still listed",
        || {
            api.stats()["workers"]["live"]
                .as_array()
                .unwrap()
                .is_empty()
        },
    );
}

#[test]
fn a_killed_workers_jobs_are_finished_by_the_others() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = Cluster::start("the worker kill test") else {
        return;
    };
    let api = c.api();
    // Larger images, so the victim is caught with jobs in hand.
    let images: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| (format!("big-{i}.png"), png(1400 + 16 * i, 1000)))
        .collect();
    let mut victim = c.worker(2);
    let jobs = upload_many(&api, "kill", &images, 24);
    // Wait until the victim holds two jobs, then kill it.
    wait_for(
        Duration::from_secs(120),
        Duration::from_millis(20),
        "the victim never held two jobs",
        || c.held_by(&victim).len() == 2,
    );
    victim.kill();
    // What it held when it died (it may have finished or taken a job since the query).
    let held = c.held_by(&victim);
    assert!(!held.is_empty(), "the victim held no job when killed");
    let survivors: Vec<Worker> = (0..2).map(|_| c.worker(1)).collect();
    wait_all(&c, jobs.len(), Duration::from_secs(120));
    check_done_once(&c, &jobs, &held);
    let by_worker = c.done_by_worker();
    eprintln!(
        "killed {} holding {held:?}; done by worker: {by_worker:?}",
        victim.id
    );
    for job in &held {
        let worker = c.sql(&format!("SELECT worker FROM jobs WHERE id = '{job}'"));
        assert!(
            survivors.iter().any(|w| w.id == worker),
            "job {job} finished by {worker}, not by a survivor"
        );
    }
    // The messages the victim held were acknowledged by the survivors: nothing in progress.
    wait_for(
        Duration::from_secs(30),
        Duration::from_millis(200),
        "queue not drained",
        || {
            let q = &api.stats()["queue"];
            q["waiting"] == 0 && q["in_progress"] == 0
        },
    );
}

#[test]
fn a_worker_stopped_with_sigterm_finishes_its_jobs_first() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = Cluster::start("the SIGTERM test") else {
        return;
    };
    let api = c.api();
    let images: Vec<(String, Vec<u8>)> = (0..2)
        .map(|i| (format!("big-{i}.png"), png(1400 + 16 * i, 1000)))
        .collect();
    let mut worker = c.worker(2);
    let jobs = upload_many(&api, "term", &images, 2);
    wait_for(
        Duration::from_secs(60),
        Duration::from_millis(20),
        "the worker took no job",
        || !c.held_by(&worker).is_empty(),
    );
    let pid = worker.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = worker.child.wait().unwrap();
    assert!(status.success(), "{status}");
    // Whatever it had taken, it finished, once, before exiting; nothing is left pending.
    let rows = c.sql(&format!(
        "SELECT status, attempts FROM jobs WHERE worker = '{}'",
        worker.id
    ));
    assert!(!rows.is_empty());
    for row in rows.lines() {
        assert_eq!(row, "done|1", "{rows}");
    }
    assert_eq!(api.stats()["queue"]["in_progress"], 0);
    // The other upload, if it was not taken, waits for the next worker.
    let finished = c.sql("SELECT COUNT(*) FROM jobs WHERE status = 'done'");
    let _next = c.worker(1);
    wait_all(&c, jobs.len(), Duration::from_secs(60));
    eprintln!("SIGTERM: {finished} of 2 jobs finished by the stopping worker");
}

#[test]
fn jobs_accepted_while_redis_is_down_finish_once_it_is_back() {
    redis_restart(true);
}

#[test]
fn jobs_survive_a_redis_that_lost_its_data() {
    redis_restart(false);
}

/// Redis killed mid-run and restarted, with its append-only file (`aof`) or empty.
fn redis_restart(aof: bool) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut c) = Cluster::start_with("the Redis restart test", aof) else {
        return;
    };
    let api = c.api();
    let _workers: Vec<Worker> = (0..2).map(|_| c.worker(1)).collect();
    let images = small_images();
    let mut jobs = upload_many(&api, "restart", &images, 20);
    c.redis.kill();
    // Accepted durably (database and storage), queued once Redis is back.
    let t = Instant::now();
    jobs.extend(upload_many(&api, "restart", &images, 10));
    eprintln!("10 uploads with Redis down took {:?}", t.elapsed());
    let stats = api.stats();
    assert_eq!(stats["queue"]["error"], "unavailable", "{stats}");
    std::thread::sleep(Duration::from_secs(2));
    c.redis.restart();
    wait_all(&c, jobs.len(), Duration::from_secs(120));
    check_done_once(&c, &jobs, &[]);
}

#[test]
fn a_job_whose_storage_is_gone_fails_after_three_retries() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut c) = Cluster::start("the retry test") else {
        return;
    };
    c.env.push(("IMGEST_RETRY_BASE_MS".into(), "300".into()));
    let api = c.api();
    let jobs = upload_many(&api, "retry", &[("a.png".into(), png(32, 32))], 1);
    // The S3 server goes away with the original before any worker runs.
    c.moto.kill();
    let _worker = c.worker(1);
    let token = api.token("retry");
    let job = api.wait_job(&token, &jobs[0].1, Duration::from_secs(60));
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["attempts"], 4, "the first attempt and 3 retries: {job}");
    assert_eq!(job["error_code"], "storage", "{job}");
    assert_eq!(job["error_message"], "storage unavailable", "{job}");
    // Each retry waited for its delay (300, 600, 1200 ms) and went back through Redis.
    let (started, finished) = (
        job["created_at"].as_i64().unwrap(),
        job["finished_at"].as_i64().unwrap(),
    );
    assert!(finished - started >= 2_100, "{job}");
}

#[test]
fn two_api_processes_on_postgres_share_the_rate_limit() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(pg) = Postgres::start() else {
        assert!(
            !required(),
            "IMGEST_REQUIRE_SCALE=1 but postgres is not installed"
        );
        eprintln!("SKIPPED: the shared rate limit test needs postgres");
        return;
    };
    let db = pg.create_database("imgest");
    let storage = tempfile::tempdir().unwrap();
    let env = [
        ("DATABASE_URL", db.as_str()),
        ("STORAGE_PATH", storage.path().to_str().unwrap()),
        ("RATE_LIMIT_MAX_UPLOADS", "50"),
        ("IMGEST_WORKERS", "1"),
    ];
    let apis = [Server::start(&env), Server::start(&env)];
    let token = apis[0].token("limited");
    let img = png(16, 16);
    // 60 uploads at once, alternating between the two processes: exactly 50 get through.
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..60)
            .map(|i| {
                let (api, token, img) = (&apis[i % 2], &token, img.clone());
                scope.spawn(move || api.upload(token, "x.png", img).status().as_u16())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let accepted = statuses.iter().filter(|&&s| s == 202).count();
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!((accepted, limited), (50, 10), "{statuses:?}");
    // Whichever process gets the next one refuses it.
    for api in &apis {
        assert_eq!(api.upload(&token, "x.png", img.clone()).status(), 429);
    }
    let counted: u64 = pg
        .psql_db(
            "imgest",
            "SELECT COUNT(*) FROM images WHERE user_id = 'limited'",
        )
        .parse()
        .unwrap();
    assert_eq!(counted, 50);
}

/// Images per second with 1, 2 and 3 worker processes (one job at a time each), for the
/// README's scaling section. Not a pass/fail test: run it with a release build,
/// `IMGEST_SERVER_BIN=target/release/imgest-server cargo test -p imgest-server --test scale
/// -- --ignored --nocapture` (`IMGEST_SCALE_UPLOADS`, 100 by default; `IMGEST_SCALE_IMAGES`).
#[test]
#[ignore = "a measurement; see its doc comment"]
fn throughput_with_one_two_and_three_workers() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let n: usize = std::env::var("IMGEST_SCALE_UPLOADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    // `IMGEST_SCALE_IMAGES`: a folder of images to upload instead of the small corpus files.
    let images = match std::env::var_os("IMGEST_SCALE_IMAGES") {
        Some(dir) => std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e != "md"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&p).unwrap())
            })
            .collect(),
        None => small_images(),
    };
    for workers in 1..=3 {
        let Some(c) = Cluster::start("the throughput measurement") else {
            return;
        };
        let api = c.api();
        let pool: Vec<Worker> = (0..workers).map(|_| c.worker(1)).collect();
        let t = Instant::now();
        upload_many(&api, "bench", &images, n);
        wait_all(&c, n, Duration::from_secs(3600));
        let secs = t.elapsed().as_secs_f64();
        eprintln!(
            "{workers} worker(s): {n} uploads in {secs:.2} s = {:.1} images/s; by worker {:?}",
            n as f64 / secs,
            c.done_by_worker().values().collect::<Vec<_>>()
        );
        drop(pool);
    }
}
