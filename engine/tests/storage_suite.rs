//! One suite of storage checks, run against the in-memory and the PostgreSQL storages alike,
//! so the two cannot drift. Includes the original Sneakpeek's storage, queue and lease tests.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use engine::model::{
    CrontabDialect, Scraper, ScraperJob, ScraperJobPriority, ScraperJobStatus, ScraperSchedule,
};
use engine::retry::{RetryPolicy, RetryReason};
use engine::schedule::MAX_SCRAPER_ID;
use engine::storage::{
    Claim, Completion, EnqueueOrigin, NextAttempt, ScheduledFire, ScraperJobsStorage, Storages,
};
use engine::testing::TestDatabase;
use engine::Error;

/// Storages under test, plus whatever must live as long as they do.
struct Backend {
    storages: Storages,
    _database: Option<TestDatabase>,
}

async fn memory() -> Backend {
    Backend {
        storages: Storages::in_memory(Vec::new(), false),
        _database: None,
    }
}

async fn postgres() -> Backend {
    let database = TestDatabase::create().await;
    let storages = Storages::postgres(&database.url, false)
        .await
        .expect("connects");
    Backend {
        storages,
        _database: Some(database),
    }
}

/// Declares each check once and runs it against both backends.
macro_rules! storage_suite {
    ($($check:ident),* $(,)?) => {
        mod memory_backend {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() { super::$check(super::memory().await).await })*
        }
        mod postgres_backend {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() { super::$check(super::postgres().await).await })*
        }
    };
}

storage_suite!(
    scrapers_read_after_write,
    get_scrapers_lists_by_id,
    assigned_ids_stop_at_the_largest_id_a_client_may_choose,
    search_scrapers_filters_by_name_and_last_id,
    unknown_scrapers_are_not_found,
    deleted_scraper_ids_are_never_reused,
    scraper_state_is_persisted,
    enqueue_then_dequeue_claims_the_job,
    a_second_active_job_of_a_scraper_is_refused,
    fifty_concurrent_enqueues_create_exactly_one_job,
    dequeue_is_fifo_within_a_priority,
    dequeue_takes_the_highest_priority_first,
    heartbeat_follows_the_job_state,
    one_heartbeat_for_many_jobs_names_the_lost_ones,
    released_jobs_are_pending_again_in_their_place,
    a_killed_job_is_never_flipped_back,
    dead_jobs_are_the_ones_without_recent_heartbeat,
    a_schedule_fire_creates_at_most_one_job,
    jobs_are_listed_newest_first_and_scoped_to_their_scraper,
    old_finished_jobs_are_pruned_per_scraper,
    four_workers_drain_ten_thousand_jobs_each_exactly_once,
    lease_is_exclusive_and_renewable,
    finished_jobs_are_counted_per_minute_and_status,
    ephemeral_runs_share_one_pruning_allowance,
    job_logs_are_read_in_pages,
    a_batch_of_completions_finishes_only_started_jobs,
    the_last_job_of_each_scraper_is_listed,
    fires_due_together_are_enqueued_together,
    text_with_nul_is_stored_as_the_replacement_character,
    a_claimed_job_whose_handler_never_started_goes_back_to_the_queue,
    only_jobs_still_started_are_marked_running,
    job_stamps_cover_the_jobs_of_the_scrapers_and_the_jobs_asked_for,
    a_failed_attempt_waits_in_the_queue_until_its_retry_is_due,
    a_lost_workers_job_is_retried_while_its_policy_allows,
);

fn scraper(name: &str) -> Scraper {
    serde_json::from_value(serde_json::json!({"name": name, "schedule": "every_hour", "handler": "extract", "config": {"params": {"url": "http://x"}}}))
        .unwrap()
}

/// Enqueues a manual run of the scraper with this id.
async fn enqueue(
    jobs: &dyn ScraperJobsStorage,
    scraper_id: i64,
    priority: ScraperJobPriority,
) -> Result<ScraperJob, Error> {
    jobs.add_scraper_job(
        &scraper_with_id(scraper_id),
        priority,
        EnqueueOrigin::Manual,
    )
    .await
}

/// The claim a claimed job was handed out with.
fn claim(job: &ScraperJob) -> Claim {
    Claim::of(job).expect("a claimed job")
}

/// A claim no worker holds: of a job never claimed, or one that does not exist.
fn stale(job_id: i64) -> Claim {
    Claim {
        job_id,
        claimed_at: chrono::DateTime::UNIX_EPOCH,
    }
}

/// A scraper with a given id, for queue tests that need many distinct scrapers (the queue
/// does not look scrapers up: it keeps the snapshot it is given).
fn scraper_with_id(id: i64) -> Scraper {
    Scraper {
        id,
        ..scraper(&format!("scraper {id}"))
    }
}

async fn scrapers_read_after_write(backend: Backend) {
    let scrapers = &backend.storages.scrapers;
    let created = scrapers.create_scraper(scraper("first")).await.unwrap();
    assert!(created.id > 0);
    assert_eq!(scrapers.get_scraper(created.id).await.unwrap(), created);
    // Every field comes back as written, the ones the original did not have included.
    let updated = Scraper {
        name: "renamed".into(),
        schedule: ScraperSchedule::Crontab,
        schedule_crontab: Some("0 9 * * 0".into()),
        schedule_timezone: Some("Europe/Berlin".into()),
        schedule_crontab_dialect: Some(CrontabDialect::Apscheduler),
        timeout_seconds: Some(90),
        retry: Some(RetryPolicy::default()),
        ..created.clone()
    };
    assert_eq!(
        scrapers.update_scraper(updated.clone()).await.unwrap(),
        updated
    );
    assert_eq!(scrapers.get_scraper(created.id).await.unwrap(), updated);
    assert_eq!(scrapers.delete_scraper(created.id).await.unwrap(), updated);
    assert_eq!(scrapers.maybe_get_scraper(created.id).await.unwrap(), None);
}

async fn get_scrapers_lists_by_id(backend: Backend) {
    let scrapers = &backend.storages.scrapers;
    let mut created = Vec::new();
    for index in 1..10 {
        created.push(
            scrapers
                .create_scraper(scraper(&format!("scraper {index}")))
                .await
                .unwrap(),
        );
    }
    assert_eq!(scrapers.get_scrapers().await.unwrap(), created);
    // An explicit id is kept, and later assigned ids do not collide with it.
    let explicit = scrapers
        .create_scraper(Scraper {
            id: 100,
            ..scraper("explicit")
        })
        .await
        .unwrap();
    assert_eq!(explicit.id, 100);
    assert!(scrapers.create_scraper(scraper("after")).await.unwrap().id > 100);
}

/// Once a client has taken the largest id (2^53 - 1), assigning one is refused with an error
/// naming the field, instead of handing out ids a browser cannot read exactly; explicit
/// ids below it still work.
async fn assigned_ids_stop_at_the_largest_id_a_client_may_choose(backend: Backend) {
    let scrapers = &backend.storages.scrapers;
    let largest = scrapers
        .create_scraper(Scraper {
            id: MAX_SCRAPER_ID,
            ..scraper("largest")
        })
        .await
        .unwrap();
    assert_eq!(largest.id, MAX_SCRAPER_ID);
    match scrapers.create_scraper(scraper("assigned")).await {
        Err(Error::InvalidScraper(errors)) => assert_eq!(errors[0].loc, ["scraper", "id"]),
        other => panic!("expected the id to be refused, got {other:?}"),
    }
    let explicit = scrapers
        .create_scraper(Scraper {
            id: 7,
            ..scraper("explicit")
        })
        .await
        .unwrap();
    assert_eq!(explicit.id, 7);
    assert_eq!(scrapers.get_scrapers().await.unwrap().len(), 2);
}

async fn search_scrapers_filters_by_name_and_last_id(backend: Backend) {
    let scrapers = &backend.storages.scrapers;
    let mut ids = Vec::new();
    for name in ["news a", "shop", "news b", "news c", "blog"] {
        ids.push(scrapers.create_scraper(scraper(name)).await.unwrap().id);
    }
    let names = |found: Vec<Scraper>| {
        found
            .into_iter()
            .map(|scraper| scraper.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            scrapers
                .search_scrapers(Some("news"), None, None)
                .await
                .unwrap()
        ),
        ["news a", "news b", "news c"]
    );
    assert_eq!(
        names(
            scrapers
                .search_scrapers(Some("news"), Some(2), None)
                .await
                .unwrap()
        ),
        ["news a", "news b"]
    );
    assert_eq!(
        names(
            scrapers
                .search_scrapers(Some("news"), Some(0), Some(ids[2]))
                .await
                .unwrap()
        ),
        ["news c"]
    );
    assert_eq!(
        names(
            scrapers
                .search_scrapers(Some("NEWS"), None, None)
                .await
                .unwrap()
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        scrapers
            .search_scrapers(None, None, None)
            .await
            .unwrap()
            .len(),
        5
    );
}

async fn unknown_scrapers_are_not_found(backend: Backend) {
    let scrapers = &backend.storages.scrapers;
    assert_eq!(
        scrapers.get_scraper(404).await,
        Err(Error::ScraperNotFound(404))
    );
    assert_eq!(scrapers.maybe_get_scraper(404).await, Ok(None));
    assert_eq!(
        scrapers.update_scraper(scraper_with_id(404)).await,
        Err(Error::ScraperNotFound(404))
    );
    assert_eq!(
        scrapers.delete_scraper(404).await,
        Err(Error::ScraperNotFound(404))
    );
}

async fn deleted_scraper_ids_are_never_reused(backend: Backend) {
    let scrapers = &backend.storages.scrapers;
    let first = scrapers.create_scraper(scraper("first")).await.unwrap();
    scrapers.delete_scraper(first.id).await.unwrap();
    let second = scrapers.create_scraper(scraper("second")).await.unwrap();
    assert!(second.id > first.id);
}

async fn scraper_state_is_persisted(backend: Backend) {
    let scrapers = &backend.storages.scrapers;
    let created = scrapers.create_scraper(scraper("stateful")).await.unwrap();
    scrapers
        .update_scraper_state(created.id, Some("page=2".into()))
        .await
        .unwrap();
    assert_eq!(
        scrapers
            .get_scraper(created.id)
            .await
            .unwrap()
            .state
            .as_deref(),
        Some("page=2")
    );
}

async fn enqueue_then_dequeue_claims_the_job(backend: Backend) {
    let jobs = &backend.storages.jobs;
    let enqueued = enqueue(&**jobs, 1, ScraperJobPriority::Utmost)
        .await
        .unwrap();
    assert_eq!(enqueued.status, ScraperJobStatus::Pending);
    assert_eq!(
        jobs.get_queue_len(ScraperJobPriority::Utmost)
            .await
            .unwrap(),
        1
    );
    let claimed = jobs.dequeue_scraper_jobs(10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!((claimed[0].id, claimed[0].scraper.id), (enqueued.id, 1));
    assert_eq!(claimed[0].status, ScraperJobStatus::Started);
    assert!(claimed[0].started_at.is_some());
    assert_eq!(
        jobs.get_queue_len(ScraperJobPriority::Utmost)
            .await
            .unwrap(),
        0
    );
    assert!(jobs.dequeue_scraper_jobs(10).await.unwrap().is_empty());
}

async fn a_second_active_job_of_a_scraper_is_refused(backend: Backend) {
    let jobs = &backend.storages.jobs;
    let first = enqueue(&**jobs, 1, ScraperJobPriority::Normal)
        .await
        .unwrap();
    let refused = enqueue(&**jobs, 1, ScraperJobPriority::High).await;
    assert_eq!(refused, Err(Error::ScraperHasActiveRun));
    let claimed = jobs.dequeue_scraper_jobs(1).await.unwrap().remove(0);
    assert_eq!(claimed.id, first.id);
    assert_eq!(
        enqueue(&**jobs, 1, ScraperJobPriority::High).await,
        Err(Error::ScraperHasActiveRun)
    );
    jobs.finish_scraper_job(
        claim(&claimed),
        ScraperJobStatus::Succeeded,
        Some("done".into()),
    )
    .await
    .unwrap();
    assert!(enqueue(&**jobs, 1, ScraperJobPriority::High).await.is_ok());
}

async fn fifty_concurrent_enqueues_create_exactly_one_job(backend: Backend) {
    let jobs = backend.storages.jobs.clone();
    let attempts = (0..50).map(|_| {
        let jobs = jobs.clone();
        tokio::spawn(async move { enqueue(&*jobs, 7, ScraperJobPriority::Normal).await })
    });
    let outcomes = futures_join_all(attempts).await;
    assert_eq!(outcomes.iter().filter(|outcome| outcome.is_ok()).count(), 1);
    assert!(outcomes
        .iter()
        .filter_map(|outcome| outcome.as_ref().err())
        .all(|error| *error == Error::ScraperHasActiveRun));
    assert_eq!(jobs.get_scraper_jobs(7).await.unwrap().len(), 1);
}

async fn futures_join_all<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut results = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        results.push(handle.await.expect("task completes"));
    }
    results
}

async fn dequeue_is_fifo_within_a_priority(backend: Backend) {
    let jobs = &backend.storages.jobs;
    let mut enqueued = Vec::new();
    for id in 1..=10 {
        enqueued.push(
            enqueue(&**jobs, id, ScraperJobPriority::Normal)
                .await
                .unwrap()
                .id,
        );
    }
    let mut dequeued = Vec::new();
    for _ in 0..10 {
        dequeued.extend(
            jobs.dequeue_scraper_jobs(1)
                .await
                .unwrap()
                .into_iter()
                .map(|job| job.id),
        );
    }
    assert_eq!(dequeued, enqueued);
}

async fn dequeue_takes_the_highest_priority_first(backend: Backend) {
    let jobs = &backend.storages.jobs;
    let mut ids = Vec::new();
    for (scraper_id, priority) in [
        (1, ScraperJobPriority::Normal),
        (2, ScraperJobPriority::High),
        (3, ScraperJobPriority::High),
        (4, ScraperJobPriority::Utmost),
    ] {
        ids.push(enqueue(&**jobs, scraper_id, priority).await.unwrap().id);
    }
    let mut order = Vec::new();
    while let Some(job) = jobs.dequeue_scraper_jobs(1).await.unwrap().pop() {
        order.push(job.id);
    }
    assert_eq!(order, [ids[3], ids[1], ids[2], ids[0]]);
    // A batch claim returns the same order.
    for (scraper_id, priority) in [
        (5, ScraperJobPriority::Normal),
        (6, ScraperJobPriority::Utmost),
    ] {
        enqueue(&**jobs, scraper_id, priority).await.unwrap();
    }
    let batch: Vec<i64> = jobs
        .dequeue_scraper_jobs(5)
        .await
        .unwrap()
        .into_iter()
        .map(|job| job.scraper.id)
        .collect();
    assert_eq!(batch, [6, 5]);
}

async fn heartbeat_follows_the_job_state(backend: Backend) {
    let jobs = &backend.storages.jobs;
    let job = enqueue(&**jobs, 1, ScraperJobPriority::Utmost)
        .await
        .unwrap();
    assert_eq!(
        jobs.heartbeat(stale(job.id)).await,
        Err(Error::PingNotStarted)
    );
    let claimed = jobs.dequeue_scraper_jobs(1).await.unwrap().remove(0);
    tokio::time::sleep(Duration::from_millis(5)).await; // let the clock move past the claim time
    jobs.heartbeat(claim(&claimed)).await.unwrap();
    let beaten = jobs.get_scraper_job(1, job.id).await.unwrap();
    assert!(beaten.last_active_at > claimed.last_active_at);
    let finished = jobs
        .finish_scraper_job(
            claim(&claimed),
            ScraperJobStatus::Succeeded,
            Some("ok".into()),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (finished.status, finished.result.as_deref()),
        (ScraperJobStatus::Succeeded, Some("ok"))
    );
    assert!(finished.finished_at.is_some());
    assert_eq!(
        jobs.heartbeat(claim(&claimed)).await,
        Err(Error::PingFinished)
    );
    assert_eq!(
        jobs.heartbeat(stale(999_999)).await,
        Err(Error::ScraperJobNotFound(999_999))
    );
}

/// Three jobs of scrapers 1, 2 and 3, enqueued and claimed in that order.
async fn claim_three(jobs: &dyn ScraperJobsStorage) -> [ScraperJob; 3] {
    for scraper_id in 1..=3 {
        enqueue(jobs, scraper_id, ScraperJobPriority::Normal)
            .await
            .unwrap();
    }
    let claimed = jobs.dequeue_scraper_jobs(3).await.unwrap();
    claimed.try_into().expect("three jobs claimed")
}

async fn one_heartbeat_for_many_jobs_names_the_lost_ones(backend: Backend) {
    let jobs = &backend.storages.jobs;
    let [alive, killed, finished] = &claim_three(&**jobs).await;
    jobs.kill_scraper_job(killed.scraper.id, killed.id)
        .await
        .unwrap();
    jobs.finish_scraper_job(claim(finished), ScraperJobStatus::Succeeded, None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await; // let the clock move past the claim time

    let mut lost = jobs
        .heartbeat_jobs(&[claim(alive), claim(killed), claim(finished), stale(999_999)])
        .await
        .unwrap();
    lost.sort();
    assert_eq!(lost, [killed.id, finished.id, 999_999]);
    let beaten = jobs
        .get_scraper_job(alive.scraper.id, alive.id)
        .await
        .unwrap();
    assert!(beaten.last_active_at > alive.last_active_at);
    assert_eq!(jobs.heartbeat_jobs(&[]).await.unwrap(), Vec::<i64>::new());
}

async fn released_jobs_are_pending_again_in_their_place(backend: Backend) {
    let jobs = &backend.storages.jobs;
    let [first, second, finished] = &claim_three(&**jobs).await;
    jobs.finish_scraper_job(claim(finished), ScraperJobStatus::Succeeded, None)
        .await
        .unwrap();
    let woken = jobs.enqueued();
    let woken = woken.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();

    let released = jobs
        .release_scraper_jobs(&[claim(second), claim(first), claim(finished), stale(999_999)])
        .await
        .unwrap();
    assert_eq!(released, 2, "only the started ones go back");
    tokio::time::timeout(Duration::from_secs(5), woken)
        .await
        .expect("workers are woken for released jobs");
    let pending = jobs
        .get_scraper_job(first.scraper.id, first.id)
        .await
        .unwrap();
    assert_eq!(
        (pending.status, pending.started_at, pending.last_active_at),
        (ScraperJobStatus::Pending, None, None)
    );
    assert_eq!(
        jobs.get_scraper_job(finished.scraper.id, finished.id)
            .await
            .unwrap()
            .status,
        ScraperJobStatus::Succeeded
    );
    // Claimed again in their original order, and still one active job per scraper.
    let again: Vec<i64> = jobs
        .dequeue_scraper_jobs(10)
        .await
        .unwrap()
        .iter()
        .map(|job| job.id)
        .collect();
    assert_eq!(again, [first.id, second.id]);
    assert_eq!(
        enqueue(&**jobs, first.scraper.id, ScraperJobPriority::Normal).await,
        Err(Error::ScraperHasActiveRun)
    );
}

async fn a_killed_job_is_never_flipped_back(backend: Backend) {
    let jobs = &backend.storages.jobs;
    let pending = enqueue(&**jobs, 1, ScraperJobPriority::Normal)
        .await
        .unwrap();
    assert_eq!(
        jobs.kill_scraper_job(1, pending.id).await.unwrap().status,
        ScraperJobStatus::Killed
    );
    assert!(
        jobs.dequeue_scraper_jobs(10).await.unwrap().is_empty(),
        "a killed pending job is never claimed"
    );

    let running = enqueue(&**jobs, 1, ScraperJobPriority::Normal)
        .await
        .unwrap();
    let claimed = jobs.dequeue_scraper_jobs(1).await.unwrap().remove(0);
    jobs.kill_scraper_job(1, running.id).await.unwrap();
    // The worker finishes late: nothing changes.
    assert_eq!(
        jobs.finish_scraper_job(
            claim(&claimed),
            ScraperJobStatus::Succeeded,
            Some("late".into())
        )
        .await
        .unwrap(),
        None
    );
    let stored = jobs.get_scraper_job(1, running.id).await.unwrap();
    assert_eq!(
        (stored.status, stored.result),
        (ScraperJobStatus::Killed, None)
    );
    assert_eq!(
        jobs.kill_scraper_job(1, running.id).await,
        Err(Error::JobNotActive(running.id))
    );
    assert_eq!(
        jobs.kill_scraper_job(2, running.id).await,
        Err(Error::ScraperJobNotFound(running.id))
    );
}

async fn dead_jobs_are_the_ones_without_recent_heartbeat(backend: Backend) {
    let jobs = &backend.storages.jobs;
    let quiet = enqueue(&**jobs, 1, ScraperJobPriority::Normal)
        .await
        .unwrap();
    let pending = enqueue(&**jobs, 2, ScraperJobPriority::Normal)
        .await
        .unwrap();
    let claimed = jobs.dequeue_scraper_jobs(1).await.unwrap();
    assert_eq!(
        jobs.start_scraper_jobs(&[claim(&claimed[0])])
            .await
            .unwrap(),
        [quiet.id]
    );
    assert!(jobs
        .mark_dead_scraper_jobs(Duration::from_secs(30))
        .await
        .unwrap()
        .is_empty());
    // Let the heartbeat age past a short timeout.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let dead = jobs
        .mark_dead_scraper_jobs(Duration::from_millis(10))
        .await
        .unwrap();
    assert_eq!(
        dead.iter()
            .map(|job| (job.id, job.status))
            .collect::<Vec<_>>(),
        [(quiet.id, ScraperJobStatus::Dead)]
    );
    assert!(dead[0].finished_at.is_some());
    assert_eq!(
        jobs.get_scraper_job(2, pending.id).await.unwrap().status,
        ScraperJobStatus::Pending
    );
    // The worker that lost the job reports late: the job stays dead, the scraper is free.
    assert_eq!(
        jobs.finish_scraper_job(claim(&claimed[0]), ScraperJobStatus::Succeeded, None)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        jobs.heartbeat(claim(&claimed[0])).await,
        Err(Error::PingFinished)
    );
    assert!(enqueue(&**jobs, 1, ScraperJobPriority::Normal)
        .await
        .is_ok());
}

async fn a_schedule_fire_creates_at_most_one_job(backend: Backend) {
    let jobs = &backend.storages.jobs;
    let fire = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let job = jobs
        .add_scraper_job(
            &scraper_with_id(1),
            ScraperJobPriority::Normal,
            EnqueueOrigin::Scheduled(fire),
        )
        .await
        .unwrap();
    let claimed = jobs.dequeue_scraper_jobs(1).await.unwrap().remove(0);
    assert_eq!(claimed.id, job.id);
    jobs.finish_scraper_job(claim(&claimed), ScraperJobStatus::Succeeded, None)
        .await
        .unwrap();
    // A stale leader fires the same instant again after the job finished: refused.
    assert_eq!(
        jobs.add_scraper_job(
            &scraper_with_id(1),
            ScraperJobPriority::Normal,
            EnqueueOrigin::Scheduled(fire)
        )
        .await,
        Err(Error::ScraperHasActiveRun)
    );
    let next = fire + chrono::Duration::seconds(1);
    assert!(jobs
        .add_scraper_job(
            &scraper_with_id(1),
            ScraperJobPriority::Normal,
            EnqueueOrigin::Scheduled(next)
        )
        .await
        .is_ok());
}

async fn jobs_are_listed_newest_first_and_scoped_to_their_scraper(backend: Backend) {
    let jobs = &backend.storages.jobs;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let job = enqueue(&**jobs, 1, ScraperJobPriority::Normal)
            .await
            .unwrap();
        jobs.kill_scraper_job(1, job.id).await.unwrap();
        ids.push(job.id);
    }
    let other = enqueue(&**jobs, 2, ScraperJobPriority::Normal)
        .await
        .unwrap();
    let listed: Vec<i64> = jobs
        .get_scraper_jobs(1)
        .await
        .unwrap()
        .into_iter()
        .map(|job| job.id)
        .collect();
    ids.reverse();
    assert_eq!(listed, ids);
    assert!(jobs.get_scraper_jobs(3).await.unwrap().is_empty());
    assert_eq!(
        jobs.get_scraper_job(1, other.id).await,
        Err(Error::ScraperJobNotFound(other.id))
    );
    assert_eq!(
        jobs.get_scraper_job(2, other.id).await.unwrap().scraper.id,
        2
    );
}

async fn old_finished_jobs_are_pruned_per_scraper(backend: Backend) {
    let jobs = &backend.storages.jobs;
    for scraper_id in [1, 2] {
        for _ in 0..10 {
            let job = enqueue(&**jobs, scraper_id, ScraperJobPriority::Normal)
                .await
                .unwrap();
            jobs.kill_scraper_job(scraper_id, job.id).await.unwrap();
        }
    }
    let active = enqueue(&**jobs, 1, ScraperJobPriority::Normal)
        .await
        .unwrap();
    let newest_before: Vec<i64> = jobs
        .get_scraper_jobs(1)
        .await
        .unwrap()
        .iter()
        .skip(1)
        .take(5)
        .map(|job| job.id)
        .collect();
    assert_eq!(jobs.delete_old_scraper_jobs(5).await.unwrap(), 10);
    let kept = jobs.get_scraper_jobs(1).await.unwrap();
    assert_eq!(kept[0].id, active.id, "active jobs are never pruned");
    assert_eq!(
        kept.iter().skip(1).map(|job| job.id).collect::<Vec<_>>(),
        newest_before
    );
    assert_eq!(jobs.get_scraper_jobs(2).await.unwrap().len(), 5);
}

async fn four_workers_drain_ten_thousand_jobs_each_exactly_once(backend: Backend) {
    const JOBS: i64 = 10_000;
    let jobs = backend.storages.jobs.clone();
    // Enqueue from 8 tasks at once (one active job per scraper: each job has its own scraper).
    let enqueuers = (0..8).map(|lane| {
        let jobs = jobs.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for scraper_id in (1..=JOBS).filter(|id| id % 8 == lane) {
                ids.push(
                    enqueue(&*jobs, scraper_id, ScraperJobPriority::Normal)
                        .await
                        .unwrap()
                        .id,
                );
            }
            ids
        })
    });
    let enqueued: HashSet<i64> = futures_join_all(enqueuers)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(enqueued.len() as i64, JOBS);

    let workers = (0..4).map(|_| {
        let jobs = jobs.clone();
        tokio::spawn(async move {
            let mut ran = Vec::new();
            loop {
                let claimed = jobs.dequeue_scraper_jobs(25).await.unwrap();
                if claimed.is_empty() {
                    return ran;
                }
                for job in claimed {
                    assert!(jobs
                        .finish_scraper_job(claim(&job), ScraperJobStatus::Succeeded, None)
                        .await
                        .unwrap()
                        .is_some());
                    ran.push(job.id);
                }
            }
        })
    });
    let ran: Vec<i64> = futures_join_all(workers)
        .await
        .into_iter()
        .flatten()
        .collect();
    let unique: HashSet<i64> = ran.iter().copied().collect();
    assert_eq!(ran.len(), unique.len(), "a job ran twice");
    assert_eq!(unique, enqueued, "a job was lost");
}

async fn lease_is_exclusive_and_renewable(backend: Backend) {
    let leases = Arc::clone(&backend.storages.leases);
    let minute = Duration::from_secs(60);
    let lease = leases
        .maybe_acquire_lease("scheduler", "owner-a", minute)
        .await
        .unwrap()
        .expect("free lease");
    assert_eq!(
        (lease.name.as_str(), lease.owner_id.as_str()),
        ("scheduler", "owner-a")
    );
    assert!(
        leases
            .maybe_acquire_lease("other", "owner-b", minute)
            .await
            .unwrap()
            .is_some(),
        "lease names are independent"
    );
    assert!(leases
        .maybe_acquire_lease("scheduler", "owner-b", minute)
        .await
        .unwrap()
        .is_none());
    let renewed = leases
        .maybe_acquire_lease("scheduler", "owner-a", minute)
        .await
        .unwrap()
        .expect("the owner renews");
    assert!(renewed.acquired_until >= lease.acquired_until);
    leases.release_lease("scheduler", "owner-b").await.unwrap();
    assert!(
        leases
            .maybe_acquire_lease("scheduler", "owner-b", minute)
            .await
            .unwrap()
            .is_none(),
        "only the owner releases"
    );
    leases.release_lease("scheduler", "owner-a").await.unwrap();
    assert!(leases
        .maybe_acquire_lease("scheduler", "owner-b", minute)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn an_expired_memory_lease_goes_to_the_next_owner() {
    let leases = memory().await.storages.leases;
    leases
        .maybe_acquire_lease("scheduler", "owner-a", Duration::ZERO)
        .await
        .unwrap()
        .expect("free lease");
    assert!(leases
        .maybe_acquire_lease("scheduler", "owner-b", Duration::from_secs(60))
        .await
        .unwrap()
        .is_some());
}

/// A statement that loses a deadlock (or a serialization conflict) is worth running again:
/// the worker's retries of its starts, heartbeats and completions depend on it.
#[tokio::test]
async fn a_lost_deadlock_is_a_transient_error() {
    use sqlx::Connection;
    let database = TestDatabase::create().await;
    let mut first = sqlx::PgConnection::connect(&database.url).await.unwrap();
    let mut second = sqlx::PgConnection::connect(&database.url).await.unwrap();
    for statement in [
        "CREATE TABLE rows (id int PRIMARY KEY)",
        "INSERT INTO rows VALUES (1), (2)",
    ] {
        sqlx::query(statement).execute(&mut first).await.unwrap();
    }
    // Each takes one row, then wants the other's: one of the two is chosen to fail.
    let mut one = first.begin().await.unwrap();
    let mut two = second.begin().await.unwrap();
    let update = |id: i32| sqlx::query("UPDATE rows SET id = id WHERE id = $1").bind(id);
    update(1).execute(&mut *one).await.unwrap();
    update(2).execute(&mut *two).await.unwrap();
    let (a, b) = tokio::join!(update(2).execute(&mut *one), update(1).execute(&mut *two));
    let lost = a.err().or(b.err()).expect("a deadlock");
    let error = engine::Error::from(lost);
    assert!(error.is_transient(), "{}", error.report());
}

#[tokio::test]
async fn a_postgres_lease_is_lost_with_its_connection_and_taken_over() {
    let database = TestDatabase::create().await;
    let first = Storages::postgres(&database.url, false).await.unwrap();
    let second = Storages::postgres(&database.url, false).await.unwrap();
    let minute = Duration::from_secs(60);
    assert!(first
        .leases
        .maybe_acquire_lease("scheduler", "first", minute)
        .await
        .unwrap()
        .is_some());
    assert!(second
        .leases
        .maybe_acquire_lease("scheduler", "second", minute)
        .await
        .unwrap()
        .is_none());
    // Kill the holder's lease connection, as a network partition or crash would.
    let admin = engine::storage::postgres::PostgresStorage::connect(&database.url, false)
        .await
        .unwrap();
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) AS terminated",
    )
    .fetch_one(admin.pool())
    .await
    .unwrap();
    assert_eq!(killed, 1);
    assert!(
        first
            .leases
            .maybe_acquire_lease("scheduler", "first", minute)
            .await
            .unwrap()
            .is_none(),
        "the holder notices the loss"
    );
    assert!(
        second
            .leases
            .maybe_acquire_lease("scheduler", "second", minute)
            .await
            .unwrap()
            .is_some(),
        "another replica takes over"
    );
}

/// A holder that stops renewing (frozen by SIGSTOP, or cut off while its TCP connection
/// stays open) keeps its advisory lock, but not the lease: once the lease row expires, a
/// contender ends the holder's connection and takes over, and the old holder learns it lost.
#[tokio::test]
async fn a_frozen_postgres_lease_holder_is_replaced_once_its_lease_expires() {
    let database = TestDatabase::create().await;
    let frozen = Storages::postgres(&database.url, false).await.unwrap();
    let contender = Storages::postgres(&database.url, false).await.unwrap();
    let short = Duration::from_millis(500);
    assert!(frozen
        .leases
        .maybe_acquire_lease("scheduler", "frozen", short)
        .await
        .unwrap()
        .is_some());
    assert!(contender
        .leases
        .maybe_acquire_lease("scheduler", "contender", short)
        .await
        .unwrap()
        .is_none());
    // The holder says nothing from now on; the contender keeps trying, as followers do.
    let taken_over = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(lease) = contender
                .leases
                .maybe_acquire_lease("scheduler", "contender", short)
                .await
                .unwrap()
            {
                return lease;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the contender takes the lease over once it expired");
    assert_eq!(taken_over.owner_id, "contender");
    assert!(
        frozen
            .leases
            .maybe_acquire_lease("scheduler", "frozen", short)
            .await
            .unwrap()
            .is_none(),
        "the old holder, waking up, finds its lease gone"
    );
    assert!(
        contender
            .leases
            .maybe_acquire_lease("scheduler", "contender", short)
            .await
            .unwrap()
            .is_some(),
        "the new holder renews"
    );
}

async fn finished_jobs_are_counted_per_minute_and_status(backend: Backend) {
    let jobs = &backend.storages.jobs;
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    for (scraper_id, status) in [
        (1, ScraperJobStatus::Succeeded),
        (2, ScraperJobStatus::Succeeded),
        (3, ScraperJobStatus::Failed),
    ] {
        enqueue(&**jobs, scraper_id, ScraperJobPriority::Normal)
            .await
            .unwrap();
        let claimed = jobs.dequeue_scraper_jobs(1).await.unwrap().remove(0);
        jobs.finish_scraper_job(claim(&claimed), status, None)
            .await
            .unwrap();
    }
    enqueue(&**jobs, 4, ScraperJobPriority::Normal)
        .await
        .unwrap();
    let counts = jobs.count_finished_jobs(before).await.unwrap();
    let total = |status| {
        counts
            .iter()
            .filter(|count| count.status == status)
            .map(|count| count.count)
            .sum::<u64>()
    };
    assert_eq!(
        (
            total(ScraperJobStatus::Succeeded),
            total(ScraperJobStatus::Failed)
        ),
        (2, 1)
    );
    assert!(counts.iter().all(|count| count.minute.timestamp() % 60 == 0
        && count.minute >= before - chrono::Duration::minutes(1)));
    assert!(jobs
        .count_finished_jobs(chrono::Utc::now() + chrono::Duration::minutes(1))
        .await
        .unwrap()
        .is_empty());
}

async fn ephemeral_runs_share_one_pruning_allowance(backend: Backend) {
    let jobs = &backend.storages.jobs;
    for ephemeral_id in -20..-10 {
        let job = enqueue(&**jobs, ephemeral_id, ScraperJobPriority::Normal)
            .await
            .unwrap();
        jobs.kill_scraper_job(ephemeral_id, job.id).await.unwrap();
    }
    assert_eq!(jobs.delete_old_scraper_jobs(3).await.unwrap(), 7);
}

async fn job_logs_are_read_in_pages(backend: Backend) {
    let jobs = &backend.storages.jobs;
    let job = enqueue(&**jobs, 1, ScraperJobPriority::Normal)
        .await
        .unwrap();
    let lines: Vec<engine::model::JobLogLine> = (1..=250)
        .map(|id| engine::model::JobLogLine {
            id,
            at: chrono::Utc::now(),
            level: engine::model::LogLevel::Info,
            message: format!("line {id}"),
        })
        .collect();
    jobs.append_job_log(job.id, &lines[..100]).await.unwrap();
    jobs.append_job_log(job.id, &lines[100..]).await.unwrap();
    let first = jobs.get_job_log(job.id, None, 100).await.unwrap();
    assert_eq!(
        (first.len(), first[0].message.as_str(), first[99].id),
        (100, "line 1", 100)
    );
    let rest = jobs.get_job_log(job.id, Some(200), 100).await.unwrap();
    assert_eq!(
        rest.iter().map(|line| line.id).collect::<Vec<_>>(),
        (201..=250).collect::<Vec<_>>()
    );
    assert!(jobs
        .get_job_log(job.id, Some(250), 100)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        jobs.append_job_log(999_999, &lines[..1]).await,
        Err(Error::ScraperJobNotFound(999_999))
    );
}

async fn a_batch_of_completions_finishes_only_started_jobs(backend: Backend) {
    let jobs = &backend.storages.jobs;
    let claimed = claim_three(&**jobs).await;
    let ids = claimed.each_ref().map(|job| job.id);
    let claims = claimed.each_ref().map(claim);
    jobs.kill_scraper_job(2, ids[1]).await.unwrap();
    let line = |id: i64, message: &str| engine::model::JobLogLine {
        id,
        at: chrono::Utc::now(),
        level: engine::model::LogLevel::Info,
        message: message.into(),
    };
    let completions: Vec<Completion> = vec![
        Completion {
            claim: claims[0],
            status: ScraperJobStatus::Succeeded,
            result: Some("one".into()),
            log: vec![line(1, "first"), line(2, "done")],
            retry: None,
        },
        Completion {
            claim: claims[1],
            status: ScraperJobStatus::Succeeded,
            result: Some("late".into()),
            log: vec![line(1, "too late")],
            retry: None,
        },
        Completion {
            claim: claims[2],
            status: ScraperJobStatus::Failed,
            result: Some("boom".into()),
            log: vec![],
            retry: None,
        },
        // Pruned meanwhile: neither it nor its log line may fail the batch.
        Completion {
            claim: stale(999_999),
            status: ScraperJobStatus::Succeeded,
            result: None,
            log: vec![line(1, "gone")],
            retry: None,
        },
    ];
    assert_eq!(
        jobs.finish_scraper_jobs(&completions).await.unwrap(),
        [true, false, true, false]
    );
    let first = jobs.get_scraper_job(1, ids[0]).await.unwrap();
    assert_eq!(
        (first.status, first.result.as_deref()),
        (ScraperJobStatus::Succeeded, Some("one"))
    );
    assert!(first.finished_at.is_some());
    let killed = jobs.get_scraper_job(2, ids[1]).await.unwrap();
    assert_eq!(
        (killed.status, killed.result),
        (ScraperJobStatus::Killed, None)
    );
    assert_eq!(
        jobs.get_scraper_job(3, ids[2]).await.unwrap().status,
        ScraperJobStatus::Failed
    );
    assert_eq!(jobs.get_job_log(ids[0], None, 10).await.unwrap().len(), 2);
    assert_eq!(
        jobs.get_job_log(ids[1], None, 10).await.unwrap()[0].message,
        "too late",
        "a lost job's log is still kept"
    );
    assert!(jobs
        .get_job_log(999_999, None, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn the_last_job_of_each_scraper_is_listed(backend: Backend) {
    let jobs = &backend.storages.jobs;
    let mut newest = std::collections::HashMap::new();
    for scraper_id in [1, 1, 2, 1] {
        let job = enqueue(&**jobs, scraper_id, ScraperJobPriority::Normal)
            .await
            .unwrap();
        jobs.kill_scraper_job(scraper_id, job.id).await.unwrap();
        newest.insert(scraper_id, job.id);
    }
    let mut last: Vec<(i64, i64)> = jobs
        .get_last_jobs()
        .await
        .unwrap()
        .into_iter()
        .map(|job| (job.scraper.id, job.id))
        .collect();
    last.sort();
    assert_eq!(last, [(1, newest[&1]), (2, newest[&2])]);
}

async fn fires_due_together_are_enqueued_together(backend: Backend) {
    let jobs = &backend.storages.jobs;
    let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    enqueue(&**jobs, 2, ScraperJobPriority::Normal)
        .await
        .unwrap();
    let fires: Vec<ScheduledFire> = (1..=3)
        .map(|id| ScheduledFire {
            scraper: Scraper {
                schedule_priority: ScraperJobPriority::High,
                ..scraper_with_id(id)
            },
            at,
        })
        .collect();
    let outcomes = jobs.add_scheduled_jobs(&fires).await.unwrap();
    assert!(outcomes[0].is_ok() && outcomes[2].is_ok());
    assert_eq!(
        outcomes[1],
        Err(Error::ScraperHasActiveRun),
        "scraper 2 is still active"
    );
    let job = outcomes[0].as_ref().unwrap();
    assert_eq!(
        (job.scraper.id, job.priority, job.status),
        (1, ScraperJobPriority::High, ScraperJobStatus::Pending)
    );
    // The same fire again, after those jobs finished: refused, whoever fires it.
    for claimed in jobs.dequeue_scraper_jobs(10).await.unwrap() {
        jobs.finish_scraper_job(claim(&claimed), ScraperJobStatus::Succeeded, None)
            .await
            .unwrap();
    }
    let again = jobs.add_scheduled_jobs(&fires[..1]).await.unwrap();
    assert_eq!(again, [Err(Error::ScraperHasActiveRun)]);
}

async fn text_with_nul_is_stored_as_the_replacement_character(backend: Backend) {
    let storages = &backend.storages;
    let mut named = scraper("binary\0page");
    named.config.params =
        Some(serde_json::from_value(serde_json::json!({"url\0": "http://x/\0"})).unwrap());
    let stored = storages.scrapers.create_scraper(named).await.unwrap();
    assert_eq!(stored.name, "binary\u{FFFD}page");
    let read = storages.scrapers.get_scraper(stored.id).await.unwrap();
    assert_eq!(read, stored);
    // A filter holding NUL finds the name as stored, instead of failing the search.
    let found = storages
        .scrapers
        .search_scrapers(Some("y\0p"), None, None)
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|scraper| scraper.id).collect::<Vec<_>>(),
        [stored.id]
    );
    assert_eq!(
        serde_json::to_value(&read.config.params).unwrap(),
        serde_json::json!({"url\u{FFFD}": "http://x/\u{FFFD}"})
    );
    let with_state = storages
        .scrapers
        .update_scraper_state(stored.id, Some("\0state".into()))
        .await
        .unwrap();
    assert_eq!(with_state.state.as_deref(), Some("\u{FFFD}state"));

    // A batch where one job's result and log hold NUL: every job of the batch is recorded.
    let jobs = &storages.jobs;
    let claimed = claim_three(&**jobs).await;
    let ids = claimed.each_ref().map(|job| job.id);
    let line = |message: &str| engine::model::JobLogLine {
        id: 1,
        at: chrono::Utc::now(),
        level: engine::model::LogLevel::Info,
        message: message.into(),
    };
    let completions: Vec<Completion> = claimed
        .iter()
        .enumerate()
        .map(|(index, job)| Completion {
            claim: claim(job),
            status: ScraperJobStatus::Succeeded,
            result: Some(if index == 1 {
                "%PDF\0\0binary".into()
            } else {
                format!("job {index}")
            }),
            log: vec![line(if index == 1 { "read \0 bytes" } else { "fine" })],
            retry: None,
        })
        .collect();
    assert_eq!(
        jobs.finish_scraper_jobs(&completions).await.unwrap(),
        [true, true, true]
    );
    for (index, job_id) in ids.iter().enumerate() {
        let job = jobs
            .get_scraper_job(index as i64 + 1, *job_id)
            .await
            .unwrap();
        assert_eq!(job.status, ScraperJobStatus::Succeeded);
        let log = jobs.get_job_log(*job_id, None, 10).await.unwrap();
        if index == 1 {
            assert_eq!(job.result.as_deref(), Some("%PDF\u{FFFD}\u{FFFD}binary"));
            assert_eq!(log[0].message, "read \u{FFFD} bytes");
        } else {
            assert_eq!(job.result, Some(format!("job {index}")));
            assert_eq!(log[0].message, "fine");
        }
    }

    // One at a time too, and a snapshot holding NUL (an ephemeral run's).
    let mut ephemeral = scraper_with_id(-7);
    ephemeral.state = Some("\0".into());
    let job = jobs
        .add_scraper_job(
            &ephemeral,
            ScraperJobPriority::Normal,
            EnqueueOrigin::Manual,
        )
        .await
        .unwrap();
    assert_eq!(job.scraper.state.as_deref(), Some("\u{FFFD}"));
    let claimed = jobs.dequeue_scraper_jobs(1).await.unwrap().remove(0);
    jobs.append_job_log(job.id, &[line("\0")]).await.unwrap();
    let finished = jobs
        .finish_scraper_job(claim(&claimed), ScraperJobStatus::Failed, Some("\0".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(finished.result.as_deref(), Some("\u{FFFD}"));
    assert_eq!(
        jobs.get_job_log(job.id, None, 10).await.unwrap()[0].message,
        "\u{FFFD}"
    );
}

async fn a_claimed_job_whose_handler_never_started_goes_back_to_the_queue(backend: Backend) {
    let jobs = &backend.storages.jobs;
    let first = enqueue(&**jobs, 1, ScraperJobPriority::Normal)
        .await
        .unwrap();
    let second = enqueue(&**jobs, 2, ScraperJobPriority::Normal)
        .await
        .unwrap();
    // A worker claims both, one for a free slot and one ahead, then is killed before the
    // second one's handler starts (or the claim's reply never reached it).
    let claimed = jobs.dequeue_scraper_jobs(2).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let (first_claim, lost_claim) = (claim(&claimed[0]), claim(&claimed[1]));
    assert_eq!(
        (first_claim.job_id, lost_claim.job_id),
        (first.id, second.id)
    );
    assert_eq!(
        jobs.start_scraper_jobs(&[first_claim]).await.unwrap(),
        [first.id]
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let rescued = jobs
        .mark_dead_scraper_jobs(Duration::from_millis(10))
        .await
        .unwrap();
    let mut outcome: Vec<(i64, ScraperJobStatus)> =
        rescued.iter().map(|job| (job.id, job.status)).collect();
    outcome.sort();
    assert_eq!(
        outcome,
        [
            (first.id, ScraperJobStatus::Dead),
            (second.id, ScraperJobStatus::Pending)
        ]
    );
    let requeued = jobs.get_scraper_job(2, second.id).await.unwrap();
    assert_eq!(
        (requeued.status, requeued.started_at, requeued.finished_at),
        (ScraperJobStatus::Pending, None, None)
    );
    // It is claimed again like any pending job, and can be marked running this time.
    let again = jobs.dequeue_scraper_jobs(5).await.unwrap();
    assert_eq!(
        again.iter().map(|job| job.id).collect::<Vec<_>>(),
        [second.id]
    );
    let new_claim = claim(&again[0]);
    assert_ne!(new_claim, lost_claim);
    // The worker that lost it wakes up (it was frozen, say) and goes on with the old claim:
    // it can neither start, keep alive, hand back nor finish what another worker now holds.
    assert!(jobs
        .start_scraper_jobs(&[lost_claim])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        jobs.heartbeat_jobs(&[lost_claim]).await.unwrap(),
        [second.id]
    );
    assert_eq!(jobs.release_scraper_jobs(&[lost_claim]).await.unwrap(), 0);
    assert_eq!(
        jobs.finish_scraper_jobs(&[Completion {
            claim: lost_claim,
            status: ScraperJobStatus::Succeeded,
            result: Some("ran twice".into()),
            log: Vec::new(),
            retry: None,
        }])
        .await
        .unwrap(),
        [false]
    );
    assert_eq!(
        jobs.start_scraper_jobs(&[new_claim]).await.unwrap(),
        [second.id]
    );
    let running = jobs.get_scraper_job(2, second.id).await.unwrap();
    assert_eq!(
        (running.status, running.result),
        (ScraperJobStatus::Started, None)
    );
    // A job marked running is never handed back: it ran.
    assert_eq!(jobs.release_scraper_jobs(&[new_claim]).await.unwrap(), 0);
}

async fn only_jobs_still_started_are_marked_running(backend: Backend) {
    let jobs = &backend.storages.jobs;
    let claimed = claim_three(&**jobs).await;
    let ids = claimed.each_ref().map(|job| job.id);
    let claims = claimed.each_ref().map(claim);
    jobs.kill_scraper_job(2, ids[1]).await.unwrap();
    jobs.release_scraper_jobs(&[claims[2]]).await.unwrap();
    assert_eq!(jobs.start_scraper_jobs(&claims).await.unwrap(), [ids[0]]);
    // Asking again (a lost reply) gives the same answer.
    assert_eq!(jobs.start_scraper_jobs(&claims).await.unwrap(), [ids[0]]);
    // Only the started job is alive; the killed and the handed-back ones are not this
    // worker's any more.
    assert_eq!(
        jobs.heartbeat_jobs(&claims).await.unwrap(),
        [ids[1], ids[2]]
    );
}

async fn job_stamps_cover_the_jobs_of_the_scrapers_and_the_jobs_asked_for(backend: Backend) {
    let jobs = &*backend.storages.jobs;
    let done = enqueue(jobs, 1, ScraperJobPriority::Normal).await.unwrap();
    let other = enqueue(jobs, 2, ScraperJobPriority::Normal).await.unwrap();
    enqueue(jobs, 3, ScraperJobPriority::Normal).await.unwrap();
    let claimed = jobs.dequeue_scraper_jobs(3).await.unwrap();
    assert_eq!(claimed.len(), 3);
    assert_eq!(claimed[0].id, done.id);
    jobs.finish_scraper_job(
        claim(&claimed[0]),
        ScraperJobStatus::Succeeded,
        Some("ok".into()),
    )
    .await
    .unwrap();
    let pending = enqueue(jobs, 1, ScraperJobPriority::Normal).await.unwrap();
    let lines: Vec<engine::model::JobLogLine> = (1..=3)
        .map(|id| engine::model::JobLogLine {
            id,
            at: chrono::Utc::now(),
            level: engine::model::LogLevel::Info,
            message: format!("line {id}"),
        })
        .collect();
    jobs.append_job_log(done.id, &lines).await.unwrap();
    jobs.append_job_log(other.id, &lines[..2]).await.unwrap();

    // Scraper 1's jobs, and job `other` (of scraper 2) by id; an unknown id is left out.
    let mut stamps = jobs
        .get_job_stamps(&[1], &[other.id, pending.id, 999_999])
        .await
        .unwrap();
    stamps.sort_by_key(|stamp| stamp.id);
    let ids: Vec<i64> = stamps.iter().map(|stamp| stamp.id).collect();
    assert_eq!(ids, [done.id, other.id, pending.id]);
    for stamp in &stamps {
        let job = jobs
            .get_scraper_job(stamp.scraper_id, stamp.id)
            .await
            .unwrap();
        assert_eq!(
            (
                stamp.status,
                stamp.started_at,
                stamp.last_active_at,
                stamp.finished_at
            ),
            (
                job.status,
                job.started_at,
                job.last_active_at,
                job.finished_at
            ),
            "job {}",
            job.id
        );
    }
    // Last log lines only for the jobs asked for by id: `done` has lines but was not.
    let last_lines: Vec<Option<i64>> = stamps.iter().map(|stamp| stamp.last_log_line).collect();
    assert_eq!(last_lines, [None, Some(2), None]);
    assert_eq!(
        stamps
            .iter()
            .map(|stamp| stamp.scraper_id)
            .collect::<Vec<_>>(),
        [1, 2, 1]
    );
    assert!(jobs.get_job_stamps(&[], &[]).await.unwrap().is_empty());
}

/// A scraper with this id whose jobs run under `policy`.
fn retried_scraper(id: i64, policy: RetryPolicy) -> Scraper {
    Scraper {
        retry: Some(policy),
        ..scraper_with_id(id)
    }
}

/// Claims the one due job (of scraper `scraper_id`) and marks it running.
async fn run_next(jobs: &dyn ScraperJobsStorage, scraper_id: i64) -> ScraperJob {
    let mut claimed = jobs.dequeue_scraper_jobs(10).await.unwrap();
    assert_eq!(
        claimed.iter().map(|job| job.scraper.id).collect::<Vec<_>>(),
        [scraper_id]
    );
    let job = claimed.remove(0);
    assert_eq!(
        jobs.start_scraper_jobs(&[claim(&job)]).await.unwrap(),
        [job.id]
    );
    job
}

/// A failed attempt's completion that asks for another after `delay`.
fn failed_attempt(job: &ScraperJob, result: &str, delay: Duration) -> Completion {
    Completion {
        claim: claim(job),
        status: ScraperJobStatus::Failed,
        result: Some(result.into()),
        log: Vec::new(),
        retry: Some(NextAttempt {
            reason: RetryReason::Error,
            delay,
        }),
    }
}

async fn a_failed_attempt_waits_in_the_queue_until_its_retry_is_due(backend: Backend) {
    let jobs = &*backend.storages.jobs;
    let policy = RetryPolicy {
        retry_on: vec![RetryReason::Error],
        ..RetryPolicy::default()
    };
    let later = jobs
        .add_scraper_job(
            &retried_scraper(1, policy.clone()),
            ScraperJobPriority::Normal,
            EnqueueOrigin::Manual,
        )
        .await
        .unwrap();
    let first = run_next(jobs, 1).await;
    let before = chrono::Utc::now();
    assert_eq!(
        jobs.finish_scraper_jobs(&[failed_attempt(&first, "boom", Duration::from_secs(3600))])
            .await
            .unwrap(),
        [true]
    );
    let waiting = jobs.get_scraper_job(1, later.id).await.unwrap();
    assert_eq!(
        (waiting.status, waiting.attempt, waiting.result.as_deref()),
        (ScraperJobStatus::Pending, 2, None)
    );
    assert_eq!((waiting.started_at, waiting.finished_at), (None, None));
    let due = waiting.next_attempt_at.expect("a retry has a due time");
    assert!(
        due >= before + chrono::Duration::minutes(59),
        "{due} is an hour away"
    );
    assert_eq!(waiting.attempts.len(), 1);
    let attempt = &waiting.attempts[0];
    assert_eq!(
        (
            attempt.attempt,
            attempt.reason,
            attempt.status,
            attempt.result.as_deref()
        ),
        (
            1,
            RetryReason::Error,
            ScraperJobStatus::Failed,
            Some("boom")
        )
    );
    assert_eq!(attempt.started_at, first.started_at);
    // Not due: nobody claims it, and it holds the scraper's slot (no pile-up behind it).
    assert!(jobs.dequeue_scraper_jobs(10).await.unwrap().is_empty());
    assert_eq!(
        jobs.add_scraper_job(
            &scraper_with_id(1),
            ScraperJobPriority::Normal,
            EnqueueOrigin::Scheduled(chrono::Utc::now())
        )
        .await,
        Err(Error::ScraperHasActiveRun)
    );
    assert_eq!(
        jobs.heartbeat_jobs(&[claim(&first)]).await.unwrap(),
        [later.id]
    );
    let stamp = jobs.get_job_stamps(&[], &[later.id]).await.unwrap();
    assert_eq!(
        (stamp[0].status, stamp[0].attempt),
        (ScraperJobStatus::Pending, 2)
    );

    // A retry due now is claimed like any job, as its next attempt; it can succeed.
    let soon = jobs
        .add_scraper_job(
            &retried_scraper(2, policy),
            ScraperJobPriority::Normal,
            EnqueueOrigin::Manual,
        )
        .await
        .unwrap();
    let failing = run_next(jobs, 2).await;
    jobs.finish_scraper_jobs(&[failed_attempt(&failing, "flaky", Duration::ZERO)])
        .await
        .unwrap();
    let second = run_next(jobs, 2).await;
    assert_eq!((second.id, second.attempt), (soon.id, 2));
    assert_ne!(claim(&second), claim(&failing));
    // The first attempt's worker is late: it cannot finish the second attempt.
    assert_eq!(
        jobs.finish_scraper_job(claim(&failing), ScraperJobStatus::Succeeded, None)
            .await
            .unwrap(),
        None
    );
    let done = jobs
        .finish_scraper_job(
            claim(&second),
            ScraperJobStatus::Succeeded,
            Some("ok".into()),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            done.status,
            done.attempt,
            done.attempts.len(),
            done.next_attempt_at.is_some()
        ),
        (ScraperJobStatus::Succeeded, 2, 1, false),
        "a retry's due time is cleared when it is claimed"
    );

    // Killing a job that waits for its retry ends the retries.
    let killed = jobs.kill_scraper_job(1, later.id).await.unwrap();
    assert_eq!(killed.status, ScraperJobStatus::Killed);
    assert!(jobs.dequeue_scraper_jobs(10).await.unwrap().is_empty());
    assert!(jobs
        .add_scraper_job(
            &scraper_with_id(1),
            ScraperJobPriority::Normal,
            EnqueueOrigin::Manual
        )
        .await
        .is_ok());
}

async fn a_lost_workers_job_is_retried_while_its_policy_allows(backend: Backend) {
    let jobs = &*backend.storages.jobs;
    let policy = RetryPolicy {
        max_attempts: 2,
        // Due at once, so the test needs no waiting (a stored policy allows no less than 1 s).
        delay_seconds: 0,
        jitter_percent: 0,
        ..RetryPolicy::default()
    };
    let job = jobs
        .add_scraper_job(
            &retried_scraper(1, policy),
            ScraperJobPriority::Normal,
            EnqueueOrigin::Manual,
        )
        .await
        .unwrap();
    // A job without a policy (enqueued before retries existed) is never retried.
    jobs.add_scraper_job(
        &scraper_with_id(2),
        ScraperJobPriority::Normal,
        EnqueueOrigin::Manual,
    )
    .await
    .unwrap();
    let mut claimed = jobs.dequeue_scraper_jobs(10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let claims: Vec<Claim> = claimed.iter().map(claim).collect();
    assert_eq!(jobs.start_scraper_jobs(&claims).await.unwrap().len(), 2);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut rescued = jobs
        .mark_dead_scraper_jobs(Duration::from_millis(10))
        .await
        .unwrap();
    rescued.sort_by_key(|job| job.scraper.id);
    let shape = |job: &ScraperJob| {
        (
            job.scraper.id,
            job.status,
            job.attempt,
            job.next_attempt_at.is_some(),
        )
    };
    assert_eq!(
        rescued.iter().map(shape).collect::<Vec<_>>(),
        [
            (1, ScraperJobStatus::Pending, 2, true),
            (2, ScraperJobStatus::Dead, 1, false)
        ]
    );
    let lost = &rescued[0].attempts;
    assert_eq!(
        (
            lost.len(),
            lost[0].reason,
            lost[0].status,
            lost[0].result.as_ref()
        ),
        (1, RetryReason::Dead, ScraperJobStatus::Dead, None)
    );
    // The lost worker comes back: its claim is void.
    let first = claimed.remove(0);
    assert_eq!(first.id, job.id);
    assert_eq!(
        jobs.heartbeat(claim(&first)).await,
        Err(Error::PingNotStarted)
    );
    // The second attempt is lost too: that was the last one.
    let second = run_next(jobs, 1).await;
    assert_eq!(second.attempt, 2);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let rescued = jobs
        .mark_dead_scraper_jobs(Duration::from_millis(10))
        .await
        .unwrap();
    assert_eq!(
        rescued.iter().map(shape).collect::<Vec<_>>(),
        [(1, ScraperJobStatus::Dead, 2, false)]
    );
    assert_eq!(rescued[0].attempts.len(), 1);
}
