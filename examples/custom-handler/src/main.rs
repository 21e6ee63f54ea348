//! A Sneakpeek server with one scraper handler written in Rust, next to the built-in ones.
//!
//! `cargo run -p custom-handler`, then create a scraper with handler `page_title` and params
//! `{"url": "https://example.com"}` in the UI at http://127.0.0.1:8080. Each run returns the
//! page's title and how many links it has, and remembers the title in the scraper's state, so
//! the next run can say whether it changed.

use engine::scraper::{async_trait, HandlerError, LogLevel, ScraperContext, ScraperHandler};
use serde_json::json;

/// Fetches `params.url` and reports its `<title>` and number of links.
struct PageTitle;

#[async_trait]
impl ScraperHandler for PageTitle {
    fn name(&self) -> &str {
        "page_title"
    }

    async fn run(&self, context: &ScraperContext) -> Result<String, HandlerError> {
        let url = context
            .params()
            .get("url")
            .and_then(|url| url.as_str())
            .ok_or("params.url (a string) is required")?;
        // The request goes through the middleware chain: rate limiter, robots.txt, User-Agent…
        let page = context.get(url).await?.error_for_status()?.text();
        let title = context
            .select(&page, "title")?
            .into_iter()
            .next()
            .map(|title| title.text)
            .unwrap_or_default();
        let links = context.select(&page, "a[href]")?.len();

        let previous = context.state();
        if previous.as_deref() != Some(title.as_str()) {
            context.log(
                LogLevel::Info,
                format!("title changed from {previous:?} to {title:?}"),
            );
            context.update_scraper_state(Some(title.clone())).await?;
        }
        Ok(json!({ "title": title, "links": links, "changed": previous.as_deref() != Some(title.as_str()) }).to_string())
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let server = match server::Server::builder().handler(PageTitle).build().await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("could not start: {}", engine::error::report(&error));
            return std::process::ExitCode::FAILURE;
        }
    };
    match server.run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("server failed: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
