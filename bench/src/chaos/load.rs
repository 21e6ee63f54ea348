//! The steady stream of one-shot jobs: every [`EVERY`], a scraper of its own (handler
//! `extract` on the target's page for a fresh token, schedule `inactive`) is created with
//! `create_scraper` and run once with `enqueue_scraper`, both on the next serving replica.
//!
//! An enqueue is **acknowledged** when both calls answered a result within the request
//! timeout; only acknowledged jobs are held to the zero-loss goals. A call that fails, is
//! refused or times out is counted, and its job (if the server made one anyway) is not.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::replicas::{Roster, REQUEST_TIMEOUT_SECONDS};
use crate::http::client::Client;
use crate::BoxResult;

/// One new job this often.
pub const EVERY: Duration = Duration::from_millis(100);
/// The target answers a one-shot job's page after this long, so that about ten jobs are in
/// flight whenever a fault strikes.
pub const HOLD: Duration = Duration::from_secs(1);
/// Calls in flight at most; a tick finding this many (a frozen replica holds calls until they
/// time out) is skipped rather than queued behind them.
const MAX_IN_FLIGHT: usize = 64;

/// An acknowledged enqueue.
#[derive(Debug, Clone, Serialize)]
pub struct Acknowledged {
    pub token: String,
    pub scraper_id: i64,
    pub job_id: i64,
    pub replica: usize,
    pub at: DateTime<Utc>,
}

/// What the stream did.
#[derive(Debug, Default, Serialize)]
pub struct Tally {
    pub acknowledged: Vec<Acknowledged>,
    /// Ticks with no serving replica, or with too many calls in flight.
    pub skipped: usize,
    /// Calls that answered a JsonRPC error.
    pub refused: usize,
    /// Calls that could not connect, broke or timed out.
    pub failed: usize,
}

/// The running stream; dropping it without [`Stream::stop`] (the run failed) aborts it.
pub struct Stream {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<Tally>>,
}

/// The extract config of a token's page: its `<h1>` (the token) is the result.
pub fn scraper(name: &str, schedule: &str, url: &str) -> Value {
    json!({
        "id": -1, "name": name, "schedule": schedule, "schedule_crontab": null, "schedule_priority": 2,
        "handler": "extract",
        "config": {"params": {"url": url, "fields": {"token": {"css": "h1"}}}},
    })
}

impl Stream {
    /// Starts enqueueing; `url` gives a token's page.
    pub fn start(roster: Arc<Roster>, url: impl Fn(&str) -> String + Send + 'static) -> Stream {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut calls = JoinSet::new();
            let mut ticks = tokio::time::interval(EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut number = 0usize;
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stopped.changed() => break,
                }
                while let Some(done) = calls.try_join_next() {
                    count(&mut tally, done);
                }
                let Some((replica, address)) = roster
                    .next_serving()
                    .filter(|_| calls.len() < MAX_IN_FLIGHT)
                else {
                    tally.skipped += 1;
                    continue;
                };
                number += 1;
                let token = format!("job-{number}");
                let scraper = scraper(&format!("chaos {token}"), "inactive", &url(&token));
                calls.spawn(enqueue(address, replica, token, scraper));
            }
            while let Some(done) = calls.join_next().await {
                count(&mut tally, done);
            }
            tally
        });
        Stream {
            stop,
            task: Some(task),
        }
    }

    /// Stops enqueueing and waits for the calls in flight.
    pub async fn stop(mut self) -> BoxResult<Tally> {
        let _ = self.stop.send(true);
        let task = self.task.take().ok_or("the stream was stopped already")?;
        Ok(task.await?)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Why a job was not acknowledged.
enum Unacknowledged {
    Refused,
    Failed,
}

fn count(
    tally: &mut Tally,
    done: Result<Result<Acknowledged, Unacknowledged>, tokio::task::JoinError>,
) {
    match done {
        Ok(Ok(acknowledged)) => tally.acknowledged.push(acknowledged),
        Ok(Err(Unacknowledged::Refused)) => tally.refused += 1,
        Ok(Err(Unacknowledged::Failed)) | Err(_) => tally.failed += 1,
    }
}

async fn enqueue(
    address: SocketAddr,
    replica: usize,
    token: String,
    scraper: Value,
) -> Result<Acknowledged, Unacknowledged> {
    let mut client = within(Client::connect(address)).await?;
    let created = call(&mut client, "create_scraper", json!({"scraper": scraper})).await?;
    let scraper_id = created["id"].as_i64().ok_or(Unacknowledged::Failed)?;
    let job = call(
        &mut client,
        "enqueue_scraper",
        json!({"scraper_id": scraper_id, "priority": 2}),
    )
    .await?;
    let job_id = job["id"].as_i64().ok_or(Unacknowledged::Failed)?;
    Ok(Acknowledged {
        token,
        scraper_id,
        job_id,
        replica,
        at: Utc::now(),
    })
}

async fn call(client: &mut Client, method: &str, params: Value) -> Result<Value, Unacknowledged> {
    within(client.call(method, params))
        .await?
        .map_err(|_| Unacknowledged::Refused)
}

/// A call's outcome within the request timeout.
async fn within<T>(
    call: impl std::future::Future<Output = BoxResult<T>>,
) -> Result<T, Unacknowledged> {
    match tokio::time::timeout(Duration::from_secs(REQUEST_TIMEOUT_SECONDS), call).await {
        Ok(Ok(value)) => Ok(value),
        _ => Err(Unacknowledged::Failed),
    }
}
