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
pub mod health;
pub mod jobs;
pub mod linger;
pub mod metrics;
pub mod queue;
pub mod request_id;
#[cfg(feature = "s3")]
pub mod s3;
pub mod signed;
pub mod storage;

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::routing::{get, post};
use imgest::storage::Storage;
use tokio::sync::{Notify, Semaphore, watch};
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
    /// The pipelines every job runs on (one set of options; scratch kept across jobs).
    pub pipelines: imgest::PipelinePool,
    /// The pipeline's variant names and the public name each is stored under: a variant in a
    /// second output format runs as `{name}-{format}` and is stored as `name` in that format.
    pub variant_names: Vec<(String, String)>,
    /// Bounds the CPU work running at once (one permit per worker).
    pub cpu: Arc<Semaphore>,
    /// Bounds the upload bodies held in memory at once.
    pub upload_slots: Arc<Semaphore>,
    /// Wakes an idle worker when a job is queued.
    pub wake: Notify,
    /// Prometheus metrics.
    pub metrics: metrics::Metrics,
    /// Signs and checks variant URLs.
    pub signer: signed::Signer,
}

/// Every base variant in every configured output format (the first format keeps the name;
/// the others run as `{name}-{format}`), with `WEBP_QUALITY` on the WebP ones, and the public
/// name of each.
fn output_variants(
    base: &[imgest::Variant],
    config: &Config,
) -> (Vec<imgest::Variant>, Vec<(String, String)>) {
    let mut variants = Vec::new();
    let mut names = Vec::new();
    for (i, &format) in config.output_formats.iter().enumerate() {
        for v in base {
            let mut v = v.clone().with_format(format);
            if format == imgest::OutputFormat::Webp {
                v.quality = config.webp_quality;
            }
            let public = v.name.clone();
            if i > 0 {
                v.name = format!("{}-{}", v.name, format.as_str());
            }
            names.push((v.name.clone(), public));
            variants.push(v);
        }
    }
    (variants, names)
}

impl Inner {
    /// The name a pipeline variant is stored under.
    pub fn public_name<'a>(&'a self, pipeline_name: &'a str) -> &'a str {
        self.variant_names
            .iter()
            .find(|(n, _)| n == pipeline_name)
            .map_or(pipeline_name, |(_, public)| public)
    }
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
        let mut options = imgest::Options::default()
            .with_timeout_ms(Some(config.job_timeout.as_millis().max(1) as u64));
        options.limits.max_input_bytes = config.max_upload_bytes;
        let (variants, variant_names) = output_variants(&options.variants, &config);
        options.variants = variants;
        let pipelines = imgest::PipelinePool::new(options).map_err(|e| e.to_string())?;
        let signer = signed::Signer::new(&config.jwt_secret, config.signed_url_ttl.as_secs());
        Ok(AppState(Arc::new(Inner {
            cpu: Arc::new(Semaphore::new(config.workers)),
            upload_slots: Arc::new(Semaphore::new(config.max_concurrent_uploads)),
            config,
            db,
            queue,
            worker_name: format!("{}-{}", queue::hostname(), std::process::id()),
            storage,
            pipelines,
            variant_names,
            wake: Notify::new(),
            metrics: metrics::Metrics::new(),
            signer,
        })))
    }
}

/// The OpenAPI description (`GET /openapi.json`, rendered at `/docs`).
#[derive(OpenApi)]
#[openapi(
    info(title = "imgest-server", description = "Upload an image, get safe web-ready variants.\n\n\
        Authenticate with `Authorization: Bearer <JWT>` (HS256 with the server's secret, claims \
        `sub` and `exp`). Every error answers `{\"error\": {\"code\", \"message\"}}` (`ErrorBody`); \
        every response carries `X-Request-Id`."),
    paths(
        api::upload, api::get_job, api::get_image, api::get_variant, api::list_images,
        api::delete_image, api::audit, health::health, health::stats, health::activity, health::metrics
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail)),
    modifiers(&BearerAuth, &RequestIds)
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

/// `X-Request-Id` on every operation: an optional request header, and on every response.
struct RequestIds;

impl utoipa::Modify for RequestIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::header::HeaderBuilder;
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::{ObjectBuilder, RefOr, Required, Type};
        let string = || ObjectBuilder::new().schema_type(Type::String).build();
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.delete,
                &mut item.put,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                op.parameters.get_or_insert_with(Vec::new).push(
                    ParameterBuilder::new()
                        .name("X-Request-Id")
                        .parameter_in(ParameterIn::Header)
                        .required(Required::False)
                        .description(Some(
                            "your id for this request (1-128 of A-Z a-z 0-9 - _ . : / + =); \
                             another one is made when absent or unusable",
                        ))
                        .schema(Some(string()))
                        .build(),
                );
                for response in op.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        response.headers.insert(
                            "X-Request-Id".into(),
                            HeaderBuilder::new()
                                .schema(string())
                                .description(Some(
                                    "the request's id, also on its log lines and its job",
                                ))
                                .build(),
                        );
                    }
                }
            }
        }
    }
}

/// The CORS policy for `CORS_ORIGINS` (none when it is empty): those origins may call every
/// route with a bearer token and read the headers a client needs.
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_NONE_MATCH,
                api::IDEMPOTENCY_KEY.clone(),
                request_id::HEADER.clone(),
            ])
            .expose_headers([
                header::LOCATION,
                header::RETRY_AFTER,
                header::ETAG,
                header::WWW_AUTHENTICATE,
                api::IDEMPOTENT_REPLAYED.clone(),
                request_id::HEADER.clone(),
                HeaderName::from_static("x-ratelimit-limit"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// The router.
///
/// Everything is under `/api/v1` (health included), with aliases at the paths the original
/// service and load balancers use: `POST /api/v1/images/upload`, `GET /api/v1/images/jobs/{id}`,
/// `/health`, `/health/stats`, `/health/activity`. The monitoring page, Prometheus metrics,
/// the API page and its document sit at the root: `/dashboard`, `/metrics`, `/docs`,
/// `/openapi.json`.
pub fn app(state: AppState) -> Router {
    let upload_limit = (state.config.max_upload_bytes + api::MULTIPART_OVERHEAD) as usize;
    let upload_layers = (
        DefaultBodyLimit::max(upload_limit),
        // An upload refused before its body is read is answered once the body is in.
        axum::middleware::from_fn_with_state(upload_limit as u64, linger::drain_unread),
        // A slow sender cannot hold an upload slot forever.
        tower_http::timeout::RequestBodyTimeoutLayer::new(Duration::from_secs(120)),
    );
    let health_routes = Router::new()
        .route("/health", get(health::health))
        .route("/health/stats", get(health::stats))
        .route("/health/activity", get(health::activity));
    let v1 = Router::new()
        .route(
            "/images",
            get(api::list_images)
                .post(api::upload)
                .layer(upload_layers.clone()),
        )
        .route("/images/upload", post(api::upload).layer(upload_layers))
        .route(
            "/images/{id}",
            get(api::get_image).delete(api::delete_image),
        )
        .route("/images/{id}/{variant}", get(api::get_variant))
        .route("/images/jobs/{id}", get(api::get_job))
        .route("/jobs/{id}", get(api::get_job))
        .route("/audit", get(api::audit))
        .route("/health/", get(health::health))
        .merge(health_routes.clone());
    let swagger = utoipa_swagger_ui::SwaggerUi::new("/docs")
        .url("/openapi.json", ApiDoc::openapi())
        .config(
            utoipa_swagger_ui::Config::default()
                .persist_authorization(true)
                .display_request_duration(true),
        );
    let mut router = Router::new()
        .nest("/api/v1", v1)
        .merge(health_routes)
        .route("/metrics", get(health::metrics))
        .route("/dashboard", get(health::dashboard))
        .merge(swagger)
        .fallback(|| async { ApiError::not_found("route") })
        .layer(tower_http::trace::TraceLayer::new_for_http());
    if let Some(cors) = cors(&state.config.cors_origins) {
        router = router.layer(cors);
    }
    // Outermost, so every answer carries the id (CORS preflights and errors included).
    router
        .layer(axum::middleware::from_fn(request_id::layer))
        .with_state(state)
}

/// Runs the server on `config.addr` until Ctrl-C or SIGTERM: requeues jobs a previous run left
/// unfinished, starts the workers, serves. Calls `on_listen` with the bound address.
///
/// At the first Ctrl-C or SIGTERM it stops accepting connections, finishes the requests in
/// progress, lets the workers finish the jobs in hand (they take no new ones), then returns. A
/// second signal stops at once (jobs still running are requeued at the next start).
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
    let (stop_tx, stop_rx) = watch::channel(false);
    // With Redis, `imgest-server worker` processes run the jobs.
    let workers = if state.queue.is_none() {
        jobs::spawn_workers(&state, &stop_rx)
    } else {
        Vec::new()
    };
    on_listen(addr);
    let router = app(state.clone());
    let stopping = async move {
        shutdown_signal().await;
        let busy = state.config.workers - state.cpu.available_permits().min(state.config.workers);
        tracing::info!("stopping: no new connections; finishing {busy} jobs in hand");
        let _ = stop_tx.send(true);
    };
    let served = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(stopping);
    let drained = async {
        served.await.map_err(|e| e.to_string())?;
        for w in workers {
            let _ = w.await;
        }
        Ok::<(), String>(())
    };
    // The first signal is taken by `stopping`; wait for it before listening for a second.
    let mut stopped = stop_rx.clone();
    let second = async move {
        let _ = stopped.wait_for(|s| *s).await;
        shutdown_signal().await;
        tracing::warn!("second signal: stopping now; running jobs are requeued at the next start");
    };
    tokio::select! {
        done = drained => done?,
        () = second => {}
    }
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
