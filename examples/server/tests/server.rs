//! The service end to end: a real server process on 127.0.0.1, driven over HTTP.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{Server, corpus_dir, dimensions, png, webp_chunks};
use serde_json::Value;

const JOB_TIMEOUT: Duration = Duration::from_secs(120);

fn upload_ok(s: &Server, token: &str, name: &str, bytes: Vec<u8>) -> Value {
    let r = s.upload(token, name, bytes);
    assert_eq!(
        r.status(),
        202,
        "upload {name}: {}",
        r.text().unwrap_or_default()
    );
    r.json().unwrap()
}

fn error_code(r: reqwest::blocking::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().unwrap_or(Value::Null);
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_string(),
    )
}

/// Every variant of a done image: fetched, decoded to the advertised size, no metadata chunks,
/// and its ETag answers 304.
fn check_variants(s: &Server, token: &str, image: &Value) -> Vec<(String, (u32, u32))> {
    let mut sizes = Vec::new();
    for v in image["variants"].as_array().unwrap() {
        let url = v["url"].as_str().unwrap();
        let r = s.get(token, url);
        assert_eq!(r.status(), 200, "{url}");
        assert_eq!(r.headers()["content-type"], "image/webp");
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        assert_eq!(etag, format!("\"{}\"", v["sha256"].as_str().unwrap()));
        let bytes = r.bytes().unwrap().to_vec();
        assert_eq!(bytes.len() as u64, v["bytes"].as_u64().unwrap());
        let chunks = webp_chunks(&bytes);
        for banned in ["EXIF", "XMP ", "ICCP"] {
            assert!(
                !chunks.iter().any(|c| c == banned),
                "{url} has a {banned} chunk: {chunks:?}"
            );
        }
        let dims = dimensions(&bytes);
        assert_eq!(
            dims,
            (
                v["width"].as_u64().unwrap() as u32,
                v["height"].as_u64().unwrap() as u32
            ),
            "{url}"
        );
        let again = s
            .client
            .get(s.url(url))
            .bearer_auth(token)
            .header("If-None-Match", &etag)
            .send()
            .unwrap();
        assert_eq!(again.status(), 304, "{url} with If-None-Match");
        // A weak tag, a list, `*`: 304; another tag: 200. The bearer scheme in any case.
        for (condition, want) in [
            (format!("W/{etag}"), 304),
            (format!("\"other\", {etag}"), 304),
            ("*".to_string(), 304),
            ("\"other\"".to_string(), 200),
        ] {
            let r = s
                .client
                .get(s.url(url))
                .header("Authorization", format!("bEaReR {token}"))
                .header("If-None-Match", &condition)
                .send()
                .unwrap();
            assert_eq!(r.status(), want, "{url} with If-None-Match: {condition}");
        }
        sizes.push((v["name"].as_str().unwrap().to_string(), dims));
    }
    sizes
}

#[test]
fn upload_process_fetch_delete() {
    let s = Server::start(&[]);
    let token = s.token("alice");
    let r = s.upload(&token, "gradient.png", png(2000, 1000));
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let accepted: Value = r.json().unwrap();
    let job_id = accepted["job_id"].as_str().unwrap();
    assert_eq!(accepted["status_url"], format!("/api/v1/jobs/{job_id}"));
    assert_eq!(location, format!("/api/v1/jobs/{job_id}"));
    let job = s.wait_job(&token, job_id, JOB_TIMEOUT);
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["attempts"], 1);
    let image_id = accepted["image_id"].as_str().unwrap();
    let image = s.json(&token, &format!("/api/v1/images/{image_id}"));
    assert_eq!(image["status"], "done");
    assert_eq!(image["source"]["width"], 2000);
    assert!(
        image["dominant_color"]["hex"]
            .as_str()
            .unwrap()
            .starts_with('#')
    );
    let sizes = check_variants(&s, &token, &image);
    assert_eq!(
        sizes,
        [
            ("thumbnail".to_string(), (150, 75)),
            ("medium".to_string(), (800, 400)),
            ("large".to_string(), (1600, 800)),
            ("original".to_string(), (2000, 1000)),
        ]
    );
    // Listed, counted, then deleted with its objects.
    let list = s.json(&token, "/api/v1/images");
    assert_eq!(list["total"], 1);
    assert_eq!(list["images"][0]["id"], image_id);
    let stats = s.stats();
    assert_eq!(stats["status_breakdown"]["done"], 1);
    assert_eq!(stats["storage"]["total_images"], 1);
    assert_eq!(stats["storage"]["total_variants"], 4);
    assert_eq!(s.stored_files().len(), 5, "{:?}", s.stored_files());
    let r = s
        .client
        .delete(s.url(&format!("/api/v1/images/{image_id}")))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        s.get(&token, &format!("/api/v1/images/{image_id}"))
            .status(),
        404
    );
    assert_eq!(
        s.get(&token, &format!("/api/v1/jobs/{job_id}")).status(),
        404
    );
    assert_eq!(s.stored_files(), Vec::<String>::new());
    let stats = s.stats();
    assert_eq!(stats["storage"]["total_images"], 0);
    assert_eq!(stats["storage"]["total_bytes"], 0);
}

/// `IMGEST_OUTPUT_FORMATS=webp,avif`: every variant stored in both; the variant URL serves AVIF
/// to clients that accept it (`Vary: Accept`), WebP to the rest, and `?format=` forces one. An
/// AVIF upload is processed like any other.
#[test]
fn avif_and_webp_variants_by_accept() {
    let s = Server::start(&[("IMGEST_OUTPUT_FORMATS", "webp,avif")]);
    let token = s.token("ava");
    let accepted = upload_ok(&s, &token, "g.png", png(320, 200));
    let job = s.wait_job(&token, accepted["job_id"].as_str().unwrap(), JOB_TIMEOUT);
    assert_eq!(job["status"], "done", "{job}");
    let id = accepted["image_id"].as_str().unwrap();
    let image = s.json(&token, &format!("/api/v1/images/{id}"));
    let variants = image["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 4, "{image}");
    for v in variants {
        assert_eq!(v["format"], "webp");
        assert_eq!(v["formats"], serde_json::json!(["webp", "avif"]), "{v}");
    }
    let stats = s.stats();
    assert_eq!(stats["storage"]["total_variants"], 8);
    let fetch = |accept: Option<&str>, query: &str| {
        let mut r = s
            .client
            .get(s.url(&format!("/api/v1/images/{id}/thumbnail{query}")))
            .bearer_auth(&token);
        if let Some(a) = accept {
            r = r.header("accept", a);
        }
        r.send().unwrap()
    };
    let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    for (accept, query, want) in [
        (Some(chrome), "", "image/avif"),
        (Some("image/webp,*/*"), "", "image/webp"),
        (Some("image/avif;q=0,image/webp"), "", "image/webp"),
        (Some("image/*"), "", "image/webp"),
        (None, "", "image/webp"),
        (None, "?format=avif", "image/avif"),
        (Some(chrome), "?format=webp", "image/webp"),
    ] {
        let r = fetch(accept, query);
        assert_eq!(r.status(), 200, "{accept:?} {query}");
        assert_eq!(r.headers()["content-type"], want, "{accept:?} {query}");
        let vary = r
            .headers()
            .get("vary")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(
            vary.is_some(),
            query.is_empty(),
            "Vary for {accept:?} {query}"
        );
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        let bytes = r.bytes().unwrap();
        if want == "image/avif" {
            assert_eq!(&bytes[4..12], b"ftypavif");
        } else {
            assert_eq!(&bytes[8..12], b"WEBP");
        }
        // The ETag names the format's own bytes.
        let again = s
            .client
            .get(s.url(&format!("/api/v1/images/{id}/thumbnail{query}")))
            .bearer_auth(&token)
            .header("accept", accept.unwrap_or("*/*"))
            .header("if-none-match", &etag)
            .send()
            .unwrap();
        assert_eq!(again.status(), 304, "{accept:?} {query}");
    }
    assert_eq!(fetch(None, "?format=png").status(), 404);
    // An AVIF upload (the AVIF variant just served) is processed.
    let avif = fetch(None, "?format=avif").bytes().unwrap().to_vec();
    let accepted = upload_ok(&s, &token, "t.avif", avif);
    let job = s.wait_job(&token, accepted["job_id"].as_str().unwrap(), JOB_TIMEOUT);
    assert_eq!(job["status"], "done", "{job}");
    let image = s.json(
        &token,
        &format!("/api/v1/images/{}", accepted["image_id"].as_str().unwrap()),
    );
    assert_eq!(image["source"]["format"], "avif");
    assert_eq!(
        (
            image["source"]["width"].as_u64(),
            image["source"]["height"].as_u64()
        ),
        (Some(150), Some(94))
    );
}

#[test]
fn same_bytes_from_two_users_stay_independent() {
    let s = Server::start(&[]);
    let (alice, bob) = (s.token("alice"), s.token("bob"));
    let bytes = png(900, 600);
    let a = upload_ok(&s, &alice, "same.png", bytes.clone());
    let b = upload_ok(&s, &bob, "same.png", bytes);
    for (t, j) in [(&alice, &a), (&bob, &b)] {
        let job = s.wait_job(t, j["job_id"].as_str().unwrap(), JOB_TIMEOUT);
        assert_eq!(job["status"], "done");
    }
    let r = s
        .client
        .delete(s.url(&format!(
            "/api/v1/images/{}",
            a["image_id"].as_str().unwrap()
        )))
        .bearer_auth(&alice)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    // Bob's image keeps every object.
    let image = s.json(
        &bob,
        &format!("/api/v1/images/{}", b["image_id"].as_str().unwrap()),
    );
    assert_eq!(check_variants(&s, &bob, &image).len(), 4);
    assert_eq!(s.stored_files().len(), 4, "{:?}", s.stored_files());
}

#[test]
fn corpus_end_to_end() {
    let Some(dir) = corpus_dir() else { return };
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("EXPECTED.json")).unwrap()).unwrap();
    let files = expected["files"].as_array().unwrap();
    // Each kind: up to three accepted files per format, every orientation-tagged one, and every
    // file that must be refused.
    let mut per_format = std::collections::HashMap::<String, usize>::new();
    let sample: Vec<&Value> = files
        .iter()
        .filter(|f| {
            let outcome = f["outcome"].as_str().unwrap();
            let orientation = f["decoded"]["exif_orientation"].as_u64().unwrap_or(0);
            if outcome != "accept" || (2..=8).contains(&orientation) {
                return true;
            }
            let n = per_format
                .entry(f["magic_format"].as_str().unwrap().to_string())
                .or_default();
            *n += 1;
            *n <= 3
        })
        .collect();
    let s = Server::start(&[("RATE_LIMIT_MAX_UPLOADS", "100000")]);
    let token = s.token("corpus");
    let mut pending = Vec::new();
    let mut summary = (0, 0);
    for f in &sample {
        let path = f["path"].as_str().unwrap();
        let bytes = std::fs::read(dir.join(path)).unwrap();
        let r = s.upload(&token, path.rsplit('/').next().unwrap(), bytes);
        if r.status() == 202 {
            pending.push((*f, r.json::<Value>().unwrap()));
        } else {
            let (status, code) = error_code(r);
            check_refusal(f, status, &code);
            summary.1 += 1;
        }
    }
    for (f, accepted) in pending {
        let path = f["path"].as_str().unwrap();
        let job = s.wait_job(&token, accepted["job_id"].as_str().unwrap(), JOB_TIMEOUT);
        let outcome = f["outcome"].as_str().unwrap();
        if job["status"] == "failed" {
            let code = job["error_code"].as_str().unwrap();
            check_refusal(f, 0, code);
            assert_eq!(job["attempts"], 1, "{path}: input errors are not retried");
            summary.1 += 1;
            continue;
        }
        assert!(
            outcome.starts_with("accept") || outcome == "reject-or-accept-without-inflating",
            "{path} must be refused ({}) but was processed",
            f["reason"]
        );
        let image = s.json(
            &token,
            &format!("/api/v1/images/{}", accepted["image_id"].as_str().unwrap()),
        );
        let sizes = check_variants(&s, &token, &image);
        let (w, h) = (
            f["decoded"]["width"].as_u64().unwrap() as u32,
            f["decoded"]["height"].as_u64().unwrap() as u32,
        );
        assert_eq!(
            (
                image["source"]["width"].as_u64().unwrap() as u32,
                image["source"]["height"].as_u64().unwrap() as u32
            ),
            (w, h),
            "{path}"
        );
        for (name, (vw, vh)) in &sizes {
            let edge = match name.as_str() {
                "thumbnail" => "150",
                "medium" => "800",
                "large" => "1600",
                _ => {
                    assert_eq!((*vw, *vh), (w.min(16383), h.min(16383)), "{path} original");
                    continue;
                }
            };
            let e = &f["variants_long_edge"][edge];
            let (ew, eh) = (e[0].as_u64().unwrap() as i64, e[1].as_u64().unwrap() as i64);
            assert!(
                (i64::from(*vw) - ew).abs() <= 1 && (i64::from(*vh) - eh).abs() <= 1,
                "{path} {name}: {vw}x{vh}, expected {ew}x{eh}"
            );
        }
        summary.0 += 1;
    }
    eprintln!(
        "corpus through the server: {} processed, {} refused with the expected code",
        summary.0, summary.1
    );
    assert!(summary.0 >= 12 && summary.1 >= 20, "{summary:?}");
    // The server is still healthy.
    assert_eq!(s.client.get(s.url("/health")).send().unwrap().status(), 200);
}

/// `status` 0 = refused by the job, otherwise at upload.
fn check_refusal(f: &Value, status: u16, code: &str) {
    let path = f["path"].as_str().unwrap();
    let outcome = f["outcome"].as_str().unwrap();
    let allowed: &[&str] = match (outcome, f["reason"].as_str()) {
        // AVIF uploads are accepted; HEIC stays unsupported.
        ("accept-or-unsupported", _) if f["magic_format"] == "avif" => &[],
        ("reject", Some("truncated" | "corrupt")) => &["corrupt_input", "unsupported_format"],
        ("reject", Some("bomb")) | ("reject-or-accept-without-inflating", _) => &["limit_exceeded"],
        ("reject", Some("unsupported")) | ("accept-or-unsupported", _) => &["unsupported_format"],
        ("reject", Some("not-an-image")) => &["not_an_image"],
        _ => &[],
    };
    assert!(
        allowed.contains(&code),
        "{path} ({outcome}): refused with {code:?} (HTTP {status})"
    );
    if status != 0 {
        assert_eq!(
            status,
            imgest_server::error::status_for(code).as_u16(),
            "{path}"
        );
    }
}

/// Another user's image is invisible: 404 everywhere, and it survives a delete attempt.
#[test]
fn another_users_image_is_invisible() {
    let s = Server::start(&[]);
    let owner = s.token("owner");
    let accepted = upload_ok(&s, &owner, "a.png", png(64, 64));
    let id = accepted["image_id"].as_str().unwrap();
    s.wait_job(&owner, accepted["job_id"].as_str().unwrap(), JOB_TIMEOUT);
    let intruder = s.token("intruder");
    for path in [
        format!("/api/v1/images/{id}"),
        format!("/api/v1/images/{id}/thumbnail"),
        format!("/api/v1/jobs/{}", accepted["job_id"].as_str().unwrap()),
    ] {
        assert_eq!(
            error_code(s.get(&intruder, &path)),
            (404, "not_found".to_string()),
            "{path}"
        );
    }
    let r = s
        .client
        .delete(s.url(&format!("/api/v1/images/{id}")))
        .bearer_auth(&intruder)
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(s.get(&owner, &format!("/api/v1/images/{id}")).status(), 200);
    assert_eq!(s.json(&intruder, "/api/v1/images")["total"], 0);
    // The audit log is for admins.
    assert_eq!(
        error_code(s.get(&owner, "/api/v1/audit")),
        (403, "forbidden".to_string())
    );
}

#[test]
fn limits_and_lies() {
    let s = Server::start(&[]);
    let token = s.token("carol");
    // 11 MB declared: answered 413 before the body is sent at all.
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let len = 11 * 1024 * 1024;
    write!(
        stream,
        "POST /api/v1/images HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary=XYZ\r\nContent-Length: {len}\r\n\r\n"
    )
    .unwrap();
    stream
        .write_all(
            b"--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jpg\"\r\n\r\n",
        )
        .unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(
        &head, b"HTTP/1.1 413",
        "answered before the 11 MB were sent"
    );
    drop(stream);
    // Chunked (no Content-Length) and over the cap: cut off while streaming. A writer thread
    // keeps sending while this one reads the answer.
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST /api/v1/images HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary=XYZ\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sent = std::thread::spawn(move || {
        let head = b"--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jpg\"\r\n\r\n\xFF\xD8\xFF";
        let mut total = 0usize;
        let mut chunk = |data: &[u8]| -> std::io::Result<()> {
            write!(writer, "{:x}\r\n", data.len())?;
            writer.write_all(data)?;
            writer.write_all(b"\r\n")
        };
        if chunk(head).is_err() {
            return 0;
        }
        let block = vec![0xFFu8; 64 * 1024];
        // Far more than the cap plus what socket buffers can hold: if the server kept reading,
        // all of it would go through.
        while total < 64 * 1024 * 1024 {
            if chunk(&block).is_err() {
                break;
            }
            total += block.len();
        }
        total
    });
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 413", "cut off while streaming");
    drop(stream);
    let sent = sent.join().unwrap();
    assert!(
        sent < 64 * 1024 * 1024,
        "the server kept reading: {sent} bytes sent"
    );
    // HTML renamed .jpg: the magic bytes decide.
    let r = s.upload(
        &token,
        "photo.jpg",
        b"<!DOCTYPE html><html><body>hi</body></html>".to_vec(),
    );
    assert_eq!(error_code(r), (415, "not_an_image".to_string()));
    let r = s.upload(
        &token,
        "photo.jpg",
        b"\x00\x01\x02 some binary blob that is no image".to_vec(),
    );
    assert_eq!(error_code(r), (415, "unsupported_format".to_string()));
    // A decompression bomb: accepted by its magic bytes, refused by the job from its header.
    let mut bomb = png(8, 8);
    // Rewrite the IHDR size to 100000 x 100000 (and its CRC).
    bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    let accepted = upload_ok(&s, &token, "bomb.png", bomb);
    let job = s.wait_job(&token, accepted["job_id"].as_str().unwrap(), JOB_TIMEOUT);
    assert_eq!(
        (job["status"].as_str(), job["error_code"].as_str()),
        (Some("failed"), Some("limit_exceeded")),
        "{job}"
    );
    assert_eq!(job["attempts"], 1);
    let image = s.json(
        &token,
        &format!("/api/v1/images/{}", accepted["image_id"].as_str().unwrap()),
    );
    assert_eq!(image["status"], "failed");
    assert_eq!(s.client.get(s.url("/health")).send().unwrap().status(), 200);
    // The failure is on the dashboard's data and in the audit log.
    let activity: Value = s
        .client
        .get(s.url("/health/activity"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(activity["recent_failures"][0]["code"], "limit_exceeded");
    let audit = s.json(&s.admin_token("root"), "/api/v1/audit?action=job_failed");
    assert_eq!(audit["events"][0]["detail"], "limit_exceeded");
    let rejected = s.json(
        &s.admin_token("root"),
        "/api/v1/audit?action=upload&per_page=100",
    );
    let outcomes: Vec<&str> = rejected["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == "rejected").count(),
        4,
        "{outcomes:?}"
    );
    // Nothing of the refused uploads is stored: the bomb's original is the only object.
    assert_eq!(s.stored_files().len(), 1, "{:?}", s.stored_files());
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn a_killed_server_finishes_every_job_exactly_once() {
    let s = Server::start(&[("IMGEST_WORKERS", "1")]);
    let token = s.token("dave");
    let n = 8;
    let jobs: Vec<Value> = (0..n)
        .map(|i| upload_ok(&s, &token, "p.png", png(2400 + i * 16, 1800)))
        .collect();
    // Wait until the first job is being processed, then kill -9 mid-flight.
    let start = std::time::Instant::now();
    loop {
        let stats = s.stats();
        if stats["status_breakdown"]["processing"].as_i64().unwrap() > 0
            || stats["status_breakdown"]["done"].as_i64().unwrap() > 0
        {
            break;
        }
        assert!(start.elapsed() < JOB_TIMEOUT, "no job started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = s.stats();
    assert!(
        before["status_breakdown"]["queued"].as_i64().unwrap() > 0,
        "{before}"
    );
    let s = s.kill_and_restart();
    for j in &jobs {
        let job = s.wait_job(&token, j["job_id"].as_str().unwrap(), JOB_TIMEOUT);
        assert_eq!(job["status"], "done", "{job}");
    }
    let stats = s.stats();
    assert_eq!(
        stats["status_breakdown"]["done"].as_i64(),
        Some(n as i64),
        "{stats}"
    );
    assert_eq!(
        stats["storage"]["total_variants"].as_i64(),
        Some(4 * n as i64)
    );
    // One original + four variants per image, nothing duplicated or orphaned. A put cut short
    // by the kill may leave its temporary file (documented on `FsStorage`; `list` skips it):
    // at most the five in-flight writes of the one job that was running.
    let (temps, files): (Vec<String>, Vec<String>) = s.stored_files().into_iter().partition(|f| {
        f.rsplit('/')
            .next()
            .is_some_and(|name| name.starts_with(".tmp-"))
    });
    assert_eq!(files.len(), 5 * n as usize, "{files:?}");
    assert!(temps.len() <= 5, "{temps:?}");
    let uploads = s.json(
        &s.admin_token("root"),
        "/api/v1/audit?action=upload&per_page=100",
    );
    assert_eq!(uploads["events"].as_array().unwrap().len(), n as usize);
}

/// The metrics count the upload and the job the in-process worker ran.
#[test]
fn metrics_count_an_upload_and_its_job() {
    let s = Server::start(&[]);
    let token = s.token("erin");
    let accepted = upload_ok(&s, &token, "m.png", png(300, 200));
    s.wait_job(&token, accepted["job_id"].as_str().unwrap(), JOB_TIMEOUT);
    let metrics = s
        .client
        .get(s.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("imgest_uploads_total{outcome=\"accepted\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("imgest_job_attempts_total{outcome=\"done\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("imgest_job_duration_seconds_count 1"),
        "{metrics}"
    );
}

#[test]
fn bad_config_exits_with_a_message() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imgest-server"))
        .env_clear()
        .env("WEBP_QUALITY", "85")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("JWT_SECRET_KEY"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imgest-server"))
        .env_clear()
        .env("JWT_SECRET_KEY", common::SECRET)
        .env("WEBP_QUALITY", "high")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("WEBP_QUALITY") && !err.contains("panicked"),
        "{err}"
    );
    // The token helper signs with the configured secret.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imgest-server"))
        .env_clear()
        .env("JWT_SECRET_KEY", common::SECRET)
        .args(["token", "--user", "frank", "--ttl", "60"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap();
    let claims = imgest_server::auth::verify(common::SECRET, token.trim()).unwrap();
    assert_eq!(claims.sub, "frank");
    assert_eq!(claims.iat.map(|iat| claims.exp - iat), Some(60));
}
