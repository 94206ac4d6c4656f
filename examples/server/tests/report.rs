//! The original service's verification commands, run as its deployment report and guide wrote
//! them (`curl` against the built binary; only the host and port differ): health, statistics
//! with every key of the report, the monitoring page that replaces Flower, and upload →
//! process → retrieve with a token carrying only `sub` and `exp`, the 51st upload of an hour,
//! and a text file posted as an image.
//!
//! Needs `curl` (skipped without it, unless `IMGEST_REQUIRE_CURL=1`, which `.ci/run` sets).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{SECRET, Server, png};
use serde_json::Value;

/// Runs one shell command line with `TOKEN` and `HOST` set; its stdout.
fn sh(line: &str, dir: &Path, token: &str, host: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(line)
        .current_dir(dir)
        .env("TOKEN", token)
        .env("HOST", host)
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "{line}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn curl_available() -> bool {
    let found = Command::new("curl").arg("--version").output().is_ok();
    let required = std::env::var("IMGEST_REQUIRE_CURL").is_ok_and(|v| v == "1");
    assert!(
        found || !required,
        "IMGEST_REQUIRE_CURL=1 but curl is not installed"
    );
    if !found {
        eprintln!("SKIPPED: the report's commands need curl");
    }
    found
}

fn is_iso_utc(v: &Value) -> bool {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .is_some_and(|t| t.offset().local_minus_utc() == 0)
}

#[test]
fn the_original_reports_commands_pass_as_written() {
    if !curl_available() {
        return;
    }
    let s = Server::start(&[]);
    // `http://127.0.0.1:PORT` → `localhost:PORT`, as the report wrote it.
    let host = s.base.replace("http://127.0.0.1", "localhost");
    let dir = tempfile::tempdir().unwrap();
    // A token as the original service issued them: HS256, `sub` and `exp`, nothing else.
    let exp = imgest_server::db::now_ms() as u64 / 1000 + 3600;
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"sub": "test-user-123", "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let run = |line: &str| sh(line, dir.path(), &token, &host);

    // Test 1: API health check.
    let health = json(&run("curl -s http://$HOST/api/v1/health"));
    assert_eq!(health["status"], "healthy", "{health}");
    assert!(health["service"].is_string() && health["version"].is_string());
    assert!(is_iso_utc(&health["timestamp"]), "{health}");

    // Test 2: statistics, every key of the report with its type.
    let stats = json(&run("curl -s http://$HOST/api/v1/health/stats"));
    assert!(stats["status_breakdown"].is_object(), "{stats}");
    assert_eq!(stats["performance_24h"]["completed_24h"], 0, "{stats}");
    assert!(stats["performance_24h"]["avg_processing_time_seconds"].is_null());
    assert_eq!(stats["storage"]["total_images"], 0);
    assert_eq!(stats["storage"]["total_jobs"], 0);
    assert_eq!(stats["celery"]["active_workers"], 1, "{stats}");
    assert_eq!(stats["celery"]["active_tasks"], 0);
    assert!(is_iso_utc(&stats["timestamp"]), "{stats}");

    // Test 3: the monitoring UI (Flower's place).
    let page = run("curl -s http://$HOST/dashboard");
    assert!(
        page.contains("<title>imgest-server · monitoring</title>"),
        "{page}"
    );

    // Upload → process → retrieve, as the original's guide does it (its `bucket` and
    // `metadata` form fields are accepted and ignored).
    std::fs::create_dir(dir.path().join("test_images")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../cli/sample/sunrise.jpg"),
        dir.path().join("test_images/test_500x500.jpg"),
    )
    .unwrap();
    let response = json(&run(r#"curl -s -X POST http://$HOST/api/v1/images/upload \
          -H "Authorization: Bearer $TOKEN" \
          -F "file=@test_images/test_500x500.jpg" \
          -F "bucket=test-uploads" \
          -F "metadata={\"context\":\"test\"}""#));
    let job_id = response["job_id"].as_str().expect("job_id").to_string();
    let image_id = response["image_id"].as_str().expect("image_id").to_string();
    // Poll status (repeat until completed). Unlike the original, a job is its owner's only.
    let start = Instant::now();
    let job = loop {
        let job = json(&run(&format!(
            r#"curl -s -H "Authorization: Bearer $TOKEN" http://$HOST/api/v1/images/jobs/{job_id}"#
        )));
        if job["status"] == "done" || job["status"] == "failed" {
            break job;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "{job}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(job["status"], "done", "{job}");
    let image = json(&run(&format!(
        r#"curl -s -H "Authorization: Bearer $TOKEN" http://$HOST/api/v1/images/{image_id}"#
    )));
    let thumb = &image["variants"][0];
    assert_eq!(thumb["name"], "thumbnail", "{image}");
    // The thumbnail as a page would fetch it: its signed URL, no token.
    run(&format!(
        r#"curl -s -f -o thumb.webp "http://$HOST{}""#,
        thumb["signed_url"].as_str().unwrap()
    ));
    let bytes = std::fs::read(dir.path().join("thumb.webp")).unwrap();
    assert_eq!(
        common::dimensions(&bytes),
        (
            thumb["width"].as_u64().unwrap() as u32,
            thumb["height"].as_u64().unwrap() as u32
        )
    );
    let stats = json(&run("curl -s http://$HOST/api/v1/health/stats"));
    assert_eq!(stats["status_breakdown"]["done"], 1, "{stats}");
    assert_eq!(stats["performance_24h"]["completed_24h"], 1);
    assert!(stats["performance_24h"]["avg_processing_time_seconds"].as_f64() > Some(0.0));
    assert_eq!(stats["storage"]["total_images"], 1);
    assert_eq!(stats["storage"]["total_jobs"], 1);

    // Test invalid file type: 415.
    let code = run(r#"echo "not an image" > fake.txt
        curl -s -o /dev/null -w "%{http_code}" -X POST http://$HOST/api/v1/images/upload \
          -H "Authorization: Bearer $TOKEN" -F "file=@fake.txt" -F "bucket=test-uploads""#);
    assert_eq!(code, "415");

    // Test rate limiting (send 51 requests quickly): 429 on the 51st. (Small files: the jobs
    // are not what is tested here.)
    std::fs::write(dir.path().join("test_images/small.png"), png(8, 8)).unwrap();
    let codes = run(r#"for i in $(seq 2 51); do
          curl -s -o /dev/null -w "%{http_code}\n" -X POST http://$HOST/api/v1/images/upload \
            -H "Authorization: Bearer $TOKEN" -F "file=@test_images/small.png" -F "bucket=test-uploads"
        done"#);
    let codes: Vec<&str> = codes.lines().collect();
    assert_eq!(codes.len(), 50);
    assert!(codes[..49].iter().all(|c| *c == "202"), "{codes:?}");
    assert_eq!(codes[49], "429", "{codes:?}");
}
