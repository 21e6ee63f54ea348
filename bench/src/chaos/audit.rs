//! The accounting at the end of a run: the database's jobs and logs against what the load
//! generator was acknowledged, what the target served, and when which replica process was
//! killed or frozen. The figures are defined in the [module docs](super).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use engine::worker::LOG_IDS_PER_ATTEMPT;
use serde::Serialize;
use sqlx::{Connection, PgConnection, Row};

use super::faults::Interruption;
use super::load::Acknowledged;
use super::replicas::Incarnation;
use super::target::Fetch;
use crate::BoxResult;

/// The last line of the log of a job that succeeded.
const SUCCEEDED_LINE: &str = "Job succeeded";
/// Evidence listed per figure at most (every case is counted).
const EVIDENCE: usize = 20;

/// What the run is checked against.
pub struct Inputs<'a> {
    pub acknowledged: &'a [Acknowledged],
    pub fetches: &'a HashMap<String, Vec<Fetch>>,
    pub interruptions: &'a [Interruption],
    pub incarnations: &'a [Incarnation],
    /// The every_second scrapers, and the span over which their fires are checked.
    pub scheduled: &'a [i64],
    pub window: (DateTime<Utc>, DateTime<Utc>),
}

/// One job behind a figure.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    pub job_id: Option<i64>,
    pub token: String,
    pub status: String,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Each fetch of its page: when, and by which replica process.
    pub fetches: Vec<String>,
    pub detail: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Audit {
    pub acknowledged: usize,
    /// The acknowledged jobs by their status at the end ("missing" when not found).
    pub by_status: BTreeMap<String, usize>,
    pub lost_enqueues: usize,
    /// Tokens whose page was served more times than their job had attempts.
    pub ran_more_than_once: usize,
    /// Acknowledged jobs that succeeded on a later attempt after losing their worker.
    pub retried_to_success: usize,
    pub results_lost: usize,
    pub lost_with_their_replica: usize,
    pub logs_lost: usize,
    /// Final without their handler having fetched anything (dead before they ran).
    pub ended_without_running: usize,
    /// Fetches the target could not attribute to a replica process.
    pub unattributed_fetches: usize,
    pub fires: usize,
    pub duplicate_fires: usize,
    pub longest_fire_gap_seconds: f64,
    pub evidence: BTreeMap<&'static str, Vec<Evidence>>,
}

const FINAL: [&str; 4] = ["succeeded", "failed", "killed", "dead"];

/// Waits until every acknowledged job is final, at most `bound`; returns how long it took.
pub async fn wait_final(url: &str, job_ids: &[i64], bound: Duration) -> BoxResult<Duration> {
    let started = Instant::now();
    let mut connection = PgConnection::connect(url).await?;
    loop {
        let active: i64 = sqlx::query_scalar("SELECT count(*) FROM scraper_jobs WHERE id = ANY($1) AND status IN ('pending', 'started')")
            .bind(job_ids)
            .fetch_one(&mut connection)
            .await?;
        if active == 0 || started.elapsed() > bound {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

struct Job {
    status: String,
    result: Option<String>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    /// Its last attempt, from 1.
    attempt: i64,
    /// Its earlier attempts that ended with their worker lost.
    lost_attempts: i64,
}

pub async fn audit(url: &str, inputs: &Inputs<'_>) -> BoxResult<Audit> {
    let mut connection = PgConnection::connect(url).await?;
    let job_ids: Vec<i64> = inputs.acknowledged.iter().map(|job| job.job_id).collect();
    let rows = sqlx::query(
        "SELECT id, status, result, started_at, finished_at,
            jsonb_array_length(attempts)::bigint + 1 AS attempt,
            (SELECT count(*) FROM jsonb_array_elements(attempts) AS earlier
             WHERE earlier->>'reason' = 'dead') AS lost_attempts
         FROM scraper_jobs WHERE id = ANY($1)",
    )
    .bind(&job_ids)
    .fetch_all(&mut connection)
    .await?;
    let mut jobs = HashMap::with_capacity(rows.len());
    for row in rows {
        let job = Job {
            status: row.try_get("status")?,
            result: row.try_get("result")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
            attempt: row.try_get("attempt")?,
            lost_attempts: row.try_get("lost_attempts")?,
        };
        jobs.insert(row.try_get::<i64, _>("id")?, job);
    }
    // Attempts per token, acknowledged or not: each attempt may fetch its page once (a
    // retry after a lost worker runs the handler again, by design; two runs at once never).
    let mut attempts_of_token: HashMap<String, i64> = HashMap::new();
    for row in sqlx::query(
        "SELECT substr(scraper->>'name', 7) AS token, sum(jsonb_array_length(attempts) + 1)::bigint AS attempts
         FROM scraper_jobs WHERE scraper->>'name' LIKE 'chaos job-%' GROUP BY 1",
    )
    .fetch_all(&mut connection)
    .await?
    {
        attempts_of_token.insert(row.try_get("token")?, row.try_get("attempts")?);
    }
    let attempts_of = |token: &str| attempts_of_token.get(token).copied().unwrap_or(1).max(1);
    let mut logs: HashMap<i64, Vec<(i64, String)>> = HashMap::new();
    let lines = sqlx::query("SELECT job_id, line_no, message FROM scraper_job_logs WHERE job_id = ANY($1) ORDER BY job_id, line_no")
        .bind(&job_ids)
        .fetch_all(&mut connection)
        .await?;
    for line in lines {
        logs.entry(line.try_get("job_id")?)
            .or_default()
            .push((line.try_get("line_no")?, line.try_get("message")?));
    }

    let mut audit = Audit {
        acknowledged: inputs.acknowledged.len(),
        unattributed_fetches: inputs
            .fetches
            .values()
            .flatten()
            .filter(|fetch| fetch.pid.is_none())
            .count(),
        ..Audit::default()
    };
    let describe = |fetch: &Fetch| match fetch.pid {
        Some(pid) => {
            let replica = inputs
                .incarnations
                .iter()
                .find(|incarnation| incarnation.pid == pid)
                .map(|incarnation| incarnation.replica);
            format!(
                "{} by replica {} (pid {pid})",
                fetch.at.format("%H:%M:%S%.3f"),
                replica.map_or("?".to_owned(), |replica| replica.to_string())
            )
        }
        None => format!("{} by an unknown process", fetch.at.format("%H:%M:%S%.3f")),
    };
    let no_fetches = Vec::new();
    for acknowledged in inputs.acknowledged {
        let fetches = inputs
            .fetches
            .get(&acknowledged.token)
            .unwrap_or(&no_fetches);
        let job = jobs.get(&acknowledged.job_id);
        let evidence = |detail: String| Evidence {
            job_id: Some(acknowledged.job_id),
            token: acknowledged.token.clone(),
            status: job.map_or("missing".to_owned(), |job| job.status.clone()),
            started_at: job.and_then(|job| job.started_at),
            finished_at: job.and_then(|job| job.finished_at),
            fetches: fetches.iter().map(describe).collect(),
            detail,
        };
        *audit
            .by_status
            .entry(job.map_or("missing".to_owned(), |job| job.status.clone()))
            .or_default() += 1;
        let attempts = attempts_of(&acknowledged.token);
        if fetches.len() as i64 > attempts {
            audit.ran_more_than_once += 1;
            audit.add_evidence(
                "ran more than once",
                evidence(format!(
                    "the target served its page {} times, for {attempts} attempts",
                    fetches.len()
                )),
            );
        }
        let Some(job) = job.filter(|job| FINAL.contains(&job.status.as_str())) else {
            audit.lost_enqueues += 1;
            let detail = if job.is_some() {
                "never reached a final status"
            } else {
                "not in the database"
            };
            audit.add_evidence("lost enqueues", evidence(detail.to_owned()));
            continue;
        };
        // The last attempt's fetch: the one whose process the job's end depended on.
        let Some(last_fetch) = fetches.last() else {
            if job.status != "succeeded" {
                audit.ended_without_running += 1;
            }
            continue;
        };
        let marker = format!("\"{}\"", acknowledged.token);
        if job.status != "succeeded"
            || !job
                .result
                .as_deref()
                .is_some_and(|result| result.contains(&marker))
        {
            let result = job.result.as_deref().unwrap_or("no result");
            let detail = format!("result: {}", result.chars().take(200).collect::<String>());
            if interrupted_while_held(last_fetch, job, inputs.interruptions) {
                audit.lost_with_their_replica += 1;
                audit.add_evidence("lost with their replica", evidence(detail));
            } else {
                audit.results_lost += 1;
                audit.add_evidence("results lost", evidence(detail));
            }
            continue;
        }
        if job.lost_attempts > 0 {
            audit.retried_to_success += 1;
        }
        // The attempt that succeeded wrote its lines unbroken, numbered from its first.
        let first_line = (job.attempt - 1) * LOG_IDS_PER_ATTEMPT + 1;
        let log: Vec<&(i64, String)> = logs
            .get(&acknowledged.job_id)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter(|(line_no, _)| *line_no >= first_line)
            .collect();
        let unbroken = log
            .iter()
            .enumerate()
            .all(|(index, (line_no, _))| *line_no == first_line + index as i64);
        if !unbroken || log.last().map(|(_, message)| message.as_str()) != Some(SUCCEEDED_LINE) {
            audit.logs_lost += 1;
            let numbers: Vec<String> = log.iter().map(|(line_no, _)| line_no.to_string()).collect();
            let last = log.last().map_or("none", |(_, message)| message.as_str());
            audit.add_evidence(
                "logs lost",
                evidence(format!(
                    "lines [{}], the last: {last:?}",
                    numbers.join(", ")
                )),
            );
        }
    }
    // Pages of enqueues that were not acknowledged count too: a handler must not run twice.
    let acknowledged_tokens: std::collections::HashSet<&str> = inputs
        .acknowledged
        .iter()
        .map(|job| job.token.as_str())
        .collect();
    for (token, fetches) in inputs.fetches {
        if fetches.len() as i64 > attempts_of(token)
            && token.starts_with("job-")
            && !acknowledged_tokens.contains(token.as_str())
        {
            audit.ran_more_than_once += 1;
            audit.add_evidence(
                "ran more than once",
                Evidence {
                    job_id: None,
                    token: token.clone(),
                    status: "not acknowledged".to_owned(),
                    started_at: None,
                    finished_at: None,
                    fetches: fetches.iter().map(describe).collect(),
                    detail: format!("the target served its page {} times", fetches.len()),
                },
            );
        }
    }

    audit.duplicate_fires = sqlx::query_scalar::<_, i64>(
        "SELECT COALESCE(sum(fires - 1), 0)::bigint FROM \
         (SELECT count(*) AS fires FROM scraper_jobs WHERE scheduled_for IS NOT NULL GROUP BY scraper_id, scheduled_for) AS per_fire",
    )
    .fetch_one(&mut connection)
    .await? as usize;
    let (from, to) = inputs.window;
    let fires = sqlx::query("SELECT scraper_id, scheduled_for FROM scraper_jobs WHERE scraper_id = ANY($1) AND scheduled_for BETWEEN $2 AND $3 ORDER BY scraper_id, scheduled_for")
        .bind(inputs.scheduled)
        .bind(from)
        .bind(to)
        .fetch_all(&mut connection)
        .await?;
    let mut per_scraper: HashMap<i64, Vec<DateTime<Utc>>> = inputs
        .scheduled
        .iter()
        .map(|&id| (id, Vec::new()))
        .collect();
    for fire in fires {
        per_scraper
            .entry(fire.try_get("scraper_id")?)
            .or_default()
            .push(fire.try_get("scheduled_for")?);
        audit.fires += 1;
    }
    audit.longest_fire_gap_seconds = per_scraper
        .values()
        .map(|fires| longest_gap(fires, from, to))
        .fold(0.0, f64::max);
    Ok(audit)
}

impl Audit {
    fn add_evidence(&mut self, figure: &'static str, evidence: Evidence) {
        let list = self.evidence.entry(figure).or_default();
        if list.len() < EVIDENCE {
            list.push(evidence);
        }
    }
}

/// Whether the process that fetched the job's page was killed or frozen while it held the
/// job: from its start until it was declared finished (or the end, when it never was).
fn interrupted_while_held(fetch: &Fetch, job: &Job, interruptions: &[Interruption]) -> bool {
    let Some(pid) = fetch.pid else {
        return false;
    };
    let held_from = job.started_at.unwrap_or(fetch.at);
    interruptions.iter().any(|interruption| {
        interruption.pid == pid
            && interruption.from >= held_from
            && job
                .finished_at
                .is_none_or(|finished| interruption.from <= finished)
    })
}

/// The longest time without a fire in `from..=to`, counting its two ends.
fn longest_gap(fires: &[DateTime<Utc>], from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    let mut previous = from;
    let mut longest = chrono::Duration::zero();
    for &fire in fires.iter().chain(std::iter::once(&to)) {
        longest = longest.max(fire - previous);
        previous = fire;
    }
    longest.num_milliseconds() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).expect("a time")
    }

    #[test]
    fn the_gap_counts_the_window_ends() {
        assert_eq!(longest_gap(&[at(1), at(2), at(3)], at(0), at(4)), 1.0);
        assert_eq!(longest_gap(&[at(1), at(7)], at(0), at(8)), 6.0);
        assert_eq!(longest_gap(&[], at(0), at(8)), 8.0);
    }

    #[test]
    fn only_an_interruption_of_the_holder_while_it_held_the_job_excuses_a_loss() {
        let fetch = Fetch {
            at: at(2),
            pid: Some(7),
        };
        let job = Job {
            status: "dead".to_owned(),
            result: None,
            started_at: Some(at(1)),
            finished_at: Some(at(10)),
            attempt: 1,
            lost_attempts: 0,
        };
        let kill = |pid, from| Interruption {
            pid,
            from: at(from),
            to: None,
        };
        assert!(interrupted_while_held(&fetch, &job, &[kill(7, 3)]));
        assert!(!interrupted_while_held(&fetch, &job, &[kill(8, 3)]));
        assert!(!interrupted_while_held(&fetch, &job, &[kill(7, 0)]));
        assert!(!interrupted_while_held(&fetch, &job, &[kill(7, 11)]));
        let unattributed = Fetch {
            at: at(2),
            pid: None,
        };
        assert!(!interrupted_while_held(&unattributed, &job, &[kill(7, 3)]));
    }
}
