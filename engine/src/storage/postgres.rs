//! The PostgreSQL storage: scrapers, the jobs queue and the scheduler lease, shared by any
//! number of replicas.
//!
//! Each queue operation is one statement (one commit): the claim is an `UPDATE` over a
//! `FOR UPDATE SKIP LOCKED` subquery, the one-active-job rule and the one-job-per-fire rule
//! are unique indexes (see `migrations/`), and later transitions are guarded by the job's
//! status in their `WHERE`. Enqueues and scraper changes `NOTIFY` in the same statement, so
//! idle workers and the scheduler of every replica wake at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool, Row};
use tokio::sync::{broadcast, watch, Mutex, Notify};

use super::text::{
    storable, storable_completion, storable_lines, storable_option, storable_scraper,
};
use super::{
    ClaimedJob, Completion, EnqueueOrigin, JobStamp, LeaseStorage, ScheduledFire,
    ScraperJobsStorage, ScrapersStorage,
};
use crate::error::{Error, Result};
use crate::model::{
    JobCount, JobLogLine, Lease, LogLevel, Scraper, ScraperConfig, ScraperId, ScraperJob,
    ScraperJobId, ScraperJobPriority, ScraperJobStatus,
};
use crate::schedule::no_ids_left;

const SCRAPERS_CHANNEL: &str = "sneakpeek_scrapers";
const JOBS_CHANNEL: &str = "sneakpeek_jobs";
const KILLS_CHANNEL: &str = "sneakpeek_kills";

/// Runs the migrations in `migrations/` (idempotent; safe from several replicas at once).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

impl From<sqlx::Error> for Error {
    /// Errors of the connection (refused, lost, pool exhausted, server shutting down) are
    /// [`Error::Unavailable`]: the same statement may succeed once the database is back.
    /// Everything else is a statement the database refused, [`Error::Internal`].
    fn from(error: sqlx::Error) -> Self {
        let transient = match &error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            // Class 08: connection exception; 57P01-57P03: the server is shutting down,
            // crashed or not accepting connections yet; 53300: too many connections.
            sqlx::Error::Database(database) => database.code().is_some_and(|code| {
                code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
            }),
            _ => false,
        };
        let error = if transient {
            Error::unavailable(error)
        } else {
            Error::internal(error)
        };
        error.context("database")
    }
}

/// One handle to the database, implementing all three storage traits.
#[derive(Clone)]
pub struct PostgresStorage {
    pool: PgPool,
    connect_options: PgConnectOptions,
    read_only: bool,
    scraper_changes: watch::Sender<u64>,
    enqueued: Arc<Notify>,
    kills: broadcast::Sender<ScraperJobId>,
    /// Leases held by this process: each on its own connection, which holds the advisory lock.
    held_leases: Arc<Mutex<HashMap<String, HeldLease>>>,
    /// Dropped with the last clone of the storage, which stops the notification listener.
    _listening: Arc<tokio::sync::oneshot::Sender<()>>,
}

struct HeldLease {
    owner_id: String,
    connection: PgConnection,
}

impl PostgresStorage {
    /// Connects, runs the migrations and starts listening for other replicas' changes.
    pub async fn connect(database_url: &str, read_only: bool) -> Result<Self> {
        let connect_options: PgConnectOptions = database_url
            .parse()
            .map_err(|error| Error::internal(error).context("invalid database URL"))?;
        let connect_options = connect_options.disable_statement_logging();
        // One connection first: when the database cannot be used, its error says why
        // (refused, authentication, no such database), where the pool's says only that it
        // timed out.
        PgConnection::connect_with(&connect_options)
            .await
            .map_err(|error| Error::from(error).context("connecting"))?
            .close()
            .await?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(connect_options.clone())
            .await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|error| Error::internal(error).context("migrations"))?;
        let (listening, stopped) = tokio::sync::oneshot::channel();
        let storage = PostgresStorage {
            pool,
            connect_options,
            read_only,
            scraper_changes: watch::channel(0).0,
            enqueued: Arc::new(Notify::new()),
            kills: broadcast::channel(1024).0,
            held_leases: Arc::default(),
            _listening: Arc::new(listening),
        };
        storage.listen(stopped).await?;
        Ok(storage)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Turns NOTIFYs from any replica into local wake-ups. When the listening connection
    /// drops, notifications may have been missed, so everyone is woken to re-check.
    async fn listen(&self, mut stopped: tokio::sync::oneshot::Receiver<()>) -> Result<()> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener
            .listen_all([SCRAPERS_CHANNEL, JOBS_CHANNEL, KILLS_CHANNEL])
            .await?;
        let scraper_changes = self.scraper_changes.clone();
        let enqueued = self.enqueued.clone();
        let kills = self.kills.clone();
        tokio::spawn(async move {
            loop {
                let received = tokio::select! {
                    _ = &mut stopped => break,
                    received = listener.try_recv() => received,
                };
                match received {
                    Ok(Some(notification)) if notification.channel() == JOBS_CHANNEL => {
                        enqueued.notify_waiters()
                    }
                    Ok(Some(notification)) if notification.channel() == KILLS_CHANNEL => {
                        if let Ok(job_id) = notification.payload().parse() {
                            let _ = kills.send(job_id);
                        }
                    }
                    Ok(Some(_)) => scraper_changes.send_modify(|version| *version += 1),
                    Ok(None) => {
                        enqueued.notify_waiters();
                        scraper_changes.send_modify(|version| *version += 1);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "lost the notification connection; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(())
    }
}

const SCRAPER_COLUMNS: &str = "id, name, schedule, schedule_crontab, handler, config, schedule_priority, state, timeout_seconds";
const JOB_COLUMNS: &str =
    "id, scraper, status, priority, created_at, started_at, last_active_at, finished_at, result";
/// Appended to a statement's RETURNING list to NOTIFY in the same statement (and commit).
fn notify_column(channel: &str) -> String {
    notify_column_with_payload(channel, "''")
}

/// As [`notify_column`], with an SQL expression as the payload.
fn notify_column_with_payload(channel: &str, payload: &str) -> String {
    format!(
        "(SELECT count(*) FROM (SELECT pg_notify('{channel}', {payload})) AS notified) AS notified"
    )
}

/// The parsed row, or `missing` when the statement matched none.
fn found<T>(row: Option<PgRow>, parse: fn(&PgRow) -> Result<T>, missing: Error) -> Result<T> {
    row.as_ref().map(parse).transpose()?.ok_or(missing)
}

fn scraper_from_row(row: &PgRow) -> Result<Scraper> {
    let schedule: String = row.try_get("schedule")?;
    let priority: i16 = row.try_get("schedule_priority")?;
    let timeout: Option<i64> = row.try_get("timeout_seconds")?;
    Ok(Scraper {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        schedule: serde_json::from_value(serde_json::Value::String(schedule))
            .map_err(Error::internal)?,
        schedule_crontab: row.try_get("schedule_crontab")?,
        handler: row.try_get("handler")?,
        config: row.try_get::<Json<ScraperConfig>, _>("config")?.0,
        schedule_priority: ScraperJobPriority::from_value(priority.into())
            .ok_or_else(|| Error::internal("bad priority"))?,
        state: row.try_get("state")?,
        timeout_seconds: timeout.map(|seconds| seconds as u64),
    })
}

fn job_from_row(row: &PgRow) -> Result<ScraperJob> {
    let status: String = row.try_get("status")?;
    let priority: i16 = row.try_get("priority")?;
    Ok(ScraperJob {
        id: row.try_get("id")?,
        scraper: row.try_get::<Json<Scraper>, _>("scraper")?.0,
        status: ScraperJobStatus::parse(&status).ok_or_else(|| Error::internal("bad status"))?,
        priority: ScraperJobPriority::from_value(priority.into())
            .ok_or_else(|| Error::internal("bad priority"))?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        last_active_at: row.try_get("last_active_at")?,
        finished_at: row.try_get("finished_at")?,
        result: row.try_get("result")?,
    })
}

/// Binds a scraper's columns after its id, in the order the INSERT and UPDATE name them.
fn bind_scraper_columns<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    scraper: &'q Scraper,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(&scraper.name)
        .bind(scraper.schedule.as_str())
        .bind(&scraper.schedule_crontab)
        .bind(&scraper.handler)
        .bind(Json(&scraper.config))
        .bind(scraper.schedule_priority.value())
        .bind(&scraper.state)
        .bind(
            scraper
                .timeout_seconds
                .map(|seconds| i64::try_from(seconds).unwrap_or(i64::MAX)),
        )
}

#[async_trait]
impl ScrapersStorage for PostgresStorage {
    fn is_read_only(&self) -> bool {
        self.read_only
    }

    async fn get_scrapers(&self) -> Result<Vec<Scraper>> {
        let rows = sqlx::query(&format!(
            "SELECT {SCRAPER_COLUMNS} FROM scrapers ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(scraper_from_row).collect()
    }

    async fn search_scrapers(
        &self,
        name_filter: Option<&str>,
        max_items: Option<i64>,
        last_id: Option<i64>,
    ) -> Result<Vec<Scraper>> {
        let rows = sqlx::query(&format!(
            "SELECT {SCRAPER_COLUMNS} FROM scrapers
             WHERE ($1::text IS NULL OR strpos(name, $1) > 0) AND ($2::bigint IS NULL OR id > $2)
             ORDER BY id LIMIT $3"
        ))
        // Names are stored without NUL (see `text`): a filter is matched the same way.
        .bind(name_filter.map(storable))
        .bind(last_id)
        .bind(max_items.filter(|max| *max > 0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(scraper_from_row).collect()
    }

    async fn maybe_get_scraper(&self, id: ScraperId) -> Result<Option<Scraper>> {
        let row = sqlx::query(&format!(
            "SELECT {SCRAPER_COLUMNS} FROM scrapers WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(scraper_from_row).transpose()
    }

    async fn create_scraper(&self, scraper: Scraper) -> Result<Scraper> {
        self.writable()?;
        let scraper = storable_scraper(&scraper);
        let notify = notify_column(SCRAPERS_CHANNEL);
        // An explicit id replaces that scraper (the original's semantics) and moves the
        // sequence past it so assigned ids never collide with it.
        let sql = if scraper.id > 0 {
            format!(
                "WITH upserted AS (
                    INSERT INTO scrapers (id, name, schedule, schedule_crontab, handler, config, schedule_priority, state, timeout_seconds)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                    ON CONFLICT (id) DO UPDATE SET name = excluded.name, schedule = excluded.schedule,
                        schedule_crontab = excluded.schedule_crontab, handler = excluded.handler, config = excluded.config,
                        schedule_priority = excluded.schedule_priority, state = excluded.state,
                        timeout_seconds = excluded.timeout_seconds, updated_at = now()
                    RETURNING {SCRAPER_COLUMNS})
                 SELECT upserted.*, {notify},
                    (SELECT setval(pg_get_serial_sequence('scrapers', 'id'), GREATEST($1, (SELECT last_value FROM scrapers_id_seq)))) AS sequence
                 FROM upserted"
            )
        } else {
            format!(
                "INSERT INTO scrapers (name, schedule, schedule_crontab, handler, config, schedule_priority, state, timeout_seconds)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 RETURNING {SCRAPER_COLUMNS}, {notify}"
            )
        };
        let mut query = sqlx::query(&sql);
        if scraper.id > 0 {
            query = query.bind(scraper.id);
        }
        let row = bind_scraper_columns(query, &scraper)
            .fetch_one(&self.pool)
            .await
            .map_err(|error| match &error {
                // The sequence reached its MAXVALUE, MAX_SCRAPER_ID (see the migrations).
                sqlx::Error::Database(database) if database.code().as_deref() == Some("2200H") => {
                    no_ids_left()
                }
                _ => Error::from(error),
            })?;
        scraper_from_row(&row)
    }

    async fn update_scraper(&self, scraper: Scraper) -> Result<Scraper> {
        self.writable()?;
        let scraper = storable_scraper(&scraper);
        let sql = format!(
            "UPDATE scrapers SET name = $2, schedule = $3, schedule_crontab = $4, handler = $5, config = $6,
                schedule_priority = $7, state = $8, timeout_seconds = $9, updated_at = now()
             WHERE id = $1
             RETURNING {SCRAPER_COLUMNS}, {}",
            notify_column(SCRAPERS_CHANNEL)
        );
        let row = bind_scraper_columns(sqlx::query(&sql).bind(scraper.id), &scraper)
            .fetch_optional(&self.pool)
            .await?;
        found(row, scraper_from_row, Error::ScraperNotFound(scraper.id))
    }

    async fn delete_scraper(&self, id: ScraperId) -> Result<Scraper> {
        self.writable()?;
        let row = sqlx::query(&format!(
            "DELETE FROM scrapers WHERE id = $1 RETURNING {SCRAPER_COLUMNS}, {}",
            notify_column(SCRAPERS_CHANNEL)
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        found(row, scraper_from_row, Error::ScraperNotFound(id))
    }

    async fn update_scraper_state(&self, id: ScraperId, state: Option<String>) -> Result<Scraper> {
        // No NOTIFY: state is not part of the schedule, the scheduler need not wake.
        let row = sqlx::query(&format!(
            "UPDATE scrapers SET state = $2 WHERE id = $1 RETURNING {SCRAPER_COLUMNS}"
        ))
        .bind(id)
        .bind(storable_option(state))
        .fetch_optional(&self.pool)
        .await?;
        found(row, scraper_from_row, Error::ScraperNotFound(id))
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.scraper_changes.subscribe()
    }
}

impl PostgresStorage {
    async fn job_status(
        &self,
        job_id: ScraperJobId,
    ) -> Result<Option<(ScraperId, ScraperJobStatus)>> {
        let row = sqlx::query("SELECT scraper_id, status FROM scraper_jobs WHERE id = $1")
            .bind(job_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            let status: String = row.try_get("status")?;
            Ok((
                row.try_get("scraper_id")?,
                ScraperJobStatus::parse(&status).ok_or_else(|| Error::internal("bad status"))?,
            ))
        })
        .transpose()
    }
}

#[async_trait]
impl ScraperJobsStorage for PostgresStorage {
    async fn get_scraper_jobs(&self, scraper_id: ScraperId) -> Result<Vec<ScraperJob>> {
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM scraper_jobs WHERE scraper_id = $1 ORDER BY id DESC"
        ))
        .bind(scraper_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(job_from_row).collect()
    }

    async fn get_scraper_job(
        &self,
        scraper_id: ScraperId,
        job_id: ScraperJobId,
    ) -> Result<ScraperJob> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM scraper_jobs WHERE id = $1 AND scraper_id = $2"
        ))
        .bind(job_id)
        .bind(scraper_id)
        .fetch_optional(&self.pool)
        .await?;
        found(row, job_from_row, Error::ScraperJobNotFound(job_id))
    }

    async fn add_scraper_job(
        &self,
        scraper: &Scraper,
        priority: ScraperJobPriority,
        origin: EnqueueOrigin,
    ) -> Result<ScraperJob> {
        let scheduled_for = match origin {
            EnqueueOrigin::Manual => None,
            EnqueueOrigin::Scheduled(fire_time) => Some(fire_time),
        };
        // ON CONFLICT DO NOTHING covers both unique indexes: an active job of this scraper,
        // or a job for this fire time. Either way no row comes back.
        let row = sqlx::query(&format!(
            "INSERT INTO scraper_jobs (scraper_id, scraper, status, priority, scheduled_for)
             VALUES ($1, $2, 'pending', $3, $4)
             ON CONFLICT DO NOTHING
             RETURNING {JOB_COLUMNS}, {}",
            notify_column(JOBS_CHANNEL)
        ))
        .bind(scraper.id)
        .bind(Json(storable_scraper(scraper)))
        .bind(priority.value())
        .bind(scheduled_for)
        .fetch_optional(&self.pool)
        .await?;
        found(row, job_from_row, Error::ScraperHasActiveRun)
    }

    async fn add_scheduled_jobs(&self, fires: &[ScheduledFire]) -> Result<Vec<Result<ScraperJob>>> {
        let rows = sqlx::query(&format!(
            "INSERT INTO scraper_jobs (scraper_id, scraper, status, priority, scheduled_for)
             SELECT fire.scraper_id, fire.scraper, 'pending', fire.priority, fire.at
             FROM unnest($1::bigint[], $2::jsonb[], $3::smallint[], $4::timestamptz[]) AS fire(scraper_id, scraper, priority, at)
             ON CONFLICT DO NOTHING
             RETURNING {JOB_COLUMNS}, {}",
            notify_column(JOBS_CHANNEL)
        ))
        .bind(fires.iter().map(|fire| fire.scraper.id).collect::<Vec<_>>())
        .bind(fires.iter().map(|fire| Json(storable_scraper(&fire.scraper))).collect::<Vec<_>>())
        .bind(fires.iter().map(|fire| fire.scraper.schedule_priority.value()).collect::<Vec<_>>())
        .bind(fires.iter().map(|fire| fire.at).collect::<Vec<_>>())
        .fetch_all(&self.pool)
        .await?;
        let mut created: HashMap<ScraperId, ScraperJob> = rows
            .iter()
            .map(job_from_row)
            .map(|job| job.map(|job| (job.scraper.id, job)))
            .collect::<Result<_>>()?;
        // A fire without a row was refused by a unique index: the scraper is still active, or
        // this fire was enqueued already.
        Ok(fires
            .iter()
            .map(|fire| {
                created
                    .remove(&fire.scraper.id)
                    .ok_or(Error::ScraperHasActiveRun)
            })
            .collect())
    }

    async fn dequeue_scraper_jobs(&self, limit: usize) -> Result<Vec<ClaimedJob>> {
        let rows = sqlx::query(&format!(
            "UPDATE scraper_jobs SET status = 'started', started_at = now(), last_active_at = now()
             WHERE id IN (
                SELECT id FROM scraper_jobs WHERE status = 'pending'
                ORDER BY priority, id
                FOR UPDATE SKIP LOCKED
                LIMIT $1)
             RETURNING {JOB_COLUMNS}"
        ))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut jobs = rows.iter().map(job_from_row).collect::<Result<Vec<_>>>()?;
        jobs.sort_by_key(|job| (job.priority, job.id));
        Ok(jobs)
    }

    async fn heartbeat(&self, job_id: ScraperJobId) -> Result<()> {
        let updated = sqlx::query(
            "UPDATE scraper_jobs SET last_active_at = now() WHERE id = $1 AND status = 'started'",
        )
        .bind(job_id)
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 1 {
            return Ok(());
        }
        match self.job_status(job_id).await? {
            None => Err(Error::ScraperJobNotFound(job_id)),
            Some((_, ScraperJobStatus::Pending)) => Err(Error::PingNotStarted),
            Some(_) => Err(Error::PingFinished),
        }
    }

    async fn start_scraper_jobs(&self, job_ids: &[ScraperJobId]) -> Result<Vec<ScraperJobId>> {
        // Idempotent: a worker that lost the reply asks again and gets the same answer.
        Ok(sqlx::query_scalar(
            "UPDATE scraper_jobs SET running_since = COALESCE(running_since, now()), last_active_at = now()
             WHERE id = ANY($1) AND status = 'started'
             RETURNING id",
        )
        .bind(job_ids)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn release_scraper_jobs(&self, job_ids: &[ScraperJobId]) -> Result<u64> {
        let released = sqlx::query(&format!(
            "UPDATE scraper_jobs SET status = 'pending', started_at = NULL, last_active_at = NULL
             WHERE id = ANY($1) AND status = 'started' AND running_since IS NULL
             RETURNING id, {}",
            notify_column(JOBS_CHANNEL)
        ))
        .bind(job_ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(released.len() as u64)
    }

    async fn heartbeat_jobs(&self, job_ids: &[ScraperJobId]) -> Result<Vec<ScraperJobId>> {
        Ok(sqlx::query_scalar(
            "WITH alive AS (
                UPDATE scraper_jobs SET last_active_at = now()
                WHERE id = ANY($1) AND status = 'started'
                RETURNING id)
             SELECT id FROM unnest($1::bigint[]) AS job(id)
             WHERE id NOT IN (SELECT id FROM alive)",
        )
        .bind(job_ids)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn finish_scraper_job(
        &self,
        job_id: ScraperJobId,
        status: ScraperJobStatus,
        result: Option<String>,
    ) -> Result<Option<ScraperJob>> {
        let row = sqlx::query(&format!(
            "UPDATE scraper_jobs SET status = $2, result = COALESCE($3, result), finished_at = now()
             WHERE id = $1 AND status = 'started'
             RETURNING {JOB_COLUMNS}"
        ))
        .bind(job_id)
        .bind(status.as_str())
        .bind(result.as_deref().map(storable))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn finish_scraper_jobs(&self, completions: &[Completion]) -> Result<Vec<bool>> {
        let completions: Vec<_> = completions.iter().map(storable_completion).collect();
        let ids: Vec<i64> = completions
            .iter()
            .map(|completion| completion.job_id)
            .collect();
        let statuses: Vec<&str> = completions
            .iter()
            .map(|completion| completion.status.as_str())
            .collect();
        let results: Vec<Option<&str>> = completions
            .iter()
            .map(|completion| completion.result.as_deref())
            .collect();
        let lines: Vec<(i64, &JobLogLine)> = completions
            .iter()
            .flat_map(|completion| {
                completion
                    .log
                    .iter()
                    .map(move |line| (completion.job_id, line))
            })
            .collect();
        let mut transaction = self.pool.begin().await?;
        if !lines.is_empty() {
            sqlx::query(
                // Lines of a job pruned meanwhile (it was killed and forgotten) are dropped
                // instead of failing the whole batch.
                "INSERT INTO scraper_job_logs (job_id, line_no, at, level, message)
                 SELECT line.* FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[])
                     AS line(job_id, line_no, at, level, message)
                 WHERE EXISTS (SELECT 1 FROM scraper_jobs WHERE scraper_jobs.id = line.job_id)
                 ON CONFLICT DO NOTHING",
            )
            .bind(lines.iter().map(|(job_id, _)| *job_id).collect::<Vec<_>>())
            .bind(lines.iter().map(|(_, line)| line.id).collect::<Vec<_>>())
            .bind(lines.iter().map(|(_, line)| line.at).collect::<Vec<_>>())
            .bind(lines.iter().map(|(_, line)| line.level.as_str()).collect::<Vec<_>>())
            .bind(lines.iter().map(|(_, line)| line.message.as_str()).collect::<Vec<_>>())
            .execute(&mut *transaction)
            .await?;
        }
        let finished: Vec<i64> = sqlx::query_scalar(
            "UPDATE scraper_jobs AS job
             SET status = batch.status, result = COALESCE(batch.result, job.result), finished_at = now()
             FROM unnest($1::bigint[], $2::text[], $3::text[]) AS batch(id, status, result)
             WHERE job.id = batch.id AND job.status = 'started'
             RETURNING job.id",
        )
        .bind(&ids)
        .bind(&statuses)
        .bind(&results)
        .fetch_all(&mut *transaction)
        .await?;
        transaction.commit().await?;
        let finished: std::collections::HashSet<i64> = finished.into_iter().collect();
        Ok(ids.iter().map(|id| finished.contains(id)).collect())
    }

    async fn kill_scraper_job(
        &self,
        scraper_id: ScraperId,
        job_id: ScraperJobId,
    ) -> Result<ScraperJob> {
        let row = sqlx::query(&format!(
            "UPDATE scraper_jobs SET status = 'killed', finished_at = now()
             WHERE id = $1 AND scraper_id = $2 AND status IN ('pending', 'started')
             RETURNING {JOB_COLUMNS}, {}",
            notify_column_with_payload(KILLS_CHANNEL, "id::text")
        ))
        .bind(job_id)
        .bind(scraper_id)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = row {
            return job_from_row(&row);
        }
        match self.job_status(job_id).await? {
            Some((owner, _)) if owner == scraper_id => Err(Error::JobNotActive(job_id)),
            _ => Err(Error::ScraperJobNotFound(job_id)),
        }
    }

    async fn mark_dead_scraper_jobs(&self, timeout: Duration) -> Result<Vec<ScraperJob>> {
        let timeout_ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        let dead = sqlx::query(&format!(
            "UPDATE scraper_jobs SET status = 'dead', finished_at = now()
             WHERE status = 'started' AND running_since IS NOT NULL
                AND last_active_at < now() - $1 * interval '1 millisecond'
             RETURNING {JOB_COLUMNS}"
        ))
        .bind(timeout_ms)
        .fetch_all(&self.pool)
        .await?;
        let requeued = sqlx::query(&format!(
            "UPDATE scraper_jobs SET status = 'pending', started_at = NULL, last_active_at = NULL
             WHERE status = 'started' AND running_since IS NULL
                AND last_active_at < now() - $1 * interval '1 millisecond'
             RETURNING {JOB_COLUMNS}, {}",
            notify_column(JOBS_CHANNEL)
        ))
        .bind(timeout_ms)
        .fetch_all(&self.pool)
        .await?;
        dead.iter().chain(&requeued).map(job_from_row).collect()
    }

    async fn delete_old_scraper_jobs(&self, keep_last: usize) -> Result<u64> {
        // In batches, so a large backlog never holds many row locks in one transaction.
        const BATCH: i64 = 5_000;
        let mut deleted = 0;
        loop {
            let batch = sqlx::query(
                "DELETE FROM scraper_jobs WHERE id IN (
                    SELECT id FROM (
                        SELECT id, row_number() OVER (PARTITION BY GREATEST(scraper_id, 0) ORDER BY id DESC) AS newer
                        FROM scraper_jobs WHERE status NOT IN ('pending', 'started')
                    ) AS ranked
                    WHERE newer > $1 LIMIT $2)",
            )
            .bind(keep_last as i64)
            .bind(BATCH)
            .execute(&self.pool)
            .await?
            .rows_affected();
            deleted += batch;
            if batch < BATCH as u64 {
                return Ok(deleted);
            }
        }
    }

    async fn count_finished_jobs(&self, since: DateTime<Utc>) -> Result<Vec<JobCount>> {
        let rows = sqlx::query(
            "SELECT date_trunc('minute', finished_at) AS minute, status, count(*) AS count
             FROM scraper_jobs WHERE finished_at >= $1
             GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get("status")?;
                let count: i64 = row.try_get("count")?;
                Ok(JobCount {
                    minute: row.try_get("minute")?,
                    status: ScraperJobStatus::parse(&status)
                        .ok_or_else(|| Error::internal("bad status"))?,
                    count: count as u64,
                })
            })
            .collect()
    }

    async fn get_last_jobs(&self) -> Result<Vec<ScraperJob>> {
        // DISTINCT ON walks the (scraper_id, id DESC) index: one row per scraper.
        let rows = sqlx::query(&format!("SELECT DISTINCT ON (scraper_id) {JOB_COLUMNS} FROM scraper_jobs ORDER BY scraper_id, id DESC"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(job_from_row).collect()
    }

    async fn count_active_ephemeral_jobs(&self) -> Result<u64> {
        // The one-active-job index holds exactly the active jobs, by scraper id.
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM scraper_jobs WHERE scraper_id < 0 AND status IN ('pending', 'started')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(count as u64)
    }

    async fn get_queue_len(&self, priority: ScraperJobPriority) -> Result<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM scraper_jobs WHERE status = 'pending' AND priority = $1",
        )
        .bind(priority.value())
        .fetch_one(&self.pool)
        .await?;
        Ok(count as u64)
    }

    async fn append_job_log(&self, job_id: ScraperJobId, lines: &[JobLogLine]) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let lines = storable_lines(lines);
        let ids: Vec<i64> = lines.iter().map(|line| line.id).collect();
        let times: Vec<DateTime<Utc>> = lines.iter().map(|line| line.at).collect();
        let levels: Vec<&str> = lines.iter().map(|line| line.level.as_str()).collect();
        let messages: Vec<&str> = lines.iter().map(|line| line.message.as_str()).collect();
        // One statement for the whole batch.
        sqlx::query(
            "INSERT INTO scraper_job_logs (job_id, line_no, at, level, message)
             SELECT $1, * FROM unnest($2::bigint[], $3::timestamptz[], $4::text[], $5::text[])
             ON CONFLICT DO NOTHING",
        )
        .bind(job_id)
        .bind(ids)
        .bind(times)
        .bind(levels)
        .bind(messages)
        .execute(&self.pool)
        .await
        .map_err(|error| match &error {
            sqlx::Error::Database(database) if database.is_foreign_key_violation() => {
                Error::ScraperJobNotFound(job_id)
            }
            _ => error.into(),
        })?;
        Ok(())
    }

    async fn get_job_log(
        &self,
        job_id: ScraperJobId,
        after: Option<i64>,
        max_lines: usize,
    ) -> Result<Vec<JobLogLine>> {
        let rows = sqlx::query(
            "SELECT line_no, at, level, message FROM scraper_job_logs
             WHERE job_id = $1 AND line_no > $2 ORDER BY line_no LIMIT $3",
        )
        .bind(job_id)
        .bind(after.unwrap_or(0))
        .bind(max_lines as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let level: String = row.try_get("level")?;
                Ok(JobLogLine {
                    id: row.try_get("line_no")?,
                    at: row.try_get("at")?,
                    level: LogLevel::parse(&level)
                        .ok_or_else(|| Error::internal("bad log level"))?,
                    message: row.try_get("message")?,
                })
            })
            .collect()
    }

    async fn get_job_stamps(
        &self,
        scrapers: &[ScraperId],
        jobs: &[ScraperJobId],
    ) -> Result<Vec<JobStamp>> {
        // Two index scans (by scraper, by id); each last log line is one probe at the end of
        // the job's lines in the log's primary key.
        let rows = sqlx::query(
            "SELECT id, scraper_id, status, started_at, last_active_at, finished_at,
                CASE WHEN id = ANY($2) THEN
                    (SELECT max(line_no) FROM scraper_job_logs WHERE job_id = scraper_jobs.id)
                END AS last_log_line
             FROM scraper_jobs WHERE scraper_id = ANY($1) OR id = ANY($2)",
        )
        .bind(scrapers)
        .bind(jobs)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get("status")?;
                Ok(JobStamp {
                    id: row.try_get("id")?,
                    scraper_id: row.try_get("scraper_id")?,
                    status: ScraperJobStatus::parse(&status)
                        .ok_or_else(|| Error::internal("bad status"))?,
                    started_at: row.try_get("started_at")?,
                    last_active_at: row.try_get("last_active_at")?,
                    finished_at: row.try_get("finished_at")?,
                    last_log_line: row.try_get("last_log_line")?,
                })
            })
            .collect()
    }

    fn enqueued(&self) -> Arc<Notify> {
        self.enqueued.clone()
    }

    fn kills(&self) -> broadcast::Receiver<ScraperJobId> {
        self.kills.subscribe()
    }
}

/// The advisory-lock key space of Sneakpeek's leases; the lease name's `hashtext` is the
/// second key.
const LEASE_LOCK_CLASS: i32 = 1936614763;

/// How long a lease statement may take before the lease counts as lost (or not taken).
const LEASE_STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a contender waits for the backend it terminated to let go of the lock.
const LEASE_TAKEOVER_WAIT: Duration = Duration::from_secs(2);

async fn within<T>(future: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(LEASE_STATEMENT_TIMEOUT, future)
        .await
        .map_err(|_| Error::unavailable("lease statement timed out"))?
}

fn lease_of(
    name: &str,
    owner_id: &str,
    (acquired, acquired_until): (DateTime<Utc>, DateTime<Utc>),
) -> Lease {
    Lease {
        name: name.to_owned(),
        owner_id: owner_id.to_owned(),
        acquired,
        acquired_until,
    }
}

/// Takes the lease's advisory lock on `connection` if nobody holds it.
async fn try_lease_lock(connection: &mut PgConnection, name: &str) -> Result<bool> {
    within(async {
        Ok(
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
                .bind(LEASE_LOCK_CLASS)
                .bind(name)
                .fetch_one(&mut *connection)
                .await?,
        )
    })
    .await
}

impl PostgresStorage {
    /// Takes the lease on `connection` if it is free, or if its holder let it expire: then
    /// the holder's backend is terminated, since a frozen process (or one cut off while its
    /// TCP connection stays open) would otherwise keep the advisory lock for ever.
    async fn take_lease(
        connection: &mut PgConnection,
        name: &str,
        owner_id: &str,
        duration_ms: i64,
    ) -> Result<Option<Lease>> {
        let mut locked = try_lease_lock(connection, name).await?;
        if !locked {
            // The row's expiry, by the database's clock, is the truth: a holder renews it
            // every second or so, and one that could not for the whole lease period has
            // already stopped acting as leader (it fences itself).
            let expired: Option<bool> = within(async {
                Ok(
                    sqlx::query_scalar("SELECT acquired_until < now() FROM leases WHERE name = $1")
                        .bind(name)
                        .fetch_optional(&mut *connection)
                        .await?,
                )
            })
            .await?;
            if expired != Some(true) {
                return Ok(None);
            }
            let terminated: i64 = within(async {
                Ok(sqlx::query_scalar(
                    "SELECT count(*) FROM (
                        SELECT pg_terminate_backend(pid) FROM pg_locks
                        WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()
                            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                            AND classid = $1::oid AND objid = (hashtext($2)::bigint & 4294967295)::oid AND objsubid = 2
                     ) AS terminated",
                )
                .bind(LEASE_LOCK_CLASS)
                .bind(name)
                .fetch_one(&mut *connection)
                .await?)
            })
            .await?;
            tracing::warn!(
                lease = name,
                terminated,
                "the lease expired without renewal; ending its holder's connection"
            );
            let deadline = tokio::time::Instant::now() + LEASE_TAKEOVER_WAIT;
            while !locked && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
                locked = try_lease_lock(connection, name).await?;
            }
            if !locked {
                return Ok(None);
            }
        }
        let times = within(async {
            Ok(sqlx::query_as(
                "INSERT INTO leases (name, owner_id, acquired, acquired_until)
                 VALUES ($1, $2, now(), now() + $3 * interval '1 millisecond')
                 ON CONFLICT (name) DO UPDATE SET owner_id = excluded.owner_id, acquired = excluded.acquired,
                    acquired_until = excluded.acquired_until
                 RETURNING acquired, acquired_until",
            )
            .bind(name)
            .bind(owner_id)
            .bind(duration_ms)
            .fetch_one(&mut *connection)
            .await?)
        })
        .await?;
        Ok(Some(lease_of(name, owner_id, times)))
    }
}

#[async_trait]
impl LeaseStorage for PostgresStorage {
    /// The lease is two things: `pg_try_advisory_lock` held on a connection of its own, so a
    /// crashed holder loses it at once, and a row whose expiry (by the database's clock) the
    /// holder renews, so a holder that is alive but frozen loses it after `duration`: a
    /// contender finding the row expired terminates the holder's backend and takes over.
    async fn maybe_acquire_lease(
        &self,
        name: &str,
        owner_id: &str,
        duration: Duration,
    ) -> Result<Option<Lease>> {
        let duration_ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        let mut held = self.held_leases.lock().await;
        if let Some(lease) = held.get_mut(name) {
            if lease.owner_id != owner_id {
                return Ok(None);
            }
            // Renewed on the lease's own connection: if that connection was ended, the lock
            // is gone too, and so is the lease.
            let renewed: Result<Option<(DateTime<Utc>, DateTime<Utc>)>> = within(async {
                Ok(sqlx::query_as(
                    "UPDATE leases SET acquired_until = now() + $3 * interval '1 millisecond'
                     WHERE name = $1 AND owner_id = $2
                     RETURNING acquired, acquired_until",
                )
                .bind(name)
                .bind(owner_id)
                .bind(duration_ms)
                .fetch_optional(&mut lease.connection)
                .await?)
            })
            .await;
            if let Ok(Some(times)) = renewed {
                return Ok(Some(lease_of(name, owner_id, times)));
            }
            tracing::warn!(lease = name, "could not renew the lease; it is lost");
            if let Some(lost) = held.remove(name) {
                // Closing ends the advisory lock too, if the connection still lives.
                tokio::spawn(lost.connection.close());
            }
            return Ok(None);
        }
        let mut connection = within(async { Ok(self.connect_options.connect().await?) }).await?;
        match Self::take_lease(&mut connection, name, owner_id, duration_ms).await {
            Ok(Some(lease)) => {
                held.insert(
                    name.to_owned(),
                    HeldLease {
                        owner_id: owner_id.to_owned(),
                        connection,
                    },
                );
                Ok(Some(lease))
            }
            outcome => {
                tokio::spawn(connection.close());
                outcome
            }
        }
    }

    async fn release_lease(&self, name: &str, owner_id: &str) -> Result<()> {
        let mut held = self.held_leases.lock().await;
        if held
            .get(name)
            .is_some_and(|lease| lease.owner_id == owner_id)
        {
            if let Some(lease) = held.remove(name) {
                // Closing the connection releases the advisory lock.
                let _ = lease.connection.close().await;
            }
            sqlx::query("DELETE FROM leases WHERE name = $1 AND owner_id = $2")
                .bind(name)
                .bind(owner_id)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }
}
