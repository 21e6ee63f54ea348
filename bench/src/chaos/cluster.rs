//! A private PostgreSQL cluster for one chaos run, so the run may restart it and cut its
//! connections without touching anyone else's database.
//!
//! It is made with `initdb` of the newest server under `/usr/lib/postgresql/*/bin/` in a
//! temporary folder, listens on a free port of 127.0.0.1 with trust authentication, and is
//! stopped and removed when the [`Cluster`] is dropped: at the end of the run, on an error or
//! on a panic. PostgreSQL refuses to run as root, so as root every command runs as the
//! `postgres` user (`runuser`), which owns the folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sqlx::{Connection, PgConnection};

use crate::BoxResult;

/// The database the replicas share.
pub const DATABASE: &str = "sneakpeek";

/// Folders of runs start with this, followed by the pid of the bench that made them.
const FOLDER_PREFIX: &str = "sneakpeek-chaos-";

pub struct Cluster {
    /// The data folder; the server's own log is `server.log` in it.
    folder: PathBuf,
    bin: PathBuf,
    pub port: u16,
    /// Where the server's log is copied when the cluster is removed.
    log_copy: PathBuf,
}

impl Cluster {
    /// Creates and starts a cluster with the replicas' database in it.
    pub async fn start(logs: &Path) -> BoxResult<Cluster> {
        let bin = newest_server_bin()?;
        remove_leftovers(&bin);
        let folder = std::env::temp_dir().join(format!("{FOLDER_PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(&folder)?;
        let cluster = Cluster {
            folder,
            bin,
            port: super::free_port()?,
            log_copy: logs.join("postgres.log"),
        };
        if is_root() {
            let mut chown = Command::new("chown");
            chown.arg("postgres:postgres").arg(&cluster.folder);
            run_checked(chown).await?;
        }
        let data = cluster.folder.join("data");
        let mut initdb = cluster.command("initdb");
        initdb
            .args([
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data);
        run_checked(initdb).await?;
        // Connections go over TCP; the socket lives in the run's folder so that nothing is
        // shared with the machine's own cluster.
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={} -c max_connections=200",
            cluster.port,
            cluster.folder.display()
        );
        let mut start = cluster.command("pg_ctl");
        start
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(cluster.folder.join("server.log"))
            .arg("-o")
            .arg(options);
        run_checked(start).await?;
        let mut admin = PgConnection::connect(&cluster.url("postgres")).await?;
        sqlx::query(&format!("CREATE DATABASE {DATABASE}"))
            .execute(&mut admin)
            .await?;
        Ok(cluster)
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// `pg_ctl restart -m fast`: every connection is closed, and the call returns once the
    /// server accepts connections again.
    pub async fn restart(&self) -> BoxResult<()> {
        let mut restart = self.command("pg_ctl");
        // Without `-l` again the new server would write to, and hold open, our pipes.
        restart
            .args(["restart", "-m", "fast", "-w", "-t", "60", "-D"])
            .arg(self.folder.join("data"))
            .arg("-l")
            .arg(self.folder.join("server.log"));
        run_checked(restart).await
    }

    /// Ends every backend of the replicas' database; returns how many there were.
    pub async fn terminate_connections(&self) -> BoxResult<i64> {
        // Connected to another database, so this connection is not among the victims.
        let mut admin = PgConnection::connect(&self.url("postgres")).await?;
        let terminated: i64 = sqlx::query_scalar(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(DATABASE)
        .fetch_one(&mut admin)
        .await?;
        Ok(terminated)
    }

    /// A command of the server's binaries, run as the `postgres` user when we are root.
    fn command(&self, program: &str) -> Command {
        command_as_postgres(&self.bin.join(program))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(error) = stop_immediately(&self.bin, &self.folder) {
            eprintln!(
                "could not stop the chaos run's PostgreSQL in {}: {error}",
                self.folder.display()
            );
        }
        let _ = std::fs::copy(self.folder.join("server.log"), &self.log_copy);
        if let Err(error) = std::fs::remove_dir_all(&self.folder) {
            eprintln!("could not remove {}: {error}", self.folder.display());
        }
    }
}

fn command_as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("Uid:")?
                    .split_whitespace()
                    .next()
                    .map(|uid| uid == "0")
            })
        })
        .unwrap_or(false)
}

/// `bin` of the newest PostgreSQL installed the Debian way.
fn newest_server_bin() -> BoxResult<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let newest = std::fs::read_dir(root)
        .map_err(|error| format!("{}: {error}; the chaos run needs a PostgreSQL server installed (apt-get install postgresql)", root.display()))?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let version: u32 = name.split('.').next()?.parse().ok()?;
            root.join(&name).join("bin/initdb").exists().then_some((version, name))
        })
        .max()
        .ok_or_else(|| format!("no {}/*/bin/initdb: install a PostgreSQL server (apt-get install postgresql)", root.display()))?;
    Ok(root.join(newest.1).join("bin"))
}

/// Stops and removes the clusters of runs whose bench process is gone (killed before it could
/// clean up), leaving those of runs still going.
fn remove_leftovers(bin: &Path) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(FOLDER_PREFIX) else {
            continue;
        };
        if Path::new("/proc").join(pid).exists() {
            continue;
        }
        let _ = stop_immediately(bin, &entry.path());
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

/// `pg_ctl stop -m immediate` of the cluster in `folder`, waiting for it to be down.
fn stop_immediately(bin: &Path, folder: &Path) -> std::io::Result<std::process::ExitStatus> {
    command_as_postgres(&bin.join("pg_ctl"))
        .args(["stop", "-m", "immediate", "-D"])
        .arg(folder.join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
}

async fn run_checked(mut command: Command) -> BoxResult<()> {
    command.stdin(Stdio::null());
    let description = format!("{command:?}");
    let output = tokio::process::Command::from(command).output().await?;
    if !output.status.success() {
        return Err(format!(
            "{description} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(())
}
