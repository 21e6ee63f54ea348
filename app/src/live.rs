//! Live updates: server-sent event streams of a scraper's jobs and of one job with its log.
//!
//! The server side ([`router`], `ssr` only) serves:
//! - `GET /live/scrapers/{scraper_id}/jobs`: events `jobs`, [`JobsUpdate`]s. The first event of
//!   a connection is the scraper's whole list (newest first); the next ones carry only the jobs
//!   that changed (the fields that did) and those that are gone. A scraper snapshot is sent
//!   once per connection, and jobs refer to it by index.
//! - `GET /live/scrapers/{scraper_id}/jobs/{job_id}?after=N`: events `job`, [`JobUpdate`]s
//!   with what changed in the job and its log lines after line `N`. Each event's id is the last
//!   log line sent, so a reconnecting browser (which sends it back as `Last-Event-ID`) resumes
//!   where it stopped.
//!
//! Each kind of event is named once, by its data type ([`LiveEvent`]): the server sends it
//! under that name and the browser listens for that name, so the two ends cannot differ.
//!
//! No stream reads the storage by itself: all of a replica's streams follow one
//! [`engine::feed::Feed`], which looks for changes every [`CHECK_EVERY`] with one read
//! whatever the number of streams. A stream only reads the log lines it missed (a browser
//! resuming from an older line). One client address may hold [`MAX_STREAMS_PER_CLIENT`]
//! streams open at once and a replica [`MAX_STREAMS`]; more are refused with HTTP 429, and
//! the browser side ([`follow`]) then falls back to polling, as it does when the stream cannot
//! be opened at all.
//!
//! Streams never end by themselves, so the server ends them all when it starts shutting
//! down (else an open page would keep it alive); the browser then reconnects, to whichever
//! replica serves by then.

use chrono::{DateTime, Utc};
use engine::model::{
    timestamp, JobAttempt, JobLogLine, Scraper, ScraperJob, ScraperJobId, ScraperJobPriority,
    ScraperJobStatus,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

/// Log lines sent per event at most: a 100,000-line log arrives in 20 events, each small
/// enough to parse without freezing the page.
pub const LOG_CHUNK: usize = 5_000;

/// How often a replica looks for changes to what its streams follow.
#[cfg(feature = "ssr")]
pub const CHECK_EVERY: std::time::Duration = std::time::Duration::from_millis(300);

/// Live streams one client address may hold open at once on a replica (an IPv6 client counts
/// by its /64 network, which one client usually has to itself): a browser has a stream per
/// open scraper or job page. More get HTTP 429.
#[cfg(feature = "ssr")]
pub const MAX_STREAMS_PER_CLIENT: usize = 8;

/// Live streams a replica holds open at once, from all clients. More get HTTP 429.
#[cfg(feature = "ssr")]
pub const MAX_STREAMS: usize = 1_000;

/// The data of one kind of event, and the name it is sent under (the `event:` field).
pub trait LiveEvent: Serialize + DeserializeOwned + 'static {
    const NAME: &'static str;
}

impl LiveEvent for JobsUpdate {
    const NAME: &'static str = "jobs";
}

impl LiveEvent for JobUpdate {
    const NAME: &'static str = "job";
}

/// An event of a scraper's jobs stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobsUpdate {
    /// The connection's first event: `jobs` is the whole list, and what the browser had
    /// before goes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full: bool,
    /// Scraper snapshots not sent before on this connection. With those sent before, in the
    /// order sent, they are numbered from 0: [`JobPatch::snapshot`] refers to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<Scraper>,
    /// Jobs new to the connection, with all their fields, and jobs that changed, with the
    /// fields that did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<JobPatch>,
    /// Jobs no longer kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<ScraperJobId>,
}

impl JobsUpdate {
    /// Applies the update to `jobs` (newest first); `snapshots` holds the scraper snapshots
    /// received on the connection so far, and gets this update's.
    pub fn apply(self, jobs: &mut Vec<ScraperJob>, snapshots: &mut Vec<Scraper>) {
        if self.full {
            jobs.clear();
            snapshots.clear();
        }
        snapshots.extend(self.snapshots);
        for patch in self.jobs {
            if let Some(job) = jobs.iter_mut().find(|job| job.id == patch.id) {
                patch.apply(job);
                continue;
            }
            let id = patch.id;
            let scraper = patch
                .snapshot
                .and_then(|index| snapshots.get(index))
                .cloned();
            match scraper.and_then(|scraper| patch.into_job(scraper)) {
                Some(job) => jobs.push(job),
                None => leptos::logging::warn!("live update: job {id} arrived incomplete"),
            }
        }
        jobs.retain(|job| !self.removed.contains(&job.id));
        jobs.sort_by_key(|job| std::cmp::Reverse(job.id));
    }
}

/// What changed in a job, as the live streams send it: the fields that changed, the others
/// left out. A job new to a stream comes with all of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobPatch {
    pub id: ScraperJobId,
    /// For a job new to a scraper's jobs stream: which of the connection's snapshots
    /// ([`JobsUpdate::snapshots`]) is the job's scraper.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ScraperJobStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<ScraperJobPriority>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "timestamp::option"
    )]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "changed_time"
    )]
    pub started_at: Option<Option<DateTime<Utc>>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "changed_time"
    )]
    pub last_active_at: Option<Option<DateTime<Utc>>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "changed_time"
    )]
    pub finished_at: Option<Option<DateTime<Utc>>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub result: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "changed_time"
    )]
    pub next_attempt_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<JobAttempt>>,
}

impl JobPatch {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        *self
            == JobPatch {
                id: self.id,
                ..JobPatch::default()
            }
    }

    /// Sets the fields that changed.
    pub fn apply(self, job: &mut ScraperJob) {
        let JobPatch {
            id: _,
            snapshot: _,
            status,
            priority,
            created_at,
            started_at,
            last_active_at,
            finished_at,
            result,
            attempt,
            next_attempt_at,
            attempts,
        } = self;
        fn set<T>(field: &mut T, value: Option<T>) {
            if let Some(value) = value {
                *field = value;
            }
        }
        set(&mut job.status, status);
        set(&mut job.priority, priority);
        set(&mut job.created_at, created_at);
        set(&mut job.started_at, started_at);
        set(&mut job.last_active_at, last_active_at);
        set(&mut job.finished_at, finished_at);
        set(&mut job.result, result);
        set(&mut job.attempt, attempt);
        set(&mut job.next_attempt_at, next_attempt_at);
        set(&mut job.attempts, attempts);
    }

    /// The job of a patch with every field, run with `scraper`.
    pub fn into_job(self, scraper: Scraper) -> Option<ScraperJob> {
        Some(ScraperJob {
            id: self.id,
            scraper,
            status: self.status?,
            priority: self.priority?,
            created_at: self.created_at?,
            started_at: self.started_at?,
            last_active_at: self.last_active_at?,
            finished_at: self.finished_at?,
            result: self.result?,
            attempt: self.attempt?,
            next_attempt_at: self.next_attempt_at?,
            attempts: self.attempts?,
        })
    }
}

/// A field that is present in a patch, whatever its value (`null` included).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// An optional time present in a patch: a time, or `null` when it was cleared.
mod changed_time {
    use chrono::{DateTime, Utc};
    use engine::model::timestamp;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        value: &Option<Option<DateTime<Utc>>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        timestamp::option::serialize(&value.flatten(), serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<DateTime<Utc>>>, D::Error> {
        timestamp::option::deserialize(deserializer).map(Some)
    }
}

/// An event of the job stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobUpdate {
    /// What changed in the job since the connection's previous event; on its first, every
    /// field but the scraper snapshot, which the page has.
    pub job: JobPatch,
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
pub use server::{router, ClientAddress};

#[cfg(feature = "ssr")]
mod server {
    use std::collections::HashMap;
    use std::convert::Infallible;
    use std::net::{IpAddr, Ipv6Addr, SocketAddr};
    use std::sync::{Arc, Mutex};

    use axum::extract::{ConnectInfo, Path, Query, State};
    use axum::http::{Extensions, HeaderMap, StatusCode};
    use axum::response::sse::{Event, KeepAlive, Sse};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use axum::Router;
    use engine::feed::{Feed, FeedJob, FollowedJob, Jobs};
    use engine::model::{JobLogLine, Scraper, ScraperJobId};
    use engine::storage::ScraperJobsStorage;
    use engine::sync::lock;
    use engine::Engine;
    use futures_util::stream::{self, Stream, StreamExt};
    use serde::Deserialize;
    use tokio::sync::watch;

    use super::{
        JobPatch, JobUpdate, JobsUpdate, LiveEvent, CHECK_EVERY, LOG_CHUNK, MAX_STREAMS,
        MAX_STREAMS_PER_CLIENT,
    };

    /// The client's address, when the server knows it better than the connection does (a
    /// trusted reverse proxy named it): a request extension the live streams count clients
    /// by. Without it they count the connection's peer address.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ClientAddress(pub IpAddr);

    #[derive(Clone)]
    struct Live {
        feed: Feed,
        /// Where a stream reads the log lines it needs that the feed no longer holds.
        storage: Arc<dyn ScraperJobsStorage>,
        open: Arc<Mutex<OpenStreams>>,
        closing: watch::Receiver<bool>,
    }

    /// The live-update routes, with the engine they read from; merge into the server's router
    /// (once per replica: the routes share one change feed, whose task starts at once on the
    /// current tokio runtime). Every stream ends once `closing` turns true (or its sender is
    /// dropped).
    pub fn router<S: Clone + Send + Sync + 'static>(
        engine: Engine,
        closing: watch::Receiver<bool>,
    ) -> Router<S> {
        let storage = engine.storages().jobs.clone();
        let live = Live {
            feed: Feed::new(storage.clone(), CHECK_EVERY),
            storage,
            open: Arc::default(),
            closing,
        };
        Router::new()
            .route("/live/scrapers/{scraper_id}/jobs", get(scraper_jobs))
            .route("/live/scrapers/{scraper_id}/jobs/{job_id}", get(job))
            .with_state(live)
    }

    /// The streams open on this replica, in all and per client.
    #[derive(Default)]
    struct OpenStreams {
        all: usize,
        by_client: HashMap<IpAddr, usize>,
    }

    /// A stream's place among the open ones, given back when the stream ends.
    struct Admitted {
        open: Arc<Mutex<OpenStreams>>,
        client: Option<IpAddr>,
    }

    impl Drop for Admitted {
        fn drop(&mut self) {
            let mut open = lock(&self.open);
            open.all -= 1;
            if let Some(client) = self.client {
                if let Some(streams) = open.by_client.get_mut(&client) {
                    *streams -= 1;
                    if *streams == 0 {
                        open.by_client.remove(&client);
                    }
                }
            }
        }
    }

    impl Live {
        /// A place for one more stream from the client that sent `request`, or why not.
        fn admit(&self, request: &Extensions) -> Result<Admitted, String> {
            let client = client_of(request);
            let mut open = lock(&self.open);
            if open.all >= MAX_STREAMS {
                return Err(format!(
                    "This server has {MAX_STREAMS} live updates open, its most; try again later."
                ));
            }
            if let Some(client) = client {
                let streams = open.by_client.entry(client).or_default();
                if *streams >= MAX_STREAMS_PER_CLIENT {
                    return Err(format!(
                        "Your address has {MAX_STREAMS_PER_CLIENT} live updates open, its most: \
                         close other pages of Sneakpeek."
                    ));
                }
                *streams += 1;
            }
            open.all += 1;
            Ok(Admitted {
                open: self.open.clone(),
                client,
            })
        }
    }

    /// HTTP 429, saying why to a person.
    fn refused(message: String) -> Response {
        (StatusCode::TOO_MANY_REQUESTS, message).into_response()
    }

    /// Who opened a stream, to count their streams: the [`ClientAddress`] the server put in
    /// the request, else the connection's peer; an IPv6 client by its /64 network. `None`
    /// when the server knows neither.
    fn client_of(request: &Extensions) -> Option<IpAddr> {
        let address = match request.get::<ClientAddress>() {
            Some(ClientAddress(address)) => *address,
            None => request.get::<ConnectInfo<SocketAddr>>()?.0.ip(),
        };
        Some(match address.to_canonical() {
            IpAddr::V6(address) => {
                IpAddr::V6(Ipv6Addr::from(u128::from(address) & !u128::from(u64::MAX)))
            }
            v4 => v4,
        })
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

    /// A connection's stream of events.
    trait Updates: Send + 'static {
        /// The next event, once there is one; `None` ends the stream.
        fn next_event(&mut self) -> impl std::future::Future<Output = Option<Event>> + Send;
    }

    /// `update` as an event of its kind, with `id` when the stream numbers its events.
    fn event<T: LiveEvent>(update: &T, id: Option<i64>) -> Option<Event> {
        let event = Event::default().event(T::NAME);
        let event = match id {
            Some(id) => event.id(id.to_string()),
            None => event,
        };
        event.json_data(update).ok()
    }

    /// The events of `updates`, as a response that ends when the server starts closing.
    fn respond(updates: impl Updates, closing: watch::Receiver<bool>) -> Response {
        let events = stream::unfold(updates, |mut updates| async move {
            let event = updates.next_event().await?;
            Some((Ok::<_, Infallible>(event), updates))
        });
        Sse::new(until_closing(events, closing))
            .keep_alive(KeepAlive::default())
            .into_response()
    }

    async fn scraper_jobs(
        State(live): State<Live>,
        Path(scraper_id): Path<i64>,
        request: Extensions,
    ) -> Response {
        let admitted = match live.admit(&request) {
            Ok(admitted) => admitted,
            Err(refusal) => return refused(refusal),
        };
        let updates = JobsStream {
            followed: live.feed.scraper_jobs(scraper_id),
            sent: None,
            snapshots: Vec::new(),
            _admitted: admitted,
        };
        respond(updates, live.closing)
    }

    /// A connection to a scraper's jobs: what it has sent, so as to send only what changed.
    struct JobsStream {
        followed: watch::Receiver<Option<Jobs>>,
        /// The jobs as last sent, by id; `None` before the first event.
        sent: Option<HashMap<ScraperJobId, Arc<FeedJob>>>,
        /// The scraper snapshots sent, in order: events refer to them by index.
        snapshots: Vec<Arc<Scraper>>,
        _admitted: Admitted,
    }

    impl Updates for JobsStream {
        async fn next_event(&mut self) -> Option<Event> {
            loop {
                let jobs = self.followed.borrow_and_update().clone();
                if let Some(update) = jobs.and_then(|jobs| self.update(&jobs)) {
                    return event(&update, None);
                }
                self.followed.changed().await.ok()?;
            }
        }
    }

    impl JobsStream {
        /// What changed since the last event, if anything did.
        fn update(&mut self, jobs: &[Arc<FeedJob>]) -> Option<JobsUpdate> {
            let full = self.sent.is_none();
            let mut sent = self.sent.take().unwrap_or_default();
            let mut update = JobsUpdate {
                full,
                ..JobsUpdate::default()
            };
            let mut now = HashMap::with_capacity(jobs.len());
            for job in jobs {
                match sent.remove(&job.id) {
                    Some(before) if Arc::ptr_eq(&before, job) => {}
                    Some(before) => {
                        let patch = patch(Some(&before), job);
                        if !patch.is_empty() {
                            update.jobs.push(patch);
                        }
                    }
                    None => {
                        let snapshot = self.snapshot_index(&job.scraper, &mut update.snapshots);
                        update.jobs.push(JobPatch {
                            snapshot: Some(snapshot),
                            ..patch(None, job)
                        });
                    }
                }
                now.insert(job.id, job.clone());
            }
            update.removed = sent.into_keys().collect();
            self.sent = Some(now);
            let changed = !(update.jobs.is_empty() && update.removed.is_empty());
            (full || changed).then_some(update)
        }

        /// The index of `scraper` among the snapshots sent, adding it to `new` if it was not.
        fn snapshot_index(&mut self, scraper: &Arc<Scraper>, new: &mut Vec<Scraper>) -> usize {
            if let Some(index) = self
                .snapshots
                .iter()
                .position(|sent| Arc::ptr_eq(sent, scraper))
            {
                return index;
            }
            self.snapshots.push(scraper.clone());
            new.push(Scraper::clone(scraper));
            self.snapshots.len() - 1
        }
    }

    /// The fields of `now` that differ from `before`: all of them (but the snapshot) when
    /// there is no `before`.
    fn patch(before: Option<&FeedJob>, now: &FeedJob) -> JobPatch {
        fn changed<T: PartialEq + Clone>(before: Option<&T>, now: &T) -> Option<T> {
            (before != Some(now)).then(|| now.clone())
        }
        JobPatch {
            id: now.id,
            snapshot: None,
            status: changed(before.map(|job| &job.status), &now.status),
            priority: changed(before.map(|job| &job.priority), &now.priority),
            created_at: changed(before.map(|job| &job.created_at), &now.created_at),
            started_at: changed(before.map(|job| &job.started_at), &now.started_at),
            last_active_at: changed(before.map(|job| &job.last_active_at), &now.last_active_at),
            finished_at: changed(before.map(|job| &job.finished_at), &now.finished_at),
            result: changed(before.map(|job| &job.result), &now.result),
            attempt: changed(before.map(|job| &job.attempt), &now.attempt),
            next_attempt_at: changed(before.map(|job| &job.next_attempt_at), &now.next_attempt_at),
            attempts: changed(before.map(|job| &job.attempts), &now.attempts),
        }
    }

    #[derive(Deserialize)]
    struct From {
        after: Option<i64>,
    }

    async fn job(
        State(live): State<Live>,
        Path((scraper_id, job_id)): Path<(i64, i64)>,
        Query(from): Query<From>,
        headers: HeaderMap,
        request: Extensions,
    ) -> Response {
        let admitted = match live.admit(&request) {
            Ok(admitted) => admitted,
            Err(refusal) => return refused(refusal),
        };
        let resumed = headers
            .get("last-event-id")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok());
        let updates = JobStream {
            followed: live.feed.job(scraper_id, job_id),
            storage: live.storage,
            job_id,
            after: resumed.or(from.after).unwrap_or(0),
            sent: None,
            _admitted: admitted,
        };
        respond(updates, live.closing)
    }

    /// A connection to a job: the job as sent, and the last log line sent.
    struct JobStream {
        followed: watch::Receiver<Option<FollowedJob>>,
        storage: Arc<dyn ScraperJobsStorage>,
        job_id: ScraperJobId,
        after: i64,
        /// `None` before the first event.
        sent: Option<Arc<FeedJob>>,
        _admitted: Admitted,
    }

    impl Updates for JobStream {
        async fn next_event(&mut self) -> Option<Event> {
            loop {
                // The current value first: lines left over from the last event (more than
                // fit in one) are sent without waiting for a change.
                let followed = self.followed.borrow_and_update().clone();
                if let Some(followed) = followed {
                    // No such job (any more): the stream ends.
                    let job = followed.job.clone()?;
                    // The job and its last line are read together: once a finished job is
                    // sent, the lines up to that line are all its lines.
                    let Some(lines) = self.new_lines(&followed).await else {
                        tokio::time::sleep(CHECK_EVERY).await;
                        continue;
                    };
                    let changed = patch(self.sent.as_deref(), &job);
                    if self.sent.is_none() || !changed.is_empty() || !lines.is_empty() {
                        self.after = lines.last().map_or(self.after, |line| line.id);
                        self.sent = Some(job);
                        let update = JobUpdate {
                            job: changed,
                            lines,
                        };
                        return event(&update, Some(self.after));
                    }
                }
                self.followed.changed().await.ok()?;
            }
        }
    }

    impl JobStream {
        /// The next lines to send: from the feed, or from the log when they are older than
        /// what the feed holds. `None` when the log could not be read.
        async fn new_lines(&self, followed: &FollowedJob) -> Option<Vec<JobLogLine>> {
            if self.after >= followed.log.last_line() {
                return Some(Vec::new());
            }
            if let Some(lines) = followed.log.lines_after(self.after, LOG_CHUNK) {
                return Some(lines);
            }
            match self
                .storage
                .get_job_log(self.job_id, Some(self.after), LOG_CHUNK)
                .await
            {
                Ok(lines) => Some(lines),
                Err(error) => {
                    leptos::logging::warn!("live job {}: {}", self.job_id, error.describe());
                    None
                }
            }
        }
    }
}

/// What to do after an update: keep listening, or close the stream (nothing more will come).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Follows the event stream at `url` while the calling component lives, handing the data of
/// each of its `T` events to `on_update`. When the stream cannot be opened or the server
/// refuses it (the browser then gives up reconnecting), calls `poll` at once and every second
/// instead. On the server this does nothing: streams belong to the hydrated page.
pub fn follow<T: LiveEvent>(
    url: String,
    on_update: impl Fn(T) -> Flow + 'static,
    poll: impl Fn() + 'static,
) {
    #[cfg(feature = "hydrate")]
    browser::follow(url, on_update, poll);
    #[cfg(not(feature = "hydrate"))]
    let _ = (url, on_update, poll);
}

#[cfg(feature = "hydrate")]
mod browser {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    use leptos::prelude::*;
    use send_wrapper::SendWrapper;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;
    use web_sys::{EventSource, MessageEvent};

    use super::{Flow, LiveEvent};

    const POLL_EVERY: Duration = Duration::from_secs(1);

    pub fn follow<T: LiveEvent>(
        url: String,
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
        let _ =
            source.add_event_listener_with_callback(T::NAME, on_message.as_ref().unchecked_ref());
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
