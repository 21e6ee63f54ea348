//! The built-in `extract` and `script` handlers, run the way a worker runs them.

use std::sync::Arc;

use engine::retry::RetryReason;
use engine::scraper::{
    builtin_handlers, run_scraper, Handlers, RunError, Runtime, ScriptHandler, ScriptLimits,
};
use serde_json::{json, Value};

use crate::support::*;

/// Runs `handler` once with `params`, as a worker would; the result text or the error text.
async fn run(
    handlers: &Handlers,
    handler: &str,
    params: Value,
) -> (Result<String, String>, Arc<RecordingHooks>) {
    run_with_plugins(handlers, handler, params, Value::Null).await
}

/// [`run`] for a scraper with `config.plugins`.
async fn run_with_plugins(
    handlers: &Handlers,
    handler: &str,
    params: Value,
    plugins: Value,
) -> (Result<String, String>, Arc<RecordingHooks>) {
    let scraper = scraper(handler, params, plugins);
    let hooks = RecordingHooks::new(scraper.clone());
    let result = run_scraper(handlers, &plain_runtime(), scraper, hooks.clone())
        .await
        .map_err(|error| error.to_string());
    (result, hooks)
}

async fn extract(params: Value) -> Result<Value, String> {
    let (result, _) = run(&builtin_handlers(), "extract", params).await;
    result.map(|text| serde_json::from_str(&text).expect("extract returns JSON"))
}

#[test]
fn builtin_handlers_are_extract_and_script() {
    assert_eq!(builtin_handlers().names(), ["extract", "script"]);
}

#[tokio::test]
async fn an_unknown_handler_fails_the_job_naming_it() {
    let scraper = scraper("nope", Value::Null, Value::Null);
    let hooks = RecordingHooks::new(scraper.clone());
    let error = run_scraper(&builtin_handlers(), &Runtime::default(), scraper, hooks)
        .await
        .unwrap_err();
    assert!(matches!(error, RunError::UnknownHandler(_)));
    assert_eq!(error.to_string(), "Unknown scraper handler 'nope'");
}

#[tokio::test]
async fn extract_reads_css_attr_all_and_regex_fields() {
    let server = TestServer::start(None).await;
    let result = extract(json!({
        "url": server.url("/article"),
        "fields": {
            "title": {"css": "h1.title"},
            "first_link": {"css": "a.link", "attr": "href"},
            "links": {"css": "a.link", "attr": "href", "all": true},
            "link_texts": {"css": "a.link", "all": true},
            "missing": {"css": "table td"},
            "missing_all": {"css": "table td", "all": true},
            "price": {"regex": r"(?P<amount>\d+) (?P<currency>eur|usd)"},
            "prices": {"regex": r"(\d+) (?:EUR|USD)", "all": true},
            "reference": {"regex": r"^reference: [a-z]+-\d+"},
        }
    }))
    .await
    .unwrap();
    assert_eq!(
        result,
        json!({"pages": [{
            "url": server.url("/article"),
            "status": 200,
            "fields": {
                "title": "Rust   Scraping",
                "first_link": "/one",
                "links": ["/one", "/two"],
                "link_texts": ["One", "Two bold", "No href"],
                "missing": null,
                "missing_all": [],
                "price": {"amount": "42", "currency": "EUR"},
                "prices": ["42", "50"],
                "reference": "reference: xyz-789",
            }
        }]})
    );
}

#[tokio::test]
async fn extract_reads_json_pointers_and_sends_method_headers_and_body() {
    let server = TestServer::start(None).await;
    let data = extract(json!({"url": server.url("/data.json"), "fields": {"id": {"json": "/data/id"}, "second_tag": {"json": "/data/tags/1"}, "none": {"json": "/nope"}}}))
        .await
        .unwrap();
    assert_eq!(
        data["pages"][0]["fields"],
        json!({"id": 7, "second_tag": "b", "none": null})
    );

    let echoed = extract(json!({
        "url": server.url("/echo"),
        "method": "post",
        "headers": {"X-Test": "header"},
        "body": {"query": "rust"},
        "fields": {"method": {"json": "/method"}, "body": {"json": "/body"}, "header": {"json": "/x_test"}},
    }))
    .await
    .unwrap();
    assert_eq!(
        echoed["pages"][0]["fields"],
        json!({"method": "POST", "body": "{\"query\":\"rust\"}", "header": "header"})
    );
}

#[tokio::test]
async fn extract_follows_pagination_up_to_max_pages_and_never_loops() {
    let server = TestServer::start(None).await;
    let follow = |max_pages: u32| json!({"url": server.url("/list/1"), "fields": {"items": {"css": ".item", "all": true}}, "follow": {"css": "a.next", "max_pages": max_pages}});

    let two = extract(follow(2)).await.unwrap();
    let urls: Vec<&str> = two["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|page| page["url"].as_str().unwrap())
        .collect();
    assert_eq!(urls, [server.url("/list/1"), server.url("/list/2")]);
    assert_eq!(
        two["pages"][1]["fields"]["items"],
        json!(["item 2a", "item 2b"])
    );

    // Page 3 links back to page 1: the walk stops instead of going round.
    let all = extract(follow(10)).await.unwrap();
    assert_eq!(all["pages"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn extract_scrapes_several_urls_in_order() {
    let server = TestServer::start(None).await;
    let urls: Vec<String> = (1..=3)
        .map(|page| server.url(&format!("/list/{page}")))
        .collect();
    let result =
        extract(json!({"urls": urls, "max_concurrency": 2, "fields": {"heading": {"css": "h2"}}}))
            .await
            .unwrap();
    let headings: Vec<&str> = result["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|page| page["fields"]["heading"].as_str().unwrap())
        .collect();
    assert_eq!(headings, ["Page 1", "Page 2", "Page 3"]);
}

#[tokio::test]
async fn extract_fails_on_an_error_status_naming_url_and_status() {
    let server = TestServer::start(None).await;
    let url = server.url("/status/404");
    let error = extract(json!({"url": url, "fields": {}}))
        .await
        .unwrap_err();
    assert_eq!(error, format!("GET {url} returned HTTP 404 Not Found"));
    let refused = closed_port_url().await;
    let error = extract(json!({"url": refused})).await.unwrap_err();
    assert!(
        error.starts_with(&format!("GET {refused} failed: ")),
        "{error}"
    );
}

#[tokio::test]
async fn extract_refuses_bad_params_naming_the_field() {
    let cases = [
        (
            json!({"fields": {}}),
            "invalid params.url: is required (or `urls`, a list)",
        ),
        (
            json!({"url": "http://x", "urls": ["http://y"]}),
            "invalid params.urls: give either `url` or `urls`, not both",
        ),
        (
            json!({"url": "http://x", "fields": {"t": {"css": "h1["}}}),
            "invalid params.fields.t.css: invalid CSS selector 'h1['",
        ),
        (
            json!({"url": "http://x", "fields": {"t": {"regex": "(open"}}}),
            "invalid params.fields.t.regex: regex parse error",
        ),
        (
            json!({"url": "http://x", "fields": {"t": {"css": "h1", "regex": "x"}}}),
            "invalid params.fields.t: needs exactly one of",
        ),
        (
            json!({"url": "http://x", "fields": {"t": {"json": "data"}}}),
            "invalid params.fields.t.json: 'data' is not a JSON pointer",
        ),
        (
            json!({"url": "http://x", "fields": {"t": {"css": "h1", "al": true}}}),
            "invalid params.fields.t.al: unknown field `al`",
        ),
        (
            json!({"url": "http://x", "fields": {"t": {"css": 5}}}),
            "invalid params.fields.t.css: invalid type: integer `5`",
        ),
        (
            json!({"url": "http://x", "follow": {"css": "a", "max_pages": 0}}),
            "invalid params.follow.max_pages: must be at least 1",
        ),
        (
            json!({"url": "http://x", "method": "FETCH IT"}),
            "invalid params.method: 'FETCH IT' is not an HTTP method",
        ),
        (
            json!({"url": 3}),
            "invalid params.url: invalid type: integer `3`",
        ),
        (
            json!({"url": "ftp://x/file"}),
            "invalid params.url: 'ftp://x/file' is not an http:// or https:// URL with a host",
        ),
        (
            json!({"urls": ["http://x", "not a url"]}),
            "invalid params.urls.1: 'not a url' is not an http:// or https:// URL with a host",
        ),
        (
            json!({"url": "http://x", "headers": {"Bad Name": "v"}}),
            "invalid params.headers: 'Bad Name' is not a valid header name",
        ),
        (
            json!({"url": "http://x", "headers": {"X-Ok": "line\nbreak"}}),
            "invalid params.headers.X-Ok: not a valid header value",
        ),
    ];
    for (params, expected) in cases {
        let error = extract(params.clone()).await.unwrap_err();
        assert!(
            error.starts_with(expected),
            "params {params}: got {error:?}, expected it to start with {expected:?}"
        );
    }
}

#[tokio::test]
async fn script_fetches_a_page_and_returns_data() {
    let server = TestServer::start(None).await;
    let source = r#"
        let page = get(args.base + "/article");
        log("fetched " + page.url);
        let links = select(page.text, "a.link").filter(|link| "href" in link.attrs).map(|link| link.attrs.href);
        let price = regex(page.text, "(?P<amount>\\d+) EUR")[0].groups.amount;
        #{ status: page.status, title: select(page.text, "h1")[0].text, links: links, price: parse_int(price), param: params.source.len() > 0 }
    "#;
    let (result, hooks) = run(
        &builtin_handlers(),
        "script",
        json!({"source": source, "args": {"base": server.url("")}}),
    )
    .await;
    let value: Value = serde_json::from_str(&result.unwrap()).unwrap();
    assert_eq!(
        value,
        json!({"status": 200, "title": "Rust   Scraping", "links": ["/one", "/two"], "price": 42, "param": true})
    );
    assert!(hooks
        .log_lines()
        .contains(&format!("fetched {}", server.url("/article"))));
}

#[tokio::test]
async fn script_string_results_are_returned_as_they_are_and_http_verbs_send_bodies() {
    let server = TestServer::start(None).await;
    let source = r#"
        let posted = parse_json(post(args.echo, #{ q: 1 }).text);
        let put = parse_json(request(#{ method: "put", url: args.echo, body: "raw", headers: #{ "X-Test": "h" } }).text);
        posted.method + " " + posted.body + " " + put.method + " " + put.body + " " + put.x_test
    "#;
    let (result, _) = run(
        &builtin_handlers(),
        "script",
        json!({"source": source, "args": {"echo": server.url("/echo")}}),
    )
    .await;
    assert_eq!(result.unwrap(), r#"POST {"q":1} PUT raw h"#);
}

#[tokio::test]
async fn an_infinite_script_loop_is_stopped_by_the_operation_limit() {
    let mut handlers = Handlers::default();
    handlers.register(ScriptHandler::new(ScriptLimits {
        max_operations: 50_000,
        ..ScriptLimits::default()
    }));
    let (result, _) = within(run(
        &handlers,
        "script",
        json!({"source": "let x = 0;\nloop {\n  x += 1;\n}"}),
    ))
    .await;
    let error = result.unwrap_err();
    assert!(error.starts_with("script error at line "), "{error}");
    assert!(
        error.ends_with("the script exceeded its limit of 50000 operations"),
        "{error}"
    );
}

#[tokio::test]
async fn a_script_syntax_error_names_its_line() {
    let (result, _) = run(
        &builtin_handlers(),
        "script",
        json!({"source": "let a = 1;\nlet b = ;\na"}),
    )
    .await;
    let error = result.unwrap_err();
    assert!(
        error.starts_with("script syntax error at line 2: "),
        "{error}"
    );
}

#[tokio::test]
async fn a_failed_request_in_a_script_names_the_line_and_the_request() {
    let server = TestServer::start(None).await;
    let missing = server.url("/status/404");
    let source = format!("let ok = 1;\nlet page = get(\"{missing}\");\nif page.status >= 400 {{ throw `page failed: ${{page.status}}` }}");
    let (result, _) = run(&builtin_handlers(), "script", json!({ "source": source })).await;
    assert_eq!(
        result.unwrap_err(),
        "script error at line 3: page failed: 404"
    );

    let refused = closed_port_url().await;
    let (result, _) = run(
        &builtin_handlers(),
        "script",
        json!({ "source": format!("\nget(\"{refused}\")") }),
    )
    .await;
    let error = result.unwrap_err();
    assert!(
        error.starts_with(&format!("script error at line 2: GET {refused} failed: ")),
        "{error}"
    );
}

/// How a run that failed reads to a retry policy.
async fn failure_reason(handler: &str, params: Value) -> RetryReason {
    let scraper = scraper(handler, params, Value::Null);
    let hooks = RecordingHooks::new(scraper.clone());
    run_scraper(&builtin_handlers(), &plain_runtime(), scraper, hooks)
        .await
        .expect_err("the run fails")
        .retry_reason()
}

#[tokio::test]
async fn a_run_that_failed_after_http_429_or_5xx_is_the_sites_doing() {
    let server = TestServer::start(None).await;
    for code in [429, 500, 503] {
        let url = server.url(&format!("/status/{code}"));
        assert_eq!(
            failure_reason("extract", json!({"url": url, "fields": {}})).await,
            RetryReason::HttpStatus,
            "extract of a {code} page"
        );
        let source = format!("let page = get(\"{url}\");\nthrow `got ${{page.status}}`");
        assert_eq!(
            failure_reason("script", json!({ "source": source })).await,
            RetryReason::HttpStatus,
            "a script that got {code}"
        );
    }
    // A page that is not there, or a script's own error, is the scraper's doing.
    let missing = server.url("/status/404");
    assert_eq!(
        failure_reason("extract", json!({"url": missing, "fields": {}})).await,
        RetryReason::Error
    );
    assert_eq!(
        failure_reason("script", json!({"source": "throw `boom`"})).await,
        RetryReason::Error
    );
}

#[tokio::test]
async fn script_params_are_checked() {
    let (result, _) = run(&builtin_handlers(), "script", json!({"args": {}})).await;
    assert_eq!(
        result.unwrap_err(),
        "invalid params.source: missing field `source`"
    );
}

#[tokio::test]
async fn state_persists_between_two_runs_of_the_same_scraper() {
    let source = r#"
        let runs = if state() == () { 0 } else { parse_int(state()) };
        set_state(`${runs + 1}`);
        `run ${runs + 1}, state now ${state()}`
    "#;
    let handlers = builtin_handlers();
    let runtime = plain_runtime();
    let first_scraper = scraper("script", json!({ "source": source }), Value::Null);
    let storage = RecordingHooks::new(first_scraper.clone());
    let first = run_scraper(&handlers, &runtime, first_scraper, storage.clone())
        .await
        .unwrap();
    assert_eq!(first, "run 1, state now 1");

    // The next job starts from the scraper as stored.
    let stored = storage.scraper.lock().unwrap().clone();
    assert_eq!(stored.state.as_deref(), Some("1"));
    let second = run_scraper(
        &handlers,
        &runtime,
        stored.clone(),
        RecordingHooks::new(stored),
    )
    .await
    .unwrap();
    assert_eq!(second, "run 2, state now 2");
}

#[tokio::test]
async fn extract_with_max_concurrency_zero_scrapes_the_default_four_urls_at_a_time() {
    let server = TestServer::start(None).await;
    // The gate opens at the fifth arrival: four URLs at a time wait there until they time out.
    let urls: Vec<String> = (0..8)
        .map(|i| server.url(&format!("/gate?open_at=5&i={i}")))
        .collect();
    let (result, _) = run_with_plugins(
        &builtin_handlers(),
        "extract",
        json!({"urls": urls, "max_concurrency": 0}),
        json!({"limits": {"timeout": 1}}),
    )
    .await;
    let error = result.unwrap_err();
    assert!(error.contains(" timed out: "), "{error}");
    assert_eq!(server.gate_arrivals(), 4);
}

#[tokio::test]
async fn get_all_with_max_concurrency_zero_fetches_the_default_four_urls_at_a_time() {
    let server = TestServer::start(None).await;
    let urls: Vec<String> = (0..8)
        .map(|i| server.url(&format!("/gate?open_at=5&i={i}")))
        .collect();
    let (result, _) = run_with_plugins(
        &builtin_handlers(),
        "script",
        json!({"source": "get_all(args.urls, 0)", "args": {"urls": urls}}),
        json!({"limits": {"timeout": 1}}),
    )
    .await;
    let error = result.unwrap_err();
    assert!(error.contains(" timed out: "), "{error}");
    assert_eq!(server.gate_arrivals(), 4);

    let (result, _) = run(
        &builtin_handlers(),
        "script",
        json!({"source": "get_all([], -1)"}),
    )
    .await;
    assert_eq!(
        result.unwrap_err(),
        "script error at line 1: get_all: max_concurrency must be 0 (the default) or more, got -1"
    );
}

#[tokio::test]
async fn a_script_blocked_in_a_request_lets_go_of_its_job_when_the_job_is_stopped() {
    let server = TestServer::start(None).await;
    // The gate never opens: without cancellation the script's thread would wait for ever.
    let scraper = scraper(
        "script",
        json!({"source": "get(args.url)", "args": {"url": server.url("/gate?open_at=1000")}}),
        Value::Null,
    );
    let hooks = RecordingHooks::new(scraper.clone());
    let released = hooks.released();
    let run = tokio::spawn(async move {
        run_scraper(&builtin_handlers(), &plain_runtime(), scraper, hooks).await
    });
    within(server.gate_reached_by(1)).await;
    // What the worker does when the job is killed or times out.
    run.abort();
    tokio::time::timeout(std::time::Duration::from_secs(5), released)
        .await
        .expect("the script's thread let go of its job within 5 s")
        .unwrap();
}
