//! The scraping runtime: what a handler is, and what it can use while a worker runs it.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::model::Scraper;

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

/// Severity of a job log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
}

/// What the worker running a job offers the job's context: the link back to the queue and
/// the scraper's storage.
#[async_trait]
pub trait JobHooks: Send + Sync {
    /// Tells the queue the job is alive. An error means the job was killed or declared dead:
    /// the handler should stop.
    async fn heartbeat(&self) -> Result<(), crate::Error>;
    /// Persists the scraper's state for its next runs.
    async fn update_scraper_state(&self, state: Option<String>) -> Result<Scraper, crate::Error>;
    /// Appends a line to the job's log (readable from the UI and the API while it runs).
    fn log(&self, level: LogLevel, message: String);
}

/// What a running handler gets: its scraper's parameters and state.
pub struct ScraperContext {
    scraper: Scraper,
    hooks: Arc<dyn JobHooks>,
}

impl ScraperContext {
    pub fn new(scraper: Scraper, hooks: Arc<dyn JobHooks>) -> Self {
        ScraperContext { scraper, hooks }
    }

    /// Writes to the job's log.
    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        self.hooks.log(level, message.into());
    }

    /// Persists `state` on the scraper; its next run sees it in [`ScraperContext::state`].
    pub async fn update_scraper_state(&mut self, state: Option<String>) -> Result<(), crate::Error> {
        self.scraper = self.hooks.update_scraper_state(state).await?;
        Ok(())
    }

    /// `config.params` of the scraper (empty when unset).
    pub fn params(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.scraper.config.params.as_ref().unwrap_or_else(|| EMPTY.get_or_init(Map::new))
    }

    /// The state the scraper's previous runs left.
    pub fn state(&self) -> Option<&str> {
        self.scraper.state.as_deref()
    }

    pub fn scraper(&self) -> &Scraper {
        &self.scraper
    }
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
        if self.by_name.insert(name.clone(), Arc::new(handler)).is_none() {
            self.names.push(name);
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn ScraperHandler>> {
        self.by_name.get(name).cloned()
    }

    /// Names in registration order, as `get_scraper_handlers` returns them.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}
