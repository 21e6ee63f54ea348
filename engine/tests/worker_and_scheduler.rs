//! The worker and the scheduler at work on real storages: jobs run, fail, panic, time out and
//! get killed; schedules fire when they should, and only once across replicas.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use engine::model::{Scraper, ScraperJob, ScraperJobPriority, ScraperJobStatus, ScraperSchedule};
use engine::retry::{Backoff, RetryPolicy, RetryReason};
use engine::scheduler::{Clock, SchedulerSettings};
use engine::scraper::{
    HandlerError, Handlers, MiddlewareSettings, Runtime, ScraperContext, ScraperHandler,
};
use engine::storage::{Claim, Storages};
use engine::testing::TestDatabase;
use engine::worker::{WorkerSettings, LOG_IDS_PER_ATTEMPT};
use engine::Engine;
use serde_json::json;
use tokio::sync::mpsc;

/// A handler steered by its params: `sleep_ms`, `block_ms` (blocking its thread), `fail`,
/// `panic`, `hang` (until cancelled), `log_lines` (how many lines to log).
/// It reports each start on a channel, and each cancellation through a drop guard.
struct TestHandler {
    started: mpsc::UnboundedSender<i64>,
    cancelled: mpsc::UnboundedSender<i64>,
}

struct CancelGuard {
    scraper_id: i64,
    finished: bool,
    cancelled: mpsc::UnboundedSender<i64>,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.cancelled.send(self.scraper_id);
        }
    }
}

#[async_trait]
impl ScraperHandler for TestHandler {
    fn name(&self) -> &str {
        "test"
    }

    async fn run(&self, context: &ScraperContext) -> Result<String, HandlerError> {
        let params = context.params();
        let scraper_id = context.scraper().id;
        let _ = self.started.send(scraper_id);
        let mut guard = CancelGuard {
            scraper_id,
            finished: false,
            cancelled: self.cancelled.clone(),
        };
        if let Some(lines) = params.get("log_lines").and_then(|value| value.as_u64()) {
            for line in 0..lines {
                context.log(engine::model::LogLevel::Info, format!("line {line}"));
            }
        }
        if params.get("hang").is_some() {
            std::future::pending::<()>().await;
        }
        if let Some(sleep) = params.get("sleep_ms").and_then(|value| value.as_u64()) {
            tokio::time::sleep(Duration::from_millis(sleep)).await;
        }
        if let Some(block) = params.get("block_ms").and_then(|value| value.as_u64()) {
            std::thread::sleep(Duration::from_millis(block));
        }
        guard.finished = true;
        if params.get("panic").is_some() {
            panic!("the handler blew up");
        }
        if let Some(message) = params.get("fail").and_then(|value| value.as_str()) {
            return Err(message.into());
        }
        Ok(format!("ran scraper {scraper_id}"))
    }
}

struct Harness {
    engine: Engine,
    started: mpsc::UnboundedReceiver<i64>,
    cancelled: mpsc::UnboundedReceiver<i64>,
}

fn harness(storages: Storages) -> Harness {
    let (started_tx, started) = mpsc::unbounded_channel();
    let (cancelled_tx, cancelled) = mpsc::unbounded_channel();
    let mut handlers = Handlers::default();
    handlers.register(TestHandler {
        started: started_tx,
        cancelled: cancelled_tx,
    });
    let engine = Engine::new(
        storages,
        handlers,
        Runtime::new(MiddlewareSettings::default()).unwrap(),
    );
    Harness {
        engine,
        started,
        cancelled,
    }
}

fn quick_worker() -> WorkerSettings {
    WorkerSettings {
        heartbeat_interval: Duration::from_millis(200),
        shutdown_grace: Duration::from_millis(500),
        ..WorkerSettings::default()
    }
}

async fn create(
    engine: &Engine,
    name: &str,
    schedule: ScraperSchedule,
    crontab: Option<&str>,
    params: serde_json::Value,
) -> Scraper {
    let scraper: Scraper = serde_json::from_value(json!({
        "name": name, "schedule": schedule, "schedule_crontab": crontab, "handler": "test", "config": {"params": params}
    }))
    .unwrap();
    engine.create_scraper(scraper).await.unwrap()
}

/// Waits until the job reaches a final status, by watching the queue (the worker has no
/// per-job completion signal for outsiders; the UI polls the same way).
async fn finished(engine: &Engine, job: &ScraperJob) -> ScraperJob {
    job_until(engine, job, |job| job.status.is_finished()).await
}

/// Waits until the job is as `wanted` says, watching the queue as [`finished`] does.
async fn job_until(
    engine: &Engine,
    job: &ScraperJob,
    wanted: impl Fn(&ScraperJob) -> bool,
) -> ScraperJob {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let current = engine
                .get_scraper_job(job.scraper.id, job.id)
                .await
                .unwrap();
            if wanted(&current) {
                return current;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the job gets there")
}

/// A scraper of the test handler with `params`, whose jobs run under `retry`.
async fn create_retried(
    engine: &Engine,
    name: &str,
    params: serde_json::Value,
    retry: RetryPolicy,
) -> Scraper {
    let mut scraper = create(engine, name, ScraperSchedule::Inactive, None, params).await;
    scraper.retry = Some(retry);
    engine.update_scraper(scraper).await.unwrap()
}

/// Retries of handler errors after `delay_seconds` each, `max_attempts` in all.
fn retry_errors(max_attempts: u32, delay_seconds: u64) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        backoff: Backoff::Fixed,
        delay_seconds,
        max_delay_seconds: delay_seconds,
        jitter_percent: 0,
        retry_on: vec![RetryReason::Error],
    }
}

#[tokio::test]
async fn a_failing_job_is_retried_as_its_policy_says_and_killing_it_ends_its_retries() {
    let harness = harness(Storages::in_memory(Vec::new(), false));
    let engine = &harness.engine;
    let background = engine.start(None, Some(quick_worker()));
    let flaky = create_retried(engine, "flaky", json!({"fail": "boom"}), retry_errors(3, 1)).await;
    let job = engine
        .enqueue_scraper(flaky.id, ScraperJobPriority::Normal)
        .await
        .unwrap();
    assert_eq!(
        job.scraper.retry, flaky.retry,
        "the job runs under its scraper's policy"
    );
    let failed = finished(engine, &job).await;
    assert_eq!(
        (failed.status, failed.attempt, failed.result.as_deref()),
        (ScraperJobStatus::Failed, 3, Some("boom"))
    );
    let reasons: Vec<(u32, RetryReason)> = failed
        .attempts
        .iter()
        .map(|attempt| (attempt.attempt, attempt.reason))
        .collect();
    assert_eq!(reasons, [(1, RetryReason::Error), (2, RetryReason::Error)]);
    // Each retry waited for its due time: the queue, not the worker, holds it back.
    let second_started = failed.attempts[1].started_at.unwrap();
    assert!(second_started - failed.attempts[0].finished_at >= chrono::Duration::seconds(1));

    // The server's default does not retry a handler's error.
    let once = create(
        engine,
        "once",
        ScraperSchedule::Inactive,
        None,
        json!({"fail": "no"}),
    )
    .await;
    let job = engine
        .enqueue_scraper(once.id, ScraperJobPriority::Normal)
        .await
        .unwrap();
    assert_eq!(job.scraper.retry, Some(RetryPolicy::default()));
    let failed = finished(engine, &job).await;
    assert_eq!(
        (failed.status, failed.attempt),
        (ScraperJobStatus::Failed, 1)
    );

    // Killed while it waits for its retry: it ends, and never runs again.
    let patient = create_retried(
        engine,
        "patient",
        json!({"fail": "later"}),
        retry_errors(3, 3600),
    )
    .await;
    let job = engine
        .enqueue_scraper(patient.id, ScraperJobPriority::Normal)
        .await
        .unwrap();
    let waiting = job_until(engine, &job, |job| job.attempt == 2).await;
    assert_eq!(waiting.status, ScraperJobStatus::Pending);
    let killed = engine.kill_scraper_job(patient.id, job.id).await.unwrap();
    assert_eq!(
        (killed.status, killed.attempt),
        (ScraperJobStatus::Killed, 2)
    );
    background.stop().await;
}

#[tokio::test]
async fn jobs_succeed_fail_and_report_unknown_handlers() {
    let harness = harness(Storages::in_memory(Vec::new(), false));
    let engine = &harness.engine;
    let background = engine.start(None, Some(quick_worker()));
    let ok = create(engine, "ok", ScraperSchedule::Inactive, None, json!({})).await;
    let failing = create(
        engine,
        "failing",
        ScraperSchedule::Inactive,
        None,
        json!({"fail": "boom: x"}),
    )
    .await;

    let job = finished(
        engine,
        &engine
            .enqueue_scraper(ok.id, ScraperJobPriority::High)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (job.status, job.result.as_deref()),
        (
            ScraperJobStatus::Succeeded,
            Some(format!("ran scraper {}", ok.id).as_str())
        )
    );
    assert!(job.started_at.is_some() && job.finished_at.is_some() && job.last_active_at.is_some());

    let job = finished(
        engine,
        &engine
            .enqueue_scraper(failing.id, ScraperJobPriority::High)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (job.status, job.result.as_deref()),
        (ScraperJobStatus::Failed, Some("boom: x"))
    );

    // A scraper whose handler is gone (stored before the handler was removed).
    let orphan = Scraper {
        handler: "removed".into(),
        ..ok.clone()
    };
    let orphan = engine
        .storages()
        .scrapers
        .create_scraper(Scraper { id: -1, ..orphan })
        .await
        .unwrap();
    let job = finished(
        engine,
        &engine
            .enqueue_scraper(orphan.id, ScraperJobPriority::High)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (job.status, job.result.as_deref()),
        (
            ScraperJobStatus::Failed,
            Some("Unknown scraper handler 'removed'")
        )
    );

    let log: Vec<String> = engine
        .get_scraper_job_logs(orphan.id, job.id, None, None)
        .await
        .unwrap()
        .into_iter()
        .map(|line| line.message)
        .collect();
    assert!(
        log.iter()
            .any(|line| line.contains("Unknown scraper handler 'removed'")),
        "{log:?}"
    );
    background.stop().await;
}

#[tokio::test]
async fn an_ephemeral_run_executes_without_a_saved_scraper() {
    let harness = harness(Storages::in_memory(Vec::new(), false));
    let engine = &harness.engine;
    let background = engine.start(None, Some(quick_worker()));
    let config: engine::model::ScraperConfig =
        serde_json::from_value(json!({"params": {}})).unwrap();
    let job = engine
        .run_ephemeral(
            "test".into(),
            config.clone(),
            None,
            ScraperJobPriority::High,
        )
        .await
        .unwrap();
    assert!(job.scraper.id < 0, "ephemeral scrapers have negative ids");
    assert!(
        engine.get_scrapers().await.unwrap().is_empty(),
        "nothing is saved"
    );
    let done = finished(engine, &job).await;
    assert_eq!(done.status, ScraperJobStatus::Succeeded);
    // Two runs at once are fine: each has its own scraper id.
    let first = engine
        .run_ephemeral(
            "test".into(),
            config.clone(),
            None,
            ScraperJobPriority::Normal,
        )
        .await
        .unwrap();
    let second = engine
        .run_ephemeral(
            "test".into(),
            config.clone(),
            None,
            ScraperJobPriority::Normal,
        )
        .await
        .unwrap();
    assert_ne!(first.scraper.id, second.scraper.id);
    assert_eq!(
        engine
            .run_ephemeral("nope".into(), config, None, ScraperJobPriority::Normal)
            .await,
        Err(engine::Error::UnknownHandler("nope".into()))
    );
    background.stop().await;
}

#[tokio::test]
async fn a_panicking_handler_fails_its_job_and_the_worker_goes_on() {
    let harness = harness(Storages::in_memory(Vec::new(), false));
    let engine = &harness.engine;
    let background = engine.start(None, Some(quick_worker()));
    let panicking = create(
        engine,
        "panics",
        ScraperSchedule::Inactive,
        None,
        json!({"panic": true}),
    )
    .await;
    let fine = create(engine, "fine", ScraperSchedule::Inactive, None, json!({})).await;
    let job = finished(
        engine,
        &engine
            .enqueue_scraper(panicking.id, ScraperJobPriority::Normal)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(job.status, ScraperJobStatus::Failed);
    assert!(
        job.result
            .as_deref()
            .unwrap()
            .contains("the handler blew up"),
        "{:?}",
        job.result
    );
    let job = finished(
        engine,
        &engine
            .enqueue_scraper(fine.id, ScraperJobPriority::Normal)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(job.status, ScraperJobStatus::Succeeded);
    background.stop().await;
}

#[tokio::test]
async fn a_job_over_its_timeout_fails_with_a_timeout_message() {
    let mut harness = harness(Storages::in_memory(Vec::new(), false));
    let engine = &harness.engine;
    let background = engine.start(None, Some(quick_worker()));
    let slow = create(
        engine,
        "slow",
        ScraperSchedule::Inactive,
        None,
        json!({"hang": true}),
    )
    .await;
    let slow = engine
        .update_scraper(Scraper {
            timeout_seconds: Some(1),
            ..slow
        })
        .await
        .unwrap();
    let job = finished(
        engine,
        &engine
            .enqueue_scraper(slow.id, ScraperJobPriority::Normal)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (job.status, job.result.as_deref()),
        (
            ScraperJobStatus::Failed,
            Some("Scraper job has timed out after 1 s")
        )
    );
    assert_eq!(
        harness.cancelled.recv().await,
        Some(slow.id),
        "the handler was stopped"
    );
    background.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_blocking_its_thread_past_the_timeout_fails_its_job() {
    let harness = harness(Storages::in_memory(Vec::new(), false));
    let engine = &harness.engine;
    let background = engine.start(None, Some(quick_worker()));
    // Left alone, the handler would return successfully after 4 s; its own timer cannot fire
    // while it holds the thread, so the supervisor must fail it.
    let blocking = create(
        engine,
        "blocks",
        ScraperSchedule::Inactive,
        None,
        json!({"block_ms": 4000}),
    )
    .await;
    let blocking = engine
        .update_scraper(Scraper {
            timeout_seconds: Some(1),
            ..blocking
        })
        .await
        .unwrap();
    let job = finished(
        engine,
        &engine
            .enqueue_scraper(blocking.id, ScraperJobPriority::Normal)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (job.status, job.result.as_deref()),
        (
            ScraperJobStatus::Failed,
            Some("Scraper job has timed out after 1 s")
        )
    );
    let stopped = job.finished_at.unwrap() - job.started_at.unwrap();
    assert!(
        stopped < chrono::Duration::seconds(4),
        "failed before the handler returned, after {stopped}"
    );
    background.stop().await;
}

#[tokio::test]
async fn killing_a_running_job_cancels_its_handler_at_once() {
    let mut harness = harness(Storages::in_memory(Vec::new(), false));
    let engine = harness.engine.clone();
    // Heartbeats far apart: the cancellation must come from the kill signal, not a heartbeat.
    let background = engine.start(
        None,
        Some(WorkerSettings {
            heartbeat_interval: Duration::from_secs(3600),
            ..quick_worker()
        }),
    );
    let hanging = create(
        &engine,
        "hangs",
        ScraperSchedule::Inactive,
        None,
        json!({"hang": true}),
    )
    .await;
    let job = engine
        .enqueue_scraper(hanging.id, ScraperJobPriority::Normal)
        .await
        .unwrap();
    assert_eq!(harness.started.recv().await, Some(hanging.id));
    let killed = engine.kill_scraper_job(hanging.id, job.id).await.unwrap();
    assert_eq!(killed.status, ScraperJobStatus::Killed);
    let cancelled = tokio::time::timeout(Duration::from_secs(2), harness.cancelled.recv()).await;
    assert_eq!(
        cancelled,
        Ok(Some(hanging.id)),
        "the handler is cancelled promptly"
    );
    assert_eq!(
        engine
            .get_scraper_job(hanging.id, job.id)
            .await
            .unwrap()
            .status,
        ScraperJobStatus::Killed
    );
    // The scraper can run again.
    engine
        .enqueue_scraper(hanging.id, ScraperJobPriority::Normal)
        .await
        .unwrap();
    background.stop().await;
}

#[tokio::test]
async fn a_job_declared_dead_elsewhere_is_stopped_at_the_next_heartbeat() {
    let mut harness = harness(Storages::in_memory(Vec::new(), false));
    let engine = harness.engine.clone();
    let background = engine.start(None, Some(quick_worker()));
    let hanging = create(
        &engine,
        "hangs",
        ScraperSchedule::Inactive,
        None,
        json!({"hang": true}),
    )
    .await;
    let job = engine
        .enqueue_scraper(hanging.id, ScraperJobPriority::Normal)
        .await
        .unwrap();
    assert_eq!(harness.started.recv().await, Some(hanging.id));
    // As a leader would after a partition: no kill signal reaches this worker.
    let dead = engine
        .storages()
        .jobs
        .mark_dead_scraper_jobs(Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(dead.iter().map(|job| job.id).collect::<Vec<_>>(), [job.id]);
    let cancelled = tokio::time::timeout(Duration::from_secs(2), harness.cancelled.recv()).await;
    assert_eq!(
        cancelled,
        Ok(Some(hanging.id)),
        "the heartbeat found the job lost and stopped it"
    );
    // The default policy retries a lost worker's job, in a minute: the next attempt is
    // another claim, which the stopped handler's worker could not have touched.
    let retried = engine.get_scraper_job(hanging.id, job.id).await.unwrap();
    assert_eq!(
        (retried.status, retried.attempt, retried.attempts[0].reason),
        (ScraperJobStatus::Pending, 2, RetryReason::Dead)
    );
    background.stop().await;
}

#[tokio::test]
async fn shutdown_fails_jobs_that_outlive_the_grace_period() {
    let mut harness = harness(Storages::in_memory(Vec::new(), false));
    let engine = harness.engine.clone();
    let background = engine.start(None, Some(quick_worker()));
    let hanging = create(
        &engine,
        "hangs",
        ScraperSchedule::Inactive,
        None,
        json!({"hang": true}),
    )
    .await;
    let job = engine
        .enqueue_scraper(hanging.id, ScraperJobPriority::Normal)
        .await
        .unwrap();
    harness.started.recv().await;
    background.stop().await;
    // The job did not fail by itself: as for a lost worker, the default policy retries it.
    let stopped = engine.get_scraper_job(hanging.id, job.id).await.unwrap();
    assert_eq!(
        (stopped.status, stopped.attempt),
        (ScraperJobStatus::Pending, 2)
    );
    let attempt = &stopped.attempts[0];
    assert_eq!(
        (attempt.reason, attempt.status, attempt.result.as_deref()),
        (
            RetryReason::Dead,
            ScraperJobStatus::Failed,
            Some("The worker shut down before the job finished")
        )
    );
}

#[tokio::test]
async fn jobs_claimed_ahead_wait_for_a_slot_and_go_back_to_the_queue_on_shutdown() {
    let mut harness = harness(Storages::in_memory(Vec::new(), false));
    let engine = harness.engine.clone();
    let mut jobs = Vec::new();
    for name in ["first", "second", "third"] {
        let hanging = create(
            &engine,
            name,
            ScraperSchedule::Inactive,
            None,
            json!({"hang": true}),
        )
        .await;
        jobs.push(
            engine
                .enqueue_scraper(hanging.id, ScraperJobPriority::Normal)
                .await
                .unwrap(),
        );
    }
    let background = engine.start(
        None,
        Some(WorkerSettings {
            max_concurrency: 1,
            claim_ahead: 2,
            ..quick_worker()
        }),
    );
    assert_eq!(harness.started.recv().await, Some(jobs[0].scraper.id));
    // The other two are claimed ahead: started in the queue, not running.
    tokio::time::timeout(Duration::from_secs(5), async {
        while engine
            .get_scraper_job(jobs[2].scraper.id, jobs[2].id)
            .await
            .unwrap()
            .status
            != ScraperJobStatus::Started
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the backlog is claimed ahead");
    assert_eq!(
        engine.status().worker.map(|worker| worker.running_jobs),
        Some(1)
    );
    background.stop().await;

    assert!(
        harness.started.try_recv().is_err(),
        "only one handler ever started"
    );
    let first = engine
        .get_scraper_job(jobs[0].scraper.id, jobs[0].id)
        .await
        .unwrap();
    assert_eq!(
        (first.status, first.attempt),
        (ScraperJobStatus::Pending, 2),
        "the running job waits for its retry"
    );
    for job in &jobs[1..] {
        let job = engine
            .get_scraper_job(job.scraper.id, job.id)
            .await
            .unwrap();
        assert_eq!(
            (job.status, job.started_at),
            (ScraperJobStatus::Pending, None),
            "job {} went back",
            job.id
        );
    }
}

#[tokio::test]
async fn utmost_jobs_run_before_high_ones() {
    let mut harness = harness(Storages::in_memory(Vec::new(), false));
    let engine = harness.engine.clone();
    let high = create(&engine, "high", ScraperSchedule::Inactive, None, json!({})).await;
    let utmost = create(
        &engine,
        "utmost",
        ScraperSchedule::Inactive,
        None,
        json!({}),
    )
    .await;
    engine
        .enqueue_scraper(high.id, ScraperJobPriority::High)
        .await
        .unwrap();
    engine
        .enqueue_scraper(utmost.id, ScraperJobPriority::Utmost)
        .await
        .unwrap();
    let background = engine.start(
        None,
        Some(WorkerSettings {
            max_concurrency: 1,
            ..quick_worker()
        }),
    );
    assert_eq!(harness.started.recv().await, Some(utmost.id));
    assert_eq!(harness.started.recv().await, Some(high.id));
    background.stop().await;
}

fn at(text: &str) -> DateTime<Utc> {
    engine::model::timestamp::parse(text).unwrap()
}

fn simulated_scheduler(start: &str) -> SchedulerSettings {
    SchedulerSettings {
        clock: Clock::simulated(at(start)),
        ..SchedulerSettings::default()
    }
}

/// The jobs of a scraper, oldest first.
async fn jobs_of(engine: &Engine, scraper: &Scraper) -> Vec<ScraperJob> {
    let mut jobs = engine.get_scraper_jobs(scraper.id).await.unwrap();
    jobs.reverse();
    jobs
}

#[tokio::test(start_paused = true)]
async fn every_second_fires_once_a_second_without_overlap() {
    let harness = harness(Storages::in_memory(Vec::new(), false));
    let engine = &harness.engine;
    let scraper = create(
        engine,
        "ticker",
        ScraperSchedule::EverySecond,
        None,
        json!({}),
    )
    .await;
    let inactive = create(engine, "idle", ScraperSchedule::Inactive, None, json!({})).await;
    let background = engine.start(
        Some(simulated_scheduler("2026-11-29T10:00:00.500000")),
        Some(quick_worker()),
    );
    tokio::time::sleep(Duration::from_millis(10_200)).await;
    background.stop().await;

    let jobs = jobs_of(engine, &scraper).await;
    assert!(
        (9..=11).contains(&jobs.len()),
        "{} jobs in 10 s",
        jobs.len()
    );
    assert!(jobs
        .iter()
        .all(|job| job.status == ScraperJobStatus::Succeeded));
    for pair in jobs.windows(2) {
        assert!(
            pair[0].finished_at.unwrap() <= pair[1].created_at,
            "jobs overlap"
        );
    }
    assert!(
        jobs_of(engine, &inactive).await.is_empty(),
        "inactive never fires"
    );
}

#[tokio::test(start_paused = true)]
async fn a_fire_while_the_scraper_runs_is_skipped() {
    let harness = harness(Storages::in_memory(Vec::new(), false));
    let engine = &harness.engine;
    // Each run takes 2.5 s: the fires at 10:00:01 and 10:00:04 run; those at :02, :03, :05
    // and :06 find it running and are skipped.
    let scraper = create(
        engine,
        "slow ticker",
        ScraperSchedule::EverySecond,
        None,
        json!({"sleep_ms": 2500}),
    )
    .await;
    let background = engine.start(
        Some(simulated_scheduler("2026-11-29T10:00:00.500000")),
        Some(quick_worker()),
    );
    tokio::time::sleep(Duration::from_millis(6_200)).await;
    background.stop().await;
    let jobs = jobs_of(engine, &scraper).await;
    assert_eq!(jobs.len(), 2, "{jobs:#?}");
}

#[tokio::test(start_paused = true)]
async fn crontab_fires_at_the_right_minute() {
    let harness = harness(Storages::in_memory(Vec::new(), false));
    let engine = &harness.engine;
    let scraper = create(
        engine,
        "at 10:30",
        ScraperSchedule::Crontab,
        Some("30 10 * * *"),
        json!({}),
    )
    .await;
    let background = engine.start(
        Some(simulated_scheduler("2026-11-29T10:28:00")),
        Some(quick_worker()),
    );
    tokio::time::sleep(Duration::from_secs(119)).await;
    assert!(
        jobs_of(engine, &scraper).await.is_empty(),
        "not before 10:30"
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    let jobs = jobs_of(engine, &scraper).await;
    assert_eq!(jobs.len(), 1);
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(jobs_of(engine, &scraper).await.len(), 1, "once a day only");
    background.stop().await;
}

/// How many jobs a scraper with `crontab`, read in `zone`, gets from the scheduler between
/// `from` and `until`, on the simulated clock.
async fn zoned_fires(crontab: &str, zone: &str, from: &str, until: &str) -> usize {
    let harness = harness(Storages::in_memory(Vec::new(), false));
    let engine = &harness.engine;
    let mut scraper = create(
        engine,
        "nightly",
        ScraperSchedule::Crontab,
        Some(crontab),
        json!({}),
    )
    .await;
    scraper.schedule_timezone = Some(zone.to_owned());
    let scraper = engine.update_scraper(scraper).await.unwrap();
    let background = engine.start(Some(simulated_scheduler(from)), Some(quick_worker()));
    tokio::time::sleep((at(until) - at(from)).to_std().unwrap()).await;
    background.stop().await;
    jobs_of(engine, &scraper).await.len()
}

#[tokio::test(start_paused = true)]
async fn a_nightly_run_in_a_zone_is_neither_lost_nor_doubled_when_the_clock_changes() {
    // Berlin skips 02:00-03:00 on 2026-03-29: that night's 02:30 runs at 03:00 CEST (01:00
    // UTC); the next night's at 00:30 UTC.
    assert_eq!(
        zoned_fires(
            "30 2 * * *",
            "Europe/Berlin",
            "2026-03-28T23:00:00",
            "2026-03-30T00:40:00"
        )
        .await,
        2
    );
    // Berlin repeats 02:00-03:00 on 2026-10-25: 02:30 runs once (00:30 UTC), not again an
    // hour later; the next night's at 01:30 UTC.
    assert_eq!(
        zoned_fires(
            "30 2 * * *",
            "Europe/Berlin",
            "2026-10-24T23:00:00",
            "2026-10-26T01:40:00"
        )
        .await,
        2
    );
}

#[tokio::test(start_paused = true)]
async fn updates_and_deletes_take_effect_at_once() {
    let harness = harness(Storages::in_memory(Vec::new(), false));
    let engine = &harness.engine;
    let scraper = create(
        engine,
        "switched",
        ScraperSchedule::Inactive,
        None,
        json!({}),
    )
    .await;
    let background = engine.start(
        Some(simulated_scheduler("2026-11-29T10:00:00.500000")),
        Some(quick_worker()),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(jobs_of(engine, &scraper).await.is_empty());

    let scraper = engine
        .update_scraper(Scraper {
            schedule: ScraperSchedule::EverySecond,
            ..scraper
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let enabled = jobs_of(engine, &scraper).await.len();
    assert!((2..=3).contains(&enabled), "{enabled} jobs after enabling");

    engine.delete_scraper(scraper.id).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        jobs_of(engine, &scraper).await.len(),
        enabled,
        "no fire after delete"
    );
    background.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_scraper_with_a_broken_schedule_does_not_stop_the_others() {
    let harness = harness(Storages::in_memory(Vec::new(), false));
    let engine = &harness.engine;
    // Stored directly (validation would refuse it), as an old database or a file might hold.
    let broken: Scraper = serde_json::from_value(json!({"name": "broken", "schedule": "crontab", "schedule_crontab": "61 * * *", "handler": "test"})).unwrap();
    engine
        .storages()
        .scrapers
        .create_scraper(broken)
        .await
        .unwrap();
    let healthy = create(
        engine,
        "healthy",
        ScraperSchedule::EverySecond,
        None,
        json!({}),
    )
    .await;
    let background = engine.start(
        Some(simulated_scheduler("2026-11-29T10:00:00.500000")),
        Some(quick_worker()),
    );
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    background.stop().await;
    assert_eq!(jobs_of(engine, &healthy).await.len(), 3);
}

#[tokio::test]
async fn a_claimed_job_whose_worker_died_before_running_it_goes_back_to_the_queue_and_runs() {
    let mut harness = harness(Storages::in_memory(Vec::new(), false));
    let engine = &harness.engine;
    let scraper = create(
        engine,
        "claimed ahead",
        ScraperSchedule::Inactive,
        None,
        json!({}),
    )
    .await;
    let job = engine
        .enqueue_scraper(scraper.id, ScraperJobPriority::Normal)
        .await
        .unwrap();
    // A worker claims the job (ahead of a free slot, say) and is killed before running it.
    engine
        .storages()
        .jobs
        .dequeue_scraper_jobs(1)
        .await
        .unwrap();
    let scheduler = SchedulerSettings {
        dead_timeout: Duration::from_millis(300),
        dead_check_interval: Duration::from_millis(100),
        ..SchedulerSettings::default()
    };
    let background = engine.start(Some(scheduler), Some(quick_worker()));
    let ran = finished(engine, &job).await;
    assert_eq!(
        ran.status,
        ScraperJobStatus::Succeeded,
        "the same job runs, as if never claimed"
    );
    assert_eq!(harness.started.try_recv(), Ok(scraper.id));
    assert!(harness.started.try_recv().is_err(), "its handler ran once");
    background.stop().await;
}

#[tokio::test]
async fn a_job_that_ran_and_lost_its_worker_is_retried_or_ends_dead() {
    let harness = harness(Storages::in_memory(Vec::new(), false));
    let engine = &harness.engine;
    let mut retried = create(
        engine,
        "retried",
        ScraperSchedule::Inactive,
        None,
        json!({}),
    )
    .await;
    retried.retry = Some(RetryPolicy {
        max_attempts: 2,
        backoff: Backoff::Fixed,
        delay_seconds: 1,
        max_delay_seconds: 1,
        jitter_percent: 0,
        retry_on: vec![RetryReason::Dead],
    });
    let retried = engine.update_scraper(retried).await.unwrap();
    let mut orphaned = create(
        engine,
        "orphaned",
        ScraperSchedule::Inactive,
        None,
        json!({}),
    )
    .await;
    orphaned.retry = Some(RetryPolicy::never());
    let orphaned = engine.update_scraper(orphaned).await.unwrap();
    let mut jobs = Vec::new();
    for scraper in [&retried, &orphaned] {
        jobs.push(
            engine
                .enqueue_scraper(scraper.id, ScraperJobPriority::Normal)
                .await
                .unwrap(),
        );
    }
    // A worker claims both jobs, starts their handlers and dies: nobody heart-beats them.
    let claimed = engine
        .storages()
        .jobs
        .dequeue_scraper_jobs(2)
        .await
        .unwrap();
    let claims: Vec<Claim> = claimed.iter().filter_map(Claim::of).collect();
    assert_eq!(claims.len(), 2);
    engine
        .storages()
        .jobs
        .start_scraper_jobs(&claims)
        .await
        .unwrap();
    let scheduler = SchedulerSettings {
        dead_timeout: Duration::from_millis(300),
        dead_check_interval: Duration::from_millis(100),
        ..SchedulerSettings::default()
    };
    let background = engine.start(Some(scheduler), Some(quick_worker()));

    // Its policy retries a lost worker: the second attempt, in a live worker, succeeds.
    let recovered = finished(engine, &jobs[0]).await;
    assert_eq!(
        (recovered.status, recovered.attempt),
        (ScraperJobStatus::Succeeded, 2)
    );
    assert_eq!(recovered.attempts.len(), 1);
    assert_eq!(
        (recovered.attempts[0].reason, recovered.attempts[0].status),
        (RetryReason::Dead, ScraperJobStatus::Dead)
    );
    let log = engine
        .get_scraper_job_logs(retried.id, jobs[0].id, None, Some(100))
        .await
        .unwrap();
    assert!(
        log.iter()
            .any(|line| line.message == "Attempt 2 of 2: attempt 1 ended with worker lost"),
        "{log:?}"
    );
    assert!(log.iter().all(|line| line.id > LOG_IDS_PER_ATTEMPT));

    // Without retries it ends dead, and frees its scraper.
    let dead = finished(engine, &jobs[1]).await;
    assert_eq!((dead.status, dead.attempt), (ScraperJobStatus::Dead, 1));
    assert!(dead.finished_at.is_some());
    let rerun = finished(
        engine,
        &engine
            .enqueue_scraper(orphaned.id, ScraperJobPriority::Normal)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(rerun.status, ScraperJobStatus::Succeeded);
    background.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_never_fire_twice_and_survive_losing_the_leader() {
    let database = TestDatabase::create().await;
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let storages = Storages::postgres(&database.url, false).await.unwrap();
        let harness = harness(storages);
        let background = harness
            .engine
            .start(Some(SchedulerSettings::default()), Some(quick_worker()));
        replicas.push((harness, background));
    }
    let engine = replicas[0].0.engine.clone();
    let scraper = create(
        &engine,
        "shared ticker",
        ScraperSchedule::EverySecond,
        None,
        json!({}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(10)).await;

    let storage = engine::storage::postgres::PostgresStorage::connect(&database.url, false)
        .await
        .unwrap();
    let duplicates: i64 = sqlx::query_scalar("SELECT count(*) FROM (SELECT scheduled_for FROM scraper_jobs GROUP BY scheduled_for HAVING count(*) > 1) AS twice")
        .fetch_one(storage.pool())
        .await
        .unwrap();
    assert_eq!(duplicates, 0);
    let fired = jobs_of(&engine, &scraper).await.len();
    assert!((8..=11).contains(&fired), "{fired} fires in 10 s");

    // Cut the leader's lease connection (its only advisory lock): scheduling must go on
    // within 5 s, through another replica or the old leader winning the lease back.
    let cut = sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())").execute(storage.pool()).await.unwrap();
    assert_eq!(cut.rows_affected(), 1);
    let cut_at = Utc::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after_cut: Vec<DateTime<Utc>> = jobs_of(&engine, &scraper)
        .await
        .into_iter()
        .map(|job| job.created_at)
        .filter(|created| *created > cut_at)
        .collect();
    assert!(
        after_cut.len() >= 2,
        "only {} fires in the 5 s after the leader lost its lease",
        after_cut.len()
    );
    assert!(after_cut[0] - cut_at <= chrono::Duration::seconds(5));
    let leaders = replicas
        .iter()
        .filter(|(_, background)| background.scheduler_status().unwrap().borrow().leading)
        .count();
    assert_eq!(leaders, 1);
    let duplicates: i64 = sqlx::query_scalar("SELECT count(*) FROM (SELECT scheduled_for FROM scraper_jobs GROUP BY scheduled_for HAVING count(*) > 1) AS twice")
        .fetch_one(storage.pool())
        .await
        .unwrap();
    assert_eq!(duplicates, 0);
    for (_, background) in replicas {
        background.stop().await;
    }
}

#[tokio::test]
async fn a_timeout_too_large_to_honour_is_refused_and_cannot_wedge_the_worker() {
    let harness = harness(Storages::in_memory(Vec::new(), false));
    let engine = &harness.engine;
    let mut huge: Scraper = serde_json::from_value(json!({
        "name": "huge timeout", "schedule": "inactive", "handler": "test", "config": {"params": {"sleep_ms": 600}}
    }))
    .unwrap();
    huge.timeout_seconds = Some(9_223_372_036_854_775_807);
    match engine.create_scraper(huge.clone()).await {
        Err(engine::Error::InvalidScraper(fields)) => {
            assert_eq!(fields[0].loc, ["scraper", "timeout_seconds"])
        }
        other => panic!("expected the timeout to be refused, got {other:?}"),
    }
    // A job carrying such a timeout anyway (stored before the limit existed) runs through
    // several heartbeats without harming the worker.
    let background = engine.start(None, Some(quick_worker()));
    huge.id = 4242;
    let job = engine
        .storages()
        .jobs
        .add_scraper_job(
            &huge,
            ScraperJobPriority::Normal,
            engine::storage::EnqueueOrigin::Manual,
        )
        .await
        .unwrap();
    assert_eq!(
        finished(engine, &job).await.status,
        ScraperJobStatus::Succeeded
    );
    let next = create(engine, "next", ScraperSchedule::Inactive, None, json!({})).await;
    let next_job = engine
        .enqueue_scraper(next.id, ScraperJobPriority::Normal)
        .await
        .unwrap();
    assert_eq!(
        finished(engine, &next_job).await.status,
        ScraperJobStatus::Succeeded
    );
    assert_eq!(
        engine.status().worker.map(|worker| worker.running_jobs),
        Some(0)
    );
    background.stop().await;
}

#[tokio::test]
async fn finished_results_and_log_lines_wait_out_a_storage_outage() {
    let (storages, outage) = engine::testing::Outage::wrap(Storages::in_memory(Vec::new(), false));
    let mut harness = harness(storages);
    let engine = &harness.engine;
    let scraper = create(
        engine,
        "through the outage",
        ScraperSchedule::Inactive,
        None,
        json!({"sleep_ms": 300}),
    )
    .await;
    let job = engine
        .enqueue_scraper(scraper.id, ScraperJobPriority::Normal)
        .await
        .unwrap();
    let background = engine.start(None, Some(quick_worker()));
    assert_eq!(harness.started.recv().await, Some(scraper.id));
    // The database goes down while the job runs: its heartbeats, log flushes and the
    // recording of its result all fail, for longer than a few retries.
    outage.begin();
    tokio::time::timeout(Duration::from_secs(20), async {
        while outage.refused() < 12 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the worker keeps trying while the storage is down");
    outage.end();
    let done = finished(engine, &job).await;
    assert_eq!(
        (done.status, done.result.as_deref()),
        (
            ScraperJobStatus::Succeeded,
            Some(format!("ran scraper {}", scraper.id).as_str())
        )
    );
    let log: Vec<String> = engine
        .get_scraper_job_logs(scraper.id, job.id, None, None)
        .await
        .unwrap()
        .into_iter()
        .map(|line| line.message)
        .collect();
    assert_eq!(
        log.first().map(String::as_str),
        Some("Running scraper 'through the outage' with handler 'test'")
    );
    assert_eq!(log.last().map(String::as_str), Some("Job succeeded"));
    background.stop().await;
}

/// A lease storage whose next answer can be held back, as when the database hangs (or the
/// connection to it is black-holed) during a renewal. Tells when a held-back answer was
/// abandoned by the caller.
struct HangingLease {
    inner: std::sync::Arc<dyn engine::storage::LeaseStorage>,
    hang_next_answer: std::sync::Mutex<Option<Duration>>,
    abandoned: std::sync::Arc<tokio::sync::Notify>,
}

/// Notifies when dropped before it is defused: the future holding it was abandoned.
struct AbandonAlarm(Option<std::sync::Arc<tokio::sync::Notify>>);

impl Drop for AbandonAlarm {
    fn drop(&mut self) {
        if let Some(abandoned) = self.0.take() {
            abandoned.notify_one();
        }
    }
}

#[async_trait]
impl engine::storage::LeaseStorage for HangingLease {
    async fn maybe_acquire_lease(
        &self,
        name: &str,
        owner_id: &str,
        duration: Duration,
    ) -> engine::Result<Option<engine::model::Lease>> {
        let lease = self
            .inner
            .maybe_acquire_lease(name, owner_id, duration)
            .await;
        let hang = self.hang_next_answer.lock().unwrap().take();
        if let Some(hang) = hang {
            let mut alarm = AbandonAlarm(Some(self.abandoned.clone()));
            tokio::time::sleep(hang).await;
            alarm.0 = None;
        }
        lease
    }

    async fn release_lease(&self, name: &str, owner_id: &str) -> engine::Result<()> {
        self.inner.release_lease(name, owner_id).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_leader_whose_lease_storage_hangs_for_the_lease_period_stops_leading() {
    let storages = Storages::in_memory(Vec::new(), false);
    let abandoned = std::sync::Arc::new(tokio::sync::Notify::new());
    let lease = std::sync::Arc::new(HangingLease {
        inner: storages.leases.clone(),
        hang_next_answer: std::sync::Mutex::new(None),
        abandoned: abandoned.clone(),
    });
    let harness = harness(Storages {
        leases: lease.clone(),
        ..storages
    });
    let engine = &harness.engine;
    let settings = simulated_scheduler("2026-01-01T00:00:00Z");
    let lease_duration = settings.lease_duration;
    let background = engine.start(Some(settings), None);
    let mut status = background.scheduler_status().unwrap();
    status.wait_for(|status| status.leading).await.unwrap();
    // The next renewal hangs far beyond the lease period: by then another replica may lead,
    // so the leader must give up waiting (and leading) when its lease runs out.
    *lease.hang_next_answer.lock().unwrap() = Some(lease_duration * 10);
    tokio::time::timeout(lease_duration * 2, abandoned.notified())
        .await
        .expect("the leader stops waiting for a renewal once its lease has run out");
    background.stop().await;
}

#[tokio::test]
async fn a_chatty_job_keeps_its_log_within_the_caps_and_says_so() {
    let harness = harness(Storages::in_memory(Vec::new(), false));
    let engine = &harness.engine;
    let background = engine.start(None, Some(quick_worker()));
    let chatty = create(
        engine,
        "chatty",
        ScraperSchedule::Inactive,
        None,
        json!({"log_lines": 200_000}),
    )
    .await;
    let job = engine
        .enqueue_scraper(chatty.id, ScraperJobPriority::Normal)
        .await
        .unwrap();
    assert_eq!(
        finished(engine, &job).await.status,
        ScraperJobStatus::Succeeded
    );
    let mut log = Vec::new();
    loop {
        let page = engine
            .get_scraper_job_logs(
                chatty.id,
                job.id,
                log.last().map(|line: &engine::model::JobLogLine| line.id),
                Some(10_000),
            )
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        log.extend(page);
    }
    let cap = engine::worker::MAX_LOG_LINES_PER_JOB;
    // The worker's own first line, the handler's lines up to the cap, the note, the outcome.
    assert_eq!(log.len(), cap + 3);
    assert_eq!(log[cap].message, "line 9999");
    assert!(
        log[cap + 1].message.starts_with("Log truncated"),
        "{}",
        log[cap + 1].message
    );
    assert_eq!(log[cap + 2].message, "Job succeeded");
    background.stop().await;
}

#[tokio::test]
async fn ephemeral_runs_are_refused_in_read_only_mode_and_limited_in_number() {
    let config: engine::model::ScraperConfig =
        serde_json::from_value(json!({"params": {"hang": true}})).unwrap();
    let read_only = harness(Storages::in_memory(Vec::new(), true));
    assert_eq!(
        read_only
            .engine
            .run_ephemeral(
                "test".into(),
                config.clone(),
                None,
                ScraperJobPriority::Normal
            )
            .await,
        Err(engine::Error::ReadOnly)
    );

    let harness = harness(Storages::in_memory(Vec::new(), false));
    let engine = &harness.engine;
    let limit = engine::MAX_ACTIVE_EPHEMERAL_RUNS;
    for _ in 0..limit {
        let job = engine
            .run_ephemeral(
                "test".into(),
                config.clone(),
                None,
                ScraperJobPriority::Normal,
            )
            .await
            .unwrap();
        assert_eq!(
            job.priority,
            ScraperJobPriority::Normal,
            "the priority asked for"
        );
    }
    let over = engine
        .run_ephemeral(
            "test".into(),
            config.clone(),
            None,
            ScraperJobPriority::Normal,
        )
        .await;
    assert_eq!(over, Err(engine::Error::TooManyEphemeralRuns(limit)));
    // Once one ends, another may start.
    let job = engine
        .storages()
        .jobs
        .dequeue_scraper_jobs(1)
        .await
        .unwrap()
        .remove(0);
    engine
        .kill_scraper_job(job.scraper.id, job.id)
        .await
        .unwrap();
    assert!(engine
        .run_ephemeral("test".into(), config, None, ScraperJobPriority::Normal)
        .await
        .is_ok());
}

#[tokio::test]
async fn a_job_without_its_own_timeout_stops_at_the_operators_default() {
    let (started_tx, _started) = mpsc::unbounded_channel();
    let (cancelled_tx, mut cancelled) = mpsc::unbounded_channel();
    let mut handlers = Handlers::default();
    handlers.register(TestHandler {
        started: started_tx,
        cancelled: cancelled_tx,
    });
    let runtime = Runtime::from_settings(engine::scraper::RuntimeSettings {
        default_job_timeout_seconds: 1,
        ..Default::default()
    })
    .unwrap();
    let engine = Engine::new(Storages::in_memory(Vec::new(), false), handlers, runtime);
    let background = engine.start(None, Some(quick_worker()));
    let forever = create(
        &engine,
        "forever",
        ScraperSchedule::Inactive,
        None,
        json!({"hang": true}),
    )
    .await;
    assert_eq!(forever.timeout_seconds, None);
    let job = engine
        .enqueue_scraper(forever.id, ScraperJobPriority::Normal)
        .await
        .unwrap();
    let done = finished(&engine, &job).await;
    assert_eq!(done.status, ScraperJobStatus::Failed);
    assert!(
        done.result
            .as_deref()
            .is_some_and(|result| result.ends_with("after 1 s")),
        "{:?}",
        done.result
    );
    assert_eq!(cancelled.recv().await, Some(forever.id));
    background.stop().await;
}

#[tokio::test]
async fn a_completion_the_storage_refuses_fails_its_job_and_spares_the_others() {
    let (storages, outage) = engine::testing::Outage::wrap(Storages::in_memory(Vec::new(), false));
    let harness = harness(storages);
    let engine = &harness.engine;
    let refused = create(
        engine,
        "refused",
        ScraperSchedule::Inactive,
        None,
        json!({"sleep_ms": 200}),
    )
    .await;
    let spared = create(
        engine,
        "spared",
        ScraperSchedule::Inactive,
        None,
        json!({"sleep_ms": 200}),
    )
    .await;
    let refused_job = engine
        .enqueue_scraper(refused.id, ScraperJobPriority::Normal)
        .await
        .unwrap();
    let spared_job = engine
        .enqueue_scraper(spared.id, ScraperJobPriority::Normal)
        .await
        .unwrap();
    outage.refuse_completion_of(refused_job.id);
    let background = engine.start(None, Some(quick_worker()));
    let spared_done = finished(engine, &spared_job).await;
    assert_eq!(spared_done.status, ScraperJobStatus::Succeeded);
    let refused_done = finished(engine, &refused_job).await;
    assert_eq!(refused_done.status, ScraperJobStatus::Failed);
    assert!(
        refused_done
            .result
            .as_deref()
            .is_some_and(|result| result.starts_with("The job's outcome could not be stored")),
        "{:?}",
        refused_done.result
    );
    background.stop().await;
}
