//! The service on S3: a local S3 server (`moto_server`), the same upload → variants → delete.
//!
//! Skips with a message when `moto_server` is not installed, unless `IMGEST_REQUIRE_S3=1`
//! (set by `.ci/run`, which installs it).

mod common;

use std::time::Duration;

use common::services::Moto;
use common::{Server, png};
use serde_json::Value;

#[test]
fn s3_backend_end_to_end() {
    let required = std::env::var("IMGEST_REQUIRE_S3").is_ok_and(|v| v == "1");
    let Some(moto) = Moto::start() else {
        assert!(
            !required,
            "IMGEST_REQUIRE_S3=1 but moto_server is not installed"
        );
        eprintln!("SKIPPED: the S3 test needs moto_server (pip install 'moto[server]')");
        return;
    };
    let endpoint = moto.endpoint();
    let bucket = "imgest-test";
    moto.create_bucket(bucket);
    let s = Server::start(&[
        ("STORAGE_BACKEND", "s3"),
        ("S3_BUCKET", bucket),
        ("S3_ENDPOINT", endpoint),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
    ]);
    let token = s.token("s3user");
    let r = s.upload(&token, "a.png", png(1800, 1200));
    assert_eq!(r.status(), 202);
    let accepted: Value = r.json().unwrap();
    let job = s.wait_job(
        &token,
        accepted["job_id"].as_str().unwrap(),
        Duration::from_secs(120),
    );
    assert_eq!(job["status"], "done", "{job}");
    let image = s.json(
        &token,
        &format!("/api/v1/images/{}", accepted["image_id"].as_str().unwrap()),
    );
    let mut sizes = Vec::new();
    for v in image["variants"].as_array().unwrap() {
        let bytes = s.get(&token, v["url"].as_str().unwrap()).bytes().unwrap();
        assert!(
            !common::webp_chunks(&bytes)
                .iter()
                .any(|c| c == "EXIF" || c == "XMP ")
        );
        sizes.push(common::dimensions(&bytes));
    }
    assert_eq!(sizes, [(150, 100), (800, 533), (1600, 1067), (1800, 1200)]);
    let stored = moto.keys(bucket);
    assert_eq!(stored.len(), 5, "{stored:?}");
    assert_eq!(
        stored.iter().filter(|k| k.starts_with("variants/")).count(),
        4
    );
    assert_eq!(s.stats()["storage"]["backend"], "s3");
    // Nothing on local disk.
    assert_eq!(s.stored_files(), Vec::<String>::new());
    let r = s
        .client
        .delete(s.url(&format!(
            "/api/v1/images/{}",
            accepted["image_id"].as_str().unwrap()
        )))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(moto.keys(bucket), Vec::<String>::new());
}
