//! The engine facade: every operation on scrapers and jobs, implemented once. The JsonRPC API
//! and the UI's server functions both call these methods, so they cannot disagree. The jobs
//! they return carry their scraper snapshot without credentials ([`crate::redact`]).

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::model::{
    JobCount, JobLogLine, Priority, ReplicaStatus, SchedulerState, Scraper, ScraperConfig,
    ScraperId, ScraperJob, ScraperJobId, ScraperJobPriority, ScraperSchedule, WorkerState,
};
use crate::retry::RetryPolicy;
use crate::schedule::validate_scraper;
use crate::scheduler::{Scheduler, SchedulerSettings};
use crate::scraper::{Handlers, Runtime};
use crate::storage::{EnqueueOrigin, Storages};
use crate::worker::{RunningJobs, Worker, WorkerSettings};

/// Ephemeral runs are for trying a scraper out: an hour is plenty, and it bounds a mistake.
const EPHEMERAL_TIMEOUT_SECONDS: u64 = 3600;

/// Ephemeral runs pending or running at once, across replicas: trying scrapers out must not
/// crowd out the scheduled ones. (Checked before each enqueue, so concurrent calls may pass
/// it by a few.)
pub const MAX_ACTIVE_EPHEMERAL_RUNS: u64 = 10;

/// A fresh negative id for an ephemeral run's scraper: unique without coordination between
/// replicas (52 random bits), and never the id of a stored scraper (those are positive).
fn ephemeral_scraper_id() -> ScraperId {
    let random = (uuid::Uuid::new_v4().as_u128() >> 76) as i64;
    -(random.max(2))
}

/// A handle to the platform. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    storages: Storages,
    handlers: Arc<Handlers>,
    runtime: Runtime,
    components: Arc<std::sync::Mutex<Components>>,
}

impl Engine {
    /// `runtime` is what this replica's jobs share while scraping (middleware settings, HTTP
    /// clients, rate limits).
    pub fn new(storages: Storages, handlers: Handlers, runtime: Runtime) -> Self {
        Engine {
            storages,
            handlers: Arc::new(handlers),
            runtime,
            components: Arc::default(),
        }
    }

    /// The storages this engine runs on: for the server's wiring and health checks, which need
    /// them directly (`/readyz` asks the queue for its length).
    pub fn storages(&self) -> &Storages {
        &self.storages
    }

    /// The retry policy of jobs whose scraper sets none (the operator's default).
    pub fn default_retry_policy(&self) -> &RetryPolicy {
        self.runtime.default_retry()
    }

    /// The handlers this replica runs, by name (what a scraper's `handler` must name).
    pub fn handlers(&self) -> &Handlers {
        &self.handlers
    }

    /// Whether the server runs with `--read-only` (`is_read_only`): then creating, updating and
    /// deleting scrapers, and ephemeral runs, fail with `Error::ReadOnly`.
    pub fn is_read_only(&self) -> bool {
        self.storages.scrapers.is_read_only()
    }

    /// Every schedule, in wire order (`get_schedules`: `inactive` first, `crontab` last).
    pub fn get_schedules(&self) -> Vec<ScraperSchedule> {
        ScraperSchedule::ALL.to_vec()
    }

    /// The priorities with their names and values, highest first (`get_priorities`: `UTMOST` 0,
    /// `HIGH` 1, `NORMAL` 2).
    pub fn get_priorities(&self) -> Vec<Priority> {
        ScraperJobPriority::ALL
            .into_iter()
            .map(Priority::from)
            .collect()
    }

    /// Names of the handlers this server runs, in registration order (`get_scraper_handlers`).
    pub fn get_scraper_handlers(&self) -> Vec<String> {
        self.handlers.names().to_vec()
    }

    /// Every stored scraper, by id (`get_scrapers`).
    pub async fn get_scrapers(&self) -> Result<Vec<Scraper>> {
        self.storages.scrapers.get_scrapers().await
    }

    /// Scrapers whose name contains `name_filter` (case-sensitive), with an id greater than
    /// `last_id`, by id, at most `max_items` (`None` or `<= 0`: no limit); each `None` filter
    /// lets everything through (`search_scrapers`).
    pub async fn search_scrapers(
        &self,
        name_filter: Option<&str>,
        max_items: Option<i64>,
        last_id: Option<i64>,
    ) -> Result<Vec<Scraper>> {
        self.storages
            .scrapers
            .search_scrapers(name_filter, max_items, last_id)
            .await
    }

    /// One scraper by id; `Error::ScraperNotFound` (5000) when no scraper has it.
    pub async fn get_scraper(&self, id: ScraperId) -> Result<Scraper> {
        self.storages.scrapers.get_scraper(id).await
    }

    /// Validates and stores a new scraper (`id <= 0`: assigned).
    pub async fn create_scraper(&self, scraper: Scraper) -> Result<Scraper> {
        self.writable()?;
        validate_scraper(&scraper, self.handlers.names())?;
        self.storages.scrapers.create_scraper(scraper).await
    }

    /// Validates and replaces a stored scraper; the scheduler picks the change up at once.
    pub async fn update_scraper(&self, scraper: Scraper) -> Result<Scraper> {
        self.writable()?;
        validate_scraper(&scraper, self.handlers.names())?;
        self.storages.scrapers.update_scraper(scraper).await
    }

    /// Deletes a scraper. Its jobs stay readable; a pending one is killed so it never runs.
    pub async fn delete_scraper(&self, id: ScraperId) -> Result<Scraper> {
        self.writable()?;
        let deleted = self.storages.scrapers.delete_scraper(id).await?;
        for job in self.storages.jobs.get_scraper_jobs(id).await? {
            if job.status == crate::model::ScraperJobStatus::Pending {
                // Losing the race to a worker is fine: the job then simply runs.
                let _ = self.kill_scraper_job(id, job.id).await;
            }
        }
        Ok(deleted)
    }

    /// Queues a run of the scraper now. `Error::ScraperHasActiveRun` while one is pending or
    /// running.
    pub async fn enqueue_scraper(
        &self,
        scraper_id: ScraperId,
        priority: ScraperJobPriority,
    ) -> Result<ScraperJob> {
        let scraper = self
            .storages
            .scrapers
            .get_scraper(scraper_id)
            .await?
            .with_retry_policy(self.runtime.default_retry());
        self.storages
            .jobs
            .add_scraper_job(&scraper, priority, EnqueueOrigin::Manual)
            .await
            .map(ScraperJob::redacted)
    }

    /// The scraper's jobs, newest first (empty for an unknown scraper, as the original).
    pub async fn get_scraper_jobs(&self, scraper_id: ScraperId) -> Result<Vec<ScraperJob>> {
        let jobs = self.storages.jobs.get_scraper_jobs(scraper_id).await?;
        Ok(jobs.into_iter().map(ScraperJob::redacted).collect())
    }

    /// One job of a scraper, its snapshot without credentials; `Error::ScraperJobNotFound`
    /// (5001) when the scraper has no job with this id.
    pub async fn get_scraper_job(
        &self,
        scraper_id: ScraperId,
        job_id: ScraperJobId,
    ) -> Result<ScraperJob> {
        self.storages
            .jobs
            .get_scraper_job(scraper_id, job_id)
            .await
            .map(ScraperJob::redacted)
    }

    /// Lines of a job's log after line `after`, at most `max_lines` (capped at 10,000).
    pub async fn get_scraper_job_logs(
        &self,
        scraper_id: ScraperId,
        job_id: ScraperJobId,
        after: Option<i64>,
        max_lines: Option<usize>,
    ) -> Result<Vec<JobLogLine>> {
        self.storages
            .jobs
            .get_scraper_job(scraper_id, job_id)
            .await?;
        self.storages
            .jobs
            .get_job_log(job_id, after, max_lines.unwrap_or(1_000).min(10_000))
            .await
    }

    /// Kills a pending or running job; a running handler is cancelled by its worker.
    /// Allowed in read-only mode, like enqueueing: read-only protects the scraper list.
    pub async fn kill_scraper_job(
        &self,
        scraper_id: ScraperId,
        job_id: ScraperJobId,
    ) -> Result<ScraperJob> {
        let killed = self
            .storages
            .jobs
            .kill_scraper_job(scraper_id, job_id)
            .await?;
        metrics::counter!("sneakpeek_scraper_jobs_total", "type" => "killed").increment(1);
        Ok(killed.redacted())
    }

    /// Runs `handler` once with `config` (and `state`) without saving a scraper: to try a
    /// scraper out. The job is queued like any other and can be polled with
    /// [`Engine::get_scraper_job`] using `job.scraper.id`; its scraper id is negative and
    /// unique, and state it saves is kept only for that run.
    ///
    /// It runs arbitrary scripts and requests, so a read-only server refuses it, and at most
    /// [`MAX_ACTIVE_EPHEMERAL_RUNS`] are pending or running at once.
    pub async fn run_ephemeral(
        &self,
        handler: String,
        config: ScraperConfig,
        state: Option<String>,
        priority: ScraperJobPriority,
    ) -> Result<ScraperJob> {
        self.writable()?;
        if self.storages.jobs.count_active_ephemeral_jobs().await? >= MAX_ACTIVE_EPHEMERAL_RUNS {
            return Err(Error::TooManyEphemeralRuns(MAX_ACTIVE_EPHEMERAL_RUNS));
        }
        let scraper = Scraper {
            id: ephemeral_scraper_id(),
            name: format!("Ephemeral run of {handler}"),
            schedule: ScraperSchedule::Inactive,
            schedule_crontab: None,
            handler,
            config,
            schedule_priority: priority,
            state,
            timeout_seconds: Some(EPHEMERAL_TIMEOUT_SECONDS),
            // A try-out shows what one run does.
            retry: Some(RetryPolicy::never()),
            schedule_timezone: None,
            schedule_crontab_dialect: None,
        };
        validate_scraper(&scraper, self.handlers.names())?;
        self.storages
            .jobs
            .add_scraper_job(&scraper, priority, EnqueueOrigin::Manual)
            .await
            .map(ScraperJob::redacted)
    }

    /// The newest job of each scraper, by scraper id.
    pub async fn get_last_jobs(&self) -> Result<std::collections::HashMap<ScraperId, ScraperJob>> {
        let jobs = self.storages.jobs.get_last_jobs().await?;
        Ok(jobs
            .into_iter()
            .map(|job| (job.scraper.id, job.redacted()))
            .collect())
    }

    /// Pending jobs per priority, highest priority first.
    pub async fn queue_lengths(&self) -> Result<Vec<(ScraperJobPriority, u64)>> {
        let mut lengths = Vec::with_capacity(ScraperJobPriority::ALL.len());
        for priority in ScraperJobPriority::ALL {
            lengths.push((priority, self.storages.jobs.get_queue_len(priority).await?));
        }
        Ok(lengths)
    }

    /// Jobs finished since `since`, counted per minute and outcome.
    pub async fn job_stats(&self, since: chrono::DateTime<chrono::Utc>) -> Result<Vec<JobCount>> {
        self.storages.jobs.count_finished_jobs(since).await
    }

    fn writable(&self) -> Result<()> {
        if self.is_read_only() {
            return Err(Error::ReadOnly);
        }
        Ok(())
    }
}

impl Engine {
    /// Starts this replica's background components: the scheduler (it acts only while it
    /// holds the lease) and the worker, each when given settings.
    pub fn start(
        &self,
        scheduler: Option<SchedulerSettings>,
        worker: Option<WorkerSettings>,
    ) -> Background {
        let (shutdown, stopped) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        let mut components = self.components.lock().expect("not poisoned");
        if let Some(settings) = scheduler {
            let owner = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4());
            let scheduler = Scheduler::new(
                self.storages.clone(),
                owner,
                settings,
                self.runtime.default_retry().clone(),
            );
            let status = scheduler.status();
            let task = tokio::spawn(scheduler.run(stopped.clone()));
            components.scheduler = Some(Started {
                status,
                task: task.abort_handle(),
            });
            tasks.push(task);
        }
        if let Some(settings) = worker {
            let max_concurrency = settings.max_concurrency;
            let worker = Worker::new(
                self.storages.clone(),
                self.handlers.clone(),
                self.runtime.clone(),
                settings,
            );
            let status = (worker.running_jobs(), max_concurrency);
            let task = tokio::spawn(worker.run(stopped));
            components.worker = Some(Started {
                status,
                task: task.abort_handle(),
            });
            tasks.push(task);
        }
        let scheduler = components
            .scheduler
            .as_ref()
            .map(|scheduler| scheduler.status.clone());
        Background {
            shutdown,
            tasks,
            scheduler,
        }
    }

    /// What this replica runs and how it is doing.
    pub fn status(&self) -> ReplicaStatus {
        let components = self.components.lock().expect("not poisoned");
        let mut stopped = Vec::new();
        if components
            .scheduler
            .as_ref()
            .is_some_and(Started::has_stopped)
        {
            stopped.push("scheduler".to_owned());
        }
        if components.worker.as_ref().is_some_and(Started::has_stopped) {
            stopped.push("worker".to_owned());
        }
        ReplicaStatus {
            scheduler: components
                .scheduler
                .as_ref()
                .map(|scheduler| *scheduler.status.borrow()),
            worker: components.worker.as_ref().map(|worker| {
                let (running, max_concurrency) = &worker.status;
                WorkerState {
                    running_jobs: running.count(),
                    max_concurrency: *max_concurrency,
                }
            }),
            stopped,
        }
    }
}

/// The components `start` launched, for [`Engine::status`].
#[derive(Default)]
struct Components {
    scheduler: Option<Started<tokio::sync::watch::Receiver<SchedulerState>>>,
    worker: Option<Started<(RunningJobs, usize)>>,
}

/// A started component: where its status is read, and its task.
struct Started<S> {
    status: S,
    task: tokio::task::AbortHandle,
}

impl<S> Started<S> {
    /// Whether the component's task has ended, on shutdown or by a fault (a panic, say):
    /// its last status then describes nothing that still runs.
    fn has_stopped(&self) -> bool {
        self.task.is_finished()
    }
}

/// The running scheduler and worker of this replica.
pub struct Background {
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    scheduler: Option<tokio::sync::watch::Receiver<SchedulerState>>,
}

impl Background {
    /// Whether this replica's scheduler currently leads; `None` when it runs no scheduler.
    pub fn scheduler_status(&self) -> Option<tokio::sync::watch::Receiver<SchedulerState>> {
        self.scheduler.clone()
    }

    /// Tells the components to stop, without waiting for them: the scheduler fires nothing
    /// more and the worker starts no new claim, while its running jobs go on (for the grace
    /// period). A server calls this the moment it is asked to shut down, before it finishes
    /// its own work, then [`Background::stop`].
    pub fn signal_stop(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Stops claiming and scheduling, lets running jobs finish (within the worker's grace
    /// period) and releases the scheduler lease.
    pub async fn stop(self) {
        self.signal_stop();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
