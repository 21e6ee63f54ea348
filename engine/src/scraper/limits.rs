//! What one job's requests may take, so that no site and no scraper setting can exhaust the
//! worker's memory, time or connections:
//! - a total timeout and a response size cap per request: the `limits` section of the
//!   middleware settings ([`LimitsConfig`]), which a scraper overrides under
//!   `config.plugins.limits` up to the operator's ceilings
//!   ([`RuntimeSettings`](super::RuntimeSettings));
//! - how many requests one call sends at once ([`concurrency`]) and a job has in flight at
//!   most ([`MAX_CONCURRENCY`]).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// Requests one call sends at once when the caller asks for 0 ("the default").
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Requests one job has in flight at most, however many its handler starts: larger values
/// are lowered to this.
pub const MAX_CONCURRENCY: usize = 16;

/// How many requests a call asking for `requested` at once sends: 0 means
/// [`DEFAULT_CONCURRENCY`], and no value goes over [`MAX_CONCURRENCY`].
pub fn concurrency(requested: usize) -> usize {
    match requested {
        0 => DEFAULT_CONCURRENCY,
        requested => requested.min(MAX_CONCURRENCY),
    }
}

/// The bounds of every request of a scraper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Seconds a request may take, from connecting to the last byte of its body (> 0,
    /// fractions allowed). A request's own timeout replaces it.
    pub timeout: f64,
    /// Bytes of a response body read into memory (> 0); a larger response fails the
    /// request. Downloads to a file are not capped (the timeout bounds them).
    pub max_response_bytes: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            timeout: 30.0,
            max_response_bytes: 10 * 1024 * 1024,
        }
    }
}

impl LimitsConfig {
    pub(super) fn check(&self) -> super::middleware::FieldCheck {
        if self.timeout.is_nan() || self.timeout <= 0.0 {
            return Err((
                "timeout",
                format!("must be a positive number of seconds, got {}", self.timeout),
            ));
        }
        if Duration::try_from_secs_f64(self.timeout).is_err() {
            return Err(("timeout", "is too large to be a duration".to_owned()));
        }
        if self.max_response_bytes == 0 {
            return Err(("max_response_bytes", "must be greater than 0".to_owned()));
        }
        Ok(())
    }

    /// The timeout as a duration (`check` guarantees it is one).
    pub(crate) fn timeout(&self) -> Duration {
        Duration::try_from_secs_f64(self.timeout).unwrap_or(Duration::MAX)
    }
}

/// A body read up to a cap.
pub(crate) struct CappedBody {
    pub bytes: Bytes,
    /// Whether the body went on past the cap (its rest was not read).
    pub cut: bool,
}

/// Reads `response`'s body as it arrives, stopping at `cap` bytes: memory never holds more,
/// whatever the body's announced or real length.
pub(crate) async fn read_capped(
    response: &mut reqwest::Response,
    cap: u64,
) -> Result<CappedBody, reqwest::Error> {
    let cap = usize::try_from(cap).unwrap_or(usize::MAX);
    let announced = response
        .content_length()
        .and_then(|length| usize::try_from(length).ok());
    let mut body = BytesMut::with_capacity(announced.unwrap_or(0).min(cap));
    while let Some(chunk) = response.chunk().await? {
        let room = cap - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok(CappedBody {
                bytes: body.freeze(),
                cut: true,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(CappedBody {
        bytes: body.freeze(),
        cut: false,
    })
}
