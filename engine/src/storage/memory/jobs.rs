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
    JobCount, JobLogLine, Scraper, ScraperId, ScraperJob, ScraperJobId, ScraperJobPriority,
    ScraperJobStatus,
};
use crate::storage::text::{
    storable_completion, storable_lines, storable_option, storable_scraper,
};
use crate::storage::{ClaimedJob, Completion, EnqueueOrigin, JobStamp, ScraperJobsStorage};
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
    /// Pending jobs in dequeue order: priority value, then id (FIFO).
    pending: BTreeSet<(i16, ScraperJobId)>,
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

    /// Whether the job exists and is started (so a worker may finish it).
    fn is_started(&self, job_id: ScraperJobId) -> bool {
        self.jobs
            .get(&job_id)
            .is_some_and(|job| job.status == ScraperJobStatus::Started)
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
        let mut claimed = Vec::with_capacity(limit.min(state.pending.len()));
        while claimed.len() < limit {
            let Some((_, id)) = state.pending.pop_first() else {
                break;
            };
            let job = state.jobs.get_mut(&id).expect("pending jobs exist");
            job.status = ScraperJobStatus::Started;
            job.started_at = Some(now);
            job.last_active_at = Some(now);
            claimed.push(job.clone());
        }
        Ok(claimed)
    }

    async fn start_scraper_jobs(&self, job_ids: &[ScraperJobId]) -> Result<Vec<ScraperJobId>> {
        let mut state = self.state();
        let now = Utc::now();
        let mut started = Vec::with_capacity(job_ids.len());
        for &job_id in job_ids {
            if !state.is_started(job_id) {
                continue;
            }
            state.running.insert(job_id);
            if let Some(job) = state.jobs.get_mut(&job_id) {
                job.last_active_at = Some(now);
            }
            started.push(job_id);
        }
        Ok(started)
    }

    async fn release_scraper_jobs(&self, job_ids: &[ScraperJobId]) -> Result<u64> {
        let released = {
            let mut state = self.state();
            let mut released = 0;
            for &job_id in job_ids {
                if !state.is_started(job_id) || state.running.contains(&job_id) {
                    continue;
                }
                state.requeue(job_id);
                released += 1;
            }
            released
        };
        if released > 0 {
            self.enqueued.notify_waiters();
        }
        Ok(released)
    }

    async fn heartbeat(&self, job_id: ScraperJobId) -> Result<()> {
        let mut state = self.state();
        let job = state
            .jobs
            .get_mut(&job_id)
            .ok_or(Error::ScraperJobNotFound(job_id))?;
        match job.status {
            ScraperJobStatus::Pending => Err(Error::PingNotStarted),
            ScraperJobStatus::Started => {
                job.last_active_at = Some(Utc::now());
                Ok(())
            }
            _ => Err(Error::PingFinished),
        }
    }

    async fn finish_scraper_job(
        &self,
        job_id: ScraperJobId,
        status: ScraperJobStatus,
        result: Option<String>,
    ) -> Result<Option<ScraperJob>> {
        let mut state = self.state();
        Ok(state.is_started(job_id).then(|| {
            state
                .finish(job_id, status, storable_option(result), Utc::now())
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
                if let Some(log) = state.logs_of(completion.job_id) {
                    log.extend_from_slice(&completion.log);
                }
                let started = state.is_started(completion.job_id);
                if started {
                    state.finish(
                        completion.job_id,
                        completion.status,
                        completion.result.clone(),
                        now,
                    );
                }
                started
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
                    if state.running.contains(&id) {
                        state.finish(id, ScraperJobStatus::Dead, None, now).clone()
                    } else {
                        state.requeue(id).clone()
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
        Ok(self
            .state()
            .pending
            .range((value, i64::MIN)..(value + 1, i64::MIN))
            .count() as u64)
    }

    async fn append_job_log(&self, job_id: ScraperJobId, lines: &[JobLogLine]) -> Result<()> {
        self.state()
            .logs_of(job_id)
            .ok_or(Error::ScraperJobNotFound(job_id))?
            .extend_from_slice(&storable_lines(lines));
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
        // Line ids are 1, 2, 3...: the line after `after` is at index `after`.
        let start = after.unwrap_or(0).clamp(0, lines.len() as i64) as usize;
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
