//! The worker: claims jobs from the queue and runs their handlers.
//!
//! Up to `max_concurrency` jobs run at once. Idle, the worker sleeps until the queue says a
//! job was enqueued (with a polling fallback). Each job runs in a task of its own, so a
//! panicking handler fails its job and nothing else; a heartbeat loop keeps the job alive in
//! the queue and flushes its log; a kill (from any replica) cancels the handler at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::error::Error;
use crate::model::{JobLogLine, LogLevel, Scraper, ScraperJob, ScraperJobId, ScraperJobStatus};
use crate::scraper::{self, Handlers, JobHooks, Runtime, ScraperContext};
use crate::storage::{Completion, Storages};

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Jobs running at once.
    pub max_concurrency: usize,
    /// How often a running job tells the queue it is alive (and its log is flushed).
    pub heartbeat_interval: Duration,
    /// How often an idle worker looks at the queue even without a wake-up.
    pub poll_interval: Duration,
    /// On shutdown, how long running jobs may take to finish before they are failed.
    pub shutdown_grace: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            max_concurrency: 50,
            heartbeat_interval: Duration::from_secs(5),
            poll_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Claims and runs jobs until shut down.
pub struct Worker {
    storages: Storages,
    handlers: Arc<Handlers>,
    runtime: Runtime,
    settings: WorkerSettings,
    running: Running,
}

/// How long a busy worker waits for more free slots before claiming, so that one claim
/// statement takes several jobs. Short against any real job; long against a no-op one.
const BATCH_GATHERING: Duration = Duration::from_millis(2);

/// The cancel switches of the jobs this worker runs, by job id.
type Running = Arc<Mutex<HashMap<ScraperJobId, watch::Sender<bool>>>>;

/// A view of how many jobs a worker is running.
#[derive(Clone)]
pub struct RunningJobs(Running);

impl RunningJobs {
    pub fn count(&self) -> usize {
        self.0.lock().expect("not poisoned").len()
    }
}

impl Worker {
    pub fn new(
        storages: Storages,
        handlers: Arc<Handlers>,
        runtime: Runtime,
        settings: WorkerSettings,
    ) -> Self {
        Worker {
            storages,
            handlers,
            runtime,
            settings,
            running: Running::default(),
        }
    }

    /// How many jobs this worker runs right now (it stays valid after `run` starts).
    pub fn running_jobs(&self) -> RunningJobs {
        RunningJobs(self.running.clone())
    }

    /// Runs until `shutdown` turns true, then stops claiming, gives running jobs
    /// `shutdown_grace` to finish and fails the rest (so none stays `started` forever).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let Worker {
            storages,
            handlers,
            runtime,
            settings,
            running,
        } = self;
        let slots = Arc::new(Semaphore::new(settings.max_concurrency.max(1)));
        let mut jobs = JoinSet::new();
        let enqueued = storages.jobs.enqueued();
        let kill_listener =
            tokio::spawn(cancel_killed_jobs(storages.jobs.kills(), running.clone()));
        let (completions, completed) = tokio::sync::mpsc::unbounded_channel();
        let completer = tokio::spawn(record_completions(storages.clone(), completed));

        let mut backlog = false;
        while !*shutdown.borrow() {
            // Wait for a free slot first: claiming more jobs than we can run would leave them
            // `started` without anyone heart-beating them.
            let first_slot = tokio::select! {
                slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                _ = shutdown.changed() => break,
            };
            let mut claim_slots = vec![first_slot];
            while let Ok(slot) = slots.clone().try_acquire_owned() {
                claim_slots.push(slot);
            }
            // With a backlog, slots free up one by one; claiming each alone would cost a
            // statement per job. Wait briefly for a quarter of the slots to gather a batch.
            if backlog {
                let batch = (settings.max_concurrency / 4).max(1);
                let gathering = tokio::time::sleep(BATCH_GATHERING);
                tokio::pin!(gathering);
                while claim_slots.len() < batch {
                    tokio::select! {
                        slot = slots.clone().acquire_owned() => claim_slots.push(slot.expect("the semaphore is never closed")),
                        _ = &mut gathering => break,
                    }
                }
            }
            // Register for the wake-up before looking, so an enqueue in between is not missed.
            let woken = enqueued.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let claimed = match storages.jobs.dequeue_scraper_jobs(claim_slots.len()).await {
                Ok(claimed) => {
                    // A full claim means more jobs are probably waiting.
                    backlog = claimed.len() == claim_slots.len();
                    claimed
                }
                Err(error) => {
                    tracing::error!(error = %error.describe(), ?error, "could not claim jobs; retrying");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                drop(claim_slots);
                tokio::select! {
                    _ = &mut woken => {}
                    _ = tokio::time::sleep(settings.poll_interval) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            // Slots beyond the claimed jobs go back to the pool when dropped.
            for (job, slot) in claimed.into_iter().zip(claim_slots) {
                let (cancel, cancelled) = watch::channel(false);
                running.lock().expect("not poisoned").insert(job.id, cancel);
                let run = JobRun {
                    storages: storages.clone(),
                    handlers: handlers.clone(),
                    runtime: runtime.clone(),
                    settings: settings.clone(),
                    running: running.clone(),
                    completions: completions.clone(),
                };
                jobs.spawn(async move {
                    run.run(job, cancelled).await;
                    drop(slot);
                });
            }
            // Reap finished tasks so the set does not grow without bound.
            while jobs.try_join_next().is_some() {}
        }

        let grace = tokio::time::sleep(settings.shutdown_grace);
        tokio::pin!(grace);
        loop {
            tokio::select! {
                next = jobs.join_next() => if next.is_none() { break },
                _ = &mut grace => {
                    tracing::warn!(jobs = jobs.len(), "shutdown grace period over; failing the jobs still running");
                    let unfinished: Vec<ScraperJobId> = running.lock().expect("not poisoned").keys().copied().collect();
                    jobs.shutdown().await;
                    for job_id in unfinished {
                        let result = Some("The worker shut down before the job finished".to_owned());
                        if let Err(error) = storages.jobs.finish_scraper_job(job_id, ScraperJobStatus::Failed, result).await {
                            tracing::error!(job_id, error = %error.describe(), "could not fail an unfinished job");
                        }
                    }
                    break;
                }
            }
        }
        kill_listener.abort();
        // Every job task has ended and dropped its sender: the completer drains and stops.
        drop(completions);
        let _ = completer.await;
    }
}

/// Where job runs send their ends, each with a way to learn whether it was recorded.
type Completions =
    tokio::sync::mpsc::UnboundedSender<(Completion, tokio::sync::oneshot::Sender<Option<bool>>)>;

/// Records finished jobs in batches: whatever completions queued up while the previous batch
/// was being written go together in the next, so a busy worker writes one transaction per
/// batch instead of one per job, and an idle one adds no delay.
async fn record_completions(
    storages: Storages,
    mut completed: tokio::sync::mpsc::UnboundedReceiver<(
        Completion,
        tokio::sync::oneshot::Sender<Option<bool>>,
    )>,
) {
    const MAX_BATCH: usize = 500;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while completed.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (completions, replies): (Vec<Completion>, Vec<_>) = batch.drain(..).unzip();
        let mut outcome = storages.jobs.finish_scraper_jobs(&completions).await;
        for retry in 1..=3 {
            let Err(error) = &outcome else { break };
            // A brief database outage should not lose results: retry before giving up (the
            // jobs would then be declared dead by the scheduler).
            tracing::warn!(error = %error.describe(), retry, jobs = completions.len(), "could not record finished jobs; retrying");
            tokio::time::sleep(Duration::from_millis(200 * retry)).await;
            outcome = storages.jobs.finish_scraper_jobs(&completions).await;
        }
        match outcome {
            Ok(applied) => {
                for (reply, applied) in replies.into_iter().zip(applied) {
                    let _ = reply.send(Some(applied));
                }
            }
            Err(error) => {
                tracing::error!(error = %error.describe(), ?error, jobs = completions.len(), "could not record finished jobs");
                for reply in replies {
                    let _ = reply.send(None);
                }
            }
        }
    }
}

/// Cancels the handlers of jobs killed anywhere.
async fn cancel_killed_jobs(
    mut kills: tokio::sync::broadcast::Receiver<ScraperJobId>,
    running: Running,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match kills.recv().await {
            Ok(job_id) => {
                if let Some(cancel) = running.lock().expect("not poisoned").get(&job_id) {
                    let _ = cancel.send(true);
                }
            }
            // Missed kills are still caught by the next heartbeat.
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        }
    }
}

/// Everything one job's run needs.
struct JobRun {
    storages: Storages,
    handlers: Arc<Handlers>,
    runtime: Runtime,
    settings: WorkerSettings,
    completions: Completions,
    running: Running,
}

/// How a handler run ended.
enum Outcome {
    Finished(ScraperJobStatus, String),
    /// Killed or declared dead elsewhere: the queue already has the final status.
    Lost,
}

impl JobRun {
    async fn run(self, job: ScraperJob, cancelled: watch::Receiver<bool>) {
        let span = tracing::info_span!("job", job_id = job.id, scraper_id = job.scraper.id, handler = %job.scraper.handler);
        tracing::Instrument::instrument(self.run_in_span(job, cancelled), span).await
    }

    async fn run_in_span(self, job: ScraperJob, cancelled: watch::Receiver<bool>) {
        if let Some(started) = job.started_at {
            let waited = (started - job.created_at).to_std().unwrap_or_default();
            metrics::histogram!("sneakpeek_time_in_queue_seconds").record(waited.as_secs_f64());
        }
        let running_since = std::time::Instant::now();
        let hooks = Arc::new(WorkerHooks::new(
            self.storages.clone(),
            job.id,
            job.scraper.clone(),
        ));
        hooks.log(
            LogLevel::Info,
            format!(
                "Running scraper '{}' with handler '{}'",
                job.scraper.name, job.scraper.handler
            ),
        );

        let outcome = match self.handlers.get(&job.scraper.handler) {
            None => Outcome::Finished(
                ScraperJobStatus::Failed,
                format!("Unknown scraper handler '{}'", job.scraper.handler),
            ),
            Some(handler) => {
                match ScraperContext::new(job.scraper.clone(), hooks.clone(), &self.runtime) {
                    Err(invalid_config) => {
                        Outcome::Finished(ScraperJobStatus::Failed, invalid_config.to_string())
                    }
                    Ok(context) => {
                        let mut handler_task =
                            tokio::spawn(async move { handler.run(&context).await });
                        let deadline = job.scraper.timeout_seconds.map(Duration::from_secs);
                        let timeout = async {
                            match deadline {
                                Some(limit) => tokio::time::sleep(limit).await,
                                None => std::future::pending().await,
                            }
                        };
                        tokio::pin!(timeout);
                        let cancel = until_cancelled(cancelled);
                        tokio::pin!(cancel);
                        let mut heartbeats =
                            tokio::time::interval(self.settings.heartbeat_interval);
                        heartbeats.tick().await; // the first tick is immediate; the claim was the first beat
                        loop {
                            tokio::select! {
                                joined = &mut handler_task => break match joined {
                                    Ok(Ok(result)) => Outcome::Finished(ScraperJobStatus::Succeeded, result),
                                    Ok(Err(error)) => Outcome::Finished(ScraperJobStatus::Failed, error.to_string()),
                                    Err(join) if join.is_panic() => Outcome::Finished(ScraperJobStatus::Failed, format!("The handler panicked: {}", panic_message(join.into_panic()))),
                                    Err(_) => Outcome::Lost,
                                },
                                _ = &mut timeout => {
                                    handler_task.abort();
                                    let seconds = deadline.map_or(0, |limit| limit.as_secs());
                                    break Outcome::Finished(ScraperJobStatus::Failed, format!("{} after {seconds} s", Error::JobTimedOut));
                                }
                                _ = &mut cancel => {
                                    handler_task.abort();
                                    break Outcome::Lost;
                                }
                                _ = heartbeats.tick() => {
                                    hooks.flush_log().await;
                                    match self.storages.jobs.heartbeat(job.id).await {
                                        Ok(()) => {}
                                        Err(Error::PingFinished) | Err(Error::ScraperJobNotFound(_)) => {
                                            handler_task.abort();
                                            break Outcome::Lost;
                                        }
                                        // The database may be briefly unreachable: keep running; the
                                        // dead timeout is several heartbeats long.
                                        Err(error) => tracing::warn!(error = %error.describe(), "heartbeat failed"),
                                    }
                                }
                            }
                        }
                    }
                }
            }
        };

        match outcome {
            Outcome::Finished(status, result) => {
                let level = if status == ScraperJobStatus::Succeeded {
                    LogLevel::Info
                } else {
                    LogLevel::Error
                };
                hooks.log(level, format!("Job {status}"));
                if status != ScraperJobStatus::Succeeded {
                    hooks.log(LogLevel::Error, result.clone());
                }
                let completion = Completion {
                    job_id: job.id,
                    status,
                    result: Some(result),
                    log: hooks.take_log(),
                };
                let (reply, recorded) = tokio::sync::oneshot::channel();
                let _ = self.completions.send((completion, reply));
                match recorded.await.ok().flatten() {
                    Some(true) => {
                        let outcome = if status == ScraperJobStatus::Succeeded {
                            "success"
                        } else {
                            "failed"
                        };
                        metrics::counter!("sneakpeek_scraper_jobs_total", "type" => outcome)
                            .increment(1);
                        metrics::histogram!("sneakpeek_job_duration_seconds", "type" => outcome)
                            .record(running_since.elapsed().as_secs_f64());
                        tracing::debug!(%status, "job finished")
                    }
                    Some(false) => tracing::info!(
                        "job was killed or declared dead before it finished; its result is dropped"
                    ),
                    None => tracing::error!("the job's result could not be recorded"),
                }
            }
            Outcome::Lost => {
                hooks.log(
                    LogLevel::Warning,
                    "Job stopped: it was killed or declared dead".to_owned(),
                );
                hooks.flush_log().await;
                tracing::info!("job stopped: killed or declared dead");
            }
        }
        self.running.lock().expect("not poisoned").remove(&job.id);
    }
}

/// Completes when the job's cancel switch turns on (never, if it is dropped unused).
async fn until_cancelled(mut cancelled: watch::Receiver<bool>) {
    loop {
        if *cancelled.borrow_and_update() {
            return;
        }
        if cancelled.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// The worker's side of a running job: heartbeats, state, and a log buffered in memory and
/// written in batches (one statement per heartbeat, not one per line).
struct WorkerHooks {
    storages: Storages,
    job_id: ScraperJobId,
    scraper: Scraper,
    log: Mutex<LogBuffer>,
}

#[derive(Default)]
struct LogBuffer {
    next_id: i64,
    pending: Vec<JobLogLine>,
}

impl WorkerHooks {
    fn new(storages: Storages, job_id: ScraperJobId, scraper: Scraper) -> Self {
        WorkerHooks {
            storages,
            job_id,
            scraper,
            log: Mutex::new(LogBuffer {
                next_id: 1,
                pending: Vec::new(),
            }),
        }
    }

    /// The lines not written yet.
    fn take_log(&self) -> Vec<JobLogLine> {
        std::mem::take(&mut self.log.lock().expect("not poisoned").pending)
    }

    async fn flush_log(&self) {
        let lines = self.take_log();
        if lines.is_empty() {
            return;
        }
        if let Err(error) = self.storages.jobs.append_job_log(self.job_id, &lines).await {
            tracing::warn!(error = %error.describe(), lines = lines.len(), "could not write the job log");
        }
    }
}

#[async_trait]
impl JobHooks for WorkerHooks {
    async fn heartbeat(&self) -> Result<(), Error> {
        self.storages.jobs.heartbeat(self.job_id).await
    }

    async fn update_scraper_state(&self, state: Option<String>) -> Result<Scraper, Error> {
        if self.scraper.id < 0 {
            // An ephemeral run: there is no stored scraper; the state lives for this run.
            return Ok(Scraper {
                state,
                ..self.scraper.clone()
            });
        }
        self.storages
            .scrapers
            .update_scraper_state(self.scraper.id, state)
            .await
    }

    fn log(&self, level: scraper::LogLevel, message: String) {
        let mut log = self.log.lock().expect("not poisoned");
        let id = log.next_id;
        log.next_id += 1;
        log.pending.push(JobLogLine {
            id,
            at: Utc::now(),
            level,
            message,
        });
    }
}
