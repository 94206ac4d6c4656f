//! imgest's reference HTTP service: authenticated uploads, a persisted job queue processed by
//! an in-process worker pool (or, with `REDIS_URL`, by [`work`] processes reading a Redis
//! stream), SQLite or PostgreSQL, variants on local disk or S3, health, statistics, metrics, an
//! audit trail and a monitoring page.
//!
//! [`AppState::new`] opens the database and the storage, [`app`] builds the router (tests can
//! drive it with `tower::ServiceExt::oneshot`), [`serve`] runs everything until Ctrl-C/SIGTERM.

pub mod api;
pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod jobs;
pub mod metrics;
pub mod queue;
#[cfg(feature = "s3")]
pub mod s3;
pub mod storage;

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use imgest::storage::Storage;
use tokio::sync::{Notify, Semaphore};
use utoipa::OpenApi;

pub use config::{Config, ConfigError, StorageBackend};
pub use error::ApiError;

/// Shared state of the handlers and the workers.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What [`AppState`] holds.
pub struct Inner {
    /// The configuration.
    pub config: Config,
    /// The database.
    pub db: db::Db,
    /// The Redis queue, when `REDIS_URL` is set.
    pub queue: Option<queue::RedisQueue>,
    /// This process's name on the jobs it takes (`host-pid`).
    pub worker_name: String,
    /// Originals and variants.
    pub storage: Arc<dyn Storage>,
    /// The pipeline options every job runs with.
    pub options: imgest::Options,
    /// Bounds the CPU work running at once (one permit per worker).
    pub cpu: Arc<Semaphore>,
    /// Bounds the upload bodies held in memory at once.
    pub upload_slots: Arc<Semaphore>,
    /// Wakes an idle worker when a job is queued.
    pub wake: Notify,
    /// Prometheus metrics.
    pub metrics: metrics::Metrics,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Opens the database (running migrations) and, unless `storage` is given, the configured
    /// storage backend.
    pub async fn new(
        config: Config,
        storage: Option<Arc<dyn Storage>>,
    ) -> Result<AppState, String> {
        let storage = match storage {
            Some(s) => s,
            None => storage::open(&config.storage)?,
        };
        let db = match &config.database_url {
            Some(url) => db::open(url)
                .await
                .map_err(|e| format!("DATABASE_URL: {e}"))?,
            None => {
                let path = config.database_path.display();
                let url = db::sqlite_url(&config.database_path)
                    .map_err(|e| format!("DATABASE_PATH {path}: {e}"))?;
                db::open(&url)
                    .await
                    .map_err(|e| format!("DATABASE_PATH {path}: {e}"))?
            }
        };
        let queue = match &config.redis_url {
            Some(url) => Some(queue::RedisQueue::connect(url).await?),
            None => None,
        };
        let mut options = imgest::Options::default();
        options.limits.max_input_bytes = config.max_upload_bytes;
        for v in &mut options.variants {
            v.quality = config.webp_quality;
        }
        options.validate().map_err(|e| e.to_string())?;
        Ok(AppState(Arc::new(Inner {
            cpu: Arc::new(Semaphore::new(config.workers)),
            upload_slots: Arc::new(Semaphore::new(config.max_concurrent_uploads)),
            config,
            db,
            queue,
            worker_name: format!("{}-{}", queue::hostname(), std::process::id()),
            storage,
            options,
            wake: Notify::new(),
            metrics: metrics::Metrics::new(),
        })))
    }
}

/// The OpenAPI description (`GET /openapi.json`).
#[derive(OpenApi)]
#[openapi(
    info(title = "imgest-server", description = "Upload an image, get safe web-ready variants."),
    paths(
        api::upload, api::get_job, api::get_image, api::get_variant, api::list_images,
        api::delete_image, api::audit, api::health, api::stats, api::activity, api::metrics
    ),
    components(schemas(api::UploadAccepted, api::ImageInfo, api::VariantInfo, api::ImageList)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The router.
pub fn app(state: AppState) -> Router {
    let upload_limit = (state.config.max_upload_bytes + api::MULTIPART_OVERHEAD) as usize;
    let v1 = Router::new()
        .route(
            "/images",
            get(api::list_images).post(api::upload).layer((
                DefaultBodyLimit::max(upload_limit),
                // A slow sender cannot hold an upload slot forever.
                tower_http::timeout::RequestBodyTimeoutLayer::new(Duration::from_secs(120)),
            )),
        )
        .route(
            "/images/{id}",
            get(api::get_image).delete(api::delete_image),
        )
        .route("/images/{id}/{variant}", get(api::get_variant))
        .route("/jobs/{id}", get(api::get_job))
        .route("/audit", get(api::audit));
    Router::new()
        .nest("/api/v1", v1)
        .route("/health", get(api::health))
        .route("/health/stats", get(api::stats))
        .route("/health/activity", get(api::activity))
        .route("/metrics", get(api::metrics))
        .route("/dashboard", get(api::dashboard))
        .route("/docs", get(api::docs))
        .route(
            "/openapi.json",
            get(|| async { axum::Json(ApiDoc::openapi()) }),
        )
        .fallback(|| async { ApiError::not_found("route") })
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Runs the server on `config.addr` until Ctrl-C or SIGTERM: requeues jobs a previous run left
/// unfinished, starts the workers, serves. Calls `on_listen` with the bound address.
pub async fn serve(
    config: Config,
    on_listen: impl FnOnce(std::net::SocketAddr),
) -> Result<(), String> {
    let state = AppState::new(config, None).await?;
    // Only a lone process on its own SQLite file knows that every `processing` job was its own;
    // elsewhere an expired lease frees a dead worker's job.
    if state.queue.is_none() && state.db.backend == db::Backend::Sqlite {
        let requeued = db::requeue_interrupted(&state.db)
            .await
            .map_err(|e| e.to_string())?;
        if requeued > 0 {
            tracing::info!("requeued {requeued} jobs interrupted by the previous run");
        }
    }
    let listener = tokio::net::TcpListener::bind(state.config.addr)
        .await
        .map_err(|e| format!("binding {}: {e}", state.config.addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // With Redis, `imgest-server worker` processes run the jobs.
    let workers = if state.queue.is_none() {
        jobs::spawn_workers(&state)
    } else {
        Vec::new()
    };
    on_listen(addr);
    let router = app(state);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|e| e.to_string())?;
    for w in workers {
        w.abort();
    }
    // Jobs still running are requeued on the next start.
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}

/// Runs a worker process (`imgest-server worker`, needs `REDIS_URL`) until Ctrl-C or SIGTERM.
/// Calls `on_ready` with its id once it consumes.
pub async fn work(config: Config, on_ready: impl FnOnce(&str)) -> Result<(), String> {
    if config.redis_url.is_none() {
        return Err(
            "REDIS_URL: required by `worker` (without it the server runs its own workers)".into(),
        );
    }
    let state = AppState::new(config, None).await?;
    let queue = state.queue.clone().ok_or("REDIS_URL: not connected")?;
    queue::run_worker(state, queue, on_ready).await
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
