//! One change feed per replica, shared by the UI's live streams.
//!
//! A live stream follows a scraper's jobs, or one job and its log. Streams do not read the
//! storage: they subscribe here, and the feed looks at everything followed with one call per
//! interval ([`ScraperJobsStorage::get_job_stamps`]: each job's status, times and last log
//! line, without scraper snapshots or results), then reads only what that shows changed: the
//! jobs of a scraper followed for the first time, a job new to the feed or that finished (for
//! its result), the new lines of a followed log. The storage's work grows with what changes,
//! not with how many pages are open, and nothing is read while none is.
//!
//! What the feed publishes is shared: every stream following a scraper or a job sees the same
//! [`Arc`]s, so a stream tells what changed since its last event by pointer, and a scraper
//! snapshot is one allocation for all the feed's jobs of that scraper with equal settings.
//!
//! The feed looks rather than waits to be told: a `NOTIFY` from every claim, heartbeat and
//! completion would cost the queue's hot path on PostgreSQL (transactions that notify commit
//! one at a time) whether or not anyone watches, where one small read per interval costs only
//! while pages are open.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{watch, Notify};

use crate::error::{Error, Result};
use crate::model::{
    JobAttempt, JobLogLine, Scraper, ScraperId, ScraperJob, ScraperJobId, ScraperJobPriority,
    ScraperJobStatus,
};
use crate::storage::{JobStamp, ScraperJobsStorage};
use crate::sync::lock;

/// Log lines the feed reads at once; a job's log holds at most 10,000 (see the worker).
const LOG_READ: usize = 10_000;

/// A job as the feed shares it: a [`ScraperJob`] whose scraper snapshot is shared.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedJob {
    /// The job's id, as [`ScraperJob::id`].
    pub id: ScraperJobId,
    /// The scraper as it was when the job was enqueued; the same allocation for the feed's
    /// jobs of that scraper with equal settings.
    pub scraper: Arc<Scraper>,
    /// The job's status as of the feed's last look (at most one interval old).
    pub status: ScraperJobStatus,
    /// The job's queue priority, as [`ScraperJob::priority`].
    pub priority: ScraperJobPriority,
    /// When the job was enqueued (UTC).
    pub created_at: DateTime<Utc>,
    /// When a worker claimed the job (UTC); `None` while pending.
    pub started_at: Option<DateTime<Utc>>,
    /// The last heartbeat of the worker running the job (UTC), as of the feed's last look.
    pub last_active_at: Option<DateTime<Utc>>,
    /// When the job reached a final status (UTC); `None` while pending or started.
    pub finished_at: Option<DateTime<Utc>>,
    /// What the handler returned or why the job failed; `None` while the job is not finished
    /// (stamps carry no results: the feed reads it with the job once it sees the job finished).
    pub result: Option<String>,
    /// The current attempt, as [`ScraperJob::attempt`].
    pub attempt: u32,
    /// When a job waiting for a retry is due, as [`ScraperJob::next_attempt_at`].
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The attempts before the current one, as [`ScraperJob::attempts`].
    pub attempts: Vec<JobAttempt>,
}

impl FeedJob {
    /// `job`, with its snapshot as `share` gives it.
    fn new(job: ScraperJob, share: impl FnOnce(Scraper) -> Arc<Scraper>) -> FeedJob {
        let ScraperJob {
            id,
            scraper,
            status,
            priority,
            created_at,
            started_at,
            last_active_at,
            finished_at,
            result,
            attempt,
            next_attempt_at,
            attempts,
        } = job;
        FeedJob {
            id,
            // Streams hand the snapshot to browsers: without credentials.
            scraper: share(scraper.redacted()),
            status,
            priority,
            created_at,
            started_at,
            last_active_at,
            finished_at,
            result,
            attempt,
            next_attempt_at,
            attempts,
        }
    }

    /// Whether `stamp` says nothing new about this job.
    fn is_current(&self, stamp: &JobStamp) -> bool {
        (
            self.status,
            self.started_at,
            self.last_active_at,
            self.finished_at,
            self.attempt,
        ) == (
            stamp.status,
            stamp.started_at,
            stamp.last_active_at,
            stamp.finished_at,
            stamp.attempt,
        )
    }

    /// This job as `stamp` says it is now, unless it finished or was retried meanwhile: only
    /// those set a result or an attempt's outcome, which stamps do not carry.
    fn moved_on(&self, stamp: &JobStamp) -> Option<FeedJob> {
        (self.finished_at == stamp.finished_at && self.attempt == stamp.attempt).then(|| FeedJob {
            status: stamp.status,
            started_at: stamp.started_at,
            last_active_at: stamp.last_active_at,
            ..self.clone()
        })
    }
}

/// A scraper's jobs, newest first.
pub type Jobs = Arc<[Arc<FeedJob>]>;

/// A followed job and its log, as the feed last read them.
#[derive(Debug, Clone)]
pub struct FollowedJob {
    /// `None` when the scraper has no such job (it never had, or the job was pruned).
    pub job: Option<Arc<FeedJob>>,
    /// The newest lines of the job's log the feed has read; kept until a look finds newer ones.
    pub log: Arc<LogTail>,
}

/// The lines of a job's log the feed read last: those after line `after`, which the feed had
/// read before (or which were written before it followed the job).
#[derive(Debug, Default, PartialEq)]
pub struct LogTail {
    /// The line number the tail starts after: lines up to it were read before, or were written
    /// before the job was followed (streams read those from the log themselves).
    pub after: i64,
    /// The lines after `after` the feed read, oldest first.
    pub lines: Vec<JobLogLine>,
}

impl LogTail {
    /// The last line of the log the feed knows of (0: none).
    pub fn last_line(&self) -> i64 {
        self.lines.last().map_or(self.after, |line| line.id)
    }

    /// Up to `max` lines after line `line`, when this tail has all of them; `None` when some
    /// are older than the tail (read them from the log).
    pub fn lines_after(&self, line: i64, max: usize) -> Option<Vec<JobLogLine>> {
        (line >= self.after).then(|| {
            self.lines
                .iter()
                .filter(|tail_line| tail_line.id > line)
                .take(max)
                .cloned()
                .collect()
        })
    }
}

/// The change feed of a replica. Cheap to clone; its task ends with the last clone.
#[derive(Clone)]
pub struct Feed {
    shared: Arc<Shared>,
}

struct Shared {
    storage: Arc<dyn ScraperJobsStorage>,
    followed: Mutex<Followed>,
    /// Wakes the feed's task: something is followed for the first time, or the feed is gone.
    wake: Arc<Notify>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.wake.notify_one();
    }
}

/// What streams follow: each value is `None` until the feed has read it. A value whose
/// receivers are all gone is forgotten at the next look.
#[derive(Default)]
struct Followed {
    scrapers: HashMap<ScraperId, watch::Sender<Option<Jobs>>>,
    jobs: HashMap<(ScraperId, ScraperJobId), watch::Sender<Option<FollowedJob>>>,
}

impl Feed {
    /// Starts a feed that looks at `storage` every `interval` while anything is followed,
    /// and at once when something is followed for the first time. Its task is spawned on the
    /// current tokio runtime.
    pub fn new(storage: Arc<dyn ScraperJobsStorage>, interval: Duration) -> Feed {
        let shared = Arc::new(Shared {
            storage,
            followed: Mutex::default(),
            wake: Arc::default(),
        });
        tokio::spawn(run(Arc::downgrade(&shared), shared.wake.clone(), interval));
        Feed { shared }
    }

    /// Follows a scraper's jobs until the receiver is dropped: `None` until the feed has read
    /// them, then a new value whenever they change (an unknown scraper has none).
    pub fn scraper_jobs(&self, scraper_id: ScraperId) -> watch::Receiver<Option<Jobs>> {
        let mut followed = lock(&self.shared.followed);
        follow(&mut followed.scrapers, scraper_id, &self.shared.wake)
    }

    /// Follows a job of a scraper and its log until the receiver is dropped: `None` until the
    /// feed has read it, then a new value whenever either changes.
    pub fn job(
        &self,
        scraper_id: ScraperId,
        job_id: ScraperJobId,
    ) -> watch::Receiver<Option<FollowedJob>> {
        let mut followed = lock(&self.shared.followed);
        follow(&mut followed.jobs, (scraper_id, job_id), &self.shared.wake)
    }
}

/// A receiver of `key`'s value, which the feed is woken to read if nobody followed it yet.
fn follow<K: Hash + Eq, T>(
    values: &mut HashMap<K, watch::Sender<Option<T>>>,
    key: K,
    wake: &Notify,
) -> watch::Receiver<Option<T>> {
    match values.entry(key) {
        Entry::Occupied(followed) => followed.get().subscribe(),
        Entry::Vacant(unread) => {
            let (sender, receiver) = watch::channel(None);
            unread.insert(sender);
            wake.notify_one();
            receiver
        }
    }
}

/// The feed's task: one look per interval while anything is followed, none otherwise.
async fn run(shared: Weak<Shared>, wake: Arc<Notify>, interval: Duration) {
    loop {
        let Some(feed) = shared.upgrade() else {
            return;
        };
        let following = feed.look().await;
        drop(feed);
        if following {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = wake.notified() => {}
            }
        } else {
            wake.notified().await;
        }
    }
}

/// What the feed follows and knows at the start of a look.
struct Look {
    scrapers: Vec<ScraperId>,
    jobs: Vec<(ScraperId, ScraperJobId)>,
    /// Scrapers whose jobs the feed has not read yet.
    unread: Vec<ScraperId>,
    /// The jobs the feed has published, by id.
    known: HashMap<ScraperJobId, Arc<FeedJob>>,
    /// The log tail published for each followed job.
    tails: HashMap<(ScraperId, ScraperJobId), Arc<LogTail>>,
}

impl Shared {
    /// Reads what changed in everything followed and publishes it; returns whether anything
    /// is followed. A failed read changes nothing: the next look tries again.
    async fn look(&self) -> bool {
        let look = self.start_look();
        if look.scrapers.is_empty() && look.jobs.is_empty() {
            return false;
        }
        if let Err(error) = self.read(look).await {
            tracing::warn!(error = %error.report(), "live updates: could not read the jobs");
        }
        true
    }

    fn start_look(&self) -> Look {
        let mut followed = lock(&self.followed);
        followed.scrapers.retain(|_, sender| !sender.is_closed());
        followed.jobs.retain(|_, sender| !sender.is_closed());
        let mut look = Look {
            scrapers: followed.scrapers.keys().copied().collect(),
            jobs: followed.jobs.keys().copied().collect(),
            unread: Vec::new(),
            known: HashMap::new(),
            tails: HashMap::new(),
        };
        for (scraper_id, sender) in &followed.scrapers {
            match &*sender.borrow() {
                Some(jobs) => look
                    .known
                    .extend(jobs.iter().map(|job| (job.id, job.clone()))),
                None => look.unread.push(*scraper_id),
            }
        }
        for (key, sender) in &followed.jobs {
            if let Some(followed) = &*sender.borrow() {
                if let Some(job) = &followed.job {
                    look.known.insert(job.id, job.clone());
                }
                look.tails.insert(*key, followed.log.clone());
            }
        }
        look
    }

    async fn read(&self, mut look: Look) -> Result<()> {
        let mut snapshots = Snapshots::of(look.known.values());
        // A scraper followed for the first time: all its jobs in one read.
        for scraper_id in &look.unread {
            for job in self.storage.get_scraper_jobs(*scraper_id).await? {
                let job = FeedJob::new(job, |scraper| snapshots.share(scraper));
                look.known.insert(job.id, Arc::new(job));
            }
        }
        let job_ids: Vec<ScraperJobId> = look.jobs.iter().map(|(_, job_id)| *job_id).collect();
        let stamps = self
            .storage
            .get_job_stamps(&look.scrapers, &job_ids)
            .await?;
        let scrapers: HashSet<ScraperId> = look.scrapers.iter().copied().collect();
        let job_keys: HashSet<(ScraperId, ScraperJobId)> = look.jobs.iter().copied().collect();
        let mut current: HashMap<ScraperJobId, Arc<FeedJob>> = HashMap::new();
        for stamp in &stamps {
            let followed = scrapers.contains(&stamp.scraper_id)
                || job_keys.contains(&(stamp.scraper_id, stamp.id));
            if !followed {
                continue;
            }
            let job = match look.known.get(&stamp.id) {
                Some(job) if job.is_current(stamp) => Some(job.clone()),
                Some(job) => match job.moved_on(stamp) {
                    Some(moved) => Some(Arc::new(moved)),
                    // Its snapshot never changes: only the rest is read again.
                    None => self.read_job(stamp, |_| job.scraper.clone()).await?,
                },
                None => {
                    self.read_job(stamp, |scraper| snapshots.share(scraper))
                        .await?
                }
            };
            // None: deleted since the stamp was read, as if it had not been there.
            if let Some(job) = job {
                current.insert(stamp.id, job);
            }
        }
        let last_lines: HashMap<ScraperJobId, i64> = stamps
            .iter()
            .filter_map(|stamp| Some((stamp.id, stamp.last_log_line?)))
            .collect();
        let mut tails = HashMap::with_capacity(look.jobs.len());
        for key in &look.jobs {
            let last_line = last_lines.get(&key.1).copied().unwrap_or(0);
            let tail = match look.tails.remove(key) {
                Some(tail) if tail.last_line() < last_line => {
                    Arc::new(self.read_log(key.1, tail.last_line(), last_line).await?)
                }
                Some(tail) => tail,
                // Lines written before the job was followed are the streams' to read.
                None => Arc::new(LogTail {
                    after: last_line,
                    lines: Vec::new(),
                }),
            };
            tails.insert(*key, tail);
        }
        self.publish(&scrapers, &current, tails);
        Ok(())
    }

    /// The job `stamp` is about, `None` when it is gone.
    async fn read_job(
        &self,
        stamp: &JobStamp,
        share: impl FnOnce(Scraper) -> Arc<Scraper>,
    ) -> Result<Option<Arc<FeedJob>>> {
        match self
            .storage
            .get_scraper_job(stamp.scraper_id, stamp.id)
            .await
        {
            Ok(job) => Ok(Some(Arc::new(FeedJob::new(job, share)))),
            Err(Error::ScraperJobNotFound(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The lines of a job's log after line `after`, up to line `last` at least.
    async fn read_log(&self, job_id: ScraperJobId, after: i64, last: i64) -> Result<LogTail> {
        let mut lines: Vec<JobLogLine> = Vec::new();
        loop {
            let from = lines.last().map_or(after, |line| line.id);
            let read = self
                .storage
                .get_job_log(job_id, Some(from), LOG_READ)
                .await?;
            let complete = read.len() < LOG_READ;
            lines.extend(read);
            if complete || lines.last().is_some_and(|line| line.id >= last) {
                return Ok(LogTail { after, lines });
            }
        }
    }

    /// Sends each value read in this look that changed to its streams. `tails` has a log
    /// tail for every job the look followed; `scrapers` are those it followed.
    fn publish(
        &self,
        scrapers: &HashSet<ScraperId>,
        current: &HashMap<ScraperJobId, Arc<FeedJob>>,
        mut tails: HashMap<(ScraperId, ScraperJobId), Arc<LogTail>>,
    ) {
        let mut by_scraper: HashMap<ScraperId, Vec<Arc<FeedJob>>> = HashMap::new();
        for job in current.values() {
            by_scraper
                .entry(job.scraper.id)
                .or_default()
                .push(job.clone());
        }
        let followed = lock(&self.followed);
        // Values followed since the look began are left for the next look to read.
        let read = followed
            .scrapers
            .iter()
            .filter(|(scraper_id, _)| scrapers.contains(scraper_id));
        for (scraper_id, sender) in read {
            let mut jobs = by_scraper.remove(scraper_id).unwrap_or_default();
            jobs.sort_by_key(|job| Reverse(job.id));
            sender.send_if_modified(|published| {
                let unchanged = published.as_ref().is_some_and(|published| {
                    published.len() == jobs.len()
                        && published.iter().zip(&jobs).all(|(a, b)| Arc::ptr_eq(a, b))
                });
                if !unchanged {
                    *published = Some(jobs.into());
                }
                !unchanged
            });
        }
        for (key, sender) in &followed.jobs {
            let Some(log) = tails.remove(key) else {
                continue;
            };
            let job = current
                .get(&key.1)
                .filter(|job| job.scraper.id == key.0)
                .cloned();
            sender.send_if_modified(|published| {
                let unchanged = published.as_ref().is_some_and(|published| {
                    Arc::ptr_eq(&published.log, &log)
                        && match (&published.job, &job) {
                            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                            (a, b) => a.is_none() && b.is_none(),
                        }
                });
                if !unchanged {
                    *published = Some(FollowedJob { job, log });
                }
                !unchanged
            });
        }
    }
}

/// The distinct scraper snapshots of the feed's jobs, so that equal ones share one allocation.
struct Snapshots(Vec<Arc<Scraper>>);

impl Snapshots {
    fn of<'a>(jobs: impl Iterator<Item = &'a Arc<FeedJob>>) -> Snapshots {
        let mut distinct: Vec<Arc<Scraper>> = Vec::new();
        for job in jobs {
            if !distinct
                .iter()
                .any(|known| Arc::ptr_eq(known, &job.scraper))
            {
                distinct.push(job.scraper.clone());
            }
        }
        Snapshots(distinct)
    }

    fn share(&mut self, scraper: Scraper) -> Arc<Scraper> {
        if let Some(known) = self
            .0
            .iter()
            .find(|known| known.id == scraper.id && ***known == scraper)
        {
            return known.clone();
        }
        let shared = Arc::new(scraper);
        self.0.push(shared.clone());
        shared
    }
}
