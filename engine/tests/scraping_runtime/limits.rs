//! What one job may take: the size of a response, the time of a request, the requests in
//! flight at once.

use std::time::Duration;

use engine::scraper::{Request, RequestError, Runtime, ScraperContext};
use serde_json::{json, Value};

use crate::support::*;

#[tokio::test]
async fn a_response_over_the_size_cap_fails_without_being_read_to_its_end() {
    let server = TestServer::start(None).await;
    let (context, _) = scraper_context(&plain_runtime(), Value::Null);
    let url = server.url("/big");
    let error = context.get(&url).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "GET {url}: the response is larger than 10485760 bytes (limits.max_response_bytes)"
        )
    );

    // A scraper may lower its cap; a body without end stops there.
    let (capped, _) = scraper_context(
        &plain_runtime(),
        json!({"limits": {"max_response_bytes": 65536}}),
    );
    let url = server.url("/endless");
    let error = within(capped.get(&url)).await.unwrap_err().to_string();
    assert_eq!(
        error,
        format!("GET {url}: the response is larger than 65536 bytes (limits.max_response_bytes)")
    );
}

#[tokio::test]
async fn a_request_without_an_answer_fails_at_its_timeout() {
    let server = TestServer::start(None).await;
    let (context, _) = scraper_context(&plain_runtime(), json!({"limits": {"timeout": 0.5}}));
    let url = server.url("/gate?open_at=1000");
    let error = within(context.get(&url)).await.unwrap_err();
    assert!(matches!(error, RequestError::TimedOut { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        format!("GET {url} timed out: no complete answer within 0.5 s (limits.timeout)")
    );
}

#[tokio::test]
async fn robots_txt_is_read_up_to_its_own_cap() {
    let server = TestServer::with_endless_robots_txt("User-agent: *\nDisallow: /private\n").await;
    let (context, _) = scraper_context(
        &runtime(
            json!({"rate_limiter": {"enabled": false}, "robots_txt": {"violation_strategy": "throw"}}),
        ),
        Value::Null,
    );
    let error = within(context.get(server.url("/private/page")))
        .await
        .unwrap_err();
    assert!(
        matches!(error, RequestError::RobotsTxtDisallowed { .. }),
        "{error}"
    );
    let allowed = within(context.get(server.url("/public/page")))
        .await
        .unwrap();
    assert_eq!(allowed.text(), "public");
}

/// `count` requests to a gate that opens at the `open_at`th arrival, each given `timeout`.
fn gated(server: &TestServer, count: usize, open_at: usize, timeout: Duration) -> Vec<Request> {
    (0..count)
        .map(|i| {
            Request::get(server.url(&format!("/gate?open_at={open_at}&i={i}"))).timeout(timeout)
        })
        .collect()
}

#[tokio::test]
async fn request_all_with_max_concurrency_zero_sends_the_default_four_at_a_time() {
    let server = TestServer::start(None).await;
    let (context, _) = scraper_context(&plain_runtime(), Value::Null);
    // The gate opens at the fifth arrival. The fifth request is sent only once the first has
    // ended, and the first can only end by timing out at the gate.
    let requests = gated(&server, 8, 5, Duration::from_secs(1));
    let outcomes = within(context.request_all_settled(requests, 0)).await;
    assert!(
        matches!(outcomes[0], Err(RequestError::TimedOut { .. })),
        "{:?}",
        outcomes[0]
    );
    assert!(
        outcomes[4..].iter().all(Result::is_ok),
        "once the fifth was sent the gate opened: {outcomes:?}"
    );
}

#[tokio::test]
async fn a_job_never_has_more_than_sixteen_requests_in_flight() {
    let server = TestServer::start(None).await;
    let (context, _) = scraper_context(&plain_runtime(), Value::Null);
    // Twenty requests at once, from as many tasks, to a gate that opens at the seventeenth
    // arrival: it can only open once one of the first sixteen has timed out and made room.
    let tasks: Vec<_> = gated(&server, 20, 17, Duration::from_secs(2))
        .into_iter()
        .map(|request| {
            let context = context.clone();
            tokio::spawn(async move { context.request(request).await })
        })
        .collect();
    let mut timed_out = 0;
    for task in tasks {
        match within(task).await.unwrap() {
            Ok(response) => assert_eq!(response.text(), "through"),
            Err(RequestError::TimedOut { .. }) => timed_out += 1,
            Err(error) => panic!("{error}"),
        }
    }
    assert!(
        (1..=16).contains(&timed_out),
        "{timed_out} requests timed out waiting for a seventeenth"
    );
}

#[test]
fn limits_over_the_operators_ceilings_are_refused() {
    let mut settings = runtime_settings(json!({}));
    settings.max_fetch_timeout = Duration::from_secs(60);
    settings.max_fetch_bytes = 20_000_000;
    let runtime = Runtime::from_settings(settings.clone()).unwrap();
    let refused = |plugins: Value| {
        let scraper = scraper("test", Value::Null, plugins);
        let hooks = RecordingHooks::new(scraper.clone());
        match ScraperContext::new(scraper, hooks, &runtime) {
            Ok(_) => panic!("the limits should have been refused"),
            Err(error) => error.to_string(),
        }
    };
    assert_eq!(
        refused(json!({"limits": {"timeout": 120}})),
        "invalid config.plugins.limits.timeout: 120 s is over the operator's maximum of 60 s (--max-fetch-timeout-seconds)"
    );
    assert_eq!(
        refused(json!({"limits": {"max_response_bytes": 30_000_000}})),
        "invalid config.plugins.limits.max_response_bytes: 30000000 is over the operator's maximum of 20000000 (--max-fetch-bytes)"
    );
    assert_eq!(
        refused(json!({"limits": {"timeout": 0}})),
        "invalid config.plugins.limits.timeout: must be a positive number of seconds, got 0"
    );
    assert_eq!(
        refused(json!({"limits": {"timeout": 1e300}})),
        "invalid config.plugins.limits.timeout: is too large to be a duration"
    );
    // Up to the ceilings is fine.
    scraper_context(
        &runtime,
        json!({"limits": {"timeout": 60, "max_response_bytes": 20_000_000}}),
    );

    // The operator's own defaults must fit too.
    settings.middleware.limits.timeout = 61.0;
    let Err(error) = Runtime::from_settings(settings) else {
        panic!("defaults over the ceiling are refused")
    };
    assert_eq!(
        error.to_string(),
        "invalid middleware settings limits.timeout: 61 s is over the operator's maximum of 60 s (--max-fetch-timeout-seconds)"
    );
}

#[test]
fn a_scraper_without_a_timeout_gets_the_operators_default_job_timeout() {
    let mut settings = runtime_settings(json!({}));
    assert_eq!(settings.default_job_timeout_seconds, 3600);
    settings.default_job_timeout_seconds = 90;
    let runtime = Runtime::from_settings(settings).unwrap();
    let mut scraper = scraper("test", Value::Null, Value::Null);
    assert_eq!(runtime.job_timeout_seconds(&scraper), 90);
    scraper.timeout_seconds = Some(5);
    assert_eq!(runtime.job_timeout_seconds(&scraper), 5);
}
