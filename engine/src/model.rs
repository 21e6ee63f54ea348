//! The data model shared by every part of Sneakpeek: scrapers, their jobs, schedules,
//! priorities and the scheduler lease.
//!
//! These types are the wire contract. Their JSON shapes are those of Sneakpeek v0.1.7 (field
//! order, enum values, integer priorities, timestamps as naive UTC with microseconds), so
//! existing clients keep working; fields we added (`timeout_seconds`, `retry`,
//! `schedule_timezone` and `schedule_crontab_dialect` on scrapers; `attempt`,
//! `next_attempt_at` and `attempts` on jobs) are appended and ignored by old clients. This module has no runtime dependencies and compiles to wasm, so the browser
//! UI uses the very same types.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::retry::{RetryPolicy, RetryReason};

/// The id a client sends when it wants the storage to assign one.
pub const UNSET_ID: i64 = -1;

/// Identifier of a scraper. Positive once stored.
pub type ScraperId = i64;
/// Identifier of a scraper job. Positive once stored, unique across all scrapers.
pub type ScraperJobId = i64;

/// When the scheduler enqueues a scraper by itself.
///
/// The declaration order is the order `get_schedules` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ScraperSchedule {
    /// Never runs by itself; only when enqueued by a user.
    #[default]
    Inactive,
    /// `every_second`: fires at every whole second.
    EverySecond,
    /// `every_minute`: fires at the start of every minute (:00), UTC.
    EveryMinute,
    /// `every_hour`: fires at the start of every hour (:00:00), UTC.
    EveryHour,
    /// `every_day`: fires every day at midnight in the scraper's time zone
    /// ([`Scraper::schedule_timezone`], UTC by default).
    EveryDay,
    /// `every_week`: fires on Mondays at midnight in the scraper's time zone.
    EveryWeek,
    /// `every_month`: fires on the 1st of every month at midnight in the scraper's time zone
    /// (the original counted 30 days from an arbitrary start).
    EveryMonth,
    /// A 5-field crontab expression in `Scraper::schedule_crontab`, read in the scraper's time
    /// zone as its [`CrontabDialect`] says.
    Crontab,
}

impl ScraperSchedule {
    /// Every schedule in wire order: what `get_schedules` returns and the UI offers.
    pub const ALL: [ScraperSchedule; 8] = [
        Self::Inactive,
        Self::EverySecond,
        Self::EveryMinute,
        Self::EveryHour,
        Self::EveryDay,
        Self::EveryWeek,
        Self::EveryMonth,
        Self::Crontab,
    ];

    /// The wire value, e.g. `every_second`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inactive => "inactive",
            Self::EverySecond => "every_second",
            Self::EveryMinute => "every_minute",
            Self::EveryHour => "every_hour",
            Self::EveryDay => "every_day",
            Self::EveryWeek => "every_week",
            Self::EveryMonth => "every_month",
            Self::Crontab => "crontab",
        }
    }

    /// A label for people, e.g. "Every second".
    pub fn label(self) -> &'static str {
        match self {
            Self::Inactive => "Inactive",
            Self::EverySecond => "Every second",
            Self::EveryMinute => "Every minute",
            Self::EveryHour => "Every hour",
            Self::EveryDay => "Every day",
            Self::EveryWeek => "Every week",
            Self::EveryMonth => "Every month",
            Self::Crontab => "Crontab",
        }
    }

    /// Whether the scraper's time zone changes when it fires: crontab and calendar schedules.
    pub fn reads_time_zone(self) -> bool {
        self.interval().is_none() && self != Self::Inactive
    }

    /// The fixed period of a schedule that fires at whole multiples of it, in UTC; `None` for
    /// `inactive`, `crontab` and the calendar schedules (`every_day`, `every_week`,
    /// `every_month`), whose fire times [`crate::schedule::Trigger`] computes from the
    /// calendar of the scraper's time zone.
    pub fn interval(self) -> Option<chrono::Duration> {
        match self {
            Self::Inactive
            | Self::Crontab
            | Self::EveryDay
            | Self::EveryWeek
            | Self::EveryMonth => None,
            Self::EverySecond => Some(chrono::Duration::seconds(1)),
            Self::EveryMinute => Some(chrono::Duration::minutes(1)),
            Self::EveryHour => Some(chrono::Duration::hours(1)),
        }
    }
}

impl fmt::Display for ScraperSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Priority of a job in the queue. Lower value is dequeued first. On the wire it is the integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
// utoipa describes a field-less enum by its integer values (as `value()` writes them) only
// when the enum has a `repr`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), repr(i16))]
pub enum ScraperJobPriority {
    /// `0`: dequeued before any other job.
    Utmost = 0,
    /// `1`: dequeued after utmost jobs, before normal ones.
    High = 1,
    /// `2`: the default, dequeued last; scheduled jobs get it unless the scraper's
    /// `schedule_priority` says otherwise.
    #[default]
    Normal = 2,
}

impl ScraperJobPriority {
    /// Dequeue order: highest priority first.
    pub const ALL: [ScraperJobPriority; 3] = [Self::Utmost, Self::High, Self::Normal];

    /// The wire value: `0` utmost, `1` high, `2` normal; lower is dequeued first.
    pub fn value(self) -> i16 {
        self as i16
    }

    /// The name `get_priorities` reports, e.g. `UTMOST`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Utmost => "UTMOST",
            Self::High => "HIGH",
            Self::Normal => "NORMAL",
        }
    }

    /// A label for people, e.g. "Utmost".
    pub fn label(self) -> &'static str {
        match self {
            Self::Utmost => "Utmost",
            Self::High => "High",
            Self::Normal => "Normal",
        }
    }

    /// The priority of a wire value; `None` outside 0, 1 and 2 (the API then answers -32602 with
    /// [`INVALID_PRIORITY_MESSAGE`]).
    pub fn from_value(value: i64) -> Option<Self> {
        match value {
            0 => Some(Self::Utmost),
            1 => Some(Self::High),
            2 => Some(Self::Normal),
            _ => None,
        }
    }
}

/// The message the original returns for a priority outside 0/1/2; clients may match on it.
pub const INVALID_PRIORITY_MESSAGE: &str =
    "value is not a valid enumeration member; permitted: 0, 1, 2";

impl Serialize for ScraperJobPriority {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i16(self.value())
    }
}

impl<'de> Deserialize<'de> for ScraperJobPriority {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Accept any JSON value so that `"HIGH"` or `7` get the original's message instead of
        // a serde type error.
        let value = Value::deserialize(deserializer)?;
        value
            .as_i64()
            .and_then(Self::from_value)
            .ok_or_else(|| serde::de::Error::custom(INVALID_PRIORITY_MESSAGE))
    }
}

/// A job's state machine:
///
/// ```text
/// pending --dequeue--> started --handler returns--> succeeded | failed
///    |                    |--no heartbeat for the dead timeout--> dead
///    +--kill--> killed <--+--kill
/// ```
/// `succeeded`, `failed`, `dead` and `killed` are final: nothing moves a job out of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ScraperJobStatus {
    /// Waiting in the queue.
    Pending,
    /// Claimed by a worker, handler running.
    Started,
    /// The handler returned an error, panicked, ran past its timeout or outlived its worker's
    /// shutdown grace; `result` says why. Final.
    Failed,
    /// The handler returned a result, now in `result`. Final.
    Succeeded,
    /// The worker stopped sending heartbeats; marked by the scheduler.
    Dead,
    /// Killed by a user.
    Killed,
}

impl ScraperJobStatus {
    /// Every status, in the declaration order (also the order statuses sort in).
    pub const ALL: [ScraperJobStatus; 6] = [
        Self::Pending,
        Self::Started,
        Self::Failed,
        Self::Succeeded,
        Self::Dead,
        Self::Killed,
    ];

    /// The wire value, e.g. `succeeded`, also stored in the database's `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Started => "started",
            Self::Failed => "failed",
            Self::Succeeded => "succeeded",
            Self::Dead => "dead",
            Self::Killed => "killed",
        }
    }

    /// The status of a wire value (`pending`, `started`, ...); `None` for any other text.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
    }

    /// Pending or started: the job still occupies its scraper's single active slot.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Pending | Self::Started)
    }

    /// Succeeded, failed, dead or killed: final, nothing moves the job out of it any more.
    pub fn is_finished(self) -> bool {
        !self.is_active()
    }
}

impl fmt::Display for ScraperJobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-scraper configuration: handler parameters and per-scraper middleware settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScraperConfig {
    /// Free-form parameters given to the handler as `context.params`.
    #[serde(default)]
    pub params: Option<Map<String, Value>>,
    /// Middleware configuration keyed by middleware name (e.g. `rate_limiter`); overrides the
    /// global defaults for this scraper.
    #[serde(default)]
    pub plugins: Option<Map<String, Value>>,
}

/// A scraper: which handler runs, with which config, on which schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Scraper {
    /// `-1` (or absent) on create means "assign one".
    #[serde(default = "unset_id")]
    // The id types are aliases of `i64`; without this the document would name a schema `i64`.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: ScraperId,
    /// Shown to people: not empty (after trimming), at most 256 characters; need not be unique.
    pub name: String,
    /// When the scheduler enqueues the scraper by itself; `inactive`: only when enqueued by hand.
    pub schedule: ScraperSchedule,
    /// Required when `schedule` is `crontab`: a standard 5-field expression, in UTC.
    #[serde(default)]
    pub schedule_crontab: Option<String>,
    /// Name of a registered handler.
    pub handler: String,
    /// The handler's params and the per-scraper middleware settings; at most 1 MiB as JSON. Absent
    /// on the wire: `{"params": null, "plugins": null}`.
    #[serde(default)]
    pub config: ScraperConfig,
    /// Priority of the jobs the scheduler creates.
    #[serde(default)]
    pub schedule_priority: ScraperJobPriority,
    /// State persisted between the scraper's jobs (the handler reads and updates it).
    #[serde(default)]
    pub state: Option<String>,
    /// A job running longer than this fails with a timeout: 1 to 604,800 (7 days). Absent: no
    /// limit.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// When and why failed attempts of its jobs run again. Absent: the operator's default
    /// (retry a lost worker's job). In a job's scraper snapshot, the policy the job runs
    /// under, the default filled in.
    #[serde(default)]
    pub retry: Option<RetryPolicy>,
    /// The IANA time zone (`Europe/Berlin`) in which `crontab`, `every_day`, `every_week` and
    /// `every_month` schedules are read, daylight-saving changes included. Absent: UTC.
    #[serde(default)]
    pub schedule_timezone: Option<String>,
    /// How `schedule_crontab` is read. Absent: `standard`.
    #[serde(default)]
    pub schedule_crontab_dialect: Option<CrontabDialect>,
}

/// How a crontab expression is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CrontabDialect {
    /// Standard (Vixie) cron: weekdays 0 to 7 from Sunday (0 and 7 are Sunday); when both the
    /// day of month and the day of week are restricted, a day matching either fires.
    #[default]
    Standard,
    /// As Sneakpeek 0.1.7 read it (APScheduler's `from_crontab`): weekdays 0 to 6 from Monday,
    /// and every field must match, so a restricted day of month and day of week must both.
    /// For migrated schedules; 0.1.7 also read them in its server's local time, which
    /// `schedule_timezone` says.
    Apscheduler,
}

impl CrontabDialect {
    /// Both dialects, as the form offers them.
    pub const ALL: [CrontabDialect; 2] = [Self::Standard, Self::Apscheduler];

    /// The dialect's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Apscheduler => "apscheduler",
        }
    }

    /// The dialect of a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|dialect| dialect.as_str() == name)
    }

    /// What the dialect is, for people.
    pub fn label(self) -> &'static str {
        match self {
            Self::Standard => "Standard cron",
            Self::Apscheduler => "As Sneakpeek 0.1.7 (Monday = 0, all fields must match)",
        }
    }
}

fn unset_id() -> i64 {
    UNSET_ID
}

/// The handlers every server registers (`scraper::builtin_handlers`), named as a scraper's
/// `handler` names them. A server may register others, so `handler` stays a free name; these
/// are the ones the UI knows more about than their name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinHandler {
    /// Reads fields out of pages with CSS selectors, regular expressions or JSON pointers.
    Extract,
    /// Runs a Rhai script, given in its params' `source`.
    Script,
}

impl BuiltinHandler {
    /// The handler's registered name, the value of a scraper's `handler` (`extract`, `script`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Extract => "extract",
            Self::Script => "script",
        }
    }
}

/// One run of a scraper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScraperJob {
    /// Positive, unique across all scrapers, assigned by the queue on enqueue; increasing, so newer
    /// jobs have greater ids.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: ScraperJobId,
    /// The scraper as it was when the job was enqueued.
    pub scraper: Scraper,
    /// Where the job is in its life: see [`ScraperJobStatus`].
    pub status: ScraperJobStatus,
    /// The job's queue priority: the scraper's `schedule_priority` for scheduled jobs, the
    /// one asked for otherwise.
    pub priority: ScraperJobPriority,
    /// When the job was enqueued (UTC).
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "2026-11-29T00:49:26.235961"))]
    #[serde(with = "timestamp")]
    pub created_at: DateTime<Utc>,
    /// When a worker claimed the job (UTC); `None` while pending (a job handed back to the
    /// queue loses it).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "2026-11-29T00:49:26.235961"))]
    #[serde(default, with = "timestamp::option")]
    pub started_at: Option<DateTime<Utc>>,
    /// Last heartbeat from the worker running the job.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "2026-11-29T00:49:26.235961"))]
    #[serde(default, with = "timestamp::option")]
    pub last_active_at: Option<DateTime<Utc>>,
    /// When the job reached a final status (UTC); `None` while pending or started.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "2026-11-29T00:49:26.235961"))]
    #[serde(default, with = "timestamp::option")]
    pub finished_at: Option<DateTime<Utc>>,
    /// What the handler returned, or the error text when it failed.
    #[serde(default)]
    pub result: Option<String>,
    /// The current attempt (1 for the first run); `max_attempts` of the snapshot's `retry`
    /// says how many it may have.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// When a job `pending` for a retry becomes due; workers do not claim it before. Cleared
    /// when the attempt is claimed.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "2026-11-29T00:49:26.235961"))]
    #[serde(default, with = "timestamp::option")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The attempts before the current one, oldest first: each failed and was retried.
    #[serde(default)]
    pub attempts: Vec<JobAttempt>,
}

fn first_attempt() -> u32 {
    1
}

impl ScraperJob {
    /// When the job's next attempt is due, while it waits in the queue for a retry (a killed
    /// job keeps the due time it had, but waits no more).
    pub fn retry_due(&self) -> Option<DateTime<Utc>> {
        self.next_attempt_at
            .filter(|_| self.status == ScraperJobStatus::Pending)
    }
}

/// An attempt of a job that failed and was retried: how and when it ended. Its log lines
/// are in the job's log, before the next attempt's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobAttempt {
    /// Its number, from 1.
    pub attempt: u32,
    /// Why it failed.
    pub reason: RetryReason,
    /// The status it would have ended the job with: `failed`, or `dead` for a lost worker.
    pub status: ScraperJobStatus,
    /// When its handler started.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "2026-11-29T00:49:26.235961"))]
    #[serde(default, with = "timestamp::option")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it was found to have failed.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "2026-11-29T00:49:26.235961"))]
    #[serde(with = "timestamp")]
    pub finished_at: DateTime<Utc>,
    /// The error it failed with (none for a lost worker).
    #[serde(default)]
    pub result: Option<String>,
}

/// Severity of a job log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    /// `DEBUG`: detail for debugging a handler.
    Debug,
    /// `INFO`: a normal step, e.g. a request and its response status.
    Info,
    /// `WARNING`: something went wrong but the job went on.
    Warning,
    /// `ERROR`: a failure, such as why the job failed.
    Error,
}

impl LogLevel {
    /// The wire value (`DEBUG`, `INFO`, `WARNING`, `ERROR`), also how a level is stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Warning => "WARNING",
            Self::Error => "ERROR",
        }
    }

    /// The level of a wire value; `None` for any other text (case matters: `INFO`, not `info`).
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Debug, Self::Info, Self::Warning, Self::Error]
            .into_iter()
            .find(|level| level.as_str() == text)
    }
}

/// One line of a job's log. `id` is the line number within the job, from 1, so a reader can
/// ask for the lines after the last one it has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobLogLine {
    /// The line number within the job, from 1 (`after` in `get_scraper_job_logs` refers to it).
    pub id: i64,
    /// When the line was logged (UTC).
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "2026-11-29T00:49:26.235961"))]
    #[serde(with = "timestamp")]
    pub at: DateTime<Utc>,
    /// How severe the line is.
    pub level: LogLevel,
    /// The text, as the handler or middleware logged it.
    pub message: String,
}

/// How many jobs finished with a status in one minute (for the dashboard's chart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCount {
    /// The start of the minute.
    #[serde(with = "timestamp")]
    pub minute: DateTime<Utc>,
    /// The final status the counted jobs ended with.
    pub status: ScraperJobStatus,
    /// How many jobs finished with `status` within that minute.
    pub count: u64,
}

/// What this replica runs, and how it is doing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    /// `None` when this replica runs no scheduler.
    pub scheduler: Option<SchedulerState>,
    /// `None` when this replica runs no worker.
    pub worker: Option<WorkerState>,
    /// The components above whose task has ended, by name (`scheduler`, `worker`): stopped
    /// on shutdown, or by a fault such as a panic. They no longer fire or claim anything.
    #[serde(default)]
    pub stopped: Vec<String>,
}

/// What this replica's scheduler is doing, as the dashboard shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulerState {
    /// Holds the lease: the one scheduler acting among all replicas.
    pub leading: bool,
    /// Scrapers with an active schedule (known only to the leader).
    pub planned: usize,
}

/// How busy this replica's worker is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerState {
    /// Jobs whose handlers run on this worker right now (claimed-ahead jobs waiting for a slot
    /// are not counted).
    pub running_jobs: usize,
    /// The most handlers the worker runs at once (`--worker-concurrency`).
    pub max_concurrency: usize,
}

/// The scheduler lease: at most one owner at a time, until `acquired_until`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    /// Which lease this is; the scheduler's is `sneakpeek:scheduler`.
    pub name: String,
    /// Who holds the lease: the holding scheduler's id (`<process id>-<uuid>`, new at each start).
    pub owner_id: String,
    /// When the holder last acquired or renewed the lease (UTC).
    #[serde(with = "timestamp")]
    pub acquired: DateTime<Utc>,
    /// When the lease expires unless renewed (UTC); after that another owner may take it.
    #[serde(with = "timestamp")]
    pub acquired_until: DateTime<Utc>,
}

/// An entry of `get_priorities`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Priority {
    /// The priority's name: `UTMOST`, `HIGH` or `NORMAL`.
    pub name: String,
    /// The priority's wire value: `0`, `1` or `2`, as `enqueue_scraper` takes it.
    pub value: i16,
}

impl From<ScraperJobPriority> for Priority {
    fn from(priority: ScraperJobPriority) -> Self {
        Priority {
            name: priority.name().to_owned(),
            value: priority.value(),
        }
    }
}

/// Timestamps as the original writes them: naive UTC, microseconds, no zone suffix
/// (`2026-11-29T00:49:26.235961`). Reading also accepts RFC 3339 with an offset.
pub mod timestamp {
    use chrono::{DateTime, NaiveDateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6f";

    /// `value` as the wire writes it: `2026-11-29T00:49:26.235961` (UTC, microseconds, no zone).
    pub fn format(value: &DateTime<Utc>) -> String {
        value.format(FORMAT).to_string()
    }

    /// Reads a wire timestamp: RFC 3339 with an offset, or naive (taken as UTC) with any number
    /// of fraction digits. `Err` for any other text.
    pub fn parse(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
        DateTime::parse_from_rfc3339(text)
            .map(|value| value.with_timezone(&Utc))
            .or_else(|_| {
                NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                    .map(|naive| naive.and_utc())
            })
    }

    /// Serde `serialize_with`: writes `value` as [`format()`] does.
    pub fn serialize<S: Serializer>(
        value: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(value))
    }

    /// Serde `deserialize_with`: reads a string as [`parse`] does.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).map_err(serde::de::Error::custom)
    }

    /// The same format for optional timestamps: `null` for `None`.
    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::{Deserialize, Deserializer, Serializer};

        /// Serde `serialize_with`: the timestamp as [`super::format`] writes it, or `null`.
        pub fn serialize<S: Serializer>(
            value: &Option<DateTime<Utc>>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match value {
                Some(value) => super::serialize(value, serializer),
                None => serializer.serialize_none(),
            }
        }

        /// Serde `deserialize_with`: `null` (or absent, with `#[serde(default)]`) is `None`; a
        /// string is read as [`super::parse`] does.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            Option::<String>::deserialize(deserializer)?
                .map(|text| super::parse(&text).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A job exactly as Sneakpeek v0.1.7 returned it from `get_scraper_jobs`.
    const ORIGINAL_JOB: &str = r#"{"id":1,"scraper":{"id":2,"name":"Failing","schedule":"inactive","schedule_crontab":null,"handler":"echo","config":{"params":{"fail":"x"},"plugins":null},"schedule_priority":2,"state":null},"status":"failed","priority":2,"created_at":"2026-11-29T00:49:26.235961","started_at":"2026-11-29T00:49:26.527432","last_active_at":"2026-11-29T00:49:26.528595","finished_at":"2026-11-29T00:49:26.529531","result":"boom: x"}"#;

    /// A pending job exactly as v0.1.7 returned it from `enqueue_scraper`.
    const ORIGINAL_PENDING_JOB: &str = r#"{"id":5,"scraper":{"id":2,"name":"Demo scraper","schedule":"inactive","schedule_crontab":null,"handler":"echo","config":{"params":{"url":"http://example.com"},"plugins":null},"schedule_priority":0,"state":null},"status":"pending","priority":1,"created_at":"2026-11-29T00:48:18.229944","started_at":null,"last_active_at":null,"finished_at":null,"result":null}"#;

    /// Serialises `value` and removes the fields the original does not have, so the rest can
    /// be compared byte for byte.
    fn without_additions(mut value: Value) -> Value {
        fn strip(scraper: &mut Value) {
            for added in [
                "timeout_seconds",
                "retry",
                "schedule_timezone",
                "schedule_crontab_dialect",
            ] {
                let removed = scraper.as_object_mut().unwrap().remove(added);
                assert_eq!(
                    removed,
                    Some(Value::Null),
                    "{added} is appended and null when unset"
                );
            }
        }
        if value.get("scraper").is_some() {
            strip(&mut value["scraper"]);
            let job = value.as_object_mut().unwrap();
            assert_eq!(job.remove("attempt"), Some(json!(1)), "a first attempt");
            assert_eq!(job.remove("next_attempt_at"), Some(Value::Null));
            assert_eq!(job.remove("attempts"), Some(json!([])));
        } else {
            strip(&mut value);
        }
        value
    }

    #[test]
    fn a_job_of_the_original_round_trips_to_the_same_json_text() {
        for original in [ORIGINAL_JOB, ORIGINAL_PENDING_JOB] {
            let job: ScraperJob = serde_json::from_str(original).unwrap();
            let text =
                serde_json::to_string(&without_additions(serde_json::to_value(&job).unwrap()))
                    .unwrap();
            assert_eq!(text, original);
        }
    }

    #[test]
    fn a_job_of_the_original_parses_into_the_right_values() {
        let job: ScraperJob = serde_json::from_str(ORIGINAL_JOB).unwrap();
        assert_eq!(job.status, ScraperJobStatus::Failed);
        assert_eq!(job.priority, ScraperJobPriority::Normal);
        assert_eq!(job.scraper.schedule, ScraperSchedule::Inactive);
        assert_eq!(
            job.scraper.config.params.as_ref().unwrap()["fail"],
            json!("x")
        );
        assert_eq!(job.finished_at.unwrap().timestamp_subsec_micros(), 529531);
        assert_eq!(job.result.as_deref(), Some("boom: x"));
    }

    #[test]
    fn a_created_scraper_serialises_in_the_original_field_order() {
        let request = json!({"id":-1,"name":"Demo","schedule":"every_second","schedule_crontab":null,"schedule_priority":2,"handler":"echo","config":{"params":{"url":"http://example.com"},"plugins":null}});
        let mut scraper: Scraper = serde_json::from_value(request).unwrap();
        scraper.id = 1;
        let text =
            serde_json::to_string(&without_additions(serde_json::to_value(&scraper).unwrap()))
                .unwrap();
        assert_eq!(
            text,
            r#"{"id":1,"name":"Demo","schedule":"every_second","schedule_crontab":null,"handler":"echo","config":{"params":{"url":"http://example.com"},"plugins":null},"schedule_priority":2,"state":null}"#
        );
    }

    #[test]
    fn a_scraper_without_id_or_optional_fields_gets_the_defaults() {
        let scraper: Scraper = serde_json::from_value(
            json!({"name":"Failing","schedule":"inactive","handler":"echo","config":{}}),
        )
        .unwrap();
        assert_eq!(scraper.id, UNSET_ID);
        assert_eq!(scraper.schedule_priority, ScraperJobPriority::Normal);
        assert_eq!(
            scraper.config,
            ScraperConfig {
                params: None,
                plugins: None
            }
        );
        assert_eq!(
            serde_json::to_value(&scraper.config).unwrap(),
            json!({"params":null,"plugins":null})
        );
    }

    #[test]
    fn priorities_are_integers_on_the_wire_and_other_values_get_the_original_message() {
        assert_eq!(
            serde_json::to_string(&ScraperJobPriority::Utmost).unwrap(),
            "0"
        );
        assert_eq!(
            serde_json::from_str::<ScraperJobPriority>("1").unwrap(),
            ScraperJobPriority::High
        );
        for bad in [r#""HIGH""#, "7", "-1", "1.5", "null"] {
            let error = serde_json::from_str::<ScraperJobPriority>(bad).unwrap_err();
            assert!(
                error.to_string().starts_with(INVALID_PRIORITY_MESSAGE),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn schedules_serialise_to_the_original_strings_in_order() {
        let values = serde_json::to_value(ScraperSchedule::ALL).unwrap();
        assert_eq!(
            values,
            json!([
                "inactive",
                "every_second",
                "every_minute",
                "every_hour",
                "every_day",
                "every_week",
                "every_month",
                "crontab"
            ])
        );
        for schedule in ScraperSchedule::ALL {
            assert_eq!(
                serde_json::to_value(schedule).unwrap(),
                json!(schedule.as_str())
            );
        }
        assert!(serde_json::from_str::<ScraperSchedule>(r#""every_year""#).is_err());
    }

    #[test]
    fn statuses_serialise_to_the_original_strings() {
        for status in ScraperJobStatus::ALL {
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                json!(status.as_str())
            );
            assert_eq!(ScraperJobStatus::parse(status.as_str()), Some(status));
        }
        assert!(ScraperJobStatus::Pending.is_active() && ScraperJobStatus::Started.is_active());
        assert!(ScraperJobStatus::Killed.is_finished() && ScraperJobStatus::Dead.is_finished());
    }

    #[test]
    fn a_lease_round_trips() {
        let text = r#"{"name":"sneakpeek:scheduler","owner_id":"a","acquired":"2026-11-29T00:49:26.235961","acquired_until":"2026-11-29T00:50:26.235961"}"#;
        let lease: Lease = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&lease).unwrap(), text);
        assert_eq!((lease.acquired_until - lease.acquired).num_seconds(), 60);
    }

    #[test]
    fn timestamps_with_an_offset_are_read_as_utc() {
        let parsed = timestamp::parse("2026-11-29T02:49:26.5+02:00").unwrap();
        assert_eq!(timestamp::format(&parsed), "2026-11-29T00:49:26.500000");
    }

    #[test]
    fn priorities_list_matches_the_original() {
        let priorities: Vec<Priority> = ScraperJobPriority::ALL
            .into_iter()
            .map(Priority::from)
            .collect();
        assert_eq!(
            serde_json::to_value(priorities).unwrap(),
            json!([{"name":"UTMOST","value":0},{"name":"HIGH","value":1},{"name":"NORMAL","value":2}])
        );
    }
}
