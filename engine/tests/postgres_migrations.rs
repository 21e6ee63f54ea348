//! The schema in `migrations/` applies to a fresh PostgreSQL database, twice without harm.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use engine::storage::postgres::{PostgresStorage, MIGRATOR};
use engine::testing::TestDatabase;

#[tokio::test]
async fn migrations_create_the_schema_on_a_fresh_database() {
    let database = TestDatabase::create().await;
    let storage = PostgresStorage::connect(&database.url, false)
        .await
        .expect("connects and migrates");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
    )
    .fetch_all(storage.pool())
    .await
    .unwrap();
    for expected in ["leases", "scraper_jobs", "scrapers"] {
        assert!(
            tables.iter().any(|table| table == expected),
            "missing table {expected}: {tables:?}"
        );
    }
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(storage.pool())
        .await
        .unwrap();
    assert_eq!(applied as usize, MIGRATOR.iter().count());

    // A second replica starting against the same database applies nothing and fails nothing.
    PostgresStorage::connect(&database.url, false)
        .await
        .expect("second start");
    let applied_again: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(storage.pool())
        .await
        .unwrap();
    assert_eq!(applied_again, applied);
}

#[tokio::test]
async fn the_schema_allows_one_active_job_per_scraper() {
    let database = TestDatabase::create().await;
    let storage = PostgresStorage::connect(&database.url, false)
        .await
        .unwrap();
    let insert =
        "INSERT INTO scraper_jobs (scraper_id, scraper, status, priority) VALUES (1, '{}', $1, 2)";
    sqlx::query(insert)
        .bind("succeeded")
        .execute(storage.pool())
        .await
        .unwrap();
    sqlx::query(insert)
        .bind("pending")
        .execute(storage.pool())
        .await
        .unwrap();
    let second_active = sqlx::query(insert)
        .bind("started")
        .execute(storage.pool())
        .await;
    assert!(
        second_active.is_err(),
        "a second active job of one scraper must be refused by the database"
    );
}
