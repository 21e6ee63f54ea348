//! Throughput of the `extract` handler against a local server: a 20 KB page, 5 fields, rate
//! limiting off (the other middleware on, as a scraper gets them by default). Prints pages/s.
//!
//! `cargo bench -p engine --features runtime --bench extract [-- PAGES CONCURRENCY]`
//! (CONCURRENCY is at most 16, the most requests a job has in flight).

#![allow(clippy::unwrap_used)] // a benchmark fails loudly on purpose

use std::sync::Arc;
use std::time::Instant;

use axum::extract::Path;
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use engine::model::Scraper;
use engine::scraper::{
    async_trait, builtin_handlers, run_scraper, JobHooks, LogLevel, Runtime, RuntimeSettings,
};
use serde_json::json;

/// A product page of about 20 KB.
fn page(id: u32) -> String {
    let mut html = format!(
        "<html><head><title>Product {id}</title></head><body><h1 class=\"name\">Product {id}</h1>\
         <p class=\"price\">Price: {}.99 EUR</p><div class=\"description\">A fine product.</div><ul>",
        id % 100
    );
    let mut item = 0;
    while html.len() < 20 * 1024 {
        html.push_str(&format!(
            "<li class=\"related\"><a href=\"/product/{item}\">Related product number {item}</a></li>"
        ));
        item += 1;
    }
    html.push_str("</ul></body></html>");
    html
}

/// A job that does not report to any queue.
struct Unobserved;

#[async_trait]
impl JobHooks for Unobserved {
    async fn heartbeat(&self) -> Result<(), engine::Error> {
        Ok(())
    }
    async fn update_scraper_state(
        &self,
        _: Option<String>,
    ) -> Result<Option<String>, engine::Error> {
        Err(engine::Error::internal("the benchmark keeps no state"))
    }
    fn log(&self, _: LogLevel, _: String) {}
}

#[tokio::main]
async fn main() {
    let mut arguments = std::env::args()
        .skip(1)
        .filter(|argument| argument != "--bench");
    let pages: u32 = arguments
        .next()
        .map_or(5_000, |pages| pages.parse().expect("PAGES"));
    let concurrency: u32 = arguments
        .next()
        .map_or(16, |limit| limit.parse().expect("CONCURRENCY"));

    let app = Router::new().route(
        "/product/{id}",
        get(|Path(id): Path<u32>| async move { Html(page(id)) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let urls: Vec<String> = (0..pages)
        .map(|id| format!("http://{addr}/product/{id}"))
        .collect();
    let scraper: Scraper = serde_json::from_value(json!({
        "id": 1, "name": "bench", "schedule": "inactive", "handler": "extract",
        "config": {"params": {
            "urls": urls,
            "max_concurrency": concurrency,
            "fields": {
                "title": {"css": "h1.name"},
                "price": {"regex": r"(?P<amount>\d+\.\d+) (?P<currency>EUR|USD)"},
                "description": {"css": ".description"},
                "related": {"css": "li.related a", "attr": "href", "all": true},
                "related_names": {"css": "li.related a", "all": true},
            }
        }},
    }))
    .unwrap();
    let mut settings = RuntimeSettings {
        // The local server is on 127.0.0.1, which the egress policy refuses by default.
        egress: ["127.0.0.1/32".parse().unwrap()].into_iter().collect(),
        ..RuntimeSettings::default()
    };
    settings.middleware.rate_limiter.enabled = false;
    let runtime = Runtime::from_settings(settings).unwrap();
    let handlers = builtin_handlers();

    let started = Instant::now();
    let result = run_scraper(&handlers, &runtime, scraper, Arc::new(Unobserved))
        .await
        .expect("the run succeeds");
    let elapsed = started.elapsed();
    let scraped = serde_json::from_str::<serde_json::Value>(&result).unwrap()["pages"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(scraped, pages as usize);
    println!(
        "extract: {pages} pages of {} KB, 5 fields, concurrency {concurrency}: {:.2} s, {:.0} pages/s",
        page(0).len() / 1024,
        elapsed.as_secs_f64(),
        f64::from(pages) / elapsed.as_secs_f64()
    );
}
