//! The scheduler: turns scrapers' schedules into jobs, and keeps the queue healthy.
//!
//! Every replica may run a scheduler; only the holder of the scheduler lease acts. The leader
//! keeps a plan (each active scraper's next fire time), sleeps until the earliest one, and
//! enqueues the due scrapers with their fire time, so the storage refuses a fire that was
//! already enqueued (by a stale leader, say) and a fire while the scraper still runs (no
//! pile-up). Scraper changes wake it at once through the storage's change signal. It also
//! marks jobs without heartbeat as dead and prunes old finished jobs.
//!
//! Leadership can be lost without notice: the process may be frozen (SIGSTOP, a hung host) or
//! cut off from the database while its lease expires and another replica takes over. So the
//! leader fences itself: it knows until when its last renewal holds, by its own monotonic
//! clock measured from *before* the renewal was asked for, and acts only before that instant.
//! A leader that wakes up after a freeze therefore stops instead of acting on a lease it no
//! longer has; its late writes could do no harm anyway (one job per fire is the database's
//! rule), but it would also mark jobs dead by a stale view.
//!
//! Jobs are declared dead only after the leader has led, and so reached the storage, for a
//! whole dead timeout: after an outage of the database every worker gets that long to
//! heart-beat its jobs again before any is judged lost.
//!
//! A scraper whose schedule cannot be evaluated is skipped with a warning; it never stops the
//! others.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::Error;
use crate::model::{SchedulerState, Scraper, ScraperId, ScraperJobStatus};
use crate::retry::{RetryPolicy, RetryReason};
use crate::schedule::{Schedule, Trigger};
use crate::storage::{ScheduledFire, Storages};

/// Wall-clock time as the scheduler sees it.
#[derive(Debug, Clone)]
pub enum Clock {
    /// The system clock.
    System,
    /// Starts at a chosen instant and advances with tokio's clock, so tests can pause and
    /// jump time (`tokio::time::pause`/`advance`) instead of waiting for minutes.
    Simulated {
        /// What the clock reads at `origin`.
        start: DateTime<Utc>,
        /// The tokio instant the clock was created at; the clock advances by the tokio time
        /// elapsed since.
        origin: Instant,
    },
}

impl Clock {
    /// A simulated clock reading `start` now and advancing with tokio's (pausable) clock.
    pub fn simulated(start: DateTime<Utc>) -> Self {
        Clock::Simulated {
            start,
            origin: Instant::now(),
        }
    }

    /// The current wall-clock time (UTC) by this clock: what fire times are compared with.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Simulated { start, origin } => {
                *start + chrono::Duration::from_std(origin.elapsed()).unwrap_or_default()
            }
        }
    }

    /// The tokio instant at which this clock reads `at`.
    fn instant_of(&self, at: DateTime<Utc>) -> Instant {
        Instant::now() + (at - self.now()).to_std().unwrap_or(Duration::ZERO)
    }
}

/// How the scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    /// Name of the lease the schedulers of all replicas contend for; replicas sharing a storage
    /// must use the same one (default `sneakpeek:scheduler`).
    pub lease_name: String,
    /// Advertised validity of the lease; renewed every `lease_check_interval`.
    pub lease_duration: Duration,
    /// How often the leader renews (and checks) its lease, and a follower tries to take it.
    pub lease_check_interval: Duration,
    /// A started job without heartbeat for this long is marked dead.
    pub dead_timeout: Duration,
    /// How often the leader looks for jobs without heartbeat for `dead_timeout` (default 5 s);
    /// the first look waits a whole dead timeout after taking the lease.
    pub dead_check_interval: Duration,
    /// Finished jobs kept per scraper; older ones are pruned.
    pub keep_jobs_per_scraper: usize,
    /// How often the leader prunes finished jobs beyond `keep_jobs_per_scraper` (default 1 min).
    pub prune_interval: Duration,
    /// Reload all scrapers this often even without a change signal (a safety net).
    pub reload_interval: Duration,
    /// Wall-clock time for fire times: the system clock, or a simulated one in tests.
    pub clock: Clock,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        SchedulerSettings {
            lease_name: "sneakpeek:scheduler".to_owned(),
            lease_duration: Duration::from_secs(10),
            lease_check_interval: Duration::from_secs(1),
            dead_timeout: Duration::from_secs(30),
            dead_check_interval: Duration::from_secs(5),
            keep_jobs_per_scraper: 100,
            prune_interval: Duration::from_secs(60),
            reload_interval: Duration::from_secs(60),
            clock: Clock::System,
        }
    }
}

/// One replica's scheduler: a follower contending for the lease, and while it holds it the
/// leader that fires schedules, marks jobs dead and prunes old jobs. Start it with
/// [`Scheduler::run`].
pub struct Scheduler {
    storages: Storages,
    owner_id: String,
    settings: SchedulerSettings,
    /// The retry policy of jobs whose scraper sets none (the operator's default).
    default_retry: RetryPolicy,
    status: watch::Sender<SchedulerState>,
}

/// A scraper's place in the plan.
struct Planned {
    scraper: Scraper,
    trigger: Trigger,
    next: DateTime<Utc>,
}

impl Scheduler {
    /// A scheduler on `storages`, contending for the lease as `owner_id` (unique per replica and
    /// start: the holder's [`crate::model::Lease::owner_id`]). The jobs it enqueues run under
    /// their scraper's retry policy, or `default_retry`.
    pub fn new(
        storages: Storages,
        owner_id: impl Into<String>,
        settings: SchedulerSettings,
        default_retry: RetryPolicy,
    ) -> Self {
        Scheduler {
            storages,
            owner_id: owner_id.into(),
            settings,
            default_retry,
            status: watch::channel(SchedulerState::default()).0,
        }
    }

    /// Follows what the scheduler is doing: whether it leads and how many scrapers it has
    /// planned (`leading: false`, 0 planned, while it follows).
    pub fn status(&self) -> watch::Receiver<SchedulerState> {
        self.status.subscribe()
    }

    /// Runs until `shutdown` turns true: a follower until it gets the lease, then the leader
    /// until it loses it, and so on. Releases the lease on shutdown so another replica takes
    /// over without waiting.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut tries = tokio::time::interval(self.settings.lease_check_interval);
        tries.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !*shutdown.borrow() {
            tokio::select! {
                _ = tries.tick() => {}
                _ = shutdown.changed() => continue,
            }
            if let Some(valid_until) = self.acquire_lease().await {
                tracing::info!(owner = %self.owner_id, "became the active scheduler");
                self.lead(valid_until, &mut shutdown).await;
                self.status
                    .send_modify(|status| *status = SchedulerState::default());
            }
        }
        if let Err(error) = self
            .storages
            .leases
            .release_lease(&self.settings.lease_name, &self.owner_id)
            .await
        {
            tracing::warn!(error = %error.report(), "could not release the scheduler lease");
        }
    }

    /// Takes or renews the lease. Returns the instant, by this process's monotonic clock,
    /// until which it holds for sure: the lease's duration from before it was asked for.
    async fn acquire_lease(&self) -> Option<Instant> {
        let asked = Instant::now();
        let acquired = tokio::time::timeout(
            self.settings.lease_duration,
            self.storages.leases.maybe_acquire_lease(
                &self.settings.lease_name,
                &self.owner_id,
                self.settings.lease_duration,
            ),
        )
        .await;
        match acquired {
            Ok(Ok(lease)) => lease.map(|_| asked + self.settings.lease_duration),
            Ok(Err(error)) => {
                tracing::warn!(error = %error.report(), "could not reach the lease storage");
                None
            }
            Err(_) => {
                tracing::warn!("the lease storage did not answer within the lease period");
                None
            }
        }
    }

    /// Schedules while holding the lease (valid until `valid_until` unless renewed); returns
    /// when it is lost or on shutdown.
    async fn lead(&self, mut valid_until: Instant, shutdown: &mut watch::Receiver<bool>) {
        let clock = &self.settings.clock;
        let mut changes = self.storages.scrapers.changes();
        let mut plan = HashMap::new();
        let mut bad_schedules = HashSet::new();
        self.reload(&mut plan, &mut bad_schedules).await;
        changes.mark_unchanged();

        let mut lease_checks = interval_after(self.settings.lease_check_interval);
        // Workers get a whole dead timeout of reachable storage to heart-beat their jobs
        // before any is judged lost (see the module docs).
        let mut dead_checks = tokio::time::interval_at(
            Instant::now()
                + self
                    .settings
                    .dead_timeout
                    .max(self.settings.dead_check_interval),
            self.settings.dead_check_interval,
        );
        dead_checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut prunes = interval_after(self.settings.prune_interval);
        let mut reloads = interval_after(self.settings.reload_interval);
        loop {
            self.status.send_modify(|status| {
                *status = SchedulerState {
                    leading: true,
                    planned: plan.len(),
                }
            });
            let next_fire = plan.values().map(|planned| planned.next).min();
            let wake = next_fire
                .map(|at| clock.instant_of(at))
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let action = tokio::select! {
                _ = tokio::time::sleep_until(wake), if next_fire.is_some() => LeaderAction::Fire,
                changed = changes.changed() => if changed.is_ok() { LeaderAction::Reload } else { LeaderAction::Stop },
                _ = reloads.tick() => LeaderAction::Reload,
                _ = lease_checks.tick() => LeaderAction::RenewLease,
                _ = dead_checks.tick() => LeaderAction::MarkDead,
                _ = prunes.tick() => LeaderAction::Prune,
                _ = shutdown.changed() => LeaderAction::Stop,
            };
            // Whatever woke us (after a freeze, every timer is due at once), never act on a
            // lease that may have expired meanwhile.
            if Instant::now() >= valid_until {
                tracing::warn!("the scheduler lease was not renewed in time; stepping down");
                return;
            }
            match action {
                LeaderAction::Fire => {
                    // Renew first: the lease may have been lost since the last check, and a
                    // fire must never happen without it.
                    match self.acquire_lease().await {
                        Some(renewed) => valid_until = renewed,
                        None => {
                            tracing::warn!("lost the scheduler lease");
                            return;
                        }
                    }
                    self.fire_due(&mut plan).await;
                }
                LeaderAction::Reload => self.reload(&mut plan, &mut bad_schedules).await,
                LeaderAction::RenewLease => match self.acquire_lease().await {
                    Some(renewed) => valid_until = renewed,
                    None => {
                        tracing::warn!("lost the scheduler lease");
                        return;
                    }
                },
                LeaderAction::MarkDead => self.mark_dead_jobs().await,
                LeaderAction::Prune => self.prune_old_jobs().await,
                LeaderAction::Stop => return,
            }
        }
    }

    /// Rebuilds the plan from the storage, keeping the next fire of unchanged schedules.
    async fn reload(
        &self,
        plan: &mut HashMap<ScraperId, Planned>,
        bad_schedules: &mut HashSet<(ScraperId, String)>,
    ) {
        let scrapers = match self.storages.scrapers.get_scrapers().await {
            Ok(scrapers) => scrapers,
            Err(error) => {
                // Keep scheduling with what we know; the next change or reload retries.
                tracing::warn!(error = %error.report(), "could not load scrapers");
                return;
            }
        };
        let now = self.settings.clock.now();
        let mut fresh = HashMap::with_capacity(scrapers.len());
        for scraper in scrapers {
            let trigger = match Trigger::of(Schedule::of(&scraper)) {
                Ok(Some(trigger)) => trigger,
                Ok(None) => continue,
                Err(problem) => {
                    // Said once per scraper and problem, not at every reload.
                    if bad_schedules.insert((scraper.id, problem.msg.clone())) {
                        tracing::warn!(scraper_id = scraper.id, field = %problem.loc.join("."), problem = %problem.msg, "scraper skipped: its schedule is invalid");
                    }
                    continue;
                }
            };
            let next = match plan.remove(&scraper.id) {
                Some(old) if Schedule::of(&old.scraper) == Schedule::of(&scraper) => old.next,
                _ => match trigger.next_after(now) {
                    Some(next) => next,
                    None => continue,
                },
            };
            fresh.insert(
                scraper.id,
                Planned {
                    scraper,
                    trigger,
                    next,
                },
            );
        }
        *plan = fresh;
    }

    /// Enqueues every scraper whose fire time has come, then plans its next fire. Fires
    /// missed while late (or while no replica led) are skipped, not caught up in a burst.
    async fn fire_due(&self, plan: &mut HashMap<ScraperId, Planned>) {
        let now = self.settings.clock.now();
        let due: Vec<ScraperId> = plan
            .iter()
            .filter(|(_, planned)| planned.next <= now)
            .map(|(id, _)| *id)
            .collect();
        let fires: Vec<ScheduledFire> = due
            .iter()
            .map(|id| ScheduledFire {
                scraper: plan[id]
                    .scraper
                    .clone()
                    .with_retry_policy(&self.default_retry),
                at: plan[id].next,
            })
            .collect();
        match self.storages.jobs.add_scheduled_jobs(&fires).await {
            Ok(outcomes) => {
                for (fire, outcome) in fires.iter().zip(outcomes) {
                    let scraper_id = fire.scraper.id;
                    match outcome {
                        Ok(job) => {
                            metrics::counter!("sneakpeek_scheduler_fires_total", "outcome" => "enqueued").increment(1);
                            tracing::debug!(scraper_id, job_id = job.id, fire = %fire.at, "scheduled run enqueued")
                        }
                        Err(Error::ScraperHasActiveRun) => {
                            metrics::counter!("sneakpeek_scheduler_fires_total", "outcome" => "skipped").increment(1);
                            tracing::debug!(scraper_id, fire = %fire.at, "fire skipped: the scraper is still running or this fire was already enqueued")
                        }
                        Err(error) => {
                            metrics::counter!("sneakpeek_scheduler_fires_total", "outcome" => "failed").increment(1);
                            tracing::warn!(scraper_id, error = %error.report(), "could not enqueue a scheduled run")
                        }
                    }
                }
            }
            Err(error) => {
                metrics::counter!("sneakpeek_scheduler_fires_total", "outcome" => "failed")
                    .increment(fires.len() as u64);
                tracing::warn!(fires = fires.len(), error = %error.report(), "could not enqueue scheduled runs");
            }
        }
        for id in due {
            let planned = plan.get_mut(&id).expect("due ids come from the plan");
            // A schedule with no future fire (a crontab for a past date) stays planned far
            // away instead of firing again and again.
            planned.next = planned
                .trigger
                .next_after(now)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
        }
    }

    async fn mark_dead_jobs(&self) {
        match self
            .storages
            .jobs
            .mark_dead_scraper_jobs(self.settings.dead_timeout)
            .await
        {
            Ok(rescued) => {
                for job in rescued {
                    if job.next_attempt_at.is_some() {
                        metrics::counter!("sneakpeek_job_retries_total", "reason" => RetryReason::Dead.as_str()).increment(1);
                        tracing::warn!(
                            job_id = job.id,
                            scraper_id = job.scraper.id,
                            attempt = job.attempt,
                            "job retried: its worker was lost while it ran"
                        );
                        continue;
                    }
                    if job.status == ScraperJobStatus::Pending {
                        metrics::counter!("sneakpeek_jobs_requeued_total").increment(1);
                        tracing::warn!(
                            job_id = job.id,
                            scraper_id = job.scraper.id,
                            "job back in the queue: its worker was lost before its handler started"
                        );
                        continue;
                    }
                    metrics::counter!("sneakpeek_scraper_jobs_total", "type" => "dead")
                        .increment(1);
                    if job
                        .scraper
                        .retry
                        .as_ref()
                        .is_some_and(|policy| policy.retry_on.contains(&RetryReason::Dead))
                    {
                        metrics::counter!("sneakpeek_job_retries_exhausted_total", "reason" => RetryReason::Dead.as_str()).increment(1);
                    }
                    tracing::warn!(
                        job_id = job.id,
                        scraper_id = job.scraper.id,
                        "job marked dead: no heartbeat for {:?}",
                        self.settings.dead_timeout
                    );
                }
            }
            Err(error) => {
                tracing::warn!(error = %error.report(), "could not check for dead jobs")
            }
        }
    }

    async fn prune_old_jobs(&self) {
        match self
            .storages
            .jobs
            .delete_old_scraper_jobs(self.settings.keep_jobs_per_scraper)
            .await
        {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "pruned old finished jobs"),
            Err(error) => tracing::warn!(error = %error.report(), "could not prune old jobs"),
        }
    }
}

/// What woke the leader.
enum LeaderAction {
    Fire,
    Reload,
    RenewLease,
    MarkDead,
    Prune,
    Stop,
}

/// An interval whose first tick is one period from now (tokio's first tick is immediate).
fn interval_after(period: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval_at(Instant::now() + period, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}
