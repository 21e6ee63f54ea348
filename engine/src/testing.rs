//! Helpers for tests that need a real PostgreSQL: each test gets a database of its own,
//! created fresh and dropped afterwards, so tests run in parallel without seeing each other.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, PgConnection};

/// Where tests may create databases: `SNEAKPEEK_TEST_DATABASE_URL`, else the local server.
pub fn admin_url() -> String {
    std::env::var("SNEAKPEEK_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database that exists until this value is dropped.
pub struct TestDatabase {
    pub url: String,
    name: String,
}

impl TestDatabase {
    /// Creates an empty database. Panics with instructions when no PostgreSQL is reachable:
    /// a PostgreSQL test must fail, never pass by skipping.
    pub async fn create() -> TestDatabase {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let admin = admin_url();
        let name = format!(
            "sneakpeek_test_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut connection = PgConnection::connect(&admin).await.unwrap_or_else(|error| {
            panic!("PostgreSQL tests need a server at {admin} (set SNEAKPEEK_TEST_DATABASE_URL): {error}")
        });
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut connection)
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut connection)
            .await
            .unwrap();
        // Tests need atomicity, not durability: without waiting for fsync they run many
        // times faster on a small machine.
        sqlx::query(&format!(
            "ALTER DATABASE {name} SET synchronous_commit = off"
        ))
        .execute(&mut connection)
        .await
        .unwrap();
        let url = match admin.rfind('/') {
            Some(slash) if !admin[..slash].ends_with('/') => format!("{}/{name}", &admin[..slash]),
            _ => format!("{admin}/{name}"),
        };
        TestDatabase { url, name }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs outside async; a short-lived thread with its own runtime can await.
        let (admin, name) = (admin_url(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                if let Ok(mut connection) = PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut connection)
                        .await;
                }
            });
        })
        .join();
    }
}
