//! `rate_limiter`: at most `max_requests` requests per `time_window` to one host.
//!
//! The count is a sliding-window log kept in a [`RateLimitStore`] that the
//! [`Runtime`](crate::scraper::Runtime) shares between all jobs of the process
//! ([`MemoryRateLimitStore`]), or between all replicas ([`PostgresRateLimitStore`]). As in
//! the original, a bucket is per host *and* limit: scrapers with different limits on the same
//! host each get theirs.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::Middleware;
use crate::scraper::bounded::evict_oldest;
use crate::scraper::http::Outgoing;
use crate::scraper::{JobHooks, LogLevel, RequestError};

/// What to do with a request over the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitedStrategy {
    /// Fail the request with a message naming the host, the limit and the next free slot.
    #[serde(alias = "THROW")]
    Throw,
    /// Sleep until a slot frees (plus a little jitter, so waiters do not wake together).
    #[serde(alias = "WAIT")]
    Wait,
}

/// `rate_limiter`'s settings: the sliding window a host's requests are counted in, and what a
/// request over it does. Defaults: 60 requests per 60 s, waiting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimiterConfig {
    /// `false`: requests are not counted nor limited.
    pub enabled: bool,
    /// Requests allowed per window and host (> 0).
    pub max_requests: u32,
    /// The window, in seconds (> 0, fractions allowed).
    pub time_window: f64,
    /// What a request over the limit does: wait for a free slot (default) or fail.
    pub rate_limited_strategy: RateLimitedStrategy,
}

impl Default for RateLimiterConfig {
    /// The original's defaults: 60 requests a minute per host, waiting when over.
    fn default() -> Self {
        RateLimiterConfig {
            enabled: true,
            max_requests: 60,
            time_window: 60.0,
            rate_limited_strategy: RateLimitedStrategy::Wait,
        }
    }
}

impl RateLimiterConfig {
    pub(super) fn check(&self) -> super::FieldCheck {
        if self.max_requests == 0 {
            return Err(("max_requests", "must be greater than 0".to_owned()));
        }
        if self.time_window.is_nan() || self.time_window <= 0.0 {
            return Err((
                "time_window",
                format!(
                    "must be a positive number of seconds, got {}",
                    self.time_window
                ),
            ));
        }
        if Duration::try_from_secs_f64(self.time_window).is_err() {
            return Err(("time_window", "is too large to be a duration".to_owned()));
        }
        Ok(())
    }

    /// The window as a duration (`check` guarantees it is one).
    fn window(&self) -> Duration {
        Duration::try_from_secs_f64(self.time_window).unwrap_or(Duration::MAX)
    }
}

/// The answer of a [`RateLimitStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// The request was counted and may go.
    Granted,
    /// The window is full; the oldest counted request leaves it after `retry_after`.
    Limited {
        /// How long until a slot frees: when the oldest counted request leaves the window.
        retry_after: Duration,
    },
}

/// Where rate-limit windows live. One store is shared by everything that must respect the
/// same limits.
#[async_trait]
pub trait RateLimitStore: Send + Sync {
    /// Counts a request to `key` if fewer than `max_requests` were counted in the last
    /// `window`; otherwise says when a slot frees. Check and count are one atomic step.
    async fn acquire(
        &self,
        key: &str,
        max_requests: u32,
        window: Duration,
    ) -> Result<Acquired, crate::Error>;
}

/// Windows in this process's memory: limits hold across all its workers.
#[derive(Default)]
pub struct MemoryRateLimitStore {
    buckets: Mutex<Buckets>,
}

#[derive(Default)]
struct Buckets {
    by_key: HashMap<String, Bucket>,
    /// Idle buckets are dropped when there are more than this many; then it doubles past
    /// the live ones (up to [`MAX_BUCKETS`]), so sweeping stays rare however many hosts are
    /// busy.
    sweep_above: usize,
}

struct Bucket {
    window: Duration,
    hits: VecDeque<Instant>,
}

/// Buckets kept before idle ones are dropped: a long-running server scraping many hosts must
/// not keep one forever for each.
const SWEEP_ABOVE: usize = 4096;
/// Buckets kept at most, idle or not. Past it, a quarter of them, those whose last request
/// is oldest, are dropped: their hosts start a fresh window, which can let through up to one
/// window's worth of extra requests; memory stays bounded however many hosts are scraped.
const MAX_BUCKETS: usize = 65_536;

#[async_trait]
impl RateLimitStore for MemoryRateLimitStore {
    async fn acquire(
        &self,
        key: &str,
        max_requests: u32,
        window: Duration,
    ) -> Result<Acquired, crate::Error> {
        let now = Instant::now();
        let mut buckets = crate::sync::lock(&self.buckets);
        if buckets.by_key.len() >= buckets.sweep_above.max(SWEEP_ABOVE)
            && !buckets.by_key.contains_key(key)
        {
            buckets.by_key.retain(|_, bucket| {
                bucket
                    .hits
                    .back()
                    .is_some_and(|last| now.duration_since(*last) < bucket.window)
            });
            if buckets.by_key.len() >= MAX_BUCKETS {
                evict_oldest(&mut buckets.by_key, MAX_BUCKETS / 4 * 3, |bucket| {
                    bucket.hits.back().copied()
                });
            }
            buckets.sweep_above = (buckets.by_key.len() * 2).min(MAX_BUCKETS);
        }
        let bucket = buckets
            .by_key
            .entry(key.to_owned())
            .or_insert_with(|| Bucket {
                window,
                hits: VecDeque::new(),
            });
        while bucket
            .hits
            .front()
            .is_some_and(|hit| now.duration_since(*hit) >= window)
        {
            bucket.hits.pop_front();
        }
        if bucket.hits.len() < max_requests as usize {
            bucket.hits.push_back(now);
            return Ok(Acquired::Granted);
        }
        let oldest = bucket.hits.front().expect("a full window has hits");
        Ok(Acquired::Limited {
            retry_after: window.saturating_sub(now.duration_since(*oldest)),
        })
    }
}

/// Windows in PostgreSQL (table `rate_limit_buckets`, migration `20261129000100`): limits
/// hold across every replica using the database. Each key's row is locked for the check, and
/// the database's clock is the only one used, so replicas with skewed clocks still agree.
pub struct PostgresRateLimitStore {
    pool: PgPool,
}

impl PostgresRateLimitStore {
    /// Uses `pool`, whose database has the migrations applied.
    pub fn new(pool: PgPool) -> Self {
        PostgresRateLimitStore { pool }
    }
}

#[async_trait]
impl RateLimitStore for PostgresRateLimitStore {
    async fn acquire(
        &self,
        key: &str,
        max_requests: u32,
        window: Duration,
    ) -> Result<Acquired, crate::Error> {
        let window = chrono::Duration::from_std(window).map_err(crate::Error::internal)?;
        let mut transaction = self.pool.begin().await.map_err(crate::Error::internal)?;
        // The no-op update on conflict locks the key's row until commit: concurrent callers
        // for the same key queue here, callers for other keys do not.
        let (hits, now): (Vec<DateTime<Utc>>, DateTime<Utc>) = sqlx::query_as(
            "INSERT INTO rate_limit_buckets (key) VALUES ($1) \
             ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key \
             RETURNING hits, clock_timestamp()",
        )
        .bind(key)
        .fetch_one(&mut *transaction)
        .await
        .map_err(crate::Error::internal)?;
        let mut recent: Vec<DateTime<Utc>> =
            hits.into_iter().filter(|hit| now - *hit < window).collect();
        let acquired = if recent.len() < max_requests as usize {
            recent.push(now);
            Acquired::Granted
        } else {
            let retry_after = (recent[0] + window - now).to_std().unwrap_or_default();
            Acquired::Limited { retry_after }
        };
        sqlx::query("UPDATE rate_limit_buckets SET hits = $2 WHERE key = $1")
            .bind(key)
            .bind(&recent)
            .execute(&mut *transaction)
            .await
            .map_err(crate::Error::internal)?;
        transaction.commit().await.map_err(crate::Error::internal)?;
        Ok(acquired)
    }
}

pub(super) struct RateLimiter {
    config: RateLimiterConfig,
    store: Arc<dyn RateLimitStore>,
}

impl RateLimiter {
    pub fn new(config: RateLimiterConfig, store: Arc<dyn RateLimitStore>) -> Self {
        RateLimiter { config, store }
    }

    /// Up to a tenth of the window, at most 0.5 s (the original's jitter).
    fn jitter(&self) -> Duration {
        let max = (self.config.window() / 10).min(Duration::from_millis(500));
        Duration::from_micros(fastrand::u64(0..=max.as_micros() as u64))
    }
}

#[async_trait]
impl Middleware for RateLimiter {
    async fn before_request(
        &self,
        request: &mut Outgoing,
        hooks: &dyn JobHooks,
    ) -> Result<(), RequestError> {
        let host = request.host().to_owned();
        let window = self.config.window();
        let key = format!("{host}|{}|{}", self.config.max_requests, window.as_millis());
        loop {
            let acquired = self
                .store
                .acquire(&key, self.config.max_requests, window)
                .await
                .map_err(|reason| RequestError::RateLimiterUnavailable {
                    method: request.method.clone(),
                    url: request.shown_url(),
                    reason,
                })?;
            let Acquired::Limited { retry_after } = acquired else {
                return Ok(());
            };
            let limited = RequestError::RateLimited {
                url: request.shown_url(),
                host: host.clone(),
                max_requests: self.config.max_requests,
                window_seconds: self.config.time_window,
                // A window of ages would take the date past what can be written.
                next_slot: chrono::Duration::from_std(retry_after)
                    .ok()
                    .and_then(|wait| Utc::now().checked_add_signed(wait))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC),
            };
            if self.config.rate_limited_strategy == RateLimitedStrategy::Throw {
                return Err(limited);
            }
            hooks.log(LogLevel::Info, format!("{limited} Waiting for it."));
            // A wait can be long: check that the job is still wanted before sleeping.
            hooks
                .heartbeat()
                .await
                .map_err(|reason| RequestError::JobStopped {
                    method: request.method.clone(),
                    url: request.shown_url(),
                    reason,
                })?;
            tokio::time::sleep(retry_after + self.jitter()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_store_keeps_at_most_max_buckets_even_when_all_are_busy() {
        let store = MemoryRateLimitStore::default();
        let hour = Duration::from_secs(3600);
        for host in 0..MAX_BUCKETS + 1000 {
            let granted = store.acquire(&format!("host-{host}"), 10, hour).await;
            assert_eq!(granted.unwrap(), Acquired::Granted);
        }
        let buckets = crate::sync::lock(&store.buckets);
        assert!(
            buckets.by_key.len() <= MAX_BUCKETS,
            "{}",
            buckets.by_key.len()
        );
        assert!(
            buckets
                .by_key
                .contains_key(&format!("host-{}", MAX_BUCKETS + 999)),
            "the newest bucket is kept"
        );
        assert!(
            !buckets.by_key.contains_key("host-0"),
            "the oldest one is gone"
        );
    }
}
