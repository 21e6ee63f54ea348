//! Other programs measured in the same run: graphile-worker (Node.js, on the same
//! PostgreSQL), pgbench (the machine's durable commit rate), and the `extract` figure of
//! `cargo bench -p engine --bench extract`.

use std::path::Path;

use serde::Deserialize;
use tokio::process::Command;

use crate::pg::Database;
use crate::BoxResult;

/// What `tools/bench/graphile.mjs` prints for a burn-down.
#[derive(Debug, Deserialize)]
pub struct GraphileBurnDown {
    pub jobs_per_second: f64,
    pub commits_per_job: f64,
}

/// What `tools/bench/graphile.mjs` prints for the pickup latency.
#[derive(Debug, Deserialize)]
pub struct GraphilePickup {
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Runs one mode of the graphile-worker script on a fresh database; it prints one JSON line.
pub async fn graphile<T: serde::de::DeserializeOwned>(
    script: &Path,
    admin: &str,
    mode: &str,
    count: usize,
) -> BoxResult<T> {
    let database = Database::create(admin, &format!("graphile_{mode}")).await?;
    let output = Command::new("node")
        .arg(script)
        .arg(mode)
        .arg(count.to_string())
        .env("DATABASE_URL", &database.url)
        .output()
        .await;
    database.drop().await?;
    let output = output?;
    if !output.status.success() {
        return Err(format!(
            "graphile-worker {mode} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let stdout = String::from_utf8(output.stdout)?;
    let last = stdout
        .lines()
        .last()
        .ok_or("graphile-worker printed nothing")?;
    Ok(serde_json::from_str(last)?)
}

/// Durable commits per second with `clients` connections, each transaction one tiny insert,
/// for `seconds`.
pub async fn pgbench(pgbench: &Path, admin: &str, clients: u32, seconds: u32) -> BoxResult<f64> {
    let database = Database::create(admin, &format!("pgbench_{clients}")).await?;
    let result = async {
        {
            use sqlx::Connection;
            let mut connection = sqlx::PgConnection::connect(&database.url).await?;
            sqlx::query("CREATE TABLE commit_probe (id BIGSERIAL PRIMARY KEY, value INT)")
                .execute(&mut connection)
                .await?;
        }
        let script =
            std::env::temp_dir().join(format!("sneakpeek-bench-commit-{}.sql", std::process::id()));
        std::fs::write(&script, "INSERT INTO commit_probe (value) VALUES (1);\n")?;
        let output = Command::new(pgbench)
            .args([
                "--no-vacuum",
                "--client",
                &clients.to_string(),
                "--jobs",
                &clients.min(2).to_string(),
            ])
            .args(["--time", &seconds.to_string(), "--file"])
            .arg(&script)
            .arg(&database.url)
            .output()
            .await?;
        let _ = std::fs::remove_file(&script);
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "pgbench failed: {}{}",
                stdout,
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        parse_pgbench_tps(&stdout)
            .ok_or_else(|| format!("no tps in pgbench's output: {stdout}").into())
    }
    .await;
    database.drop().await?;
    result
}

/// `tps = 812.345678 (without initial connection time)`
fn parse_pgbench_tps(output: &str) -> Option<f64> {
    output.lines().find_map(|line| {
        line.strip_prefix("tps = ")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// The figure `engine/benches/extract.rs` prints: `extract: … , 1234 pages/s`.
pub fn parse_extract(output: &str) -> Option<f64> {
    output
        .lines()
        .filter(|line| line.starts_with("extract:"))
        .find_map(|line| {
            line.trim_end()
                .strip_suffix(" pages/s")?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_figures_other_programs_print() {
        let pgbench =
            "latency average = 3.9 ms\ntps = 255.123456 (without initial connection time)\n";
        assert_eq!(parse_pgbench_tps(pgbench), Some(255.123456));
        let extract = "Running benches/extract.rs\nextract: 5000 pages of 20 KB, 5 fields, concurrency 16: 2.10 s, 2381 pages/s\n";
        assert_eq!(parse_extract(extract), Some(2381.0));
    }
}
