//! What other web sites, stolen cookies and oversized requests can do to a server, over real
//! HTTP: requests a browser makes for another site are refused while scripts keep working,
//! unknown `Host` names are refused, sign-in sessions are random, expire, end on sign-out and
//! do not open the JsonRPC API, sign-in attempts are limited, and batches, replies, bodies and
//! strings have documented limits.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod support;

use std::net::{IpAddr, Ipv4Addr};

use leptos::server_fn::ServerFn;
use reqwest::{RequestBuilder, Response};
use serde_json::{json, Value};
use support::TestApp;

const TOKEN: &str = "correct horse battery";

fn port(app: &TestApp) -> String {
    app.address.rsplit(':').next().unwrap().to_owned()
}

/// An origin on another port of the test server's host.
fn other_port(app: &TestApp) -> String {
    format!("http://127.0.0.1:{}", port(app).parse::<u16>().unwrap() + 1)
}

fn call(method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string()
}

/// Headers a browser adds to a request its page at `origin` makes.
fn from_page(request: RequestBuilder, origin: &str, site: &str) -> RequestBuilder {
    request
        .header("origin", origin)
        .header("sec-fetch-site", site)
}

/// The same-origin page of `app` (the UI, or the original Sneakpeek UI served alongside).
fn from_own_page(app: &TestApp, request: RequestBuilder) -> RequestBuilder {
    from_page(request, &app.address, "same-origin")
}

async fn reply(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn scraper(name: &str) -> Value {
    json!({"name": name, "schedule": "inactive", "handler": "script", "config": {"params": {"source": "\"ok\""}}})
}

// ---------------------------------------------------------------------------------------------
// Cross-site requests and DNS rebinding

#[tokio::test]
async fn a_page_on_another_site_cannot_call_the_api_without_a_preflight() {
    let app = TestApp::spawn(&[]).await;
    let kept = app
        .result("create_scraper", json!({"scraper": scraper("Kept")}))
        .await;
    let delete = call("delete_scraper", json!({"id": kept["id"]}));
    let ephemeral = call(
        "run_ephemeral",
        json!({"handler": "script", "config": {"params": {"source": "\"pwned\""}}}),
    );
    // A `text/plain` POST is what a `<form>` or `fetch(..., {mode: "no-cors"})` of any site
    // can send; another port of the same host is "same-site", not the same origin.
    let other_port = other_port(&app);
    for (origin, site) in [
        ("http://evil.example", "cross-site"),
        (other_port.as_str(), "same-site"),
    ] {
        for body in [&delete, &ephemeral] {
            let request = app
                .client
                .post(app.url("/api/v1/jsonrpc"))
                .header("content-type", "text/plain;charset=UTF-8")
                .body(body.clone());
            let response = from_page(request, origin, site)
                .header("sec-fetch-mode", "no-cors")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 403, "{origin} ({site}): {body}");
        }
    }
    // Browsers too old for Sec-Fetch-Site still send Origin on a POST.
    let request = app
        .client
        .post(app.url("/api/v1/jsonrpc"))
        .header("content-type", "text/plain")
        .header("origin", "http://evil.example")
        .body(delete.clone());
    assert_eq!(request.send().await.unwrap().status().as_u16(), 403);
    let request = app
        .client
        .post(app.url("/api/v1/jsonrpc"))
        .header("content-type", "application/json")
        .header("origin", "null")
        .body(delete.clone());
    assert_eq!(
        request.send().await.unwrap().status().as_u16(),
        403,
        "an opaque origin is another site"
    );

    assert_eq!(
        app.result("get_scraper", json!({"id": kept["id"]})).await["name"],
        "Kept",
        "the scraper is still there"
    );
    assert_eq!(
        app.result("get_scrapers", json!({}))
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn scripts_curl_and_the_same_origin_page_keep_working() {
    let app = TestApp::spawn(&[]).await;
    let body = r#"{"jsonrpc":"2.0","method":"get_scrapers","id":1}"#;
    // `curl -d` sends application/x-www-form-urlencoded; scripts often send no content type.
    for content_type in [
        Some("application/x-www-form-urlencoded"),
        None,
        Some("application/json"),
        Some("text/plain"),
    ] {
        let mut request = app.client.post(app.url("/api/v1/jsonrpc")).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let (status, reply) = reply(request.send().await.unwrap()).await;
        assert_eq!(
            (status, reply["result"].clone()),
            (200, json!([])),
            "{content_type:?}: {reply}"
        );
    }
    // The original Sneakpeek UI and the API explorer: a page of this origin posting JSON.
    let request = from_own_page(
        &app,
        app.client
            .post(app.url("/api/v1/jsonrpc"))
            .header("content-type", "application/json")
            .body(body),
    );
    let (status, reply) = reply(request.send().await.unwrap()).await;
    assert_eq!(
        (status, reply["result"].clone()),
        (200, json!([])),
        "{reply}"
    );
    // An older browser: Origin without Sec-Fetch-Site, naming this server.
    let request = app
        .client
        .post(app.url("/api/v1/jsonrpc"))
        .header("content-type", "application/json")
        .header("origin", app.address.clone())
        .body(body);
    assert_eq!(request.send().await.unwrap().status().as_u16(), 200);
    // Navigating here from a link on another site is fine: it changes nothing.
    let page = from_page(
        app.client.get(app.url("/")),
        "http://evil.example",
        "cross-site",
    )
    .header("sec-fetch-mode", "navigate")
    .send()
    .await
    .unwrap();
    assert_eq!(page.status().as_u16(), 200);
}

#[tokio::test]
async fn a_browser_posting_a_form_content_type_is_refused_even_from_this_origin() {
    let app = TestApp::spawn(&[]).await;
    let body = call("create_scraper", json!({"scraper": scraper("From a form")}));
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let request = from_own_page(
            &app,
            app.client
                .post(app.url("/api/v1/jsonrpc"))
                .header("content-type", content_type)
                .body(body.clone()),
        );
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 415, "{content_type}");
        assert!(response.text().await.unwrap().contains("application/json"));
    }
    assert_eq!(app.result("get_scrapers", json!({})).await, json!([]));
}

#[tokio::test]
async fn origins_listed_for_cors_may_call_the_api_and_no_others() {
    let app = TestApp::spawn(&["--cors-allow-origin", "https://tools.example.com"]).await;
    let body = call("get_scrapers", json!({}));
    let request = from_page(
        app.client.post(app.url("/api/v1/jsonrpc")),
        "https://tools.example.com",
        "cross-site",
    )
    .header("content-type", "application/json")
    .body(body.clone());
    let response = request.send().await.unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://tools.example.com"
    );
    assert_eq!(
        reply(response).await,
        (200, json!({"jsonrpc": "2.0", "result": [], "id": 1}))
    );
    let request = from_page(
        app.client.post(app.url("/api/v1/jsonrpc")),
        "https://other.example.com",
        "cross-site",
    )
    .header("content-type", "application/json")
    .body(body);
    assert_eq!(request.send().await.unwrap().status().as_u16(), 403);
}

#[tokio::test]
async fn the_ui_server_functions_and_live_streams_refuse_other_sites() {
    let app = TestApp::spawn(&[]).await;
    let created = app
        .result("create_scraper", json!({"scraper": scraper("Watched")}))
        .await;
    let function = app.url(app::api::GetUiSettings::PATH);
    let foreign = from_page(
        app.client.post(&function),
        "http://evil.example",
        "cross-site",
    )
    .header("content-type", "application/json")
    .body("{}");
    assert_eq!(foreign.send().await.unwrap().status().as_u16(), 403);
    let own = from_own_page(&app, app.client.post(&function))
        .header("content-type", "application/json")
        .body("{}");
    let (status, settings) = reply(own.send().await.unwrap()).await;
    assert_eq!(
        (status, settings["read_only"].clone()),
        (200, json!(false)),
        "{settings}"
    );

    let live = app.url(&app::live::scraper_jobs_url(
        created["id"].as_i64().unwrap(),
    ));
    let foreign = from_page(app.client.get(&live), &other_port(&app), "same-site");
    assert_eq!(foreign.send().await.unwrap().status().as_u16(), 403);
    let foreign = app
        .client
        .get(&live)
        .header("origin", "http://evil.example");
    assert_eq!(foreign.send().await.unwrap().status().as_u16(), 403);
    let own = from_own_page(&app, app.client.get(&live))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status().as_u16(), 200);
    assert_eq!(own.headers()["content-type"], "text/event-stream");
}

#[tokio::test]
async fn unknown_host_names_are_refused_so_dns_rebinding_cannot_reach_the_api() {
    let app = TestApp::spawn(&[]).await;
    let port = port(&app);
    let body = call("get_scrapers", json!({}));
    let post = |host: String| {
        app.client
            .post(app.url("/api/v1/jsonrpc"))
            .header("host", host)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
    };
    // The attacker's name, rebound to this address: to the browser its page is same-origin.
    let rebound = format!("rebind.evil.example:{port}");
    let request = from_page(
        app.client.post(app.url("/api/v1/jsonrpc")),
        &format!("http://{rebound}"),
        "same-origin",
    )
    .header("host", &rebound)
    .body(body.clone());
    let response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let message = response.text().await.unwrap();
    assert!(
        message.contains("rebind.evil.example") && message.contains("--allowed-hosts"),
        "{message}"
    );
    let page = app
        .client
        .get(app.url("/"))
        .header("host", "rebind.evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 400, "pages too");
    // By default: localhost and IP addresses, which no other site can rebind, on any port.
    for allowed in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "LOCALHOST".to_owned(),
        format!("[::1]:{port}"),
        "10.1.2.3:8080".to_owned(),
    ] {
        assert_eq!(
            post(allowed.clone()).await.unwrap().status().as_u16(),
            200,
            "{allowed}"
        );
    }
    assert_eq!(
        post(format!("localhost.evil.example:{port}"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        400
    );

    let named = TestApp::spawn(&["--allowed-hosts", "scrapers.example.com,intranet"]).await;
    let post = |host: &str| {
        named
            .client
            .post(named.url("/api/v1/jsonrpc"))
            .header("host", host.to_owned())
            .body(body.clone())
            .send()
    };
    for allowed in [
        "scrapers.example.com",
        "Scrapers.Example.Com:443",
        "intranet:8080",
        "127.0.0.1",
    ] {
        assert_eq!(
            post(allowed).await.unwrap().status().as_u16(),
            200,
            "{allowed}"
        );
    }
    for refused in [
        "other.example.com",
        "example.com",
        "sub.scrapers.example.com",
    ] {
        assert_eq!(
            post(refused).await.unwrap().status().as_u16(),
            400,
            "{refused}"
        );
    }
    let any = TestApp::spawn(&["--allowed-hosts", "*"]).await;
    let response = any
        .client
        .post(any.url("/api/v1/jsonrpc"))
        .header("host", "whatever.example")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

// ---------------------------------------------------------------------------------------------
// Sign-in sessions

/// Signs in with the token from `client`; returns the `name=value` of the session cookie and
/// the whole `Set-Cookie` header.
async fn sign_in(app: &TestApp, client: &reqwest::Client) -> (String, String) {
    let response = from_own_page(app, client.post(app.url("/login")))
        .form(&[("token", TOKEN), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    (cookie.split(';').next().unwrap().to_owned(), cookie)
}

/// Whether the page `/` opens with `cookie` (rather than sending to the sign-in page).
async fn page_opens(app: &TestApp, cookie: &str) -> bool {
    let page = app
        .client
        .get(app.url("/"))
        .header("accept", "text/html")
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    match page.status().as_u16() {
        200 => true,
        303 => false,
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn the_session_cookie_opens_the_ui_but_not_the_jsonrpc_api() {
    let app = TestApp::spawn(&["--api-token", TOKEN]).await;
    let (cookie, _) = sign_in(&app, &app.client).await;
    assert!(page_opens(&app, &cookie).await);
    let function = from_own_page(
        &app,
        app.client.post(app.url(app::api::GetUiSettings::PATH)),
    )
    .header("cookie", &cookie)
    .header("content-type", "application/json")
    .body("{}");
    assert_eq!(
        function.send().await.unwrap().status().as_u16(),
        200,
        "the UI's server functions take the session"
    );
    for path in ["/api/v1/jsonrpc", "/api/v1/jsonrpc/get_scrapers"] {
        let api = app
            .client
            .post(app.url(path))
            .header("cookie", &cookie)
            .body(call("get_scrapers", json!({})));
        assert_eq!(
            api.send().await.unwrap().status().as_u16(),
            401,
            "{path}: the API takes the bearer token only"
        );
    }
    let api = app
        .client
        .post(app.url("/api/v1/jsonrpc"))
        .bearer_auth(TOKEN)
        .body(call("get_scrapers", json!({})));
    assert_eq!(
        reply(api.send().await.unwrap()).await.1["result"],
        json!([])
    );
    // Another port of this host is the same site, so SameSite lets the cookie go along.
    let function = from_page(
        app.client.post(app.url(app::api::GetUiSettings::PATH)),
        &other_port(&app),
        "same-site",
    )
    .header("cookie", &cookie)
    .header("content-type", "application/json")
    .body("{}");
    assert_eq!(function.send().await.unwrap().status().as_u16(), 403);
}

#[tokio::test]
async fn signing_out_ends_the_session_on_the_server() {
    let app = TestApp::spawn(&["--api-token", TOKEN]).await;
    let (cookie, _) = sign_in(&app, &app.client).await;
    let (other, _) = sign_in(&app, &app.client).await;
    assert!(page_opens(&app, &cookie).await);
    let logout = from_own_page(&app, app.client.post(app.url("/logout")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            logout.status().as_u16(),
            logout.headers()["location"].to_str().unwrap()
        ),
        (303, "/login")
    );
    assert!(logout.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert!(
        !page_opens(&app, &cookie).await,
        "a copy of the cookie kept after signing out no longer works"
    );
    let function = from_own_page(
        &app,
        app.client.post(app.url(app::api::GetUiSettings::PATH)),
    )
    .header("cookie", &cookie)
    .header("content-type", "application/json")
    .body("{}");
    assert_eq!(function.send().await.unwrap().status().as_u16(), 401);
    assert!(page_opens(&app, &other).await, "other sessions go on");
}

#[tokio::test]
async fn each_sign_in_gets_its_own_session_with_an_expiry_and_secure_behind_https() {
    let app = TestApp::spawn(&["--api-token", TOKEN]).await;
    let (first, header) = sign_in(&app, &app.client).await;
    let (second, _) = sign_in(&app, &app.client).await;
    assert_ne!(first, second, "random ids, not a digest of the token");
    assert!(
        header.contains("HttpOnly")
            && header.contains("SameSite=Strict")
            && header.contains("Max-Age=604800"),
        "{header}"
    );
    assert!(
        !header.contains("Secure"),
        "plain HTTP: a Secure cookie would never come back: {header}"
    );

    let secure = TestApp::spawn(&["--api-token", TOKEN, "--secure-cookies"]).await;
    assert!(sign_in(&secure, &secure.client)
        .await
        .1
        .contains("; Secure"));

    // A TLS proxy on this host says the browser uses HTTPS; only a trusted one is believed.
    let proxied = TestApp::spawn(&["--api-token", TOKEN, "--trusted-proxies", "127.0.0.1"]).await;
    let forwarded = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(
            [(
                reqwest::header::HeaderName::from_static("x-forwarded-proto"),
                reqwest::header::HeaderValue::from_static("https"),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .unwrap();
    assert!(sign_in(&proxied, &forwarded).await.1.contains("; Secure"));
    assert!(
        !sign_in(&app, &forwarded).await.1.contains("Secure"),
        "an untrusted client cannot choose"
    );
}

#[tokio::test]
async fn after_sign_in_only_local_paths_are_followed() {
    let app = TestApp::spawn(&["--api-token", TOKEN]).await;
    for (next, expected) in [
        ("/\\evil.example", "/"),
        ("//evil.example", "/"),
        ("/\\\\evil", "/"),
        ("\\\\evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/scrapers/1?tab=jobs", "/scrapers/1?tab=jobs"),
    ] {
        let response = from_own_page(&app, app.client.post(app.url("/login")))
            .form(&[("token", TOKEN), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["location"], expected, "{next:?}");
    }
    let refused = from_own_page(&app, app.client.post(app.url("/login")))
        .form(&[("token", "wrong token"), ("next", "//evil.example")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.headers()["location"], "/login?error=invalid&next=/");
}

fn client_from(address: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(IpAddr::V4(address))
        .build()
        .unwrap()
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_client() {
    let app = TestApp::spawn(&["--api-token", TOKEN]).await;
    let attempt =
        |client: reqwest::Client, token: &'static str, forwarded: Option<&'static str>| {
            let mut request = from_own_page(&app, client.post(app.url("/login")))
                .form(&[("token", token), ("next", "/")]);
            if let Some(forwarded) = forwarded {
                request = request.header("x-forwarded-for", forwarded);
            }
            request.send()
        };
    let guesser = client_from(Ipv4Addr::LOCALHOST);
    for _ in 0..10 {
        assert_eq!(
            attempt(guesser.clone(), "guess", None)
                .await
                .unwrap()
                .status()
                .as_u16(),
            303
        );
    }
    let limited = attempt(guesser.clone(), TOKEN, None).await.unwrap();
    assert_eq!(limited.status().as_u16(), 429, "even the right token waits");
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // A person sees a page that says how long to wait, with the way back to the form.
    assert!(limited.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = limited.text().await.unwrap();
    assert!(
        page.contains(&format!("try again in {retry_after} seconds")),
        "{page}"
    );
    assert!(page.contains("href=\"/login?next=/\""), "{page}");
    // Another client is not held up, and X-Forwarded-For from an untrusted client is ignored.
    let neighbour = client_from(Ipv4Addr::new(127, 0, 0, 2));
    assert_eq!(
        attempt(neighbour, TOKEN, None)
            .await
            .unwrap()
            .status()
            .as_u16(),
        303
    );
    assert_eq!(
        attempt(guesser, TOKEN, Some("203.0.113.9"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        429
    );

    // Behind a trusted proxy, clients are told apart by X-Forwarded-For.
    let proxied = TestApp::spawn(&["--api-token", TOKEN, "--trusted-proxies", "127.0.0.0/8"]).await;
    let proxy = client_from(Ipv4Addr::LOCALHOST);
    let attempt = |token: &'static str, forwarded: &'static str| {
        from_own_page(&proxied, proxy.post(proxied.url("/login")))
            .form(&[("token", token), ("next", "/")])
            .header("x-forwarded-for", forwarded)
            .send()
    };
    for _ in 0..10 {
        assert_eq!(
            attempt("guess", "198.51.100.1, 203.0.113.7")
                .await
                .unwrap()
                .status()
                .as_u16(),
            303
        );
    }
    assert_eq!(
        attempt(TOKEN, "203.0.113.7")
            .await
            .unwrap()
            .status()
            .as_u16(),
        429,
        "the address the proxy saw counts"
    );
    assert_eq!(
        attempt(TOKEN, "203.0.113.8")
            .await
            .unwrap()
            .status()
            .as_u16(),
        303
    );
}

#[tokio::test]
async fn on_postgresql_a_session_works_on_every_replica_and_signing_out_ends_it_everywhere() {
    let database = engine::testing::TestDatabase::create().await;
    let flags = [
        "--database-url",
        &database.url,
        "--api-token",
        TOKEN,
        "--no-scheduler",
        "--no-worker",
    ];
    let first = TestApp::spawn(&flags).await;
    let second = TestApp::spawn(&flags).await;
    let (cookie, _) = sign_in(&first, &first.client).await;
    assert!(
        page_opens(&second, &cookie).await,
        "the other replica knows the session"
    );
    let logout = from_own_page(&second, second.client.post(second.url("/logout")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status().as_u16(), 303);
    assert!(
        !page_opens(&first, &cookie).await,
        "signed out on every replica"
    );
}

// ---------------------------------------------------------------------------------------------
// Limits

#[tokio::test]
async fn a_batch_of_more_than_100_calls_gets_one_error_naming_the_limit() {
    let app = TestApp::spawn(&[]).await;
    let batch = |calls: usize| {
        Value::Array(
            (0..calls)
                .map(|id| json!({"jsonrpc": "2.0", "id": id, "method": "is_read_only"}))
                .collect(),
        )
        .to_string()
    };
    let (status, body) = app.post_raw(&batch(100)).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        100
    );
    let (status, body) = app.post_raw(&batch(5_000)).await;
    assert_eq!(status, 200);
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (reply["error"]["code"].clone(), reply["id"].clone()),
        (json!(-32600), Value::Null),
        "{body:.300}"
    );
    assert!(
        reply["error"]["data"]["errors"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("at most 100 calls"),
        "{reply}"
    );
}

#[tokio::test]
async fn a_batch_reply_stops_at_16_mib_and_the_calls_after_are_not_run() {
    const MIB: usize = 1024 * 1024;
    let app = TestApp::spawn(&["--no-scheduler"]).await;
    let mut big = scraper("Big");
    big["state"] = json!("s".repeat(MIB - 1000));
    let big = app.result("create_scraper", json!({"scraper": big})).await;
    let mut calls: Vec<Value> = (0..24).map(|id| json!({"jsonrpc": "2.0", "id": id, "method": "get_scraper", "params": {"id": big["id"]}})).collect();
    calls.push(json!({"jsonrpc": "2.0", "id": "last", "method": "create_scraper", "params": {"scraper": scraper("Never created")}}));
    let (status, body) = app.post_raw(&Value::Array(calls).to_string()).await;
    assert_eq!(status, 200);
    assert!(body.len() < 18 * MIB, "{} bytes", body.len());
    let replies: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(replies.len(), 25, "every call is answered");
    let answered = replies
        .iter()
        .take_while(|reply| reply.get("result").is_some())
        .count();
    assert!(
        (16..=17).contains(&answered),
        "{answered} results of about 1 MiB fit in 16 MiB"
    );
    for (id, reply) in replies.iter().enumerate().skip(answered) {
        assert_eq!(reply["error"]["code"], -32002, "{id}: {reply}");
        assert_eq!(reply["error"]["data"]["limit"], 16 * MIB, "{reply}");
    }
    assert_eq!(replies[24]["id"], "last");
    assert_eq!(
        app.result("search_scrapers", json!({"name_filter": "Never"}))
            .await,
        json!([]),
        "a call past the limit is not run"
    );
}

#[tokio::test]
async fn the_configured_body_limit_is_the_one_applied() {
    const MIB: usize = 1024 * 1024;
    let app = TestApp::spawn(&["--max-body-bytes", &(4 * MIB).to_string()]).await;
    let padded = |bytes: usize| {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"get_scrapers","padding":"{}"}}"#,
            "x".repeat(bytes)
        )
    };
    let (status, body) = app.post_raw(&padded(3 * MIB)).await;
    assert_eq!(status, 200, "3 MiB under a 4 MiB limit");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["result"],
        json!([])
    );
    let (status, _) = app.post_raw(&padded(5 * MIB)).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn long_strings_get_clear_errors_and_are_not_echoed() {
    let app = TestApp::spawn(&[]).await;
    let long = "x".repeat(10_000);
    let error = app
        .error("search_scrapers", json!({"name_filter": long}))
        .await;
    assert_eq!(
        (
            error["code"].clone(),
            error["data"]["errors"][0]["loc"].clone()
        ),
        (json!(-32602), json!(["name_filter"])),
        "{error}"
    );
    assert!(error["data"]["errors"][0]["msg"]
        .as_str()
        .unwrap()
        .contains("256"));

    let (_, body) = app
        .post_raw(&json!({"jsonrpc": "2.0", "id": 1, "method": long}).to_string())
        .await;
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["error"]["code"], -32600, "{body:.300}");
    assert!(!body.contains(&long), "the method name is not echoed");
    let (_, body) = app
        .post_raw(&json!({"jsonrpc": "2.0", "id": long, "method": "is_read_only"}).to_string())
        .await;
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (reply["error"]["code"].clone(), reply["id"].clone()),
        (json!(-32600), Value::Null),
        "{body:.300}"
    );

    // The scraper's own fields: error 10005, each where it is.
    let invalid = |field: &str, value: Value| {
        let mut scraper = scraper("Limits");
        scraper[field] = value;
        scraper
    };
    for (field, value) in [
        ("name", json!("n".repeat(257))),
        ("handler", json!(long)),
        ("schedule_crontab", json!("*".repeat(257))),
        ("id", json!(9_007_199_254_740_992_i64)),
        ("state", json!("s".repeat(1024 * 1024 + 1))),
    ] {
        let error = app
            .error(
                "create_scraper",
                json!({"scraper": invalid(field, value.clone())}),
            )
            .await;
        assert_eq!(
            (
                error["code"].clone(),
                error["data"]["errors"][0]["loc"].clone()
            ),
            (json!(10005), json!(["scraper", field])),
            "{field}: {error:.300}"
        );
        assert!(!error.to_string().contains(&long));
    }
    let error = app.error("run_ephemeral", json!({"handler": long})).await;
    assert_eq!(
        (
            error["code"].clone(),
            error["data"]["errors"][0]["loc"].clone()
        ),
        (json!(10005), json!(["handler"])),
        "{error:.300}"
    );
    assert_eq!(app.result("get_scrapers", json!({})).await, json!([]));
}

#[tokio::test]
async fn live_streams_are_counted_per_client_behind_a_trusted_proxy() {
    let app = TestApp::spawn(&["--trusted-proxies", "127.0.0.1"]).await;
    let id = app
        .result("create_scraper", json!({"scraper": scraper("followed")}))
        .await["id"]
        .as_i64()
        .unwrap();
    let url = app.url(&format!("/live/scrapers/{id}/jobs"));
    let open = |client: &'static str| {
        app.client
            .get(&url)
            .header("x-forwarded-for", client)
            .send()
    };
    // Each stream stays open while its response is held.
    let mut open_streams = Vec::new();
    for _ in 0..8 {
        let stream = open("10.0.0.1").await.unwrap();
        assert_eq!(stream.status().as_u16(), 200);
        open_streams.push(stream);
    }
    assert_eq!(open("10.0.0.1").await.unwrap().status().as_u16(), 429);
    assert_eq!(
        open("10.0.0.2").await.unwrap().status().as_u16(),
        200,
        "another client behind the same proxy has its own allowance"
    );
}

#[tokio::test]
async fn a_request_without_a_path_is_refused_and_the_server_goes_on() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn(&[]).await;
    let authority = app.address.trim_start_matches("http://").to_owned();
    // The authority form is for proxies (`CONNECT host:port`); it has no path to route.
    let mut connection = tokio::net::TcpStream::connect(&authority).await.unwrap();
    connection
        .write_all(
            format!(
                "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    connection.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let healthz = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(healthz.status().as_u16(), 200);
}

#[tokio::test]
async fn a_body_over_the_limit_gets_its_413_however_fast_it_is_sent() {
    let app = TestApp::spawn(&[]).await;
    let padding = "x".repeat(4 * 1024 * 1024);
    let body = call("is_read_only", json!({ "pad": padding }));
    // Without `Expect: 100-continue` the client sends the whole body before it reads; the
    // server must not reset the connection under it.
    for _ in 0..10 {
        let response = app
            .client
            .post(app.url("/api/v1/jsonrpc"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("the answer arrives, not a reset connection");
        assert_eq!(response.status().as_u16(), 413);
        assert!(response.text().await.unwrap().contains("--max-body-bytes"));
    }
}

// ---------------------------------------------------------------------------------------------
// Credentials in job snapshots

/// A job's snapshot of its scraper, as JsonRPC and the live streams hand it out, shows neither
/// the proxy's password nor the user info of URLs; the scraper itself keeps them for editing.
#[tokio::test]
async fn job_snapshots_never_show_credentials() {
    let app = TestApp::spawn(&[]).await;
    let secrets = ["pw-in-url", "proxy-pw-in-url", "proxy-password"];
    let with_credentials = json!({
        "name": "behind a proxy", "schedule": "inactive", "handler": "script",
        "config": {
            "params": {"source": "\"ok\"", "start": "https://reader:pw-in-url@site.example/"},
            "plugins": {"proxy": {
                "proxy": "http://me:proxy-pw-in-url@127.0.0.1:9",
                "proxy_auth": {"login": "me", "password": "proxy-password"}
            }}
        }
    });
    let scraper = app
        .result("create_scraper", json!({"scraper": with_credentials}))
        .await;
    let id = scraper["id"].as_i64().unwrap();
    let job = app
        .result("enqueue_scraper", json!({"scraper_id": id, "priority": 1}))
        .await;
    let job_id = job["id"].as_i64().unwrap();
    let mut shown = vec![
        ("enqueue_scraper", job),
        (
            "get_scraper_jobs",
            app.result("get_scraper_jobs", json!({"scraper_id": id}))
                .await,
        ),
        (
            "get_scraper_job",
            app.result(
                "get_scraper_job",
                json!({"scraper_id": id, "job_id": job_id}),
            )
            .await,
        ),
    ];
    let mut stream = app
        .client
        .get(app.url(&format!("/live/scrapers/{id}/jobs")))
        .send()
        .await
        .unwrap();
    let mut first_event = String::new();
    while !first_event.contains("\n\n") {
        let chunk = stream
            .chunk()
            .await
            .unwrap()
            .expect("the stream stays open");
        first_event.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(first_event.contains("behind a proxy"), "{first_event}");
    shown.push(("the live stream", Value::String(first_event)));
    for (source, value) in shown {
        let text = value.to_string();
        assert!(text.contains("***"), "{source}: {text}");
        for secret in secrets {
            assert!(!text.contains(secret), "{source} shows {secret}: {text}");
        }
    }
    // The stored scraper, which the edit form reads, is as it was written.
    let stored = app
        .result("get_scraper", json!({"id": id}))
        .await
        .to_string();
    assert!(
        secrets.iter().all(|secret| stored.contains(secret)),
        "{stored}"
    );
}
