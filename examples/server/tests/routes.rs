//! The documentation matches the server: every route that the READMEs and the OpenAPI document
//! list answers at that path, the document describes every request and response body, and
//! `/docs` is an interactive page served from the binary. The router runs in this process
//! (`tower::ServiceExt::oneshot`).

mod common;

use std::collections::BTreeSet;

use axum::http::Method;
use common::app::App;
use common::{admin_token, token};
use serde_json::Value;

/// `METHOD /path` in backticks, anywhere in a Markdown text.
fn documented_routes(markdown: &str) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    let inline = markdown.replace("```", "");
    for piece in inline.split('`').skip(1).step_by(2) {
        let Some((method, path)) = piece.split_once(' ') else {
            continue;
        };
        if ["GET", "POST", "DELETE"].contains(&method) && path.starts_with('/') {
            routes.insert((method.to_string(), path.to_string()));
        }
    }
    routes
}

/// Whether the router has `method path` (the fallback answers `no such route`, a missing
/// method 405); what the handler then says of a made-up id does not matter here.
async fn answers(s: &App, token: &str, method: &str, path: &str) -> Result<u16, String> {
    let path = path
        .replace("{id}", "00000000-0000-4000-8000-000000000000")
        .replace("{variant}", "thumbnail");
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let r = s.request(method.clone(), Some(token), &path).await;
    let status = r.status.as_u16();
    let body = r.text();
    if status == 405 || body.contains("no such route") {
        return Err(format!("{method} {path}: {status} {body}"));
    }
    Ok(status)
}

#[tokio::test]
async fn every_documented_route_answers() {
    let s = App::start(&[]).await;
    let token = admin_token("docs");
    let server_readme = include_str!("../README.md");
    let readme = include_str!("../../../README.md");
    let mut routes = documented_routes(server_readme);
    routes.extend(documented_routes(readme));
    for must in [
        ("GET", "/api/v1/health"),
        ("GET", "/api/v1/health/stats"),
        ("POST", "/api/v1/images"),
        ("GET", "/docs"),
    ] {
        assert!(
            routes.contains(&(must.0.to_string(), must.1.to_string())),
            "the server README does not list {must:?}: {routes:?}"
        );
    }
    let doc: Value = s.json(&token, "/openapi.json").await;
    let mut from_doc = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "delete", "put", "patch"].contains(&method.as_str()) {
                from_doc.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    assert!(from_doc.len() >= 11, "{from_doc:?}");
    // Every route the document lists is in the server README too, and the reverse for /api/v1.
    for route in &from_doc {
        assert!(routes.contains(route), "the README lacks {route:?}");
    }
    for route in routes.iter().filter(|(_, p)| p.starts_with("/api/v1/")) {
        let in_doc = from_doc.contains(route);
        let alias =
            ["/api/v1/images/upload", "/api/v1/images/jobs/{id}"].contains(&route.1.as_str());
        assert!(in_doc || alias, "the OpenAPI document lacks {route:?}");
    }
    let mut failures: Vec<String> = Vec::new();
    for (m, p) in routes.iter().chain(&from_doc).chain(&[
        ("GET".to_string(), "/health".to_string()),
        ("GET".to_string(), "/health/stats".to_string()),
        ("GET".to_string(), "/api/v1/health/".to_string()),
    ]) {
        failures.extend(answers(&s, &token, m, p).await.err());
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn the_openapi_document_describes_every_body() {
    let s = App::start(&[]).await;
    let doc: Value = s.json(&token("docs"), "/openapi.json").await;
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut refs = Vec::new();
    fn collect_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r.clone());
                }
                map.values().for_each(|v| collect_refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }
    collect_refs(&doc, &mut refs);
    for r in &refs {
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        assert!(schemas.contains_key(name), "dangling {r}");
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let at = format!("{method} {path}");
            // Path parameters are the template's, and only those; the rest are optional.
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                let in_template = path.contains(&format!("{{{name}}}"));
                assert_eq!(p["in"] == "path", in_template, "{at}: {p}");
                assert_eq!(p["required"] == true, in_template, "{at}: {p}");
            }
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{at}");
            for (status, response) in responses {
                let code: u16 = status.parse().unwrap();
                let content = &response["content"];
                if code >= 400 {
                    let schema = &content["application/json"]["schema"];
                    let named = schema["$ref"].as_str().unwrap_or("");
                    assert!(
                        named.ends_with("/ErrorBody")
                            || (path == "/api/v1/health" && named.ends_with("/Health")),
                        "{at} {status}: {response}"
                    );
                } else if code != 204 && code != 304 {
                    let bodies = content
                        .as_object()
                        .unwrap_or_else(|| panic!("{at} {status}"));
                    assert!(
                        bodies.values().all(|b| b["schema"].is_object()),
                        "{at} {status}: {response}"
                    );
                }
                assert!(
                    response["headers"]["X-Request-Id"].is_object(),
                    "{at} {status}"
                );
            }
        }
    }
    // The upload's form and its idempotency header.
    let upload = &doc["paths"]["/api/v1/images"]["post"];
    let form = &upload["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"];
    assert_eq!(form, "#/components/schemas/UploadForm");
    assert_eq!(
        schemas["UploadForm"]["properties"]["file"]["format"],
        "binary"
    );
    let headers: Vec<&str> = upload["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "header")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(headers, ["Idempotency-Key", "X-Request-Id"]);
    // The report's keys are in the stats schema.
    let stats = &schemas["Stats"]["properties"];
    for key in [
        "status_breakdown",
        "performance_24h",
        "storage",
        "celery",
        "timestamp",
    ] {
        assert!(stats[key].is_object(), "Stats lacks {key}");
    }
    assert!(schemas["CeleryStats"]["properties"]["active_workers"].is_object());
    assert!(schemas["StorageStats"]["properties"]["total_jobs"].is_object());
    assert!(schemas["VariantInfo"]["properties"]["signed_url"].is_object());
    assert!(schemas["JobView"]["properties"]["request_id"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn docs_is_swagger_ui_served_from_the_binary() {
    let s = App::start(&[]).await;
    // Redirects followed, as a browser does.
    let mut path = "/docs".to_string();
    let mut r = s.get(None, &path).await;
    while r.status.is_redirection() {
        let location = r.headers["location"].to_str().unwrap();
        assert!(location.starts_with('/'), "{path} redirects to {location}");
        path = location.to_string();
        r = s.get(None, &path).await;
    }
    assert_eq!(r.status, 200);
    assert!(path.ends_with("/docs/"), "{path}");
    let html = r.text();
    assert!(html.contains("swagger-ui"), "{html}");
    // Every script and stylesheet is the server's own.
    for attr in html.split(['"', '\'']).collect::<Vec<_>>().windows(2) {
        if attr[0].ends_with("src=") || attr[0].ends_with("href=") {
            assert!(
                !attr[1].contains("//"),
                "/docs loads {} from elsewhere",
                attr[1]
            );
        }
    }
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "swagger-ui.css",
    ] {
        let r = s.get(None, &format!("/docs/{asset}")).await;
        assert_eq!(r.status, 200, "{asset}");
        assert!(r.body.len() > 10_000, "{asset}");
    }
    let init = s.get(None, "/docs/swagger-initializer.js").await.text();
    assert!(init.contains("\"url\": \"/openapi.json\""), "{init}");
}
