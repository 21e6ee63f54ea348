//! [`ScraperContext`]: everything a handler can use while its job runs — the scraper's
//! params and state, HTTP through the middleware chain (within the job's
//! [`limits`](super::limits) and the egress policy), downloads, parsing, the job log.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use futures_util::{stream, StreamExt, TryStreamExt};
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::http::{Outgoing, Request, RequestError, Response};
use super::limits::{self, read_capped};
use super::middleware::{self, Middleware, MiddlewareConfigError, MiddlewareSettings};
use super::parse::{self, Element, RegexMatch, SelectorError};
use super::runtime::Runtime;
use super::{JobHooks, LogLevel};
use crate::model::Scraper;

/// What a running handler gets. Cheap to clone (clones share the job), so a handler can hand
/// it to tasks or threads it starts.
#[derive(Clone)]
pub struct ScraperContext {
    inner: Arc<Inner>,
}

struct Inner {
    scraper: Scraper,
    /// The state as of the last `update_scraper_state`; behind a lock because handlers only
    /// get `&ScraperContext`.
    state: Mutex<Option<String>>,
    hooks: Arc<dyn JobHooks>,
    runtime: Runtime,
    /// The scraper's `config.plugins` laid over the runtime's defaults; `None` when it has
    /// no overrides.
    overrides: Option<MiddlewareSettings>,
    /// Built on the first request: most of a job's cost for a handler that never sends one.
    middleware: OnceLock<Vec<Box<dyn Middleware>>>,
    /// Requests of the job in flight: at most [`limits::MAX_CONCURRENCY`], however many
    /// tasks the handler starts.
    in_flight: Semaphore,
    /// The last HTTP 429 or 5xx status a request of the job received (0: none), which makes
    /// a failure of the job the site's doing as far as retries go.
    site_trouble: AtomicU16,
}

impl ScraperContext {
    /// The context of one job of `scraper`. Fails when the scraper's `config.plugins` is not
    /// a valid middleware configuration, changes an enforced one, goes over the operator's
    /// limits or names a proxy the egress policy refuses; the error's text is meant for the
    /// job's result.
    pub fn new(
        scraper: Scraper,
        hooks: Arc<dyn JobHooks>,
        runtime: &Runtime,
    ) -> Result<Self, MiddlewareConfigError> {
        let overrides = scraper
            .config
            .plugins
            .as_ref()
            .map(|plugins| runtime.settings().for_scraper(plugins))
            .transpose()?;
        if let Some(overrides) = &overrides {
            runtime.check_scraper_settings(overrides)?;
        }
        let state = Mutex::new(scraper.state.clone());
        Ok(ScraperContext {
            inner: Arc::new(Inner {
                scraper,
                state,
                hooks,
                runtime: runtime.clone(),
                overrides,
                middleware: OnceLock::new(),
                in_flight: Semaphore::new(limits::MAX_CONCURRENCY),
                site_trouble: AtomicU16::new(0),
            }),
        })
    }

    /// The scraper's middleware settings: its overrides, or the runtime's defaults.
    fn settings(&self) -> &MiddlewareSettings {
        let inner = &*self.inner;
        inner
            .overrides
            .as_ref()
            .unwrap_or_else(|| inner.runtime.settings())
    }

    /// The scraper's middleware chain, in order.
    fn middleware(&self) -> &[Box<dyn Middleware>] {
        self.inner
            .middleware
            .get_or_init(|| middleware::chain(self.settings(), &self.inner.runtime))
    }

    /// The last HTTP 429 (too many requests) or 5xx status a request of this job received,
    /// if any: a job that then fails is retried for [`RetryReason::HttpStatus`].
    ///
    /// [`RetryReason::HttpStatus`]: crate::retry::RetryReason::HttpStatus
    pub fn site_trouble(&self) -> Option<u16> {
        match self.inner.site_trouble.load(Ordering::Relaxed) {
            0 => None,
            status => Some(status),
        }
    }

    /// The scraper as it was when the job started (see [`Self::state`] for its current state).
    pub fn scraper(&self) -> &Scraper {
        &self.inner.scraper
    }

    /// `config.params` of the scraper (empty when unset).
    pub fn params(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.inner
            .scraper
            .config
            .params
            .as_ref()
            .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
    }

    /// The state previous runs left, or this run's latest [`Self::update_scraper_state`].
    pub fn state(&self) -> Option<String> {
        crate::sync::lock(&self.inner.state).clone()
    }

    /// Persists `state` on the scraper: later runs see it in [`Self::state`].
    pub async fn update_scraper_state(&self, state: Option<String>) -> Result<(), crate::Error> {
        let stored = self.inner.hooks.update_scraper_state(state).await?;
        *crate::sync::lock(&self.inner.state) = stored;
        Ok(())
    }

    /// Appends a line to the job's log.
    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        self.inner.hooks.log(level, message.into());
    }

    /// Sends `request` through the middleware chain (after a heartbeat) and reads the whole
    /// response, up to the scraper's `limits.max_response_bytes`. Any status is a response;
    /// [`Response::error_for_status`] makes 4xx/5xx errors.
    pub async fn request(&self, request: Request) -> Result<Response, RequestError> {
        let (outgoing, mut response, _in_flight) = self.send(request).await?;
        let mut url = response.url().clone();
        // Credentials a redirect may have carried stay out of results and errors.
        let _ = url.set_password(None);
        let _ = url.set_username("");
        let (status, headers) = (response.status(), response.headers().clone());
        let cap = self.settings().limits.max_response_bytes;
        let body = read_capped(&mut response, cap)
            .await
            .map_err(|error| RequestError::network(&outgoing, error))?;
        if body.cut {
            return Err(RequestError::TooLarge {
                method: outgoing.method.clone(),
                url: outgoing.shown_url(),
                limit: cap,
            });
        }
        Ok(Response {
            method: outgoing.method,
            url,
            status,
            headers,
            body: body.bytes,
        })
    }

    /// `GET url` with no body, as [`Self::request`] sends it: any status is a response.
    pub async fn get(&self, url: impl Into<String>) -> Result<Response, RequestError> {
        self.request(Request::get(url)).await
    }

    /// `POST url` with `body` and no `Content-Type`, as [`Self::request`] sends it; build a
    /// [`Request`] for headers or a JSON body.
    pub async fn post(
        &self,
        url: impl Into<String>,
        body: impl Into<bytes::Bytes>,
    ) -> Result<Response, RequestError> {
        self.request(Request::post(url).body(body)).await
    }

    /// `PUT url` with `body`, as [`Self::request`] sends it (use [`Request`] for headers).
    pub async fn put(
        &self,
        url: impl Into<String>,
        body: impl Into<bytes::Bytes>,
    ) -> Result<Response, RequestError> {
        self.request(Request::put(url).body(body)).await
    }

    /// `DELETE url` with no body, as [`Self::request`] sends it.
    pub async fn delete(&self, url: impl Into<String>) -> Result<Response, RequestError> {
        self.request(Request::delete(url)).await
    }

    /// `HEAD url`, as [`Self::request`] sends it: the response has headers and an empty body.
    pub async fn head(&self, url: impl Into<String>) -> Result<Response, RequestError> {
        self.request(Request::head(url)).await
    }

    /// `OPTIONS url`, as [`Self::request`] sends it.
    pub async fn options(&self, url: impl Into<String>) -> Result<Response, RequestError> {
        self.request(Request::options(url)).await
    }

    /// Sends all `requests`, at most `max_concurrency` at a time (0: the default,
    /// [`limits::DEFAULT_CONCURRENCY`]; never more than [`limits::MAX_CONCURRENCY`]), and
    /// returns the responses in request order. The first error fails the whole call and
    /// cancels the requests still running.
    pub async fn request_all(
        &self,
        requests: impl IntoIterator<Item = Request>,
        max_concurrency: usize,
    ) -> Result<Vec<Response>, RequestError> {
        stream::iter(requests)
            .map(|request| self.request(request))
            .buffered(limits::concurrency(max_concurrency))
            .try_collect()
            .await
    }

    /// As [`Self::request_all`], but every request runs to its end and its error, if any,
    /// takes its place in the list.
    pub async fn request_all_settled(
        &self,
        requests: impl IntoIterator<Item = Request>,
        max_concurrency: usize,
    ) -> Vec<Result<Response, RequestError>> {
        stream::iter(requests)
            .map(|request| self.request(request))
            .buffered(limits::concurrency(max_concurrency))
            .collect()
            .await
    }

    /// Streams the response body into `path`, or into a new temporary file when `None`, and
    /// returns the file's path (the caller owns the file). A 4xx/5xx status fails without
    /// leaving a file.
    pub async fn download(
        &self,
        request: Request,
        path: Option<PathBuf>,
    ) -> Result<PathBuf, RequestError> {
        let path = path.unwrap_or_else(temporary_path);
        let (outgoing, response, _in_flight) = self.send(request).await?;
        let file_error = |source: std::io::Error| RequestError::File {
            method: outgoing.method.clone(),
            url: outgoing.shown_url(),
            path: path.display().to_string(),
            source,
        };
        let mut response = response
            .error_for_status()
            .map_err(|error| match error.status() {
                Some(status) => RequestError::Status {
                    method: outgoing.method.clone(),
                    url: outgoing.shown_url(),
                    status,
                },
                None => RequestError::network(&outgoing, error),
            })?;
        let mut file = tokio::fs::File::create(&path).await.map_err(file_error)?;
        // Removes a partial file on any failure, including the job being cancelled here.
        let partial = RemoveOnDrop(Some(path.clone()));
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| RequestError::network(&outgoing, error))?
        {
            file.write_all(&chunk).await.map_err(file_error)?;
        }
        file.flush().await.map_err(file_error)?;
        partial.keep();
        Ok(path)
    }

    /// Downloads into a temporary file, runs `process` on it, deletes the file (even when
    /// `process` fails or panics) and returns what `process` returned.
    pub async fn download_with<T, F, Fut>(
        &self,
        request: Request,
        process: F,
    ) -> Result<T, RequestError>
    where
        F: FnOnce(PathBuf) -> Fut,
        Fut: Future<Output = T>,
    {
        let path = self.download(request, None).await?;
        let _remove = RemoveOnDrop(Some(path.clone()));
        Ok(process(path).await)
    }

    /// Downloads each request into its path of `paths` (one per request), or into temporary
    /// files when `None`, at most `max_concurrency` at a time (as in [`Self::request_all`]).
    /// Fails on the first error.
    pub async fn download_all(
        &self,
        requests: Vec<Request>,
        paths: Option<Vec<PathBuf>>,
        max_concurrency: usize,
    ) -> Result<Vec<PathBuf>, RequestError> {
        let paths: Vec<Option<PathBuf>> = match paths {
            Some(paths) if paths.len() != requests.len() => {
                return Err(RequestError::PathCountMismatch {
                    paths: paths.len(),
                    urls: requests.len(),
                })
            }
            Some(paths) => paths.into_iter().map(Some).collect(),
            None => vec![None; requests.len()],
        };
        stream::iter(requests.into_iter().zip(paths))
            .map(|(request, path)| self.download(request, path))
            .buffered(limits::concurrency(max_concurrency))
            .try_collect()
            .await
    }

    /// Matches of `pattern` in `text`, case-insensitive and multi-line by default (see
    /// [`parse::compile_regex`]).
    pub fn regex(&self, text: &str, pattern: &str) -> Result<Vec<RegexMatch>, regex::Error> {
        parse::regex(text, pattern)
    }

    /// The elements of the HTML document `html` that the CSS `selector` matches.
    pub fn select(&self, html: &str, selector: &str) -> Result<Vec<Element>, SelectorError> {
        parse::select(html, selector)
    }

    /// Egress check of a literal address, heartbeat, middleware before the request, send,
    /// middleware after the response. The permit holds the request's place among the job's
    /// requests in flight until the caller has read the body.
    async fn send(
        &self,
        request: Request,
    ) -> Result<(Outgoing, reqwest::Response, SemaphorePermit<'_>), RequestError> {
        let mut outgoing = request.prepare()?;
        let runtime = &self.inner.runtime;
        runtime
            .egress()
            .check_url(&outgoing.url)
            .map_err(|denied| RequestError::EgressDenied {
                method: outgoing.method.clone(),
                url: outgoing.shown_url(),
                denied: Box::new(denied),
            })?;
        let hooks = &*self.inner.hooks;
        hooks
            .heartbeat()
            .await
            .map_err(|reason| RequestError::JobStopped {
                method: outgoing.method.clone(),
                url: outgoing.shown_url(),
                reason,
            })?;
        for middleware in self.middleware() {
            middleware.before_request(&mut outgoing, hooks).await?;
        }
        let client =
            runtime
                .client(outgoing.proxy.as_ref())
                .map_err(|reason| RequestError::Invalid {
                    method: outgoing.method.clone(),
                    url: outgoing.shown_url(),
                    reason,
                })?;
        let timeout = runtime.request_timeout(outgoing.timeout, &self.settings().limits);
        outgoing.timeout = Some(timeout);
        let mut builder = client
            .request(outgoing.method.clone(), outgoing.url.clone())
            .headers(outgoing.headers.clone())
            .timeout(timeout);
        if let Some(body) = &outgoing.body {
            builder = builder.body(body.clone());
        }
        let in_flight = self
            .inner
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let response = builder
            .send()
            .await
            .map_err(|error| RequestError::network(&outgoing, error))?;
        let status = response.status();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            self.inner
                .site_trouble
                .store(status.as_u16(), Ordering::Relaxed);
        }
        for middleware in self.middleware() {
            middleware.after_response(&outgoing, status, hooks).await?;
        }
        Ok((outgoing, response, in_flight))
    }
}

fn temporary_path() -> PathBuf {
    std::env::temp_dir().join(format!("sneakpeek-{}", uuid::Uuid::new_v4()))
}

/// Deletes a file when dropped, unless kept.
struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            // Nothing useful can be done if removing fails; a file already gone is fine.
            let _ = std::fs::remove_file(path);
        }
    }
}
