//! The engine facade: every operation on scrapers and jobs, implemented once. The JsonRPC API
//! and the UI's server functions both call these methods, so they cannot disagree.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::model::{Priority, Scraper, ScraperId, ScraperJob, ScraperJobId, ScraperJobPriority, ScraperSchedule};
use crate::schedule::validate_scraper;
use crate::scraper::Handlers;
use crate::storage::{EnqueueOrigin, Storages};

/// A handle to the platform. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    storages: Storages,
    handlers: Arc<Handlers>,
}

impl Engine {
    pub fn new(storages: Storages, handlers: Handlers) -> Self {
        Engine { storages, handlers: Arc::new(handlers) }
    }

    pub fn storages(&self) -> &Storages {
        &self.storages
    }

    pub fn handlers(&self) -> &Handlers {
        &self.handlers
    }

    pub fn is_read_only(&self) -> bool {
        self.storages.scrapers.is_read_only()
    }

    pub fn get_schedules(&self) -> Vec<ScraperSchedule> {
        ScraperSchedule::ALL.to_vec()
    }

    pub fn get_priorities(&self) -> Vec<Priority> {
        ScraperJobPriority::ALL.into_iter().map(Priority::from).collect()
    }

    pub fn get_scraper_handlers(&self) -> Vec<String> {
        self.handlers.names().to_vec()
    }

    pub async fn get_scrapers(&self) -> Result<Vec<Scraper>> {
        self.storages.scrapers.get_scrapers().await
    }

    pub async fn search_scrapers(&self, name_filter: Option<&str>, max_items: Option<i64>, last_id: Option<i64>) -> Result<Vec<Scraper>> {
        self.storages.scrapers.search_scrapers(name_filter, max_items, last_id).await
    }

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

    /// Deletes a scraper. Its jobs stay readable; a pending one will not run.
    pub async fn delete_scraper(&self, id: ScraperId) -> Result<Scraper> {
        self.writable()?;
        self.storages.scrapers.delete_scraper(id).await
    }

    /// Queues a run of the scraper now. `Error::ScraperHasActiveRun` while one is pending or
    /// running.
    pub async fn enqueue_scraper(&self, scraper_id: ScraperId, priority: ScraperJobPriority) -> Result<ScraperJob> {
        let scraper = self.storages.scrapers.get_scraper(scraper_id).await?;
        self.storages.jobs.add_scraper_job(&scraper, priority, EnqueueOrigin::Manual).await
    }

    /// The scraper's jobs, newest first (empty for an unknown scraper, as the original).
    pub async fn get_scraper_jobs(&self, scraper_id: ScraperId) -> Result<Vec<ScraperJob>> {
        self.storages.jobs.get_scraper_jobs(scraper_id).await
    }

    pub async fn get_scraper_job(&self, scraper_id: ScraperId, job_id: ScraperJobId) -> Result<ScraperJob> {
        self.storages.jobs.get_scraper_job(scraper_id, job_id).await
    }

    /// Kills a pending or running job; a running handler is cancelled by its worker.
    /// Allowed in read-only mode, like enqueueing: read-only protects the scraper list.
    pub async fn kill_scraper_job(&self, scraper_id: ScraperId, job_id: ScraperJobId) -> Result<ScraperJob> {
        self.storages.jobs.kill_scraper_job(scraper_id, job_id).await
    }

    fn writable(&self) -> Result<()> {
        if self.is_read_only() {
            return Err(Error::ReadOnly);
        }
        Ok(())
    }
}
