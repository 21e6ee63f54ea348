//! The scheduler's precision: many `every_second` scrapers for a while, then every fire that
//! was due is looked up in the jobs it left: enqueued on time, late, twice, or skipped.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use engine::model::{ScraperId, ScraperSchedule};
use engine::scheduler::SchedulerSettings;
use engine::worker::WorkerSettings;
use futures_util::{stream, StreamExt, TryStreamExt};

use super::{engine, scraper, Store};
use crate::BoxResult;

/// "On time" means enqueued within this of the due time.
const ON_TIME: TimeDelta = TimeDelta::milliseconds(100);

pub struct Precision {
    pub due: usize,
    pub on_time: usize,
    pub late_p50_ms: f64,
    pub late_p99_ms: f64,
    pub duplicates: usize,
    /// Refused because the scraper's previous job was still pending or running.
    pub skipped_running: usize,
    /// Never enqueued although the scraper was free: the scheduler was behind and skips
    /// missed fires rather than bursting to catch up.
    pub skipped_behind: usize,
}

/// A job as the scheduler left it.
struct Fire {
    scraper_id: ScraperId,
    due: DateTime<Utc>,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

pub async fn precision(store: &Store<'_>, scrapers: usize, seconds: i64) -> BoxResult<Precision> {
    let storages = store.storages().await?;
    let (engine, _) = engine(storages.clone())?;
    let ids: Vec<ScraperId> = stream::iter(0..scrapers)
        .map(|_| {
            let scrapers = storages.scrapers.clone();
            async move {
                scrapers
                    .create_scraper(scraper(-1, ScraperSchedule::EverySecond))
                    .await
                    .map(|created| created.id)
            }
        })
        .buffer_unordered(16)
        .try_collect()
        .await?;

    let background = engine.start(
        Some(SchedulerSettings::default()),
        Some(WorkerSettings::default()),
    );
    // Two seconds to take the lease and plan; then the measured window of whole seconds.
    let window_start = (Utc::now() + TimeDelta::seconds(2))
        .duration_trunc(TimeDelta::seconds(1))?
        + TimeDelta::seconds(1);
    let window_end = window_start + TimeDelta::seconds(seconds);
    // A little past the end, so the last second's fires are in even when late.
    let stop_at = window_end + TimeDelta::milliseconds(1500);
    tokio::time::sleep((stop_at - Utc::now()).to_std().unwrap_or(Duration::ZERO)).await;
    background.stop().await;

    let fires = match store.database() {
        Some(database) => fires_in_database(&database.url).await?,
        None => {
            let mut fires = Vec::new();
            for &id in &ids {
                for job in storages.jobs.get_scraper_jobs(id).await? {
                    // The model does not carry the fire time; `every_second` fires on whole
                    // seconds, and in memory an enqueue takes microseconds, so the second
                    // the job was created in is the one it was due in.
                    fires.push(Fire {
                        scraper_id: id,
                        due: job.created_at.duration_trunc(TimeDelta::seconds(1))?,
                        created_at: job.created_at,
                        finished_at: job.finished_at,
                    });
                }
            }
            fires
        }
    };
    Ok(analyse(&ids, &fires, window_start, window_end))
}

/// On PostgreSQL the fire time is stored with the job (the key that prevents double fires).
async fn fires_in_database(url: &str) -> BoxResult<Vec<Fire>> {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(url).await?;
    type FireRow = (i64, DateTime<Utc>, DateTime<Utc>, Option<DateTime<Utc>>);
    let rows: Vec<FireRow> = sqlx::query_as(
        "SELECT scraper_id, scheduled_for, created_at, finished_at FROM scraper_jobs WHERE scheduled_for IS NOT NULL",
    )
    .fetch_all(&mut connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(scraper_id, due, created_at, finished_at)| Fire {
            scraper_id,
            due,
            created_at,
            finished_at,
        })
        .collect())
}

fn analyse(
    ids: &[ScraperId],
    fires: &[Fire],
    window_start: DateTime<Utc>,
    window_end: DateTime<Utc>,
) -> Precision {
    let mut by_scraper: HashMap<ScraperId, Vec<&Fire>> = HashMap::new();
    for fire in fires {
        by_scraper.entry(fire.scraper_id).or_default().push(fire);
    }
    let mut result = Precision {
        due: 0,
        on_time: 0,
        late_p50_ms: f64::NAN,
        late_p99_ms: f64::NAN,
        duplicates: 0,
        skipped_running: 0,
        skipped_behind: 0,
    };
    let mut lateness = Vec::new();
    for id in ids {
        let jobs = by_scraper.get(id).map(Vec::as_slice).unwrap_or_default();
        let mut due = window_start;
        while due < window_end {
            result.due += 1;
            let fired: Vec<&&Fire> = jobs.iter().filter(|fire| fire.due == due).collect();
            match fired.first() {
                Some(fire) => {
                    result.duplicates += fired.len() - 1;
                    let late = fire.created_at - due;
                    if late <= ON_TIME {
                        result.on_time += 1;
                    }
                    lateness.push(late.to_std().unwrap_or(Duration::ZERO));
                }
                None => {
                    let running = jobs.iter().any(|fire| {
                        fire.created_at <= due
                            && fire.finished_at.is_none_or(|finished| finished > due)
                    });
                    if running {
                        result.skipped_running += 1;
                    } else {
                        result.skipped_behind += 1;
                    }
                }
            }
            due += TimeDelta::seconds(1);
        }
    }
    result.late_p50_ms = super::quantile_ms(&mut lateness, 0.5);
    result.late_p99_ms = super::quantile_ms(&mut lateness, 0.99);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: f64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis((seconds * 1000.0) as i64).unwrap()
    }

    #[test]
    fn fires_are_sorted_into_on_time_late_duplicate_and_skipped() {
        let fire = |due: f64, created: f64, finished: Option<f64>| Fire {
            scraper_id: 1,
            due: at(due),
            created_at: at(created),
            finished_at: finished.map(at),
        };
        let fires = vec![
            fire(10.0, 10.01, Some(12.5)), // on time; still running at 11 and 12
            fire(13.0, 13.5, Some(13.6)),  // late
            fire(13.0, 13.7, Some(13.8)),  // a duplicate
                                           // 14: nobody fired, nothing ran: behind
        ];
        let precision = analyse(&[1], &fires, at(10.0), at(15.0));
        assert_eq!(precision.due, 5);
        assert_eq!(precision.on_time, 1);
        assert_eq!(precision.duplicates, 1);
        assert_eq!(precision.skipped_running, 2);
        assert_eq!(precision.skipped_behind, 1);
    }
}
