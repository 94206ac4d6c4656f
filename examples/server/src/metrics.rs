//! Prometheus metrics (`GET /metrics`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// A label with one value.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    /// `accepted`, `rejected`, `rate_limited`, `done`, `failed`, `retried`.
    pub outcome: String,
}

/// The service's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Upload requests by outcome.
    pub uploads: Family<Outcome, Counter>,
    /// Job attempts by how they ended.
    pub jobs: Family<Outcome, Counter>,
    /// Processing time of successful jobs.
    pub job_seconds: Histogram,
    /// Requests rejected for a missing or bad token.
    pub auth_failures: Counter,
    /// Jobs waiting (set at scrape time).
    pub queue_depth: Gauge,
    /// Jobs running (set at scrape time).
    pub active_jobs: Gauge,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("imgest");
        let uploads = Family::<Outcome, Counter>::default();
        let jobs = Family::<Outcome, Counter>::default();
        let job_seconds = Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]);
        let auth_failures = Counter::default();
        let queue_depth = Gauge::default();
        let active_jobs = Gauge::default();
        registry.register("uploads", "Upload requests by outcome", uploads.clone());
        registry.register("job_attempts", "Job attempts by outcome", jobs.clone());
        registry.register(
            "job_duration_seconds",
            "Processing time of successful jobs",
            job_seconds.clone(),
        );
        registry.register(
            "auth_failures",
            "Requests rejected for a missing or invalid token",
            auth_failures.clone(),
        );
        registry.register("queue_depth", "Jobs queued", queue_depth.clone());
        registry.register("active_jobs", "Jobs being processed", active_jobs.clone());
        Metrics {
            registry,
            uploads,
            jobs,
            job_seconds,
            auth_failures,
            queue_depth,
            active_jobs,
        }
    }

    /// Counts one upload outcome.
    pub fn upload(&self, outcome: &str) {
        self.uploads
            .get_or_create(&Outcome {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Counts one job attempt outcome.
    pub fn job(&self, outcome: &str) {
        self.jobs
            .get_or_create(&Outcome {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}
