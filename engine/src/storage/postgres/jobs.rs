//! The jobs queue in PostgreSQL: the `scraper_jobs` table and each job's lines in
//! `scraper_job_logs`.
//!
//! Each operation is one statement, guarded by the job's status in its `WHERE`; batches are
//! one statement too, over `unnest` of arrays bound as parameters, so the statement text is
//! the same however many jobs a batch holds.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use tokio::sync::{broadcast, Notify};

use super::notifications::{JOBS_CHANNEL, KILLS_CHANNEL};
use super::rows::{all, found, JobCountRow, JobRow, JobStampRow, JobStatusRow, LogLineRow};
use super::PostgresStorage;
use crate::error::{Error, Result};
use crate::model::{
    JobCount, JobLogLine, Scraper, ScraperId, ScraperJob, ScraperJobId, ScraperJobPriority,
    ScraperJobStatus,
};
use crate::storage::text::{storable, storable_completion, storable_lines, storable_scraper};
use crate::storage::{
    ClaimedJob, Completion, EnqueueOrigin, JobStamp, ScheduledFire, ScraperJobsStorage,
};

impl PostgresStorage {
    /// The job's scraper and status, `None` when it does not exist: why a guarded transition
    /// matched no row.
    async fn job_status(
        &self,
        job_id: ScraperJobId,
    ) -> Result<Option<(ScraperId, ScraperJobStatus)>> {
        let row = sqlx::query_as::<_, JobStatusRow>(
            "SELECT scraper_id, status FROM scraper_jobs WHERE id = $1",
        )
        .bind(job_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(TryInto::try_into).transpose()
    }
}

#[async_trait]
impl ScraperJobsStorage for PostgresStorage {
    async fn get_scraper_jobs(&self, scraper_id: ScraperId) -> Result<Vec<ScraperJob>> {
        let rows = sqlx::query_as::<_, JobRow>(
            "SELECT id, scraper, status, priority, created_at, started_at, last_active_at, finished_at, result
             FROM scraper_jobs WHERE scraper_id = $1 ORDER BY id DESC",
        )
        .bind(scraper_id)
        .fetch_all(&self.pool)
        .await?;
        all(rows)
    }

    async fn get_scraper_job(
        &self,
        scraper_id: ScraperId,
        job_id: ScraperJobId,
    ) -> Result<ScraperJob> {
        let row = sqlx::query_as::<_, JobRow>(
            "SELECT id, scraper, status, priority, created_at, started_at, last_active_at, finished_at, result
             FROM scraper_jobs WHERE id = $1 AND scraper_id = $2",
        )
        .bind(job_id)
        .bind(scraper_id)
        .fetch_optional(&self.pool)
        .await?;
        found(row, Error::ScraperJobNotFound(job_id))
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
        let row = sqlx::query_as::<_, JobRow>(
            "INSERT INTO scraper_jobs (scraper_id, scraper, status, priority, scheduled_for)
             VALUES ($1, $2, 'pending', $3, $4)
             ON CONFLICT DO NOTHING
             RETURNING id, scraper, status, priority, created_at, started_at, last_active_at, finished_at, result,
                (SELECT count(*) FROM (SELECT pg_notify($5, '')) AS notified) AS notified",
        )
        .bind(scraper.id)
        .bind(Json(storable_scraper(scraper)))
        .bind(priority.value())
        .bind(scheduled_for)
        .bind(JOBS_CHANNEL)
        .fetch_optional(&self.pool)
        .await?;
        found(row, Error::ScraperHasActiveRun)
    }

    async fn add_scheduled_jobs(&self, fires: &[ScheduledFire]) -> Result<Vec<Result<ScraperJob>>> {
        let rows = sqlx::query_as::<_, JobRow>(
            "INSERT INTO scraper_jobs (scraper_id, scraper, status, priority, scheduled_for)
             SELECT fire.scraper_id, fire.scraper, 'pending', fire.priority, fire.at
             FROM unnest($1::bigint[], $2::jsonb[], $3::smallint[], $4::timestamptz[]) AS fire(scraper_id, scraper, priority, at)
             ON CONFLICT DO NOTHING
             RETURNING id, scraper, status, priority, created_at, started_at, last_active_at, finished_at, result,
                (SELECT count(*) FROM (SELECT pg_notify($5, '')) AS notified) AS notified",
        )
        .bind(fires.iter().map(|fire| fire.scraper.id).collect::<Vec<_>>())
        .bind(fires.iter().map(|fire| Json(storable_scraper(&fire.scraper))).collect::<Vec<_>>())
        .bind(fires.iter().map(|fire| fire.scraper.schedule_priority.value()).collect::<Vec<_>>())
        .bind(fires.iter().map(|fire| fire.at).collect::<Vec<_>>())
        .bind(JOBS_CHANNEL)
        .fetch_all(&self.pool)
        .await?;
        let mut created: HashMap<ScraperId, ScraperJob> = rows
            .into_iter()
            .map(ScraperJob::try_from)
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
        let rows = sqlx::query_as::<_, JobRow>(
            "UPDATE scraper_jobs SET status = 'started', started_at = now(), last_active_at = now()
             WHERE id IN (
                SELECT id FROM scraper_jobs WHERE status = 'pending'
                ORDER BY priority, id
                FOR UPDATE SKIP LOCKED
                LIMIT $1)
             RETURNING id, scraper, status, priority, created_at, started_at, last_active_at, finished_at, result",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut jobs: Vec<ScraperJob> = all(rows)?;
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
        let released = sqlx::query(
            "UPDATE scraper_jobs SET status = 'pending', started_at = NULL, last_active_at = NULL
             WHERE id = ANY($1) AND status = 'started' AND running_since IS NULL
             RETURNING id, (SELECT count(*) FROM (SELECT pg_notify($2, '')) AS notified) AS notified",
        )
        .bind(job_ids)
        .bind(JOBS_CHANNEL)
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
        let row = sqlx::query_as::<_, JobRow>(
            "UPDATE scraper_jobs SET status = $2, result = COALESCE($3, result), finished_at = now()
             WHERE id = $1 AND status = 'started'
             RETURNING id, scraper, status, priority, created_at, started_at, last_active_at, finished_at, result",
        )
        .bind(job_id)
        .bind(status.as_str())
        .bind(result.as_deref().map(storable))
        .fetch_optional(&self.pool)
        .await?;
        row.map(ScraperJob::try_from).transpose()
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
        let finished: HashSet<i64> = finished.into_iter().collect();
        Ok(ids.iter().map(|id| finished.contains(id)).collect())
    }

    async fn kill_scraper_job(
        &self,
        scraper_id: ScraperId,
        job_id: ScraperJobId,
    ) -> Result<ScraperJob> {
        // The payload is the job's id: the worker running it, in whichever replica, cancels
        // its handler.
        let row = sqlx::query_as::<_, JobRow>(
            "UPDATE scraper_jobs SET status = 'killed', finished_at = now()
             WHERE id = $1 AND scraper_id = $2 AND status IN ('pending', 'started')
             RETURNING id, scraper, status, priority, created_at, started_at, last_active_at, finished_at, result,
                (SELECT count(*) FROM (SELECT pg_notify($3, id::text)) AS notified) AS notified",
        )
        .bind(job_id)
        .bind(scraper_id)
        .bind(KILLS_CHANNEL)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = row {
            return row.try_into();
        }
        match self.job_status(job_id).await? {
            Some((owner, _)) if owner == scraper_id => Err(Error::JobNotActive(job_id)),
            _ => Err(Error::ScraperJobNotFound(job_id)),
        }
    }

    async fn mark_dead_scraper_jobs(&self, timeout: Duration) -> Result<Vec<ScraperJob>> {
        let timeout_ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        let dead = sqlx::query_as::<_, JobRow>(
            "UPDATE scraper_jobs SET status = 'dead', finished_at = now()
             WHERE status = 'started' AND running_since IS NOT NULL
                AND last_active_at < now() - $1 * interval '1 millisecond'
             RETURNING id, scraper, status, priority, created_at, started_at, last_active_at, finished_at, result",
        )
        .bind(timeout_ms)
        .fetch_all(&self.pool)
        .await?;
        let requeued = sqlx::query_as::<_, JobRow>(
            "UPDATE scraper_jobs SET status = 'pending', started_at = NULL, last_active_at = NULL
             WHERE status = 'started' AND running_since IS NULL
                AND last_active_at < now() - $1 * interval '1 millisecond'
             RETURNING id, scraper, status, priority, created_at, started_at, last_active_at, finished_at, result,
                (SELECT count(*) FROM (SELECT pg_notify($2, '')) AS notified) AS notified",
        )
        .bind(timeout_ms)
        .bind(JOBS_CHANNEL)
        .fetch_all(&self.pool)
        .await?;
        dead.into_iter()
            .chain(requeued)
            .map(TryInto::try_into)
            .collect()
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
        let rows = sqlx::query_as::<_, JobCountRow>(
            "SELECT date_trunc('minute', finished_at) AS minute, status, count(*) AS count
             FROM scraper_jobs WHERE finished_at >= $1
             GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        all(rows)
    }

    async fn get_last_jobs(&self) -> Result<Vec<ScraperJob>> {
        // DISTINCT ON walks the (scraper_id, id DESC) index: one row per scraper.
        let rows = sqlx::query_as::<_, JobRow>(
            "SELECT DISTINCT ON (scraper_id)
                id, scraper, status, priority, created_at, started_at, last_active_at, finished_at, result
             FROM scraper_jobs ORDER BY scraper_id, id DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        all(rows)
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
        let rows = sqlx::query_as::<_, LogLineRow>(
            "SELECT line_no, at, level, message FROM scraper_job_logs
             WHERE job_id = $1 AND line_no > $2 ORDER BY line_no LIMIT $3",
        )
        .bind(job_id)
        .bind(after.unwrap_or(0))
        .bind(max_lines as i64)
        .fetch_all(&self.pool)
        .await?;
        all(rows)
    }

    async fn get_job_stamps(
        &self,
        scrapers: &[ScraperId],
        jobs: &[ScraperJobId],
    ) -> Result<Vec<JobStamp>> {
        // Two index scans (by scraper, by id); each last log line is one probe at the end of
        // the job's lines in the log's primary key.
        let rows = sqlx::query_as::<_, JobStampRow>(
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
        all(rows)
    }

    fn enqueued(&self) -> Arc<Notify> {
        self.wakeups.enqueued.clone()
    }

    fn kills(&self) -> broadcast::Receiver<ScraperJobId> {
        self.wakeups.kills.subscribe()
    }
}
