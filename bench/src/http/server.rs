//! The servers under test, as child processes: our `sneakpeek` binary (in memory or on
//! PostgreSQL) and the original Sneakpeek 0.1.7 (Python, in memory).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::process::{Child, Command};

use super::client::Client;
use crate::rss::Memory;
use crate::BoxResult;

pub struct Server {
    child: Child,
    pub address: SocketAddr,
}

/// How to start each server.
pub struct Launchers {
    /// The release `sneakpeek` binary and the site it serves (`target/site`).
    pub ours: PathBuf,
    pub site_root: PathBuf,
    /// The virtualenv's Python and the original's start script.
    pub python: PathBuf,
    pub original: PathBuf,
    /// Where the servers' output goes.
    pub logs: PathBuf,
}

impl Launchers {
    pub async fn ours(&self, database_url: Option<&str>, port: u16) -> BoxResult<Server> {
        let mut command = Command::new(&self.ours);
        command
            .args(["--listen", &format!("127.0.0.1:{port}"), "--log", "warn"])
            .env("LEPTOS_SITE_ROOT", &self.site_root)
            .env("LEPTOS_OUTPUT_NAME", "sneakpeek")
            .env_remove("DATABASE_URL");
        if let Some(url) = database_url {
            command.args(["--database-url", url]);
        }
        let name = if database_url.is_some() {
            "ours-postgres"
        } else {
            "ours-memory"
        };
        Server::start(command, port, &self.logs.join(format!("{name}.log"))).await
    }

    pub async fn original(&self, port: u16) -> BoxResult<Server> {
        let mut command = Command::new(&self.python);
        command
            .arg(&self.original)
            .arg(port.to_string())
            .arg((port + 1).to_string());
        Server::start(command, port, &self.logs.join("original.log")).await
    }
}

impl Server {
    async fn start(mut command: Command, port: u16, log: &Path) -> BoxResult<Server> {
        let output = std::fs::File::create(log)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .kill_on_drop(true)
            .spawn()?;
        let mut server = Server {
            child,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = server.child.try_wait()? {
                return Err(format!(
                    "the server exited at start ({status}); see {}",
                    log.display()
                )
                .into());
            }
            if let Ok(mut client) = Client::connect(server.address).await {
                if client.ok("is_read_only", json!({})).await.is_ok() {
                    return Ok(server);
                }
            }
            if Instant::now() > deadline {
                server.stop().await;
                return Err(format!(
                    "the server did not answer within a minute; see {}",
                    log.display()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn memory(&self) -> BoxResult<Memory> {
        let pid = self.child.id().ok_or("the server has exited")?;
        crate::rss::of_process(&pid.to_string())
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
