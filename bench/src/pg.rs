//! Fresh PostgreSQL databases for the workloads, and the commit counter they are judged by.
//!
//! Unlike the tests' databases these keep the server's durability settings
//! (`synchronous_commit` stays on): the benchmarks measure what a user gets.

use std::time::Duration;

use sqlx::{Connection, PgConnection};

use crate::BoxResult;

/// Every benchmark database starts with this, so leftovers of an interrupted run are found.
const PREFIX: &str = "sneakpeek_bench_";

/// A database that exists until [`Database::drop`].
pub struct Database {
    pub url: String,
    pub name: String,
    admin: String,
}

impl Database {
    /// Creates an empty database named after its workload.
    pub async fn create(admin: &str, workload: &str) -> BoxResult<Database> {
        // Identifiers are unquoted in the statements below: keep to letters, digits and `_`.
        let workload: String = workload
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let name = format!("{PREFIX}{workload}_{}", std::process::id());
        let mut connection = PgConnection::connect(admin).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut connection)
            .await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut connection)
            .await?;
        let url = match admin.rfind('/') {
            Some(slash) if !admin[..slash].ends_with('/') => format!("{}/{name}", &admin[..slash]),
            _ => format!("{admin}/{name}"),
        };
        Ok(Database {
            url,
            name,
            admin: admin.to_owned(),
        })
    }

    /// Drops the database, closing whatever connections are left.
    pub async fn drop(self) -> BoxResult<()> {
        let mut connection = PgConnection::connect(&self.admin).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut connection)
        .await?;
        Ok(())
    }

    /// Transactions committed in this database so far (`pg_stat_database.xact_commit`).
    ///
    /// Backends report their counts when they go idle, at most once a second, so this first
    /// waits for the reports of the work just done. The query runs on the admin database so
    /// that reading the counter does not move it.
    pub async fn commits(&self) -> BoxResult<i64> {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut connection = PgConnection::connect(&self.admin).await?;
        let (commits,): (i64,) =
            sqlx::query_as("SELECT xact_commit FROM pg_stat_database WHERE datname = $1")
                .bind(&self.name)
                .fetch_one(&mut connection)
                .await?;
        Ok(commits)
    }
}

/// Drops the databases an interrupted earlier run left behind.
pub async fn drop_leftovers(admin: &str) -> BoxResult<()> {
    let mut connection = PgConnection::connect(admin).await?;
    let names: Vec<(String,)> =
        sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE $1")
            .bind(format!("{PREFIX}%"))
            .fetch_all(&mut connection)
            .await?;
    for (name,) in names {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut connection)
            .await?;
    }
    Ok(())
}

/// The server's version, for the machine description.
pub async fn server_version(admin: &str) -> BoxResult<String> {
    let mut connection = PgConnection::connect(admin).await?;
    let (version,): (String,) = sqlx::query_as("SHOW server_version")
        .fetch_one(&mut connection)
        .await?;
    Ok(version)
}
