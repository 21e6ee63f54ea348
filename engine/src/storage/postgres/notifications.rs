//! The change feed between replicas: statements `NOTIFY` on a channel in the same statement
//! (and so the same commit) as their change, and every replica `LISTEN`s on one connection
//! of its own and turns what arrives into local wake-ups.
//!
//! A statement that notifies ends its `RETURNING` list with
//! `(SELECT count(*) FROM (SELECT pg_notify($n, '')) AS notified) AS notified`, the channel
//! bound from the constants below. A subquery that does not depend on the row runs once, and
//! only when a row comes back: a statement that changed nothing wakes nobody. (A kill's
//! payload is the killed job's id, so that subquery runs for its row.)

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::{broadcast, oneshot, watch, Notify};

use crate::error::Result;
use crate::model::ScraperJobId;

/// A scraper was created, changed or deleted: schedulers re-read the list.
pub(super) const SCRAPERS_CHANNEL: &str = "sneakpeek_scrapers";
/// A job was enqueued or went back to the queue: idle workers claim it.
pub(super) const JOBS_CHANNEL: &str = "sneakpeek_jobs";
/// A job was killed; the payload is its id: the worker running it cancels its handler.
pub(super) const KILLS_CHANNEL: &str = "sneakpeek_kills";

/// What the notifications of every replica, this one's included, wake in this process.
#[derive(Clone)]
pub(super) struct Wakeups {
    /// A counter that changes whenever any scraper changes.
    pub(super) scraper_changes: watch::Sender<u64>,
    /// Woken whenever a job is enqueued.
    pub(super) enqueued: Arc<Notify>,
    /// Ids of killed jobs.
    pub(super) kills: broadcast::Sender<ScraperJobId>,
}

impl Default for Wakeups {
    fn default() -> Self {
        Wakeups {
            scraper_changes: watch::channel(0).0,
            enqueued: Arc::new(Notify::new()),
            kills: broadcast::channel(1024).0,
        }
    }
}

impl Wakeups {
    /// Starts listening, on a connection of its own to the pool's database, for the
    /// notifications of every replica. Dropping the returned sender stops the listener.
    pub(super) async fn listen(&self, pool: &PgPool) -> Result<oneshot::Sender<()>> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener
            .listen_all([SCRAPERS_CHANNEL, JOBS_CHANNEL, KILLS_CHANNEL])
            .await?;
        let (listening, stopped) = oneshot::channel();
        tokio::spawn(self.clone().forward(listener, stopped));
        Ok(listening)
    }

    /// Turns NOTIFYs from any replica into local wake-ups. When the listening connection
    /// drops, notifications may have been missed, so everyone is woken to re-check.
    async fn forward(self, mut listener: PgListener, mut stopped: oneshot::Receiver<()>) {
        loop {
            let received = tokio::select! {
                _ = &mut stopped => break,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(notification)) if notification.channel() == JOBS_CHANNEL => {
                    self.enqueued.notify_waiters()
                }
                Ok(Some(notification)) if notification.channel() == KILLS_CHANNEL => {
                    if let Ok(job_id) = notification.payload().parse() {
                        let _ = self.kills.send(job_id);
                    }
                }
                Ok(Some(_)) => self.scraper_changes.send_modify(|version| *version += 1),
                Ok(None) => {
                    self.enqueued.notify_waiters();
                    self.scraper_changes.send_modify(|version| *version += 1);
                }
                Err(error) => {
                    tracing::warn!(%error, "lost the notification connection; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}
