//! Memory of an engine kept in memory: idle, and loaded with many scrapers and retained jobs.
//!
//! Measured in a child process (this binary's hidden `memory-probe` command), so the figures
//! are those of an engine alone and not of the benchmarks that ran before in this process.

use std::time::Duration;

use engine::model::{ScraperJobPriority, ScraperSchedule};
use engine::scheduler::SchedulerSettings;
use engine::storage::Storages;
use engine::worker::WorkerSettings;
use futures_util::{stream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::{engine, scraper};
use crate::BoxResult;

#[derive(Debug, Serialize, Deserialize)]
pub struct Footprint {
    pub idle_mib: f64,
    pub loaded_mib: f64,
    pub scrapers: usize,
    pub jobs: usize,
}

/// Runs the probe in a child process and returns what it measured.
pub async fn measure(scrapers: usize, jobs_per_scraper: usize) -> BoxResult<Footprint> {
    let output = tokio::process::Command::new(std::env::current_exe()?)
        .args([
            "memory-probe",
            &scrapers.to_string(),
            &jobs_per_scraper.to_string(),
        ])
        .output()
        .await?;
    if !output.status.success() {
        return Err(format!(
            "the memory probe failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// The child's side: a scheduler and a worker on in-memory storages, then the load; prints
/// the footprint as JSON.
pub async fn probe(scrapers: usize, jobs_per_scraper: usize) -> BoxResult<()> {
    let (engine, runs) = engine(Storages::in_memory(Vec::new(), false))?;
    let background = engine.start(
        Some(SchedulerSettings::default()),
        Some(WorkerSettings::default()),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_mib = crate::rss::of_process("self")?.rss_mib;

    let ids: Vec<i64> = stream::iter(0..scrapers)
        .map(|_| {
            let engine = engine.clone();
            async move {
                engine
                    .create_scraper(scraper(-1, ScraperSchedule::Inactive))
                    .await
                    .map(|created| created.id)
            }
        })
        .buffer_unordered(16)
        .try_collect()
        .await?;
    // Each round runs every scraper once; a scraper may have only one active job.
    for round in 1..=jobs_per_scraper {
        for &id in &ids {
            engine
                .enqueue_scraper(id, ScraperJobPriority::Normal)
                .await?;
        }
        runs.wait_for(round * scrapers, Duration::from_secs(300))
            .await?;
        while engine
            .storages()
            .jobs
            .count_finished_jobs(chrono::DateTime::UNIX_EPOCH)
            .await?
            .iter()
            .map(|count| count.count)
            .sum::<u64>()
            < (round * scrapers) as u64
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let loaded_mib = crate::rss::of_process("self")?.rss_mib;
    background.stop().await;
    let footprint = Footprint {
        idle_mib,
        loaded_mib,
        scrapers,
        jobs: scrapers * jobs_per_scraper,
    };
    println!("{}", serde_json::to_string(&footprint)?);
    Ok(())
}
