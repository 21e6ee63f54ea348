//! The scrapers in PostgreSQL: the `scrapers` table. Changes to the list notify the
//! schedulers of every replica; a scraper's state, which no schedule depends on, does not.

use async_trait::async_trait;
use sqlx::postgres::PgArguments;
use sqlx::query::QueryAs;
use sqlx::types::Json;
use sqlx::Postgres;
use tokio::sync::watch;

use super::notifications::SCRAPERS_CHANNEL;
use super::rows::{all, found, ScraperRow};
use super::PostgresStorage;
use crate::error::{Error, Result};
use crate::model::{CrontabDialect, Scraper, ScraperId};
use crate::schedule::no_ids_left;
use crate::storage::text::{storable, storable_option, storable_scraper};
use crate::storage::ScrapersStorage;

/// A statement returning a scraper's row.
type ScraperQuery<'q> = QueryAs<'q, Postgres, ScraperRow, PgArguments>;

/// Creates a scraper with an explicit id, replacing a stored one with that id (the
/// original's semantics), and moves the sequence past it so assigned ids never collide with
/// it. `$1` is the id, `$2` to `$12` the columns [`bind_scraper_columns`] binds, `$13` the
/// channel to notify.
const UPSERT_SCRAPER: &str = "WITH upserted AS (
        INSERT INTO scrapers (id, name, schedule, schedule_crontab, handler, config, schedule_priority, state, timeout_seconds, retry, schedule_timezone, schedule_crontab_dialect)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
        ON CONFLICT (id) DO UPDATE SET name = excluded.name, schedule = excluded.schedule,
            schedule_crontab = excluded.schedule_crontab, handler = excluded.handler, config = excluded.config,
            schedule_priority = excluded.schedule_priority, state = excluded.state,
            timeout_seconds = excluded.timeout_seconds, retry = excluded.retry,
            schedule_timezone = excluded.schedule_timezone,
            schedule_crontab_dialect = excluded.schedule_crontab_dialect, updated_at = now()
        RETURNING id, name, schedule, schedule_crontab, handler, config, schedule_priority, state, timeout_seconds, retry, schedule_timezone, schedule_crontab_dialect)
     SELECT upserted.*, (SELECT count(*) FROM (SELECT pg_notify($13, '')) AS notified) AS notified,
        (SELECT setval(pg_get_serial_sequence('scrapers', 'id'), GREATEST($1, (SELECT last_value FROM scrapers_id_seq)))) AS sequence
     FROM upserted";

/// Creates a scraper with an id from the sequence. `$1` to `$11` are the columns
/// [`bind_scraper_columns`] binds, `$12` the channel to notify.
const INSERT_SCRAPER: &str = "INSERT INTO scrapers (name, schedule, schedule_crontab, handler, config, schedule_priority, state, timeout_seconds, retry, schedule_timezone, schedule_crontab_dialect)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     RETURNING id, name, schedule, schedule_crontab, handler, config, schedule_priority, state, timeout_seconds, retry, schedule_timezone, schedule_crontab_dialect,
        (SELECT count(*) FROM (SELECT pg_notify($12, '')) AS notified) AS notified";

/// Binds a scraper's columns after its id, in the order the INSERT and UPDATE name them.
fn bind_scraper_columns<'q>(query: ScraperQuery<'q>, scraper: &'q Scraper) -> ScraperQuery<'q> {
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
        .bind(scraper.retry.as_ref().map(Json))
        .bind(&scraper.schedule_timezone)
        .bind(scraper.schedule_crontab_dialect.map(CrontabDialect::as_str))
}

#[async_trait]
impl ScrapersStorage for PostgresStorage {
    fn is_read_only(&self) -> bool {
        self.read_only
    }

    async fn get_scrapers(&self) -> Result<Vec<Scraper>> {
        let rows = sqlx::query_as::<_, ScraperRow>(
            "SELECT id, name, schedule, schedule_crontab, handler, config, schedule_priority, state, timeout_seconds, retry, schedule_timezone, schedule_crontab_dialect
             FROM scrapers ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        all(rows)
    }

    async fn search_scrapers(
        &self,
        name_filter: Option<&str>,
        max_items: Option<i64>,
        last_id: Option<i64>,
    ) -> Result<Vec<Scraper>> {
        let rows = sqlx::query_as::<_, ScraperRow>(
            "SELECT id, name, schedule, schedule_crontab, handler, config, schedule_priority, state, timeout_seconds, retry, schedule_timezone, schedule_crontab_dialect
             FROM scrapers
             WHERE ($1::text IS NULL OR strpos(name, $1) > 0) AND ($2::bigint IS NULL OR id > $2)
             ORDER BY id LIMIT $3",
        )
        // Names are stored without NUL (see `text`): a filter is matched the same way.
        .bind(name_filter.map(storable))
        .bind(last_id)
        .bind(max_items.filter(|max| *max > 0))
        .fetch_all(&self.pool)
        .await?;
        all(rows)
    }

    async fn maybe_get_scraper(&self, id: ScraperId) -> Result<Option<Scraper>> {
        let row = sqlx::query_as::<_, ScraperRow>(
            "SELECT id, name, schedule, schedule_crontab, handler, config, schedule_priority, state, timeout_seconds, retry, schedule_timezone, schedule_crontab_dialect
             FROM scrapers WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(Scraper::try_from).transpose()
    }

    async fn create_scraper(&self, scraper: Scraper) -> Result<Scraper> {
        self.writable()?;
        let scraper = storable_scraper(&scraper);
        let query = if scraper.id > 0 {
            sqlx::query_as(UPSERT_SCRAPER).bind(scraper.id)
        } else {
            sqlx::query_as(INSERT_SCRAPER)
        };
        let row = bind_scraper_columns(query, &scraper)
            .bind(SCRAPERS_CHANNEL)
            .fetch_one(&self.pool)
            .await
            .map_err(|error| match &error {
                // The sequence reached its MAXVALUE, MAX_SCRAPER_ID (see the migrations).
                sqlx::Error::Database(database) if database.code().as_deref() == Some("2200H") => {
                    no_ids_left()
                }
                _ => Error::from(error),
            })?;
        row.try_into()
    }

    async fn update_scraper(&self, scraper: Scraper) -> Result<Scraper> {
        self.writable()?;
        let scraper = storable_scraper(&scraper);
        let query = sqlx::query_as(
            "UPDATE scrapers SET name = $2, schedule = $3, schedule_crontab = $4, handler = $5, config = $6,
                schedule_priority = $7, state = $8, timeout_seconds = $9, retry = $10,
                schedule_timezone = $11, schedule_crontab_dialect = $12, updated_at = now()
             WHERE id = $1
             RETURNING id, name, schedule, schedule_crontab, handler, config, schedule_priority, state, timeout_seconds, retry, schedule_timezone, schedule_crontab_dialect,
                (SELECT count(*) FROM (SELECT pg_notify($13, '')) AS notified) AS notified",
        )
        .bind(scraper.id);
        let row = bind_scraper_columns(query, &scraper)
            .bind(SCRAPERS_CHANNEL)
            .fetch_optional(&self.pool)
            .await?;
        found(row, Error::ScraperNotFound(scraper.id))
    }

    async fn delete_scraper(&self, id: ScraperId) -> Result<Scraper> {
        self.writable()?;
        let row = sqlx::query_as::<_, ScraperRow>(
            "DELETE FROM scrapers WHERE id = $1
             RETURNING id, name, schedule, schedule_crontab, handler, config, schedule_priority, state, timeout_seconds, retry, schedule_timezone, schedule_crontab_dialect,
                (SELECT count(*) FROM (SELECT pg_notify($2, '')) AS notified) AS notified",
        )
        .bind(id)
        .bind(SCRAPERS_CHANNEL)
        .fetch_optional(&self.pool)
        .await?;
        found(row, Error::ScraperNotFound(id))
    }

    async fn update_scraper_state(&self, id: ScraperId, state: Option<String>) -> Result<Scraper> {
        // No NOTIFY: state is not part of the schedule, the scheduler need not wake.
        let row = sqlx::query_as::<_, ScraperRow>(
            "UPDATE scrapers SET state = $2 WHERE id = $1
             RETURNING id, name, schedule, schedule_crontab, handler, config, schedule_priority, state, timeout_seconds, retry, schedule_timezone, schedule_crontab_dialect",
        )
        .bind(id)
        .bind(storable_option(state))
        .fetch_optional(&self.pool)
        .await?;
        found(row, Error::ScraperNotFound(id))
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.wakeups.scraper_changes.subscribe()
    }
}
