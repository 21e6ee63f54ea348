//! Server functions: the UI's calls into the engine. On the server they run the engine
//! operation; in the browser they are HTTP calls to the server.
//!
//! They all fail with [`UiError`], which carries a message meant for a person and, for an
//! invalid scraper, the errors of each field, so a form can show them where they belong.
//!
//! Their arguments are sent as JSON (`input = Json`), like their results, rather than
//! URL-encoded: the wasm then needs only one serializer, not `serde_qs` as well.

use chrono::{DateTime, Utc};
use engine::error::FieldError;
use engine::model::{
    CrontabDialect, JobCount, JobLogLine, ReplicaStatus, Scraper, ScraperConfig, ScraperId,
    ScraperJob, ScraperJobId, ScraperJobPriority, ScraperJobStatus, ScraperSchedule,
};
use engine::retry::RetryPolicy;
use leptos::prelude::*;
use leptos::server_fn::codec::{Json, JsonEncoding};
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// Why a server function failed, in words for the person using the UI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UiError {
    pub message: String,
    /// Per-field problems of a submitted scraper, `loc` as `["scraper", "<field>"]`.
    #[serde(default)]
    pub fields: Vec<FieldError>,
}

impl UiError {
    pub fn new(message: impl Into<String>) -> Self {
        UiError {
            message: message.into(),
            fields: Vec::new(),
        }
    }
}

impl std::fmt::Display for UiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UiError {}

impl FromServerFnError for UiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(error: ServerFnErrorErr) -> Self {
        let message = match error {
            ServerFnErrorErr::Request(_) => {
                "Could not reach the server; check that it is running and try again.".to_owned()
            }
            other => other.to_string(),
        };
        UiError::new(message)
    }
}

#[cfg(feature = "ssr")]
impl From<engine::Error> for UiError {
    fn from(error: engine::Error) -> Self {
        use engine::Error;
        match error {
            Error::InvalidScraper(fields) => UiError { message: "The scraper was not saved: some fields need fixing.".to_owned(), fields },
            Error::UnknownHandler(name) => UiError {
                message: "The scraper was not saved: some fields need fixing.".to_owned(),
                fields: vec![FieldError::new(&["scraper", "handler"], format!("no handler named '{name}' is registered"))],
            },
            Error::ScraperHasActiveRun => UiError::new("This scraper already has a pending or running job: wait for it to finish, or kill it."),
            Error::ReadOnly => UiError::new("Sneakpeek runs in read-only mode: scrapers cannot be created, changed or deleted."),
            Error::JobNotActive(_) => UiError::new("The job has already finished."),
            Error::TooManyEphemeralRuns(limit) => UiError::new(format!("{limit} runs are already being tried out: wait for one to finish.")),
            Error::Internal(_) => {
                leptos::logging::error!("a server function failed: {}", error.report());
                UiError::new("Internal error: the server log has the details.")
            }
            Error::Unavailable(_) => {
                leptos::logging::error!("a server function failed: {}", error.report());
                UiError::new("The storage cannot be reached right now; try again in a moment.")
            }
            other => UiError::new(other.describe()),
        }
    }
}

#[cfg(feature = "ssr")]
pub(crate) fn engine() -> Result<engine::Engine, UiError> {
    use_context::<engine::Engine>().ok_or_else(|| UiError::new("the engine is not available"))
}

/// What the forms offer, and whether changes are allowed at all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UiSettings {
    pub read_only: bool,
    pub handlers: Vec<String>,
    pub schedules: Vec<ScraperSchedule>,
    pub priorities: Vec<ScraperJobPriority>,
    /// The retry policy of scrapers that set none.
    pub default_retry: RetryPolicy,
    /// The IANA time zone names a schedule may be read in, sorted.
    pub time_zones: Vec<String>,
}

#[server(input = Json)]
pub async fn get_ui_settings() -> Result<UiSettings, UiError> {
    let engine = engine()?;
    let priorities = engine
        .get_priorities()
        .into_iter()
        .filter_map(|priority| ScraperJobPriority::from_value(priority.value.into()))
        .collect();
    Ok(UiSettings {
        read_only: engine.is_read_only(),
        handlers: engine.get_scraper_handlers(),
        schedules: engine.get_schedules(),
        priorities,
        default_retry: engine.default_retry_policy().clone(),
        time_zones: engine::schedule::time_zone_names()
            .into_iter()
            .map(str::to_owned)
            .collect(),
    })
}

/// A crontab expression's next runs, or what is wrong with it (and in which field: the
/// expression, or the time zone it is read in).
pub type CrontabCheck = Result<Vec<DateTime<Utc>>, FieldError>;

/// Checks a crontab expression as it is typed into the form, read in `timezone` (an IANA
/// name; none: UTC) as `dialect` says: its next runs after now, or what is wrong. The browser
/// asks the server, so neither the cron parser nor the time zone rules are part of the wasm.
#[server(input = Json)]
pub async fn check_crontab(
    expression: String,
    timezone: Option<String>,
    dialect: CrontabDialect,
) -> Result<CrontabCheck, UiError> {
    /// How many next runs the form lists.
    const RUNS: usize = 5;
    let trigger = engine::schedule::Trigger::of(engine::schedule::Schedule {
        kind: ScraperSchedule::Crontab,
        crontab: Some(&expression),
        timezone: timezone.as_deref(),
        dialect,
    });
    Ok(trigger.map(|trigger| {
        trigger
            .map(|trigger| trigger.upcoming(Utc::now(), RUNS))
            .unwrap_or_default()
    }))
}

/// The latest job of a scraper, as the scrapers table shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastJob {
    pub id: ScraperJobId,
    pub status: ScraperJobStatus,
    /// When it last changed: finished, else started, else created.
    pub at: DateTime<Utc>,
}

impl LastJob {
    pub fn of(job: &ScraperJob) -> Self {
        LastJob {
            id: job.id,
            status: job.status,
            at: job.finished_at.or(job.started_at).unwrap_or(job.created_at),
        }
    }
}

/// A row of the scrapers table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScraperRow {
    pub scraper: Scraper,
    pub last_job: Option<LastJob>,
    /// When the scheduler will enqueue it next; `None` when inactive.
    pub next_run: Option<DateTime<Utc>>,
}

/// All scrapers, by id, with their last job and next run.
#[server(input = Json)]
pub async fn list_scrapers() -> Result<Vec<ScraperRow>, UiError> {
    scraper_rows(&engine()?).await
}

#[cfg(feature = "ssr")]
async fn scraper_rows(engine: &engine::Engine) -> Result<Vec<ScraperRow>, UiError> {
    let now = Utc::now();
    let scrapers = engine.get_scrapers().await?;
    let last_jobs = engine.get_last_jobs().await?;
    let rows = scrapers
        .into_iter()
        .map(|scraper| {
            let next_run = engine::schedule::Trigger::of(engine::schedule::Schedule::of(&scraper))
                .ok()
                .flatten()
                .and_then(|trigger| trigger.next_after(now));
            ScraperRow {
                last_job: last_jobs.get(&scraper.id).map(LastJob::of),
                next_run,
                scraper,
            }
        })
        .collect();
    Ok(rows)
}

/// The dashboard's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    /// Pending jobs per priority, highest priority first.
    pub queue: Vec<(ScraperJobPriority, u64)>,
    /// Start of the charted period (the last hour).
    pub since: DateTime<Utc>,
    /// Jobs finished per minute and outcome since `since`.
    pub finished: Vec<JobCount>,
    /// This replica's scheduler and worker.
    pub replica: ReplicaStatus,
    /// Scrapers whose last job failed or died.
    pub failing: Vec<ScraperRow>,
}

#[server(input = Json)]
pub async fn get_dashboard() -> Result<Dashboard, UiError> {
    let engine = engine()?;
    let since = Utc::now() - chrono::Duration::hours(1);
    let queue = engine.queue_lengths().await?;
    let failing = scraper_rows(&engine)
        .await?
        .into_iter()
        .filter(|row| {
            row.last_job.as_ref().is_some_and(|job| {
                matches!(
                    job.status,
                    ScraperJobStatus::Failed | ScraperJobStatus::Dead
                )
            })
        })
        .collect();
    Ok(Dashboard {
        queue,
        since,
        finished: engine.job_stats(since).await?,
        replica: engine.status(),
        failing,
    })
}

#[server(input = Json)]
pub async fn get_scraper(id: ScraperId) -> Result<Scraper, UiError> {
    Ok(engine()?.get_scraper(id).await?)
}

/// Creates the scraper when its id is not set (`<= 0`), else replaces it.
#[server(input = Json)]
pub async fn save_scraper(scraper: Scraper) -> Result<Scraper, UiError> {
    let engine = engine()?;
    Ok(if scraper.id <= 0 {
        engine.create_scraper(scraper).await?
    } else {
        engine.update_scraper(scraper).await?
    })
}

#[server(input = Json)]
pub async fn delete_scraper(id: ScraperId) -> Result<Scraper, UiError> {
    Ok(engine()?.delete_scraper(id).await?)
}

/// Queues a run now.
#[server(input = Json)]
pub async fn run_scraper(
    id: ScraperId,
    priority: ScraperJobPriority,
) -> Result<ScraperJob, UiError> {
    Ok(engine()?.enqueue_scraper(id, priority).await?)
}

/// The scraper's jobs, newest first.
#[server(input = Json)]
pub async fn scraper_jobs(scraper_id: ScraperId) -> Result<Vec<ScraperJob>, UiError> {
    Ok(engine()?.get_scraper_jobs(scraper_id).await?)
}

#[server(input = Json)]
pub async fn get_job(scraper_id: ScraperId, job_id: ScraperJobId) -> Result<ScraperJob, UiError> {
    Ok(engine()?.get_scraper_job(scraper_id, job_id).await?)
}

/// Log lines after line `after`, at most `max_lines`.
#[server(input = Json)]
pub async fn job_logs(
    scraper_id: ScraperId,
    job_id: ScraperJobId,
    after: Option<i64>,
    max_lines: usize,
) -> Result<Vec<JobLogLine>, UiError> {
    Ok(engine()?
        .get_scraper_job_logs(scraper_id, job_id, after, Some(max_lines))
        .await?)
}

#[server(input = Json)]
pub async fn kill_job(scraper_id: ScraperId, job_id: ScraperJobId) -> Result<ScraperJob, UiError> {
    Ok(engine()?.kill_scraper_job(scraper_id, job_id).await?)
}

/// Runs `handler` once with `config` without saving a scraper, to try it out. The returned
/// job is followed like any other (its scraper id is negative).
#[server(input = Json)]
pub async fn run_once(
    handler: String,
    config: ScraperConfig,
    state: Option<String>,
    priority: ScraperJobPriority,
) -> Result<ScraperJob, UiError> {
    Ok(engine()?
        .run_ephemeral(handler, config, state, priority)
        .await?)
}
