//! Hostile jobs: scripts that loop forever, allocate without end, recurse, nest 10,000
//! deep or call the server's own API, and URLs no scraper may reach, run through
//! `run_ephemeral` (with the `script` and `extract` handlers) and through scrapers with a
//! timeout. Each must end as a failed job (the kill test: as a killed one), stopped by the
//! sandbox's limits, the job's timeout or the egress policy, within a deadline.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::calls::Pool;
use super::model::short;
use super::rng::Rng;
use super::shared::Shared;
use super::values;

/// The longest a hostile job may take. The slowest, an endless loop stopped by the limit of
/// 10 million operations, takes about 7 s of CPU in a debug build, and shares 2 cores.
const DEADLINE: Duration = Duration::from_secs(90);
/// Hostile ephemeral runs in flight at once: the server allows 10 across everything, and
/// the other drivers start some too.
const IN_FLIGHT: usize = 5;

/// A job to watch, with what it must end as.
struct Watched {
    label: String,
    scraper_id: i64,
    job_id: i64,
    started: Instant,
    expected: &'static str,
}

/// What the phase saw, for the report: each hostile job's label, status and result.
pub struct Outcome {
    pub label: String,
    pub status: String,
    pub result: String,
    pub seconds: f64,
}

pub async fn run(shared: &Shared, stream: u64) -> Vec<Outcome> {
    let mut rng = Rng::new(shared.seed, stream);
    let mut pool = Pool::new(stream);
    let mut outcomes = Vec::new();
    let mut ephemeral: Vec<(String, Value)> = Vec::new();
    for (label, source) in values::hostile_scripts(shared.port) {
        ephemeral.push((
            format!("script: {label}"),
            json!({"handler": "script", "config": {"params": {"source": source}}}),
        ));
    }
    let mut urls = values::hostile_urls(shared.port);
    urls.extend([values::long_url(&mut rng), values::long_url(&mut rng)]);
    for url in urls {
        let label = short(&url, 70);
        let no_robots = json!({"robots_txt": {"enabled": false}});
        ephemeral.push((format!("extract: {label}"), json!({"handler": "extract", "config": {"params": {"url": url, "fields": {"title": {"css": "h1"}}}, "plugins": no_robots}})));
        if rng.chance(25) {
            let source = format!("get({})", json!(url));
            ephemeral.push((format!("script get: {label}"), json!({"handler": "script", "config": {"params": {"source": source}, "plugins": no_robots}})));
        }
    }

    // Scrapers whose scripts only their timeout stops in time: the limit of 10 million
    // operations would take minutes, as each operation on a growing array or map costs more.
    let mut timed: Vec<Watched> = Vec::new();
    for (label, source, timeout) in [
        (
            "an endless loop, 1 s timeout",
            "let x = 0; loop { x += 1; }",
            Some(1),
        ),
        (
            "an array grown without end, 1 s timeout",
            "let a = []; loop { a.push(a.len()); }",
            Some(1),
        ),
        (
            "a map grown without end, 1 s timeout",
            "let m = #{}; let i = 0; loop { m[`k${i}`] = i; i += 1; }",
            Some(1),
        ),
        (
            "an array grown without end, the server's default timeout",
            "let a = []; loop { a.push(a.len()); }",
            None,
        ),
    ] {
        if let Some(watched) = timed_job(shared, &mut pool, label, source, timeout).await {
            timed.push(watched);
        }
    }

    // A job killed while its endless script runs: it must end killed (not failed, not
    // running on).
    let killed = killed_job(shared, &mut pool).await;

    let mut pending: std::collections::VecDeque<(String, Value)> = ephemeral.into();
    let mut in_flight: Vec<Watched> = Vec::new();
    // Jobs of scrapers are polled along, but do not count against the ephemeral runs.
    let mut others: Vec<Watched> = timed.into_iter().chain(killed).collect();
    let mut busy_since: Option<Instant> = None;
    while !pending.is_empty() || !in_flight.is_empty() || !others.is_empty() {
        while in_flight.len() < IN_FLIGHT {
            let Some((label, params)) = pending.pop_front() else {
                break;
            };
            match start(shared, &mut pool, &label, &params).await {
                Started::Job(watched) => {
                    busy_since = None;
                    in_flight.push(watched);
                }
                Started::Busy => {
                    let since = *busy_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > DEADLINE {
                        shared.fail(
                            format!("run_ephemeral kept answering 10007 for {DEADLINE:?}"),
                            label.as_bytes(),
                            "",
                        );
                        pending.clear();
                    } else {
                        pending.push_front((label, params));
                    }
                    break;
                }
                Started::Failed => {}
            }
        }
        // Poll what runs (clients have no push): a finished job frees its place.
        tokio::time::sleep(Duration::from_millis(100)).await;
        for list in [&mut in_flight, &mut others] {
            let mut running = Vec::new();
            for watched in list.drain(..) {
                match poll(shared, watched).await {
                    Poll::Done(outcome) => outcomes.push(outcome),
                    Poll::Running(watched) => running.push(watched),
                    Poll::Lost => {}
                }
            }
            *list = running;
        }
    }
    outcomes
}

enum Poll {
    Done(Outcome),
    Running(Watched),
    /// The job could not be read (a failure already recorded).
    Lost,
}

enum Started {
    Job(Watched),
    /// 10007: as many ephemeral runs as allowed are active; try again later.
    Busy,
    Failed,
}

async fn start(shared: &Shared, pool: &mut Pool, label: &str, params: &Value) -> Started {
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "run_ephemeral", "params": params}).to_string();
    let Some((_, answer)) = shared.exchange(pool, body.clone().into_bytes()).await else {
        return Started::Failed;
    };
    let reply: Value = serde_json::from_slice(&answer).unwrap_or_default();
    if reply["error"]["code"] == 10007 {
        return Started::Busy;
    }
    match (
        reply["result"]["scraper"]["id"].as_i64(),
        reply["result"]["id"].as_i64(),
    ) {
        (Some(scraper_id), Some(job_id)) => Started::Job(Watched {
            label: label.to_owned(),
            scraper_id,
            job_id,
            started: Instant::now(),
            expected: "failed",
        }),
        _ => {
            shared.fail(
                format!(
                    "a hostile ephemeral run was refused: {}",
                    reply["error"]["code"]
                ),
                body.as_bytes(),
                &short(&reply.to_string(), 300),
            );
            Started::Failed
        }
    }
}

/// Looks at a job once: its outcome when it has finished (or overrun its deadline).
async fn poll(shared: &Shared, watched: Watched) -> Poll {
    let Some(job) = shared
        .result(
            "get_scraper_job",
            json!({"scraper_id": watched.scraper_id, "job_id": watched.job_id}),
        )
        .await
    else {
        return Poll::Lost;
    };
    let status = job["status"].as_str().unwrap_or_default().to_owned();
    if status == "pending" || status == "started" {
        if watched.started.elapsed() < DEADLINE {
            return Poll::Running(watched);
        }
        shared.fail(
            format!("a hostile job still {status} after {DEADLINE:?}"),
            watched.label.as_bytes(),
            &short(&job.to_string(), 300),
        );
        // It is the fuzzer's own: kill it so that it does not run on.
        shared
            .result(
                "kill_scraper_job",
                json!({"scraper_id": watched.scraper_id, "job_id": watched.job_id}),
            )
            .await;
    } else if status != watched.expected {
        shared.fail(
            format!("a hostile job ended {status}, not {}", watched.expected),
            watched.label.as_bytes(),
            &short(&job.to_string(), 300),
        );
    }
    Poll::Done(Outcome {
        label: watched.label,
        status,
        result: short(job["result"].as_str().unwrap_or_default(), 160),
        seconds: watched.started.elapsed().as_secs_f64(),
    })
}

/// Creates a scraper of the fuzzer's with `source` and `timeout` and enqueues it.
async fn timed_job(
    shared: &Shared,
    pool: &mut Pool,
    label: &str,
    source: &str,
    timeout: Option<u64>,
) -> Option<Watched> {
    let id = pool.fresh_id();
    let scraper = json!({"id": id, "name": format!("hostile: {label}"), "schedule": "inactive", "handler": "script", "config": {"params": {"source": source}}, "timeout_seconds": timeout});
    let created = shared
        .result("create_scraper", json!({ "scraper": scraper }))
        .await?;
    shared.learn(pool, "create_scraper", &created);
    let job = shared
        .result("enqueue_scraper", json!({"scraper_id": id, "priority": 0}))
        .await?;
    shared.learn(pool, "enqueue_scraper", &job);
    Some(Watched {
        label: label.to_owned(),
        scraper_id: id,
        job_id: job["id"].as_i64()?,
        started: Instant::now(),
        expected: "failed",
    })
}

/// Starts an endless script, kills it once it runs, and watches that it stays killed.
async fn killed_job(shared: &Shared, pool: &mut Pool) -> Option<Watched> {
    let mut watched = timed_job(
        shared,
        pool,
        "an endless loop, killed while it runs",
        "let x = 0; loop { x += 1; }",
        Some(600),
    )
    .await?;
    let deadline = Instant::now() + DEADLINE;
    loop {
        let job = shared
            .result(
                "get_scraper_job",
                json!({"scraper_id": watched.scraper_id, "job_id": watched.job_id}),
            )
            .await?;
        if job["status"] == "started" || Instant::now() > deadline {
            break;
        }
        if job["status"] != "pending" {
            shared.fail(
                "the job to kill ended by itself",
                b"",
                &short(&job.to_string(), 300),
            );
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shared
        .result(
            "kill_scraper_job",
            json!({"scraper_id": watched.scraper_id, "job_id": watched.job_id}),
        )
        .await?;
    watched.expected = "killed";
    Some(watched)
}
