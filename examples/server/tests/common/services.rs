//! Throwaway local servers on 127.0.0.1 for integration tests: Redis, PostgreSQL and an S3
//! server (`moto_server`).
//!
//! Each `start` returns `None` only when the server is not installed; callers skip then:
//!
//! ```ignore
//! let Some(redis) = Redis::start(true) else {
//!     assert!(!required(), "IMGEST_REQUIRE_SCALE=1 but redis-server is not installed");
//!     eprintln!("SKIPPED: ... needs redis-server");
//!     return;
//! };
//! ```
//!
//! Any other failure panics with the end of the server's log. Every server lives in its own
//! temporary folder and is stopped (and the folder removed) on drop.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound once and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether missing servers fail the tests instead of skipping them (`IMGEST_REQUIRE_SCALE=1`).
pub fn required() -> bool {
    std::env::var("IMGEST_REQUIRE_SCALE").is_ok_and(|v| v == "1")
}

/// Spawns `cmd`; `None` when its program is not installed.
fn spawn(cmd: &mut Command) -> Option<Child> {
    match cmd.spawn() {
        Ok(child) => Some(child),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => panic!("cannot start {:?}: {e}", cmd.get_program()),
    }
}

/// A log file for a child's stdout and stderr (appended to, so restarts keep history).
fn log_stdio(path: &Path) -> (Stdio, Stdio) {
    let file = File::options()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    (file.try_clone().unwrap().into(), file.into())
}

/// The last lines of a log file, for panic messages.
fn log_tail(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Polls `ready` every 100 ms; panics with the log tail if the child exits or `timeout` passes.
fn wait_ready(
    child: &mut Child,
    name: &str,
    log: &Path,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) {
    let start = Instant::now();
    loop {
        if ready() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{name} exited ({status}) before it was ready; log:\n{}",
                log_tail(log)
            );
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{name} not ready after {timeout:?}; log:\n{}",
                log_tail(log)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs a short command to completion and returns its trimmed stdout; panics on failure.
fn run_output(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

// ---------------------------------------------------------------------------------------------
// Redis

/// A `redis-server` child on 127.0.0.1 with its data in a temporary folder.
pub struct Redis {
    child: Child,
    port: u16,
    aof: bool,
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts `redis-server` (no RDB snapshots; with `aof`, an append-only file fsynced on
    /// every write) and waits until it answers PING. `None` when it is not installed.
    pub fn start(aof: bool) -> Option<Redis> {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = spawn(&mut Self::command_line(port, aof, dir.path()))?;
        let mut redis = Redis {
            child,
            port,
            aof,
            dir,
        };
        redis.wait();
        Some(redis)
    }

    fn command_line(port: u16, aof: bool, dir: &Path) -> Command {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(port.to_string())
            .args(["--bind", "127.0.0.1", "--save", ""])
            .arg("--dir")
            .arg(dir);
        if aof {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        }
        let (out, err) = log_stdio(&dir.join("redis.log"));
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        cmd
    }

    fn wait(&mut self) {
        let port = self.port;
        let log = self.dir.path().join("redis.log");
        wait_ready(
            &mut self.child,
            "redis-server",
            &log,
            Duration::from_secs(30),
            || resp(port, &["PING"]).is_ok_and(|r| r.starts_with("+PONG")),
        );
    }

    /// `redis://127.0.0.1:P/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server with SIGKILL (no shutdown work at all) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port, folder and flags (killing it first if it
    /// still runs) and waits until it answers PING, i.e. has loaded its append-only file.
    pub fn restart(&mut self) {
        self.kill();
        self.child = Self::command_line(self.port, self.aof, self.dir.path())
            .spawn()
            .expect("restart redis-server");
        self.wait();
    }

    /// Sends one command and returns the raw RESP reply, e.g. `+OK\r\n`, `:1\r\n`,
    /// `$3\r\nbar\r\n` or `$-1\r\n` (arrays are read whole).
    pub fn command(&self, args: &[&str]) -> String {
        resp(self.port, args).unwrap_or_else(|e| {
            panic!(
                "redis {args:?}: {e}; log:\n{}",
                log_tail(&self.dir.path().join("redis.log"))
            )
        })
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One RESP request/reply on a fresh connection.
fn resp(port: u16, args: &[&str]) -> io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(req.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut out = String::new();
    read_reply(&mut reader, &mut out)?;
    Ok(out)
}

/// Appends one complete RESP reply (recursing into arrays) to `out`.
fn read_reply(r: &mut impl BufRead, out: &mut String) -> io::Result<()> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    out.push_str(&line);
    let n: i64 = line.get(1..).unwrap_or("").trim_end().parse().unwrap_or(-1);
    match line.as_bytes()[0] {
        b'$' if n >= 0 => {
            let mut buf = vec![0; n as usize + 2];
            r.read_exact(&mut buf)?;
            out.push_str(&String::from_utf8_lossy(&buf));
        }
        b'*' => {
            for _ in 0..n.max(0) {
                read_reply(r, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/// A `postgres` child on 127.0.0.1 with a fresh cluster (user `imgest`, trust auth) in a
/// temporary folder.
pub struct Postgres {
    child: Child,
    port: u16,
    bin: PathBuf,
    tmp: tempfile::TempDir,
}

impl Postgres {
    /// Creates a cluster with `initdb` and starts `postgres` on it (durability off: fsync,
    /// synchronous commit and full-page writes), waiting until `select 1` works. `None` when
    /// PostgreSQL is not installed.
    ///
    /// Binaries come from the highest `/usr/lib/postgresql/<ver>/bin` (Debian), else PATH.
    /// As root, the cluster belongs to and runs as the `postgres` user (initdb refuses root).
    pub fn start() -> Option<Postgres> {
        let bin = pg_bin_dir()?;
        let tool = |name: &str| tool_path(&bin, name);
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let sock = tmp.path().join("sock");
        let log = tmp.path().join("postgres.log");
        std::fs::create_dir(&data).unwrap();
        std::fs::create_dir(&sock).unwrap();
        // As root: hand the folders to `postgres` and run the server as that user.
        let owner = if run_output(Command::new("id").arg("-u")) == "0" {
            let uid: u32 = id_of("-u");
            let gid: u32 = id_of("-g");
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            run_output(
                Command::new("chown")
                    .arg("-R")
                    .arg(format!("{uid}:{gid}"))
                    .arg(&data)
                    .arg(&sock),
            );
            Some((uid, gid))
        } else {
            None
        };
        let as_owner = |cmd: &mut Command| {
            cmd.current_dir(tmp.path());
            if let Some((uid, gid)) = owner {
                cmd.uid(uid).gid(gid);
            }
        };

        let mut initdb = Command::new(tool("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "imgest", "--auth=trust", "-E", "UTF8", "--no-locale"])
            .arg("--no-sync");
        as_owner(&mut initdb);
        match initdb.output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!(
                "initdb failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => panic!("cannot run initdb: {e}"),
        }

        let port = free_port();
        let mut server = Command::new(tool("postgres"));
        server
            .arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(port.to_string())
            .args(["-h", "127.0.0.1"])
            .arg("-k")
            .arg(&sock);
        for setting in [
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "max_connections=200",
        ] {
            server.args(["-c", setting]);
        }
        let (out, err) = log_stdio(&log);
        server.stdin(Stdio::null()).stdout(out).stderr(err);
        as_owner(&mut server);
        let mut child = server.spawn().expect("start postgres");
        let mut isready = Command::new(tool("pg_isready"));
        isready
            .args(["-q", "-U", "imgest", "-h", "127.0.0.1", "-p"])
            .arg(port.to_string());
        let accepting = || isready.status().is_ok_and(|s| s.success());
        wait_ready(
            &mut child,
            "postgres",
            &log,
            Duration::from_secs(60),
            accepting,
        );
        let pg = Postgres {
            child,
            port,
            bin,
            tmp,
        };
        assert_eq!(pg.psql("select 1"), "1");
        Some(pg)
    }

    /// `postgres://imgest@127.0.0.1:P/postgres`.
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn database_url(&self, db: &str) -> String {
        format!("postgres://imgest@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs `sql` with `psql -At` on database `postgres` and returns its trimmed stdout;
    /// panics (with psql's stderr) on failure.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_db("postgres", sql)
    }

    /// [`Postgres::psql`] on database `db`.
    pub fn psql_db(&self, db: &str, sql: &str) -> String {
        let out = Command::new(tool_path(&self.bin, "psql"))
            .args(["-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(["-U", "imgest", "-d", db, "-At", "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql:?} failed ({}):\n{}\nserver log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            log_tail(&self.tmp.path().join("postgres.log"))
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Creates an empty database `name` and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        self.psql(&format!(
            "CREATE DATABASE \"{}\"",
            name.replace('"', "\"\"")
        ));
        self.database_url(name)
    }
}

impl Drop for Postgres {
    /// Fast shutdown (SIGINT), SIGKILL after 10 s; the temporary folder goes with it.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The folder holding `initdb` and `postgres` (and usually `pg_isready` and `psql`); `None`
/// when PostgreSQL is not installed.
fn pg_bin_dir() -> Option<PathBuf> {
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max();
    if let Some((_, bin)) = debian {
        return Some(bin);
    }
    // On PATH: prefer the folder of the real `initdb` (it may be a symlink), so the tools
    // all come from one installation.
    let path = std::env::var_os("PATH")?;
    let initdb = std::env::split_paths(&path)
        .map(|d| d.join("initdb"))
        .find(|p| p.is_file())?;
    let initdb = std::fs::canonicalize(&initdb).unwrap_or(initdb);
    initdb.parent().map(Path::to_path_buf)
}

/// `dir/name` when it exists there, else `name` (looked up on PATH).
fn tool_path(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    if path.is_file() {
        path
    } else {
        PathBuf::from(name)
    }
}

/// `id <flag> postgres` as a number; panics when there is no `postgres` user.
fn id_of(flag: &str) -> u32 {
    let out = Command::new("id")
        .args([flag, "postgres"])
        .output()
        .expect("run id");
    assert!(
        out.status.success(),
        "running as root, and initdb refuses root, but there is no `postgres` user: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// S3 (moto)

/// A `moto_server` child (an in-memory S3) on 127.0.0.1.
pub struct Moto {
    child: Child,
    endpoint: String,
    client: reqwest::blocking::Client,
    _log: tempfile::TempDir,
}

impl Moto {
    /// Starts `moto_server` and waits (up to 30 s) until it answers HTTP. `None` when it is
    /// not installed.
    pub fn start() -> Option<Moto> {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("moto.log");
        let port = free_port();
        let (out, err) = log_stdio(&log);
        let mut child = spawn(
            Command::new("moto_server")
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err),
        )?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let answers = || {
            client
                .get(&endpoint)
                .send()
                .is_ok_and(|r| r.status().is_success())
        };
        wait_ready(
            &mut child,
            "moto_server",
            &log,
            Duration::from_secs(30),
            answers,
        );
        Some(Moto {
            child,
            endpoint,
            client,
            _log: tmp,
        })
    }

    /// `http://127.0.0.1:P` (path-style S3 endpoint).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Creates a bucket; panics unless the server says yes.
    pub fn create_bucket(&self, name: &str) {
        let r = self
            .client
            .put(format!("{}/{name}", self.endpoint))
            .send()
            .unwrap();
        let status = r.status();
        assert!(
            status.is_success(),
            "create bucket {name}: {status} {}",
            r.text().unwrap_or_default()
        );
    }

    /// Every key in `bucket`, in S3 order (ListObjectsV2, following continuation tokens).
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = reqwest::Url::parse(&format!("{}/{bucket}", self.endpoint)).unwrap();
            url.query_pairs_mut().append_pair("list-type", "2");
            if let Some(t) = &token {
                url.query_pairs_mut().append_pair("continuation-token", t);
            }
            let r = self.client.get(url).send().unwrap();
            let status = r.status();
            let xml = r.text().unwrap();
            assert!(status.is_success(), "list {bucket}: {status} {xml}");
            keys.extend(xml_values(&xml, "Key").into_iter().map(xml_unescape));
            if xml_values(&xml, "IsTruncated").first() != Some(&"true") {
                return keys;
            }
            let next = xml_values(&xml, "NextContinuationToken");
            let next = next
                .first()
                .expect("truncated listing without NextContinuationToken");
            token = Some(xml_unescape(next));
        }
    }
}

impl Moto {
    /// SIGKILL: the server and everything it stored are gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text of every `<tag>…</tag>` in `xml`.
fn xml_values<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let close = format!("</{tag}>");
    xml.split(&format!("<{tag}>"))
        .skip(1)
        .filter_map(|s| s.split(&close).next())
        .collect()
}

/// Undoes XML's five predefined entities.
fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}
