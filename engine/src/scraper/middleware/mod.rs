//! The middleware chain every request of a scraper goes through, and its configuration.
//!
//! Each middleware has global defaults ([`MiddlewareSettings`], loaded by the server) that a
//! scraper overrides field by field under `config.plugins.<name>` (the names are the
//! original's), except those the operator lists as `enforced`. A scraper's overrides are
//! checked when its job starts: a wrong field, or a change to an enforced middleware, fails
//! the job with a message naming the middleware and the field, never a silent fallback. The
//! request [`limits`](crate::scraper::limits) are configured the same way, under `limits`.
//!
//! Order of the chain, and why:
//! 1. `user_agent_injecter` — first, so robots.txt is checked for the agent actually sent;
//! 2. `proxy` — chooses the route, which robots.txt fetching uses too;
//! 3. `robots_txt` — before the rate limiter, so a forbidden request takes no slot;
//! 4. `rate_limiter` — the last wait before the request leaves;
//! 5. `requests_logging` — logs the request as sent, then its response status.

mod proxy;
mod rate_limiter;
mod requests_logging;
mod robots_txt;
mod user_agent;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub(crate) use proxy::ProxyRoute;
pub use proxy::{ProxyAuth, ProxyConfig};
pub use rate_limiter::{
    Acquired, MemoryRateLimitStore, PostgresRateLimitStore, RateLimitStore, RateLimitedStrategy,
    RateLimiterConfig,
};
pub use requests_logging::RequestsLoggingConfig;
pub(crate) use robots_txt::RobotsCache;
pub use robots_txt::{RobotsTxtConfig, ViolationStrategy};
pub use user_agent::{Browser, UserAgentInjecterConfig};

use super::http::{Outgoing, RequestError};
use super::limits::LimitsConfig;
use super::runtime::Runtime;
use super::JobHooks;

/// Every middleware's configuration, and the request limits: the global defaults, or a
/// scraper's after its `config.plugins` overrides. Field names are the keys of
/// `config.plugins`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MiddlewareSettings {
    /// `rate_limiter`: at most `max_requests` requests per `time_window` seconds to one host.
    pub rate_limiter: RateLimiterConfig,
    /// `robots_txt`: whether requests are checked against the site's robots.txt, and what a
    /// forbidden one does.
    pub robots_txt: RobotsTxtConfig,
    /// `user_agent_injecter`: the browser families a request without `User-Agent` gets one from.
    pub user_agent_injecter: UserAgentInjecterConfig,
    /// `proxy`: the HTTP(S) proxy requests go through; none by default.
    pub proxy: ProxyConfig,
    /// `requests_logging`: whether requests and their response statuses are written to the job
    /// log.
    pub requests_logging: RequestsLoggingConfig,
    /// `limits`: each request's total timeout and response size cap; always applied, never
    /// switched off.
    pub limits: LimitsConfig,
    /// The entries scrapers cannot change: the operator's, set in the global settings (a
    /// scraper's `config.plugins` cannot hold this key).
    pub enforced: Vec<Configurable>,
}

/// The entries of [`MiddlewareSettings`] an operator can enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Configurable {
    /// `rate_limiter`: scrapers keep the operator's rate limit.
    RateLimiter,
    /// `robots_txt`: scrapers keep the operator's robots.txt checking.
    RobotsTxt,
    /// `user_agent_injecter`: scrapers keep the operator's User-Agent choice.
    UserAgentInjecter,
    /// `proxy`: scrapers keep the operator's proxy (or its absence).
    Proxy,
    /// `requests_logging`: scrapers keep the operator's request logging.
    RequestsLogging,
    /// `limits`: scrapers keep the operator's request timeout and response size cap.
    Limits,
}

/// A middleware configuration that cannot be used, naming the middleware and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {scope}{middleware}{}: {message}", if field.is_empty() { String::new() } else { format!(".{field}") })]
pub struct MiddlewareConfigError {
    /// `config.plugins.` for a scraper's override, `middleware settings ` for the defaults.
    pub scope: &'static str,
    /// The entry at fault, a key of `config.plugins` (`rate_limiter`, `limits`, ...), or the
    /// unknown name a scraper gave.
    pub middleware: String,
    /// The field inside the middleware's config; empty when the whole entry is wrong.
    pub field: String,
    /// What is wrong with it, for the job's result or the server's startup error; never quotes a
    /// password.
    pub message: String,
}

pub(crate) const SCRAPER_SCOPE: &str = "config.plugins.";
pub(crate) const GLOBAL_SCOPE: &str = "middleware settings ";

impl MiddlewareSettings {
    /// These settings with a scraper's `config.plugins` laid over them: each field the
    /// scraper sets replaces the default, the others stay.
    pub fn for_scraper(
        &self,
        plugins: &Map<String, Value>,
    ) -> Result<MiddlewareSettings, MiddlewareConfigError> {
        let error = |middleware: &str, field: &str, message: String| MiddlewareConfigError {
            scope: SCRAPER_SCOPE,
            middleware: middleware.to_owned(),
            field: field.to_owned(),
            message,
        };
        let global = self.to_json();
        let mut merged = global.clone();
        for (name, overrides) in plugins {
            let Some(Value::Object(defaults)) = merged.get_mut(name) else {
                let known: Vec<&String> = merged
                    .iter()
                    .filter(|(_, value)| value.is_object())
                    .map(|(name, _)| name)
                    .collect();
                return Err(error(
                    name,
                    "",
                    format!("unknown middleware; known ones are {known:?}"),
                ));
            };
            match overrides {
                Value::Null => {}
                Value::Object(fields) => defaults.extend(
                    fields
                        .iter()
                        .map(|(key, value)| (key.clone(), value.clone())),
                ),
                other => {
                    return Err(error(
                        name,
                        "",
                        format!("expected an object of settings, got {other}"),
                    ))
                }
            }
        }
        let settings: MiddlewareSettings = serde_path_to_error::deserialize(Value::Object(merged))
            .map_err(|failure| {
                let path = failure.path().to_string();
                let (middleware, field) = path.split_once('.').unwrap_or((path.as_str(), ""));
                // serde quotes the value it refused: a password stays out of the job's result.
                let message = if field.ends_with("password") {
                    "must be a string".to_owned()
                } else {
                    failure.inner().to_string()
                };
                error(middleware, field, message)
            })?;
        settings.check().map_err(|mut failure| {
            failure.scope = SCRAPER_SCOPE;
            failure
        })?;
        // An enforced entry keeps the operator's values: a scraper may restate them (compared
        // once parsed, so `60` and `60.0` are the same), never change them.
        let parsed = settings.to_json();
        for name in plugins.keys() {
            if self.is_enforced(name) && parsed.get(name) != global.get(name) {
                return Err(error(
                    name,
                    "",
                    "the operator enforces these settings; a scraper cannot change them".to_owned(),
                ));
            }
        }
        Ok(settings)
    }

    fn to_json(&self) -> Map<String, Value> {
        let Value::Object(json) = serde_json::to_value(self).expect("settings serialize to JSON")
        else {
            unreachable!("a struct serializes to an object")
        };
        json
    }

    /// Whether the entry named `name` (a key of `config.plugins`) is enforced: a
    /// [`Configurable`] is written as the name of its field.
    fn is_enforced(&self, name: &str) -> bool {
        self.enforced.iter().any(|enforced| {
            serde_json::to_value(enforced)
                .ok()
                .as_ref()
                .and_then(Value::as_str)
                == Some(name)
        })
    }

    /// Checks what types cannot say (positive limits, parsable URLs); for defaults loaded
    /// from the server's configuration.
    pub fn validate(&self) -> Result<(), MiddlewareConfigError> {
        self.check()
    }

    fn check(&self) -> Result<(), MiddlewareConfigError> {
        let checks: [(&str, FieldCheck); 4] = [
            ("rate_limiter", self.rate_limiter.check()),
            ("user_agent_injecter", self.user_agent_injecter.check()),
            ("proxy", self.proxy.check()),
            ("limits", self.limits.check()),
        ];
        for (middleware, check) in checks {
            if let Err((field, message)) = check {
                return Err(MiddlewareConfigError {
                    scope: GLOBAL_SCOPE,
                    middleware: middleware.to_owned(),
                    field: field.to_owned(),
                    message,
                });
            }
        }
        Ok(())
    }
}

/// The outcome of checking one middleware's config: `Err((field, message))`.
pub(crate) type FieldCheck = Result<(), (&'static str, String)>;

/// One step of the chain. Both hooks default to doing nothing.
#[async_trait]
pub(crate) trait Middleware: Send + Sync {
    /// May change the request, wait, or refuse it.
    async fn before_request(
        &self,
        _request: &mut Outgoing,
        _hooks: &dyn JobHooks,
    ) -> Result<(), RequestError> {
        Ok(())
    }

    /// Sees the response status before the handler does.
    async fn after_response(
        &self,
        _request: &Outgoing,
        _status: StatusCode,
        _hooks: &dyn JobHooks,
    ) -> Result<(), RequestError> {
        Ok(())
    }
}

/// The enabled middleware of one scraper, in chain order (see the module docs).
pub(crate) fn chain(settings: &MiddlewareSettings, runtime: &Runtime) -> Vec<Box<dyn Middleware>> {
    let mut chain: Vec<Box<dyn Middleware>> = Vec::new();
    if settings.user_agent_injecter.enabled {
        chain.push(Box::new(user_agent::UserAgentInjecter::new(
            &settings.user_agent_injecter,
        )));
    }
    if let Some(route) = settings.proxy.route() {
        chain.push(Box::new(proxy::Proxy::new(route)));
    }
    if settings.robots_txt.enabled {
        chain.push(Box::new(robots_txt::RobotsTxt::new(
            settings.robots_txt.clone(),
            runtime.clone(),
        )));
    }
    if settings.rate_limiter.enabled {
        chain.push(Box::new(rate_limiter::RateLimiter::new(
            settings.rate_limiter.clone(),
            runtime.rate_limits(),
        )));
    }
    if settings.requests_logging.enabled {
        chain.push(Box::new(requests_logging::RequestsLogging::new(
            settings.requests_logging.clone(),
        )));
    }
    chain
}
