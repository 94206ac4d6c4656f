//! What real clients need beyond the upload cycle: the original service's tokens, CORS for
//! pages on other origins, signed variant URLs, idempotent uploads, request ids, and a graceful
//! stop. Real server processes on 127.0.0.1.

mod common;

use std::time::Duration;

use common::{SECRET, Server, png};
use serde_json::Value;

const JOB_TIMEOUT: Duration = Duration::from_secs(120);

fn now() -> u64 {
    imgest_server::db::now_ms() as u64 / 1000
}

fn error_of(r: reqwest::blocking::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().unwrap_or(Value::Null);
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_string(),
        body["error"]["message"].as_str().unwrap_or("").to_string(),
    )
}

fn upload_with(
    s: &Server,
    token: &str,
    name: &str,
    bytes: Vec<u8>,
    headers: &[(&str, &str)],
) -> reqwest::blocking::Response {
    let part = reqwest::blocking::multipart::Part::bytes(bytes).file_name(name.to_string());
    let form = reqwest::blocking::multipart::Form::new().part("file", part);
    let mut request = s
        .client
        .post(s.url("/api/v1/images"))
        .bearer_auth(token)
        .multipart(form);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send().unwrap()
}

/// Uploads, waits for the job, returns the image's metadata.
fn processed(s: &Server, token: &str, bytes: Vec<u8>) -> Value {
    let r = s.upload(token, "p.png", bytes);
    assert_eq!(r.status(), 202);
    let accepted: Value = r.json().unwrap();
    let job = s.wait_job(token, accepted["job_id"].as_str().unwrap(), JOB_TIMEOUT);
    assert_eq!(job["status"], "done", "{job}");
    s.json(
        token,
        &format!("/api/v1/images/{}", accepted["image_id"].as_str().unwrap()),
    )
}

#[test]
fn cors_answers_listed_origins_only() {
    let app = "http://app.example:3000";
    let s = Server::start(&[("CORS_ORIGINS", &format!("https://other.example, {app}"))]);
    let token = s.token("cora");
    let image = processed(&s, &token, png(300, 200));
    let id = image["id"].as_str().unwrap();
    let job = image["job_url"].as_str().unwrap();
    let routes = [
        ("POST", "/api/v1/images".to_string()),
        ("GET", "/api/v1/images".to_string()),
        ("GET", format!("/api/v1/images/{id}")),
        ("DELETE", format!("/api/v1/images/{id}")),
        ("GET", format!("/api/v1/images/{id}/thumbnail")),
        ("GET", job.to_string()),
        ("GET", "/api/v1/health/stats".to_string()),
    ];
    for (method, path) in &routes {
        let preflight = |origin: &str| {
            s.client
                .request(reqwest::Method::OPTIONS, s.url(path))
                .header("Origin", origin)
                .header("Access-Control-Request-Method", *method)
                .header(
                    "Access-Control-Request-Headers",
                    "authorization,idempotency-key,x-request-id",
                )
                .send()
                .unwrap()
        };
        let r = preflight(app);
        assert!(r.status().is_success(), "{method} {path}: {}", r.status());
        let h = r.headers();
        assert_eq!(h["access-control-allow-origin"], app, "{method} {path}");
        let methods = h["access-control-allow-methods"].to_str().unwrap();
        assert!(methods.contains(method), "{method} {path}: {methods}");
        let allowed = h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        for name in ["authorization", "idempotency-key", "x-request-id"] {
            assert!(allowed.contains(name), "{method} {path}: {allowed}");
        }
        let r = preflight("http://evil.example");
        assert!(
            r.headers().get("access-control-allow-origin").is_none(),
            "{method} {path}: an unlisted origin was allowed"
        );
    }
    // The actual request: allowed for the listed origin, with the headers a page reads.
    let r = s
        .client
        .get(s.url("/api/v1/images"))
        .bearer_auth(&token)
        .header("Origin", app)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], app);
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for name in ["x-request-id", "location", "retry-after", "etag"] {
        assert!(exposed.contains(name), "{exposed}");
    }
    assert!(
        r.headers()["vary"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("origin")
    );
    let r = s
        .client
        .get(s.url("/api/v1/images"))
        .bearer_auth(&token)
        .header("Origin", "http://app.example:3001")
        .send()
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());

    // Without CORS_ORIGINS there are no CORS headers at all.
    let plain = Server::start(&[]);
    let r = plain
        .client
        .request(reqwest::Method::OPTIONS, plain.url("/api/v1/images"))
        .header("Origin", app)
        .header("Access-Control-Request-Method", "POST")
        .send()
        .unwrap();
    assert!(
        !r.headers()
            .keys()
            .any(|k| k.as_str().starts_with("access-control-")),
        "{:?}",
        r.headers()
    );
}

#[test]
fn signed_urls_work_without_a_token_until_they_expire() {
    let s = Server::start(&[]);
    let token = s.token("sid");
    let image = processed(&s, &token, png(400, 300));
    let id = image["id"].as_str().unwrap().to_string();
    let variants = image["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 4);
    for v in variants {
        let name = v["name"].as_str().unwrap();
        let signed = v["signed_url"].as_str().unwrap();
        assert!(
            signed.starts_with(&format!("/api/v1/images/{id}/{name}?expires=")),
            "{signed}"
        );
        // No Authorization header at all.
        let r = s.client.get(s.url(signed)).send().unwrap();
        assert_eq!(r.status(), 200, "{signed}");
        let cache = r.headers()["cache-control"].to_str().unwrap().to_string();
        let max_age: u64 = cache
            .split(", ")
            .find_map(|d| d.strip_prefix("max-age="))
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            cache.starts_with("public") && cache.contains("immutable"),
            "{cache}"
        );
        // At least the configured hour, at most the hour plus a rounding step of 15 minutes.
        assert!((3590..=4500).contains(&max_age), "{cache}");
        assert_eq!(
            r.headers()["etag"].to_str().unwrap(),
            format!("\"{}\"", v["sha256"].as_str().unwrap())
        );
        let bytes = r.bytes().unwrap();
        let owner = s.get(&token, v["url"].as_str().unwrap());
        assert!(
            owner.headers()["cache-control"]
                .to_str()
                .unwrap()
                .starts_with("private")
        );
        assert_eq!(owner.bytes().unwrap(), bytes);
    }
    let thumb = variants[0]["signed_url"].as_str().unwrap().to_string();
    let (path, query) = thumb.split_once('?').unwrap();
    let sig = query.split_once("&sig=").unwrap().1;
    let expires: u64 = query
        .split_once("&sig=")
        .unwrap()
        .0
        .strip_prefix("expires=")
        .unwrap()
        .parse()
        .unwrap();
    let mut flipped = sig.as_bytes().to_vec();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let signer = imgest_server::signed::Signer::new(SECRET, 3600);
    let tampered = [
        format!("{path}?expires={expires}&sig={flipped}"),
        format!("{path}?expires={}&sig={sig}", expires + 86_400),
        format!("/api/v1/images/{id}/original?{query}"),
        format!("{path}?expires={expires}"),
        format!("{path}?sig={sig}"),
        format!("{path}?expires=soon&sig={sig}"),
        // Signed with another secret.
        imgest_server::signed::Signer::new("another-secret-0123456789", 3600).url(
            &id,
            "thumbnail",
            expires,
        ),
    ];
    for url in &tampered {
        let (status, code, message) = error_of(s.client.get(s.url(url)).send().unwrap());
        assert_eq!((status, code.as_str()), (403, "forbidden"), "{url}");
        assert!(message.contains("invalid"), "{url}: {message}");
    }
    // A genuine signature whose time has passed.
    let expired = signer.url(&id, "thumbnail", now() - 10);
    let (status, code, message) = error_of(s.client.get(s.url(&expired)).send().unwrap());
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    assert!(message.contains("expired"), "{message}");
    // Neither a signature nor a token.
    assert_eq!(s.client.get(s.url(path)).send().unwrap().status(), 401);
    // The server's own signer, as the test computes it, still works: the key is derived
    // from JWT_SECRET_KEY alone.
    let fresh = signer.url(&id, "thumbnail", now() + 60);
    assert_eq!(s.client.get(s.url(&fresh)).send().unwrap().status(), 200);
    // Deleting the image makes every signed URL 404.
    let r = s
        .client
        .delete(s.url(&format!("/api/v1/images/{id}")))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    for url in [thumb.as_str(), fresh.as_str()] {
        let (status, code, _) = error_of(s.client.get(s.url(url)).send().unwrap());
        assert_eq!((status, code.as_str()), (404, "not_found"), "{url}");
    }
}

#[test]
fn an_idempotency_key_gives_the_first_answer_again() {
    let s = Server::start(&[("RATE_LIMIT_MAX_UPLOADS", "2")]);
    let token = s.token("ida");
    let first = png(320, 200);
    let r = upload_with(
        &s,
        &token,
        "a.png",
        first.clone(),
        &[("Idempotency-Key", "k-1")],
    );
    assert_eq!(r.status(), 202);
    assert!(r.headers().get("idempotent-replayed").is_none());
    let location = r.headers()["location"].clone();
    let a: Value = r.json().unwrap();
    // A client retrying after a timeout: the same answer, no second image or job.
    let r = upload_with(
        &s,
        &token,
        "a.png",
        first.clone(),
        &[("Idempotency-Key", "k-1")],
    );
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    assert_eq!(r.headers()["location"], location);
    let again: Value = r.json().unwrap();
    assert_eq!(again, a);
    assert_eq!(s.json(&token, "/api/v1/images")["total"], 1);
    assert_eq!(s.stats()["storage"]["total_jobs"], 1);
    // A second upload takes the second of two slots; the retry of the first still answers.
    let r = upload_with(
        &s,
        &token,
        "b.png",
        png(200, 320),
        &[("Idempotency-Key", "k-2")],
    );
    assert_eq!(r.status(), 202);
    let r = upload_with(
        &s,
        &token,
        "a.png",
        first.clone(),
        &[("Idempotency-Key", "k-1")],
    );
    assert_eq!(r.status(), 202, "a replay does not count against the limit");
    assert_eq!(r.json::<Value>().unwrap()["image_id"], a["image_id"]);
    let (status, code, _) = error_of(upload_with(
        &s,
        &token,
        "c.png",
        png(100, 100),
        &[("Idempotency-Key", "k-3")],
    ));
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
    // The same key with another file (or the same bytes under another name) is refused.
    for (name, bytes) in [("a.png", png(321, 200)), ("renamed.png", first.clone())] {
        let (status, code, _) = error_of(upload_with(
            &s,
            &token,
            name,
            bytes,
            &[("Idempotency-Key", "k-1")],
        ));
        assert_eq!((status, code.as_str()), (422, "idempotency_key_reused"));
    }
    // Keys belong to their user: another user's k-1 is a new upload.
    let other = s.token("idb");
    let r = upload_with(
        &s,
        &other,
        "a.png",
        first.clone(),
        &[("Idempotency-Key", "k-1")],
    );
    assert_eq!(r.status(), 202);
    assert_ne!(r.json::<Value>().unwrap()["image_id"], a["image_id"]);
    // A key must be 1-255 visible ASCII characters.
    for bad in ["x".repeat(256), "with space".to_string()] {
        let (status, code, _) = error_of(upload_with(
            &s,
            &other,
            "a.png",
            first.clone(),
            &[("Idempotency-Key", &bad)],
        ));
        assert_eq!((status, code.as_str()), (400, "bad_request"), "{bad}");
    }
    // The limit counted two uploads for `ida`, not the replays.
    let uploads = s.json(
        &s.admin_token("root"),
        "/api/v1/audit?action=upload&per_page=100",
    );
    let accepted = uploads["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["user_id"] == "ida" && e["outcome"] == "accepted")
        .count();
    assert_eq!(accepted, 2);
    // Concurrent tries with one key make one image.
    let racer = s.token("race");
    let body = png(500, 400);
    let answers: Vec<Value> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let r = upload_with(
                        &s,
                        &racer,
                        "r.png",
                        body.clone(),
                        &[("Idempotency-Key", "same")],
                    );
                    assert_eq!(r.status(), 202);
                    r.json::<Value>().unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
    assert_eq!(s.json(&racer, "/api/v1/images")["total"], 1);
    // The losers' stored originals were removed: one original per image on disk.
    s.wait_job(&racer, answers[0]["job_id"].as_str().unwrap(), JOB_TIMEOUT);
    let originals = s
        .stored_files()
        .into_iter()
        .filter(|f| f.starts_with("originals/"))
        .count();
    assert_eq!(originals, 4, "{:?}", s.stored_files());
}

#[test]
fn request_ids_tie_answers_jobs_and_log_lines() {
    let s = Server::start(&[("IMGEST_TEST_LOG", "1"), ("RUST_LOG", "imgest_server=info")]);
    let token = s.token("rid");
    let r = upload_with(
        &s,
        &token,
        "r.png",
        png(300, 300),
        &[("X-Request-Id", "client-req-42")],
    );
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["x-request-id"], "client-req-42");
    let accepted: Value = r.json().unwrap();
    let job = s.wait_job(&token, accepted["job_id"].as_str().unwrap(), JOB_TIMEOUT);
    assert_eq!(job["request_id"], "client-req-42", "{job}");
    // Every answer carries an id: a generated one when the client sent none or an unusable one.
    let mut seen = std::collections::HashSet::new();
    for (path, sent) in [
        ("/api/v1/health", None),
        ("/no/such/route", None),
        ("/api/v1/images", Some("has spaces in it")),
        ("/api/v1/images", Some("")),
    ] {
        let mut request = s.client.get(s.url(path));
        if let Some(id) = sent {
            request = request.header("X-Request-Id", id);
        }
        let r = request.send().unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        assert_eq!(id.len(), 36, "{path}: {id}");
        assert!(seen.insert(id));
    }
    // An error answer (401 here) carries it too.
    let r = s
        .client
        .get(s.url("/api/v1/images"))
        .header("X-Request-Id", "client-req-43")
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-request-id"], "client-req-43");
    // The log: the request's lines and the job's lines name the id.
    let log = s.log();
    let lines_with =
        |needle: &str| -> Vec<&str> { log.lines().filter(|l| l.contains(needle)).collect() };
    let accepted_lines = lines_with("upload accepted");
    assert_eq!(accepted_lines.len(), 1, "{log}");
    assert!(accepted_lines[0].contains("client-req-42"), "{log}");
    let done = lines_with("job done");
    assert_eq!(done.len(), 1, "{log}");
    assert!(done[0].contains("client-req-42"), "{log}");
    assert!(
        done[0].contains(accepted["job_id"].as_str().unwrap()),
        "{log}"
    );
}

#[test]
fn sigterm_finishes_the_jobs_in_hand() {
    let mut s = Server::start(&[
        ("IMGEST_WORKERS", "1"),
        ("IMGEST_TEST_LOG", "1"),
        ("RUST_LOG", "imgest_server=info"),
    ]);
    let token = s.token("sig");
    // Large enough to take a while: one runs, one waits.
    let jobs: Vec<String> = (0..2)
        .map(|i| {
            let r = s.upload(&token, "big.png", png(5000 + i, 3500));
            assert_eq!(r.status(), 202);
            r.json::<Value>().unwrap()["job_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let start = std::time::Instant::now();
    while s.json(&token, &format!("/api/v1/jobs/{}", jobs[0]))["status"] != "processing" {
        assert!(start.elapsed() < JOB_TIMEOUT, "the first job never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    let base = s.base.clone();
    let status = s.terminate(JOB_TIMEOUT);
    assert!(status.success(), "{status:?}\n{}", s.log());
    // The listener is closed.
    assert!(
        reqwest::blocking::get(format!("{base}/api/v1/health")).is_err(),
        "still accepting connections after stopping"
    );
    let log = s.log();
    assert!(log.contains("jobs in hand"), "{log}");
    let s = s.restart();
    // The job running at SIGTERM was finished by the first process, in one attempt; the
    // waiting one stayed queued and runs now.
    let first = s.json(&token, &format!("/api/v1/jobs/{}", jobs[0]));
    assert_eq!(
        (first["status"].as_str(), first["attempts"].as_i64()),
        (Some("done"), Some(1)),
        "{first}"
    );
    let second = s.wait_job(&token, &jobs[1], JOB_TIMEOUT);
    assert_eq!(
        (second["status"].as_str(), second["attempts"].as_i64()),
        (Some("done"), Some(1)),
        "{second}"
    );
}

/// An upload refused before its body is read (the hourly limit, a bad token) still gets its
/// answer: the server reads the rest of the body before answering, so the client, still
/// sending, is not cut off by a connection reset (a browser's `fetch` would report a network
/// error instead of the 429).
#[test]
fn uploads_refused_before_the_body_is_read_get_their_answer() {
    let s = Server::start(&[("RATE_LIMIT_MAX_UPLOADS", "1")]);
    let token = s.token("early");
    assert_eq!(s.upload(&token, "p.png", png(8, 8)).status(), 202);
    // 4 MB: well under the 10 MB cap, far more than the socket buffers hold.
    let big: Vec<u8> = (0..4_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    for attempt in 0..5 {
        let part = reqwest::blocking::multipart::Part::bytes(big.clone()).file_name("big.png");
        let form = reqwest::blocking::multipart::Form::new().part("file", part);
        let sent = s
            .client
            .post(s.url("/api/v1/images"))
            .bearer_auth(&token)
            .multipart(form)
            .send();
        let r = sent.unwrap_or_else(|e| panic!("attempt {attempt}: no answer to read: {e:?}"));
        assert_eq!(error_of(r).1, "rate_limited", "attempt {attempt}");
        let part = reqwest::blocking::multipart::Part::bytes(big.clone()).file_name("big.png");
        let form = reqwest::blocking::multipart::Form::new().part("file", part);
        let sent = s
            .client
            .post(s.url("/api/v1/images"))
            .bearer_auth("not-a-token")
            .multipart(form)
            .send();
        let r = sent.unwrap_or_else(|e| panic!("attempt {attempt}, bad token: no answer: {e:?}"));
        assert_eq!(r.status(), 401, "attempt {attempt}");
    }
}
