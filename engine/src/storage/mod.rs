//! Where scrapers, jobs and the scheduler lease live: the storage traits and their two
//! implementations, [`memory`] (the embedded default) and [`postgres`].
//!
//! The traits state the guarantees every implementation gives; `tests/storage_suite.rs` runs
//! the same checks against both, so they cannot drift apart.
//!
//! Each backend is a folder of its own, one module per trait, and needs nothing from the
//! others: what every backend would write the same way (the read-only check, a lookup that
//! must find its scraper, the one-by-one batches) is a default method of the traits.

pub mod memory;
pub mod postgres;
pub mod text;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, watch, Notify};

use crate::error::{Error, Result};
use crate::model::{
    JobCount, JobLogLine, Lease, Scraper, ScraperId, ScraperJob, ScraperJobId, ScraperJobPriority,
    ScraperJobStatus,
};
use crate::retry::RetryReason;

/// The scrapers and their settings.
#[async_trait]
pub trait ScrapersStorage: Send + Sync {
    /// A read-only storage refuses every change with `Error::ReadOnly`.
    fn is_read_only(&self) -> bool;
    /// `Error::ReadOnly` on a read-only storage: what every change of the scraper list checks
    /// first (not [`Self::update_scraper_state`], which a read-only storage allows).
    fn writable(&self) -> Result<()> {
        if self.is_read_only() {
            return Err(Error::ReadOnly);
        }
        Ok(())
    }
    /// All scrapers, by id.
    async fn get_scrapers(&self) -> Result<Vec<Scraper>>;
    /// Scrapers whose name contains `name_filter` (case-sensitive, as the original), with
    /// `id > last_id`, by id, at most `max_items` (none or `<= 0`: no limit).
    async fn search_scrapers(
        &self,
        name_filter: Option<&str>,
        max_items: Option<i64>,
        last_id: Option<i64>,
    ) -> Result<Vec<Scraper>>;
    /// `Error::ScraperNotFound` when absent.
    async fn get_scraper(&self, id: ScraperId) -> Result<Scraper> {
        self.maybe_get_scraper(id)
            .await?
            .ok_or(Error::ScraperNotFound(id))
    }
    /// The scraper with this id, `None` when absent.
    async fn maybe_get_scraper(&self, id: ScraperId) -> Result<Option<Scraper>>;
    /// Stores a new scraper. An id `<= 0` is assigned; a positive id is kept (replacing an
    /// existing scraper with that id, as the original does).
    async fn create_scraper(&self, scraper: Scraper) -> Result<Scraper>;
    /// Replaces a stored scraper; `Error::ScraperNotFound` when absent.
    async fn update_scraper(&self, scraper: Scraper) -> Result<Scraper>;
    /// Removes a scraper and returns it; `Error::ScraperNotFound` when absent.
    async fn delete_scraper(&self, id: ScraperId) -> Result<Scraper>;
    /// Persists the state a handler keeps between runs. Allowed on a read-only storage: the
    /// scraper list is what is read-only, not what the scrapers remember.
    async fn update_scraper_state(&self, id: ScraperId, state: Option<String>) -> Result<Scraper>;
    /// A counter that changes whenever any scraper changes, in this process or (on
    /// PostgreSQL) in another replica. The scheduler waits on it.
    fn changes(&self) -> watch::Receiver<u64>;
}

/// What a claim of a pending job returns.
pub type ClaimedJob = ScraperJob;

/// One claim of a job: the job, and the instant it was claimed (its `started_at`), which no
/// other claim of the job shares. A worker names the jobs it holds by their claims, so a
/// worker that lost a job (frozen past the dead timeout, say) can neither start, keep alive
/// nor finish it once it was handed back and claimed again, or retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Claim {
    /// The claimed job.
    pub job_id: ScraperJobId,
    /// When this claim was made.
    pub claimed_at: DateTime<Utc>,
}

impl Claim {
    /// The claim a claimed (started) job was handed out with; `None` for a job not started.
    pub fn of(job: &ScraperJob) -> Option<Claim> {
        (job.status == ScraperJobStatus::Started)
            .then_some(job.started_at)
            .flatten()
            .map(|claimed_at| Claim {
                job_id: job.id,
                claimed_at,
            })
    }
}

/// The end of an attempt as its worker reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The claim the attempt ran under: a completion of an older claim changes nothing.
    pub claim: Claim,
    /// Its final status (or, with [`Self::retry`], the attempt's).
    pub status: ScraperJobStatus,
    /// What its handler returned, or the error text; `None` keeps a result already stored.
    pub result: Option<String>,
    /// Log lines not written yet.
    pub log: Vec<JobLogLine>,
    /// Set when the attempt failed and runs again: the job then goes back to `pending`, due
    /// after the delay, with `status` and `result` recorded as this attempt's outcome.
    pub retry: Option<NextAttempt>,
}

/// A failed attempt that runs again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NextAttempt {
    /// Why the attempt failed.
    pub reason: RetryReason,
    /// How long after the failure, by the storage's clock, the next attempt is due.
    pub delay: Duration,
}

/// A scraper's schedule firing at `at`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledFire {
    /// The scraper as the scheduler read it: its job's snapshot and priority.
    pub scraper: Scraper,
    /// The fire time: at most one job is ever created per scraper and fire time.
    pub at: DateTime<Utc>,
}

/// What changes in a job once it is enqueued, without what never does (its scraper snapshot,
/// priority, creation time) and without its result, which is set only when `finished_at` is:
/// cheap to read for many jobs at once and compare with what was read before.
#[derive(Debug, Clone, PartialEq)]
pub struct JobStamp {
    /// The job.
    pub id: ScraperJobId,
    /// The job's scraper.
    pub scraper_id: ScraperId,
    /// As [`ScraperJob::status`].
    pub status: ScraperJobStatus,
    /// As [`ScraperJob::started_at`].
    pub started_at: Option<DateTime<Utc>>,
    /// As [`ScraperJob::last_active_at`]: the last heartbeat.
    pub last_active_at: Option<DateTime<Utc>>,
    /// As [`ScraperJob::finished_at`].
    pub finished_at: Option<DateTime<Utc>>,
    /// The current attempt: a retry changes it.
    pub attempt: u32,
    /// The id of the last line of the job's log, for the jobs asked for by id (`None` for
    /// the others, and while the log is empty).
    pub last_log_line: Option<i64>,
}

/// How a job came to be enqueued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnqueueOrigin {
    /// A user or API client asked for it.
    Manual,
    /// The scheduler fired the scraper's schedule due at this instant. At most one job is
    /// ever created per scraper and fire time, whichever replica fires it.
    Scheduled(DateTime<Utc>),
}

/// The jobs queue.
///
/// State transitions after the claim are guarded by the [`Claim`] the worker holds: the job
/// must still be `started` under that very claim. A job leaves a claim exactly once (for a
/// final status, back to the queue, or for its next attempt), so a late start, heartbeat or
/// finish from a worker that lost the job (it was killed, marked dead, or frozen while the
/// job was handed back and claimed again) changes nothing, and a job never runs twice at
/// once.
///
/// A job waiting for a retry is `pending` with a due time (`next_attempt_at`): it holds its
/// scraper's active slot (a manual run or a schedule fire is refused meanwhile, as while it
/// runs), it is claimed like any pending job once due, and killing it ends its retries.
///
/// Text is stored as [`text`] says: a NUL character reads back as U+FFFD on every backend.
#[async_trait]
pub trait ScraperJobsStorage: Send + Sync {
    /// The scraper's jobs, newest first.
    async fn get_scraper_jobs(&self, scraper_id: ScraperId) -> Result<Vec<ScraperJob>>;
    /// `Error::ScraperJobNotFound` when the job does not exist or belongs to another scraper.
    async fn get_scraper_job(
        &self,
        scraper_id: ScraperId,
        job_id: ScraperJobId,
    ) -> Result<ScraperJob>;
    /// Adds the scheduler's fires due at one instant, each as [`Self::add_scraper_job`]
    /// would, but in one statement on PostgreSQL (a thousand fires are one commit, not a
    /// thousand). Returns, in order, each fire's job or its refusal.
    async fn add_scheduled_jobs(&self, fires: &[ScheduledFire]) -> Result<Vec<Result<ScraperJob>>> {
        let mut outcomes = Vec::with_capacity(fires.len());
        for fire in fires {
            outcomes.push(
                self.add_scraper_job(
                    &fire.scraper,
                    fire.scraper.schedule_priority,
                    EnqueueOrigin::Scheduled(fire.at),
                )
                .await,
            );
        }
        Ok(outcomes)
    }
    /// Adds a pending job for `scraper` (a snapshot of it is kept with the job).
    /// Refuses with `Error::ScraperHasActiveRun` while the scraper has a pending or started
    /// job, atomically: of concurrent enqueues exactly one wins. A scheduled origin whose fire
    /// time already produced a job is refused the same way.
    async fn add_scraper_job(
        &self,
        scraper: &Scraper,
        priority: ScraperJobPriority,
        origin: EnqueueOrigin,
    ) -> Result<ScraperJob>;
    /// Claims up to `limit` pending jobs that are due (not waiting for a retry's
    /// `next_attempt_at`), highest priority first and FIFO within a priority, and marks them
    /// started in the same step: no two callers ever get the same job. Each claimed job's
    /// `started_at` is its [`Claim`].
    async fn dequeue_scraper_jobs(&self, limit: usize) -> Result<Vec<ClaimedJob>>;
    /// Marks claimed jobs as running: their handlers are about to start. Returns those still
    /// held by these claims (the others were killed, handed back or claimed again meanwhile:
    /// their handlers must not start). A claimed job that was never marked running goes back
    /// to the queue when its worker is lost; only a job marked running can end `dead` (or be
    /// retried for [`RetryReason::Dead`]).
    async fn start_scraper_jobs(&self, claims: &[Claim]) -> Result<Vec<ScraperJobId>>;
    /// Hands claimed jobs that never started running back to the queue (a worker shutting
    /// down with jobs claimed ahead): each is pending again, as if never claimed, and workers
    /// are woken for it. Jobs no longer held by these claims, or marked running, are left
    /// alone. Returns how many went back.
    async fn release_scraper_jobs(&self, claims: &[Claim]) -> Result<u64>;
    /// Records that the worker is still running the job under `claim`.
    /// `Error::PingNotStarted` for a pending job (handed back, or waiting for a retry),
    /// `Error::PingFinished` once it is finished (killed or marked dead) or claimed again by
    /// another worker: the worker should then stop the handler.
    async fn heartbeat(&self, claim: Claim) -> Result<()>;
    /// [`Self::heartbeat`] for all the jobs a worker runs, in one statement on PostgreSQL.
    /// Returns the jobs among them that these claims no longer hold (killed, declared dead,
    /// back in the queue, claimed again, or gone): their handlers should stop.
    async fn heartbeat_jobs(&self, claims: &[Claim]) -> Result<Vec<ScraperJobId>> {
        let mut lost = Vec::new();
        for &claim in claims {
            match self.heartbeat(claim).await {
                Ok(()) => {}
                // Handed back to the queue (or declared lost before its handler started):
                // no longer this worker's, as on PostgreSQL.
                Err(Error::PingNotStarted | Error::PingFinished | Error::ScraperJobNotFound(_)) => {
                    lost.push(claim.job_id)
                }
                Err(error) => return Err(error),
            }
        }
        Ok(lost)
    }
    /// Finishes a job still held by `claim` with a final status and result. Returns `None`
    /// (and changes nothing) when the claim no longer holds it.
    async fn finish_scraper_job(
        &self,
        claim: Claim,
        status: ScraperJobStatus,
        result: Option<String>,
    ) -> Result<Option<ScraperJob>>;
    /// Ends many attempts at once, with the log lines each has not written yet: each job
    /// still held by its completion's claim is finished, or, for a completion with a
    /// [`NextAttempt`], goes back to the queue for its next attempt (the attempt's outcome
    /// added to its `attempts`, `attempt` counted up, due after the delay). On PostgreSQL the
    /// whole batch is one transaction (one commit), which is how a busy worker gets past the
    /// database's commit rate. Returns, in order, whether each completion was applied; log
    /// lines are written either way.
    async fn finish_scraper_jobs(&self, completions: &[Completion]) -> Result<Vec<bool>>;
    /// Kills a pending or started job. `Error::JobNotActive` when already finished.
    async fn kill_scraper_job(
        &self,
        scraper_id: ScraperId,
        job_id: ScraperJobId,
    ) -> Result<ScraperJob>;
    /// Rescues started jobs without a heartbeat for `timeout`: those marked running lost
    /// their worker while their handler ran, and go back to the queue for their next attempt
    /// when their retry policy retries [`RetryReason::Dead`] and attempts remain (with
    /// `next_attempt_at` set), else become `dead`; those whose handler never started go back
    /// to the queue (`pending`, workers are woken), as if never claimed. Returns the rescued
    /// jobs with their new status. The storage's own clock decides (the database's on
    /// PostgreSQL, shared by all replicas), so clock skew between replicas cannot kill
    /// healthy jobs.
    async fn mark_dead_scraper_jobs(&self, timeout: Duration) -> Result<Vec<ScraperJob>>;
    /// Keeps the newest `keep_last` finished jobs of each scraper and deletes the older
    /// finished ones (active jobs are never deleted). Ephemeral runs (negative scraper ids)
    /// count as one scraper. Returns how many were deleted.
    async fn delete_old_scraper_jobs(&self, keep_last: usize) -> Result<u64>;
    /// Jobs finished since `since`, counted per minute (UTC) and final status.
    async fn count_finished_jobs(&self, since: DateTime<Utc>) -> Result<Vec<JobCount>>;
    /// The newest job of every scraper that has one (one query, for lists of scrapers).
    async fn get_last_jobs(&self) -> Result<Vec<ScraperJob>>;
    /// Number of ephemeral runs (negative scraper ids) pending or started.
    async fn count_active_ephemeral_jobs(&self) -> Result<u64>;
    /// Number of pending jobs with this priority that are due (not waiting for a retry).
    async fn get_queue_len(&self, priority: ScraperJobPriority) -> Result<u64>;
    /// Appends lines to a job's log. The worker running the job is its only writer and
    /// numbers the lines itself.
    async fn append_job_log(&self, job_id: ScraperJobId, lines: &[JobLogLine]) -> Result<()>;
    /// Up to `max_lines` lines of a job's log with `id > after`, in order.
    async fn get_job_log(
        &self,
        job_id: ScraperJobId,
        after: Option<i64>,
        max_lines: usize,
    ) -> Result<Vec<JobLogLine>>;
    /// The stamps of every job of the `scrapers` and of the `jobs` (ids of jobs that do not
    /// exist are left out), each job once, in no particular order. One statement on
    /// PostgreSQL however many scrapers and jobs are asked for: a replica's live streams look
    /// at everything they follow with one call per interval.
    async fn get_job_stamps(
        &self,
        scrapers: &[ScraperId],
        jobs: &[ScraperJobId],
    ) -> Result<Vec<JobStamp>>;
    /// Notified whenever a job is enqueued (in any replica, on PostgreSQL); workers wait on
    /// it when the queue is empty, with a polling fallback.
    fn enqueued(&self) -> Arc<Notify>;
    /// Ids of jobs killed (in any replica, on PostgreSQL), so the worker running one can
    /// cancel its handler at once instead of at its next heartbeat.
    fn kills(&self) -> broadcast::Receiver<ScraperJobId>;
}

/// The scheduler's global lock.
#[async_trait]
pub trait LeaseStorage: Send + Sync {
    /// Acquires the lease if it is free, expired, or already held by `owner_id` (which
    /// extends it). `None` while someone else holds it.
    async fn maybe_acquire_lease(
        &self,
        name: &str,
        owner_id: &str,
        duration: Duration,
    ) -> Result<Option<Lease>>;
    /// Releases the lease if `owner_id` holds it.
    async fn release_lease(&self, name: &str, owner_id: &str) -> Result<()>;
}

/// The three storages the engine runs on.
#[derive(Clone)]
pub struct Storages {
    /// The scrapers and their settings.
    pub scrapers: Arc<dyn ScrapersStorage>,
    /// The jobs queue and the jobs' logs.
    pub jobs: Arc<dyn ScraperJobsStorage>,
    /// The scheduler's lease.
    pub leases: Arc<dyn LeaseStorage>,
}

impl Storages {
    /// Everything in this process's memory.
    pub fn in_memory(scrapers: Vec<Scraper>, read_only: bool) -> Self {
        Storages {
            scrapers: Arc::new(memory::MemoryScrapersStorage::new(scrapers, read_only)),
            jobs: Arc::new(memory::MemoryScraperJobsStorage::default()),
            leases: Arc::new(memory::MemoryLeaseStorage::default()),
        }
    }

    /// Everything in PostgreSQL; runs the migrations first.
    pub async fn postgres(database_url: &str, read_only: bool) -> Result<Self> {
        Ok(Self::from_postgres(
            postgres::PostgresStorage::connect(database_url, read_only).await?,
        ))
    }

    /// Everything in an already connected PostgreSQL database.
    pub fn from_postgres(database: postgres::PostgresStorage) -> Self {
        Storages {
            scrapers: Arc::new(database.clone()),
            jobs: Arc::new(database.clone()),
            leases: Arc::new(database),
        }
    }
}

/// The retry of a job whose worker was lost while it ran, if its policy has one (a job
/// enqueued before retries existed has none, and is never retried).
fn lost_worker_retry(job: &ScraperJob) -> Option<NextAttempt> {
    let policy = job.scraper.retry.as_ref()?;
    policy
        .retry_delay(job.attempt, RetryReason::Dead, fastrand::f64())
        .map(|delay| NextAttempt {
            reason: RetryReason::Dead,
            delay,
        })
}
