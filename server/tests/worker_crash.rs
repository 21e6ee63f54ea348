//! A worker process killed with SIGKILL in the middle of a job: the job must not stay
//! `started` forever. After the dead timeout its retry policy sends it to its next attempt,
//! which another worker runs to success.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use engine::model::{Scraper, ScraperJob, ScraperJobPriority, ScraperJobStatus};
use engine::retry::RetryReason;
use engine::scheduler::SchedulerSettings;
use engine::scraper::{builtin_handlers, Runtime, RuntimeSettings};
use engine::storage::Storages;
use engine::testing::TestDatabase;
use engine::worker::WorkerSettings;
use engine::Engine;
use serde_json::json;
use tokio::sync::mpsc;

/// A page whose first request never gets an answer (it reports its arrival instead); later
/// requests are answered at once.
async fn page_server() -> (String, mpsc::UnboundedReceiver<()>) {
    let (arrived, arrivals) = mpsc::unbounded_channel();
    let calls = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/page",
        get(move || {
            let (arrived, calls) = (arrived.clone(), calls.clone());
            async move {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    let _ = arrived.send(());
                    std::future::pending::<()>().await;
                }
                "second time lucky"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/page"), arrivals)
}

/// The job once it has a final status, polling the queue as API clients do; `None` after 15 s.
async fn finished(engine: &Engine, job: &ScraperJob) -> Option<ScraperJob> {
    let poll = async {
        loop {
            let current = engine
                .get_scraper_job(job.scraper.id, job.id)
                .await
                .unwrap();
            if current.status.is_finished() {
                return current;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(15), poll)
        .await
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_a_killed_worker_process_is_retried_to_success() {
    let database = TestDatabase::create().await;
    let (url, mut arrivals) = page_server().await;
    let storages = Storages::postgres(&database.url, false).await.unwrap();
    // The page is on 127.0.0.1, which scrapers may reach only when the operator allows it.
    let runtime = Runtime::from_settings(RuntimeSettings {
        egress: ["127.0.0.1/32".parse().unwrap()].into_iter().collect(),
        ..RuntimeSettings::default()
    })
    .unwrap();
    let engine = Engine::new(storages, builtin_handlers(), runtime);
    let scraper: Scraper = serde_json::from_value(json!({
        "name": "fetcher", "schedule": "inactive", "handler": "script",
        "config": {"params": {"source": "get(args.url).text", "args": {"url": url}}, "plugins": {"robots_txt": {"enabled": false}}},
        "retry": {"max_attempts": 2, "backoff": "fixed", "delay_seconds": 1, "max_delay_seconds": 1, "retry_on": ["dead"]}
    }))
    .unwrap();
    let scraper = engine.create_scraper(scraper).await.unwrap();
    let job = engine
        .enqueue_scraper(scraper.id, ScraperJobPriority::Normal)
        .await
        .unwrap();

    // A worker-only replica in its own process picks the job up and hangs on the page.
    let mut worker = Command::new(env!("CARGO_BIN_EXE_sneakpeek"))
        .args([
            "--database-url",
            &database.url,
            "--no-web",
            "--no-scheduler",
            "--heartbeat-seconds",
            "1",
            "--dead-timeout-seconds",
            "3",
            "--egress-allow",
            "127.0.0.1/32",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server binary starts");
    tokio::time::timeout(Duration::from_secs(30), arrivals.recv())
        .await
        .expect("the worker fetches the page");
    assert_eq!(
        engine
            .get_scraper_job(scraper.id, job.id)
            .await
            .unwrap()
            .status,
        ScraperJobStatus::Started
    );
    worker.kill().expect("SIGKILL");
    worker.wait().unwrap();

    // This replica's scheduler finds the silent job's worker lost and retries it a second
    // later; its own worker runs the second attempt.
    let scheduler = SchedulerSettings {
        dead_timeout: Duration::from_secs(3),
        dead_check_interval: Duration::from_millis(200),
        ..SchedulerSettings::default()
    };
    let background = engine.start(Some(scheduler), Some(WorkerSettings::default()));
    let retried = finished(&engine, &job)
        .await
        .expect("the job is retried and finishes");
    assert_eq!(
        (retried.status, retried.attempt, retried.result.as_deref()),
        (ScraperJobStatus::Succeeded, 2, Some("second time lucky"))
    );
    assert_eq!(retried.attempts.len(), 1);
    assert_eq!(
        (retried.attempts[0].reason, retried.attempts[0].status),
        (RetryReason::Dead, ScraperJobStatus::Dead)
    );
    background.stop().await;
}
