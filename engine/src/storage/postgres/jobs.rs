//! The jobs queue in PostgreSQL: the `scraper_jobs` table and each job's lines in
//! `scraper_job_logs`.
//!
//! Each operation is one statement, guarded by the job's status in its `WHERE`; batches are
//! one statement too, over `unnest` of arrays bound as parameters, so the statement text is
//! the same however many jobs a batch holds.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{Postgres, Transaction};
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
    lost_worker_retry, Claim, ClaimedJob, Completion, EnqueueOrigin, JobStamp, ScheduledFire,
    ScraperJobsStorage,
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
            "SELECT id, scraper, status, priority, created_at, started_at, last_active_at, finished_at, result, next_attempt_at, attempts
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
            "SELECT id, scraper, status, priority, created_at, started_at, last_active_at, finished_at, result, next_attempt_at, attempts
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
             RETURNING id, scraper, status, priority, created_at, started_at, last_active_at, finished_at, result, next_attempt_at, attempts,
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
             RETURNING id, scraper, status, priority, created_at, started_at, last_active_at, finished_at, result, next_attempt_at, attempts,
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
            "UPDATE scraper_jobs SET status = 'started', started_at = now(), last_active_at = now(),
                next_attempt_at = NULL
             WHERE id IN (
                SELECT id FROM scraper_jobs
                WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= now())
                ORDER BY priority, id
                FOR UPDATE SKIP LOCKED
                LIMIT $1)
             RETURNING id, scraper, status, priority, created_at, started_at, last_active_at, finished_at, result, next_attempt_at, attempts",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut jobs: Vec<ScraperJob> = all(rows)?;
        jobs.sort_by_key(|job| (job.priority, job.id));
        Ok(jobs)
    }

    async fn heartbeat(&self, claim: Claim) -> Result<()> {
        let updated = sqlx::query(
            "UPDATE scraper_jobs SET last_active_at = now()
             WHERE id = $1 AND status = 'started' AND started_at = $2",
        )
        .bind(claim.job_id)
        .bind(claim.claimed_at)
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 1 {
            return Ok(());
        }
        match self.job_status(claim.job_id).await? {
            None => Err(Error::ScraperJobNotFound(claim.job_id)),
            Some((_, ScraperJobStatus::Pending)) => Err(Error::PingNotStarted),
            Some(_) => Err(Error::PingFinished),
        }
    }

    async fn start_scraper_jobs(&self, claims: &[Claim]) -> Result<Vec<ScraperJobId>> {
        // Idempotent: a worker that lost the reply asks again and gets the same answer.
        let (ids, claimed_at) = claim_columns(claims);
        Ok(sqlx::query_scalar(
            "UPDATE scraper_jobs AS job SET running_since = COALESCE(running_since, now()), last_active_at = now()
             FROM unnest($1::bigint[], $2::timestamptz[]) AS claim(id, claimed_at)
             WHERE job.id = claim.id AND job.started_at = claim.claimed_at AND job.status = 'started'
             RETURNING job.id",
        )
        .bind(ids)
        .bind(claimed_at)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn release_scraper_jobs(&self, claims: &[Claim]) -> Result<u64> {
        let (ids, claimed_at) = claim_columns(claims);
        let released = sqlx::query(
            "UPDATE scraper_jobs AS job SET status = 'pending', started_at = NULL, last_active_at = NULL
             FROM unnest($1::bigint[], $2::timestamptz[]) AS claim(id, claimed_at)
             WHERE job.id = claim.id AND job.started_at = claim.claimed_at AND job.status = 'started'
                AND job.running_since IS NULL
             RETURNING job.id, (SELECT count(*) FROM (SELECT pg_notify($3, '')) AS notified) AS notified",
        )
        .bind(ids)
        .bind(claimed_at)
        .bind(JOBS_CHANNEL)
        .fetch_all(&self.pool)
        .await?;
        Ok(released.len() as u64)
    }

    async fn heartbeat_jobs(&self, claims: &[Claim]) -> Result<Vec<ScraperJobId>> {
        let (ids, claimed_at) = claim_columns(claims);
        Ok(sqlx::query_scalar(
            "WITH claim AS (
                SELECT * FROM unnest($1::bigint[], $2::timestamptz[]) AS claim(id, claimed_at)),
             alive AS (
                UPDATE scraper_jobs AS job SET last_active_at = now()
                FROM claim
                WHERE job.id = claim.id AND job.started_at = claim.claimed_at AND job.status = 'started'
                RETURNING job.id)
             SELECT id FROM claim WHERE id NOT IN (SELECT id FROM alive)",
        )
        .bind(ids)
        .bind(claimed_at)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn finish_scraper_job(
        &self,
        claim: Claim,
        status: ScraperJobStatus,
        result: Option<String>,
    ) -> Result<Option<ScraperJob>> {
        let row = sqlx::query_as::<_, JobRow>(
            "UPDATE scraper_jobs SET status = $3, result = COALESCE($4, result), finished_at = now()
             WHERE id = $1 AND started_at = $2 AND status = 'started'
             RETURNING id, scraper, status, priority, created_at, started_at, last_active_at, finished_at, result, next_attempt_at, attempts",
        )
        .bind(claim.job_id)
        .bind(claim.claimed_at)
        .bind(status.as_str())
        .bind(result.as_deref().map(storable))
        .fetch_optional(&self.pool)
        .await?;
        row.map(ScraperJob::try_from).transpose()
    }

    async fn finish_scraper_jobs(&self, completions: &[Completion]) -> Result<Vec<bool>> {
        let completions: Vec<_> = completions.iter().map(storable_completion).collect();
        let lines: Vec<(i64, &JobLogLine)> = completions
            .iter()
            .flat_map(|completion| {
                completion
                    .log
                    .iter()
                    .map(move |line| (completion.claim.job_id, line))
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
        let applied = end_attempts(&mut transaction, &completions).await?;
        transaction.commit().await?;
        Ok(applied)
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
             RETURNING id, scraper, status, priority, created_at, started_at, last_active_at, finished_at, result, next_attempt_at, attempts,
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
        // The lost jobs' rows stay locked until their ends are written: a heartbeat arriving
        // meanwhile waits, then finds the job no longer under its claim.
        let mut transaction = self.pool.begin().await?;
        let lost: Vec<ScraperJob> = all(sqlx::query_as::<_, JobRow>(
            "SELECT id, scraper, status, priority, created_at, started_at, last_active_at, finished_at, result, next_attempt_at, attempts
             FROM scraper_jobs
             WHERE status = 'started' AND running_since IS NOT NULL
                AND last_active_at < now() - $1 * interval '1 millisecond'
             FOR UPDATE SKIP LOCKED",
        )
        .bind(timeout_ms)
        .fetch_all(&mut *transaction)
        .await?)?;
        // Each ends as if its worker had reported it dead, or goes on to its next attempt.
        let ends: Vec<Completion> = lost
            .iter()
            .filter_map(|job| {
                Some(Completion {
                    claim: Claim::of(job)?,
                    status: ScraperJobStatus::Dead,
                    result: None,
                    log: Vec::new(),
                    retry: lost_worker_retry(job),
                })
            })
            .collect();
        end_attempts(&mut transaction, &ends).await?;
        let dead: Vec<JobRow> = sqlx::query_as(
            "SELECT id, scraper, status, priority, created_at, started_at, last_active_at, finished_at, result, next_attempt_at, attempts
             FROM scraper_jobs WHERE id = ANY($1)",
        )
        .bind(lost.iter().map(|job| job.id).collect::<Vec<_>>())
        .fetch_all(&mut *transaction)
        .await?;
        transaction.commit().await?;
        let requeued = sqlx::query_as::<_, JobRow>(
            "UPDATE scraper_jobs SET status = 'pending', started_at = NULL, last_active_at = NULL
             WHERE status = 'started' AND running_since IS NULL
                AND last_active_at < now() - $1 * interval '1 millisecond'
             RETURNING id, scraper, status, priority, created_at, started_at, last_active_at, finished_at, result, next_attempt_at, attempts,
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
                id, scraper, status, priority, created_at, started_at, last_active_at, finished_at, result, next_attempt_at, attempts
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
            "SELECT count(*) FROM scraper_jobs WHERE status = 'pending' AND priority = $1
                AND (next_attempt_at IS NULL OR next_attempt_at <= now())",
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
                jsonb_array_length(attempts) AS earlier_attempts,
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

/// Claims as two columns for `unnest`, ordered by job id.
///
/// A statement joining `unnest` to the jobs locks their rows in the order the arrays list
/// them. Every such statement (start, heartbeat, hand-back, end of attempt) lists them by id,
/// so two of them over the same jobs (a worker's heartbeat and its batch of starts, say) wait
/// for each other instead of deadlocking.
fn claim_columns(claims: &[Claim]) -> (Vec<ScraperJobId>, Vec<DateTime<Utc>>) {
    let mut claims = claims.to_vec();
    claims.sort_unstable_by_key(|claim| claim.job_id);
    claims
        .iter()
        .map(|claim| (claim.job_id, claim.claimed_at))
        .unzip()
}

/// Ends the attempts of the jobs still held by the completions' claims, in one statement:
/// a final status, or, with a [`NextAttempt`](crate::storage::NextAttempt), back to the queue
/// for the next attempt (the attempt recorded in `attempts`, due after the delay by the
/// database's clock). Returns, in order, whether each completion was applied.
async fn end_attempts<C: Borrow<Completion>>(
    transaction: &mut Transaction<'_, Postgres>,
    completions: &[C],
) -> Result<Vec<bool>> {
    let in_order: Vec<&Completion> = completions.iter().map(Borrow::borrow).collect();
    // Listed by job id, as `claim_columns` lists claims: one lock order for every statement.
    let mut completions = in_order.clone();
    completions.sort_unstable_by_key(|completion| completion.claim.job_id);
    let (ids, claimed_at) = claim_columns(
        &completions
            .iter()
            .map(|completion| completion.claim)
            .collect::<Vec<_>>(),
    );
    let statuses: Vec<&str> = completions
        .iter()
        .map(|completion| completion.status.as_str())
        .collect();
    let results: Vec<Option<&str>> = completions
        .iter()
        .map(|completion| completion.result.as_deref())
        .collect();
    let retry_ms: Vec<Option<i64>> = completions
        .iter()
        .map(|completion| {
            completion
                .retry
                .map(|retry| i64::try_from(retry.delay.as_millis()).unwrap_or(i64::MAX))
        })
        .collect();
    let reasons: Vec<Option<&str>> = completions
        .iter()
        .map(|completion| completion.retry.map(|retry| retry.reason.as_str()))
        .collect();
    let applied: Vec<i64> = sqlx::query_scalar(
        "UPDATE scraper_jobs AS job SET
            status = CASE WHEN batch.retry_ms IS NULL THEN batch.status ELSE 'pending' END,
            result = CASE WHEN batch.retry_ms IS NULL THEN COALESCE(batch.result, job.result) END,
            finished_at = CASE WHEN batch.retry_ms IS NULL THEN now() END,
            next_attempt_at = CASE WHEN batch.retry_ms IS NULL THEN job.next_attempt_at
                ELSE now() + batch.retry_ms * interval '1 millisecond' END,
            attempts = CASE WHEN batch.retry_ms IS NULL THEN job.attempts
                ELSE job.attempts || jsonb_build_array(jsonb_build_object(
                    'attempt', jsonb_array_length(job.attempts) + 1, 'reason', batch.reason, 'status', batch.status,
                    'started_at', job.started_at, 'finished_at', now(), 'result', batch.result)) END,
            started_at = CASE WHEN batch.retry_ms IS NULL THEN job.started_at END,
            last_active_at = CASE WHEN batch.retry_ms IS NULL THEN job.last_active_at END,
            running_since = CASE WHEN batch.retry_ms IS NULL THEN job.running_since END
         FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::bigint[], $6::text[])
            AS batch(id, claimed_at, status, result, retry_ms, reason)
         WHERE job.id = batch.id AND job.started_at = batch.claimed_at AND job.status = 'started'
         RETURNING job.id",
    )
    .bind(&ids)
    .bind(&claimed_at)
    .bind(&statuses)
    .bind(&results)
    .bind(&retry_ms)
    .bind(&reasons)
    .fetch_all(&mut **transaction)
    .await?;
    let applied: HashSet<i64> = applied.into_iter().collect();
    Ok(in_order
        .iter()
        .map(|completion| applied.contains(&completion.claim.job_id))
        .collect())
}
