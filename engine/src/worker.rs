//! The worker: claims jobs from the queue and runs their handlers.
//!
//! Up to `max_concurrency` jobs run at once, each in a task of its own, so a panicking
//! handler fails its job and nothing else. Four parts share the work:
//! - the claim loop ([`Worker::run`]) takes as many pending jobs as there are free slots in
//!   one claim and starts a task per job; idle, it sleeps until the queue says a job was
//!   enqueued (with a polling fallback). With a backlog it also claims up to `claim_ahead`
//!   jobs beyond the free slots, so the next jobs are at hand when a slot frees and one claim
//!   statement serves many jobs; those wait in their tasks for a slot, and go back to the
//!   queue on shutdown;
//! - a job's task waits for a slot, has the starter mark it running, runs the handler under
//!   the scraper's timeout and hands the outcome to the recorder; its slot frees as soon as
//!   the handler is done;
//! - the starter marks jobs running in the queue, in batches, before their handlers start:
//!   a job whose handler never started goes back to the queue if this worker is lost, and
//!   only a job that really ran can end `dead`;
//! - the recorder writes finished jobs in batches: one transaction per batch, not per job.
//!   While the storage is unreachable it keeps them and retries until it is back; job tasks
//!   then wait to hand over their outcome, holding their slots, so claiming stops (at most
//!   `max_concurrency + claim_ahead` jobs plus [`RECORDER_BACKLOG`] outcomes wait in memory);
//! - the supervisor heart-beats every claimed job in one call per interval and flushes their
//!   logs; it stops a handler at once when its job is killed (from any replica), at the next
//!   heartbeat when the job was declared dead, and fails a job whose handler blocks its
//!   thread past the timeout.
//!
//! A job is reported by whoever takes it out of the running set: its own task when the
//! handler ends, or the supervisor or the shutdown when they stop it. So each job is
//! reported once, and a job stopped as killed is never reported as finished.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use futures_util::FutureExt;
use tokio::sync::{broadcast, mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::Instrument;

use crate::error::Error;
use crate::model::{
    JobLogLine, LogLevel, Scraper, ScraperId, ScraperJob, ScraperJobId, ScraperJobStatus,
};
use crate::retry::{RetryPolicy, RetryReason};
use crate::scraper::{self, run_scraper, Handlers, JobHooks, Runtime};
use crate::storage::{Claim, Completion, NextAttempt, Storages};
use crate::sync::lock;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Jobs running at once.
    pub max_concurrency: usize,
    /// With a backlog, how many jobs beyond the free slots one claim may take: they wait in
    /// this worker (heart-beaten) for a slot. 0 claims only for free slots.
    pub claim_ahead: usize,
    /// How often running jobs tell the queue they are alive (and their logs are flushed).
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
            claim_ahead: 50,
            heartbeat_interval: Duration::from_secs(5),
            poll_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// How long a busy worker waits for more free slots before claiming, so that one claim
/// statement takes several jobs. Short against any real job; long against a no-op one.
const BATCH_GATHERING: Duration = Duration::from_millis(2);

/// Most finished jobs written in one batch (and most jobs marked running in one statement).
const MAX_RECORD_BATCH: usize = 500;

/// Finished jobs waiting for the recorder: while the storage is down, job tasks wait beyond
/// this many, holding their slots, which stops claiming.
pub const RECORDER_BACKLOG: usize = 2 * MAX_RECORD_BATCH;

/// The longest wait between two tries of a write the storage could not take.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// After shutdown, how long finished jobs may still wait for an unreachable storage before
/// they are given up (they stay `started`, and end `dead` once the storage is back).
const RECORD_GRACE_ON_SHUTDOWN: Duration = Duration::from_secs(5);

/// How long past its timeout a handler may keep its thread before the supervisor fails the
/// job (a handler that yields is stopped at the timeout itself, by its own task).
const BLOCKED_HANDLER_GRACE: Duration = Duration::from_secs(1);

/// Claims and runs jobs until shut down.
pub struct Worker {
    shared: Arc<Shared>,
    settings: WorkerSettings,
    recorder_inbox: mpsc::Receiver<Finished>,
    starter_inbox: mpsc::Receiver<StartRequest>,
}

/// What the claim loop, the job tasks and the supervisor share.
struct Shared {
    storages: Storages,
    handlers: Arc<Handlers>,
    runtime: Runtime,
    running: Running,
    /// Handlers running at once: `max_concurrency`.
    slots: Arc<Semaphore>,
    /// To the starter: a job about to run, and where to answer whether it may.
    starter: mpsc::Sender<StartRequest>,
    /// To the recorder. Bounded: when the queue cannot keep up, job tasks wait here holding
    /// their slots, and claiming slows down with it.
    recorder: mpsc::Sender<Finished>,
}

/// The jobs this worker has claimed and not reported yet, by id.
type Running = Arc<Mutex<HashMap<ScraperJobId, RunningJob>>>;

struct RunningJob {
    task: AbortHandle,
    hooks: Arc<WorkerHooks>,
    /// The job's timeout: its scraper's, or the operator's default.
    timeout_seconds: u64,
    phase: Phase,
}

/// Where a claimed job is in this worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Claimed ahead, waiting for a slot: it can still go back to the queue.
    Waiting,
    /// Being marked running in the queue; its handler starts next.
    Starting,
    /// Its handler runs since this instant.
    Running(Instant),
}

/// A job about to run, and where the starter answers whether it may.
type StartRequest = (Claim, oneshot::Sender<bool>);

impl RunningJob {
    fn started(&self) -> Option<Instant> {
        match self.phase {
            Phase::Running(started) => Some(started),
            Phase::Waiting | Phase::Starting => None,
        }
    }

    /// Whether the handler has held on past its timeout by more than `grace`. A timeout too
    /// large to be an instant is never reached.
    fn is_overdue(&self, now: Instant, grace: Duration) -> bool {
        self.started().is_some_and(|started| {
            started
                .checked_add(Duration::from_secs(self.timeout_seconds))
                .and_then(|deadline| deadline.checked_add(grace))
                .is_some_and(|deadline| now >= deadline)
        })
    }
}

/// A job whose handler is done or was stopped, on its way to the queue.
struct Finished {
    completion: Completion,
    started: Instant,
}

/// A view of how many jobs a worker is running.
#[derive(Clone)]
pub struct RunningJobs(Running);

impl RunningJobs {
    /// Jobs whose handler runs (not those claimed ahead, waiting for a slot).
    pub fn count(&self) -> usize {
        lock(&self.0)
            .values()
            .filter(|job| job.started().is_some())
            .count()
    }
}

impl Worker {
    /// A worker that claims from `storages`' queue and runs each job with its scraper's handler
    /// from `handlers`, scraping through `runtime`. It does nothing until [`Worker::run`].
    pub fn new(
        storages: Storages,
        handlers: Arc<Handlers>,
        runtime: Runtime,
        settings: WorkerSettings,
    ) -> Self {
        let (recorder, recorder_inbox) = mpsc::channel(RECORDER_BACKLOG);
        let (starter, starter_inbox) = mpsc::channel(MAX_RECORD_BATCH);
        Worker {
            shared: Arc::new(Shared {
                storages,
                handlers,
                runtime,
                running: Running::default(),
                slots: Arc::new(Semaphore::new(settings.max_concurrency.max(1))),
                starter,
                recorder,
            }),
            settings,
            recorder_inbox,
            starter_inbox,
        }
    }

    /// How many jobs this worker runs right now (it stays valid after `run` starts).
    pub fn running_jobs(&self) -> RunningJobs {
        RunningJobs(self.shared.running.clone())
    }

    /// Runs until `shutdown` turns true, then stops claiming, hands the jobs claimed ahead
    /// back to the queue, gives running jobs `shutdown_grace` to finish and fails the rest
    /// (so none stays `started` forever).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let Worker {
            shared,
            settings,
            recorder_inbox,
            starter_inbox,
        } = self;
        let max_concurrency = settings.max_concurrency.max(1);
        // Claimed and not yet reported: the running jobs and those claimed ahead.
        let claims = Arc::new(Semaphore::new(max_concurrency + settings.claim_ahead));
        let (stop_writers, writers_stop) = watch::channel(false);
        let recorder = tokio::spawn(record_completions(
            shared.storages.clone(),
            recorder_inbox,
            writers_stop.clone(),
        ));
        let starter = tokio::spawn(mark_running(
            shared.storages.clone(),
            starter_inbox,
            writers_stop,
        ));
        let supervisor = tokio::spawn(supervise(
            shared.clone(),
            shared.storages.jobs.kills(),
            settings.heartbeat_interval,
        ));
        let enqueued = shared.storages.jobs.enqueued();

        let mut backlog = false;
        while !*shutdown.borrow() {
            // Wait for room first: claiming more jobs than we can run or hold would leave
            // them `started` without anyone running them.
            let first = tokio::select! {
                claim = claims.clone().acquire_owned() => claim.expect("the semaphore is never closed"),
                _ = shutdown.changed() => break,
            };
            let mut permits = vec![first];
            while let Ok(claim) = claims.clone().try_acquire_owned() {
                permits.push(claim);
            }
            if backlog {
                // Room frees up one job at a time; claiming each alone would cost a statement
                // per job. Wait briefly for a quarter of it to gather a batch.
                let batch = (max_concurrency + settings.claim_ahead) / 4;
                let gathering = tokio::time::sleep(BATCH_GATHERING);
                tokio::pin!(gathering);
                while permits.len() < batch.max(1) {
                    tokio::select! {
                        claim = claims.clone().acquire_owned() => permits.push(claim.expect("the semaphore is never closed")),
                        _ = &mut gathering => break,
                    }
                }
            } else {
                // Without a backlog, take no more than can start now: other replicas may
                // have free slots for the rest.
                permits.truncate(shared.slots.available_permits().max(1));
            }
            // Register for the wake-up before looking, so an enqueue in between is not missed.
            let woken = enqueued.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let claimed = match shared
                .storages
                .jobs
                .dequeue_scraper_jobs(permits.len())
                .await
            {
                Ok(claimed) => {
                    // A full claim means more jobs are probably waiting.
                    backlog = claimed.len() == permits.len();
                    claimed
                }
                Err(error) => {
                    tracing::error!(error = %error.report(), "could not claim jobs; retrying");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                drop(permits);
                tokio::select! {
                    _ = &mut woken => {}
                    _ = tokio::time::sleep(settings.poll_interval) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            // Permits beyond the claimed jobs go back when dropped.
            for (job, permit) in claimed.into_iter().zip(permits) {
                match Claim::of(&job) {
                    Some(claim) => shared.launch(job, claim, permit),
                    // Not claimed as the queue promises: leave it to the dead-job check.
                    None => {
                        tracing::error!(job_id = job.id, status = %job.status, "the queue handed out a job that is not started; skipped")
                    }
                }
            }
        }

        shared.release_waiting().await;
        // Every permit back means every job task has ended.
        let all_claims = claims.acquire_many((max_concurrency + settings.claim_ahead) as u32);
        if tokio::time::timeout(settings.shutdown_grace, all_claims)
            .await
            .is_err()
        {
            let unfinished: Vec<RunningJob> =
                lock(&shared.running).drain().map(|(_, job)| job).collect();
            tracing::warn!(
                jobs = unfinished.len(),
                "shutdown grace period over; failing the jobs still running"
            );
            for job in unfinished {
                job.task.abort();
                // As for a lost worker: the job did not fail by itself.
                let failure = Failure::new(
                    RetryReason::Dead,
                    "The worker shut down before the job finished".to_owned(),
                );
                shared
                    .report(
                        &job.hooks,
                        Err(failure),
                        job.started().unwrap_or_else(Instant::now),
                    )
                    .await;
            }
        }
        supervisor.abort();
        let _ = supervisor.await;
        // An aborted handler that never yields keeps its task (and so a sender to the
        // recorder) alive: the recorder stops on this signal, after writing what it has.
        let _ = stop_writers.send(true);
        let _ = recorder.await;
        // Every job task has ended (or was failed above): nobody asks to start any more.
        starter.abort();
        let _ = starter.await;
    }
}

impl Shared {
    /// Starts a claimed job's task; `claim` is its share of the worker's claims.
    fn launch(self: &Arc<Self>, job: ScraperJob, claim: Claim, permit: OwnedSemaphorePermit) {
        let hooks = Arc::new(WorkerHooks::new(self.storages.clone(), &job, claim));
        let timeout_seconds = self.runtime.job_timeout_seconds(&job.scraper);
        let job_id = job.id;
        let span = tracing::info_span!("job", job_id, scraper_id = job.scraper.id, handler = %job.scraper.handler);
        let run = self
            .clone()
            .run_job(job, hooks.clone(), permit)
            .instrument(span);
        // Registered before the task can end: the task reports only a job it finds here.
        let mut running = lock(&self.running);
        let task = tokio::spawn(run).abort_handle();
        running.insert(
            job_id,
            RunningJob {
                task,
                hooks,
                timeout_seconds,
                phase: Phase::Waiting,
            },
        );
    }

    /// A job's task: waits for a slot, has the job marked running, runs the handler and
    /// reports how it ended.
    async fn run_job(
        self: Arc<Self>,
        job: ScraperJob,
        hooks: Arc<WorkerHooks>,
        permit: OwnedSemaphorePermit,
    ) {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        if !self.set_phase(job.id, Phase::Starting) {
            // Handed back on shutdown, or killed, while it waited.
            return;
        }
        let (answer, may_run) = oneshot::channel();
        let allowed =
            self.starter.send((hooks.claim, answer)).await.is_ok() && may_run.await == Ok(true);
        let started = Instant::now();
        if !allowed {
            // Killed or declared lost meanwhile (or the worker is stopping): the queue has
            // its status already; the handler never starts.
            lock(&self.running).remove(&job.id);
            return;
        }
        if !self.set_phase(job.id, Phase::Running(started)) {
            return;
        }
        if let Some(started) = job.started_at.filter(|_| job.attempt == 1) {
            // First attempts only: a retry waited for its due time on purpose.
            let waited = (started - job.created_at).to_std().unwrap_or_default();
            metrics::histogram!("sneakpeek_time_in_queue_seconds").record(waited.as_secs_f64());
        }
        metrics::counter!("sneakpeek_job_attempts_total").increment(1);
        if let Some(previous) = job.attempts.last() {
            hooks.note(
                LogLevel::Info,
                format!(
                    "Attempt {} of {}: attempt {} ended with {}",
                    hooks.attempt,
                    hooks.retry.max_attempts,
                    previous.attempt,
                    previous.reason.label()
                ),
            );
        }
        hooks.note(
            LogLevel::Info,
            format!(
                "Running scraper '{}' with handler '{}'",
                job.scraper.name, job.scraper.handler
            ),
        );
        let job_id = job.id;
        let outcome = AssertUnwindSafe(self.run_handler(job.scraper, hooks.clone()))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                Err(Failure::new(
                    RetryReason::Error,
                    format!("The handler panicked: {}", panic_message(panic)),
                ))
            });
        if lock(&self.running).remove(&job_id).is_none() {
            // The supervisor stopped the job meanwhile and has reported it.
            return;
        }
        self.report(&hooks, outcome, started).await;
        drop((slot, permit));
    }

    /// The handler's result, or how its attempt failed.
    async fn run_handler(
        &self,
        scraper: Scraper,
        hooks: Arc<WorkerHooks>,
    ) -> Result<String, Failure> {
        let seconds = self.runtime.job_timeout_seconds(&scraper);
        let run = run_scraper(&self.handlers, &self.runtime, scraper, hooks);
        // A timeout too long to be an instant is no timeout: tokio's sleeps then never end.
        match tokio::time::timeout(Duration::from_secs(seconds), run).await {
            Ok(outcome) => {
                outcome.map_err(|error| Failure::new(error.retry_reason(), error.to_string()))
            }
            Err(_) => Err(Failure::timed_out(seconds)),
        }
    }

    /// Hands an attempt's end to the recorder, with the log lines not written yet: the job's
    /// end, or, when its retry policy says so, its next attempt.
    async fn report(
        &self,
        hooks: &WorkerHooks,
        outcome: Result<String, Failure>,
        started: Instant,
    ) {
        let (status, result, retry) = match outcome {
            Ok(result) => {
                hooks.note(LogLevel::Info, "Job succeeded".to_owned());
                (ScraperJobStatus::Succeeded, result, None)
            }
            Err(Failure { reason, message }) => {
                let retry = hooks.retry_after(reason);
                match &retry {
                    Some(retry) => hooks.note(
                        LogLevel::Warning,
                        format!(
                            "Attempt {} failed ({}); attempt {} in {:.0} s",
                            hooks.attempt,
                            reason.label(),
                            hooks.attempt + 1,
                            retry.delay.as_secs_f64()
                        ),
                    ),
                    None => hooks.note(LogLevel::Error, "Job failed".to_owned()),
                }
                hooks.note(LogLevel::Error, message.clone());
                (ScraperJobStatus::Failed, message, retry)
            }
        };
        let completion = Completion {
            claim: hooks.claim,
            status,
            result: Some(result),
            log: hooks.take_log(),
            retry,
        };
        // Fails only once the worker has stopped, when nothing can be recorded any more.
        let _ = self
            .recorder
            .send(Finished {
                completion,
                started,
            })
            .await;
    }

    /// Moves a job this worker holds to `phase`; false when it no longer holds it.
    fn set_phase(&self, job_id: ScraperJobId, phase: Phase) -> bool {
        match lock(&self.running).get_mut(&job_id) {
            Some(running) => {
                running.phase = phase;
                true
            }
            None => false,
        }
    }

    /// Takes jobs out of the running set and stops their handlers.
    fn stop(&self, job_ids: impl IntoIterator<Item = ScraperJobId>) -> Vec<RunningJob> {
        let mut running = lock(&self.running);
        job_ids
            .into_iter()
            .filter_map(|job_id| running.remove(&job_id))
            .inspect(|job| job.task.abort())
            .collect()
    }

    /// Stops the handlers of jobs killed or declared dead: the queue already has their final
    /// status, so only their logs are written.
    async fn drop_lost(&self, job_ids: impl IntoIterator<Item = ScraperJobId>) {
        for job in self.stop(job_ids) {
            job.hooks.note(
                LogLevel::Warning,
                "Job stopped: it was killed or declared dead".to_owned(),
            );
            job.hooks.flush_log().await;
            tracing::info!(
                job_id = job.hooks.job_id,
                "job stopped: killed or declared dead"
            );
        }
    }

    /// One heartbeat round: fails jobs whose handler blocks past its timeout, flushes the
    /// logs of the others and tells the queue they are alive, in one call.
    async fn heartbeat(&self) {
        let now = Instant::now();
        let mut overdue = Vec::new();
        let mut alive = Vec::new();
        for (job_id, job) in lock(&self.running).iter() {
            if job.is_overdue(now, BLOCKED_HANDLER_GRACE) {
                overdue.push(*job_id);
            } else {
                alive.push(job.hooks.clone());
            }
        }
        for job in self.stop(overdue) {
            tracing::warn!(
                job_id = job.hooks.job_id,
                "the handler is past its timeout and does not yield; failing the job"
            );
            let started = job.started().unwrap_or(now);
            self.report(
                &job.hooks,
                Err(Failure::timed_out(job.timeout_seconds)),
                started,
            )
            .await;
        }
        if alive.is_empty() {
            return;
        }
        // The heartbeat goes first: however much a job logs, writing it never delays the
        // signal that keeps every job alive.
        let claims: Vec<Claim> = alive.iter().map(|hooks| hooks.claim).collect();
        match self.storages.jobs.heartbeat_jobs(&claims).await {
            Ok(lost) => self.drop_lost(lost).await,
            // The database may be briefly unreachable: keep running; the dead timeout is
            // several heartbeats long, and the leader waits that long after an outage.
            Err(error) => {
                tracing::warn!(error = %error.report(), jobs = claims.len(), "heartbeat failed")
            }
        }
        for hooks in &alive {
            hooks.flush_log().await;
        }
    }

    /// On shutdown: hands the jobs claimed ahead, still waiting for a slot, back to the queue.
    async fn release_waiting(&self) {
        let waiting: Vec<Claim> = lock(&self.running)
            .extract_if(|_, job| job.phase == Phase::Waiting)
            .map(|(_, job)| {
                job.task.abort();
                job.hooks.claim
            })
            .collect();
        if waiting.is_empty() {
            return;
        }
        match self.storages.jobs.release_scraper_jobs(&waiting).await {
            Ok(released) => tracing::info!(released, "jobs claimed ahead went back to the queue"),
            // They stay `started` without heartbeats: the scheduler declares them dead.
            Err(error) => {
                tracing::error!(error = %error.report(), jobs = waiting.len(), "could not hand claimed jobs back to the queue")
            }
        }
    }
}

/// How an attempt failed: why, as its retry policy reads it, and the message it fails with.
struct Failure {
    reason: RetryReason,
    message: String,
}

impl Failure {
    fn new(reason: RetryReason, message: String) -> Self {
        Failure { reason, message }
    }

    fn timed_out(seconds: u64) -> Self {
        Failure::new(
            RetryReason::Timeout,
            format!("{} after {seconds} s", Error::JobTimedOut),
        )
    }
}

/// Heart-beats the running jobs and stops the handlers of jobs killed anywhere.
async fn supervise(
    shared: Arc<Shared>,
    mut kills: broadcast::Receiver<ScraperJobId>,
    heartbeat_interval: Duration,
) {
    use tokio::sync::broadcast::error::RecvError;
    let mut heartbeats = tokio::time::interval(heartbeat_interval);
    heartbeats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeats.tick().await; // the first tick is immediate; the claim was the first beat
    let mut kills_open = true;
    loop {
        tokio::select! {
            kill = kills.recv(), if kills_open => match kill {
                Ok(job_id) => shared.drop_lost([job_id]).await,
                // Missed kills are caught by the next heartbeat.
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => kills_open = false,
            },
            _ = heartbeats.tick() => shared.heartbeat().await,
        }
    }
}

/// Records finished jobs in batches: whatever finished while the previous batch was being
/// written goes together in the next, so a busy worker writes one transaction per batch
/// instead of one per job, and an idle one adds no delay. Stops when told to, once what was
/// sent before is written (or, with the storage unreachable, given up after a short grace).
async fn record_completions(
    storages: Storages,
    mut inbox: mpsc::Receiver<Finished>,
    mut stop: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(MAX_RECORD_BATCH);
    loop {
        let received = tokio::select! {
            received = inbox.recv_many(&mut batch, MAX_RECORD_BATCH) => received,
            _ = stop.wait_for(|stop| *stop), if !inbox.is_closed() => {
                inbox.close();
                continue;
            }
        };
        if received == 0 {
            return;
        }
        let (completions, started): (Vec<Completion>, Vec<Instant>) = batch
            .drain(..)
            .map(|finished| (finished.completion, finished.started))
            .unzip();
        let applied = record(&storages, &completions, &stop).await;
        for ((completion, started), applied) in completions.iter().zip(started).zip(applied) {
            let job_id = completion.claim.job_id;
            match applied {
                Recorded::Finished => {}
                Recorded::AlreadyFinished => {
                    tracing::info!(
                        job_id,
                        "job was killed or declared dead before it finished; its result is dropped"
                    );
                    continue;
                }
                Recorded::GivenUp => continue,
            }
            if let Some(retry) = completion.retry {
                metrics::counter!("sneakpeek_job_retries_total", "reason" => retry.reason.as_str())
                    .increment(1);
                tracing::debug!(
                    job_id,
                    reason = retry.reason.as_str(),
                    "attempt failed; retry scheduled"
                );
                continue;
            }
            let outcome = if completion.status == ScraperJobStatus::Succeeded {
                "success"
            } else {
                "failed"
            };
            metrics::counter!("sneakpeek_scraper_jobs_total", "type" => outcome).increment(1);
            metrics::histogram!("sneakpeek_job_duration_seconds", "type" => outcome)
                .record(started.elapsed().as_secs_f64());
            tracing::debug!(job_id, status = %completion.status, "job finished");
        }
    }
}

/// What became of a completion handed to the storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recorded {
    Finished,
    /// The job had left `started` already (killed, or declared dead).
    AlreadyFinished,
    /// The storage stayed unreachable past the shutdown grace, or refused even the failure.
    GivenUp,
}

/// Writes completions, waiting out outages: a write the storage could not take (it is
/// unreachable) is retried with backoff until it is back. A batch the storage refuses is
/// written one completion at a time, so one bad completion never takes its batch-mates with
/// it; a completion refused on its own fails its job with the reason instead.
async fn record(
    storages: &Storages,
    completions: &[Completion],
    stop: &watch::Receiver<bool>,
) -> Vec<Recorded> {
    let finished = |applied: Vec<bool>| {
        applied
            .into_iter()
            .map(|applied| {
                if applied {
                    Recorded::Finished
                } else {
                    Recorded::AlreadyFinished
                }
            })
            .collect()
    };
    match write_with_retries(storages, completions, stop).await {
        Ok(applied) => return finished(applied),
        Err(Some(error)) if completions.len() > 1 => {
            tracing::error!(error = %error.report(), jobs = completions.len(), "the storage refused a batch of finished jobs; writing them one by one");
        }
        Err(Some(_)) => {}
        Err(None) => return vec![Recorded::GivenUp; completions.len()],
    }
    let mut outcomes = Vec::with_capacity(completions.len());
    for completion in completions {
        let single = std::slice::from_ref(completion);
        let refusal = match write_with_retries(storages, single, stop).await {
            Ok(applied) => {
                outcomes.extend(finished(applied));
                continue;
            }
            Err(None) => {
                outcomes.push(Recorded::GivenUp);
                continue;
            }
            Err(Some(refusal)) => refusal,
        };
        tracing::error!(job_id = completion.claim.job_id, error = %refusal.report(), "the storage refused a finished job; failing it with the reason");
        let failure = Completion {
            claim: completion.claim,
            status: ScraperJobStatus::Failed,
            result: Some(format!(
                "The job's outcome could not be stored: {}",
                refusal.describe()
            )),
            log: Vec::new(),
            retry: None,
        };
        match write_with_retries(storages, std::slice::from_ref(&failure), stop).await {
            Ok(applied) => outcomes.extend(finished(applied)),
            Err(_) => outcomes.push(Recorded::GivenUp),
        }
    }
    outcomes
}

/// Writes a batch, retrying while the storage is unreachable. `Err(Some)` is a refusal of the
/// batch itself; `Err(None)` means the worker is stopping and the storage stayed unreachable
/// for the whole shutdown grace.
async fn write_with_retries(
    storages: &Storages,
    completions: &[Completion],
    stop: &watch::Receiver<bool>,
) -> Result<Vec<bool>, Option<Error>> {
    let mut retry = Retry::new(stop.clone());
    loop {
        match storages.jobs.finish_scraper_jobs(completions).await {
            Ok(applied) => return Ok(applied),
            Err(error) if error.is_transient() => {
                if !retry
                    .wait(&error, "could not record finished jobs", completions.len())
                    .await
                {
                    tracing::error!(error = %error.report(), jobs = completions.len(), "shutting down with the storage unreachable: finished jobs are given up");
                    return Err(None);
                }
            }
            Err(error) => return Err(Some(error)),
        }
    }
}

/// Backoff between tries of a write the storage could not take: from 100 ms, doubling up to
/// [`MAX_RETRY_DELAY`], for ever, except once the worker stops: then for
/// [`RECORD_GRACE_ON_SHUTDOWN`] more.
struct Retry {
    delay: Duration,
    tries: u32,
    stop: watch::Receiver<bool>,
    give_up_at: Option<Instant>,
}

impl Retry {
    fn new(stop: watch::Receiver<bool>) -> Self {
        Retry {
            delay: Duration::from_millis(100),
            tries: 0,
            stop,
            give_up_at: None,
        }
    }

    /// Waits before the next try; false when it is time to give up.
    async fn wait(&mut self, error: &Error, what: &str, jobs: usize) -> bool {
        self.tries += 1;
        // The first failure and then one in ten: an outage of minutes must not flood the log.
        if self.tries % 10 == 1 {
            tracing::warn!(error = %error.report(), tries = self.tries, jobs, "{what}; retrying until the storage is back");
        }
        let now = Instant::now();
        if *self.stop.borrow() {
            let give_up_at = *self
                .give_up_at
                .get_or_insert(now + RECORD_GRACE_ON_SHUTDOWN);
            if now >= give_up_at {
                return false;
            }
        }
        let pause = tokio::time::sleep(self.delay);
        tokio::pin!(pause);
        tokio::select! {
            _ = &mut pause => {}
            // On shutdown, try again at once and start counting the grace.
            _ = self.stop.wait_for(|stop| *stop), if self.give_up_at.is_none() => {}
        }
        self.delay = (self.delay * 2).min(MAX_RETRY_DELAY);
        true
    }
}

/// Marks jobs running in the queue just before their handlers start, in batches: whatever
/// asked while the previous statement ran goes in the next. While the storage is unreachable
/// the jobs wait (they are heart-beaten meanwhile); a job the queue no longer has started
/// (killed, or handed back) is answered `false` and never runs.
async fn mark_running(
    storages: Storages,
    mut inbox: mpsc::Receiver<StartRequest>,
    stop: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(MAX_RECORD_BATCH);
    while inbox.recv_many(&mut batch, MAX_RECORD_BATCH).await > 0 {
        let claims: Vec<Claim> = batch.iter().map(|(claim, _)| *claim).collect();
        let mut retry = Retry::new(stop.clone());
        let started = loop {
            match storages.jobs.start_scraper_jobs(&claims).await {
                Ok(started) => break started,
                Err(error)
                    if error.is_transient()
                        && retry
                            .wait(&error, "could not mark jobs running", claims.len())
                            .await => {}
                Err(error) => {
                    // Unanswered, the jobs stay claimed without heartbeat and go back to
                    // the queue after the dead timeout.
                    tracing::error!(error = %error.report(), jobs = claims.len(), "could not mark jobs running");
                    break Vec::new();
                }
            }
        };
        let started: std::collections::HashSet<ScraperJobId> = started.into_iter().collect();
        for (claim, answer) in batch.drain(..) {
            let _ = answer.send(started.contains(&claim.job_id));
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
    scraper_id: ScraperId,
    /// The claim this worker holds the job by: every change it makes to the job names it.
    claim: Claim,
    /// The attempt this worker runs, and the policy that says whether another follows.
    attempt: u32,
    retry: RetryPolicy,
    log: Mutex<LogBuffer>,
}

/// Log line ids each attempt may use: attempt `n` numbers its lines from
/// `(n - 1) * LOG_IDS_PER_ATTEMPT + 1`, so the lines of a retried job stay in order (and
/// tell their attempt) without the worker reading the log first. Far above what an attempt
/// logs ([`MAX_LOG_LINES_PER_JOB`] plus the worker's own lines).
pub const LOG_IDS_PER_ATTEMPT: i64 = 1_000_000;

/// Most lines a job's handler may log; later lines are dropped and one line says so. With
/// [`MAX_LOG_BYTES_PER_JOB`], this bounds what a chatty job costs the database and, while
/// the database is down, this worker's memory.
pub const MAX_LOG_LINES_PER_JOB: usize = 10_000;

/// Most bytes of messages a job's handler may log (see [`MAX_LOG_LINES_PER_JOB`]).
pub const MAX_LOG_BYTES_PER_JOB: usize = 4 * 1024 * 1024;

/// Longest message kept whole; a longer one is cut, saying how much was cut.
pub const MAX_LOG_LINE_BYTES: usize = 16 * 1024;

struct LogBuffer {
    next_id: i64,
    pending: Vec<JobLogLine>,
    /// Lines and bytes the handler has logged so far, against the caps.
    handler_lines: usize,
    handler_bytes: usize,
    /// Whether the caps were reached (and said so).
    truncated: bool,
}

impl LogBuffer {
    fn push(&mut self, level: LogLevel, message: String) {
        let id = self.next_id;
        self.next_id += 1;
        self.pending.push(JobLogLine {
            id,
            at: Utc::now(),
            level,
            message,
        });
    }
}

/// `message`, cut to [`MAX_LOG_LINE_BYTES`] (at a character boundary) if longer.
fn bounded_line(mut message: String) -> String {
    if message.len() <= MAX_LOG_LINE_BYTES {
        return message;
    }
    let mut end = MAX_LOG_LINE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let cut = message.len() - end;
    message.truncate(end);
    message.push_str(&format!(" [{cut} more bytes cut]"));
    message
}

impl WorkerHooks {
    fn new(storages: Storages, job: &ScraperJob, claim: Claim) -> Self {
        WorkerHooks {
            storages,
            job_id: job.id,
            scraper_id: job.scraper.id,
            claim,
            attempt: job.attempt,
            // Jobs enqueued before retries existed have no policy: they never retry.
            retry: job.scraper.retry.clone().unwrap_or_else(RetryPolicy::never),
            log: Mutex::new(LogBuffer {
                next_id: i64::from(job.attempt.saturating_sub(1)) * LOG_IDS_PER_ATTEMPT + 1,
                pending: Vec::new(),
                handler_lines: 0,
                handler_bytes: 0,
                truncated: false,
            }),
        }
    }

    /// The retry that follows this attempt failing for `reason`, if its policy has one.
    fn retry_after(&self, reason: RetryReason) -> Option<NextAttempt> {
        let delay = self
            .retry
            .retry_delay(self.attempt, reason, fastrand::f64());
        if delay.is_none() && self.retry.retry_on.contains(&reason) {
            metrics::counter!("sneakpeek_job_retries_exhausted_total", "reason" => reason.as_str())
                .increment(1);
        }
        delay.map(|delay| NextAttempt { reason, delay })
    }

    /// A line from the worker itself (the job's start and outcome): never dropped, so a
    /// job's log always says how it ended.
    fn note(&self, level: LogLevel, message: String) {
        lock(&self.log).push(level, bounded_line(message));
    }

    /// The lines not written yet.
    fn take_log(&self) -> Vec<JobLogLine> {
        std::mem::take(&mut lock(&self.log).pending)
    }

    /// Writes the lines logged since the last flush. Lines the storage could not take are
    /// kept, ahead of newer ones, for the next flush or the job's completion.
    async fn flush_log(&self) {
        let lines = self.take_log();
        if lines.is_empty() {
            return;
        }
        match self.storages.jobs.append_job_log(self.job_id, &lines).await {
            Ok(()) => {}
            // Pruned meanwhile: nobody can read these lines any more.
            Err(Error::ScraperJobNotFound(_)) => {}
            Err(error) => {
                tracing::warn!(error = %error.report(), lines = lines.len(), "could not write the job log; keeping the lines for the next try");
                let mut log = lock(&self.log);
                let newer = std::mem::replace(&mut log.pending, lines);
                log.pending.extend(newer);
            }
        }
    }
}

#[async_trait]
impl JobHooks for WorkerHooks {
    async fn heartbeat(&self) -> Result<(), Error> {
        self.storages.jobs.heartbeat(self.claim).await
    }

    async fn update_scraper_state(&self, state: Option<String>) -> Result<Option<String>, Error> {
        if let Some(problem) = crate::schedule::state_problem(state.as_deref()) {
            return Err(Error::InvalidScraper(vec![crate::error::FieldError::new(
                &["scraper", "state"],
                problem,
            )]));
        }
        if self.scraper_id < 0 {
            // An ephemeral run: there is no stored scraper; the state lives for this run.
            return Ok(state);
        }
        let stored = self
            .storages
            .scrapers
            .update_scraper_state(self.scraper_id, state)
            .await?;
        Ok(stored.state)
    }

    /// A line from the handler, within the job's caps.
    fn log(&self, level: scraper::LogLevel, message: String) {
        let mut log = lock(&self.log);
        if log.truncated {
            return;
        }
        let message = bounded_line(message);
        if log.handler_lines >= MAX_LOG_LINES_PER_JOB
            || log.handler_bytes + message.len() > MAX_LOG_BYTES_PER_JOB
        {
            log.truncated = true;
            log.push(
                LogLevel::Warning,
                format!(
                    "Log truncated: a job keeps at most {MAX_LOG_LINES_PER_JOB} lines and {} MiB of log; later lines are dropped",
                    MAX_LOG_BYTES_PER_JOB / (1024 * 1024)
                ),
            );
            return;
        }
        log.handler_lines += 1;
        log.handler_bytes += message.len();
        log.push(level, message);
    }
}
