//! Live updates: server-sent event streams of a scraper's jobs and of one job with its log.
//!
//! The server side ([`router`], `ssr` only) serves:
//! - `GET /live/scrapers/{scraper_id}/jobs`: event `jobs`, the scraper's jobs (newest first),
//!   sent at once and again whenever they change;
//! - `GET /live/scrapers/{scraper_id}/jobs/{job_id}?after=N`: event `job`, a [`JobUpdate`]
//!   with the job and its log lines after line `N`, sent whenever either changes. Each event's
//!   id is the last log line sent, so a reconnecting browser (which sends it back as
//!   `Last-Event-ID`) resumes where it stopped.
//!
//! The engine has no change feed, so each stream compares the engine's answer every
//! [`CHECK_EVERY`] and sends only differences: one cheap read per open page, and the browser
//! gets no redundant renders. The browser side ([`follow`]) falls back to polling when the
//! stream cannot be opened.
//!
//! Streams never end by themselves, so the server ends them all when it starts shutting
//! down (else an open page would keep it alive); the browser then reconnects, to whichever
//! replica serves by then.

use engine::model::{JobLogLine, ScraperJob};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Log lines sent per event at most: a 100,000-line log arrives in 20 events, each small
/// enough to parse without freezing the page.
pub const LOG_CHUNK: usize = 5_000;

/// How often a stream looks for changes.
#[cfg(feature = "ssr")]
const CHECK_EVERY: std::time::Duration = std::time::Duration::from_millis(300);

/// An event of the job stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobUpdate {
    pub job: ScraperJob,
    /// New log lines, in order; fewer than [`LOG_CHUNK`] means the log was read to its end.
    pub lines: Vec<JobLogLine>,
}

pub fn scraper_jobs_url(scraper_id: i64) -> String {
    format!("/live/scrapers/{scraper_id}/jobs")
}

pub fn job_url(scraper_id: i64, job_id: i64, after: i64) -> String {
    format!("/live/scrapers/{scraper_id}/jobs/{job_id}?after={after}")
}

#[cfg(feature = "ssr")]
pub use server::router;

#[cfg(feature = "ssr")]
mod server {
    use std::convert::Infallible;

    use axum::extract::{Path, Query, State};
    use axum::http::HeaderMap;
    use axum::response::sse::{Event, KeepAlive, Sse};
    use axum::routing::get;
    use axum::Router;
    use engine::model::ScraperJob;
    use engine::Engine;
    use futures_util::stream::{self, Stream, StreamExt};
    use serde::Deserialize;
    use tokio::sync::watch;

    use super::{JobUpdate, CHECK_EVERY, LOG_CHUNK};

    #[derive(Clone)]
    struct Live {
        engine: Engine,
        closing: watch::Receiver<bool>,
    }

    /// The live-update routes, with the engine they read from; merge into the server's router.
    /// Every stream ends once `closing` turns true (or its sender is dropped).
    pub fn router<S: Clone + Send + Sync + 'static>(
        engine: Engine,
        closing: watch::Receiver<bool>,
    ) -> Router<S> {
        Router::new()
            .route("/live/scrapers/{scraper_id}/jobs", get(scraper_jobs))
            .route("/live/scrapers/{scraper_id}/jobs/{job_id}", get(job))
            .with_state(Live { engine, closing })
    }

    /// `updates` until the server starts shutting down. Ending the stream rather than dropping
    /// the connection lets the response finish cleanly.
    fn until_closing<T>(
        updates: impl Stream<Item = T>,
        mut closing: watch::Receiver<bool>,
    ) -> impl Stream<Item = T> {
        updates.take_until(async move {
            // An error means the sender is gone, and with it the server: end all the same.
            let _ = closing.wait_for(|closing| *closing).await;
        })
    }

    async fn scraper_jobs(
        State(Live { engine, closing }): State<Live>,
        Path(scraper_id): Path<i64>,
    ) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
        let updates = stream::unfold(
            (engine, None::<Vec<ScraperJob>>),
            move |(engine, sent)| async move {
                loop {
                    match engine.get_scraper_jobs(scraper_id).await {
                        Ok(jobs) if sent.as_ref() != Some(&jobs) => {
                            let event = Event::default().event("jobs").json_data(&jobs).ok()?;
                            return Some((Ok(event), (engine, Some(jobs))));
                        }
                        Ok(_) => {}
                        // A storage hiccup: the next look may succeed; the browser keeps what it has.
                        Err(error) => leptos::logging::warn!(
                            "live jobs of scraper {scraper_id}: {}",
                            error.describe()
                        ),
                    }
                    tokio::time::sleep(CHECK_EVERY).await;
                }
            },
        );
        Sse::new(until_closing(updates, closing)).keep_alive(KeepAlive::default())
    }

    #[derive(Deserialize)]
    struct From {
        after: Option<i64>,
    }

    async fn job(
        State(Live { engine, closing }): State<Live>,
        Path((scraper_id, job_id)): Path<(i64, i64)>,
        Query(from): Query<From>,
        headers: HeaderMap,
    ) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
        let resumed = headers
            .get("last-event-id")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok());
        let after = resumed.or(from.after).unwrap_or(0);
        let updates = stream::unfold(
            (engine, None::<ScraperJob>, after),
            move |(engine, sent, after)| async move {
                loop {
                    // The job is read before its log: once a finished job is seen, the lines read
                    // next are all its lines, so the browser can stop at a finished job.
                    let job = match engine.get_scraper_job(scraper_id, job_id).await {
                        Ok(job) => job,
                        Err(
                            engine::Error::ScraperJobNotFound(_)
                            | engine::Error::ScraperNotFound(_),
                        ) => return None,
                        Err(error) => {
                            leptos::logging::warn!("live job {job_id}: {}", error.describe());
                            tokio::time::sleep(CHECK_EVERY).await;
                            continue;
                        }
                    };
                    let lines = engine
                        .get_scraper_job_logs(scraper_id, job_id, Some(after), Some(LOG_CHUNK))
                        .await
                        .unwrap_or_default();
                    if !lines.is_empty() || sent.as_ref() != Some(&job) {
                        let after = lines.last().map_or(after, |line| line.id);
                        let update = JobUpdate {
                            job: job.clone(),
                            lines,
                        };
                        let event = Event::default()
                            .event("job")
                            .id(after.to_string())
                            .json_data(&update)
                            .ok()?;
                        return Some((Ok(event), (engine, Some(job), after)));
                    }
                    tokio::time::sleep(CHECK_EVERY).await;
                }
            },
        );
        Sse::new(until_closing(updates, closing)).keep_alive(KeepAlive::default())
    }
}

/// What to do after an update: keep listening, or close the stream (nothing more will come).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Follows the event stream at `url` while the calling component lives, handing each
/// `event`'s data to `on_update`. When the stream cannot be opened or the server refuses it
/// (the browser then gives up reconnecting), calls `poll` at once and every second instead.
/// On the server this does nothing: streams belong to the hydrated page.
pub fn follow<T: DeserializeOwned + 'static>(
    url: String,
    event: &'static str,
    on_update: impl Fn(T) -> Flow + 'static,
    poll: impl Fn() + 'static,
) {
    #[cfg(feature = "hydrate")]
    browser::follow(url, event, on_update, poll);
    #[cfg(not(feature = "hydrate"))]
    let _ = (url, event, on_update, poll);
}

#[cfg(feature = "hydrate")]
mod browser {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    use leptos::prelude::*;
    use send_wrapper::SendWrapper;
    use serde::de::DeserializeOwned;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;
    use web_sys::{EventSource, MessageEvent};

    use super::Flow;

    const POLL_EVERY: Duration = Duration::from_secs(1);

    pub fn follow<T: DeserializeOwned + 'static>(
        url: String,
        event: &'static str,
        on_update: impl Fn(T) -> Flow + 'static,
        poll: impl Fn() + 'static,
    ) {
        let poll = Rc::new(poll);
        let polling: Rc<RefCell<Option<IntervalHandle>>> = Rc::default();
        let start_polling = {
            let polling = polling.clone();
            move || {
                if polling.borrow().is_some() {
                    return;
                }
                poll();
                let poll = poll.clone();
                *polling.borrow_mut() = set_interval_with_handle(move || poll(), POLL_EVERY).ok();
            }
        };
        let Ok(source) = EventSource::new(&url) else {
            start_polling();
            let polling = SendWrapper::new(polling);
            on_cleanup(move || stop_polling(&polling.take()));
            return;
        };
        let on_message = {
            let source = source.clone();
            Closure::<dyn Fn(MessageEvent)>::new(move |message: MessageEvent| {
                let Some(text) = message.data().as_string() else {
                    return;
                };
                match crate::json::parse::<T>(&text) {
                    Ok(update) => {
                        if on_update(update) == Flow::Stop {
                            source.close();
                        }
                    }
                    Err(error) => leptos::logging::warn!(
                        "unreadable live update from {}: {error}",
                        source.url()
                    ),
                }
            })
        };
        let on_error = {
            let source = source.clone();
            // The browser retries a dropped connection by itself; it gives up (CLOSED) only
            // when the server answers with an error or not with an event stream.
            Closure::<dyn Fn()>::new(move || {
                if source.ready_state() == EventSource::CLOSED {
                    start_polling();
                }
            })
        };
        let _ = source.add_event_listener_with_callback(event, on_message.as_ref().unchecked_ref());
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let held = SendWrapper::new((source, on_message, on_error, polling));
        on_cleanup(move || {
            let (source, _on_message, _on_error, polling) = held.take();
            source.close();
            stop_polling(&polling);
        });
    }

    fn stop_polling(polling: &RefCell<Option<IntervalHandle>>) {
        if let Some(handle) = polling.borrow_mut().take() {
            handle.clear();
        }
    }
}
