//! The live streams as a replica serves them, in process and on a paused clock: the storage
//! is read once per interval however many streams are open, events after the first carry
//! only what changed (never the scraper snapshot again), and one client address, or the
//! replica as a whole, can hold only so many streams open.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use app::live::{ClientAddress, JobUpdate, JobsUpdate, CHECK_EVERY, LOG_CHUNK};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::Router;
use chrono::Utc;
use engine::model::{
    JobLogLine, LogLevel, Scraper, ScraperJob, ScraperJobPriority, ScraperJobStatus,
};
use engine::scraper::{builtin_handlers, Runtime};
use engine::storage::{Claim, EnqueueOrigin, Storages};
use engine::testing::{Outage, TestDatabase};
use engine::Engine;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

/// A replica's live routes over a storage (in memory unless said otherwise) whose jobs queue
/// counts the calls made to it. Tests change jobs through `storages`, which bypasses the count.
struct Replica {
    router: Router,
    storages: Storages,
    counted: Arc<Outage>,
    _closing: watch::Sender<bool>,
}

impl Replica {
    fn new() -> Replica {
        Replica::on(Storages::in_memory(Vec::new(), false))
    }

    async fn on_postgres(database: &TestDatabase) -> Replica {
        Replica::on(Storages::postgres(&database.url, false).await.unwrap())
    }

    fn on(storages: Storages) -> Replica {
        let (served, counted) = Outage::wrap(storages.clone());
        let engine = Engine::new(
            served,
            builtin_handlers(),
            Runtime::new(Default::default()).unwrap(),
        );
        let (closing_sender, closing) = watch::channel(false);
        Replica {
            router: app::live::router(engine, closing),
            storages,
            counted,
            _closing: closing_sender,
        }
    }

    /// `GET path` from `client`, as the server sees a browser's request.
    async fn get(&self, path: &str, client: IpAddr) -> axum::response::Response {
        self.send(Request::get(path), client).await
    }

    /// `request` from `client`, coming straight from it (no proxy between).
    async fn send(
        &self,
        request: axum::http::request::Builder,
        client: IpAddr,
    ) -> axum::response::Response {
        let mut request = request.body(Body::empty()).unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(client, 40_000)));
        self.router.clone().oneshot(request).await.unwrap()
    }

    /// Opens a stream and reads it as a browser does, from a task of its own.
    async fn open(&self, path: &str, client: IpAddr) -> Events {
        let response = self.get(path, client).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        Events::read(response)
    }

    /// Adds a job for `scraper` as the queue does when it is enqueued.
    async fn enqueue(&self, scraper: &Scraper) -> ScraperJob {
        self.storages
            .jobs
            .add_scraper_job(scraper, ScraperJobPriority::Normal, EnqueueOrigin::Manual)
            .await
            .unwrap()
    }

    /// Enqueues a job for `scraper` and runs it to the end, as a worker does.
    async fn run(&self, scraper: &Scraper) {
        let job = self.enqueue(scraper).await;
        let claimed = self.storages.jobs.dequeue_scraper_jobs(1).await.unwrap();
        assert_eq!(claimed[0].id, job.id);
        self.storages
            .jobs
            .finish_scraper_job(
                Claim::of(&claimed[0]).unwrap(),
                ScraperJobStatus::Succeeded,
                Some("ok".to_owned()),
            )
            .await
            .unwrap()
            .expect("the job was started");
    }

    /// Calls made to the jobs queue by the streams over `window`.
    async fn reads_over(&self, window: Duration) -> u32 {
        let before = self.counted.calls();
        tokio::time::sleep(window).await;
        self.counted.calls() - before
    }
}

/// One server-sent event.
#[derive(Debug)]
struct Event {
    name: String,
    id: Option<String>,
    data: String,
}

/// The events of an open stream, in order, read by a task that holds the stream open until
/// [`Events::close`].
struct Events {
    received: mpsc::UnboundedReceiver<Event>,
    reader: tokio::task::JoinHandle<()>,
}

impl Events {
    fn read(response: axum::response::Response) -> Events {
        let (sender, received) = mpsc::unbounded_channel();
        let mut body = response.into_body().into_data_stream();
        let reader = tokio::spawn(async move {
            let mut text = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                text.push_str(std::str::from_utf8(&chunk).unwrap());
                while let Some(end) = text.find("\n\n") {
                    let block: String = text.drain(..end + 2).collect();
                    if let Some(event) = parse(&block) {
                        if sender.send(event).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Events { received, reader }
    }

    async fn next(&mut self) -> Event {
        tokio::time::timeout(Duration::from_secs(60), self.received.recv())
            .await
            .expect("an event within a minute")
            .expect("the stream is open")
    }

    /// Closes the stream as a browser leaving the page does; returns once it is closed.
    async fn close(self) {
        self.reader.abort();
        let _ = self.reader.await;
    }
}

/// An event's fields; `None` for a comment (the keep-alive).
fn parse(block: &str) -> Option<Event> {
    let (mut name, mut id, mut data) = (String::new(), None, None::<String>);
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            name = value.trim().to_owned();
        } else if let Some(value) = line.strip_prefix("id:") {
            id = Some(value.trim().to_owned());
        } else if let Some(value) = line.strip_prefix("data:") {
            let value = value.strip_prefix(' ').unwrap_or(value);
            data = Some(match data {
                Some(previous) => format!("{previous}\n{value}"),
                None => value.to_owned(),
            });
        }
    }
    Some(Event {
        name,
        id,
        data: data?,
    })
}

fn scraper(id: i64, params: &str) -> Scraper {
    serde_json::from_value(serde_json::json!({
        "id": id, "name": format!("scraper {id}"), "schedule": "inactive", "handler": "script",
        "config": {"params": {"source": params}}
    }))
    .unwrap()
}

fn lines(ids: std::ops::RangeInclusive<i64>) -> Vec<JobLogLine> {
    ids.map(|id| JobLogLine {
        id,
        at: Utc::now(),
        level: LogLevel::Info,
        message: format!("line {id}"),
    })
    .collect()
}

fn client(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
}

#[tokio::test(start_paused = true)]
async fn the_storage_is_read_as_often_with_fifty_streams_open_as_with_two() {
    let replica = Replica::new();
    let scrapers: Vec<Scraper> = (1..=25).map(|id| scraper(id, "\"ok\"")).collect();
    let mut jobs = Vec::new();
    for scraper in &scrapers {
        jobs.push(replica.enqueue(scraper).await);
    }
    let claimed = replica
        .storages
        .jobs
        .dequeue_scraper_jobs(25)
        .await
        .unwrap();
    let followed = jobs[0].id;
    let followed_claim = claimed
        .iter()
        .find(|job| job.id == followed)
        .and_then(Claim::of)
        .unwrap();
    let mut streams = Vec::new();
    let mut open_pair = async |index: usize| {
        let scraper_id = scrapers[index].id;
        let (list, job) = (client(2 * index as u32), client(2 * index as u32 + 1));
        let mut list = replica
            .open(&format!("/live/scrapers/{scraper_id}/jobs"), list)
            .await;
        let mut job = replica
            .open(
                &format!("/live/scrapers/{}/jobs/{followed}", scrapers[0].id),
                job,
            )
            .await;
        list.next().await;
        job.next().await;
        streams.extend([list, job]);
    };
    // The followed job keeps running: a heartbeat and a log line per window.
    let mut line = 0;
    let mut window = async || {
        line += 1;
        replica
            .storages
            .jobs
            .heartbeat(followed_claim)
            .await
            .unwrap();
        replica
            .storages
            .jobs
            .append_job_log(followed, &lines(line..=line))
            .await
            .unwrap();
        // Just short of ten intervals: at most ten looks, whatever the phase.
        replica
            .reads_over(10 * CHECK_EVERY - Duration::from_millis(1))
            .await
    };

    open_pair(0).await;
    let two = window().await;
    for index in 1..25 {
        open_pair(index).await;
    }
    let fifty = window().await;

    assert!(
        fifty <= two + 1,
        "{fifty} reads over ten intervals with fifty streams, {two} with two"
    );
    assert!(two <= 12, "{two} reads over ten intervals with two streams");
}

/// A scraper's settings big enough that sending them again shows: 100 kB of script.
fn heavy_scraper() -> Scraper {
    scraper(1, &format!("\"{}\"", "x".repeat(100_000)))
}

#[tokio::test(start_paused = true)]
async fn the_first_event_of_a_scraper_s_jobs_sends_their_common_snapshot_once() {
    let replica = Replica::new();
    let scraper = heavy_scraper();
    for _ in 0..5 {
        replica.run(&scraper).await;
    }
    let mut stream = replica.open("/live/scrapers/1/jobs", client(1)).await;
    let first = stream.next().await;
    assert_eq!(first.name, "jobs");
    assert!(
        first.data.len() < 150_000,
        "five jobs of one 100 kB scraper in {} bytes",
        first.data.len()
    );
}

#[tokio::test(start_paused = true)]
async fn after_the_first_event_a_job_that_changes_is_sent_alone_without_its_snapshot() {
    let replica = Replica::new();
    let scraper = heavy_scraper();
    for _ in 0..5 {
        replica.run(&scraper).await;
    }
    let mut stream = replica.open("/live/scrapers/1/jobs", client(1)).await;
    stream.next().await;

    // A new job (its scraper's settings were sent with the first event), then its claim and
    // its end: each event is about that job only.
    let job = replica.enqueue(&scraper).await;
    let enqueued = stream.next().await;
    let claim =
        Claim::of(&replica.storages.jobs.dequeue_scraper_jobs(1).await.unwrap()[0]).unwrap();
    assert_eq!(claim.job_id, job.id);
    let claimed = stream.next().await;
    replica
        .storages
        .jobs
        .finish_scraper_job(claim, ScraperJobStatus::Failed, Some("boom".to_owned()))
        .await
        .unwrap();
    let finished = stream.next().await;
    for event in [&enqueued, &claimed, &finished] {
        assert!(
            event.data.len() < 1_000,
            "an event of {} bytes for one job: {:.200}",
            event.data.len(),
            event.data
        );
    }
    assert!(finished.data.contains("boom"), "{}", finished.data);
}

#[tokio::test(start_paused = true)]
async fn the_job_stream_sends_what_changed_and_new_log_lines_only() {
    let replica = Replica::new();
    let job = replica.enqueue(&heavy_scraper()).await;
    replica.storages.jobs.dequeue_scraper_jobs(1).await.unwrap();
    replica
        .storages
        .jobs
        .append_job_log(job.id, &lines(1..=3))
        .await
        .unwrap();
    let mut stream = replica
        .open(
            &format!("/live/scrapers/1/jobs/{}?after=0", job.id),
            client(1),
        )
        .await;
    let first = stream.next().await;
    assert_eq!(
        (first.name.as_str(), first.id.as_deref()),
        ("job", Some("3"))
    );

    replica
        .storages
        .jobs
        .append_job_log(job.id, &lines(4..=5))
        .await
        .unwrap();
    let next = stream.next().await;
    assert_eq!(next.id.as_deref(), Some("5"));
    assert!(next.data.contains("line 4") && next.data.contains("line 5"));
    assert!(!next.data.contains("line 3"), "{}", next.data);
    assert!(
        next.data.len() < 1_000,
        "two log lines in {} bytes",
        next.data.len()
    );
}

#[tokio::test(start_paused = true)]
async fn a_reconnecting_job_stream_resumes_after_the_last_event_id() {
    let replica = Replica::new();
    let job = replica.enqueue(&scraper(1, "\"ok\"")).await;
    replica.storages.jobs.dequeue_scraper_jobs(1).await.unwrap();
    replica
        .storages
        .jobs
        .append_job_log(job.id, &lines(1..=12))
        .await
        .unwrap();
    let response = replica
        .send(
            Request::get(format!("/live/scrapers/1/jobs/{}?after=0", job.id))
                .header("last-event-id", "10"),
            client(1),
        )
        .await;
    let first = Events::read(response).next().await;
    assert_eq!(first.id.as_deref(), Some("12"));
    assert!(first.data.contains("line 11") && first.data.contains("line 12"));
    assert!(!first.data.contains("\"line 10\""), "{}", first.data);
}

#[tokio::test(start_paused = true)]
async fn a_client_may_hold_eight_streams_open_and_the_ninth_is_refused() {
    let replica = Replica::new();
    let path = "/live/scrapers/1/jobs";
    let mut open = Vec::new();
    for _ in 0..8 {
        open.push(replica.open(path, client(1)).await);
    }
    assert_eq!(
        replica.get(path, client(1)).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Other clients are not affected, and a stream closed makes room.
    replica.open(path, client(2)).await;
    open.pop().unwrap().close().await;
    assert_eq!(replica.get(path, client(1)).await.status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn a_replica_holds_a_thousand_streams_open_at_most() {
    let replica = Replica::new();
    let path = "/live/scrapers/1/jobs";
    let mut open = Vec::new();
    for n in 0..1_000 {
        let response = replica.get(path, client(n / 8)).await;
        assert_eq!(response.status(), StatusCode::OK, "stream {n}");
        open.push(response);
    }
    assert_eq!(
        replica.get(path, client(10_000)).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test(start_paused = true)]
async fn clients_behind_a_proxy_count_by_their_own_address_and_ipv6_ones_by_network() {
    let replica = Replica::new();
    let path = "/live/scrapers/1/jobs";
    let proxy = client(1);
    let behind =
        |address: &str| Request::get(path).extension(ClientAddress(address.parse().unwrap()));
    let mut open = Vec::new();
    for _ in 0..8 {
        open.push(replica.send(behind("192.0.2.1"), proxy).await);
    }
    assert_eq!(
        replica.send(behind("192.0.2.1"), proxy).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        replica.send(behind("192.0.2.2"), proxy).await.status(),
        StatusCode::OK
    );
    for host in 1..=8 {
        let address = format!("2001:db8:0:1::{host}");
        open.push(replica.send(behind(&address), proxy).await);
    }
    assert_eq!(
        replica
            .send(behind("2001:db8:0:1:ffff::9"), proxy)
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS,
        "another address of the same /64"
    );
    assert_eq!(
        replica
            .send(behind("2001:db8:0:2::1"), proxy)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test(start_paused = true)]
async fn nothing_is_read_once_every_stream_is_closed() {
    let replica = Replica::new();
    let job = replica.enqueue(&scraper(1, "\"ok\"")).await;
    let mut list = replica.open("/live/scrapers/1/jobs", client(1)).await;
    let mut one = replica
        .open(&format!("/live/scrapers/1/jobs/{}", job.id), client(1))
        .await;
    list.next().await;
    one.next().await;
    assert!(replica.reads_over(10 * CHECK_EVERY).await > 0);

    list.close().await;
    one.close().await;
    // The feed notices at its next look that nobody follows anything any more.
    replica.reads_over(CHECK_EVERY).await;
    assert_eq!(replica.reads_over(10 * CHECK_EVERY).await, 0);
}

#[tokio::test(start_paused = true)]
async fn the_job_stream_of_a_job_that_does_not_exist_ends() {
    let replica = Replica::new();
    let job = replica.enqueue(&scraper(1, "\"ok\"")).await;
    for path in [
        "/live/scrapers/1/jobs/999".to_owned(),
        format!("/live/scrapers/2/jobs/{}", job.id),
    ] {
        let body = replica.get(&path, client(1)).await.into_body();
        let ended = tokio::time::timeout(Duration::from_secs(60), body.into_data_stream().count());
        assert_eq!(ended.await.expect("the stream ends"), 0, "{path}");
    }
}

/// `value` as a browser reads it (times to the microsecond).
fn as_sent<T: serde::Serialize + serde::de::DeserializeOwned>(value: T) -> T {
    serde_json::from_value(serde_json::to_value(value).unwrap()).unwrap()
}

/// The browser's list of a scraper's jobs, kept up to date from its stream's events.
struct BrowserList {
    events: Events,
    jobs: Vec<ScraperJob>,
    snapshots: Vec<Scraper>,
}

impl BrowserList {
    /// Applies events until the list is the stored one.
    async fn catch_up(&mut self, replica: &Replica) {
        let stored = as_sent(replica.storages.jobs.get_scraper_jobs(1).await.unwrap());
        while self.jobs != stored {
            let event = self.events.next().await;
            assert_eq!(event.name, "jobs");
            let update: JobsUpdate = serde_json::from_str(&event.data).unwrap();
            update.apply(&mut self.jobs, &mut self.snapshots);
        }
    }
}

async fn a_list_kept_from_the_events_is_the_scraper_s_jobs(replica: Replica) {
    let first = scraper(1, "\"first\"");
    let edited = scraper(1, "\"edited\"");
    replica.run(&first).await;
    replica.run(&first).await;
    let mut browser = BrowserList {
        events: replica.open("/live/scrapers/1/jobs", client(1)).await,
        jobs: Vec::new(),
        snapshots: Vec::new(),
    };
    browser.catch_up(&replica).await;

    // Runs of the scraper as edited meanwhile, a job claimed and handed back, a job killed,
    // and old jobs pruned.
    let job = replica.enqueue(&edited).await;
    browser.catch_up(&replica).await;
    let claim =
        Claim::of(&replica.storages.jobs.dequeue_scraper_jobs(1).await.unwrap()[0]).unwrap();
    assert_eq!(claim.job_id, job.id);
    browser.catch_up(&replica).await;
    replica
        .storages
        .jobs
        .release_scraper_jobs(&[claim])
        .await
        .unwrap();
    browser.catch_up(&replica).await;
    replica
        .storages
        .jobs
        .kill_scraper_job(1, job.id)
        .await
        .unwrap();
    browser.catch_up(&replica).await;
    replica.run(&edited).await;
    browser.catch_up(&replica).await;
    replica
        .storages
        .jobs
        .delete_old_scraper_jobs(2)
        .await
        .unwrap();
    browser.catch_up(&replica).await;
    assert_eq!(browser.jobs.len(), 2);
    assert_eq!(
        browser.snapshots.len(),
        2,
        "each version of the scraper sent once"
    );
}

#[tokio::test(start_paused = true)]
async fn a_list_kept_from_the_events_is_the_scraper_s_jobs_in_memory() {
    a_list_kept_from_the_events_is_the_scraper_s_jobs(Replica::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_kept_from_the_events_is_the_scraper_s_jobs_on_postgres() {
    let database = TestDatabase::create().await;
    a_list_kept_from_the_events_is_the_scraper_s_jobs(Replica::on_postgres(&database).await).await;
}

/// The browser's job page, kept up to date from its stream's events.
struct BrowserJob {
    events: Events,
    job: ScraperJob,
    log: Vec<JobLogLine>,
}

impl BrowserJob {
    /// Applies events until the job and its log are the stored ones.
    async fn catch_up(&mut self, replica: &Replica) {
        let jobs = &replica.storages.jobs;
        let stored = as_sent(jobs.get_scraper_job(1, self.job.id).await.unwrap());
        let log = as_sent(jobs.get_job_log(self.job.id, None, 10_000).await.unwrap());
        while (&self.job, &self.log) != (&stored, &log) {
            let event = self.events.next().await;
            let update: JobUpdate = serde_json::from_str(&event.data).unwrap();
            assert!(update.lines.len() <= LOG_CHUNK);
            update.job.apply(&mut self.job);
            self.log.extend(update.lines);
            let last = self.log.last().map_or(0, |line| line.id);
            assert_eq!(event.id, Some(last.to_string()), "the last line sent");
        }
    }
}

async fn a_job_kept_from_the_events_is_the_stored_job_with_its_whole_log(replica: Replica) {
    let job = replica.enqueue(&scraper(1, "\"ok\"")).await;
    let mut browser = BrowserJob {
        events: replica
            .open(
                &format!("/live/scrapers/1/jobs/{}?after=0", job.id),
                client(1),
            )
            .await,
        job: as_sent(job.clone()),
        log: Vec::new(),
    };
    browser.catch_up(&replica).await;
    let claim =
        Claim::of(&replica.storages.jobs.dequeue_scraper_jobs(1).await.unwrap()[0]).unwrap();
    assert_eq!(claim.job_id, job.id);
    browser.catch_up(&replica).await;
    // More lines than fit in one event.
    replica
        .storages
        .jobs
        .append_job_log(job.id, &lines(1..=7_000))
        .await
        .unwrap();
    browser.catch_up(&replica).await;
    replica
        .storages
        .jobs
        .finish_scraper_job(claim, ScraperJobStatus::Succeeded, Some("done".to_owned()))
        .await
        .unwrap();
    browser.catch_up(&replica).await;
    assert_eq!(browser.job.result.as_deref(), Some("done"));
}

#[tokio::test(start_paused = true)]
async fn a_job_kept_from_the_events_is_the_stored_job_with_its_whole_log_in_memory() {
    a_job_kept_from_the_events_is_the_stored_job_with_its_whole_log(Replica::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_kept_from_the_events_is_the_stored_job_with_its_whole_log_on_postgres() {
    let database = TestDatabase::create().await;
    a_job_kept_from_the_events_is_the_stored_job_with_its_whole_log(
        Replica::on_postgres(&database).await,
    )
    .await;
}
