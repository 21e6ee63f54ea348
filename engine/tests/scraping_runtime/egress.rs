//! The egress policy: what a scraper's connections may reach. It is checked on the address
//! of every connection (after DNS), on literal addresses in URLs and on every redirect hop.

use engine::scraper::{EgressPolicy, MiddlewareSettings, RequestError, Runtime, ScraperContext};
use serde_json::{json, Value};

use crate::support::*;

/// No robots.txt, no rate limit, and the default egress policy: nothing internal is allowed.
fn default_policy_runtime() -> Runtime {
    let settings: MiddlewareSettings = serde_json::from_value(
        json!({"rate_limiter": {"enabled": false}, "robots_txt": {"enabled": false}}),
    )
    .unwrap();
    Runtime::new(settings).unwrap()
}

#[tokio::test]
async fn loopback_unspecified_and_link_local_addresses_are_refused_by_default() {
    let server = TestServer::start(None).await;
    let (context, _) = scraper_context(&default_policy_runtime(), Value::Null);
    let port = server.addr.port();
    let cases = [
        (server.url("/article"), "127.0.0.1 is a loopback address"),
        // The same address in other spellings.
        (
            format!("http://2130706433:{port}/article"),
            "127.0.0.1 is a loopback address",
        ),
        (
            format!("http://[::ffff:127.0.0.1]:{port}/article"),
            "::ffff:127.0.0.1 is a loopback address",
        ),
        (
            format!("http://0.0.0.0:{port}/article"),
            "0.0.0.0 is an unspecified address",
        ),
        (
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "169.254.169.254 is a link-local address",
        ),
    ];
    for (url, reason) in cases {
        let error = context.get(&url).await.unwrap_err().to_string();
        assert!(error.contains(reason), "{url}: {error}");
        assert!(
            error.contains("--egress-allow"),
            "names the setting: {error}"
        );
    }
    assert!(server.hits().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_host_name_resolving_to_a_refused_address_is_refused() {
    let server = TestServer::start(None).await;
    let (context, _) = scraper_context(&default_policy_runtime(), Value::Null);
    let url = server.localhost_url("/article");
    let error = context.get(&url).await.unwrap_err().to_string();
    assert!(
        error.starts_with(&format!("GET {url} refused: localhost resolves to ")),
        "{error}"
    );
    assert!(error.contains("a loopback address"), "{error}");
    assert!(error.contains("--egress-allow localhost"), "{error}");
    assert!(server.hits().is_empty());
}

#[tokio::test]
async fn a_redirect_to_a_refused_address_is_refused() {
    // The test server itself (127.0.0.1) is allowed; where it redirects to is not.
    let server = TestServer::start(None).await;
    let (context, _) = scraper_context(&plain_runtime(), Value::Null);
    let port = server.addr.port();
    for (target, reason) in [
        (
            format!("http://0.0.0.0:{port}/article"),
            "0.0.0.0 is an unspecified address",
        ),
        (
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "169.254.169.254 is a link-local address",
        ),
    ] {
        let url = server.url(&format!("/redirect?to={target}"));
        let error = context.get(&url).await.unwrap_err().to_string();
        assert!(
            error.starts_with(&format!(
                "GET {url} refused: redirected to {target}: {reason}"
            )),
            "{error}"
        );
    }
    assert_eq!(server.hits_to("/redirect").len(), 2);
    assert!(
        server.hits_to("/article").is_empty(),
        "the redirect was not followed"
    );
}

/// No robots.txt, no rate limit, and an egress policy allowing `rules`.
fn runtime_allowing(rules: &[&str]) -> Runtime {
    let mut settings = runtime_settings(
        json!({"rate_limiter": {"enabled": false}, "robots_txt": {"enabled": false}}),
    );
    settings.egress = allowing(rules);
    Runtime::from_settings(settings).unwrap()
}

#[tokio::test]
async fn an_allowed_range_or_host_is_reached_and_nothing_more() {
    let server = TestServer::start(None).await;
    let (by_range, _) = scraper_context(&runtime_allowing(&["127.0.0.0/8"]), Value::Null);
    assert_eq!(
        by_range
            .get(server.url("/public/page"))
            .await
            .unwrap()
            .text(),
        "public"
    );
    // localhost resolves to 127.0.0.1 (and perhaps ::1, which is dropped): allowed too.
    let by_name = by_range
        .get(server.localhost_url("/public/page"))
        .await
        .unwrap();
    assert_eq!(by_name.text(), "public");

    let (by_host, _) = scraper_context(&runtime_allowing(&["localhost"]), Value::Null);
    let response = by_host
        .get(server.localhost_url("/public/page"))
        .await
        .unwrap();
    assert_eq!(response.text(), "public");
    // The name is allowed, not the address it resolves to.
    let error = by_host.get(server.url("/public/page")).await.unwrap_err();
    assert!(
        matches!(error, RequestError::EgressDenied { .. }),
        "{error}"
    );
    // Nor where an allowed host redirects to.
    let redirect = server.localhost_url(&format!("/redirect?to={}", server.url("/public/page")));
    let error = by_host.get(&redirect).await.unwrap_err().to_string();
    assert!(
        error.contains(&format!(
            "redirected to {}: 127.0.0.1 is a loopback address",
            server.url("/public/page")
        )),
        "{error}"
    );
    assert_eq!(server.hits_to("/public/page").len(), 3);
}

#[tokio::test]
async fn a_scrapers_own_proxy_is_held_to_the_policy_and_the_operators_is_trusted() {
    let server = TestServer::start(None).await;
    let proxy = TestProxy::start().await;
    let operator_proxy = format!("http://{}", proxy.addr);
    // Nothing internal allowed, but the operator's proxy runs on 127.0.0.1.
    let mut settings = runtime_settings(json!({
        "rate_limiter": {"enabled": false},
        "robots_txt": {"enabled": false},
        "proxy": {"proxy": operator_proxy},
    }));
    settings.egress = EgressPolicy::default();
    let runtime = Runtime::from_settings(settings).unwrap();

    // Through a proxy, the proxy resolves the target's name.
    let (context, _) = scraper_context(&runtime, Value::Null);
    let response = context.get(server.localhost_url("/article")).await.unwrap();
    assert_eq!(response.header("x-via"), Some("test-proxy"));
    // A literal address in the URL is checked all the same.
    let error = context.get(server.url("/article")).await.unwrap_err();
    assert!(
        matches!(error, RequestError::EgressDenied { .. }),
        "{error}"
    );

    // A scraper's own proxy at a refused address is refused when the job starts...
    let literal = scraper(
        "test",
        Value::Null,
        json!({"proxy": {"proxy": "http://169.254.169.254:3128"}}),
    );
    let hooks = RecordingHooks::new(literal.clone());
    let Err(error) = ScraperContext::new(literal, hooks, &runtime) else {
        panic!("a proxy on a link-local address is refused")
    };
    assert!(
        error.to_string().starts_with(
            "invalid config.plugins.proxy.proxy: 169.254.169.254 is a link-local address"
        ),
        "{error}"
    );
    // ...and one named by host when its name resolves.
    let (named, _) = scraper_context(
        &runtime,
        json!({"proxy": {"proxy": format!("http://localhost:{}", proxy.addr.port())}}),
    );
    let error = named
        .get(server.localhost_url("/article"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("refused: the proxy localhost resolves to "),
        "{error}"
    );
    assert_eq!(
        proxy.seen.lock().unwrap().len(),
        1,
        "only the operator's proxy was used"
    );
}
