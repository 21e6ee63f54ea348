//! What the scraping runtime tests share: a real local HTTP server with fixture pages that
//! records every request it gets, a local forward proxy, and job hooks that record what the
//! context tells the worker.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{any, get};
use axum::Router;
use engine::model::Scraper;
use engine::scraper::{
    EgressPolicy, EgressRule, JobHooks, LogLevel, Runtime, RuntimeSettings, ScraperContext,
};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: String,
    pub path: String,
    pub user_agent: Option<String>,
}

#[derive(Clone)]
struct ServerState {
    hits: Arc<Mutex<Vec<Hit>>>,
    robots_txt: Option<&'static str>,
    /// `/robots.txt` sends `robots_txt` and then comment lines without end.
    endless_robots_txt: bool,
    /// Requests that have entered `/gate` so far, and how many are inside it now.
    gate_arrivals: watch::Sender<usize>,
    gate_inside: Arc<AtomicUsize>,
    gate_most_inside: Arc<AtomicUsize>,
}

/// A local HTTP server on 127.0.0.1 with an ephemeral port, stopped when the test's runtime
/// ends.
pub struct TestServer {
    pub addr: SocketAddr,
    state: ServerState,
}

pub const ARTICLE_HTML: &str = r#"<!doctype html>
<html><head><title>Fixture article</title></head>
<body>
  <h1 class="title">  Rust   Scraping </h1>
  <p class="price">Price: 42 EUR</p>
  <p class="price">Old price: 50 USD</p>
  <ul>
    <li><a href="/one" class="link">One</a></li>
    <li><a href="/two" class="link">Two <b>bold</b></a></li>
    <li><a class="link">No href</a></li>
  </ul>
  <div id="note">order: ABC-123
reference: xyz-789</div>
</body></html>"#;

pub const FILE_BYTES: usize = 64 * 1024;
/// The size of `/big`: over the default response size cap of 10 MiB.
pub const BIG_BYTES: usize = 11 * 1024 * 1024;

impl TestServer {
    /// `robots_txt`: the body of `/robots.txt`, or `None` for a 404 there.
    pub async fn start(robots_txt: Option<&'static str>) -> TestServer {
        Self::serve(robots_txt, false).await
    }

    /// A server whose `/robots.txt` starts with `rules` and then never ends.
    pub async fn with_endless_robots_txt(rules: &'static str) -> TestServer {
        Self::serve(Some(rules), true).await
    }

    async fn serve(robots_txt: Option<&'static str>, endless_robots_txt: bool) -> TestServer {
        let state = ServerState {
            hits: Arc::default(),
            robots_txt,
            endless_robots_txt,
            gate_arrivals: watch::Sender::new(0),
            gate_inside: Arc::default(),
            gate_most_inside: Arc::default(),
        };
        let app = Router::new()
            .route("/robots.txt", get(robots))
            .route("/echo", any(echo))
            .route("/article", get(|| async { Html(ARTICLE_HTML) }))
            .route("/list/{page}", get(list_page))
            .route(
                "/data.json",
                get(|| async { axum::Json(json!({"data": {"id": 7, "tags": ["a", "b"]}})) }),
            )
            .route("/status/{code}", any(status))
            .route("/file", get(|| async { file_body() }))
            .route("/gate", get(gate))
            .route("/redirect", get(redirect))
            .route("/big", get(|| async { vec![b'x'; BIG_BYTES] }))
            .route("/endless", get(|| async { endless_body(Bytes::new()) }))
            .route("/private/page", get(|| async { "secret" }))
            .route("/public/page", get(|| async { "public" }))
            .layer(axum::middleware::from_fn_with_state(state.clone(), record))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        TestServer { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The same server under another host name, for per-host checks.
    pub fn localhost_url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.addr.port())
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }

    pub fn hits_to(&self, path: &str) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|hit| hit.path == path)
            .collect()
    }

    /// The most requests that were inside `/gate` at once.
    pub fn gate_most_inside(&self) -> usize {
        self.state.gate_most_inside.load(Ordering::SeqCst)
    }

    /// How many requests have entered `/gate` so far.
    pub fn gate_arrivals(&self) -> usize {
        *self.state.gate_arrivals.borrow()
    }

    /// Returns once `count` requests have entered `/gate`.
    pub async fn gate_reached_by(&self, count: usize) {
        let mut arrivals = self.state.gate_arrivals.subscribe();
        arrivals
            .wait_for(|arrivals| *arrivals >= count)
            .await
            .unwrap();
    }
}

pub fn file_body() -> Vec<u8> {
    (0..FILE_BYTES).map(|i| (i % 251) as u8).collect()
}

async fn record(
    State(state): State<ServerState>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let user_agent = request
        .headers()
        .get("user-agent")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    state.hits.lock().unwrap().push(Hit {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        user_agent,
    });
    next.run(request).await
}

async fn robots(State(state): State<ServerState>) -> Response {
    match state.robots_txt {
        Some(body) if state.endless_robots_txt => {
            endless_body(Bytes::from_static(body.as_bytes())).into_response()
        }
        Some(body) => body.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `start`, then comment lines for ever.
fn endless_body(start: Bytes) -> Body {
    let filler = Bytes::from_static(&[b'#'; 8192]);
    let lines = futures_util::stream::repeat(filler);
    Body::from_stream(futures_util::StreamExt::map(
        futures_util::StreamExt::chain(futures_util::stream::iter([start]), lines),
        Ok::<_, Infallible>,
    ))
}

#[derive(serde::Deserialize)]
struct RedirectQuery {
    to: String,
}

/// `302 Found` to the URL in `to`.
async fn redirect(Query(query): Query<RedirectQuery>) -> Redirect {
    Redirect::to(&query.to)
}

async fn echo(method: Method, headers: HeaderMap, body: Bytes) -> axum::Json<Value> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    axum::Json(json!({
        "method": method.as_str(),
        "body": String::from_utf8_lossy(&body),
        "content_type": header("content-type"),
        "x_test": header("x-test"),
    }))
}

async fn status(Path(code): Path<u16>) -> StatusCode {
    StatusCode::from_u16(code).unwrap()
}

/// Pages 1..=3 of a list; each links to the next, the last links back to the first.
async fn list_page(Path(page): Path<u32>) -> Html<String> {
    let next = if page < 3 { page + 1 } else { 1 };
    Html(format!(
        r#"<html><body><h2>Page {page}</h2><span class="item">item {page}a</span><span class="item">item {page}b</span><a class="next" href="/list/{next}">next</a></body></html>"#
    ))
}

#[derive(serde::Deserialize)]
struct GateQuery {
    open_at: usize,
}

/// Holds each request until `open_at` requests have arrived: with `open_at = n`, n requests
/// complete only if the client sends them concurrently.
async fn gate(State(state): State<ServerState>, Query(query): Query<GateQuery>) -> &'static str {
    let inside = state.gate_inside.fetch_add(1, Ordering::SeqCst) + 1;
    state.gate_most_inside.fetch_max(inside, Ordering::SeqCst);
    state.gate_arrivals.send_modify(|arrivals| *arrivals += 1);
    let mut arrivals = state.gate_arrivals.subscribe();
    arrivals
        .wait_for(|arrivals| *arrivals >= query.open_at)
        .await
        .unwrap();
    state.gate_inside.fetch_sub(1, Ordering::SeqCst);
    "through"
}

/// What the proxy forwarded: target URL and `Proxy-Authorization` header.
pub type ProxiedRequests = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A forward HTTP proxy on 127.0.0.1: takes absolute-form requests, remembers their
/// `Proxy-Authorization`, and forwards them.
pub struct TestProxy {
    pub addr: SocketAddr,
    pub seen: ProxiedRequests,
}

impl TestProxy {
    pub async fn start() -> TestProxy {
        let seen: ProxiedRequests = Arc::default();
        let forward = reqwest::Client::builder().no_proxy().build().unwrap();
        let app = Router::new().fallback({
            let seen = seen.clone();
            move |request: Request| {
                let (seen, forward) = (seen.clone(), forward.clone());
                async move {
                    let auth = request
                        .headers()
                        .get("proxy-authorization")
                        .and_then(|value| value.to_str().ok())
                        .map(str::to_owned);
                    let target = request.uri().to_string();
                    seen.lock().unwrap().push((target.clone(), auth));
                    let mut outgoing = forward.request(request.method().clone(), &target);
                    for (name, value) in request.headers() {
                        if name != "proxy-authorization" && name != "host" {
                            outgoing = outgoing.header(name, value);
                        }
                    }
                    let response = outgoing.send().await.unwrap();
                    let status = response.status();
                    let body = response.bytes().await.unwrap();
                    (status, [("x-via", "test-proxy")], Body::from(body)).into_response()
                }
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        TestProxy { addr, seen }
    }
}

/// Job hooks that record heartbeats, logs and state updates, and can play a killed job.
pub struct RecordingHooks {
    pub heartbeats: AtomicUsize,
    pub killed: AtomicBool,
    pub log: Mutex<Vec<(LogLevel, String)>>,
    /// The scraper as "stored": state updates land here.
    pub scraper: Mutex<Scraper>,
    /// Told when the hooks are dropped: whatever ran the job has let go of it.
    dropped: Mutex<Option<oneshot::Sender<()>>>,
}

impl RecordingHooks {
    pub fn new(scraper: Scraper) -> Arc<RecordingHooks> {
        Arc::new(RecordingHooks {
            heartbeats: AtomicUsize::new(0),
            killed: AtomicBool::new(false),
            log: Mutex::default(),
            scraper: Mutex::new(scraper),
            dropped: Mutex::default(),
        })
    }

    /// Resolves once the last holder of these hooks (a context, a script's thread) drops them.
    pub fn released(&self) -> oneshot::Receiver<()> {
        let (sender, receiver) = oneshot::channel();
        *self.dropped.lock().unwrap() = Some(sender);
        receiver
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|(_, line)| line.clone())
            .collect()
    }
}

impl Drop for RecordingHooks {
    fn drop(&mut self) {
        if let Some(dropped) = self.dropped.lock().unwrap().take() {
            let _ = dropped.send(());
        }
    }
}

#[async_trait]
impl JobHooks for RecordingHooks {
    async fn heartbeat(&self) -> Result<(), engine::Error> {
        self.heartbeats.fetch_add(1, Ordering::SeqCst);
        if self.killed.load(Ordering::SeqCst) {
            return Err(engine::Error::PingFinished);
        }
        Ok(())
    }

    async fn update_scraper_state(
        &self,
        state: Option<String>,
    ) -> Result<Option<String>, engine::Error> {
        let mut scraper = self.scraper.lock().unwrap();
        scraper.state = state;
        Ok(scraper.state.clone())
    }

    fn log(&self, level: LogLevel, message: String) {
        self.log.lock().unwrap().push((level, message));
    }
}

/// A scraper of `handler` with `params` and `config.plugins` (`null`: unset).
pub fn scraper(handler: &str, params: Value, plugins: Value) -> Scraper {
    serde_json::from_value(json!({
        "id": 1,
        "name": "test scraper",
        "schedule": "inactive",
        "handler": handler,
        "config": {"params": params, "plugins": plugins},
    }))
    .expect("a valid scraper")
}

/// Runtime settings with `middleware` (JSON, laid over the defaults) as the global middleware
/// settings, and an egress policy that allows the test servers' address, 127.0.0.1.
pub fn runtime_settings(middleware: Value) -> RuntimeSettings {
    RuntimeSettings {
        middleware: serde_json::from_value(middleware).expect("valid test settings"),
        egress: allowing(&["127.0.0.1/32"]),
        ..RuntimeSettings::default()
    }
}

/// An egress policy allowing these ranges and hosts.
pub fn allowing(rules: &[&str]) -> EgressPolicy {
    rules
        .iter()
        .map(|rule| rule.parse::<EgressRule>().expect("a valid rule"))
        .collect()
}

/// A runtime with [`runtime_settings`].
pub fn runtime(middleware: Value) -> Runtime {
    Runtime::from_settings(runtime_settings(middleware)).unwrap()
}

/// Runtime settings for tests that are not about middleware: nothing that adds requests or
/// waits (no robots.txt fetches, no rate limit).
pub fn plain_runtime() -> Runtime {
    runtime(json!({"rate_limiter": {"enabled": false}, "robots_txt": {"enabled": false}}))
}

/// A context for a scraper with `plugins`, and the hooks it reports to.
pub fn scraper_context(runtime: &Runtime, plugins: Value) -> (ScraperContext, Arc<RecordingHooks>) {
    let scraper = scraper("test", Value::Null, plugins);
    let hooks = RecordingHooks::new(scraper.clone());
    let context = ScraperContext::new(scraper, hooks.clone(), runtime).expect("valid plugins");
    (context, hooks)
}

/// A port nothing listens on: bound, then released.
pub async fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/")
}

/// Fails a test that would otherwise hang (e.g. a gate that never opens).
pub async fn within<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), future)
        .await
        .expect("the test did not finish within 20 s")
}
