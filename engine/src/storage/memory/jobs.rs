//! The in-memory jobs queue: the jobs, their indexes (by scraper, pending order, active,
//! running) and their logs, all behind one mutex.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, DurationRound, Utc};
use tokio::sync::{broadcast, Notify};

use crate::error::{Error, Result};
use crate::model::{
    JobAttempt, JobCount, JobLogLine, Scraper, ScraperId, ScraperJob, ScraperJobId,
    ScraperJobPriority, ScraperJobStatus,
};
use crate::storage::text::{
    storable_completion, storable_lines, storable_option, storable_scraper,
};
use crate::storage::{
    Claim, ClaimedJob, Completion, EnqueueOrigin, JobStamp, NextAttempt, ScraperJobsStorage,
};
use crate::sync::lock;

/// The in-memory jobs queue.
pub struct MemoryScraperJobsStorage {
    state: Mutex<JobsState>,
    enqueued: Arc<Notify>,
    kills: broadcast::Sender<ScraperJobId>,
}

impl Default for MemoryScraperJobsStorage {
    fn default() -> Self {
        MemoryScraperJobsStorage {
            state: Mutex::default(),
            enqueued: Arc::default(),
            kills: broadcast::channel(1024).0,
        }
    }
}

#[derive(Default)]
struct JobsState {
    last_id: ScraperJobId,
    jobs: HashMap<ScraperJobId, ScraperJob>,
    /// Job ids of each scraper; iterate in reverse for newest first.
    by_scraper: HashMap<ScraperId, BTreeSet<ScraperJobId>>,
    /// Pending jobs that are due, in dequeue order: priority value, then id (FIFO).
    pending: BTreeSet<(i16, ScraperJobId)>,
    /// Pending jobs waiting for a retry, by due time; they move to `pending` once due.
    waiting: BTreeSet<(DateTime<Utc>, i16, ScraperJobId)>,
    /// The one pending or started job of each scraper that has one.
    active: HashMap<ScraperId, ScraperJobId>,
    /// Started jobs whose handler has started (see `start_scraper_jobs`).
    running: HashSet<ScraperJobId>,
    /// Fire times that already produced a job, kept as long as that job is kept.
    fired: HashSet<(ScraperId, DateTime<Utc>)>,
    fired_by_job: HashMap<ScraperJobId, (ScraperId, DateTime<Utc>)>,
    logs: HashMap<ScraperJobId, Vec<JobLogLine>>,
}

impl JobsState {
    fn job_of(&self, scraper_id: ScraperId, job_id: ScraperJobId) -> Result<&ScraperJob> {
        self.jobs
            .get(&job_id)
            .filter(|job| job.scraper.id == scraper_id)
            .ok_or(Error::ScraperJobNotFound(job_id))
    }

    /// Moves an active job to a final status; the caller has checked it is active.
    fn finish(
        &mut self,
        job_id: ScraperJobId,
        status: ScraperJobStatus,
        result: Option<String>,
        now: DateTime<Utc>,
    ) -> &ScraperJob {
        let job = self
            .jobs
            .get_mut(&job_id)
            .expect("caller checked the job exists");
        if job.status == ScraperJobStatus::Pending {
            self.pending.remove(&(job.priority.value(), job_id));
            if let Some(due) = job.next_attempt_at {
                self.waiting.remove(&(due, job.priority.value(), job_id));
            }
        }
        job.status = status;
        job.finished_at = Some(now);
        if result.is_some() {
            job.result = result;
        }
        self.active.remove(&job.scraper.id);
        self.running.remove(&job_id);
        job
    }

    /// Whether the job is started under `claim` (so its worker may start, keep alive or
    /// finish it).
    fn holds(&self, claim: Claim) -> bool {
        self.jobs
            .get(&claim.job_id)
            .is_some_and(|job| Claim::of(job) == Some(claim))
    }

    /// Ends a started job's attempt that failed for `retry.reason` with `status` and `result`:
    /// the job is pending again for its next attempt, due after the delay. The caller has
    /// checked it is started.
    fn retry(
        &mut self,
        job_id: ScraperJobId,
        status: ScraperJobStatus,
        result: Option<String>,
        retry: NextAttempt,
        now: DateTime<Utc>,
    ) -> &ScraperJob {
        self.running.remove(&job_id);
        let job = self
            .jobs
            .get_mut(&job_id)
            .expect("caller checked the job exists");
        job.attempts.push(JobAttempt {
            attempt: job.attempt,
            reason: retry.reason,
            status,
            started_at: job.started_at,
            finished_at: now,
            result,
        });
        let due = now + chrono::Duration::from_std(retry.delay).unwrap_or(chrono::Duration::MAX);
        job.attempt += 1;
        job.status = ScraperJobStatus::Pending;
        job.started_at = None;
        job.last_active_at = None;
        job.next_attempt_at = Some(due);
        self.waiting.insert((due, job.priority.value(), job_id));
        job
    }

    /// Moves the retries due by `now` to the queue.
    fn release_due(&mut self, now: DateTime<Utc>) {
        while let Some(&(due, priority, job_id)) = self.waiting.first() {
            if due > now {
                break;
            }
            self.waiting.pop_first();
            self.pending.insert((priority, job_id));
        }
    }

    /// The log of an existing job, to append to.
    fn logs_of(&mut self, job_id: ScraperJobId) -> Option<&mut Vec<JobLogLine>> {
        self.jobs
            .contains_key(&job_id)
            .then(|| self.logs.entry(job_id).or_default())
    }

    /// Puts a started job back in the queue, as if never claimed; the caller has checked it
    /// is started.
    fn requeue(&mut self, job_id: ScraperJobId) -> &ScraperJob {
        let job = self
            .jobs
            .get_mut(&job_id)
            .expect("caller checked the job exists");
        job.status = ScraperJobStatus::Pending;
        job.started_at = None;
        job.last_active_at = None;
        self.pending.insert((job.priority.value(), job_id));
        job
    }

    fn remove(&mut self, job_id: ScraperJobId) {
        if let Some(job) = self.jobs.remove(&job_id) {
            if let Some(ids) = self.by_scraper.get_mut(&job.scraper.id) {
                ids.remove(&job_id);
                if ids.is_empty() {
                    self.by_scraper.remove(&job.scraper.id);
                }
            }
        }
        if let Some(fire) = self.fired_by_job.remove(&job_id) {
            self.fired.remove(&fire);
        }
        self.logs.remove(&job_id);
    }
}

impl MemoryScraperJobsStorage {
    fn state(&self) -> MutexGuard<'_, JobsState> {
        lock(&self.state)
    }
}

#[async_trait]
impl ScraperJobsStorage for MemoryScraperJobsStorage {
    async fn get_scraper_jobs(&self, scraper_id: ScraperId) -> Result<Vec<ScraperJob>> {
        let state = self.state();
        let Some(ids) = state.by_scraper.get(&scraper_id) else {
            return Ok(Vec::new());
        };
        Ok(ids.iter().rev().map(|id| state.jobs[id].clone()).collect())
    }

    async fn get_scraper_job(
        &self,
        scraper_id: ScraperId,
        job_id: ScraperJobId,
    ) -> Result<ScraperJob> {
        self.state().job_of(scraper_id, job_id).cloned()
    }

    async fn add_scraper_job(
        &self,
        scraper: &Scraper,
        priority: ScraperJobPriority,
        origin: EnqueueOrigin,
    ) -> Result<ScraperJob> {
        let job = {
            let mut state = self.state();
            if state.active.contains_key(&scraper.id) {
                return Err(Error::ScraperHasActiveRun);
            }
            if let EnqueueOrigin::Scheduled(fire_time) = origin {
                if !state.fired.insert((scraper.id, fire_time)) {
                    return Err(Error::ScraperHasActiveRun);
                }
            }
            state.last_id += 1;
            let id = state.last_id;
            let job = ScraperJob {
                id,
                scraper: storable_scraper(scraper).into_owned(),
                status: ScraperJobStatus::Pending,
                priority,
                created_at: Utc::now(),
                started_at: None,
                last_active_at: None,
                finished_at: None,
                result: None,
                attempt: 1,
                next_attempt_at: None,
                attempts: Vec::new(),
            };
            if let EnqueueOrigin::Scheduled(fire_time) = origin {
                state.fired_by_job.insert(id, (scraper.id, fire_time));
            }
            state.active.insert(scraper.id, id);
            state.pending.insert((priority.value(), id));
            state.by_scraper.entry(scraper.id).or_default().insert(id);
            state.jobs.insert(id, job.clone());
            job
        };
        self.enqueued.notify_waiters();
        Ok(job)
    }

    async fn dequeue_scraper_jobs(&self, limit: usize) -> Result<Vec<ClaimedJob>> {
        let mut state = self.state();
        let now = Utc::now();
        state.release_due(now);
        let mut claimed = Vec::with_capacity(limit.min(state.pending.len()));
        while claimed.len() < limit {
            let Some((_, id)) = state.pending.pop_first() else {
                break;
            };
            let job = state.jobs.get_mut(&id).expect("pending jobs exist");
            job.status = ScraperJobStatus::Started;
            job.started_at = Some(now);
            job.last_active_at = Some(now);
            job.next_attempt_at = None;
            claimed.push(job.clone());
        }
        Ok(claimed)
    }

    async fn start_scraper_jobs(&self, claims: &[Claim]) -> Result<Vec<ScraperJobId>> {
        let mut state = self.state();
        let now = Utc::now();
        let mut started = Vec::with_capacity(claims.len());
        for &claim in claims {
            if !state.holds(claim) {
                continue;
            }
            state.running.insert(claim.job_id);
            if let Some(job) = state.jobs.get_mut(&claim.job_id) {
                job.last_active_at = Some(now);
            }
            started.push(claim.job_id);
        }
        Ok(started)
    }

    async fn release_scraper_jobs(&self, claims: &[Claim]) -> Result<u64> {
        let released = {
            let mut state = self.state();
            let mut released = 0;
            for &claim in claims {
                if !state.holds(claim) || state.running.contains(&claim.job_id) {
                    continue;
                }
                state.requeue(claim.job_id);
                released += 1;
            }
            released
        };
        if released > 0 {
            self.enqueued.notify_waiters();
        }
        Ok(released)
    }

    async fn heartbeat(&self, claim: Claim) -> Result<()> {
        let mut state = self.state();
        let job = state
            .jobs
            .get_mut(&claim.job_id)
            .ok_or(Error::ScraperJobNotFound(claim.job_id))?;
        match job.status {
            ScraperJobStatus::Pending => Err(Error::PingNotStarted),
            ScraperJobStatus::Started if job.started_at == Some(claim.claimed_at) => {
                job.last_active_at = Some(Utc::now());
                Ok(())
            }
            // Finished, or claimed again by another worker.
            _ => Err(Error::PingFinished),
        }
    }

    async fn finish_scraper_job(
        &self,
        claim: Claim,
        status: ScraperJobStatus,
        result: Option<String>,
    ) -> Result<Option<ScraperJob>> {
        let mut state = self.state();
        Ok(state.holds(claim).then(|| {
            state
                .finish(claim.job_id, status, storable_option(result), Utc::now())
                .clone()
        }))
    }

    async fn finish_scraper_jobs(&self, completions: &[Completion]) -> Result<Vec<bool>> {
        let mut state = self.state();
        let now = Utc::now();
        Ok(completions
            .iter()
            .map(|completion| {
                let completion = storable_completion(completion);
                let job_id = completion.claim.job_id;
                if let Some(log) = state.logs_of(job_id) {
                    append_in_order(log, &completion.log);
                }
                let held = state.holds(completion.claim);
                if held {
                    let (status, result) = (completion.status, completion.result.clone());
                    match completion.retry {
                        Some(retry) => state.retry(job_id, status, result, retry, now),
                        None => state.finish(job_id, status, result, now),
                    };
                }
                held
            })
            .collect())
    }

    async fn kill_scraper_job(
        &self,
        scraper_id: ScraperId,
        job_id: ScraperJobId,
    ) -> Result<ScraperJob> {
        let killed = {
            let mut state = self.state();
            if state.job_of(scraper_id, job_id)?.status.is_finished() {
                return Err(Error::JobNotActive(job_id));
            }
            state
                .finish(job_id, ScraperJobStatus::Killed, None, Utc::now())
                .clone()
        };
        // Nobody listening (no worker in this process) is fine.
        let _ = self.kills.send(job_id);
        Ok(killed)
    }

    async fn mark_dead_scraper_jobs(&self, timeout: Duration) -> Result<Vec<ScraperJob>> {
        let now = Utc::now();
        let heartbeat_before = chrono::Duration::from_std(timeout)
            .ok()
            .and_then(|timeout| now.checked_sub_signed(timeout))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let rescued = {
            let mut state = self.state();
            let stale: Vec<ScraperJobId> = state
                .active
                .values()
                .filter(|id| {
                    let job = &state.jobs[*id];
                    job.status == ScraperJobStatus::Started
                        && job.last_active_at.is_none_or(|at| at < heartbeat_before)
                })
                .copied()
                .collect();
            stale
                .into_iter()
                .map(|id| {
                    if !state.running.contains(&id) {
                        return state.requeue(id).clone();
                    }
                    match crate::storage::lost_worker_retry(&state.jobs[&id]) {
                        Some(retry) => state
                            .retry(id, ScraperJobStatus::Dead, None, retry, now)
                            .clone(),
                        None => state.finish(id, ScraperJobStatus::Dead, None, now).clone(),
                    }
                })
                .collect::<Vec<_>>()
        };
        if rescued
            .iter()
            .any(|job| job.status == ScraperJobStatus::Pending)
        {
            self.enqueued.notify_waiters();
        }
        Ok(rescued)
    }

    async fn delete_old_scraper_jobs(&self, keep_last: usize) -> Result<u64> {
        let mut state = self.state();
        let mut doomed = Vec::new();
        // Ephemeral runs each have their own negative scraper id: they share one allowance.
        let ephemeral: BTreeSet<ScraperJobId> = state
            .by_scraper
            .iter()
            .filter(|(scraper_id, _)| **scraper_id < 0)
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect();
        let partitions = state
            .by_scraper
            .iter()
            .filter(|(scraper_id, _)| **scraper_id >= 0)
            .map(|(_, ids)| ids)
            .chain([&ephemeral]);
        for ids in partitions {
            let finished = ids
                .iter()
                .rev()
                .filter(|id| state.jobs[*id].status.is_finished());
            doomed.extend(finished.skip(keep_last).copied());
        }
        for id in &doomed {
            state.remove(*id);
        }
        Ok(doomed.len() as u64)
    }

    async fn count_finished_jobs(&self, since: DateTime<Utc>) -> Result<Vec<JobCount>> {
        let state = self.state();
        let mut counts: BTreeMap<(DateTime<Utc>, ScraperJobStatus), u64> = BTreeMap::new();
        for job in state.jobs.values() {
            if let Some(finished) = job.finished_at.filter(|finished| *finished >= since) {
                let minute = finished
                    .duration_trunc(chrono::Duration::minutes(1))
                    .map_err(Error::internal)?;
                *counts.entry((minute, job.status)).or_default() += 1;
            }
        }
        Ok(counts
            .into_iter()
            .map(|((minute, status), count)| JobCount {
                minute,
                status,
                count,
            })
            .collect())
    }

    async fn get_last_jobs(&self) -> Result<Vec<ScraperJob>> {
        let state = self.state();
        Ok(state
            .by_scraper
            .values()
            .filter_map(|ids| ids.last())
            .map(|id| state.jobs[id].clone())
            .collect())
    }

    async fn count_active_ephemeral_jobs(&self) -> Result<u64> {
        Ok(self
            .state()
            .active
            .keys()
            .filter(|scraper_id| **scraper_id < 0)
            .count() as u64)
    }

    async fn get_queue_len(&self, priority: ScraperJobPriority) -> Result<u64> {
        let value = priority.value();
        let now = Utc::now();
        let state = self.state();
        let queued = state
            .pending
            .range((value, i64::MIN)..(value + 1, i64::MIN))
            .count();
        let due_retries = state
            .waiting
            .iter()
            .take_while(|(due, _, _)| *due <= now)
            .filter(|(_, priority, _)| *priority == value)
            .count();
        Ok((queued + due_retries) as u64)
    }

    async fn append_job_log(&self, job_id: ScraperJobId, lines: &[JobLogLine]) -> Result<()> {
        let mut state = self.state();
        let log = state
            .logs_of(job_id)
            .ok_or(Error::ScraperJobNotFound(job_id))?;
        append_in_order(log, &storable_lines(lines));
        Ok(())
    }

    async fn get_job_log(
        &self,
        job_id: ScraperJobId,
        after: Option<i64>,
        max_lines: usize,
    ) -> Result<Vec<JobLogLine>> {
        let state = self.state();
        let Some(lines) = state.logs.get(&job_id) else {
            return Ok(Vec::new());
        };
        let after = after.unwrap_or(0);
        let start = lines.partition_point(|line| line.id <= after);
        Ok(lines[start..].iter().take(max_lines).cloned().collect())
    }

    async fn get_job_stamps(
        &self,
        scrapers: &[ScraperId],
        jobs: &[ScraperJobId],
    ) -> Result<Vec<JobStamp>> {
        let state = self.state();
        let of_scrapers = scrapers
            .iter()
            .filter_map(|scraper_id| state.by_scraper.get(scraper_id))
            .flatten();
        let ids: BTreeSet<ScraperJobId> = of_scrapers.chain(jobs).copied().collect();
        Ok(ids
            .into_iter()
            .filter_map(|id| state.jobs.get(&id))
            .map(|job| JobStamp {
                id: job.id,
                scraper_id: job.scraper.id,
                status: job.status,
                started_at: job.started_at,
                last_active_at: job.last_active_at,
                finished_at: job.finished_at,
                attempt: job.attempt,
                last_log_line: jobs
                    .contains(&job.id)
                    .then(|| state.logs.get(&job.id)?.last().map(|line| line.id))
                    .flatten(),
            })
            .collect())
    }

    fn enqueued(&self) -> Arc<Notify> {
        self.enqueued.clone()
    }

    fn kills(&self) -> broadcast::Receiver<ScraperJobId> {
        self.kills.subscribe()
    }
}

/// Adds `lines` to a job's log, keeping it ordered by line id. A worker writes its lines in
/// order; only lines a lost worker writes late (its attempt's, after the next attempt's
/// began) land before the end.
fn append_in_order(log: &mut Vec<JobLogLine>, lines: &[JobLogLine]) {
    let in_order = match (log.last(), lines.first()) {
        (Some(last), Some(first)) => last.id < first.id,
        _ => true,
    };
    log.extend_from_slice(lines);
    if !in_order {
        log.sort_by_key(|line| line.id);
    }
}
