//! The router in this process, driven with `tower::ServiceExt::oneshot`: no socket, no server
//! process. Its own database and storage folder, configured as [`super::Server`] configures
//! the binary; no workers run, so uploads stay queued.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use imgest_server::{AppState, Config};
use serde_json::Value;
use tower::ServiceExt;

use super::SECRET;

/// The multipart boundary of [`multipart`] bodies.
pub const BOUNDARY: &str = "imgest-test-boundary";

pub struct App {
    pub router: axum::Router,
    pub state: AppState,
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
}

/// A response, its body read.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The status and the JSON error's code (empty when there is none).
    pub fn error_code(&self) -> (u16, String) {
        let body: Value = serde_json::from_slice(&self.body).unwrap_or(Value::Null);
        (
            self.status.as_u16(),
            body["error"]["code"].as_str().unwrap_or("").to_string(),
        )
    }
}

/// A multipart form with one field: a file when `filename` is given, else a text field.
pub fn multipart(field: &str, filename: Option<&str>, bytes: &[u8]) -> Vec<u8> {
    let disposition = match filename {
        Some(name) => format!("form-data; name=\"{field}\"; filename=\"{name}\""),
        None => format!("form-data; name=\"{field}\""),
    };
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

impl App {
    /// The router on a fresh database and storage folder; `env` adds or overrides variables.
    pub async fn start(env: &[(&str, &str)]) -> App {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut vars: HashMap<String, String> = [
            ("JWT_SECRET_KEY", SECRET.to_string()),
            ("DATABASE_PATH", dir.join("imgest.db").display().to_string()),
            ("STORAGE_PATH", dir.join("storage").display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = Config::from_env(|k| vars.get(k).cloned(), None).unwrap();
        let state = AppState::new(config, None).await.unwrap();
        App {
            router: imgest_server::app(state.clone()),
            state,
            dir,
            _tmp: tmp,
        }
    }

    /// Sends a request as a client on 127.0.0.1 would.
    pub async fn send(&self, mut request: Request<Body>) -> Answer {
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// `method path`, with the bearer `token` when given, and no body.
    pub async fn request(&self, method: Method, token: Option<&str>, path: &str) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    pub async fn get(&self, token: Option<&str>, path: &str) -> Answer {
        self.request(Method::GET, token, path).await
    }

    pub async fn json(&self, token: &str, path: &str) -> Value {
        let r = self.get(Some(token), path).await;
        assert!(r.status.is_success(), "GET {path}: {}", r.status);
        r.json()
    }

    /// `POST /api/v1/images` with `body` as its content of type `content_type`.
    pub async fn post_images(
        &self,
        token: Option<&str>,
        content_type: &str,
        body: impl Into<Body>,
    ) -> Answer {
        let mut request =
            Request::post("/api/v1/images").header(header::CONTENT_TYPE, content_type);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send(request.body(body.into()).unwrap()).await
    }

    /// Uploads `bytes` as the form's `file`, named `name`.
    pub async fn upload(&self, token: Option<&str>, name: &str, bytes: &[u8]) -> Answer {
        let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
        self.post_images(token, &content_type, multipart("file", Some(name), bytes))
            .await
    }

    pub async fn stats(&self) -> Value {
        self.get(None, "/api/v1/health/stats").await.json()
    }

    /// Every file under the storage folder, relative, sorted.
    pub fn stored_files(&self) -> Vec<String> {
        super::files_under(&self.dir.join("storage"))
    }
}
