//! What all jobs of one process share while they scrape: the operator's [`RuntimeSettings`]
//! (global middleware settings, egress policy, ceilings of the request limits, default job
//! timeout), the HTTP clients (one per proxy route, each with its connection pool), the
//! rate-limit store and the robots.txt cache. The worker holds one [`Runtime`] and hands it to
//! every [`ScraperContext`](super::ScraperContext) it makes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::bounded::evict_oldest;
use super::egress::{redirect_policy, EgressPolicy, PolicyResolver};
use super::limits::LimitsConfig;
use super::middleware::{
    MemoryRateLimitStore, MiddlewareConfigError, MiddlewareSettings, ProxyRoute, RateLimitStore,
    RobotsCache, GLOBAL_SCOPE, SCRAPER_SCOPE,
};
use crate::model::Scraper;
use crate::redact::redact_url;
use crate::retry::RetryPolicy;

/// The operator's settings of the scraping runtime.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeSettings {
    /// The global middleware settings and request limits, which scrapers override.
    pub middleware: MiddlewareSettings,
    /// What scrapers may connect to.
    pub egress: EgressPolicy,
    /// The longest timeout a scraper may give its requests (`limits.timeout`, or a request's
    /// own, which is lowered to this).
    pub max_fetch_timeout: Duration,
    /// The largest `limits.max_response_bytes` a scraper may set.
    pub max_fetch_bytes: u64,
    /// The timeout of a job whose scraper sets no `timeout_seconds`.
    pub default_job_timeout_seconds: u64,
    /// The retry policy of jobs whose scraper sets no `retry`.
    pub default_retry: RetryPolicy,
}

impl Default for RuntimeSettings {
    /// Default middleware settings, nothing internal reachable, requests of at most 5 minutes
    /// and 100 MiB, jobs of at most an hour, retried (3 attempts in all) when their worker is
    /// lost.
    fn default() -> Self {
        RuntimeSettings {
            middleware: MiddlewareSettings::default(),
            egress: EgressPolicy::default(),
            max_fetch_timeout: Duration::from_secs(300),
            max_fetch_bytes: 100 * 1024 * 1024,
            default_job_timeout_seconds: 60 * 60,
            default_retry: RetryPolicy::default(),
        }
    }
}

impl RuntimeSettings {
    /// Checks request limits against the ceilings; `scope` says whose limits they are.
    fn check_limits(
        &self,
        limits: &LimitsConfig,
        scope: &'static str,
    ) -> Result<(), MiddlewareConfigError> {
        let over = |field: &str, message: String| MiddlewareConfigError {
            scope,
            middleware: "limits".to_owned(),
            field: field.to_owned(),
            message,
        };
        if limits.timeout() > self.max_fetch_timeout {
            return Err(over(
                "timeout",
                format!(
                    "{} s is over the operator's maximum of {} s (--max-fetch-timeout-seconds)",
                    limits.timeout,
                    self.max_fetch_timeout.as_secs_f64()
                ),
            ));
        }
        if limits.max_response_bytes > self.max_fetch_bytes {
            return Err(over(
                "max_response_bytes",
                format!(
                    "{} is over the operator's maximum of {} (--max-fetch-bytes)",
                    limits.max_response_bytes, self.max_fetch_bytes
                ),
            ));
        }
        Ok(())
    }
}

/// Shared scraping state of a process. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    shared: Arc<Shared>,
}

struct Shared {
    settings: RuntimeSettings,
    egress: Arc<EgressPolicy>,
    rate_limits: Arc<dyn RateLimitStore>,
    robots: RobotsCache,
    clients: Mutex<HashMap<Option<ProxyRoute>, CachedClient>>,
}

struct CachedClient {
    client: reqwest::Client,
    used: Instant,
}

/// HTTP clients kept (one per proxy route: scrapers can name any proxy); past it, the one
/// used longest ago is dropped, and its connections with it.
const MAX_CLIENTS: usize = 64;

impl Runtime {
    /// A runtime with these middleware settings and the default [`RuntimeSettings`]
    /// otherwise; its rate limits hold within this process.
    pub fn new(settings: MiddlewareSettings) -> Result<Runtime, MiddlewareConfigError> {
        Runtime::from_settings(RuntimeSettings {
            middleware: settings,
            ..RuntimeSettings::default()
        })
    }

    /// A runtime whose rate limits hold within this process.
    pub fn from_settings(settings: RuntimeSettings) -> Result<Runtime, MiddlewareConfigError> {
        Runtime::with_rate_limit_store(settings, Arc::new(MemoryRateLimitStore::default()))
    }

    /// A runtime whose rate limits live in `store`, e.g. a
    /// [`PostgresRateLimitStore`](super::middleware::PostgresRateLimitStore) shared by replicas.
    pub fn with_rate_limit_store(
        settings: RuntimeSettings,
        store: Arc<dyn RateLimitStore>,
    ) -> Result<Runtime, MiddlewareConfigError> {
        settings.middleware.validate()?;
        settings.check_limits(&settings.middleware.limits, GLOBAL_SCOPE)?;
        Ok(Runtime {
            shared: Arc::new(Shared {
                egress: Arc::new(settings.egress.clone()),
                settings,
                rate_limits: store,
                robots: RobotsCache::default(),
                clients: Mutex::default(),
            }),
        })
    }

    /// The global middleware defaults scrapers override.
    pub fn settings(&self) -> &MiddlewareSettings {
        &self.shared.settings.middleware
    }

    /// The timeout, in seconds, of a job of `scraper`: its own `timeout_seconds`, or the
    /// operator's default. Whoever runs jobs applies it.
    pub fn job_timeout_seconds(&self, scraper: &Scraper) -> u64 {
        scraper
            .timeout_seconds
            .unwrap_or(self.shared.settings.default_job_timeout_seconds)
    }

    /// The retry policy of jobs whose scraper sets none: the operator's default.
    pub fn default_retry(&self) -> &RetryPolicy {
        &self.shared.settings.default_retry
    }

    pub(crate) fn egress(&self) -> &EgressPolicy {
        &self.shared.egress
    }

    /// Checks what a scraper's overrides may not do whatever their values: go over the
    /// operator's ceilings, or use a proxy at an address the egress policy refuses (a proxy
    /// named by host is checked when it is resolved).
    pub(crate) fn check_scraper_settings(
        &self,
        settings: &MiddlewareSettings,
    ) -> Result<(), MiddlewareConfigError> {
        self.shared
            .settings
            .check_limits(&settings.limits, SCRAPER_SCOPE)?;
        let Some(route) = settings.proxy.route() else {
            return Ok(());
        };
        if self.is_operator_proxy(&route) {
            return Ok(());
        }
        match route.url() {
            Some(url) => self
                .egress()
                .check_url(&url)
                .map_err(|denied| MiddlewareConfigError {
                    scope: SCRAPER_SCOPE,
                    middleware: "proxy".to_owned(),
                    field: "proxy".to_owned(),
                    message: denied.to_string(),
                }),
            None => Ok(()),
        }
    }

    /// The timeout of one request: its own, or the scraper's `limits.timeout`, at most the
    /// operator's ceiling.
    pub(crate) fn request_timeout(
        &self,
        requested: Option<Duration>,
        limits: &LimitsConfig,
    ) -> Duration {
        requested
            .unwrap_or_else(|| limits.timeout())
            .min(self.shared.settings.max_fetch_timeout)
    }

    pub(crate) fn rate_limits(&self) -> Arc<dyn RateLimitStore> {
        self.shared.rate_limits.clone()
    }

    pub(crate) fn robots(&self) -> &RobotsCache {
        &self.shared.robots
    }

    /// The operator's proxy (the global setting) is trusted by the egress policy.
    fn is_operator_proxy(&self, route: &ProxyRoute) -> bool {
        self.settings().proxy.proxy.as_deref() == Some(route.url.as_str())
    }

    /// The client for a route, built on first use and then reused for its connection pool.
    /// The error says why no client can be built (for the request's error message).
    pub(crate) fn client(&self, proxy: Option<&ProxyRoute>) -> Result<reqwest::Client, String> {
        let mut clients = crate::sync::lock(&self.shared.clients);
        let key = proxy.cloned();
        if let Some(cached) = clients.get_mut(&key) {
            cached.used = Instant::now();
            return Ok(cached.client.clone());
        }
        let trusted = proxy
            .filter(|route| self.is_operator_proxy(route))
            .and_then(ProxyRoute::url)
            .and_then(|url| url.host_str().map(str::to_owned));
        let resolver = PolicyResolver {
            policy: self.shared.egress.clone(),
            through_proxy: proxy.is_some(),
            trusted,
        };
        let mut builder = reqwest::Client::builder()
            // Only the `proxy` middleware routes requests: a proxy from the environment
            // (HTTP_PROXY) would resolve targets where the egress policy cannot see them.
            .no_proxy()
            .dns_resolver(Arc::new(resolver))
            .redirect(redirect_policy(self.shared.egress.clone()));
        if let Some(route) = proxy {
            builder =
                builder.proxy(route.to_proxy().map_err(|error| {
                    format!("unusable proxy {}: {error}", redact_url(&route.url))
                })?);
        }
        let client = builder
            .build()
            .map_err(|error| format!("cannot build an HTTP client: {error}"))?;
        if clients.len() >= MAX_CLIENTS {
            evict_oldest(&mut clients, MAX_CLIENTS - 1, |cached| cached.used);
        }
        clients.insert(
            key,
            CachedClient {
                client: client.clone(),
                used: Instant::now(),
            },
        );
        Ok(client)
    }
}

impl Default for Runtime {
    /// Default settings, in-memory rate limits.
    fn default() -> Self {
        Runtime::from_settings(RuntimeSettings::default())
            .expect("default runtime settings are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_clients_are_kept_and_the_one_used_longest_ago_goes_first() {
        let runtime = Runtime::default();
        runtime.client(None).unwrap();
        for port in 0..MAX_CLIENTS {
            runtime
                .client(Some(&ProxyRoute {
                    url: format!("http://proxy.example:{}", 3000 + port),
                    auth: None,
                }))
                .unwrap();
        }
        let clients = crate::sync::lock(&runtime.shared.clients);
        assert_eq!(clients.len(), MAX_CLIENTS);
        assert!(
            !clients.contains_key(&None),
            "the direct client was used first"
        );
    }
}
