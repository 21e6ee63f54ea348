//! The faults: which ones, in what order, and how each is injected and timed.
//!
//! The order comes from a seeded generator, so a seed replays the same faults on the same
//! replicas with the same pauses. It deals the kinds in rounds, each round a shuffle of all
//! six, so that every kind occurs once in any six consecutive faults.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Empty};
use hyper::header::{ACCEPT, HOST};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::sync::oneshot;

use super::cluster::Cluster;
use super::replicas::{Replicas, LEASE_SECONDS, SHUTDOWN_GRACE_SECONDS};
use crate::BoxResult;

/// How long the leader stays frozen: longer than its lease plus the failover goal, so that a
/// failover within the goal can be seen.
pub const FREEZE: Duration = Duration::from_secs(LEASE_SECONDS + 5);
/// How long a SIGTERMed replica gets to exit before it is killed.
pub const TERM_BOUND: Duration = Duration::from_secs(SHUTDOWN_GRACE_SECONDS + 5);
/// How long a failover after a kill is waited for.
const FAILOVER_BOUND: Duration = Duration::from_secs(30);
/// How long a replica (re)start, or every replica's readiness after a database fault, is
/// waited for.
pub const READY_BOUND: Duration = Duration::from_secs(60);
/// How long the replicas get to be ready with one leader between faults.
const SETTLE_BOUND: Duration = Duration::from_secs(30);
/// How long a killed replica stays down before it is started again.
const DOWNTIME: Duration = Duration::from_secs(1);
const POLL_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    KillReplica,
    KillLeader,
    TermWithLiveStream,
    FreezeLeader,
    TerminateConnections,
    RestartPostgres,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::KillReplica,
        Kind::KillLeader,
        Kind::TermWithLiveStream,
        Kind::FreezeLeader,
        Kind::TerminateConnections,
        Kind::RestartPostgres,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            Kind::KillReplica => "SIGKILL of a replica",
            Kind::KillLeader => "SIGKILL of the leader",
            Kind::TermWithLiveStream => "SIGTERM with a live stream open",
            Kind::FreezeLeader => "SIGSTOP of the leader",
            Kind::TerminateConnections => "pg_terminate_backend of every connection",
            Kind::RestartPostgres => "PostgreSQL restart",
        }
    }
}

/// xorshift64*, seeded through splitmix64 so that close seeds give unrelated sequences.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)).max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..bound`.
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    /// A duration in `from..to`, to the millisecond.
    pub fn between(&mut self, from: Duration, to: Duration) -> Duration {
        let span = (to - from).as_millis().max(1) as usize;
        from + Duration::from_millis(self.below(span) as u64)
    }
}

/// The kinds of `count` faults in order.
pub fn plan(count: usize, rng: &mut Rng) -> Vec<Kind> {
    let mut kinds = Vec::with_capacity(count);
    while kinds.len() < count {
        let mut round = Kind::ALL;
        for index in (1..round.len()).rev() {
            round.swap(index, rng.below(index + 1));
        }
        kinds.extend(round.into_iter().take(count - kinds.len()));
    }
    kinds
}

/// One fault as injected.
#[derive(Debug, Clone, Serialize)]
pub struct Fault {
    pub number: usize,
    pub kind: Kind,
    pub at: DateTime<Utc>,
    /// False when it could not be injected (see the note); it then counts nowhere.
    pub injected: bool,
    pub replica: Option<usize>,
    pub pid: Option<u32>,
    /// What was timed, in seconds: the failover (leader faults), the exit (SIGTERM), every
    /// replica ready again (database faults), the restarted replica ready (SIGKILL of a
    /// replica). `None` when it did not happen within its bound.
    pub seconds: Option<f64>,
    pub note: String,
}

/// A replica process that stopped running without finishing its work: killed (`to` is
/// `None`) or frozen until `to`.
#[derive(Debug, Clone, Serialize)]
pub struct Interruption {
    pub pid: u32,
    pub from: DateTime<Utc>,
    pub to: Option<DateTime<Utc>>,
}

/// Injects faults into the replicas and the database.
pub struct Injector<'a> {
    pub replicas: &'a mut Replicas,
    pub cluster: &'a Cluster,
    /// A scraper with jobs, whose live stream is held open on a replica told to stop.
    pub streamed_scraper: i64,
    pub rng: Rng,
    pub interruptions: Vec<Interruption>,
}

impl Injector<'_> {
    pub async fn inject(&mut self, number: usize, kind: Kind) -> BoxResult<Fault> {
        let mut fault = Fault {
            number,
            kind,
            at: Utc::now(),
            injected: true,
            replica: None,
            pid: None,
            seconds: None,
            note: String::new(),
        };
        match kind {
            Kind::KillReplica => {
                let replica = self.rng.below(self.replicas.len());
                fault.at = Utc::now();
                let pid = self.replicas.kill(replica).await?;
                self.interrupted(pid, fault.at, None);
                tokio::time::sleep(DOWNTIME).await;
                fault.seconds = self
                    .restart(replica, &mut fault.note)
                    .await
                    .map(|ready| ready.as_secs_f64());
                fault.note.insert_str(
                    0,
                    &format!("down {DOWNTIME:?}; timed: its restart until ready"),
                );
                (fault.replica, fault.pid) = (Some(replica), Some(pid));
            }
            Kind::KillLeader => {
                let Some(leader) = self.leader().await else {
                    fault.injected = false;
                    fault.note =
                        format!("not injected: no single replica led within {SETTLE_BOUND:?}");
                    return Ok(fault);
                };
                fault.at = Utc::now();
                let killed = Instant::now();
                let pid = self.replicas.kill(leader).await?;
                self.interrupted(pid, fault.at, None);
                let failover = self.failover(leader, killed, FAILOVER_BOUND).await;
                fault.seconds = failover.map(|failover| failover.as_secs_f64());
                fault.note = match failover {
                    Some(_) => "another replica leads".to_owned(),
                    None => format!("no other replica led within {FAILOVER_BOUND:?}"),
                };
                self.restart(leader, &mut fault.note).await;
                (fault.replica, fault.pid) = (Some(leader), Some(pid));
            }
            Kind::FreezeLeader => {
                let Some(leader) = self.leader().await else {
                    fault.injected = false;
                    fault.note =
                        format!("not injected: no single replica led within {SETTLE_BOUND:?}");
                    return Ok(fault);
                };
                fault.at = Utc::now();
                let frozen = Instant::now();
                let pid = self.replicas.freeze(leader).await?;
                let failover = self.failover(leader, frozen, FREEZE).await;
                // Frozen for the whole period either way: what the old leader does when it
                // wakes up to a new one is part of the test.
                tokio::time::sleep_until((frozen + FREEZE).into()).await;
                self.replicas.thaw(leader).await?;
                self.interrupted(pid, fault.at, Some(Utc::now()));
                fault.seconds = failover.map(|failover| failover.as_secs_f64());
                fault.note = match failover {
                    Some(_) => format!("another replica leads; thawed after {FREEZE:?}"),
                    None => format!("no other replica led during the {FREEZE:?} freeze"),
                };
                if let Err(error) = self.replicas.wait_ready(leader, READY_BOUND).await {
                    fault
                        .note
                        .push_str(&format!("; not ready after the thaw: {error}"));
                }
                (fault.replica, fault.pid) = (Some(leader), Some(pid));
            }
            Kind::TermWithLiveStream => {
                let replica = self.rng.below(self.replicas.len());
                let path = format!("/live/scrapers/{}/jobs", self.streamed_scraper);
                let stream = LiveStream::open(self.replicas.addresses[replica], &path).await;
                fault.at = Utc::now();
                let signalled = Instant::now();
                let termination = self.replicas.terminate(replica, TERM_BOUND).await?;
                fault.seconds = termination.exited_after.map(|exit| exit.as_secs_f64());
                // The connection closes with the process at the latest.
                let stream_note = match stream {
                    Ok(stream) => match tokio::time::timeout(Duration::from_secs(5), stream.ended)
                        .await
                    {
                        Ok(Ok((ended, how))) => format!(
                            "the live stream {how} {:.2} s after SIGTERM",
                            (ended - signalled).as_secs_f64()
                        ),
                        _ => "the live stream was still open after the process was gone".to_owned(),
                    },
                    Err(error) => format!("the live stream could not be opened: {error}"),
                };
                fault.note = match termination.exited_after {
                    Some(exit) => format!(
                        "exited {:.2} s after SIGTERM; {stream_note}",
                        exit.as_secs_f64()
                    ),
                    None => {
                        self.interrupted(termination.pid, Utc::now(), None);
                        format!("still running {TERM_BOUND:?} after SIGTERM, killed; {stream_note}")
                    }
                };
                self.restart(replica, &mut fault.note).await;
                (fault.replica, fault.pid) = (Some(replica), Some(termination.pid));
            }
            Kind::TerminateConnections => {
                fault.at = Utc::now();
                let terminated = self.cluster.terminate_connections().await?;
                let ready = self.all_ready(Instant::now()).await;
                fault.seconds = ready.map(|ready| ready.as_secs_f64());
                fault.note = format!("{terminated} connections terminated");
            }
            Kind::RestartPostgres => {
                fault.at = Utc::now();
                let restarting = Instant::now();
                self.cluster.restart().await?;
                let restarted = restarting.elapsed();
                let ready = self.all_ready(Instant::now()).await;
                fault.seconds = ready.map(|ready| ready.as_secs_f64());
                fault.note = format!("PostgreSQL was back after {:.2} s", restarted.as_secs_f64());
            }
        }
        Ok(fault)
    }

    /// Brings the replicas back to normal before the next fault: starts any that is not
    /// running, then waits (within [`SETTLE_BOUND`]) until every replica is ready and exactly
    /// one leads. Returns what was wrong, for the run's incidents.
    pub async fn settle(&mut self) -> Vec<String> {
        let mut incidents = Vec::new();
        for index in 0..self.replicas.len() {
            if let Some(ended) = self.replicas.stopped(index) {
                incidents.push(format!("replica {index} {ended}; started again"));
                if let Err(error) = self.replicas.restart(index, READY_BOUND).await {
                    incidents.push(format!(
                        "replica {index} could not be started again: {error}"
                    ));
                }
            }
        }
        let deadline = Instant::now() + SETTLE_BOUND;
        for index in 0..self.replicas.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Err(error) = self.replicas.wait_ready(index, left).await {
                incidents.push(format!("not settled: {error}"));
            }
        }
        let everyone: Vec<usize> = (0..self.replicas.len()).collect();
        loop {
            let leaders = self.replicas.leaders(&everyone).await;
            if leaders.len() == 1 {
                return incidents;
            }
            if Instant::now() > deadline {
                incidents.push(format!(
                    "not settled within {SETTLE_BOUND:?}: replicas {leaders:?} lead"
                ));
                return incidents;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Starts a stopped replica again; how long until it was ready, or why it is not (in
    /// the note; the next settling tries again).
    async fn restart(&mut self, index: usize, note: &mut String) -> Option<Duration> {
        match self.replicas.restart(index, READY_BOUND).await {
            Ok(ready) => Some(ready),
            Err(error) => {
                note.push_str(&format!("; could not be started again: {error}"));
                None
            }
        }
    }

    fn interrupted(&mut self, pid: u32, from: DateTime<Utc>, to: Option<DateTime<Utc>>) {
        self.interruptions.push(Interruption { pid, from, to });
    }

    /// The replica that leads, once exactly one does (within [`SETTLE_BOUND`]).
    async fn leader(&self) -> Option<usize> {
        let everyone: Vec<usize> = (0..self.replicas.len()).collect();
        let deadline = Instant::now() + SETTLE_BOUND;
        loop {
            if let [leader] = self.replicas.leaders(&everyone).await[..] {
                return Some(leader);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// From `since` until a replica other than `victim` leads, within `bound`.
    async fn failover(&self, victim: usize, since: Instant, bound: Duration) -> Option<Duration> {
        let others: Vec<usize> = (0..self.replicas.len())
            .filter(|&index| index != victim)
            .collect();
        loop {
            if !self.replicas.leaders(&others).await.is_empty() {
                return Some(since.elapsed());
            }
            if since.elapsed() > bound {
                return None;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// From `since` until every replica answers `/readyz` with 200, within [`READY_BOUND`].
    async fn all_ready(&self, since: Instant) -> Option<Duration> {
        loop {
            if self.replicas.all_ready().await {
                return Some(since.elapsed());
            }
            if since.elapsed() > READY_BOUND {
                return None;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}

/// A live stream of the UI held open, as a browser tab on a scraper's page holds it.
struct LiveStream {
    /// When the server ended the stream, or the connection broke, and which.
    ended: oneshot::Receiver<(Instant, String)>,
}

impl LiveStream {
    /// Opens the stream and waits for its first event, so it is surely being served.
    async fn open(address: SocketAddr, path: &str) -> BoxResult<LiveStream> {
        let stream = tokio::net::TcpStream::connect(address).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the server closes the connection.
            let _ = connection.await;
        });
        let request = Request::get(path)
            .header(HOST, "127.0.0.1")
            .header(ACCEPT, "text/event-stream")
            .body(Empty::<Bytes>::new())?;
        let response = sender.send_request(request).await?;
        if response.status() != 200 {
            return Err(format!("GET {path} answered {}", response.status()).into());
        }
        let mut body = response.into_body();
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match body.frame().await {
                    Some(Ok(frame))
                        if frame.data_ref().is_some_and(|data| {
                            data.windows(5).any(|window| window == b"data:")
                        }) =>
                    {
                        return Ok(());
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return Err(error.to_string()),
                    None => return Err("the stream ended before its first event".to_owned()),
                }
            }
        })
        .await
        .map_err(|_| "no event within 10 s")??;
        let (ended, ended_receiver) = oneshot::channel();
        tokio::spawn(async move {
            let _sender = sender;
            let how = loop {
                match body.frame().await {
                    Some(Ok(_)) => {}
                    Some(Err(error)) => break format!("broke ({error})"),
                    None => break "was ended by the server".to_owned(),
                }
            };
            let _ = ended.send((Instant::now(), how));
        });
        Ok(LiveStream {
            ended: ended_receiver,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_the_same_plan_with_every_kind_in_each_round() {
        let first = plan(14, &mut Rng::new(7));
        assert_eq!(first, plan(14, &mut Rng::new(7)));
        assert_ne!(first, plan(14, &mut Rng::new(8)));
        for round in first.chunks(6).filter(|round| round.len() == 6) {
            let mut kinds = round.to_vec();
            kinds.sort();
            assert_eq!(kinds, Kind::ALL);
        }
    }

    #[test]
    fn draws_stay_in_range() {
        let mut rng = Rng::new(0);
        for _ in 0..1000 {
            assert!(rng.below(3) < 3);
            let pause = rng.between(Duration::from_millis(1500), Duration::from_secs(3));
            assert!(pause >= Duration::from_millis(1500) && pause < Duration::from_secs(3));
        }
    }
}
