//! The replicas under test: `sneakpeek` processes sharing the private cluster's database, each
//! on a port of its own that it keeps across restarts, each logging to
//! `<logs>/replica-<n>.log` (appended to across restarts, with a marker line per start).
//!
//! Health and leadership are read over HTTP the way an operator would: `GET /readyz` answers
//! 200 when the replica's storage answers, and `GET /metrics` carries the replica's own view
//! of its scheduler, `sneakpeek_replicas{type="active_scheduler"} 1` while it leads. A frozen
//! or dead replica simply does not answer within [`PROBE_TIMEOUT`].

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hyper::Method;
use serde::Serialize;
use tokio::process::{Child, Command};

use crate::http::client::Client;
use crate::BoxResult;

/// The replicas' timeouts, short so that a fault plays out within seconds.
pub const HEARTBEAT_SECONDS: u64 = 1;
/// Several heartbeats, so that one slow round (a database restart) declares nothing dead.
pub const DEAD_TIMEOUT_SECONDS: u64 = 6;
/// The smallest the server accepts is 2.
pub const LEASE_SECONDS: u64 = 3;
pub const SHUTDOWN_GRACE_SECONDS: u64 = 5;
/// An API call longer than this is answered 408, and the load generator gives up on it too.
pub const REQUEST_TIMEOUT_SECONDS: u64 = 5;
/// Every job of the run is kept, so that the audit sees every scheduled fire.
const KEEP_JOBS: u64 = 1_000_000;
/// The target is on 127.0.0.1 and is fetched as fast as the jobs come: no rate limit, and no
/// robots.txt fetch before each new page.
const MIDDLEWARE: &str =
    r#"{"rate_limiter": {"enabled": false}, "robots_txt": {"enabled": false}}"#;
/// The default policy with its delay shortened to the run's scale: a lost worker's job is
/// tried 3 times in all, a second apart.
const DEFAULT_RETRY: &str = r#"{"max_attempts": 3, "backoff": "fixed", "delay_seconds": 1, "max_delay_seconds": 1, "retry_on": ["dead"]}"#;

/// How long a health or leadership probe may take before the replica counts as not answering.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
const POLL_EVERY: Duration = Duration::from_millis(100);

/// Every setting a replica gets, in one place (the database comes from `DATABASE_URL`).
fn flags(port: u16) -> Vec<String> {
    [
        "--listen".to_owned(),
        format!("127.0.0.1:{port}"),
        "--log".to_owned(),
        "info".to_owned(),
        "--middleware".to_owned(),
        MIDDLEWARE.to_owned(),
        "--heartbeat-seconds".to_owned(),
        HEARTBEAT_SECONDS.to_string(),
        "--dead-timeout-seconds".to_owned(),
        DEAD_TIMEOUT_SECONDS.to_string(),
        "--lease-seconds".to_owned(),
        LEASE_SECONDS.to_string(),
        "--shutdown-grace-seconds".to_owned(),
        SHUTDOWN_GRACE_SECONDS.to_string(),
        "--request-timeout-seconds".to_owned(),
        REQUEST_TIMEOUT_SECONDS.to_string(),
        "--keep-jobs".to_owned(),
        KEEP_JOBS.to_string(),
        "--default-retry".to_owned(),
        DEFAULT_RETRY.to_owned(),
        // The target site is on loopback, which the egress policy refuses by default.
        "--egress-allow".to_owned(),
        "127.0.0.1/32".to_owned(),
    ]
    .into()
}

/// The replicas' settings as the run's output states them.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaSettings {
    pub heartbeat_seconds: u64,
    pub dead_timeout_seconds: u64,
    pub lease_seconds: u64,
    pub shutdown_grace_seconds: u64,
    pub request_timeout_seconds: u64,
    pub keep_jobs: u64,
    pub middleware: &'static str,
    pub default_retry: &'static str,
}

pub fn settings() -> ReplicaSettings {
    ReplicaSettings {
        heartbeat_seconds: HEARTBEAT_SECONDS,
        dead_timeout_seconds: DEAD_TIMEOUT_SECONDS,
        lease_seconds: LEASE_SECONDS,
        shutdown_grace_seconds: SHUTDOWN_GRACE_SECONDS,
        request_timeout_seconds: REQUEST_TIMEOUT_SECONDS,
        keep_jobs: KEEP_JOBS,
        middleware: MIDDLEWARE,
        default_retry: DEFAULT_RETRY,
    }
}

/// What the load generator and the target need to know of the replicas, shared with them:
/// which ones take API calls, and which processes they are.
pub struct Roster {
    slots: Mutex<Vec<Slot>>,
    turn: AtomicUsize,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    address: SocketAddr,
    pid: Option<u32>,
    /// Off while the replica is down or frozen, as a load balancer's health check would have it.
    serving: bool,
}

impl Roster {
    pub fn new(addresses: Vec<SocketAddr>) -> Roster {
        let slots = addresses
            .into_iter()
            .map(|address| Slot {
                address,
                pid: None,
                serving: false,
            })
            .collect();
        Roster {
            slots: Mutex::new(slots),
            turn: AtomicUsize::new(0),
        }
    }

    pub fn set_pid(&self, index: usize, pid: Option<u32>) {
        self.slots.lock().expect("not poisoned")[index].pid = pid;
    }

    fn set_serving(&self, index: usize, serving: bool) {
        self.slots.lock().expect("not poisoned")[index].serving = serving;
    }

    /// The next serving replica, round-robin.
    pub fn next_serving(&self) -> Option<(usize, SocketAddr)> {
        let slots = self.slots.lock().expect("not poisoned");
        let serving: Vec<(usize, SocketAddr)> = slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.serving)
            .map(|(index, slot)| (index, slot.address))
            .collect();
        if serving.is_empty() {
            return None;
        }
        Some(serving[self.turn.fetch_add(1, Ordering::Relaxed) % serving.len()])
    }

    /// The processes of the replicas running now.
    pub fn pids(&self) -> Vec<u32> {
        self.slots
            .lock()
            .expect("not poisoned")
            .iter()
            .filter_map(|slot| slot.pid)
            .collect()
    }
}

/// One process of a replica, from its start to its end.
#[derive(Debug, Clone, Serialize)]
pub struct Incarnation {
    pub replica: usize,
    pub pid: u32,
    pub started: DateTime<Utc>,
}

/// How a SIGTERM ended.
pub struct Termination {
    pub pid: u32,
    /// From the signal to the exit; `None` when it had not exited within the bound and was
    /// killed.
    pub exited_after: Option<Duration>,
}

pub struct Replicas {
    binary: PathBuf,
    database_url: String,
    logs: PathBuf,
    pub addresses: Vec<SocketAddr>,
    children: Vec<Option<Child>>,
    pub roster: Arc<Roster>,
    pub incarnations: Vec<Incarnation>,
}

impl Replicas {
    /// Picks the ports; nothing runs until [`Replicas::start`].
    pub fn new(
        binary: &Path,
        database_url: String,
        logs: &Path,
        count: usize,
    ) -> BoxResult<Replicas> {
        let addresses = (0..count)
            .map(|_| super::free_port().map(|port| SocketAddr::from(([127, 0, 0, 1], port))))
            .collect::<BoxResult<Vec<_>>>()?;
        Ok(Replicas {
            binary: binary.to_owned(),
            database_url,
            logs: logs.to_owned(),
            roster: Arc::new(Roster::new(addresses.clone())),
            addresses,
            children: (0..count).map(|_| None).collect(),
            incarnations: Vec::new(),
        })
    }

    pub fn len(&self) -> usize {
        self.addresses.len()
    }

    pub fn pid(&self, index: usize) -> Option<u32> {
        self.children[index].as_ref().and_then(Child::id)
    }

    pub fn log(&self, index: usize) -> PathBuf {
        self.logs.join(format!("replica-{index}.log"))
    }

    /// Starts every replica at once and waits until each is ready.
    pub async fn start_all(&mut self, timeout: Duration) -> BoxResult<()> {
        for index in 0..self.len() {
            self.spawn(index)?;
        }
        for index in 0..self.len() {
            self.wait_ready(index, timeout).await?;
        }
        Ok(())
    }

    /// Starts a replica that is down and waits until it is ready; returns how long that took.
    pub async fn restart(&mut self, index: usize, timeout: Duration) -> BoxResult<Duration> {
        let started = Instant::now();
        self.spawn(index)?;
        self.wait_ready(index, timeout).await?;
        Ok(started.elapsed())
    }

    fn spawn(&mut self, index: usize) -> BoxResult<()> {
        let path = self.log(index);
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        let start = self
            .incarnations
            .iter()
            .filter(|incarnation| incarnation.replica == index)
            .count()
            + 1;
        writeln!(
            log,
            "----- sneakpeek-bench chaos: start {start} of replica {index}, {} -----",
            Utc::now()
        )?;
        let mut command = Command::new(&self.binary);
        command.args(flags(self.addresses[index].port()));
        // Only the run's settings apply, whatever the caller's environment holds.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SNEAKPEEK_") {
                command.env_remove(name);
            }
        }
        let child = command
            .env("DATABASE_URL", &self.database_url)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| format!("{}: {error}", self.binary.display()))?;
        let pid = child.id().ok_or("the replica exited at once")?;
        self.children[index] = Some(child);
        self.roster.set_pid(index, Some(pid));
        self.incarnations.push(Incarnation {
            replica: index,
            pid,
            started: Utc::now(),
        });
        Ok(())
    }

    /// `None` while the replica's process runs; otherwise how it ended, and it is taken out
    /// of the rotation.
    pub fn stopped(&mut self, index: usize) -> Option<String> {
        let ended = match self.children[index].as_mut().map(Child::try_wait) {
            None => "not running".to_owned(),
            Some(Ok(None)) => return None,
            Some(Ok(Some(status))) => format!("exited on its own ({status})"),
            Some(Err(error)) => format!("could not be checked: {error}"),
        };
        self.children[index] = None;
        self.roster.set_serving(index, false);
        self.roster.set_pid(index, None);
        Some(ended)
    }

    /// Waits until the replica answers `/readyz` with 200, then puts it in the rotation.
    pub async fn wait_ready(&mut self, index: usize, timeout: Duration) -> BoxResult<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.children[index]
                .as_mut()
                .ok_or("the replica is not running")?
                .try_wait()?
            {
                return Err(format!(
                    "replica {index} exited ({status}); see {}",
                    self.log(index).display()
                )
                .into());
            }
            if self.ready(index).await {
                self.roster.set_serving(index, true);
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "replica {index} was not ready within {timeout:?}; see {}",
                    self.log(index).display()
                )
                .into());
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    pub async fn ready(&self, index: usize) -> bool {
        matches!(
            probe(self.addresses[index], "/readyz").await,
            Some((200, _))
        )
    }

    /// Whether every replica answers `/readyz` with 200.
    pub async fn all_ready(&self) -> bool {
        let checks = (0..self.len()).map(|index| self.ready(index));
        futures_util::future::join_all(checks)
            .await
            .into_iter()
            .all(|ready| ready)
    }

    /// The replicas among `among` whose `/metrics` says their scheduler leads.
    pub async fn leaders(&self, among: &[usize]) -> Vec<usize> {
        let probes = among.iter().map(|&index| async move {
            let (status, body) = probe(self.addresses[index], "/metrics").await?;
            (status == 200 && leads(&String::from_utf8_lossy(&body))).then_some(index)
        });
        futures_util::future::join_all(probes)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// SIGKILL, and waits for the process to be gone; returns its pid.
    pub async fn kill(&mut self, index: usize) -> BoxResult<u32> {
        self.roster.set_serving(index, false);
        let mut child = self.children[index]
            .take()
            .ok_or("the replica is not running")?;
        let pid = child.id().ok_or("the replica has already exited")?;
        child.kill().await?;
        self.roster.set_pid(index, None);
        Ok(pid)
    }

    /// SIGTERM, then waits up to `bound` for the exit (the child's exit is signalled, no
    /// polling); past it the process is killed. The replica stays in the rotation until it
    /// exits: a shutting-down replica still answers what it accepts.
    pub async fn terminate(&mut self, index: usize, bound: Duration) -> BoxResult<Termination> {
        let pid = self.pid(index).ok_or("the replica is not running")?;
        signal(pid, "TERM").await?;
        let sent = Instant::now();
        let child = self.children[index]
            .as_mut()
            .ok_or("the replica is not running")?;
        let exited_after = match tokio::time::timeout(bound, child.wait()).await {
            Ok(exit) => {
                exit?;
                Some(sent.elapsed())
            }
            Err(_) => {
                child.kill().await?;
                None
            }
        };
        self.children[index] = None;
        self.roster.set_serving(index, false);
        self.roster.set_pid(index, None);
        Ok(Termination { pid, exited_after })
    }

    /// SIGSTOP: the process stays, its connections stay open, nothing in it runs.
    pub async fn freeze(&self, index: usize) -> BoxResult<u32> {
        self.roster.set_serving(index, false);
        let pid = self.pid(index).ok_or("the replica is not running")?;
        signal(pid, "STOP").await?;
        Ok(pid)
    }

    /// SIGCONT; it goes back into the rotation once it answers `/readyz` again.
    pub async fn thaw(&self, index: usize) -> BoxResult<()> {
        let pid = self.pid(index).ok_or("the replica is not running")?;
        signal(pid, "CONT").await
    }
}

/// Sends a signal with `kill(1)`.
async fn signal(pid: u32, name: &str) -> BoxResult<()> {
    let status = Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .status()
        .await?;
    if !status.success() {
        return Err(format!("kill -s {name} {pid} failed ({status})").into());
    }
    Ok(())
}

/// A GET on a fresh connection, or `None` when the replica does not answer in time.
async fn probe(address: SocketAddr, path: &str) -> Option<(u16, Bytes)> {
    tokio::time::timeout(PROBE_TIMEOUT, async {
        let mut client = Client::connect(address).await.ok()?;
        client.send(Method::GET, path, Bytes::new()).await.ok()
    })
    .await
    .ok()
    .flatten()
}

/// Whether a replica's Prometheus text says its scheduler leads.
fn leads(metrics: &str) -> bool {
    metrics.lines().any(|line| {
        line.strip_prefix(r#"sneakpeek_replicas{type="active_scheduler"}"#)
            .is_some_and(|value| value.trim().parse::<f64>().is_ok_and(|value| value == 1.0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leadership_is_read_from_the_gauge() {
        let leading = "sneakpeek_replicas{type=\"scheduler\"} 1\nsneakpeek_replicas{type=\"active_scheduler\"} 1\n";
        let following = "sneakpeek_replicas{type=\"scheduler\"} 1\nsneakpeek_replicas{type=\"active_scheduler\"} 0\n";
        assert!(leads(leading));
        assert!(!leads(following));
        assert!(!leads(""));
    }

    #[test]
    fn the_rotation_skips_replicas_that_do_not_serve() {
        let addresses: Vec<SocketAddr> = (1..=3)
            .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
            .collect();
        let roster = Roster::new(addresses);
        assert_eq!(roster.next_serving(), None);
        roster.set_serving(0, true);
        roster.set_serving(2, true);
        let picked: Vec<usize> = (0..4)
            .filter_map(|_| roster.next_serving().map(|(index, _)| index))
            .collect();
        assert_eq!(picked, [0, 2, 0, 2]);
    }
}
