//! Workloads that drive the engine in this process, without HTTP: the queue burn-down, the
//! idle pickup latency, the scheduler's precision and the memory of a loaded engine.
//!
//! They share one trivial handler, `noop`, which only counts its runs and remembers when the
//! last one started.

pub mod memory;
pub mod queue;
pub mod scheduler;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use engine::model::{Scraper, ScraperSchedule};
use engine::scraper::{
    HandlerError, Handlers, MiddlewareSettings, Runtime, ScraperContext, ScraperHandler,
};
use engine::storage::Storages;
use engine::Engine;
use serde_json::json;
use tokio::sync::Notify;

use crate::BoxResult;

/// What the `noop` handler has seen.
#[derive(Default)]
pub struct Runs {
    count: AtomicUsize,
    /// The count someone waits for: the handler wakes the waiter only when it is reached, so
    /// measuring adds no wake-up per job.
    target: AtomicUsize,
    last_start: Mutex<Option<Instant>>,
    reached: Notify,
}

impl Runs {
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Waits until `target` runs have started; returns when the last one did.
    pub async fn wait_for(&self, target: usize, timeout: Duration) -> BoxResult<Instant> {
        self.target.store(target, Ordering::Release);
        tokio::time::timeout(timeout, async {
            // `notify_one` keeps a permit when nobody waits, so no start is missed between
            // the check and the wait.
            while self.count() < target {
                self.reached.notified().await;
            }
        })
        .await
        .map_err(|_| {
            format!(
                "only {} of {target} runs started within {timeout:?}",
                self.count()
            )
        })?;
        Ok(self
            .last_start
            .lock()
            .expect("not poisoned")
            .expect("a run started"))
    }
}

/// The trivial handler every engine workload runs.
struct Noop(Arc<Runs>);

#[async_trait]
impl ScraperHandler for Noop {
    fn name(&self) -> &str {
        "noop"
    }

    async fn run(&self, _: &ScraperContext) -> Result<String, HandlerError> {
        let started = Instant::now();
        *self.0.last_start.lock().expect("not poisoned") = Some(started);
        let count = self.0.count.fetch_add(1, Ordering::AcqRel) + 1;
        if count >= self.0.target.load(Ordering::Acquire) {
            self.0.reached.notify_one();
        }
        Ok(String::new())
    }
}

/// An engine whose only handler is `noop`.
pub fn engine(storages: Storages) -> BoxResult<(Engine, Arc<Runs>)> {
    let runs = Arc::new(Runs::default());
    let mut handlers = Handlers::default();
    handlers.register(Noop(runs.clone()));
    Ok((
        Engine::new(
            storages,
            handlers,
            Runtime::new(MiddlewareSettings::default())?,
        ),
        runs,
    ))
}

/// A scraper of the `noop` handler with this id (`-1`: to be assigned on create).
pub fn scraper(id: i64, schedule: ScraperSchedule) -> Scraper {
    serde_json::from_value(json!({
        "id": id,
        "name": format!("bench {id}"),
        "schedule": schedule,
        "handler": "noop",
        "config": {"params": {"url": "http://127.0.0.1/"}},
    }))
    .expect("a valid scraper")
}

/// Where an engine workload keeps its data.
pub enum Store<'a> {
    Memory,
    Postgres(&'a crate::pg::Database),
}

impl Store<'_> {
    pub async fn storages(&self) -> BoxResult<Storages> {
        Ok(match self {
            Store::Memory => Storages::in_memory(Vec::new(), false),
            Store::Postgres(database) => Storages::postgres(&database.url, false).await?,
        })
    }

    pub fn database(&self) -> Option<&crate::pg::Database> {
        match self {
            Store::Memory => None,
            Store::Postgres(database) => Some(database),
        }
    }
}

/// The `q`-quantile (0..=1) of unsorted samples, in milliseconds.
pub fn quantile_ms(samples: &mut [Duration], q: f64) -> f64 {
    samples.sort_unstable();
    if samples.is_empty() {
        return f64::NAN;
    }
    let index = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[index].as_secs_f64() * 1000.0
}
