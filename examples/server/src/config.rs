//! Configuration from the environment, with the original service's variable names.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Where variants and originals are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageBackend {
    /// A directory on local disk (`STORAGE_PATH`).
    Local(PathBuf),
    /// An S3 bucket (`S3_BUCKET`, optional `S3_ENDPOINT`, AWS credentials from the usual variables).
    S3 {
        /// The bucket name.
        bucket: String,
        /// A custom endpoint (a local S3 server, MinIO, R2, ...), path-style.
        endpoint: Option<String>,
    },
}

/// Everything the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The HS256 secret tokens are signed with (`JWT_SECRET_KEY`).
    pub jwt_secret: String,
    /// `STORAGE_BACKEND` + `STORAGE_PATH` / `S3_*`.
    pub storage: StorageBackend,
    /// The SQLite database file (`DATABASE_PATH`), used unless `database_url` is set.
    pub database_path: PathBuf,
    /// `DATABASE_URL`: a `postgres://…` (or `sqlite:…`) URL that replaces `DATABASE_PATH`.
    pub database_url: Option<String>,
    /// `REDIS_URL`: when set, the API only enqueues jobs into a Redis stream and `imgest-server
    /// worker` processes consume it.
    pub redis_url: Option<String>,
    /// How often a worker reports itself alive in Redis (`IMGEST_HEARTBEAT_SECS`, 5); it counts
    /// as gone after three missed beats.
    pub heartbeat: Duration,
    /// Uploads per user per hour (`RATE_LIMIT_MAX_UPLOADS`, 50).
    pub rate_limit_max_uploads: u32,
    /// The upload cap in bytes (`MAX_UPLOAD_SIZE_MB`, 10).
    pub max_upload_bytes: u64,
    /// WebP quality of every variant (`WEBP_QUALITY`, 85).
    pub webp_quality: u8,
    /// The formats every variant is stored in (`IMGEST_OUTPUT_FORMATS`, `webp`; `webp,avif`
    /// stores both, and `GET /api/v1/images/{id}/{variant}` picks one by `Accept`). The first is
    /// the one served to clients that accept none of the others.
    pub output_formats: Vec<imgest::OutputFormat>,
    /// Where to listen (`IMGEST_HOST`, `IMGEST_PORT`; 127.0.0.1:8000).
    pub addr: SocketAddr,
    /// Upload bodies received at once (`IMGEST_MAX_CONCURRENT_UPLOADS`, 32); more get 503.
    pub max_concurrent_uploads: usize,
    /// Jobs processed at once (`IMGEST_WORKERS`; the number of cores).
    pub workers: usize,
    /// Attempts per job: the first one plus 3 retries (`IMGEST_JOB_MAX_ATTEMPTS`, 4).
    pub max_attempts: u32,
    /// First retry delay, doubled for each later one (`IMGEST_RETRY_BASE_MS`, 1000).
    pub retry_base: Duration,
    /// How long a claimed job stays leased to its worker (`IMGEST_JOB_LEASE_SECS`, 300).
    pub job_lease: Duration,
    /// How long the pipeline may run for one job (`IMGEST_JOB_TIMEOUT_SECS`, 120; fractions
    /// allowed): past it the run is stopped and the job fails with `timeout`, not retried.
    pub job_timeout: Duration,
    /// Origins whose pages may call the API from a browser (`CORS_ORIGINS`, comma-separated
    /// exact origins such as `https://app.example.com`; empty: no CORS headers at all).
    pub cors_origins: Vec<String>,
    /// How long a variant's `signed_url` works at least (`SIGNED_URL_TTL_SECS`, 3600).
    pub signed_url_ttl: Duration,
}

/// A configuration problem, reported before the server starts.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub name: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl Config {
    /// Reads the configuration through `get` (the process environment in `main`).
    ///
    /// `dev_secret` replaces a missing `JWT_SECRET_KEY` (the `--dev` mode); without it a
    /// missing secret is an error.
    pub fn from_env(
        get: impl Fn(&str) -> Option<String>,
        dev_secret: Option<String>,
    ) -> Result<Config, ConfigError> {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let jwt_secret = match (var("JWT_SECRET_KEY"), dev_secret) {
            (Some(s), _) => s,
            (None, Some(s)) => s,
            (None, None) => {
                return Err(ConfigError {
                    name: "JWT_SECRET_KEY",
                    problem: "not set: set it to a long random string, or start with --dev".into(),
                });
            }
        };
        if jwt_secret.len() < 16 {
            return Err(ConfigError {
                name: "JWT_SECRET_KEY",
                problem: "shorter than 16 characters".into(),
            });
        }
        let storage = match var("STORAGE_BACKEND").as_deref().unwrap_or("local") {
            "local" => StorageBackend::Local(
                var("STORAGE_PATH")
                    .map_or_else(|| PathBuf::from("imgest-data/storage"), PathBuf::from),
            ),
            "s3" => StorageBackend::S3 {
                bucket: var("S3_BUCKET").ok_or(ConfigError {
                    name: "S3_BUCKET",
                    problem: "required when STORAGE_BACKEND=s3".into(),
                })?,
                endpoint: var("S3_ENDPOINT"),
            },
            other => {
                return Err(ConfigError {
                    name: "STORAGE_BACKEND",
                    problem: format!("{other:?} is not one of local, s3"),
                });
            }
        };
        let number =
            |name: &'static str, default: u64, min: u64, max: u64| -> Result<u64, ConfigError> {
                match var(name) {
                    None => Ok(default),
                    Some(v) => match v.trim().parse::<u64>() {
                        Ok(n) if (min..=max).contains(&n) => Ok(n),
                        _ => Err(ConfigError {
                            name,
                            problem: format!("{v:?} is not a whole number in {min}..={max}"),
                        }),
                    },
                }
            };
        let host: IpAddr = match var("IMGEST_HOST") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(h) => h.parse().map_err(|_| ConfigError {
                name: "IMGEST_HOST",
                problem: format!("{h:?} is not an IP address"),
            })?,
        };
        let port = number("IMGEST_PORT", 8000, 0, 65535)? as u16;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Config {
            jwt_secret,
            storage,
            database_path: var("DATABASE_PATH")
                .map_or_else(|| PathBuf::from("imgest-data/imgest.db"), PathBuf::from),
            database_url: match var("DATABASE_URL") {
                Some(u)
                    if !["postgres://", "postgresql://", "sqlite:"]
                        .iter()
                        .any(|p| u.starts_with(p)) =>
                {
                    return Err(ConfigError {
                        name: "DATABASE_URL",
                        problem: "not a postgres:// or sqlite: URL".into(),
                    });
                }
                u => u,
            },
            redis_url: match var("REDIS_URL") {
                Some(u) if !u.starts_with("redis://") && !u.starts_with("rediss://") => {
                    return Err(ConfigError {
                        name: "REDIS_URL",
                        problem: "not a redis:// URL".into(),
                    });
                }
                u => u,
            },
            heartbeat: Duration::from_secs(number("IMGEST_HEARTBEAT_SECS", 5, 1, 3600)?),
            rate_limit_max_uploads: number("RATE_LIMIT_MAX_UPLOADS", 50, 1, 1_000_000)? as u32,
            max_upload_bytes: number("MAX_UPLOAD_SIZE_MB", 10, 1, 1024)? * 1024 * 1024,
            webp_quality: number("WEBP_QUALITY", 85, 1, 100)? as u8,
            output_formats: match var("IMGEST_OUTPUT_FORMATS") {
                None => vec![imgest::OutputFormat::Webp],
                Some(list) => parse_formats(&list).map_err(|problem| ConfigError {
                    name: "IMGEST_OUTPUT_FORMATS",
                    problem,
                })?,
            },
            addr: SocketAddr::new(host, port),
            workers: number("IMGEST_WORKERS", cores as u64, 1, 256)? as usize,
            max_concurrent_uploads: number("IMGEST_MAX_CONCURRENT_UPLOADS", 32, 1, 100_000)?
                as usize,
            max_attempts: number("IMGEST_JOB_MAX_ATTEMPTS", 4, 1, 100)? as u32,
            retry_base: Duration::from_millis(number("IMGEST_RETRY_BASE_MS", 1000, 0, 3_600_000)?),
            job_lease: Duration::from_secs(number("IMGEST_JOB_LEASE_SECS", 300, 1, 86_400)?),
            job_timeout: match var("IMGEST_JOB_TIMEOUT_SECS") {
                None => Duration::from_secs(120),
                Some(v) => match v.trim().parse::<f64>() {
                    Ok(s) if (0.001..=86_400.0).contains(&s) => Duration::from_secs_f64(s),
                    _ => {
                        return Err(ConfigError {
                            name: "IMGEST_JOB_TIMEOUT_SECS",
                            problem: format!(
                                "{v:?} is not a number of seconds from 0.001 to 86400"
                            ),
                        });
                    }
                },
            },
            cors_origins: match var("CORS_ORIGINS") {
                None => Vec::new(),
                Some(list) => parse_origins(&list).map_err(|problem| ConfigError {
                    name: "CORS_ORIGINS",
                    problem,
                })?,
            },
            signed_url_ttl: Duration::from_secs(number(
                "SIGNED_URL_TTL_SECS",
                3600,
                1,
                7 * 86_400,
            )?),
        })
    }
}

/// `IMGEST_OUTPUT_FORMATS`: comma-separated `webp` and `avif` (each at most once).
fn parse_formats(list: &str) -> Result<Vec<imgest::OutputFormat>, String> {
    let mut formats = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let format = match name.to_ascii_lowercase().as_str() {
            "webp" => imgest::OutputFormat::Webp,
            "avif" => imgest::OutputFormat::Avif,
            _ => return Err(format!("{name:?} is not an output format (webp or avif)")),
        };
        if formats.contains(&format) {
            return Err(format!("{name} is listed twice"));
        }
        formats.push(format);
    }
    if formats.is_empty() {
        return Err("no format listed (webp, avif)".into());
    }
    Ok(formats)
}

/// `CORS_ORIGINS`: comma-separated exact origins, `scheme://host[:port]` as a browser sends
/// them in `Origin` (no path, no trailing slash, no wildcard).
fn parse_origins(list: &str) -> Result<Vec<String>, String> {
    let mut origins = Vec::new();
    for origin in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let rest = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        let valid = rest.is_some_and(|host| {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        });
        if !valid {
            return Err(format!(
                "{origin:?} is not an origin like https://app.example.com (scheme and host, \
                 optional port, no path or wildcard)"
            ));
        }
        origins.push(origin.to_ascii_lowercase());
    }
    Ok(origins)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_are_the_original_services() {
        let c = Config::from_env(env(&[("JWT_SECRET_KEY", "0123456789abcdef0123")]), None).unwrap();
        assert_eq!(c.rate_limit_max_uploads, 50);
        assert_eq!(c.max_upload_bytes, 10 * 1024 * 1024);
        assert_eq!(c.webp_quality, 85);
        assert_eq!(c.max_attempts, 4);
        assert_eq!(c.addr.to_string(), "127.0.0.1:8000");
        assert_eq!(
            c.storage,
            StorageBackend::Local("imgest-data/storage".into())
        );
        assert_eq!(c.cors_origins, Vec::<String>::new());
        assert_eq!(c.signed_url_ttl, Duration::from_secs(3600));
    }

    #[test]
    fn cors_origins_are_exact_origins() {
        let c = Config::from_env(
            env(&[
                ("JWT_SECRET_KEY", "0123456789abcdef0123"),
                (
                    "CORS_ORIGINS",
                    "https://App.example.com, http://127.0.0.1:5173,,http://[::1]:8080",
                ),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(
            c.cors_origins,
            [
                "https://app.example.com",
                "http://127.0.0.1:5173",
                "http://[::1]:8080"
            ]
        );
    }

    #[test]
    fn output_formats() {
        let key = ("JWT_SECRET_KEY", "0123456789abcdef0123");
        let c = Config::from_env(env(&[key]), None).unwrap();
        assert_eq!(c.output_formats, [imgest::OutputFormat::Webp]);
        let c =
            Config::from_env(env(&[key, ("IMGEST_OUTPUT_FORMATS", "webp, AVIF")]), None).unwrap();
        assert_eq!(
            c.output_formats,
            [imgest::OutputFormat::Webp, imgest::OutputFormat::Avif]
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = Config::from_env(env(&[]), None).unwrap_err();
        assert_eq!(e.name, "JWT_SECRET_KEY");
        let base = [("JWT_SECRET_KEY", "0123456789abcdef0123")];
        for (name, value) in [
            ("WEBP_QUALITY", "101"),
            ("IMGEST_OUTPUT_FORMATS", "webp,gif"),
            ("IMGEST_OUTPUT_FORMATS", "avif,avif"),
            ("IMGEST_OUTPUT_FORMATS", " , "),
            ("MAX_UPLOAD_SIZE_MB", "ten"),
            ("RATE_LIMIT_MAX_UPLOADS", "0"),
            ("STORAGE_BACKEND", "ftp"),
            ("IMGEST_HOST", "localhost:80"),
            ("DATABASE_URL", "mysql://db/imgest"),
            ("REDIS_URL", "127.0.0.1:6379"),
            ("IMGEST_HEARTBEAT_SECS", "0"),
            ("CORS_ORIGINS", "*"),
            ("CORS_ORIGINS", "https://app.example.com/"),
            ("CORS_ORIGINS", "app.example.com"),
            (
                "CORS_ORIGINS",
                "https://ok.example.com, https://a.example.com/path",
            ),
            ("SIGNED_URL_TTL_SECS", "0"),
        ] {
            let mut pairs = base.to_vec();
            pairs.push((name, value));
            let e = Config::from_env(env(&pairs), None).unwrap_err();
            assert_eq!(e.name, name, "{e}");
        }
        let mut pairs = base.to_vec();
        pairs.push(("STORAGE_BACKEND", "s3"));
        assert_eq!(
            Config::from_env(env(&pairs), None).unwrap_err().name,
            "S3_BUCKET"
        );
    }
}
