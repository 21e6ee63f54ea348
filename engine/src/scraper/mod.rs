//! The scraping runtime: what a handler is, and what it can use while a worker runs it.
//!
//! A worker runs a job with [`run_scraper`]: it finds the scraper's handler in [`Handlers`],
//! builds a [`ScraperContext`] from the process's shared [`Runtime`] and the job's
//! [`JobHooks`], and awaits the handler. Every request a handler makes goes through the
//! [`middleware`] chain, within the [`limits`] of its job and the [`EgressPolicy`] of the
//! process. [`builtin_handlers`] are the `extract` and `script` handlers every server offers.

mod bounded;
mod context;
mod egress;
mod extract;
mod http;
pub mod limits;
pub mod middleware;
pub mod params;
pub mod parse;
mod runtime;
mod script;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::Scraper;
use crate::retry::RetryReason;

/// Re-exported so crates with handlers need no dependency of their own to implement
/// [`ScraperHandler`] and [`JobHooks`].
pub use async_trait::async_trait;
pub use context::ScraperContext;
pub use egress::{EgressDenied, EgressPolicy, EgressRule};
pub use extract::ExtractHandler;
pub use http::{Method, Request, RequestError, Response};
pub use limits::LimitsConfig;
pub use middleware::{MiddlewareConfigError, MiddlewareSettings};
pub use runtime::{Runtime, RuntimeSettings};
pub use script::{ScriptHandler, ScriptLimits};

/// The error a handler fails its job with; its text becomes the job's result.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// A kind of scraper. Handlers are registered with the server by name; a scraper names the
/// handler that runs it.
#[async_trait]
pub trait ScraperHandler: Send + Sync + 'static {
    /// The name scrapers refer to in their `handler` field.
    fn name(&self) -> &str;
    /// Runs the scraper once; the returned text is stored as the job's result.
    async fn run(&self, context: &ScraperContext) -> Result<String, HandlerError>;
}

pub use crate::model::LogLevel;

/// What the worker running a job offers the job's context: the link back to the queue and
/// the scraper's storage.
#[async_trait]
pub trait JobHooks: Send + Sync {
    /// Tells the queue the job is alive. An error means the job was killed or declared dead:
    /// the handler should stop.
    async fn heartbeat(&self) -> Result<(), crate::Error>;
    /// Persists the scraper's state for its next runs; returns the state as stored.
    async fn update_scraper_state(
        &self,
        state: Option<String>,
    ) -> Result<Option<String>, crate::Error>;
    /// Appends a line to the job's log (readable from the UI and the API while it runs).
    fn log(&self, level: LogLevel, message: String);
}

/// The registered handlers, by name, in registration order.
#[derive(Clone, Default)]
pub struct Handlers {
    by_name: BTreeMap<String, Arc<dyn ScraperHandler>>,
    names: Vec<String>,
}

impl Handlers {
    /// Registers a handler; a later one with the same name replaces the earlier.
    pub fn register(&mut self, handler: impl ScraperHandler) -> &mut Self {
        let name = handler.name().to_owned();
        if self
            .by_name
            .insert(name.clone(), Arc::new(handler))
            .is_none()
        {
            self.names.push(name);
        }
        self
    }

    /// The handler registered as `name` (case-sensitive); `None` when this server has none, which
    /// fails a job with `Unknown scraper handler 'name'`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn ScraperHandler>> {
        self.by_name.get(name).cloned()
    }

    /// Names in registration order, as `get_scraper_handlers` returns them.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// The handlers every server registers: `extract` and `script` (with default limits).
pub fn builtin_handlers() -> Handlers {
    let mut handlers = Handlers::default();
    handlers
        .register(ExtractHandler)
        .register(ScriptHandler::default());
    handlers
}

/// Why a job's run failed; its text is the job's result.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No handler of this name (the scraper's `handler`) is registered here.
    #[error("{}", crate::Error::UnknownHandler(.0.clone()).describe())]
    UnknownHandler(String),
    /// The scraper's `config.plugins` cannot be used; the error names the middleware and field.
    #[error(transparent)]
    InvalidMiddlewareConfig(#[from] MiddlewareConfigError),
    /// The handler returned an error (a failed request, a script error, ...); its text is the
    /// result.
    /// The handler returned an error.
    #[error("{error}")]
    Failed {
        /// What the handler returned.
        error: HandlerError,
        /// The last HTTP 429 or 5xx status a request of the job received before it failed
        /// ([`ScraperContext::site_trouble`]).
        site_trouble: Option<u16>,
    },
}

impl RunError {
    /// Why the run failed, as the job's retry policy reads it.
    pub fn retry_reason(&self) -> RetryReason {
        match self {
            RunError::Failed {
                site_trouble: Some(_),
                ..
            } => RetryReason::HttpStatus,
            _ => RetryReason::Error,
        }
    }
}

/// Runs one job of `scraper`: looks up its handler, builds its context and runs it. The
/// caller (the worker, the local runner) owns timeouts and cancellation: dropping the future
/// stops the handler at its next `.await`.
pub async fn run_scraper(
    handlers: &Handlers,
    runtime: &Runtime,
    scraper: Scraper,
    hooks: Arc<dyn JobHooks>,
) -> Result<String, RunError> {
    let handler = handlers
        .get(&scraper.handler)
        .ok_or_else(|| RunError::UnknownHandler(scraper.handler.clone()))?;
    let context = ScraperContext::new(scraper, hooks, runtime)?;
    handler
        .run(&context)
        .await
        .map_err(|error| RunError::Failed {
            error,
            site_trouble: context.site_trouble(),
        })
}
