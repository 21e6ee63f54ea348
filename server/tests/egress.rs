//! What the binary's scrapers may reach and take: the egress policy (`--egress-allow`,
//! `SNEAKPEEK_EGRESS_ALLOW`) and the ceilings of request limits, as the server and
//! `sneakpeek run-once` read them.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::process::Output;

use axum::response::Html;
use axum::routing::get;
use clap::Parser;
use engine::scraper::{EgressRule, RuntimeSettings};
use serde_json::json;
use server::{Server, Settings};
use tokio::net::TcpListener;
use tokio::process::Command;

/// A page on 127.0.0.1; its URL.
async fn local_page() -> String {
    let app = axum::Router::new().route("/", get(|| async { Html("<h1>Local page</h1>") }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/")
}

/// `sneakpeek run-once` of an `extract` scraper of `url`, with `arguments` after `run-once`
/// and `allow` as `SNEAKPEEK_EGRESS_ALLOW`.
async fn run_once(url: &str, arguments: &[&str], allow: Option<&str>) -> Output {
    let config = json!({
        "params": {"url": url, "fields": {"title": {"css": "h1"}}},
        "plugins": {"robots_txt": {"enabled": false}},
    });
    let mut command = Command::new(env!("CARGO_BIN_EXE_sneakpeek"));
    command
        .args([
            "run-once",
            "--handler",
            "extract",
            "--config",
            &config.to_string(),
        ])
        .args(arguments)
        .env_remove("SNEAKPEEK_EGRESS_ALLOW");
    if let Some(allow) = allow {
        command.env("SNEAKPEEK_EGRESS_ALLOW", allow);
    }
    command.output().await.expect("the binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_address_is_refused_unless_the_operator_allows_it() {
    let url = local_page().await;

    let refused = run_once(&url, &[], None).await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "GET {url} refused: 127.0.0.1 is a loopback address, which scrapers may not reach; the operator can allow it with --egress-allow 127.0.0.1/32 (SNEAKPEEK_EGRESS_ALLOW)"
        )),
        "{stderr}"
    );

    for (arguments, allow) in [
        (&["--egress-allow", "127.0.0.1/32"][..], None),
        (&[][..], Some("10.0.0.0/8,127.0.0.1")),
    ] {
        let allowed = run_once(&url, arguments, allow).await;
        let stdout = String::from_utf8_lossy(&allowed.stdout);
        assert!(
            allowed.status.success(),
            "{arguments:?} {allow:?}: {}",
            String::from_utf8_lossy(&allowed.stderr)
        );
        assert!(stdout.contains(r#""title":"Local page""#), "{stdout}");
    }
}

#[test]
fn the_scraping_flags_make_the_runtime_settings() {
    let settings = Settings::try_parse_from([
        "sneakpeek",
        "--egress-allow",
        "127.0.0.1/32,intranet.example",
        "--max-fetch-timeout-seconds",
        "60",
        "--max-fetch-bytes",
        "1000000",
        "--job-timeout-seconds",
        "90",
    ])
    .unwrap();
    let runtime = settings.runtime();
    let allowed: Vec<EgressRule> = ["127.0.0.1/32", "intranet.example"]
        .iter()
        .map(|rule| rule.parse().unwrap())
        .collect();
    assert_eq!(runtime.egress.allowed(), allowed);
    assert_eq!(runtime.max_fetch_timeout.as_secs(), 60);
    assert_eq!(runtime.max_fetch_bytes, 1_000_000);
    assert_eq!(runtime.default_job_timeout_seconds, 90);

    let defaults = Settings::try_parse_from(["sneakpeek"]).unwrap().runtime();
    assert_eq!(
        (
            defaults.max_fetch_timeout,
            defaults.max_fetch_bytes,
            defaults.default_job_timeout_seconds
        ),
        {
            let engine = RuntimeSettings::default();
            (
                engine.max_fetch_timeout,
                engine.max_fetch_bytes,
                engine.default_job_timeout_seconds,
            )
        }
    );

    let error = Settings::try_parse_from(["sneakpeek", "--egress-allow", "10.0.0.0/33"])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("'10.0.0.0/33' is not an address, a range like 10.0.0.0/8 or a host name"),
        "{error}"
    );
}

#[tokio::test]
async fn default_limits_over_the_operators_ceiling_stop_the_start() {
    let settings = Settings::try_parse_from([
        "sneakpeek",
        "--max-fetch-timeout-seconds",
        "10",
        "--middleware",
        r#"{"limits": {"timeout": 20}}"#,
    ])
    .unwrap();
    let Err(error) = Server::builder().settings(settings).build().await else {
        panic!("the server must not start")
    };
    assert_eq!(
        error.to_string(),
        "invalid middleware settings limits.timeout: 20 s is over the operator's maximum of 10 s (--max-fetch-timeout-seconds)"
    );
}
