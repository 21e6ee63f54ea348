//! Retries: a scraper's retry policy, its bounds, and when a failed attempt runs again.
//!
//! A job is one run of a scraper, made of attempts. When an attempt fails for a reason its
//! policy retries, the job goes back to `pending` with a due time (`next_attempt_at`) instead
//! of ending: it is claimed like any job once due, by any worker, so retries survive restarts
//! and need no timer. Killing the job stops its retries. The attempts before the current one
//! stay on the job ([`crate::model::JobAttempt`]).
//!
//! The policy a job runs under is fixed when it is enqueued: its scraper's own, or the
//! operator's default, copied into the job's scraper snapshot. Editing a scraper's policy
//! therefore changes its next runs, not the run already under way.
//!
//! Pure and free of the runtime, so the browser's form previews the same backoff the worker
//! applies.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::model::Scraper;

/// Why an attempt failed, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RetryReason {
    /// The worker running the attempt was lost (it stopped sending heartbeats): without a
    /// retry the job ends `dead`.
    Dead,
    /// The attempt ran past its scraper's timeout.
    Timeout,
    /// The handler returned an error (or panicked).
    Error,
    /// The handler failed after a request made through its context was answered with HTTP
    /// 429 (too many requests) or a 5xx status: the site, not the scraper, is likely at fault.
    HttpStatus,
}

impl RetryReason {
    /// Every reason, in the order forms and metrics list them.
    pub const ALL: [RetryReason; 4] = [Self::Dead, Self::Timeout, Self::Error, Self::HttpStatus];

    /// The reason's wire name (also its metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dead => "dead",
            Self::Timeout => "timeout",
            Self::Error => "error",
            Self::HttpStatus => "http_status",
        }
    }

    /// What the reason means, for people.
    pub fn label(self) -> &'static str {
        match self {
            Self::Dead => "worker lost",
            Self::Timeout => "timeout",
            Self::Error => "handler error",
            Self::HttpStatus => "HTTP 429 or 5xx",
        }
    }
}

/// How the delay grows from one retry to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    /// `delay_seconds`, doubled after each retry, up to `max_delay_seconds`.
    #[default]
    Exponential,
    /// `delay_seconds` before every retry.
    Fixed,
}

/// When and why a scraper's failed attempts run again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included: 1 (never retry) to 20.
    pub max_attempts: u32,
    /// How the delay grows between retries.
    #[serde(default)]
    pub backoff: Backoff,
    /// Seconds before the first retry: 1 to 86,400 (a day).
    pub delay_seconds: u64,
    /// The longest delay between two attempts, in seconds: at least `delay_seconds`, at most
    /// 604,800 (7 days).
    pub max_delay_seconds: u64,
    /// Up to this percentage (0 to 100) of each delay is taken off at random, so jobs that
    /// failed together do not all retry at the same instant.
    #[serde(default)]
    pub jitter_percent: u8,
    /// The failures that are retried; the others end the job at once.
    pub retry_on: Vec<RetryReason>,
}

/// Most attempts a policy may allow.
pub const MAX_ATTEMPTS: u32 = 20;
/// Longest first delay, in seconds (a day).
pub const MAX_FIRST_DELAY_SECONDS: u64 = 24 * 3600;
/// Longest delay between two attempts, in seconds (7 days).
pub const MAX_DELAY_SECONDS: u64 = 7 * 24 * 3600;

impl Default for RetryPolicy {
    /// The operator's default unless configured: a lost worker's job is tried 3 times in all,
    /// after 1 and then 2 minutes (less up to 10 %); other failures are final.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            backoff: Backoff::Exponential,
            delay_seconds: 60,
            max_delay_seconds: 3600,
            jitter_percent: 10,
            retry_on: vec![RetryReason::Dead],
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries: what jobs enqueued before retries existed run under.
    pub fn never() -> Self {
        RetryPolicy {
            max_attempts: 1,
            retry_on: Vec::new(),
            ..RetryPolicy::default()
        }
    }

    /// How long to wait before attempt `attempt + 1` after attempt `attempt` (1-based) failed
    /// for `reason`; `None` when the job ends instead (the reason is not retried, or it was
    /// the last attempt). `draw` is a random number in `[0, 1)` that picks the jitter.
    pub fn retry_delay(&self, attempt: u32, reason: RetryReason, draw: f64) -> Option<Duration> {
        if attempt >= self.max_attempts || !self.retry_on.contains(&reason) {
            return None;
        }
        Some(self.delay_after(attempt, draw))
    }

    /// The delay after attempt `attempt` (1-based) with jitter `draw` in `[0, 1)`, whatever
    /// the reason: the backoff, capped, less the drawn share of the jitter.
    pub fn delay_after(&self, attempt: u32, draw: f64) -> Duration {
        let cap = self.max_delay_seconds.max(1);
        let seconds = match self.backoff {
            Backoff::Fixed => self.delay_seconds,
            // Doubling saturates long before 2^63: the cap holds whatever the attempt number.
            Backoff::Exponential => self
                .delay_seconds
                .saturating_mul(1u64 << attempt.saturating_sub(1).min(62)),
        }
        .min(cap);
        let jitter = f64::from(self.jitter_percent.min(100)) / 100.0 * draw.clamp(0.0, 1.0);
        Duration::from_secs_f64(seconds as f64 * (1.0 - jitter))
    }

    /// What is wrong with the policy, each problem under `path` (the field holding it).
    pub fn problems(&self, path: &[&str]) -> Vec<FieldError> {
        let at = |field: &'static str| {
            let mut full = path.to_vec();
            full.push(field);
            full
        };
        let mut errors = Vec::new();
        if !(1..=MAX_ATTEMPTS).contains(&self.max_attempts) {
            errors.push(FieldError::new(
                &at("max_attempts"),
                format!("must be from 1 to {MAX_ATTEMPTS}"),
            ));
        }
        if !(1..=MAX_FIRST_DELAY_SECONDS).contains(&self.delay_seconds) {
            errors.push(FieldError::new(
                &at("delay_seconds"),
                format!("must be from 1 to {MAX_FIRST_DELAY_SECONDS} (a day)"),
            ));
        }
        if self.max_delay_seconds < self.delay_seconds || self.max_delay_seconds > MAX_DELAY_SECONDS
        {
            errors.push(FieldError::new(
                &at("max_delay_seconds"),
                format!("must be from delay_seconds to {MAX_DELAY_SECONDS} (7 days)"),
            ));
        }
        if self.jitter_percent > 100 {
            errors.push(FieldError::new(
                &at("jitter_percent"),
                "must be from 0 to 100",
            ));
        }
        errors
    }
}

impl Scraper {
    /// The scraper as its jobs keep it: with its own retry policy, or `default` (the
    /// operator's) when it sets none.
    pub fn with_retry_policy(mut self, default: &RetryPolicy) -> Scraper {
        if self.retry.is_none() {
            self.retry = Some(default.clone());
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(backoff: Backoff) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            backoff,
            delay_seconds: 10,
            max_delay_seconds: 60,
            jitter_percent: 0,
            retry_on: vec![RetryReason::Error, RetryReason::Dead],
        }
    }

    #[test]
    fn exponential_backoff_doubles_up_to_the_cap() {
        let policy = policy(Backoff::Exponential);
        let delays: Vec<u64> = (1..5)
            .map(|attempt| policy.delay_after(attempt, 0.5).as_secs())
            .collect();
        assert_eq!(delays, [10, 20, 40, 60]);
        // Any attempt number, however large, stays at the cap.
        assert_eq!(policy.delay_after(u32::MAX, 0.0).as_secs(), 60);
    }

    #[test]
    fn fixed_backoff_waits_the_same_every_time() {
        let policy = policy(Backoff::Fixed);
        assert_eq!(policy.delay_after(1, 0.0), policy.delay_after(4, 0.0));
        assert_eq!(policy.delay_after(4, 0.0).as_secs(), 10);
    }

    #[test]
    fn jitter_only_shortens_a_delay_by_at_most_its_share() {
        let policy = RetryPolicy {
            jitter_percent: 20,
            ..policy(Backoff::Fixed)
        };
        assert_eq!(policy.delay_after(1, 0.0).as_secs_f64(), 10.0);
        assert_eq!(policy.delay_after(1, 0.5).as_secs_f64(), 9.0);
        assert!(policy.delay_after(1, 0.999_999).as_secs_f64() > 8.0);
    }

    #[test]
    fn only_listed_reasons_are_retried_and_only_while_attempts_remain() {
        let policy = policy(Backoff::Fixed);
        assert!(policy.retry_delay(1, RetryReason::Error, 0.0).is_some());
        assert!(policy.retry_delay(1, RetryReason::Timeout, 0.0).is_none());
        assert!(policy.retry_delay(4, RetryReason::Dead, 0.0).is_some());
        assert!(policy.retry_delay(5, RetryReason::Dead, 0.0).is_none());
        assert!(RetryPolicy::never()
            .retry_delay(1, RetryReason::Dead, 0.0)
            .is_none());
    }

    #[test]
    fn the_default_retries_lost_workers_only() {
        let policy = RetryPolicy::default();
        assert!(policy.problems(&["retry"]).is_empty());
        assert!(policy.retry_delay(1, RetryReason::Dead, 0.0).is_some());
        for reason in [
            RetryReason::Timeout,
            RetryReason::Error,
            RetryReason::HttpStatus,
        ] {
            assert!(policy.retry_delay(1, reason, 0.0).is_none(), "{reason:?}");
        }
    }

    #[test]
    fn out_of_bounds_values_are_named() {
        let policy = RetryPolicy {
            max_attempts: 0,
            delay_seconds: 0,
            max_delay_seconds: MAX_DELAY_SECONDS + 1,
            jitter_percent: 101,
            ..RetryPolicy::default()
        };
        let fields: Vec<String> = policy
            .problems(&["scraper", "retry"])
            .into_iter()
            .map(|error| error.loc.join("."))
            .collect();
        assert_eq!(
            fields,
            [
                "scraper.retry.max_attempts",
                "scraper.retry.delay_seconds",
                "scraper.retry.max_delay_seconds",
                "scraper.retry.jitter_percent"
            ]
        );
    }
}
