//! Server functions: the UI's calls into the engine. On the server they run the engine
//! operation; in the browser they are HTTP calls to the server.

use engine::model::Scraper;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
fn engine() -> Result<engine::Engine, ServerFnError> {
    use_context::<engine::Engine>().ok_or_else(|| ServerFnError::new("the engine is not available"))
}

/// All scrapers, by id.
#[server]
pub async fn list_scrapers() -> Result<Vec<Scraper>, ServerFnError> {
    engine()?.get_scrapers().await.map_err(|error| ServerFnError::new(error.describe()))
}
