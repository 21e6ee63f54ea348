//! What all jobs of one process share while they scrape: the global middleware settings, the
//! HTTP clients (one per proxy route, each with its connection pool), the rate-limit store and
//! the robots.txt cache. The worker holds one [`Runtime`] and hands it to every
//! [`ScraperContext`](super::ScraperContext) it makes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::middleware::{
    MemoryRateLimitStore, MiddlewareConfigError, MiddlewareSettings, ProxyRoute, RateLimitStore,
    RobotsCache,
};

/// Shared scraping state of a process. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    shared: Arc<Shared>,
}

struct Shared {
    settings: MiddlewareSettings,
    rate_limits: Arc<dyn RateLimitStore>,
    robots: RobotsCache,
    clients: Mutex<HashMap<Option<ProxyRoute>, reqwest::Client>>,
}

/// Connecting is bounded; a whole request is not by default, since a download may be big and
/// the job has its own timeout. [`Request::timeout`](super::Request::timeout) bounds one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

impl Runtime {
    /// A runtime whose rate limits hold within this process.
    pub fn new(settings: MiddlewareSettings) -> Result<Runtime, MiddlewareConfigError> {
        Runtime::with_rate_limit_store(settings, Arc::new(MemoryRateLimitStore::default()))
    }

    /// A runtime whose rate limits live in `store`, e.g. a
    /// [`PostgresRateLimitStore`](super::middleware::PostgresRateLimitStore) shared by replicas.
    pub fn with_rate_limit_store(
        settings: MiddlewareSettings,
        store: Arc<dyn RateLimitStore>,
    ) -> Result<Runtime, MiddlewareConfigError> {
        settings.validate()?;
        Ok(Runtime {
            shared: Arc::new(Shared {
                settings,
                rate_limits: store,
                robots: RobotsCache::default(),
                clients: Mutex::default(),
            }),
        })
    }

    /// The global middleware defaults scrapers override.
    pub fn settings(&self) -> &MiddlewareSettings {
        &self.shared.settings
    }

    pub(crate) fn rate_limits(&self) -> Arc<dyn RateLimitStore> {
        self.shared.rate_limits.clone()
    }

    pub(crate) fn robots(&self) -> &RobotsCache {
        &self.shared.robots
    }

    /// The client for a route, built on first use and then reused for its connection pool.
    /// The error says why no client can be built (for the request's error message).
    pub(crate) fn client(&self, proxy: Option<&ProxyRoute>) -> Result<reqwest::Client, String> {
        let mut clients = crate::sync::lock(&self.shared.clients);
        if let Some(client) = clients.get(&proxy.cloned()) {
            return Ok(client.clone());
        }
        let mut builder = reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT);
        if let Some(route) = proxy {
            builder = builder.proxy(
                route
                    .to_proxy()
                    .map_err(|error| format!("unusable proxy {}: {error}", route.url))?,
            );
        }
        let client = builder
            .build()
            .map_err(|error| format!("cannot build an HTTP client: {error}"))?;
        clients.insert(proxy.cloned(), client.clone());
        Ok(client)
    }
}

impl Default for Runtime {
    /// Default middleware settings, in-memory rate limits.
    fn default() -> Self {
        Runtime::new(MiddlewareSettings::default()).expect("default middleware settings are valid")
    }
}
