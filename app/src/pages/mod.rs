//! The pages of the UI, one module per page (the form serves both new and edit).

pub mod dashboard;
pub mod form;
pub mod job;
pub mod login;
pub mod scraper;
pub mod scrapers;

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::UiError;
use crate::components::LoadError;
use crate::json::Loaded;

/// The body of a page showing one thing named by its address (a scraper, a job): a loading
/// line, then the thing, the not-found page when the address names nothing, or the error.
fn loaded_page<T, V>(
    data: Loaded<Option<Result<T, UiError>>>,
    what: &'static str,
    title: &'static str,
    show: fn(T) -> V,
) -> AnyView
where
    T: Clone + Send + Sync + 'static,
    V: IntoView + 'static,
{
    view! {
        <Suspense fallback=move || view! { <p class="muted">"Loading " {what} "…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    None => view! { <NotFound/> }.into_any(),
                    Some(Ok(value)) => show(value).into_any(),
                    Some(Err(error)) => view! { <Title text=title/><LoadError what error/> }.into_any(),
                }
            })}
        </Suspense>
    }
    .into_any()
}

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
