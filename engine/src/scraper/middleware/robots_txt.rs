//! `robots_txt`: checks each request against the robots.txt of its origin, for the agent in
//! the request's `User-Agent`. robots.txt files are fetched once per origin and kept for an
//! hour by the [`Runtime`](crate::scraper::Runtime), shared by all jobs of the process, for
//! at most [`MAX_ORIGINS`] origins. A missing or unreadable robots.txt allows everything, as
//! in the original; only its first [`MAX_ROBOTS_TXT_BYTES`] are read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::header::USER_AGENT;
use serde::{Deserialize, Serialize};
use texting_robots::Robot;
use tokio::sync::OnceCell;

use super::Middleware;
use crate::scraper::bounded::evict_oldest;
use crate::scraper::http::{error_chain, Outgoing};
use crate::scraper::limits::read_capped;
use crate::scraper::runtime::Runtime;
use crate::scraper::{JobHooks, LogLevel, RequestError};

/// What to do with a request robots.txt forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationStrategy {
    /// Log an error in the job log and send the request anyway.
    #[serde(alias = "LOG")]
    Log,
    /// Fail the request.
    #[serde(alias = "THROW")]
    Throw,
}

/// `robots_txt`'s settings. Default: checked, a forbidden request is logged and sent anyway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RobotsTxtConfig {
    /// `false`: robots.txt is neither fetched nor checked.
    pub enabled: bool,
    /// What a request robots.txt forbids does: log an error and go (`log`, default) or fail
    /// (`throw`).
    pub violation_strategy: ViolationStrategy,
}

impl Default for RobotsTxtConfig {
    fn default() -> Self {
        RobotsTxtConfig {
            enabled: true,
            violation_strategy: ViolationStrategy::Log,
        }
    }
}

/// How long a fetched robots.txt is trusted.
const CACHE_TTL: Duration = Duration::from_secs(60 * 60);
/// Bigger files are cut here, as Google's crawler does (500 KiB): the rest is not even read,
/// which bounds the memory and time a fetch takes.
const MAX_ROBOTS_TXT_BYTES: u64 = 500 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Origins whose robots.txt is kept; past it, expired entries go, then the oldest ones.
const MAX_ORIGINS: usize = 10_000;

/// robots.txt files by origin (`https://example.com:443`). Each origin's entry is a
/// once-cell, so jobs asking for the same origin at the same time wait for one fetch.
#[derive(Default)]
pub(crate) struct RobotsCache {
    origins: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    created: Instant,
    cell: Arc<OnceCell<Fetched>>,
}

struct Fetched {
    at: Instant,
    /// `None` when the origin has no usable robots.txt: everything is allowed.
    rules: Option<Arc<[u8]>>,
}

impl Entry {
    /// Being fetched, or fetched less than [`CACHE_TTL`] ago.
    fn is_fresh(&self) -> bool {
        self.cell
            .get()
            .is_none_or(|fetched| fetched.at.elapsed() < CACHE_TTL)
    }
}

impl RobotsCache {
    fn entry(&self, origin: &str) -> Arc<OnceCell<Fetched>> {
        let mut origins = crate::sync::lock(&self.origins);
        if let Some(entry) = origins.get(origin).filter(|entry| entry.is_fresh()) {
            return entry.cell.clone();
        }
        if origins.len() >= MAX_ORIGINS && !origins.contains_key(origin) {
            origins.retain(|_, entry| entry.is_fresh());
            // Jobs waiting on an evicted entry keep their cell; only later ones fetch again.
            evict_oldest(&mut origins, MAX_ORIGINS - 1, |entry| entry.created);
        }
        let cell = Arc::new(OnceCell::new());
        origins.insert(
            origin.to_owned(),
            Entry {
                created: Instant::now(),
                cell: cell.clone(),
            },
        );
        cell
    }
}

pub(super) struct RobotsTxt {
    config: RobotsTxtConfig,
    runtime: Runtime,
}

impl RobotsTxt {
    pub fn new(config: RobotsTxtConfig, runtime: Runtime) -> Self {
        RobotsTxt { config, runtime }
    }

    async fn fetch(&self, request: &Outgoing, robots_url: &str, hooks: &dyn JobHooks) -> Fetched {
        let failed = |reason: String| {
            hooks.log(
                LogLevel::Warning,
                format!("could not read {robots_url} ({reason}); every path is allowed"),
            );
            Fetched {
                at: Instant::now(),
                rules: None,
            }
        };
        let client = match self.runtime.client(request.proxy.as_ref()) {
            Ok(client) => client,
            Err(reason) => return failed(reason),
        };
        let mut fetch = client.get(robots_url).timeout(FETCH_TIMEOUT);
        if let Some(agent) = request.headers.get(USER_AGENT) {
            fetch = fetch.header(USER_AGENT, agent.clone());
        }
        let mut response = match fetch.send().await {
            Ok(response) => response,
            Err(error) => return failed(error_chain(&error.without_url())),
        };
        if !response.status().is_success() {
            // 4xx means "no robots.txt"; 5xx is treated the same, as the original does.
            return Fetched {
                at: Instant::now(),
                rules: None,
            };
        }
        match read_capped(&mut response, MAX_ROBOTS_TXT_BYTES).await {
            Ok(body) => Fetched {
                at: Instant::now(),
                rules: Some(Arc::from(&body.bytes[..])),
            },
            Err(error) => failed(error_chain(&error.without_url())),
        }
    }
}

/// The agent robots.txt groups are matched against: the product token of the User-Agent
/// (`MyBot` for `MyBot/1.2 (+https://…)`), or `*` without one.
fn product_token(request: &Outgoing) -> String {
    let agent = request
        .headers
        .get(USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let token = agent
        .split(|c: char| c == '/' || c.is_whitespace())
        .next()
        .unwrap_or_default();
    if token.is_empty() {
        "*".to_owned()
    } else {
        token.to_owned()
    }
}

#[async_trait]
impl Middleware for RobotsTxt {
    async fn before_request(
        &self,
        request: &mut Outgoing,
        hooks: &dyn JobHooks,
    ) -> Result<(), RequestError> {
        let origin = request.url.origin().ascii_serialization();
        let robots_url = format!("{origin}/robots.txt");
        if request.url.as_str() == robots_url {
            return Ok(());
        }
        let entry = self.runtime.robots().entry(&origin);
        let fetched = entry
            .get_or_init(|| self.fetch(request, &robots_url, hooks))
            .await;
        let Some(rules) = &fetched.rules else {
            return Ok(());
        };
        let agent = product_token(request);
        let robot = match Robot::new(&agent, rules) {
            Ok(robot) => robot,
            Err(error) => {
                hooks.log(
                    LogLevel::Warning,
                    format!("could not parse {robots_url} ({error}); every path is allowed"),
                );
                return Ok(());
            }
        };
        if robot.allowed(request.url.as_str()) {
            return Ok(());
        }
        let violation = RequestError::RobotsTxtDisallowed {
            url: request.shown_url(),
            user_agent: agent,
        };
        match self.config.violation_strategy {
            ViolationStrategy::Throw => Err(violation),
            ViolationStrategy::Log => {
                hooks.log(
                    LogLevel::Error,
                    format!("{violation}. Proceeding because the violation strategy is log"),
                );
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_keeps_at_most_max_origins() {
        let cache = RobotsCache::default();
        for origin in 0..=MAX_ORIGINS {
            cache.entry(&format!("https://site-{origin}.example:443"));
        }
        let origins = crate::sync::lock(&cache.origins);
        assert_eq!(origins.len(), MAX_ORIGINS);
        assert!(origins.contains_key(&format!("https://site-{MAX_ORIGINS}.example:443")));
        assert!(!origins.contains_key("https://site-0.example:443"));
    }
}
