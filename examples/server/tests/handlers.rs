//! The handlers through the router, in this process (`tower::ServiceExt::oneshot`): answers
//! that need no socket, no worker and no other service.

mod common;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, header};
use common::app::{App, BOUNDARY, multipart};
use common::{SECRET, admin_token, png, token};
use http_body::Frame;
use imgest_server::db;
use serde_json::Value;

#[tokio::test]
async fn malformed_requests_get_json_errors() {
    let s = App::start(&[]).await;
    let token = token("gina");
    for path in ["/api/v1/images?page=-1", "/api/v1/images?per_page=lots"] {
        assert_eq!(
            s.get(Some(&token), path).await.error_code(),
            (400, "bad_request".to_string()),
            "{path}"
        );
    }
    let r = s.post_images(Some(&token), "application/json", "{}").await;
    assert_eq!(r.error_code(), (400, "bad_request".to_string()));
    let form = multipart("other", None, b"x");
    let r = s
        .post_images(
            Some(&token),
            &format!("multipart/form-data; boundary={BOUNDARY}"),
            form,
        )
        .await;
    assert_eq!(r.error_code(), (400, "bad_request".to_string()));
    assert_eq!(s.stored_files(), Vec::<String>::new());
}

#[tokio::test]
async fn the_51st_upload_in_an_hour_gets_429() {
    let s = App::start(&[]).await;
    let token = token("busy");
    let small = png(16, 16);
    for i in 0..50 {
        let r = s.upload(Some(&token), "x.png", &small).await;
        assert_eq!(r.status, 202, "upload {}", i + 1);
    }
    let r = s.upload(Some(&token), "x.png", &small).await;
    assert_eq!(r.status, 429);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3000..=3600).contains(&retry), "Retry-After {retry}");
    assert_eq!(r.error_code().1, "rate_limited");
    // Another user is not affected.
    let other = common::token("other");
    assert_eq!(s.upload(Some(&other), "x.png", &small).await.status, 202);
    let audit = s
        .json(&admin_token("root"), "/api/v1/audit?action=rate_limited")
        .await;
    assert_eq!(audit["events"].as_array().unwrap().len(), 1);
    assert_eq!(audit["events"][0]["user_id"], "busy");
}

/// A smaller `RATE_LIMIT_MAX_UPLOADS` is the limit.
#[tokio::test]
async fn rate_limit_max_uploads_sets_the_limit() {
    let s = App::start(&[("RATE_LIMIT_MAX_UPLOADS", "2")]).await;
    let token = token("few");
    let small = png(16, 16);
    for _ in 0..2 {
        assert_eq!(s.upload(Some(&token), "x.png", &small).await.status, 202);
    }
    let r = s.upload(Some(&token), "x.png", &small).await;
    assert_eq!(r.error_code(), (429, "rate_limited".to_string()));
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(s.stats().await["status_breakdown"]["queued"], 2);
}

#[tokio::test]
async fn bad_tokens_get_401_and_store_nothing() {
    use base64::Engine;
    let s = App::start(&[]).await;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let now = db::now_ms() / 1000;
    let good = token("mallory");
    let (head, rest) = good.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let expired = common::encode_hs256(
        SECRET.as_bytes(),
        &serde_json::json!({"sub": "mallory", "exp": now - 600, "iat": now - 700}),
    );
    let wrong_key = common::encode_hs256(
        b"not-the-server-secret-at-all",
        &serde_json::json!({"sub": "mallory", "exp": now + 600, "iat": now}),
    );
    let alg_none = format!(
        "{}.{}.",
        b64(&serde_json::json!({"alg": "none", "typ": "JWT"})),
        b64(&serde_json::json!({"sub": "mallory", "exp": now + 600}))
    );
    let tampered = format!(
        "{head}.{}.{sig}",
        b64(&serde_json::json!({"sub": "admin", "exp": now + 600, "iat": now, "role": "admin"}))
    );
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("garbage", Some("not.a.jwt".into())),
        ("expired", Some(expired)),
        ("wrong key", Some(wrong_key)),
        ("alg none", Some(alg_none)),
        ("tampered payload", Some(tampered)),
    ];
    for (what, token) in &cases {
        let r = s.upload(token.as_deref(), "x.png", &png(8, 8)).await;
        assert_eq!(r.error_code(), (401, "unauthorized".to_string()), "{what}");
        let r = s.get(token.as_deref(), "/api/v1/images").await;
        assert_eq!(r.status, 401, "{what}");
    }
    assert_eq!(s.stored_files(), Vec::<String>::new());
    assert_eq!(s.stats().await["storage"]["total_images"], 0);
    // The audit log recorded the failures.
    let audit = s
        .json(
            &admin_token("root"),
            "/api/v1/audit?action=auth_failure&per_page=100",
        )
        .await;
    assert_eq!(audit["events"].as_array().unwrap().len(), cases.len() * 2);
}

#[tokio::test]
async fn tokens_need_only_sub_and_exp() {
    let s = App::start(&[]).await;
    let now = db::now_ms() / 1000;
    let exp = now + 600;
    let cases = [
        // The original service's tokens: `sub` and `exp`, nothing else.
        (serde_json::json!({"sub": "u1", "exp": exp}), SECRET, 200),
        (
            serde_json::json!({"sub": "u1", "exp": exp, "iat": now - 5}),
            SECRET,
            200,
        ),
        // iat, when present, is checked: not issued in the future.
        (
            serde_json::json!({"sub": "u1", "exp": exp, "iat": now + 300}),
            SECRET,
            401,
        ),
        // Forged: another secret.
        (
            serde_json::json!({"sub": "u1", "exp": exp}),
            "not-the-server-secret-0123456789",
            401,
        ),
        // Expired, or without exp.
        (
            serde_json::json!({"sub": "u1", "exp": now - 60}),
            SECRET,
            401,
        ),
        (serde_json::json!({"sub": "u1"}), SECRET, 401),
    ];
    for (claims, secret, expected) in cases {
        let token = common::encode_hs256(secret.as_bytes(), &claims);
        let r = s.get(Some(&token), "/api/v1/images").await;
        assert_eq!(r.status, expected, "{claims}");
    }
}

#[tokio::test]
async fn an_upload_over_the_cap_gets_413() {
    let s = App::start(&[]).await;
    let token = token("carol");
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    let big = multipart("file", Some("big.jpg"), &vec![0xFF; 11 * 1024 * 1024]);
    // Declared: refused from its Content-Length.
    let request = Request::post("/api/v1/images")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, &content_type)
        .header(header::CONTENT_LENGTH, big.len())
        .body(Body::from(big.clone()))
        .unwrap();
    let r = s.send(request).await;
    assert_eq!(r.error_code(), (413, "payload_too_large".to_string()));
    // Streamed, its length unknown: cut off while reading.
    let chunks = big.chunks(64 * 1024).map(Bytes::copy_from_slice).collect();
    let body = Body::new(Chunked(chunks));
    let r = s.post_images(Some(&token), &content_type, body).await;
    assert_eq!(r.error_code(), (413, "payload_too_large".to_string()));
    assert_eq!(s.stored_files(), Vec::<String>::new());
    let rejected = s
        .json(&admin_token("root"), "/api/v1/audit?action=upload")
        .await;
    let details: Vec<&str> = rejected["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(details, ["payload_too_large", "payload_too_large"]);
}

/// A body sent in chunks, its length unknown until it ends (as with `Transfer-Encoding:
/// chunked`).
struct Chunked(VecDeque<Bytes>);

impl http_body::Body for Chunked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }
}

#[tokio::test]
async fn unknown_images_jobs_and_routes_get_404() {
    let s = App::start(&[]).await;
    let token = token("nobody");
    let id = "00000000-0000-4000-8000-000000000000";
    for path in [
        format!("/api/v1/images/{id}"),
        format!("/api/v1/images/{id}/thumbnail"),
        format!("/api/v1/jobs/{id}"),
        format!("/api/v1/images/jobs/{id}"),
    ] {
        assert_eq!(
            s.get(Some(&token), &path).await.error_code(),
            (404, "not_found".to_string()),
            "{path}"
        );
    }
    let r = s
        .request(
            Method::DELETE,
            Some(&token),
            &format!("/api/v1/images/{id}"),
        )
        .await;
    assert_eq!(r.error_code(), (404, "not_found".to_string()));
    assert_eq!(
        s.get(None, "/nope").await.error_code(),
        (404, "not_found".to_string())
    );
}

#[tokio::test]
async fn health_stats_openapi_dashboard() {
    let s = App::start(&[]).await;
    // The load balancers' aliases answer as /api/v1/health and /api/v1/health/stats do.
    for path in ["/health", "/api/v1/health", "/api/v1/health/"] {
        let h = s.get(None, path).await.json();
        assert_eq!(
            (h["status"].as_str(), h["service"].as_str()),
            (Some("healthy"), Some("imgest-server")),
            "{path}"
        );
        assert!(h["timestamp"].as_str().unwrap().ends_with("+00:00"), "{h}");
    }
    let alias = s.get(None, "/health/stats").await.json();
    let stats = s.stats().await;
    for key in [
        "status_breakdown",
        "performance_24h",
        "storage",
        "celery",
        "workers",
        "queue",
    ] {
        assert_eq!(alias[key], stats[key], "{key}");
    }
    let doc = s.get(None, "/openapi.json").await.json();
    for path in [
        "/api/v1/images",
        "/api/v1/images/{id}",
        "/api/v1/images/{id}/{variant}",
        "/api/v1/jobs/{id}",
        "/api/v1/health",
        "/api/v1/health/stats",
    ] {
        assert!(!doc["paths"][path].is_null(), "openapi lacks {path}");
    }
    let r = s.get(None, "/dashboard").await;
    assert_eq!(r.status, 200);
    let html = r.text();
    assert!(html.starts_with("<!doctype html>"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the dashboard must not load from elsewhere"
    );
    assert_eq!(
        s.get(None, "/nope").await.error_code(),
        (404, "not_found".to_string())
    );
}

/// A processed image's variant, recorded through the database as a worker records it: its
/// ETag answers 304, whatever form the condition takes.
#[tokio::test]
async fn a_matching_if_none_match_gets_304() {
    let s = App::start(&[]).await;
    let token = token("etag");
    let accepted = s.upload(Some(&token), "e.png", &png(32, 32)).await.json();
    let image_id = accepted["image_id"].as_str().unwrap();
    let job = db::claim_job(&s.state.db, std::time::Duration::from_secs(60), "test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.image_id, image_id);
    let bytes = b"RIFF\x04\x00\x00\x00WEBP".to_vec();
    let sha = "0123abcd".to_string();
    s.state
        .storage
        .put("variants/01/0123abcd", &bytes, "image/webp")
        .unwrap();
    let variant = db::VariantRow {
        name: "thumbnail".into(),
        storage_key: "variants/01/0123abcd".into(),
        content_type: "image/webp".into(),
        width: 32,
        height: 32,
        format: "webp".into(),
        bytes: bytes.len() as i64,
        sha256: sha.clone(),
    };
    assert!(
        db::complete_job(&s.state.db, &job, &[variant], "{}", 1)
            .await
            .unwrap()
    );
    let url = format!("/api/v1/images/{image_id}/thumbnail");
    let r = s.get(Some(&token), &url).await;
    assert_eq!(r.status, 200, "{url}");
    assert_eq!(r.headers["content-type"], "image/webp");
    let etag = r.headers["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, format!("\"{sha}\""));
    assert_eq!(r.body.as_ref(), bytes.as_slice());
    // A weak tag, a list, `*`: 304; another tag: 200. The bearer scheme in any case.
    for (condition, want) in [
        (etag.clone(), 304),
        (format!("W/{etag}"), 304),
        (format!("\"other\", {etag}"), 304),
        ("*".to_string(), 304),
        ("\"other\"".to_string(), 200),
    ] {
        let request = Request::get(&url)
            .header(header::AUTHORIZATION, format!("bEaReR {token}"))
            .header(header::IF_NONE_MATCH, &condition)
            .body(Body::empty())
            .unwrap();
        let r = s.send(request).await;
        assert_eq!(r.status, want, "{url} with If-None-Match: {condition}");
        if want == 304 {
            assert_eq!(r.headers["etag"], etag.as_str());
            assert!(r.body.is_empty());
        }
    }
}
