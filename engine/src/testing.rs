//! Helpers for tests: [`TestDatabase`] gives a test a PostgreSQL database of its own, created
//! fresh and dropped afterwards, so tests run in parallel without seeing each other;
//! [`Outage`] cuts a jobs queue off like a database going down, and counts the calls made to
//! it.

#![allow(clippy::unwrap_used)] // helpers of tests, which fail loudly on purpose

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection};
use tokio::sync::{broadcast, Notify};

use crate::error::{Error, Result};
use crate::model::{
    JobCount, JobLogLine, Scraper, ScraperId, ScraperJob, ScraperJobId, ScraperJobPriority,
    ScraperJobStatus,
};
use crate::storage::{
    Claim, ClaimedJob, Completion, EnqueueOrigin, JobStamp, ScheduledFire, ScraperJobsStorage,
    Storages,
};

/// Where tests may create databases: `SNEAKPEEK_TEST_DATABASE_URL`, else the local server.
pub fn admin_url() -> String {
    std::env::var("SNEAKPEEK_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database that exists until this value is dropped.
pub struct TestDatabase {
    /// Connection URL of the (empty) database: [`admin_url`] with this database's name in
    /// its path.
    pub url: String,
    name: String,
}

impl TestDatabase {
    /// Creates an empty database. Panics with instructions when no PostgreSQL is reachable:
    /// a PostgreSQL test must fail, never pass by skipping.
    pub async fn create() -> TestDatabase {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let admin = admin_url();
        let name = format!(
            "sneakpeek_test_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut connection = PgConnection::connect(&admin).await.unwrap_or_else(|error| {
            panic!("PostgreSQL tests need a server at {admin} (set SNEAKPEEK_TEST_DATABASE_URL): {error}")
        });
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut connection)
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut connection)
            .await
            .unwrap();
        // Tests need atomicity, not durability: without waiting for fsync they run many
        // times faster on a small machine.
        sqlx::query(&format!(
            "ALTER DATABASE {name} SET synchronous_commit = off"
        ))
        .execute(&mut connection)
        .await
        .unwrap();
        let url = match admin.rfind('/') {
            Some(slash) if !admin[..slash].ends_with('/') => format!("{}/{name}", &admin[..slash]),
            _ => format!("{admin}/{name}"),
        };
        TestDatabase { url, name }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs outside async; a short-lived thread with its own runtime can await.
        let (admin, name) = (admin_url(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                if let Ok(mut connection) = PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut connection)
                        .await;
                }
            });
        })
        .join();
    }
}

/// A jobs queue that can be cut off like a database going down: while down, every call fails
/// with [`Error::Unavailable`] (counted), as the PostgreSQL storage's calls do while the
/// database restarts; the notifications still work, as they come from this process. Every
/// call is counted too, served or refused, so a test can see how often the queue is asked.
pub struct Outage {
    inner: Arc<dyn ScraperJobsStorage>,
    down: AtomicBool,
    refused: AtomicU32,
    /// A job whose completion the storage refuses outright, as a database refuses a row.
    refused_job: std::sync::Mutex<Option<ScraperJobId>>,
    calls: AtomicU32,
}

impl Outage {
    /// Wraps `storages`' jobs queue; use the returned storages in place of the originals.
    pub fn wrap(storages: Storages) -> (Storages, Arc<Outage>) {
        let outage = Arc::new(Outage {
            inner: storages.jobs.clone(),
            down: AtomicBool::new(false),
            refused: AtomicU32::new(0),
            refused_job: std::sync::Mutex::new(None),
            calls: AtomicU32::new(0),
        });
        let wrapped = Storages {
            jobs: outage.clone(),
            ..storages
        };
        (wrapped, outage)
    }

    /// From now on every call fails until [`Outage::end`].
    pub fn begin(&self) {
        self.down.store(true, Ordering::SeqCst);
    }

    /// Ends the outage: calls reach the queue underneath again.
    pub fn end(&self) {
        self.down.store(false, Ordering::SeqCst);
    }

    /// From now on, a batch of completions holding `job_id`'s is refused with
    /// [`Error::Internal`] (not retried), and so is that completion alone, unless it fails
    /// the job.
    pub fn refuse_completion_of(&self, job_id: ScraperJobId) {
        *crate::sync::lock(&self.refused_job) = Some(job_id);
    }

    /// Calls refused since the outage began.
    pub fn refused(&self) -> u32 {
        self.refused.load(Ordering::SeqCst)
    }

    /// Calls made so far (notification subscriptions aside), served or refused.
    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    fn check(&self) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(Error::unavailable("the test cut the storage off"));
        }
        Ok(())
    }
}

#[async_trait]
impl ScraperJobsStorage for Outage {
    async fn get_scraper_jobs(&self, scraper_id: ScraperId) -> Result<Vec<ScraperJob>> {
        self.check()?;
        self.inner.get_scraper_jobs(scraper_id).await
    }
    async fn get_scraper_job(
        &self,
        scraper_id: ScraperId,
        job_id: ScraperJobId,
    ) -> Result<ScraperJob> {
        self.check()?;
        self.inner.get_scraper_job(scraper_id, job_id).await
    }
    async fn add_scheduled_jobs(&self, fires: &[ScheduledFire]) -> Result<Vec<Result<ScraperJob>>> {
        self.check()?;
        self.inner.add_scheduled_jobs(fires).await
    }
    async fn add_scraper_job(
        &self,
        scraper: &Scraper,
        priority: ScraperJobPriority,
        origin: EnqueueOrigin,
    ) -> Result<ScraperJob> {
        self.check()?;
        self.inner.add_scraper_job(scraper, priority, origin).await
    }
    async fn dequeue_scraper_jobs(&self, limit: usize) -> Result<Vec<ClaimedJob>> {
        self.check()?;
        self.inner.dequeue_scraper_jobs(limit).await
    }
    async fn start_scraper_jobs(&self, claims: &[Claim]) -> Result<Vec<ScraperJobId>> {
        self.check()?;
        self.inner.start_scraper_jobs(claims).await
    }
    async fn release_scraper_jobs(&self, claims: &[Claim]) -> Result<u64> {
        self.check()?;
        self.inner.release_scraper_jobs(claims).await
    }
    async fn heartbeat(&self, claim: Claim) -> Result<()> {
        self.check()?;
        self.inner.heartbeat(claim).await
    }
    async fn heartbeat_jobs(&self, claims: &[Claim]) -> Result<Vec<ScraperJobId>> {
        self.check()?;
        self.inner.heartbeat_jobs(claims).await
    }
    async fn finish_scraper_job(
        &self,
        claim: Claim,
        status: ScraperJobStatus,
        result: Option<String>,
    ) -> Result<Option<ScraperJob>> {
        self.check()?;
        self.inner.finish_scraper_job(claim, status, result).await
    }
    async fn finish_scraper_jobs(&self, completions: &[Completion]) -> Result<Vec<bool>> {
        self.check()?;
        let refused_job = *crate::sync::lock(&self.refused_job);
        if completions.iter().any(|completion| {
            Some(completion.claim.job_id) == refused_job
                && completion.status != ScraperJobStatus::Failed
        }) {
            return Err(Error::internal("the test refuses this completion"));
        }
        self.inner.finish_scraper_jobs(completions).await
    }
    async fn kill_scraper_job(
        &self,
        scraper_id: ScraperId,
        job_id: ScraperJobId,
    ) -> Result<ScraperJob> {
        self.check()?;
        self.inner.kill_scraper_job(scraper_id, job_id).await
    }
    async fn mark_dead_scraper_jobs(&self, timeout: Duration) -> Result<Vec<ScraperJob>> {
        self.check()?;
        self.inner.mark_dead_scraper_jobs(timeout).await
    }
    async fn delete_old_scraper_jobs(&self, keep_last: usize) -> Result<u64> {
        self.check()?;
        self.inner.delete_old_scraper_jobs(keep_last).await
    }
    async fn count_finished_jobs(&self, since: DateTime<Utc>) -> Result<Vec<JobCount>> {
        self.check()?;
        self.inner.count_finished_jobs(since).await
    }
    async fn get_last_jobs(&self) -> Result<Vec<ScraperJob>> {
        self.check()?;
        self.inner.get_last_jobs().await
    }
    async fn count_active_ephemeral_jobs(&self) -> Result<u64> {
        self.check()?;
        self.inner.count_active_ephemeral_jobs().await
    }
    async fn get_queue_len(&self, priority: ScraperJobPriority) -> Result<u64> {
        self.check()?;
        self.inner.get_queue_len(priority).await
    }
    async fn append_job_log(&self, job_id: ScraperJobId, lines: &[JobLogLine]) -> Result<()> {
        self.check()?;
        self.inner.append_job_log(job_id, lines).await
    }
    async fn get_job_log(
        &self,
        job_id: ScraperJobId,
        after: Option<i64>,
        max_lines: usize,
    ) -> Result<Vec<JobLogLine>> {
        self.check()?;
        self.inner.get_job_log(job_id, after, max_lines).await
    }
    async fn get_job_stamps(
        &self,
        scrapers: &[ScraperId],
        jobs: &[ScraperJobId],
    ) -> Result<Vec<JobStamp>> {
        self.check()?;
        self.inner.get_job_stamps(scrapers, jobs).await
    }
    fn enqueued(&self) -> Arc<Notify> {
        self.inner.enqueued()
    }
    fn kills(&self) -> broadcast::Receiver<ScraperJobId> {
        self.inner.kills()
    }
}
