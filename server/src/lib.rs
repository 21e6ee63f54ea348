//! The Sneakpeek server: configuration, wiring of the engine, and the HTTP surface (the
//! Leptos UI with its server functions, the JsonRPC API, health checks).
//!
//! Rust users embed it with their own handlers:
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! server::Server::builder().build().await.map_err(std::io::Error::other)?.run().await
//! # }
//! ```

// The UI's views are deeply nested types; rendering them needs more than the default.
#![recursion_limit = "256"]

pub mod auth;
pub mod body_limit;
pub mod docs;
pub mod guard;
pub mod jsonrpc;
pub mod metrics;
pub mod openapi;
pub mod proxy;
pub mod sessions;
pub mod settings;
pub mod startup;

use std::future::{Future, IntoFuture};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use engine::scraper::middleware::PostgresRateLimitStore;
use engine::scraper::{builtin_handlers, Handlers, Runtime, ScraperHandler};
use engine::storage::postgres::PostgresStorage;
use engine::storage::Storages;
use engine::Engine;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultMakeSpan, TraceLayer};

pub use settings::Settings;
pub use startup::StartupError;

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub engine: Engine,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// Collects settings and handlers, then connects the storages.
pub struct ServerBuilder {
    settings: Settings,
    handlers: Handlers,
}

impl ServerBuilder {
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Registers a scraper handler next to the built-in ones.
    pub fn handler(mut self, handler: impl ScraperHandler) -> Self {
        self.handlers.register(handler);
        self
    }

    /// Checks the settings and connects the storages (running the PostgreSQL migrations
    /// when a database is set). The error names the setting or file at fault.
    pub async fn build(self) -> Result<Server, StartupError> {
        self.settings
            .validate()
            .map_err(StartupError::InvalidSettings)?;
        let listed = match &self.settings.scrapers_file {
            Some(path) => settings::read_scrapers_file(path)?,
            None => Vec::new(),
        };
        for scraper in &listed {
            engine::schedule::validate_scraper(scraper, self.handlers.names()).map_err(
                |error| StartupError::InvalidListedScraper {
                    name: scraper.name.clone(),
                    error,
                },
            )?;
        }
        let runtime_settings = self.settings.runtime();
        let (storages, runtime) = match &self.settings.database_url {
            Some(url) => {
                let database = PostgresStorage::connect(url.expose(), self.settings.read_only)
                    .await
                    .map_err(StartupError::Database)?;
                // Rate limits hold across every replica sharing the database.
                let rate_limits = Arc::new(PostgresRateLimitStore::new(database.pool().clone()));
                let runtime = Runtime::with_rate_limit_store(runtime_settings, rate_limits)?;
                let storages = Storages::from_postgres(database);
                seed_scrapers(&storages, listed).await?;
                (storages, runtime)
            }
            None => (
                Storages::in_memory(listed, self.settings.read_only),
                Runtime::from_settings(runtime_settings)?,
            ),
        };
        Ok(Server {
            engine: Engine::new(storages, self.handlers, runtime),
            settings: self.settings,
        })
    }
}

/// Creates the listed scrapers whose names are not stored yet. Seeding bypasses read-only
/// mode on purpose: the file is the operator's, not an API client's.
async fn seed_scrapers(
    storages: &Storages,
    listed: Vec<engine::model::Scraper>,
) -> Result<(), StartupError> {
    if listed.is_empty() {
        return Ok(());
    }
    let stored = storages
        .scrapers
        .get_scrapers()
        .await
        .map_err(StartupError::Database)?;
    for scraper in listed
        .into_iter()
        .filter(|scraper| !stored.iter().any(|existing| existing.name == scraper.name))
    {
        let name = scraper.name.clone();
        match storages.scrapers.create_scraper(scraper).await {
            Ok(created) => {
                tracing::info!(id = created.id, name = %created.name, "created scraper from the scrapers file")
            }
            Err(engine::Error::ReadOnly) => return Err(StartupError::SeedReadOnly { name }),
            Err(source) => return Err(StartupError::Seed { name, source }),
        }
    }
    Ok(())
}

/// A configured server, ready to serve.
pub struct Server {
    settings: Settings,
    engine: Engine,
}

impl Server {
    /// A builder with the default settings and the built-in handlers (`extract`, `script`).
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            settings: Settings::defaults(),
            handlers: builtin_handlers(),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Serves on the configured address until SIGINT or SIGTERM.
    pub async fn run(self) -> std::io::Result<()> {
        if self.settings.components.no_web {
            tracing::info!("running without the UI and the API");
            return self.run_components(None, shutdown_signal()).await;
        }
        let address = self.settings.listen;
        let listener = TcpListener::bind(address).await.map_err(|error| {
            std::io::Error::new(error.kind(), format!("--listen {address}: {error}"))
        })?;
        tracing::info!("listening on http://{}", listener.local_addr()?);
        self.serve(listener, shutdown_signal()).await
    }

    /// Runs this replica's components, serving HTTP on `listener`, until `shutdown`
    /// completes; then at once stops claiming jobs and firing schedules and ends the live
    /// streams, and within the grace period (`--shutdown-grace-seconds`) finishes the
    /// requests in flight, lets running jobs finish and releases the scheduler lease.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        self.run_components(Some(listener), shutdown).await
    }

    /// The scheduler and worker this replica runs, plus HTTP when there is a listener.
    async fn run_components(
        self,
        listener: Option<TcpListener>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        let Some(listener) = listener else {
            let background = self
                .engine
                .start(self.settings.scheduler(), self.settings.worker());
            shutdown.await;
            background.stop().await;
            return Ok(());
        };
        let options = leptos_options(listener.local_addr()?);
        let background = self
            .engine
            .start(self.settings.scheduler(), self.settings.worker());
        // Turns true on shutdown: it ends the live streams and starts HTTP's graceful shutdown.
        let (close, mut closing) = tokio::sync::watch::channel(false);
        let app = router(self.engine, options, &self.settings, closing.clone());
        let graceful = async move {
            let _ = closing.wait_for(|closing| *closing).await;
        };
        let http = tokio::spawn(
            // With each connection's peer address: the sign-in limit counts per client.
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(graceful)
            .into_future(),
        );
        shutdown.await;
        // The components first: whatever HTTP still has to finish, nothing is claimed or
        // fired from now on.
        background.signal_stop();
        let _ = close.send(true);
        // Requests in flight get the grace period running jobs get, at the same time; a
        // client that keeps its response open (or never reads it) cannot hold the exit.
        let grace = Duration::from_secs(self.settings.jobs.shutdown_grace_seconds);
        let drained = async {
            match tokio::time::timeout(grace, http).await {
                Ok(served) => served.map_err(std::io::Error::other)?,
                Err(_) => {
                    tracing::warn!(
                        "shutdown grace period over; not waiting for the HTTP responses still open"
                    );
                    Ok(())
                }
            }
        };
        let (served, ()) = tokio::join!(drained, background.stop());
        served
    }
}

/// The UI's routes, generated once per process. Generating them runs the app with resource
/// loading suspended by a process-wide flag, so a page another server of the same process
/// started rendering meanwhile would wait forever for its data (leptos_server's
/// `SuppressResourceLoad`): a second router, as tests and embedders build, must not do it again.
fn ui_routes() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(app::App)).clone()
}

/// The whole HTTP surface. The live streams end once `closing` turns true.
pub fn router(
    engine: Engine,
    leptos_options: LeptosOptions,
    settings: &Settings,
    closing: tokio::sync::watch::Receiver<bool>,
) -> Router {
    metrics::recorder();
    let state = AppState {
        leptos_options,
        engine,
    };
    let routes = ui_routes();
    let context_engine = state.engine.clone();
    let shell_options = state.leptos_options.clone();
    let access = auth::AccessControl::new(settings);
    // Only API calls get the timeout: the UI's live streams are meant to stay open.
    let api = Router::new()
        .route("/api/v1/jsonrpc", post(jsonrpc::endpoint))
        .route("/api/v1/jsonrpc/{method}", post(jsonrpc::endpoint))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(settings.request_timeout_seconds),
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::endpoint))
        .route("/login", post(auth::login).with_state(access.clone()))
        .route("/logout", post(auth::logout).with_state(access.clone()))
        .merge(api)
        .merge(openapi::router())
        .merge(docs::router())
        .merge(app::live::router(state.engine.clone(), closing))
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(context_engine.clone()),
            move || app::shell(shell_options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(
            app::shell,
        ))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            access,
            auth::require_token,
        ))
        // One body limit, the configured one: axum's extractors would stop at 2 MiB otherwise.
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(RequestBodyLimitLayer::new(settings.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            settings.max_body_bytes,
            body_limit::refuse_oversized,
        ))
        .layer(cors(&settings.cors_allow_origin))
        // Requests for other host names or from other sites go no further.
        .layer(axum::middleware::from_fn_with_state(
            guard::Guard::new(&settings.allowed_hosts, &settings.cors_allow_origin),
            guard::protect,
        ))
        // Outermost: what is logged while a request is served names it (method and path),
        // and `--log tower_http=debug` logs each request's start, status and latency.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(tracing::Level::INFO)),
        )
}

/// Same-origin only unless origins are listed (the original allowed every origin).
fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| origin.parse().ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
}

/// `GET /readyz`: 200 when the storage answers and every component this replica started
/// still runs; 503 naming what is wrong otherwise.
async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> (StatusCode, String) {
    // A stopped scheduler or worker never comes back by itself: the replica needs a restart.
    let stopped = state.engine.status().stopped;
    if !stopped.is_empty() {
        let stopped = format!("{} stopped", stopped.join(" and "));
        tracing::warn!("not ready: {stopped}");
        return (StatusCode::SERVICE_UNAVAILABLE, stopped);
    }
    match state
        .engine
        .storages()
        .jobs
        .get_queue_len(engine::model::ScraperJobPriority::Normal)
        .await
    {
        Ok(_) => (StatusCode::OK, "ready".to_owned()),
        Err(error) => {
            tracing::warn!(error = %error.report(), "not ready: the storage does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "storage unavailable".to_owned(),
            )
        }
    }
}

/// Leptos' settings: `cargo leptos` passes them in `LEPTOS_*` variables; a plain run uses
/// the build layout (`target/site`, output name `sneakpeek`).
fn leptos_options(address: std::net::SocketAddr) -> LeptosOptions {
    let variable =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    LeptosOptions::builder()
        .output_name(variable("LEPTOS_OUTPUT_NAME", "sneakpeek"))
        .site_root(variable("LEPTOS_SITE_ROOT", "target/site"))
        .site_pkg_dir(variable("LEPTOS_SITE_PKG_DIR", "pkg"))
        .env(if variable("LEPTOS_ENV", "PROD") == "DEV" {
            leptos::config::Env::DEV
        } else {
            leptos::config::Env::PROD
        })
        .reload_port(
            variable("LEPTOS_RELOAD_PORT", "3001")
                .parse()
                .unwrap_or(3001),
        )
        .site_addr(address)
        .build()
}

/// Completes on the first SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
