//! The HTTP vocabulary of handlers: a [`Request`] they build, the [`Response`] they get back,
//! and the [`RequestError`] that says, for a person reading a job's result, which request
//! failed and why. URLs in errors and log lines never show the credentials they may carry
//! ([`redact_url`](crate::redact::redact_url)).

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;

use super::egress::EgressDenied;
use crate::redact::redact_url;

pub use reqwest::Method;

/// A request to send through [`ScraperContext::request`](super::ScraperContext::request).
///
/// Building never fails: a malformed URL or header is reported when the request is sent,
/// with the URL in the message.
#[derive(Debug, Clone)]
pub struct Request {
    pub(crate) method: Method,
    pub(crate) url: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Option<Bytes>,
    pub(crate) timeout: Option<Duration>,
}

impl Request {
    /// A `method` request to `url`, with no headers, no body and the scraper's `limits.timeout`.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout: None,
        }
    }

    /// A `GET` request to `url` (see [`Request::new`]).
    pub fn get(url: impl Into<String>) -> Self {
        Request::new(Method::GET, url)
    }

    /// A `POST` request to `url`; give it a body with [`Request::body`] or [`Request::json`].
    pub fn post(url: impl Into<String>) -> Self {
        Request::new(Method::POST, url)
    }

    /// A `PUT` request to `url`; give it a body with [`Request::body`] or [`Request::json`].
    pub fn put(url: impl Into<String>) -> Self {
        Request::new(Method::PUT, url)
    }

    /// A `DELETE` request to `url`.
    pub fn delete(url: impl Into<String>) -> Self {
        Request::new(Method::DELETE, url)
    }

    /// A `HEAD` request to `url`: the response has headers and an empty body.
    pub fn head(url: impl Into<String>) -> Self {
        Request::new(Method::HEAD, url)
    }

    /// An `OPTIONS` request to `url`.
    pub fn options(url: impl Into<String>) -> Self {
        Request::new(Method::OPTIONS, url)
    }

    /// Adds a header (a repeated name sends the header several times).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends `body` as it is, replacing any body given before; sets no `Content-Type`.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sends `value` as a JSON body with `Content-Type: application/json`.
    pub fn json(self, value: &serde_json::Value) -> Self {
        self.header(CONTENT_TYPE.as_str(), "application/json")
            .body(value.to_string())
    }

    /// Gives up on the request (connecting, sending and reading the body) after `timeout`,
    /// instead of the scraper's `limits.timeout`; at most the operator's ceiling.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The method the request is sent with.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The URL as given, credentials included; checked only when the request is sent.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The request as the middleware chain sees it, with URL and headers checked.
    pub(crate) fn prepare(self) -> Result<Outgoing, RequestError> {
        let invalid = |reason: String| RequestError::Invalid {
            method: self.method.clone(),
            url: redact_url(&self.url),
            reason,
        };
        let url =
            Url::parse(&self.url).map_err(|error| invalid(format!("invalid URL: {error}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid(
                "only http and https URLs with a host can be fetched".to_owned(),
            ));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let header_name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(format!("invalid header name '{name}'")))?;
            let header_value = HeaderValue::from_str(value)
                .map_err(|_| invalid(format!("invalid value for header '{name}'")))?;
            headers.append(header_name, header_value);
        }
        Ok(Outgoing {
            method: self.method,
            url,
            headers,
            body: self.body,
            timeout: self.timeout,
            proxy: None,
        })
    }
}

/// A request on its way out: what middleware read and change before it is sent.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    /// The request's own timeout; when it is sent, the timeout it was given.
    pub timeout: Option<Duration>,
    /// Set by the `proxy` middleware.
    pub proxy: Option<super::middleware::ProxyRoute>,
}

impl Outgoing {
    /// The host rate limits and robots.txt apply to (every prepared URL has one).
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    /// The URL as errors and logs show it.
    pub fn shown_url(&self) -> String {
        redact_url(self.url.as_str())
    }
}

/// A response with its whole body read.
#[derive(Debug, Clone)]
pub struct Response {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Response {
    /// The URL the response came from, after redirects.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// The HTTP status code, e.g. `200`; any status is a response (see
    /// [`Response::error_for_status`]).
    pub fn status(&self) -> u16 {
        self.status.as_u16()
    }

    /// The response headers as received (a repeated header keeps all its values).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A header's value, when present and readable as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The whole body, at most the scraper's `limits.max_response_bytes` long.
    pub fn bytes(&self) -> &Bytes {
        &self.body
    }

    /// The body as text (UTF-8; invalid sequences become U+FFFD).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON into `T`; `Err` says why it is not valid JSON of that shape.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// `Err` for a 4xx or 5xx status, naming the request and the status.
    pub fn error_for_status(self) -> Result<Self, RequestError> {
        if self.status.is_client_error() || self.status.is_server_error() {
            return Err(RequestError::Status {
                method: self.method,
                url: redact_url(self.url.as_str()),
                status: self.status,
            });
        }
        Ok(self)
    }
}

/// Why a request failed. The text is what a job's result shows, so every variant names the
/// request.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The request could not be sent as built: a malformed URL or header, a URL that is not http(s)
    /// with a host, or a proxy the runtime cannot use.
    #[error("{method} {url}: {reason}")]
    Invalid {
        /// The request's method.
        method: Method,
        /// The request's URL as given, credentials shown as `***`.
        url: String,
        /// What is wrong, e.g. `invalid URL: relative URL without a base`.
        reason: String,
    },
    /// Connecting, sending or reading the response failed (refused, reset, DNS, TLS, too many
    /// redirects, ...).
    #[error("{method} {url} failed: {reason}")]
    Network {
        /// The request's method.
        method: Method,
        /// The request's URL, credentials shown as `***`.
        url: String,
        /// The error and its causes, outermost first (`error sending request: connection refused`).
        reason: String,
    },
    /// The egress policy refused the connection (see [`EgressDenied`]).
    #[error("{method} {url} refused: {denied}")]
    EgressDenied {
        /// The request's method.
        method: Method,
        /// The request's URL, credentials shown as `***`.
        url: String,
        /// What was refused and how the operator would allow it.
        denied: Box<EgressDenied>,
    },
    /// The request had no complete answer (body included) within its timeout: its own, or the
    /// scraper's `limits.timeout`.
    #[error("{method} {url} timed out: no complete answer within {seconds} s (limits.timeout)")]
    TimedOut {
        /// The request's method.
        method: Method,
        /// The request's URL, credentials shown as `***`.
        url: String,
        /// The timeout it ran out of, in seconds.
        seconds: f64,
    },
    /// The body went on past the scraper's `limits.max_response_bytes`.
    #[error(
        "{method} {url}: the response is larger than {limit} bytes (limits.max_response_bytes)"
    )]
    TooLarge {
        /// The request's method.
        method: Method,
        /// The request's URL, credentials shown as `***`.
        url: String,
        /// The cap the body went past, in bytes (`limits.max_response_bytes`).
        limit: u64,
    },
    /// [`Response::error_for_status`] on a 4xx or 5xx response.
    #[error("{method} {url} returned HTTP {status}")]
    Status {
        /// The request's method.
        method: Method,
        /// The URL that answered (after redirects), credentials shown as `***`.
        url: String,
        /// The 4xx or 5xx status received.
        status: StatusCode,
    },
    /// The heartbeat before the request was refused: the job was killed or declared dead.
    #[error("{method} {url} not sent: the job is no longer running ({})", .reason.describe())]
    JobStopped {
        /// The request's method.
        method: Method,
        /// The request's URL, credentials shown as `***`.
        url: String,
        /// The queue's answer to the heartbeat (e.g. `Error::PingFinished`).
        reason: crate::Error,
    },
    #[error(
        "Rate limited request to '{url}' because there were more than {max_requests} calls in the last {window_seconds}s \
         to the domain {host}. Next available call will be permitted at {}.",
        .next_slot.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )]
    /// The `rate_limiter` middleware with `rate_limited_strategy: throw` found the host's window
    /// full; the text is the original's.
    RateLimited {
        /// The request's URL, credentials shown as `***`.
        url: String,
        /// The host whose window is full, as in the URL (`www.example.com` and `example.com`
        /// differ).
        host: String,
        /// The limit: requests allowed per window and host.
        max_requests: u32,
        /// The window, in seconds.
        window_seconds: f64,
        /// When a slot frees (UTC): the earliest the request could be sent again.
        next_slot: DateTime<Utc>,
    },
    /// The `robots_txt` middleware with `violation_strategy: throw` found the request
    /// forbidden by the site's robots.txt.
    #[error("robots.txt prohibits requesting {url} (user agent '{user_agent}')")]
    RobotsTxtDisallowed {
        /// The request's URL, credentials shown as `***`.
        url: String,
        /// The agent the rules were looked up for: the product token of the request's
        /// `User-Agent` (`MyBot` for `MyBot/1.2`), or `*`.
        user_agent: String,
    },
    /// The shared rate limit store (PostgreSQL) could not be asked.
    #[error("{method} {url} not sent: rate limiter unavailable: {}", .reason.describe())]
    RateLimiterUnavailable {
        /// The request's method.
        method: Method,
        /// The request's URL, credentials shown as `***`.
        url: String,
        /// Why the store could not be asked (usually `Error::Unavailable`).
        reason: crate::Error,
    },
    /// A download could not write the response to its file.
    #[error("{method} {url}: writing {path} failed: {source}")]
    File {
        /// The request's method.
        method: Method,
        /// The request's URL, credentials shown as `***`.
        url: String,
        /// The file being written.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A download of several URLs was given file paths, but not one per URL; nothing was
    /// sent.
    #[error("expected one file path per URL, got {paths} paths for {urls} URLs")]
    PathCountMismatch {
        /// How many file paths were given.
        paths: usize,
        /// How many URLs were to be downloaded.
        urls: usize,
    },
}

impl RequestError {
    /// What went wrong with a request that was sent: the egress policy, its timeout, or the
    /// network.
    pub(crate) fn network(request: &Outgoing, error: reqwest::Error) -> Self {
        let (method, url) = (request.method.clone(), request.shown_url());
        if let Some(denied) = cause::<EgressDenied>(&error) {
            return RequestError::EgressDenied {
                method,
                url,
                denied: Box::new(denied.clone()),
            };
        }
        match request.timeout {
            Some(timeout) if error.is_timeout() => RequestError::TimedOut {
                method,
                url,
                seconds: timeout.as_secs_f64(),
            },
            // The request is named already; reqwest's URL would only repeat it (and a
            // redirect's may carry credentials).
            _ => RequestError::Network {
                method,
                url,
                reason: error_chain(&error.without_url()),
            },
        }
    }
}

/// The first error of type `T` among `error` and its causes.
fn cause<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        current = error.source();
    }
    None
}

/// An error with its causes, `outer: inner: innermost`: reqwest's own text alone ("error
/// sending request") does not say what went wrong.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
