//! Rows as the statements return them, decoded by `sqlx::FromRow` into structs whose fields
//! name the columns, and their conversion into the model's types.
//!
//! A row struct holds the database's types (`text`, `smallint`, `jsonb`); the conversion is
//! where a value the model cannot hold (an unknown status, say) becomes an error, so a
//! statement's `SELECT` or `RETURNING` list and the struct it decodes into are all that must
//! agree. Columns a statement returns beyond a struct's fields (the `notified` column of the
//! statements that NOTIFY) are ignored.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::FromRow;

use crate::error::{Error, Result};
use crate::model::{
    CrontabDialect, JobAttempt, JobCount, JobLogLine, Lease, LogLevel, Scraper, ScraperConfig,
    ScraperId, ScraperJob, ScraperJobId, ScraperJobPriority, ScraperJobStatus,
};
use crate::retry::RetryPolicy;
use crate::storage::JobStamp;

/// The decoded row, or `missing` when the statement matched none.
pub(super) fn found<R, T: TryFrom<R, Error = Error>>(row: Option<R>, missing: Error) -> Result<T> {
    row.map(T::try_from).transpose()?.ok_or(missing)
}

/// Every row decoded, or the first row that could not be.
pub(super) fn all<R, T: TryFrom<R, Error = Error>>(rows: Vec<R>) -> Result<Vec<T>> {
    rows.into_iter().map(T::try_from).collect()
}

fn status(text: &str) -> Result<ScraperJobStatus> {
    ScraperJobStatus::parse(text).ok_or_else(|| Error::internal("bad status"))
}

/// The number of a job's current attempt: one more than the earlier attempts it keeps, which
/// is all the table stores (the number is not kept twice).
fn attempt_after(earlier: usize) -> u32 {
    u32::try_from(earlier).map_or(u32::MAX, |earlier| earlier.saturating_add(1))
}

fn priority(value: i16) -> Result<ScraperJobPriority> {
    ScraperJobPriority::from_value(value.into()).ok_or_else(|| Error::internal("bad priority"))
}

/// A row of `scrapers`.
#[derive(FromRow)]
pub(super) struct ScraperRow {
    id: ScraperId,
    name: String,
    schedule: String,
    schedule_crontab: Option<String>,
    handler: String,
    config: Json<ScraperConfig>,
    schedule_priority: i16,
    state: Option<String>,
    timeout_seconds: Option<i64>,
    retry: Option<Json<RetryPolicy>>,
    schedule_timezone: Option<String>,
    schedule_crontab_dialect: Option<String>,
}

impl TryFrom<ScraperRow> for Scraper {
    type Error = Error;

    fn try_from(row: ScraperRow) -> Result<Self> {
        Ok(Scraper {
            id: row.id,
            name: row.name,
            schedule: serde_json::from_value(serde_json::Value::String(row.schedule))
                .map_err(Error::internal)?,
            schedule_crontab: row.schedule_crontab,
            handler: row.handler,
            config: row.config.0,
            schedule_priority: priority(row.schedule_priority)?,
            state: row.state,
            timeout_seconds: row.timeout_seconds.map(|seconds| seconds as u64),
            retry: row.retry.map(|retry| retry.0),
            schedule_timezone: row.schedule_timezone,
            schedule_crontab_dialect: row
                .schedule_crontab_dialect
                .map(|dialect| {
                    CrontabDialect::parse(&dialect)
                        .ok_or_else(|| Error::internal("bad crontab dialect"))
                })
                .transpose()?,
        })
    }
}

/// A row of `scraper_jobs`, without the columns only the statements use (`scraper_id`,
/// `scheduled_for`, `running_since`).
#[derive(FromRow)]
pub(super) struct JobRow {
    id: ScraperJobId,
    scraper: Json<Scraper>,
    status: String,
    priority: i16,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    last_active_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    result: Option<String>,
    next_attempt_at: Option<DateTime<Utc>>,
    attempts: Json<Vec<JobAttempt>>,
}

impl TryFrom<JobRow> for ScraperJob {
    type Error = Error;

    fn try_from(row: JobRow) -> Result<Self> {
        Ok(ScraperJob {
            id: row.id,
            scraper: row.scraper.0,
            status: status(&row.status)?,
            priority: priority(row.priority)?,
            created_at: row.created_at,
            started_at: row.started_at,
            last_active_at: row.last_active_at,
            finished_at: row.finished_at,
            result: row.result,
            attempt: attempt_after(row.attempts.0.len()),
            next_attempt_at: row.next_attempt_at,
            attempts: row.attempts.0,
        })
    }
}

/// Whose a job is and where it stands: why a guarded transition matched no row.
#[derive(FromRow)]
pub(super) struct JobStatusRow {
    scraper_id: ScraperId,
    status: String,
}

impl TryFrom<JobStatusRow> for (ScraperId, ScraperJobStatus) {
    type Error = Error;

    fn try_from(row: JobStatusRow) -> Result<Self> {
        Ok((row.scraper_id, status(&row.status)?))
    }
}

/// A job's stamp, with the number of its last log line when it was asked for.
#[derive(FromRow)]
pub(super) struct JobStampRow {
    id: ScraperJobId,
    scraper_id: ScraperId,
    status: String,
    started_at: Option<DateTime<Utc>>,
    last_active_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    /// How many attempts the job had before its current one.
    earlier_attempts: i32,
    last_log_line: Option<i64>,
}

impl TryFrom<JobStampRow> for JobStamp {
    type Error = Error;

    fn try_from(row: JobStampRow) -> Result<Self> {
        Ok(JobStamp {
            id: row.id,
            scraper_id: row.scraper_id,
            status: status(&row.status)?,
            started_at: row.started_at,
            last_active_at: row.last_active_at,
            finished_at: row.finished_at,
            attempt: attempt_after(
                usize::try_from(row.earlier_attempts)
                    .map_err(|_| Error::internal("bad attempts"))?,
            ),
            last_log_line: row.last_log_line,
        })
    }
}

/// How many jobs finished with a status in one minute.
#[derive(FromRow)]
pub(super) struct JobCountRow {
    minute: DateTime<Utc>,
    status: String,
    count: i64,
}

impl TryFrom<JobCountRow> for JobCount {
    type Error = Error;

    fn try_from(row: JobCountRow) -> Result<Self> {
        Ok(JobCount {
            minute: row.minute,
            status: status(&row.status)?,
            count: row.count as u64,
        })
    }
}

/// A row of `scraper_job_logs`, without its job's id.
#[derive(FromRow)]
pub(super) struct LogLineRow {
    line_no: i64,
    at: DateTime<Utc>,
    level: String,
    message: String,
}

impl TryFrom<LogLineRow> for JobLogLine {
    type Error = Error;

    fn try_from(row: LogLineRow) -> Result<Self> {
        Ok(JobLogLine {
            id: row.line_no,
            at: row.at,
            level: LogLevel::parse(&row.level).ok_or_else(|| Error::internal("bad log level"))?,
            message: row.message,
        })
    }
}

/// A row of `leases`.
#[derive(FromRow)]
pub(super) struct LeaseRow {
    name: String,
    owner_id: String,
    acquired: DateTime<Utc>,
    acquired_until: DateTime<Utc>,
}

impl From<LeaseRow> for Lease {
    fn from(row: LeaseRow) -> Self {
        Lease {
            name: row.name,
            owner_id: row.owner_id,
            acquired: row.acquired,
            acquired_until: row.acquired_until,
        }
    }
}
