//! Errors of engine operations, with the stable codes the JsonRPC API reports.
//!
//! Codes 5000, 5001 and 10000-10003 are Sneakpeek v0.1.7's, with its messages. The original
//! used 10002 twice; unknown handler has its own code here. Codes we added never reuse one of
//! the original's.
//!
//! Failures of the storage or another dependency keep the error underneath as their
//! [`Cause`], with what was being done: clients see only the stable message ("Internal
//! error"), and the boundaries (the API, the UI, the worker) log the whole chain once, with
//! [`report`].

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One invalid field of a request: where it is (`["scraper", "schedule_crontab"]`) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Path to the field in the request's params, outermost first (`["scraper", "name"]`); the
    /// `loc` of a JsonRPC `data.errors` entry.
    pub loc: Vec<String>,
    /// Why the value is refused, for a person (`"required when the schedule is crontab"`); the
    /// entry's `msg`.
    pub msg: String,
}

impl FieldError {
    /// A field error at the path `loc` (e.g. `&["scraper", "timeout_seconds"]`) with the reason
    /// `msg`.
    pub fn new(loc: &[&str], msg: impl Into<String>) -> Self {
        FieldError {
            loc: loc.iter().map(|part| (*part).to_owned()).collect(),
            msg: msg.into(),
        }
    }
}

/// The error underneath an [`Error::Internal`] or [`Error::Unavailable`], with what was
/// being done when it happened. Its text is for logs: it may name tables or hosts.
#[derive(Debug, Clone)]
pub struct Cause {
    doing: Option<Cow<'static, str>>,
    error: Arc<dyn std::error::Error + Send + Sync>,
}

impl Cause {
    /// A cause wrapping `error` (an error, or a message saying what is wrong), not yet saying what
    /// was being done; [`Error::context`] adds that.
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Cause {
            doing: None,
            error: Arc::from(error.into()),
        }
    }

    /// Says what was being done, outside what was said before: `"claiming jobs: database: …"`.
    fn while_doing(mut self, doing: impl Into<Cow<'static, str>>) -> Self {
        let doing = doing.into();
        self.doing = Some(match self.doing.take() {
            Some(inner) => format!("{doing}: {inner}").into(),
            None => doing,
        });
        self
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.doing {
            Some(doing) => write!(formatter, "{doing}: {}", self.error),
            None => write!(formatter, "{}", self.error),
        }
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// Causes are equal when they read the same: what tests compare.
impl PartialEq for Cause {
    fn eq(&self, other: &Cause) -> bool {
        self.to_string() == other.to_string()
    }
}

/// Why an engine operation failed. Each variant has a stable JsonRPC code ([`Error::code`]),
/// a message clients may match (its `Display`, the reply's `message`) and possibly the `data`
/// that goes with it ([`Error::data`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// No scraper has this id (code 5000); the data is the id.
    #[error("Scraper not found")]
    ScraperNotFound(i64),
    /// The scraper has no job with this id (code 5001); the data is the job id.
    #[error("Scraper job not found")]
    ScraperJobNotFound(i64),
    /// The scraper already has a pending or started job, so no other may be queued (code 10000).
    #[error("Scraper has active jobs")]
    ScraperHasActiveRun,
    /// A heartbeat for a job still pending (code 10001): it was handed back to the queue or never
    /// claimed. Between workers and the queue only; the API never returns it.
    #[error("Failed to ping not started scraper job")]
    PingNotStarted,
    /// A heartbeat for a job already finished, killed or declared dead (code 10002): its worker
    /// should stop the handler. Between workers and the queue only.
    #[error("Tried to ping finished scraper job")]
    PingFinished,
    /// The job ran longer than its scraper's `timeout_seconds` (code 10003); its text starts the
    /// result of the failed job. Never returned by the API.
    #[error("Scraper job has timed out")]
    JobTimedOut,
    /// No handler of this name runs on this server (code 10004); the data is `{"handler": name}`.
    #[error("Unknown scraper handler")]
    UnknownHandler(String),
    /// The scraper's settings are invalid (code 10005); the data is `{"errors": [...]}`, one
    /// [`FieldError`] per problem.
    #[error("Invalid scraper")]
    InvalidScraper(Vec<FieldError>),
    /// The server runs with `--read-only`: the scrapers list cannot be created, changed or deleted
    /// (code 5002).
    #[error("Storage is read-only")]
    ReadOnly,
    /// The job has already finished, so it cannot be killed (code 10006); the data is the job id.
    #[error("Scraper job is not active")]
    JobNotActive(i64),
    /// As many ephemeral runs as allowed are pending or running; the limit is the data.
    #[error("Too many ephemeral runs")]
    TooManyEphemeralRuns(u64),
    /// A failure of the storage or another dependency; the cause is for the log, not the user.
    #[error("Internal error")]
    Internal(#[source] Cause),
    /// The storage cannot be reached right now (connection refused or lost, database
    /// restarting). Retrying later may succeed, unlike [`Error::Internal`]; the worker keeps
    /// what it has to write and retries until the storage is back.
    #[error("Storage unavailable")]
    Unavailable(#[source] Cause),
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

    /// An [`Error::Internal`] caused by `error` (an error, or a message saying what is wrong).
    pub fn internal(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Internal(Cause::new(error))
    }

    /// An [`Error::Unavailable`] caused by `error`.
    pub fn unavailable(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Unavailable(Cause::new(error))
    }

    /// The error, saying what was being done if it is a failure with a [`Cause`]; any other
    /// error already says all a client needs and is returned as it is.
    pub fn context(self, doing: impl Into<Cow<'static, str>>) -> Self {
        match self {
            Error::Internal(cause) => Error::Internal(cause.while_doing(doing)),
            Error::Unavailable(cause) => Error::Unavailable(cause.while_doing(doing)),
            other => other,
        }
    }

    /// [`Error::describe`] and the causes underneath on one line, for the log (see
    /// [`report`]).
    pub fn report(&self) -> String {
        let mut text = self.describe();
        append_causes(&mut text, std::error::Error::source(self));
        text
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

/// The result of engine operations: [`Error`] unless said otherwise.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `error` and its causes on one line, outermost first: what a log line or an operator
/// reads. A cause whose text its parent already shows (as many libraries repeat their
/// source's message) is not repeated.
pub fn report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    append_causes(&mut text, error.source());
    text
}

fn append_causes(text: &mut String, mut cause: Option<&(dyn std::error::Error + 'static)>) {
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_names_each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read the settings")]
        struct Outer(#[source] std::io::Error);
        let inner = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        assert_eq!(
            report(&Outer(inner)),
            "cannot read the settings: no such file"
        );
        #[derive(Debug, thiserror::Error)]
        #[error("database: {0}")]
        struct Repeating(#[source] std::io::Error);
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(report(&Repeating(inner)), "database: refused");
    }

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
            Error::internal("x"),
            Error::unavailable("x"),
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
