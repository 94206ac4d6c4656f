//! A real server process on 127.0.0.1 for the integration tests ([`app`]: the router in the
//! test's own process).

#![allow(dead_code)]

pub mod app;
pub mod services;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const SECRET: &str = "integration-test-secret-0123456789";

pub struct Server {
    pub child: Child,
    pub base: String,
    pub dir: PathBuf,
    pub client: reqwest::blocking::Client,
    env: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a server with its own database and storage folder; `env` adds or overrides
    /// variables.
    pub fn start(env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut s = Server::spawn(&dir, &env);
        s._tmp = Some(tmp);
        s
    }

    /// The server's log file, when `IMGEST_TEST_LOG` was given to [`Server::start`]: its
    /// stderr is written there (appended across restarts) instead of the test's.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn spawn(dir: &Path, env: &[(String, String)]) -> Server {
        let logged = env.iter().any(|(k, _)| k == "IMGEST_TEST_LOG");
        let mut cmd = Command::new(server_bin());
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("JWT_SECRET_KEY", SECRET)
            .env("DATABASE_PATH", dir.join("imgest.db"))
            .env("STORAGE_PATH", dir.join("storage"))
            .env("IMGEST_PORT", "0")
            .env("RUST_LOG", "imgest_server=warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if logged {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("server.log"))
                .unwrap();
            cmd.stderr(log);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start imgest-server");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .unwrap();
            if let Some(url) = line.strip_prefix("imgest-server listening on ") {
                break url.trim().to_string();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            base,
            dir: dir.to_path_buf(),
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            env: env.to_vec(),
            _tmp: None,
        }
    }

    /// Kills the process with SIGKILL (no cleanup at all) and starts a new one on the same
    /// database and storage.
    pub fn kill_and_restart(mut self) -> Server {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let tmp = self._tmp.take();
        let mut s = Server::spawn(&self.dir, &self.env);
        s._tmp = tmp;
        s
    }

    /// Sends SIGTERM and waits (at most `timeout`) for the process to exit.
    pub fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < timeout,
                "the server did not exit within {timeout:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts a new process on the same database and storage (after [`Server::terminate`]).
    pub fn restart(mut self) -> Server {
        let tmp = self._tmp.take();
        let mut s = Server::spawn(&self.dir, &self.env);
        s._tmp = tmp;
        s
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn token(&self, user: &str) -> String {
        token(user)
    }

    pub fn admin_token(&self, user: &str) -> String {
        admin_token(user)
    }

    pub fn upload(&self, token: &str, name: &str, bytes: Vec<u8>) -> reqwest::blocking::Response {
        let part = reqwest::blocking::multipart::Part::bytes(bytes).file_name(name.to_string());
        let form = reqwest::blocking::multipart::Form::new().part("file", part);
        self.client
            .post(self.url("/api/v1/images"))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .unwrap()
    }

    pub fn get(&self, token: &str, path: &str) -> reqwest::blocking::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .unwrap()
    }

    pub fn json(&self, token: &str, path: &str) -> Value {
        let r = self.get(token, path);
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().unwrap()
    }

    /// Polls a job until it is done or failed.
    pub fn wait_job(&self, token: &str, job_id: &str, timeout: Duration) -> Value {
        let start = Instant::now();
        loop {
            let job = self.json(token, &format!("/api/v1/jobs/{job_id}"));
            if job["status"] == "done" || job["status"] == "failed" {
                return job;
            }
            assert!(
                start.elapsed() < timeout,
                "job {job_id} still {} after {timeout:?}",
                job["status"]
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stats(&self) -> Value {
        self.client
            .get(self.url("/api/v1/health/stats"))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    /// Every file under the storage folder, relative, sorted.
    pub fn stored_files(&self) -> Vec<String> {
        files_under(&self.dir.join("storage"))
    }
}

/// Every file under `root`, relative, sorted.
pub fn files_under(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// A user's token, signed with [`SECRET`], valid for an hour.
pub fn token(user: &str) -> String {
    imgest_server::auth::sign(SECRET, user, 3600, None).unwrap()
}

/// An admin's token, signed with [`SECRET`], valid for an hour.
pub fn admin_token(user: &str) -> String {
    imgest_server::auth::sign(SECRET, user, 3600, Some("admin")).unwrap()
}

/// An HS256 token with exactly these claims, signed with `key`.
pub fn encode_hs256(key: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .unwrap()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small PNG (w × h, opaque gradient).
/// The server binary: `IMGEST_SERVER_BIN` (a release build, for measuring), else the one cargo
/// built for these tests.
pub fn server_bin() -> PathBuf {
    std::env::var_os("IMGEST_SERVER_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_imgest-server")),
        PathBuf::from,
    )
}

pub fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 90])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// The RIFF chunk ids of a WebP file.
pub fn webp_chunks(bytes: &[u8]) -> Vec<String> {
    assert!(
        bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP",
        "not a WebP file"
    );
    let mut out = Vec::new();
    let mut i = 12;
    while i + 8 <= bytes.len() {
        out.push(String::from_utf8_lossy(&bytes[i..i + 4]).into_owned());
        let len = u32::from_le_bytes(bytes[i + 4..i + 8].try_into().unwrap()) as usize;
        i += 8 + len + (len & 1);
    }
    out
}

/// Decoded dimensions of image bytes.
pub fn dimensions(bytes: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory(bytes).expect("decodable output");
    (img.width(), img.height())
}

/// The shared corpus folder, or None (with a message) when absent and not required.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("IMGEST_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
    };
    if dir.join("EXPECTED.json").is_file() {
        return Some(dir);
    }
    let required = std::env::var("IMGEST_REQUIRE_CORPUS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "IMGEST_REQUIRE_CORPUS=1 but no corpus at {}",
        dir.display()
    );
    eprintln!(
        "SKIPPED: needs the corpus at {} (or IMGEST_CORPUS)",
        dir.display()
    );
    None
}

/// Reads a whole HTTP response from a raw socket (for requests reqwest will not send).
pub fn read_all(stream: &mut std::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}
