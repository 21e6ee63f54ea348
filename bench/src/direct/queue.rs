//! The queue on its own: how fast a backlog drains, and how soon an idle worker starts a job.

use std::time::{Duration, Instant};

use chrono::Utc;
use engine::model::{ScraperJobPriority, ScraperSchedule};
use engine::storage::EnqueueOrigin;
use engine::worker::WorkerSettings;
use futures_util::{stream, StreamExt, TryStreamExt};

use super::{engine, scraper, Store};
use crate::BoxResult;

/// Concurrent enqueuers while the backlog is built (the PostgreSQL pool has 16 connections;
/// more callers keep all of them busy).
const ENQUEUERS: usize = 32;

pub struct BurnDown {
    pub enqueue_per_second: f64,
    pub drain_per_second: f64,
    pub enqueue_commits_per_job: Option<f64>,
    pub drain_commits_per_job: Option<f64>,
}

/// Enqueues `jobs` jobs (each of its own scraper: one active job per scraper), then starts a
/// worker with the server's default settings and times it until every job is finished.
pub async fn burn_down(store: &Store<'_>, jobs: usize) -> BoxResult<BurnDown> {
    let storages = store.storages().await?;
    let (engine, runs) = engine(storages.clone())?;
    let since = Utc::now() - chrono::Duration::minutes(1);
    let commits_before = commits(store).await?;

    let started = Instant::now();
    stream::iter(1..=jobs as i64)
        .map(|id| {
            let jobs = storages.jobs.clone();
            async move {
                jobs.add_scraper_job(
                    &scraper(id, ScraperSchedule::Inactive),
                    ScraperJobPriority::Normal,
                    EnqueueOrigin::Manual,
                )
                .await
            }
        })
        .buffer_unordered(ENQUEUERS)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    let enqueue_per_second = jobs as f64 / started.elapsed().as_secs_f64();
    let commits_enqueued = commits(store).await?;

    let started = Instant::now();
    let background = engine.start(None, Some(WorkerSettings::default()));
    runs.wait_for(jobs, Duration::from_secs(600)).await?;
    // The last handlers have run; the drain ends when their jobs are recorded as finished.
    loop {
        let finished: u64 = storages
            .jobs
            .count_finished_jobs(since)
            .await?
            .iter()
            .map(|count| count.count)
            .sum();
        if finished >= jobs as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drain_per_second = jobs as f64 / started.elapsed().as_secs_f64();
    background.stop().await;
    let commits_drained = commits(store).await?;

    let per_job = |from: Option<i64>, to: Option<i64>| Some((to? - from?) as f64 / jobs as f64);
    Ok(BurnDown {
        enqueue_per_second,
        drain_per_second,
        enqueue_commits_per_job: per_job(commits_before, commits_enqueued),
        drain_commits_per_job: per_job(commits_enqueued, commits_drained),
    })
}

/// Enqueues one job at a time into an idle worker and measures from the enqueue call to the
/// handler's start; the next job is enqueued once the previous one is finished.
pub async fn pickup(store: &Store<'_>, samples: usize) -> BoxResult<Vec<Duration>> {
    /// Samples taken first and thrown away: connections and caches warm up.
    const WARM_UP: usize = 20;
    let storages = store.storages().await?;
    let (engine, runs) = engine(storages.clone())?;
    let background = engine.start(None, Some(WorkerSettings::default()));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut latencies = Vec::with_capacity(samples);
    for index in 0..WARM_UP + samples {
        let snapshot = scraper(index as i64 + 1, ScraperSchedule::Inactive);
        let enqueued = Instant::now();
        let job = storages
            .jobs
            .add_scraper_job(&snapshot, ScraperJobPriority::Normal, EnqueueOrigin::Manual)
            .await?;
        let started = runs.wait_for(index + 1, Duration::from_secs(30)).await?;
        if index >= WARM_UP {
            latencies.push(started.duration_since(enqueued));
        }
        // Idle again before the next sample: the job is finished and the worker waits.
        while !storages
            .jobs
            .get_scraper_job(job.scraper.id, job.id)
            .await?
            .status
            .is_finished()
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    background.stop().await;
    Ok(latencies)
}

async fn commits(store: &Store<'_>) -> BoxResult<Option<i64>> {
    Ok(match store.database() {
        Some(database) => Some(database.commits().await?),
        None => None,
    })
}
