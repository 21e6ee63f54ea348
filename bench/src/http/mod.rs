//! Workloads over the JsonRPC API of a running server, the same for ours and the original:
//! request throughput with concurrent clients, enqueue-to-start latency, end-to-end runs,
//! and the server page render.
//!
//! Latencies of jobs come from the server's own timestamps (`started_at - created_at`), so
//! how often the client polls does not change them.

pub mod client;
pub mod server;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use hyper::Method;
use serde_json::{json, Value};

use crate::BoxResult;
use client::Client;

/// A scraper that does nothing, as each server spells it.
#[derive(Clone)]
pub struct Trivial {
    pub handler: &'static str,
    pub params: Value,
}

impl Trivial {
    /// Ours has no do-nothing handler built in: a script whose value is an empty string.
    pub fn ours() -> Trivial {
        Trivial {
            handler: "script",
            params: json!({"source": "\"\""}),
        }
    }

    /// The original's start script registers `noop`.
    pub fn original() -> Trivial {
        Trivial {
            handler: "noop",
            params: json!({}),
        }
    }
}

const FINISHED: [&str; 4] = ["succeeded", "failed", "killed", "dead"];

/// Creates `count` inactive scrapers over the API, `clients` at a time; returns their ids.
pub async fn create_scrapers(
    address: SocketAddr,
    count: usize,
    clients: usize,
    trivial: &Trivial,
) -> BoxResult<Vec<i64>> {
    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        connections.push(Client::connect(address).await?);
    }
    let per_client = count.div_ceil(clients);
    let batches = connections.into_iter().enumerate().map(|(index, mut client)| {
        let trivial = trivial.clone();
        async move {
            let mut ids = Vec::new();
            for number in index * per_client..((index + 1) * per_client).min(count) {
                let scraper = json!({
                    "id": -1, "name": format!("bench {number}"), "schedule": "inactive", "schedule_crontab": null,
                    "schedule_priority": 2, "handler": trivial.handler, "config": {"params": trivial.params},
                });
                let created = client.ok("create_scraper", json!({"scraper": scraper})).await?;
                ids.push(created["id"].as_i64().ok_or("a scraper id")?);
            }
            BoxResult::Ok(ids)
        }
    });
    let ids: Vec<Vec<i64>> = futures_util::future::try_join_all(batches).await?;
    Ok(ids.concat())
}

/// Throughput and tail latency of a request mix.
pub struct Load {
    pub requests_per_second: f64,
    pub p99_ms: f64,
    pub errors: usize,
}

/// `get_scraper` of the given scrapers in turn, from `clients` connections for `duration`.
pub async fn get_scraper_load(
    address: SocketAddr,
    ids: &[i64],
    clients: usize,
    duration: Duration,
) -> BoxResult<Load> {
    let bodies: Vec<bytes::Bytes> = ids
        .iter()
        .map(|id| client::request("get_scraper", json!({"id": id})))
        .collect();
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for index in 0..clients {
        let mut client = Client::connect(address).await?;
        let bodies = bodies.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            let mut next = index;
            while Instant::now() < deadline {
                let sent = Instant::now();
                let (status, body) = client
                    .send(
                        Method::POST,
                        "/api/v1/jsonrpc",
                        bodies[next % bodies.len()].clone(),
                    )
                    .await?;
                latencies.push(sent.elapsed());
                // A cheap check that the call succeeded: the answer has a result.
                if status != 200 || !body.windows(9).any(|window| window == b"\"result\":") {
                    errors += 1;
                }
                next += clients;
            }
            BoxResult::Ok((latencies, errors))
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mut more, more_errors) = task.await??;
        latencies.append(&mut more);
        errors += more_errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(Load {
        requests_per_second: latencies.len() as f64 / elapsed,
        p99_ms: crate::direct::quantile_ms(&mut latencies, 0.99),
        errors,
    })
}

/// Enqueue-and-wait cycles: each client enqueues its own scraper, polls `get_scraper_job`
/// until the job is finished, and starts over. Returns cycles and requests per second, and
/// the 99th percentile of a whole cycle.
pub async fn enqueue_cycles(
    address: SocketAddr,
    ids: &[i64],
    duration: Duration,
) -> BoxResult<(f64, Load)> {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for &id in ids {
        let mut client = Client::connect(address).await?;
        tasks.push(tokio::spawn(async move {
            let mut cycles = Vec::new();
            let mut requests = 0usize;
            while Instant::now() < deadline {
                let cycle = Instant::now();
                let job = client
                    .ok("enqueue_scraper", json!({"scraper_id": id, "priority": 0}))
                    .await?;
                requests += 1;
                loop {
                    let current = client
                        .ok(
                            "get_scraper_job",
                            json!({"scraper_id": id, "job_id": job["id"]}),
                        )
                        .await?;
                    requests += 1;
                    if is_finished(&current) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                cycles.push(cycle.elapsed());
            }
            BoxResult::Ok((cycles, requests))
        }));
    }
    let mut cycles = Vec::new();
    let mut requests = 0;
    for task in tasks {
        let (mut more, more_requests) = task.await??;
        cycles.append(&mut more);
        requests += more_requests;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cycles_per_second = cycles.len() as f64 / elapsed;
    Ok((
        cycles_per_second,
        Load {
            requests_per_second: requests as f64 / elapsed,
            p99_ms: crate::direct::quantile_ms(&mut cycles, 0.99),
            errors: 0,
        },
    ))
}

/// Enqueues one job at a time (cycling through the scrapers) and reads how long each waited
/// in the queue by the server's clock. `poll` paces the client's status checks.
pub async fn pickup(
    address: SocketAddr,
    ids: &[i64],
    samples: usize,
    poll: Duration,
) -> BoxResult<Vec<Duration>> {
    let mut client = Client::connect(address).await?;
    let mut latencies = Vec::with_capacity(samples);
    for sample in 0..samples {
        let id = ids[sample % ids.len()];
        let job = client
            .ok("enqueue_scraper", json!({"scraper_id": id, "priority": 0}))
            .await?;
        let done =
            wait_finished(&mut client, id, job["id"].as_i64().ok_or("a job id")?, poll).await?;
        let created = timestamp(&done["created_at"])?;
        let started = timestamp(&done["started_at"])?;
        latencies.push((started - created).to_std().unwrap_or(Duration::ZERO));
    }
    Ok(latencies)
}

/// Enqueues one job for each scraper over `clients` connections and polls until all are
/// finished; returns the time from the first enqueue to the last finish seen.
pub async fn end_to_end(
    address: SocketAddr,
    ids: &[i64],
    clients: usize,
    poll: Duration,
) -> BoxResult<Duration> {
    let started = Instant::now();
    let chunks: Vec<Vec<i64>> = ids
        .chunks(ids.len().div_ceil(clients))
        .map(<[i64]>::to_vec)
        .collect();
    let runs = chunks.into_iter().map(|chunk| async move {
        let mut client = Client::connect(address).await?;
        let mut jobs = Vec::new();
        for id in chunk {
            let job = client
                .ok("enqueue_scraper", json!({"scraper_id": id, "priority": 0}))
                .await?;
            jobs.push((id, job["id"].as_i64().ok_or("a job id")?));
        }
        for (id, job) in jobs {
            wait_finished(&mut client, id, job, poll).await?;
        }
        BoxResult::Ok(())
    });
    futures_util::future::try_join_all(runs).await?;
    Ok(started.elapsed())
}

/// Waits until no scraper has an active job (the original runs every new inactive scraper
/// once, its quirk Q1; measuring starts after those runs).
pub async fn settle(address: SocketAddr, ids: &[i64], timeout: Duration) -> BoxResult<()> {
    let deadline = Instant::now() + timeout;
    let mut client = Client::connect(address).await?;
    for &id in ids {
        loop {
            let jobs = client
                .ok("get_scraper_jobs", json!({"scraper_id": id}))
                .await?;
            if jobs
                .as_array()
                .ok_or("a list of jobs")?
                .iter()
                .all(is_finished)
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("scraper {id} still has an active job").into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Times `GET /` (the scrapers page, rendered on the server) to the last byte.
pub async fn render(address: SocketAddr, samples: usize) -> BoxResult<(Vec<Duration>, usize)> {
    let mut client = Client::connect(address).await?;
    let mut times = Vec::with_capacity(samples);
    let mut size = 0;
    for _ in 0..samples {
        let started = Instant::now();
        let (status, body) = client.send(Method::GET, "/", bytes::Bytes::new()).await?;
        times.push(started.elapsed());
        if status != 200 {
            return Err(format!("GET / answered {status}").into());
        }
        size = body.len();
    }
    Ok((times, size))
}

/// Polls the scraper's jobs (the one method both servers have) until `job` is finished.
async fn wait_finished(
    client: &mut Client,
    scraper_id: i64,
    job: i64,
    poll: Duration,
) -> BoxResult<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let jobs = client
            .ok("get_scraper_jobs", json!({"scraper_id": scraper_id}))
            .await?;
        let current = jobs
            .as_array()
            .and_then(|jobs| {
                jobs.iter()
                    .find(|candidate| candidate["id"].as_i64() == Some(job))
            })
            .ok_or_else(|| format!("job {job} of scraper {scraper_id} is missing"))?;
        if is_finished(current) {
            return Ok(current.clone());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "job {job} of scraper {scraper_id} did not finish within two minutes"
            )
            .into());
        }
        tokio::time::sleep(poll).await;
    }
}

fn is_finished(job: &Value) -> bool {
    job["status"]
        .as_str()
        .is_some_and(|status| FINISHED.contains(&status))
}

/// The wire's timestamps: ISO 8601 without a zone, UTC.
fn timestamp(value: &Value) -> BoxResult<NaiveDateTime> {
    let text = value
        .as_str()
        .ok_or_else(|| format!("a timestamp, not {value}"))?;
    Ok(NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")?)
}
