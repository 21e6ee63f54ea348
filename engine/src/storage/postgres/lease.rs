//! The scheduler lease in PostgreSQL: an advisory lock held on a connection of the holder's
//! own, mirrored by a row of `leases` whose expiry the holder renews.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::{ConnectOptions, Connection, PgConnection};

use super::rows::LeaseRow;
use super::PostgresStorage;
use crate::error::{Error, Result};
use crate::model::Lease;
use crate::storage::LeaseStorage;

/// The first key of every lease's advisory lock; the lease name's `hashtext` is the second.
///
/// Advisory-lock keys are one space shared by everything that uses the database, so the
/// value only has to be one no other application picks: it is `snek` in ASCII
/// (`0x736E656B`) read as a big-endian integer, which also makes Sneakpeek's locks easy to
/// recognise in `pg_locks` (as their `classid`). The two-key form never meets a lock taken
/// with a single `bigint` key, whatever its value.
const LEASE_LOCK_CLASS: i32 = 1936614763;

/// How long a lease statement may take before the lease counts as lost (or not taken).
const LEASE_STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a contender waits for the backend it terminated to let go of the lock.
const LEASE_TAKEOVER_WAIT: Duration = Duration::from_secs(2);

/// A lease this process holds.
pub(super) struct HeldLease {
    owner_id: String,
    /// The connection holding the advisory lock; closing it releases the lock.
    connection: PgConnection,
}

/// `future`'s outcome, or `Error::Unavailable` when it takes longer than
/// [`LEASE_STATEMENT_TIMEOUT`].
async fn within<T>(future: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(LEASE_STATEMENT_TIMEOUT, future)
        .await
        .map_err(|_| Error::unavailable("lease statement timed out"))?
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
            // A lock taken with two `int4` keys shows in `pg_locks` as `classid` (the first),
            // `objid` (the second, as an unsigned `oid`) and `objsubid = 2`.
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
        let row: LeaseRow = within(async {
            Ok(sqlx::query_as(
                "INSERT INTO leases (name, owner_id, acquired, acquired_until)
                 VALUES ($1, $2, now(), now() + $3 * interval '1 millisecond')
                 ON CONFLICT (name) DO UPDATE SET owner_id = excluded.owner_id, acquired = excluded.acquired,
                    acquired_until = excluded.acquired_until
                 RETURNING name, owner_id, acquired, acquired_until",
            )
            .bind(name)
            .bind(owner_id)
            .bind(duration_ms)
            .fetch_one(&mut *connection)
            .await?)
        })
        .await?;
        Ok(Some(row.into()))
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
            let renewed: Result<Option<LeaseRow>> = within(async {
                Ok(sqlx::query_as(
                    "UPDATE leases SET acquired_until = now() + $3 * interval '1 millisecond'
                     WHERE name = $1 AND owner_id = $2
                     RETURNING name, owner_id, acquired, acquired_until",
                )
                .bind(name)
                .bind(owner_id)
                .bind(duration_ms)
                .fetch_optional(&mut lease.connection)
                .await?)
            })
            .await;
            if let Ok(Some(row)) = renewed {
                return Ok(Some(row.into()));
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
