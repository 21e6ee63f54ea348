//! Errors of engine operations, with the stable codes the JsonRPC API reports.
//!
//! Codes 5000, 5001 and 10000-10003 are Sneakpeek v0.1.7's, with its messages. The original
//! used 10002 twice; unknown handler has its own code here. Codes we added never reuse one of
//! the original's.

use serde::{Deserialize, Serialize};

/// One invalid field of a request: where it is (`["scraper", "schedule_crontab"]`) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub loc: Vec<String>,
    pub msg: String,
}

impl FieldError {
    pub fn new(loc: &[&str], msg: impl Into<String>) -> Self {
        FieldError {
            loc: loc.iter().map(|part| (*part).to_owned()).collect(),
            msg: msg.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum Error {
    #[error("Scraper not found")]
    ScraperNotFound(i64),
    #[error("Scraper job not found")]
    ScraperJobNotFound(i64),
    #[error("Scraper has active jobs")]
    ScraperHasActiveRun,
    #[error("Failed to ping not started scraper job")]
    PingNotStarted,
    #[error("Tried to ping finished scraper job")]
    PingFinished,
    #[error("Scraper job has timed out")]
    JobTimedOut,
    #[error("Unknown scraper handler")]
    UnknownHandler(String),
    #[error("Invalid scraper")]
    InvalidScraper(Vec<FieldError>),
    #[error("Storage is read-only")]
    ReadOnly,
    #[error("Scraper job is not active")]
    JobNotActive(i64),
    /// As many ephemeral runs as allowed are pending or running; the limit is the data.
    #[error("Too many ephemeral runs")]
    TooManyEphemeralRuns(u64),
    /// A failure of the storage or another dependency; the detail is for the log, not the user.
    #[error("Internal error")]
    Internal(String),
    /// The storage cannot be reached right now (connection refused or lost, database
    /// restarting). Retrying later may succeed, unlike [`Error::Internal`]; the worker keeps
    /// what it has to write and retries until the storage is back.
    #[error("Storage unavailable")]
    Unavailable(String),
}

impl Error {
    /// The JsonRPC error code.
    pub fn code(&self) -> i64 {
        match self {
            Error::ScraperNotFound(_) => 5000,
            Error::ScraperJobNotFound(_) => 5001,
            Error::ReadOnly => 5002,
            Error::ScraperHasActiveRun => 10000,
            Error::PingNotStarted => 10001,
            Error::PingFinished => 10002,
            Error::JobTimedOut => 10003,
            Error::UnknownHandler(_) => 10004,
            Error::InvalidScraper(_) => 10005,
            Error::JobNotActive(_) => 10006,
            Error::TooManyEphemeralRuns(_) => 10007,
            Error::Internal(_) => -32603,
            // JsonRPC's range for server errors.
            Error::Unavailable(_) => -32001,
        }
    }

    /// The JsonRPC error `data`: what the client needs to act on the error.
    pub fn data(&self) -> Option<serde_json::Value> {
        use serde_json::json;
        match self {
            Error::ScraperNotFound(id)
            | Error::ScraperJobNotFound(id)
            | Error::JobNotActive(id) => Some(json!(id)),
            Error::UnknownHandler(name) => Some(json!({ "handler": name })),
            Error::TooManyEphemeralRuns(limit) => Some(json!({ "limit": limit })),
            Error::InvalidScraper(errors) => Some(json!({ "errors": errors })),
            _ => None,
        }
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        Error::Internal(error.to_string())
    }

    /// Whether the operation may succeed if retried unchanged once the storage is back.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }

    /// A message for a person: the message plus the detail that makes it actionable.
    pub fn describe(&self) -> String {
        match self {
            Error::UnknownHandler(name) => format!("Unknown scraper handler '{name}'"),
            Error::InvalidScraper(errors) => {
                let details: Vec<String> = errors
                    .iter()
                    .map(|error| format!("{}: {}", error.loc.join("."), error.msg))
                    .collect();
                format!("Invalid scraper: {}", details.join("; "))
            }
            Error::Unavailable(detail) => format!("Storage unavailable: {detail}"),
            other => other.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_own_code() {
        let errors = [
            Error::ScraperNotFound(1),
            Error::ScraperJobNotFound(1),
            Error::ScraperHasActiveRun,
            Error::PingNotStarted,
            Error::PingFinished,
            Error::JobTimedOut,
            Error::UnknownHandler("x".into()),
            Error::InvalidScraper(vec![]),
            Error::ReadOnly,
            Error::JobNotActive(1),
            Error::TooManyEphemeralRuns(1),
            Error::Internal("x".into()),
            Error::Unavailable("x".into()),
        ];
        let mut codes: Vec<i64> = errors.iter().map(Error::code).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), errors.len());
    }

    #[test]
    fn original_errors_keep_their_codes_and_messages() {
        assert_eq!(
            (
                Error::ScraperNotFound(3).code(),
                Error::ScraperNotFound(3).to_string()
            ),
            (5000, "Scraper not found".into())
        );
        assert_eq!(Error::ScraperNotFound(3).data(), Some(serde_json::json!(3)));
        assert_eq!(
            (
                Error::ScraperJobNotFound(3).code(),
                Error::ScraperJobNotFound(3).to_string()
            ),
            (5001, "Scraper job not found".into())
        );
        assert_eq!(
            (
                Error::ScraperHasActiveRun.code(),
                Error::ScraperHasActiveRun.to_string()
            ),
            (10000, "Scraper has active jobs".into())
        );
    }
}
