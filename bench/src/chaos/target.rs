//! The website the chaos run's scrapers fetch: an HTTP server in this process that answers
//! `GET /hit/{token}` with a small page whose `<h1>` is the token, and remembers every fetch:
//! when it arrived, and which replica process made it. `?hold_ms=N` holds the answer back
//! for N ms, so that jobs are in flight when a fault strikes.
//!
//! The fetching process is found from the connection: the kernel's socket table
//! (`/proc/net/tcp`) gives the inode of the client's end, and the replica whose
//! `/proc/<pid>/fd` holds that socket is the one that connected. This tells a result lost
//! because its replica was killed from one lost by a replica that kept running.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::replicas::Roster;
use crate::BoxResult;

/// One fetch of a token's page.
#[derive(Debug, Clone, Copy)]
pub struct Fetch {
    pub at: DateTime<Utc>,
    /// The replica process that fetched it, when it could be told.
    pub pid: Option<u32>,
}

pub struct Target {
    pub address: SocketAddr,
    fetches: Arc<Mutex<HashMap<String, Vec<Fetch>>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Target {
    pub async fn start(roster: Arc<Roster>) -> BoxResult<Target> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let fetches: Arc<Mutex<HashMap<String, Vec<Fetch>>>> = Arc::default();
        let recorded = fetches.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                let roster = roster.clone();
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    // The client's process still holds its end while it waits for the answer.
                    let pid = tokio::task::spawn_blocking(move || {
                        process_of(peer, address, &roster.pids())
                    })
                    .await
                    .ok()
                    .flatten();
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let recorded = recorded.clone();
                        async move {
                            let (response, hold) = answer(&request, pid, &recorded);
                            tokio::time::sleep(hold).await;
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Target {
            address,
            fetches,
            server,
        })
    }

    /// Every fetch so far, by token.
    pub fn fetches(&self) -> HashMap<String, Vec<Fetch>> {
        self.fetches.lock().expect("not poisoned").clone()
    }
}

/// The page of a token on the target at `address`, answered after `hold`.
pub fn page(address: SocketAddr, token: &str, hold: Duration) -> String {
    format!("http://{address}/hit/{token}?hold_ms={}", hold.as_millis())
}

impl Drop for Target {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The answer to a request, and how long to hold it back.
fn answer(
    request: &Request<hyper::body::Incoming>,
    pid: Option<u32>,
    recorded: &Mutex<HashMap<String, Vec<Fetch>>>,
) -> (Response<Full<Bytes>>, Duration) {
    let Some(token) = request
        .uri()
        .path()
        .strip_prefix("/hit/")
        .filter(|token| !token.is_empty())
    else {
        let mut response = Response::new(Full::new(Bytes::from_static(b"not found")));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return (response, Duration::ZERO);
    };
    recorded
        .lock()
        .expect("not poisoned")
        .entry(token.to_owned())
        .or_default()
        .push(Fetch {
            at: Utc::now(),
            pid,
        });
    let page = format!("<!doctype html><html><head><title>chaos</title></head><body><h1>{token}</h1></body></html>");
    let mut response = Response::new(Full::new(Bytes::from(page)));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let hold = request
        .uri()
        .query()
        .and_then(|query| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix("hold_ms="))
        })
        .and_then(|millis| millis.parse().ok())
        .map_or(Duration::ZERO, Duration::from_millis);
    (response, hold)
}

/// Which of `pids` holds the client end of the TCP connection from `peer` to `local`.
fn process_of(peer: SocketAddr, local: SocketAddr, pids: &[u32]) -> Option<u32> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let (wanted_local, wanted_remote) = (socket_hex(peer)?, socket_hex(local)?);
    // Columns: sl, local_address, rem_address, st, tx_queue:rx_queue, tr:tm->when, retrnsmt,
    // uid, timeout, inode.
    let inode = table.lines().skip(1).find_map(|line| {
        let columns: Vec<&str> = line.split_whitespace().collect();
        (columns.get(1) == Some(&wanted_local.as_str())
            && columns.get(2) == Some(&wanted_remote.as_str()))
        .then(|| columns.get(9).map(|inode| (*inode).to_owned()))
        .flatten()
    })?;
    let link = format!("socket:[{inode}]");
    pids.iter().copied().find(|pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
            fds.flatten().any(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|target| target.as_os_str() == link.as_str())
            })
        })
    })
}

/// An IPv4 socket as `/proc/net/tcp` prints it: the address as the kernel stores it (network
/// order read as a native integer), the port in host order, both in upper-case hex.
fn socket_hex(address: SocketAddr) -> Option<String> {
    match address.ip() {
        IpAddr::V4(ip) => Some(format!(
            "{:08X}:{:04X}",
            u32::from_ne_bytes(ip.octets()),
            address.port()
        )),
        IpAddr::V6(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_are_spelled_as_the_kernel_does() {
        let address: SocketAddr = "127.0.0.1:8080".parse().expect("an address");
        let expected = if cfg!(target_endian = "little") {
            "0100007F:1F90"
        } else {
            "7F000001:1F90"
        };
        assert_eq!(socket_hex(address).as_deref(), Some(expected));
    }

    #[tokio::test]
    async fn fetches_are_counted_per_token_and_attributed_to_the_process() {
        let roster = Arc::new(Roster::new(vec![SocketAddr::from(([127, 0, 0, 1], 9))]));
        roster.set_pid(0, Some(std::process::id()));
        let target = Target::start(roster).await.expect("the target starts");
        let mut client = crate::http::client::Client::connect(target.address)
            .await
            .expect("a connection");
        for _ in 0..2 {
            let (status, body) = client
                .send(hyper::Method::GET, "/hit/abc?hold_ms=10", Bytes::new())
                .await
                .expect("an answer");
            assert_eq!(status, 200);
            assert!(String::from_utf8_lossy(&body).contains("<h1>abc</h1>"));
        }
        let (status, _) = client
            .send(hyper::Method::GET, "/other", Bytes::new())
            .await
            .expect("an answer");
        assert_eq!(status, 404);
        let fetches = target.fetches();
        assert_eq!(fetches.len(), 1);
        assert_eq!(fetches["abc"].len(), 2);
        assert!(fetches["abc"]
            .iter()
            .all(|fetch| fetch.pid == Some(std::process::id())));
    }
}
