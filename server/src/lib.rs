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

pub mod jsonrpc;
pub mod settings;

use std::future::Future;

use axum::extract::FromRef;
use axum::routing::{get, post};
use axum::Router;
use engine::scraper::{builtin_handlers, Handlers, MiddlewareSettings, Runtime, ScraperHandler};
use engine::storage::Storages;
use engine::Engine;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::net::TcpListener;

pub use settings::Settings;

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
    /// when a database is set). The error is a message for the person starting the server.
    pub async fn build(self) -> Result<Server, String> {
        self.settings.validate()?;
        let storages = match &self.settings.database_url {
            Some(url) => Storages::postgres(url, self.settings.read_only).await.map_err(|error| format!("{error:?}"))?,
            None => Storages::in_memory(Vec::new(), self.settings.read_only),
        };
        let runtime = Runtime::new(MiddlewareSettings::default()).map_err(|error| error.to_string())?;
        Ok(Server { engine: Engine::new(storages, self.handlers, runtime), settings: self.settings })
    }
}

/// A configured server, ready to serve.
pub struct Server {
    settings: Settings,
    engine: Engine,
}

impl Server {
    /// A builder with the default settings and the built-in handlers (`extract`, `script`).
    pub fn builder() -> ServerBuilder {
        ServerBuilder { settings: Settings::defaults(), handlers: builtin_handlers() }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Serves on the configured address until SIGINT or SIGTERM.
    pub async fn run(self) -> std::io::Result<()> {
        let listener = TcpListener::bind(self.settings.listen).await?;
        tracing::info!("listening on http://{}", listener.local_addr()?);
        self.serve(listener, shutdown_signal()).await
    }

    /// Runs this replica's components, serving HTTP on `listener` (unless the web is off)
    /// until `shutdown` completes; then finishes the requests in flight, stops claiming jobs,
    /// lets running jobs finish within the grace period and releases the scheduler lease.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let background = self.engine.start(self.settings.scheduler(), self.settings.worker());
        let served = if self.settings.components.no_web {
            shutdown.await;
            Ok(())
        } else {
            let app = router(self.engine, leptos_options(listener.local_addr()?));
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await
        };
        background.stop().await;
        served
    }
}

/// The whole HTTP surface.
pub fn router(engine: Engine, leptos_options: LeptosOptions) -> Router {
    let state = AppState { leptos_options, engine };
    let routes = generate_route_list(app::App);
    let context_engine = state.engine.clone();
    let shell_options = state.leptos_options.clone();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/v1/jsonrpc", post(jsonrpc::endpoint))
        .route("/api/v1/jsonrpc/{method}", post(jsonrpc::endpoint))
        .leptos_routes_with_context(&state, routes, move || provide_context(context_engine.clone()), move || app::shell(shell_options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(app::shell))
        .with_state(state)
}

/// Leptos' settings: `cargo leptos` passes them in `LEPTOS_*` variables; a plain run uses
/// the build layout (`target/site`, output name `sneakpeek`).
fn leptos_options(address: std::net::SocketAddr) -> LeptosOptions {
    let variable = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    LeptosOptions::builder()
        .output_name(variable("LEPTOS_OUTPUT_NAME", "sneakpeek"))
        .site_root(variable("LEPTOS_SITE_ROOT", "target/site"))
        .site_pkg_dir(variable("LEPTOS_SITE_PKG_DIR", "pkg"))
        .env(if variable("LEPTOS_ENV", "PROD") == "DEV" { leptos::config::Env::DEV } else { leptos::config::Env::PROD })
        .reload_port(variable("LEPTOS_RELOAD_PORT", "3001").parse().unwrap_or(3001))
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
