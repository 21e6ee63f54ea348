//! The PostgreSQL storage: scrapers, the jobs queue and the scheduler lease, shared by any
//! number of replicas.
//!
//! Each queue operation is one statement (one commit): the claim is an `UPDATE` over a
//! `FOR UPDATE SKIP LOCKED` subquery, the one-active-job rule and the one-job-per-fire rule
//! are unique indexes (see `migrations/`), and later transitions are guarded by the job's
//! status in their `WHERE`. Enqueues and scraper changes `NOTIFY` in the same statement, so
//! idle workers and the scheduler of every replica wake at once.
//!
//! This module holds the connection (the pool, the migrations); `notifications` the change
//! feed between replicas; `rows` how rows decode into the model's types; and `scrapers`,
//! `jobs` and `lease` the implementation of one storage trait each. Every statement is a
//! literal string, as the database runs it.

mod jobs;
mod lease;
mod notifications;
mod rows;
mod scrapers;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use tokio::sync::{oneshot, Mutex};

use crate::error::{Error, Result};
use lease::HeldLease;
use notifications::Wakeups;

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
            // crashed or not accepting connections yet; 53300: too many connections;
            // 40P01 and 40001: the statement lost a deadlock or a serialization conflict to
            // another and can simply run again.
            sqlx::Error::Database(database) => database.code().is_some_and(|code| {
                code.starts_with("08")
                    || matches!(
                        &*code,
                        "57P01" | "57P02" | "57P03" | "53300" | "40P01" | "40001"
                    )
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
    /// For the connections of leases, which live outside the pool.
    connect_options: PgConnectOptions,
    read_only: bool,
    /// What the notifications of every replica wake in this process.
    wakeups: Wakeups,
    /// Leases held by this process: each on its own connection, which holds the advisory lock.
    held_leases: Arc<Mutex<HashMap<String, HeldLease>>>,
    /// Dropped with the last clone of the storage, which stops the notification listener.
    _listening: Arc<oneshot::Sender<()>>,
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
        let wakeups = Wakeups::default();
        let listening = wakeups.listen(&pool).await?;
        Ok(PostgresStorage {
            pool,
            connect_options,
            read_only,
            wakeups,
            held_leases: Arc::default(),
            _listening: Arc::new(listening),
        })
    }

    /// The connection pool, for what lives in the same database outside these storages (the
    /// rate-limit windows) and for tests.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
