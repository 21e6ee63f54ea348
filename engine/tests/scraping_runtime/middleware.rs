//! The middleware chain: rate limiter, robots.txt, User-Agent, proxy, request log, and how
//! per-scraper configuration is checked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::model::Scraper;
use engine::scraper::middleware::{
    Acquired, MemoryRateLimitStore, PostgresRateLimitStore, RateLimitStore,
};
use engine::scraper::{Request, RequestError, Runtime, ScraperContext};
use serde_json::{json, Value};

use crate::support::*;

/// Only the rate limiter, `max_requests` per `time_window` seconds, with `strategy`.
fn rate_limited(max_requests: u32, time_window: f64, strategy: &str) -> Runtime {
    runtime(json!({
        "robots_txt": {"enabled": false},
        "rate_limiter": {"enabled": true, "max_requests": max_requests, "time_window": time_window, "rate_limited_strategy": strategy},
    }))
}

#[tokio::test]
async fn rate_limiter_throw_fails_the_third_request_in_the_window_naming_host_limit_and_slot() {
    let server = TestServer::start(None).await;
    let (context, _) = scraper_context(&rate_limited(2, 60.0, "throw"), Value::Null);
    context.get(server.url("/echo")).await.unwrap();
    context.get(server.url("/echo")).await.unwrap();
    let error = context.get(server.url("/echo")).await.unwrap_err();
    assert!(matches!(error, RequestError::RateLimited { .. }));
    let message = error.to_string();
    assert!(
        message.contains("more than 2 calls in the last 60s to the domain 127.0.0.1"),
        "{message}"
    );
    assert!(
        message.contains("Next available call will be permitted at"),
        "{message}"
    );
    assert_eq!(
        server.hits_to("/echo").len(),
        2,
        "the third request never left"
    );
}

#[tokio::test]
async fn rate_limiter_wait_holds_the_third_request_until_a_slot_frees() {
    let server = TestServer::start(None).await;
    let window = Duration::from_millis(600);
    let (context, hooks) =
        scraper_context(&rate_limited(2, window.as_secs_f64(), "wait"), Value::Null);
    let started = Instant::now();
    for _ in 0..3 {
        context.get(server.url("/echo")).await.unwrap();
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= window,
        "the third request went after {elapsed:?}, before the window of {window:?} passed"
    );
    assert_eq!(server.hits_to("/echo").len(), 3);
    assert!(hooks.log_lines().iter().any(
        |line| line.starts_with("Rate limited request to") && line.ends_with("Waiting for it.")
    ));
}

#[tokio::test]
async fn rate_limits_are_per_host() {
    let server = TestServer::start(None).await;
    let (context, _) = scraper_context(&rate_limited(2, 60.0, "throw"), Value::Null);
    for _ in 0..2 {
        context.get(server.url("/echo")).await.unwrap();
        context.get(server.localhost_url("/echo")).await.unwrap();
    }
    assert!(context.get(server.url("/echo")).await.is_err());
    assert!(context.get(server.localhost_url("/echo")).await.is_err());
    assert_eq!(server.hits_to("/echo").len(), 4);
}

#[tokio::test]
async fn rate_limits_are_shared_by_every_job_of_a_runtime() {
    let server = TestServer::start(None).await;
    let shared = rate_limited(2, 60.0, "throw");
    let (first_worker, _) = scraper_context(&shared, Value::Null);
    let (second_worker, _) = scraper_context(&shared, Value::Null);
    first_worker.get(server.url("/echo")).await.unwrap();
    second_worker.get(server.url("/echo")).await.unwrap();
    assert!(matches!(
        first_worker.get(server.url("/echo")).await,
        Err(RequestError::RateLimited { .. })
    ));
    assert!(matches!(
        second_worker.get(server.url("/echo")).await,
        Err(RequestError::RateLimited { .. })
    ));

    // Another process (runtime) has its own windows.
    let (other_process, _) = scraper_context(&rate_limited(2, 60.0, "throw"), Value::Null);
    other_process.get(server.url("/echo")).await.unwrap();
}

#[tokio::test]
async fn a_scraper_can_turn_its_rate_limit_off() {
    let server = TestServer::start(None).await;
    let (context, _) = scraper_context(
        &rate_limited(1, 60.0, "throw"),
        json!({"rate_limiter": {"enabled": false}}),
    );
    for _ in 0..3 {
        context.get(server.url("/echo")).await.unwrap();
    }
}

#[tokio::test]
async fn memory_store_frees_a_slot_when_the_oldest_request_leaves_the_window() {
    let store = MemoryRateLimitStore::default();
    let window = Duration::from_secs(60);
    assert_eq!(
        store.acquire("host", 1, window).await.unwrap(),
        Acquired::Granted
    );
    let Acquired::Limited { retry_after } = store.acquire("host", 1, window).await.unwrap() else {
        panic!("expected a limit")
    };
    assert!(
        retry_after <= window && retry_after > Duration::from_secs(59),
        "{retry_after:?}"
    );
    assert_eq!(
        store.acquire("other host", 1, window).await.unwrap(),
        Acquired::Granted
    );
    assert_eq!(
        store.acquire("host", 1, Duration::ZERO).await.unwrap(),
        Acquired::Granted,
        "an empty window holds nothing"
    );
}

#[tokio::test]
async fn postgres_store_shares_limits_between_replicas() {
    let database = engine::testing::TestDatabase::create().await;
    let storage = engine::storage::postgres::PostgresStorage::connect(&database.url, false)
        .await
        .expect("connects and migrates");
    // Two pools on one database stand for two replicas.
    let other_pool = sqlx::PgPool::connect(&database.url).await.unwrap();
    let replicas = [
        PostgresRateLimitStore::new(storage.pool().clone()),
        PostgresRateLimitStore::new(other_pool),
    ];
    let window = Duration::from_secs(60);

    assert_eq!(
        replicas[0]
            .acquire("example.com|2|60000", 2, window)
            .await
            .unwrap(),
        Acquired::Granted
    );
    assert_eq!(
        replicas[1]
            .acquire("example.com|2|60000", 2, window)
            .await
            .unwrap(),
        Acquired::Granted
    );
    let Acquired::Limited { retry_after } = replicas[0]
        .acquire("example.com|2|60000", 2, window)
        .await
        .unwrap()
    else {
        panic!("the third request in the window must be limited")
    };
    assert!(
        retry_after > Duration::from_secs(55) && retry_after <= window,
        "{retry_after:?}"
    );
    assert!(matches!(
        replicas[1]
            .acquire("example.com|2|60000", 2, window)
            .await
            .unwrap(),
        Acquired::Limited { .. }
    ));
    assert_eq!(
        replicas[1]
            .acquire("other.org|2|60000", 2, window)
            .await
            .unwrap(),
        Acquired::Granted
    );

    // Concurrent callers never get more slots than the limit between them.
    let concurrent: Vec<Acquired> = futures_util::future::join_all(
        (0..10).map(|i| replicas[i % 2].acquire("busy.net|3|60000", 3, window)),
    )
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    assert_eq!(
        concurrent
            .iter()
            .filter(|acquired| **acquired == Acquired::Granted)
            .count(),
        3
    );

    // A runtime on the shared store applies it to requests.
    let server = TestServer::start(None).await;
    let settings = runtime_settings(json!({
        "robots_txt": {"enabled": false},
        "rate_limiter": {"max_requests": 1, "rate_limited_strategy": "throw"},
    }));
    let runtime = Runtime::with_rate_limit_store(
        settings,
        Arc::new(PostgresRateLimitStore::new(storage.pool().clone())),
    )
    .unwrap();
    let (context, _) = scraper_context(&runtime, Value::Null);
    context.get(server.url("/echo")).await.unwrap();
    assert!(matches!(
        context.get(server.url("/echo")).await,
        Err(RequestError::RateLimited { .. })
    ));
}

const ROBOTS_TXT: &str =
    "User-agent: *\nDisallow: /private\n\nUser-agent: PickyBot\nDisallow: /public\n";

/// Only robots.txt, with `strategy`.
fn robots_checked(strategy: &str) -> Runtime {
    runtime(
        json!({"rate_limiter": {"enabled": false}, "robots_txt": {"enabled": true, "violation_strategy": strategy}}),
    )
}

#[tokio::test]
async fn robots_txt_throw_refuses_a_disallowed_path_and_allows_the_rest() {
    let server = TestServer::start(Some(ROBOTS_TXT)).await;
    let (context, _) = scraper_context(&robots_checked("throw"), Value::Null);
    let private = server.url("/private/page");
    let error = context.get(&private).await.unwrap_err();
    assert!(matches!(error, RequestError::RobotsTxtDisallowed { .. }));
    assert!(
        error
            .to_string()
            .starts_with(&format!("robots.txt prohibits requesting {private}")),
        "{error}"
    );
    assert_eq!(
        context
            .get(server.url("/public/page"))
            .await
            .unwrap()
            .text(),
        "public"
    );
    assert!(server.hits_to("/private/page").is_empty());
    assert_eq!(
        server.hits_to("/robots.txt").len(),
        1,
        "robots.txt is fetched once and cached"
    );
}

#[tokio::test]
async fn robots_txt_honours_the_user_agent_of_the_request() {
    let server = TestServer::start(Some(ROBOTS_TXT)).await;
    let (context, _) = scraper_context(&robots_checked("throw"), Value::Null);
    let picky = |path: &str| {
        Request::get(server.url(path)).header("User-Agent", "PickyBot/2.0 (+https://picky.example)")
    };
    assert!(matches!(
        context.request(picky("/public/page")).await,
        Err(RequestError::RobotsTxtDisallowed { .. })
    ));
    assert_eq!(
        context
            .request(picky("/private/page"))
            .await
            .unwrap()
            .text(),
        "secret",
        "PickyBot's group allows /private"
    );
}

#[tokio::test]
async fn robots_txt_log_strategy_logs_the_violation_and_sends_the_request() {
    let server = TestServer::start(Some(ROBOTS_TXT)).await;
    let (context, hooks) = scraper_context(&robots_checked("log"), Value::Null);
    assert_eq!(
        context
            .get(server.url("/private/page"))
            .await
            .unwrap()
            .text(),
        "secret"
    );
    let logged = hooks.log_lines();
    assert!(
        logged
            .iter()
            .any(|line| line.starts_with("robots.txt prohibits requesting")
                && line.contains("Proceeding")),
        "{logged:?}"
    );
}

#[tokio::test]
async fn without_a_robots_txt_everything_is_allowed() {
    let server = TestServer::start(None).await;
    let (context, _) = scraper_context(&robots_checked("throw"), Value::Null);
    assert_eq!(
        context
            .get(server.url("/private/page"))
            .await
            .unwrap()
            .text(),
        "secret"
    );
    assert_eq!(server.hits_to("/robots.txt").len(), 1);
}

#[tokio::test]
async fn user_agent_is_injected_when_missing_and_kept_when_given() {
    let server = TestServer::start(None).await;
    let (context, _) = scraper_context(
        &plain_runtime(),
        json!({"user_agent_injecter": {"browsers": ["firefox"]}}),
    );
    context.get(server.url("/echo")).await.unwrap();
    context
        .request(Request::get(server.url("/echo")).header("User-Agent", "MyBot/1.0"))
        .await
        .unwrap();
    let agents: Vec<String> = server
        .hits_to("/echo")
        .into_iter()
        .map(|hit| hit.user_agent.unwrap_or_default())
        .collect();
    assert!(
        agents[0].starts_with("Mozilla/5.0") && agents[0].contains("Firefox/"),
        "{agents:?}"
    );
    assert_eq!(agents[1], "MyBot/1.0");

    let (without_injection, _) = scraper_context(
        &plain_runtime(),
        json!({"user_agent_injecter": {"enabled": false}}),
    );
    without_injection.get(server.url("/echo")).await.unwrap();
    assert_eq!(server.hits_to("/echo")[2].user_agent, None);
}

#[tokio::test]
async fn proxy_routes_requests_through_the_proxy_with_basic_auth() {
    let server = TestServer::start(None).await;
    let proxy = TestProxy::start().await;
    let plugins = json!({"proxy": {"proxy": format!("http://{}", proxy.addr), "proxy_auth": {"login": "scraper", "password": "s3cret"}}});
    let (context, _) = scraper_context(&plain_runtime(), plugins);
    let response = context.get(server.url("/article")).await.unwrap();
    assert_eq!(response.header("x-via"), Some("test-proxy"));
    assert!(response.text().contains("Fixture article"));
    let seen = proxy.seen.lock().unwrap().clone();
    // "scraper:s3cret" in base64.
    assert_eq!(
        seen,
        [(
            server.url("/article"),
            Some("Basic c2NyYXBlcjpzM2NyZXQ=".to_owned())
        )]
    );
    assert_eq!(server.hits_to("/article").len(), 1);
}

#[tokio::test]
async fn requests_logging_writes_the_request_and_its_status_to_the_job_log() {
    let server = TestServer::start(None).await;
    let (context, hooks) = scraper_context(&plain_runtime(), Value::Null);
    let url = server.url("/status/404");
    context.get(&url).await.unwrap();
    assert_eq!(
        hooks.log_lines(),
        [format!("GET {url}"), format!("GET {url} - 404")]
    );

    let (quiet, quiet_hooks) = scraper_context(
        &plain_runtime(),
        json!({"requests_logging": {"log_request": false}}),
    );
    quiet.get(&url).await.unwrap();
    assert_eq!(quiet_hooks.log_lines(), [format!("GET {url} - 404")]);
}

fn context_error(plugins: Value) -> String {
    let scraper: Scraper = scraper("test", Value::Null, plugins);
    let hooks = RecordingHooks::new(scraper.clone());
    match ScraperContext::new(scraper, hooks, &plain_runtime()) {
        Ok(_) => panic!("the config should have been refused"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn invalid_scraper_middleware_config_is_refused_naming_the_middleware_and_field() {
    assert_eq!(
        context_error(json!({"rate_limiter": {"max_requests": "ten"}})),
        "invalid config.plugins.rate_limiter.max_requests: invalid type: string \"ten\", expected u32"
    );
    assert_eq!(
        context_error(json!({"rate_limiter": {"max_requests": 0}})),
        "invalid config.plugins.rate_limiter.max_requests: must be greater than 0"
    );
    assert_eq!(
        context_error(json!({"rate_limiter": {"time_window": 1e300}})),
        "invalid config.plugins.rate_limiter.time_window: is too large to be a duration"
    );
    assert!(context_error(json!({"rate_limiter": {"max_request": 5}}))
        .starts_with("invalid config.plugins.rate_limiter"));
    assert!(context_error(json!({"rate_limiter": {"max_request": 5}}))
        .contains("unknown field `max_request`"));
    assert!(
        context_error(json!({"robots_txt": {"violation_strategy": "ignore"}})).starts_with(
            "invalid config.plugins.robots_txt.violation_strategy: unknown variant `ignore`"
        )
    );
    assert_eq!(
        context_error(json!({"proxy": {"proxy": "not a url"}})),
        "invalid config.plugins.proxy.proxy: 'not a url' is not a URL: relative URL without a base"
    );
    assert!(context_error(json!({"rate_limiter": 5}))
        .starts_with("invalid config.plugins.rate_limiter: expected an object"));
    assert!(context_error(json!({"rate_limitr": {}}))
        .starts_with("invalid config.plugins.rate_limitr: unknown middleware"));
}

#[test]
fn scraper_overrides_replace_only_the_fields_they_set() {
    let global = Runtime::default();
    let settings = global
        .settings()
        .for_scraper(
            json!({"rate_limiter": {"max_requests": 5}})
                .as_object()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(settings.rate_limiter.max_requests, 5);
    assert_eq!(
        settings.rate_limiter.time_window,
        global.settings().rate_limiter.time_window
    );
    assert_eq!(settings.robots_txt, global.settings().robots_txt);
}

#[tokio::test]
async fn a_scraper_cannot_change_or_switch_off_an_enforced_middleware() {
    let server = TestServer::start(None).await;
    let proxy = TestProxy::start().await;
    let proxy_url = format!("http://{}", proxy.addr);
    let operator = runtime(json!({
        "enforced": ["proxy", "rate_limiter"],
        "robots_txt": {"enabled": false},
        "proxy": {"proxy": proxy_url},
    }));
    let refused = |plugins: Value| {
        let scraper = scraper("test", Value::Null, plugins);
        let hooks = RecordingHooks::new(scraper.clone());
        match ScraperContext::new(scraper, hooks, &operator) {
            Ok(_) => panic!("the plugins should have been refused"),
            Err(error) => error.to_string(),
        }
    };
    let enforced = |middleware: &str| {
        format!("invalid config.plugins.{middleware}: the operator enforces these settings; a scraper cannot change them")
    };
    assert_eq!(
        refused(json!({"proxy": {"proxy": null}})),
        enforced("proxy")
    );
    assert_eq!(
        refused(json!({"proxy": {"proxy": "http://elsewhere.example:3128"}})),
        enforced("proxy")
    );
    assert_eq!(
        refused(json!({"rate_limiter": {"enabled": false}})),
        enforced("rate_limiter")
    );
    assert!(
        refused(json!({"enforced": []}))
            .starts_with("invalid config.plugins.enforced: unknown middleware"),
        "only the operator enforces"
    );

    // Restating the operator's values, or changing what is not enforced, is fine.
    let (context, _) = scraper_context(
        &operator,
        json!({"proxy": {"proxy": proxy_url}, "requests_logging": {"enabled": false}}),
    );
    let response = context.get(server.localhost_url("/article")).await.unwrap();
    assert_eq!(response.header("x-via"), Some("test-proxy"));
}

#[tokio::test]
async fn credentials_in_urls_stay_out_of_the_job_log_and_errors() {
    let server = TestServer::start(None).await;
    let (context, hooks) = scraper_context(&plain_runtime(), Value::Null);
    let url = format!("http://scraper:s3cret@{}/status/404", server.addr);
    let shown = format!("http://***@{}/status/404", server.addr);
    let error = context
        .get(&url)
        .await
        .unwrap()
        .error_for_status()
        .unwrap_err();
    assert_eq!(
        hooks.log_lines(),
        [format!("GET {shown}"), format!("GET {shown} - 404")]
    );
    assert!(!error.to_string().contains("s3cret"), "{error}");

    let closed = closed_port_url()
        .await
        .replace("http://", "http://scraper:s3cret@");
    let error = context.get(&closed).await.unwrap_err().to_string();
    assert!(
        error.contains("http://***@127.0.0.1:") && !error.contains("s3cret"),
        "{error}"
    );
    let error = context
        .get("http://scraper:s3cret@exa mple.com/")
        .await
        .unwrap_err()
        .to_string();
    assert!(!error.contains("s3cret"), "{error}");

    // The operator's proxy credentials neither.
    let closed_proxy = closed_port_url()
        .await
        .replace("http://", "http://operator:hunter2@");
    let operator = runtime(json!({
        "rate_limiter": {"enabled": false},
        "robots_txt": {"enabled": false},
        "proxy": {"proxy": closed_proxy},
    }));
    let (proxied, proxied_hooks) = scraper_context(&operator, Value::Null);
    let error = proxied
        .get(server.localhost_url("/article"))
        .await
        .unwrap_err()
        .to_string();
    assert!(!error.contains("hunter2"), "{error}");
    assert!(
        !proxied_hooks.log_lines().concat().contains("hunter2"),
        "{:?}",
        proxied_hooks.log_lines()
    );
    assert_eq!(
        context_error(json!({"proxy": {"proxy": "http://bob:hunter2@exa mple:3128"}})),
        "invalid config.plugins.proxy.proxy: 'http://***@exa mple:3128' is not a URL: invalid international domain name"
    );
    assert_eq!(
        context_error(
            json!({"proxy": {"proxy": "http://proxy.example:3128", "proxy_auth": {"login": "bob", "password": 123456}}})
        ),
        "invalid config.plugins.proxy.proxy_auth.password: must be a string"
    );
}
