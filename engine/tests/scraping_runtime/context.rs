//! `ScraperContext`: HTTP verbs, many URLs at once, downloads, parsing, state, heartbeats.

use std::sync::atomic::Ordering;

use engine::scraper::{Method, Request, RequestError};
use serde_json::{json, Value};

use crate::support::*;

#[tokio::test]
async fn every_http_verb_reaches_the_server_with_its_method_and_body() {
    let server = TestServer::start(None).await;
    let (context, hooks) = scraper_context(&plain_runtime(), Value::Null);
    let url = server.url("/echo");

    let get: Value = context.get(&url).await.unwrap().json().unwrap();
    assert_eq!(get["method"], "GET");
    let post: Value = context.post(&url, "posted").await.unwrap().json().unwrap();
    assert_eq!(
        (post["method"].as_str(), post["body"].as_str()),
        (Some("POST"), Some("posted"))
    );
    let put: Value = context.put(&url, "replaced").await.unwrap().json().unwrap();
    assert_eq!(
        (put["method"].as_str(), put["body"].as_str()),
        (Some("PUT"), Some("replaced"))
    );
    let delete: Value = context.delete(&url).await.unwrap().json().unwrap();
    assert_eq!(delete["method"], "DELETE");
    let options: Value = context.options(&url).await.unwrap().json().unwrap();
    assert_eq!(options["method"], "OPTIONS");
    let head = context.head(&url).await.unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.bytes().is_empty(), "a HEAD response has no body");

    let custom = Request::new(Method::PATCH, &url)
        .header("X-Test", "yes")
        .json(&json!({"a": 1}));
    let patched: Value = context.request(custom).await.unwrap().json().unwrap();
    assert_eq!(
        patched,
        json!({"method": "PATCH", "body": "{\"a\":1}", "content_type": "application/json", "x_test": "yes"})
    );

    let methods: Vec<String> = server
        .hits_to("/echo")
        .into_iter()
        .map(|hit| hit.method)
        .collect();
    assert_eq!(
        methods,
        ["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH"]
    );
    assert_eq!(
        hooks.heartbeats.load(Ordering::SeqCst),
        7,
        "one heartbeat per request"
    );
}

#[tokio::test]
async fn a_response_with_an_error_status_is_returned_and_error_for_status_names_it() {
    let server = TestServer::start(None).await;
    let (context, _) = scraper_context(&plain_runtime(), Value::Null);
    let url = server.url("/status/503");
    let response = context.get(&url).await.unwrap();
    assert_eq!(response.status(), 503);
    let error = response.error_for_status().unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("GET {url} returned HTTP 503 Service Unavailable")
    );
}

#[tokio::test]
async fn request_all_with_max_concurrency_one_sends_one_request_at_a_time() {
    let server = TestServer::start(None).await;
    let (context, _) = scraper_context(&plain_runtime(), Value::Null);
    // Each request passes the gate alone (it opens at the first arrival).
    let requests = (0..4).map(|i| Request::get(server.url(&format!("/gate?open_at=1&i={i}"))));
    let responses = within(context.request_all(requests, 1)).await.unwrap();
    assert_eq!(responses.len(), 4);
    let urls: Vec<&str> = responses.iter().map(|response| response.url()).collect();
    assert_eq!(
        urls,
        (0..4)
            .map(|i| server.url(&format!("/gate?open_at=1&i={i}")))
            .collect::<Vec<_>>(),
        "responses keep request order"
    );
    assert_eq!(server.gate_most_inside(), 1);
}

#[tokio::test]
async fn request_all_with_max_concurrency_n_keeps_n_requests_in_flight() {
    let server = TestServer::start(None).await;
    let (context, _) = scraper_context(&plain_runtime(), Value::Null);
    // The gate opens only once 4 requests are inside it at the same time.
    let requests = (0..4).map(|i| Request::get(server.url(&format!("/gate?open_at=4&i={i}"))));
    let responses = within(context.request_all(requests, 4)).await.unwrap();
    assert!(responses
        .iter()
        .all(|response| response.text() == "through"));
    assert_eq!(server.gate_most_inside(), 4);
}

#[tokio::test]
async fn request_all_fails_on_an_error_and_the_settled_variant_returns_it_in_place() {
    let server = TestServer::start(None).await;
    let (context, _) = scraper_context(&plain_runtime(), Value::Null);
    let refused = closed_port_url().await;
    let requests = || {
        vec![
            Request::get(server.url("/echo")),
            Request::get(&refused),
            Request::get(server.url("/article")),
        ]
    };

    let error = context.request_all(requests(), 1).await.unwrap_err();
    assert!(matches!(error, RequestError::Network { .. }), "{error}");
    assert!(
        error
            .to_string()
            .starts_with(&format!("GET {refused} failed: ")),
        "{error}"
    );

    let settled = context.request_all_settled(requests(), 0).await;
    assert_eq!(settled.len(), 3);
    assert_eq!(settled[0].as_ref().unwrap().status(), 200);
    assert!(matches!(settled[1], Err(RequestError::Network { .. })));
    assert!(settled[2]
        .as_ref()
        .unwrap()
        .text()
        .contains("Fixture article"));
}

#[tokio::test]
async fn an_invalid_url_fails_with_a_message_naming_it() {
    let (context, hooks) = scraper_context(&plain_runtime(), Value::Null);
    let error = context.get("not a url").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "GET not a url: invalid URL: relative URL without a base"
    );
    let error = context.get("ftp://example.com/file").await.unwrap_err();
    assert!(error.to_string().contains("only http and https"), "{error}");
    assert_eq!(
        hooks.heartbeats.load(Ordering::SeqCst),
        0,
        "nothing was sent"
    );
}

#[tokio::test]
async fn a_refused_heartbeat_fails_the_request_before_it_is_sent() {
    let server = TestServer::start(None).await;
    let (context, hooks) = scraper_context(&plain_runtime(), Value::Null);
    hooks.killed.store(true, Ordering::SeqCst);
    let error = context.get(server.url("/echo")).await.unwrap_err();
    assert!(matches!(error, RequestError::JobStopped { .. }));
    assert!(
        error.to_string().contains("the job is no longer running"),
        "{error}"
    );
    assert!(
        server.hits().is_empty(),
        "the server saw {:?}",
        server.hits()
    );
}

#[tokio::test]
async fn download_writes_the_body_to_the_given_path() {
    let server = TestServer::start(None).await;
    let (context, _) = scraper_context(&plain_runtime(), Value::Null);
    let directory = std::env::temp_dir().join(format!("sneakpeek-test-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join("download.bin");
    let written = context
        .download(Request::get(server.url("/file")), Some(path.clone()))
        .await
        .unwrap();
    assert_eq!(written, path);
    assert_eq!(std::fs::read(&path).unwrap(), file_body());
    std::fs::remove_dir_all(&directory).unwrap();
}

#[tokio::test]
async fn download_without_a_path_writes_a_temporary_file_the_caller_owns() {
    let server = TestServer::start(None).await;
    let (context, _) = scraper_context(&plain_runtime(), Value::Null);
    let path = context
        .download(Request::get(server.url("/file")), None)
        .await
        .unwrap();
    assert!(path.starts_with(std::env::temp_dir()));
    assert_eq!(std::fs::read(&path).unwrap(), file_body());
    std::fs::remove_file(&path).unwrap();
}

#[tokio::test]
async fn download_with_processes_the_file_then_deletes_it() {
    let server = TestServer::start(None).await;
    let (context, _) = scraper_context(&plain_runtime(), Value::Null);
    let (seen_path, size) = context
        .download_with(Request::get(server.url("/file")), |path| async move {
            let size = tokio::fs::metadata(&path).await.unwrap().len();
            (path, size)
        })
        .await
        .unwrap();
    assert_eq!(size, FILE_BYTES as u64);
    assert!(
        !seen_path.exists(),
        "{} should have been deleted",
        seen_path.display()
    );
}

#[tokio::test]
async fn download_all_needs_one_path_per_url_and_a_failed_download_leaves_no_file() {
    let server = TestServer::start(None).await;
    let (context, _) = scraper_context(&plain_runtime(), Value::Null);
    let requests = vec![
        Request::get(server.url("/file")),
        Request::get(server.url("/file")),
    ];
    let mismatch = context
        .download_all(
            requests.clone(),
            Some(vec![std::env::temp_dir().join("only-one")]),
            0,
        )
        .await
        .unwrap_err();
    assert_eq!(
        mismatch.to_string(),
        "expected one file path per URL, got 1 paths for 2 URLs"
    );

    let paths = context.download_all(requests, None, 2).await.unwrap();
    assert_eq!(paths.len(), 2);
    assert_ne!(paths[0], paths[1]);
    for path in paths {
        assert_eq!(std::fs::read(&path).unwrap().len(), FILE_BYTES);
        std::fs::remove_file(path).unwrap();
    }

    let missing = std::env::temp_dir().join(format!("sneakpeek-missing-{}", std::process::id()));
    let error = context
        .download(
            Request::get(server.url("/status/404")),
            Some(missing.clone()),
        )
        .await
        .unwrap_err();
    assert!(
        error.to_string().ends_with("returned HTTP 404 Not Found"),
        "{error}"
    );
    assert!(!missing.exists());
}

#[tokio::test]
async fn regex_finds_named_groups_case_insensitively_across_lines() {
    let (context, _) = scraper_context(&plain_runtime(), Value::Null);
    let text = "order: ABC-123\nreference: xyz-789\nOrder: def-456";
    let matches = context
        .regex(text, r"^order: (?P<letters>[a-z]+)-(?P<digits>\d+)$")
        .unwrap();
    let found: Vec<(&str, Option<&str>, Option<&str>)> = matches
        .iter()
        .map(|found| {
            (
                found.full_match.as_str(),
                found.groups["letters"].as_deref(),
                found.groups["digits"].as_deref(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("order: ABC-123", Some("ABC"), Some("123")),
            ("Order: def-456", Some("def"), Some("456"))
        ]
    );
    assert_eq!(
        context.regex(text, "(?-i)^Order").unwrap().len(),
        1,
        "flags can be turned off inline"
    );
    assert!(context.regex(text, "(unclosed").is_err());
}

#[tokio::test]
async fn select_returns_text_attributes_and_inner_html() {
    let (context, _) = scraper_context(&plain_runtime(), Value::Null);
    let links = context.select(ARTICLE_HTML, "a.link").unwrap();
    let texts: Vec<&str> = links.iter().map(|link| link.text.as_str()).collect();
    assert_eq!(texts, ["One", "Two bold", "No href"]);
    let hrefs: Vec<Option<&str>> = links.iter().map(|link| link.attr("href")).collect();
    assert_eq!(hrefs, [Some("/one"), Some("/two"), None]);
    assert_eq!(links[1].inner_html, "Two <b>bold</b>");
    assert!(context.select(ARTICLE_HTML, "table").unwrap().is_empty());
    let error = context.select(ARTICLE_HTML, "a[").unwrap_err();
    assert!(
        error.to_string().starts_with("invalid CSS selector 'a['"),
        "{error}"
    );
}

#[tokio::test]
async fn update_scraper_state_persists_through_the_hooks_and_is_visible_at_once() {
    let (context, hooks) = scraper_context(&plain_runtime(), Value::Null);
    assert_eq!(context.state(), None);
    context
        .update_scraper_state(Some("page=2".to_owned()))
        .await
        .unwrap();
    assert_eq!(context.state().as_deref(), Some("page=2"));
    assert_eq!(
        hooks.scraper.lock().unwrap().state.as_deref(),
        Some("page=2")
    );
}
