//! A replica's life over real HTTP: starting (or refusing to, saying why), shutting down
//! while a browser keeps a live stream open, and readiness once a background component has
//! stopped.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use clap::Parser;
use engine::model::{Lease, Scraper, ScraperJobPriority, ScraperJobStatus};
use engine::scheduler::SchedulerSettings;
use engine::scraper::{builtin_handlers, Runtime};
use engine::storage::memory::MemoryLeaseStorage;
use engine::storage::{LeaseStorage, Storages};
use engine::worker::WorkerSettings;
use engine::Engine;
use leptos::prelude::LeptosOptions;
use serde_json::json;
use server::{Server, Settings};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// The grace period running jobs get on shutdown, short for the test.
const GRACE_SECONDS: u64 = 1;
/// How long shutting down may take at most: the grace period plus a few seconds.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(GRACE_SECONDS + 5);

fn inactive_scraper() -> Scraper {
    serde_json::from_value(json!({
        "name": "idle", "schedule": "inactive", "handler": "script",
        "config": {"params": {"source": "\"ok\""}}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_live_streams_stops_claiming_and_returns_within_the_grace_period() {
    let grace = GRACE_SECONDS.to_string();
    let settings =
        Settings::try_parse_from(["sneakpeek", "--shutdown-grace-seconds", &grace]).unwrap();
    let server = Server::builder().settings(settings).build().await.unwrap();
    let engine = server.engine().clone();
    let scraper = engine.create_scraper(inactive_scraper()).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));

    // A browser tab on the scraper's page: its stream stays open while nothing changes.
    let mut stream = reqwest::get(format!(
        "http://{address}/live/scrapers/{}/jobs",
        scraper.id
    ))
    .await
    .unwrap();
    assert_eq!(stream.status(), 200);
    let first = tokio::time::timeout(SHUTDOWN_BOUND, stream.chunk())
        .await
        .expect("the first event arrives")
        .unwrap()
        .expect("the stream is open");
    assert!(
        String::from_utf8_lossy(&first).contains("event: jobs"),
        "{first:?}"
    );

    stop.send(()).unwrap();
    let to_the_end = async {
        while stream.chunk().await?.is_some() {}
        Ok::<_, reqwest::Error>(())
    };
    tokio::time::timeout(SHUTDOWN_BOUND, to_the_end)
        .await
        .expect("the live stream ends on shutdown")
        .expect("the live stream ends cleanly, not cut off");

    // The stream ended after the worker was told to stop: a job enqueued now is never claimed.
    let job = engine
        .enqueue_scraper(scraper.id, ScraperJobPriority::Normal)
        .await
        .unwrap();
    let served = tokio::time::timeout(SHUTDOWN_BOUND, serving)
        .await
        .expect("the server returns within the grace period");
    served
        .unwrap()
        .expect("the server shuts down without error");
    assert_eq!(
        engine
            .get_scraper_job(scraper.id, job.id)
            .await
            .unwrap()
            .status,
        ScraperJobStatus::Pending
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_wait_past_the_grace_period_for_a_stuck_connection() {
    let grace = GRACE_SECONDS.to_string();
    let settings =
        Settings::try_parse_from(["sneakpeek", "--shutdown-grace-seconds", &grace]).unwrap();
    let server = Server::builder().settings(settings).build().await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));

    // A client that sent half a request and went quiet: the request is in flight for good.
    let mut stuck = tokio::net::TcpStream::connect(address).await.unwrap();
    stuck
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    // Connections are accepted in order: once a later one is answered, this one is in.
    assert_eq!(
        reqwest::get(format!("http://{address}/healthz"))
            .await
            .unwrap()
            .status(),
        200
    );

    stop.send(()).unwrap();
    let served = tokio::time::timeout(SHUTDOWN_BOUND, serving)
        .await
        .expect("the server returns within the grace period");
    served
        .unwrap()
        .expect("the server shuts down without error");
}

/// The in-memory lease storage behind a lock of its own, as storages guard their state: a
/// bug that panics while holding the lock poisons it, and every later call panics too.
#[derive(Default)]
struct LockedLeases {
    lock: Mutex<()>,
    leases: MemoryLeaseStorage,
}

impl LockedLeases {
    fn check(&self) {
        drop(
            self.lock
                .lock()
                .expect("the lease storage's lock is not poisoned"),
        );
    }
}

#[async_trait]
impl LeaseStorage for LockedLeases {
    async fn maybe_acquire_lease(
        &self,
        name: &str,
        owner_id: &str,
        duration: Duration,
    ) -> engine::Result<Option<Lease>> {
        self.check();
        self.leases
            .maybe_acquire_lease(name, owner_id, duration)
            .await
    }

    async fn release_lease(&self, name: &str, owner_id: &str) -> engine::Result<()> {
        self.check();
        self.leases.release_lease(name, owner_id).await
    }
}

/// `GET /readyz` as a load balancer sees it: status and body.
async fn readyz(address: &str) -> (u16, String) {
    let response = reqwest::get(format!("{address}/readyz")).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_a_component_whose_task_has_stopped() {
    let leases = Arc::new(LockedLeases::default());
    let storages = Storages {
        leases: leases.clone(),
        ..Storages::in_memory(Vec::new(), false)
    };
    let engine = Engine::new(
        storages,
        builtin_handlers(),
        Runtime::new(Default::default()).unwrap(),
    );
    let scheduler = SchedulerSettings {
        lease_check_interval: Duration::from_millis(20),
        ..SchedulerSettings::default()
    };
    // Held to the end: dropping it would stop the components.
    let _background = engine.start(Some(scheduler), Some(WorkerSettings::default()));
    let settings = Settings::defaults();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let options = LeptosOptions::builder().output_name("sneakpeek").build();
    let (_close, closing) = tokio::sync::watch::channel(false);
    let app = server::router(engine.clone(), options, &settings, closing);
    tokio::spawn(async move { axum::serve(listener, app).await });
    assert_eq!(readyz(&address).await, (200, "ready".to_owned()));

    // A bug panics while holding the lease storage's lock; the scheduler's next look at the
    // lease panics on the poisoned lock and its task ends.
    let poisoner = leases.clone();
    std::thread::spawn(move || {
        let _held = poisoner.lock.lock().unwrap();
        panic!("a bug while holding the lease storage's lock");
    })
    .join()
    .expect_err("the thread panicked");
    let not_ready = async {
        loop {
            let answer = readyz(&address).await;
            if answer.0 != 200 {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let answer = tokio::time::timeout(Duration::from_secs(10), not_ready)
        .await
        .expect("readyz reports the stopped scheduler");
    assert_eq!(answer, (503, "scheduler stopped".to_owned()));
}

/// What `sneakpeek` prints when it cannot start: `engine::error::report` of the build error.
async fn startup_error(arguments: &[&str]) -> String {
    let mut all = vec!["sneakpeek"];
    all.extend_from_slice(arguments);
    let settings = Settings::try_parse_from(all).unwrap();
    match Server::builder().settings(settings).build().await {
        Ok(_) => panic!("the server must not start with {arguments:?}"),
        Err(error) => engine::error::report(&error),
    }
}

#[tokio::test]
async fn a_server_that_cannot_start_names_the_setting_or_file_at_fault_and_why() {
    let missing = std::env::temp_dir().join("sneakpeek-no-such-scrapers-file.yaml");
    let report = startup_error(&["--scrapers-file", missing.to_str().unwrap()]).await;
    assert!(
        report.starts_with(&format!(
            "--scrapers-file {}: cannot read it: ",
            missing.display()
        )),
        "{report}"
    );
    assert!(report.contains("No such file"), "{report}");

    let broken = tempfile_with("broken.yaml", "- name: [unclosed");
    let report = startup_error(&["--scrapers-file", broken.to_str().unwrap()]).await;
    assert!(
        report.starts_with(&format!("--scrapers-file {}: ", broken.display())),
        "{report}"
    );
    assert!(report.contains("line 1"), "{report}");

    // Nothing listens on port 9 of the loopback: the cause is the refused connection.
    let report = startup_error(&[
        "--database-url",
        "postgres://postgres@127.0.0.1:9/sneakpeek",
    ])
    .await;
    assert!(
        report.starts_with("--database-url: cannot use the database"),
        "{report}"
    );
    assert!(
        report.to_lowercase().contains("connection refused"),
        "{report}"
    );

    let report =
        startup_error(&["--heartbeat-seconds", "30", "--dead-timeout-seconds", "10"]).await;
    assert!(report.contains("--dead-timeout-seconds (10)"), "{report}");
}

/// A file of the test's own in the temporary directory.
fn tempfile_with(name: &str, content: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("sneakpeek-{}-{name}", std::process::id()));
    std::fs::write(&path, content).unwrap();
    path
}
