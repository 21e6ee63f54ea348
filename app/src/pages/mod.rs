//! The pages of the UI, one module per page (the form serves both new and edit).

pub mod dashboard;
pub mod form;
pub mod job;
pub mod login;
pub mod scraper;
pub mod scrapers;

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found"/>
        <h1>"404"</h1>
        <p>"Nothing here. " <a href="/">"Back to the scrapers"</a></p>
    }
}
