//! What a page shows of the data it loads: the thing its address names (an id in the route),
//! a loading line meanwhile, and instead of the thing the not-found page or the load error.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::UiError;
use crate::json::Loaded;

/// A positive integer route parameter, e.g. the `:id` of `/scrapers/:id`.
pub fn id_param(name: &'static str) -> Memo<Option<i64>> {
    let params = use_params_map();
    Memo::new(move |_| {
        params
            .with(|params| params.get(name))
            .and_then(|value| value.parse().ok())
            .filter(|id: &i64| *id > 0)
    })
}

/// The body of a page showing one thing named by its address (a scraper, a job): a loading
/// line, then the thing, the not-found page when the address names nothing, or the error.
pub fn loaded_page<T, V>(
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

/// A failed load, said plainly, with the way out.
#[component]
pub fn LoadError(what: &'static str, error: UiError) -> impl IntoView {
    view! {
        <div class="notice error" role="alert">
            <p>"Could not load " {what} ": " {error.message}</p>
            <p><a href="/">"Back to the scrapers"</a></p>
        </div>
    }
}

/// The page of an address that names nothing, answered with HTTP 404.
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
