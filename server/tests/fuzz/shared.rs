//! What the drivers of one run share: the seeded scrapers, what the fuzzer may have created,
//! the failures found, and the exchange of one body with the server and its check.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use super::calls::{self, Pool};
use super::model::{self, short, Expect, Kind, Seeded};
use super::target::Backend;

/// One class of failure: how often it happened, and its smallest example.
pub struct Example {
    pub count: u64,
    pub request: String,
    pub response: String,
    size: usize,
}

pub struct Shared {
    pub backend: Backend,
    pub seed: u64,
    pub address: String,
    pub port: u16,
    pub max_body: usize,
    /// The seeded scrapers as `get_scraper` gave them before fuzzing.
    pub seeded: Seeded,
    pub seeded_ids: Vec<i64>,
    /// Scrapers the fuzzer may have created: ids the server gave its creates, and ids its
    /// creates chose.
    pub created: Mutex<BTreeSet<i64>>,
    /// Ephemeral runs the fuzzer started: (scraper id, job id).
    pub ephemeral: Mutex<Vec<(i64, i64)>>,
    pub failures: Mutex<BTreeMap<String, Example>>,
    /// HTTP requests sent, JSON-RPC calls in them, calls whose reply was checked.
    pub requests: AtomicU64,
    pub calls: AtomicU64,
    /// Outcomes per method: `result`, or the error code.
    pub outcomes: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
    /// Requests and the time they took (generation included), per kind: where a run's
    /// time goes.
    pub kinds: Mutex<BTreeMap<&'static str, (u64, Duration)>>,
    /// A pooled client (keep-alive, as API clients are) and one that opens a connection per
    /// request, for requests after which the server may close the connection.
    pub client: reqwest::Client,
    pub fresh_client: reqwest::Client,
}

/// How long one request may take before it counts as a hang.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

impl Shared {
    pub fn new(backend: Backend, seed: u64, address: String, port: u16, max_body: usize) -> Shared {
        let client = |pooled: bool| {
            let builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(REQUEST_TIMEOUT);
            let builder = if pooled {
                builder
            } else {
                builder.pool_max_idle_per_host(0)
            };
            builder.build().expect("a client")
        };
        Shared {
            backend,
            seed,
            address,
            port,
            max_body,
            seeded: Seeded::new(),
            seeded_ids: Vec::new(),
            created: Mutex::default(),
            ephemeral: Mutex::default(),
            failures: Mutex::default(),
            requests: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            kinds: Mutex::default(),
            outcomes: Mutex::default(),
            client: client(true),
            fresh_client: client(false),
        }
    }

    /// Counts a request of `kind` that took `took`.
    pub fn time(&self, kind: &'static str, took: Duration) {
        let mut kinds = self.kinds.lock().unwrap();
        let entry = kinds.entry(kind).or_default();
        entry.0 += 1;
        entry.1 += took;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Records a failure of `class`, keeping its smallest request as the example.
    pub fn fail(&self, class: impl Into<String>, request: &[u8], response: &str) {
        let mut failures = self.failures.lock().unwrap();
        let example = failures.entry(class.into()).or_insert(Example {
            count: 0,
            request: String::new(),
            response: String::new(),
            size: usize::MAX,
        });
        example.count += 1;
        if request.len() < example.size {
            example.size = request.len();
            example.request = short(&String::from_utf8_lossy(request), 600);
            example.response = short(response, 600);
        }
    }

    pub fn failure_count(&self) -> usize {
        self.failures.lock().unwrap().len()
    }

    /// Sends one request; `None` (recorded as a failure) when the connection failed or the
    /// request timed out.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
        body_for_report: &[u8],
    ) -> Option<(u16, Vec<u8>)> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let outcome = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body.to_vec()))
        }
        .await;
        match outcome {
            Ok(answer) => Some(answer),
            Err(error) => {
                // Over the limit, the server answers 413 without reading the body and closes
                // the connection: a client still sending may see the reset, not the 413.
                let class = if body_for_report.len() > self.max_body {
                    format!("a body over the limit: the connection failed before the 413 could be read ({})", transport_error(&error))
                } else {
                    format!("connection failed: {}", transport_error(&error))
                };
                self.fail(class, body_for_report, &format!("{error:?}"));
                None
            }
        }
    }

    /// Posts `body` to the JSON-RPC endpoint, checks the answer against the model and
    /// teaches `pool` what the calls created.
    pub async fn exchange(&self, pool: &mut Pool, body: Vec<u8>) -> Option<(u16, Vec<u8>)> {
        // The server may refuse a body over its limit without reading it, and close the
        // connection: such a body goes on a connection of its own.
        let client = if body.len() > 1024 * 1024 {
            &self.fresh_client
        } else {
            &self.client
        };
        let request = client
            .post(self.url("/api/v1/jsonrpc"))
            .header("content-type", "application/json");
        self.exchange_with(pool, request, body).await
    }

    /// [`Shared::exchange`] with a request prepared by the caller (its method, path and
    /// headers), which the model must still answer as the JSON-RPC endpoint.
    pub async fn exchange_with(
        &self,
        pool: &mut Pool,
        request: reqwest::RequestBuilder,
        body: Vec<u8>,
    ) -> Option<(u16, Vec<u8>)> {
        let expect = self.prepare(&body);
        let (status, answer) = self.send(request.body(body.clone()), &body).await?;
        self.conclude(pool, &expect, &body, status, &answer, "");
        Some((status, answer))
    }

    /// Before a body is sent: what the server must answer. Makes sure the body changes only
    /// what the fuzzer owns, and notes the ids its creates choose.
    pub fn prepare(&self, body: &[u8]) -> Expect {
        let (expect, parsed) = model::expect_parsed(body, self.max_body);
        {
            if let Some(parsed) = parsed {
                assert!(
                    !calls::touches_what_it_does_not_own(&parsed, &self.seeded_ids),
                    "generator bug: a body that changes what the fuzzer does not own: {}",
                    short(&parsed.to_string(), 500)
                );
                let refused = matches!(&parsed, Value::Array(calls) if calls.is_empty() || calls.len() > model::MAX_BATCH_CALLS);
                if !refused {
                    self.created
                        .lock()
                        .unwrap()
                        .extend(calls::chosen_ids(&parsed));
                }
                let count = match &parsed {
                    Value::Array(calls) => calls.len() as u64,
                    _ => 1,
                };
                self.calls.fetch_add(count, Ordering::Relaxed);
            }
        }
        expect
    }

    /// After the answer came: checks it (failures named with `what` first) and learns what
    /// the calls created.
    pub fn conclude(
        &self,
        pool: &mut Pool,
        expect: &Expect,
        body: &[u8],
        status: u16,
        answer: &[u8],
        what: &str,
    ) {
        let checked = model::check(expect, status, answer, &self.seeded);
        for (expected, actual) in &checked.pairs {
            if let Kind::Call { method, .. } = &expected.kind {
                let outcome = match actual.get("result") {
                    Some(result) => {
                        self.learn(pool, method, result);
                        "result".to_owned()
                    }
                    None => actual["error"]["code"].to_string(),
                };
                *self
                    .outcomes
                    .lock()
                    .unwrap()
                    .entry(method.clone())
                    .or_default()
                    .entry(outcome)
                    .or_default() += 1;
            }
        }
        if let Some(wrong) = checked.wrong {
            let detail = if wrong.detail.is_empty() {
                String::new()
            } else {
                format!("\n({})", wrong.detail)
            };
            let response = format!("HTTP {status}: {}{detail}", String::from_utf8_lossy(answer));
            self.fail(format!("{what}{}", wrong.class), body, &response);
        }
    }

    /// Records what a successful call created.
    pub fn learn(&self, pool: &mut Pool, method: &str, result: &Value) {
        pool.learn(method, result);
        match method {
            "create_scraper" | "update_scraper" => {
                if let Some(id) = result["id"].as_i64() {
                    self.created.lock().unwrap().insert(id);
                }
            }
            "run_ephemeral" => {
                if let (Some(scraper), Some(job)) =
                    (result["scraper"]["id"].as_i64(), result["id"].as_i64())
                {
                    self.ephemeral.lock().unwrap().push((scraper, job));
                }
            }
            _ => {}
        }
    }

    /// Calls a method that must succeed (for the fuzzer's own bookkeeping); `None` after
    /// recording a failure.
    pub async fn result(&self, method: &str, params: Value) -> Option<Value> {
        let body =
            serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": method, "params": params})
                .to_string();
        let request = self
            .client
            .post(self.url("/api/v1/jsonrpc"))
            .header("content-type", "application/json")
            .body(body.clone());
        let (status, answer) = self.send(request, body.as_bytes()).await?;
        let reply: Option<Value> = serde_json::from_slice(&answer).ok();
        match reply {
            Some(mut reply) if status == 200 && reply.get("result").is_some() => {
                Some(reply["result"].take())
            }
            _ => {
                self.fail(
                    format!("{method}: a call the fuzzer relies on failed"),
                    body.as_bytes(),
                    &format!("HTTP {status}: {}", String::from_utf8_lossy(&answer)),
                );
                None
            }
        }
    }
}

/// What went wrong with a request, without its URL (whose port changes from run to run).
pub fn transport_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if error.is_body() || error.is_decode() {
        "reading the body"
    } else {
        "request"
    };
    let mut source: &dyn std::error::Error = error;
    while let Some(inner) = source.source() {
        source = inner;
    }
    format!("{kind}: {source}")
}
