//! The pages of the UI.

use engine::model::Scraper;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::query_signal;

use crate::api::list_scrapers;

/// The list of scrapers, filtered by name with the search box (kept in the URL as `?q=`).
#[component]
pub fn ScrapersPage() -> impl IntoView {
    let scrapers = Resource::new(|| (), |_| list_scrapers());
    let (query, set_query) = query_signal::<String>("q");
    let filter = Memo::new(move |_| query.get().unwrap_or_default().to_lowercase());

    view! {
        <Title text="Scrapers"/>
        <div class="page-header">
            <h1>"Scrapers"</h1>
            <input
                type="search"
                class="search"
                placeholder="Search by name…"
                aria-label="Search scrapers by name"
                data-testid="scraper-search"
                prop:value=move || query.get().unwrap_or_default()
                on:input=move |event| {
                    let text = event_target_value(&event);
                    set_query.set((!text.is_empty()).then_some(text));
                }
            />
        </div>
        <Suspense fallback=|| view! { <p class="muted">"Loading scrapers…"</p> }>
            {move || Suspend::new(async move {
                match scrapers.await {
                    Ok(list) => view! { <ScrapersTable scrapers=list filter/> }.into_any(),
                    Err(error) => view! { <p class="error" role="alert">"Could not load scrapers: " {error.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ScrapersTable(scrapers: Vec<Scraper>, filter: Memo<String>) -> impl IntoView {
    if scrapers.is_empty() {
        return view! {
            <p class="empty" data-testid="scrapers-empty">
                "No scrapers yet. Create one through the JsonRPC API (create_scraper) to see it here."
            </p>
        }
        .into_any();
    }
    let visible = move || {
        let filter = filter.get();
        scrapers.iter().filter(|scraper| scraper.name.to_lowercase().contains(&filter)).cloned().collect::<Vec<_>>()
    };
    view! {
        <table class="table" data-testid="scrapers-table">
            <thead>
                <tr><th>"ID"</th><th>"Name"</th><th>"Schedule"</th><th>"Priority"</th><th>"Handler"</th></tr>
            </thead>
            <tbody>
                <For each=visible key=|scraper| scraper.id let:scraper>
                    <tr data-testid="scraper-row">
                        <td>{scraper.id}</td>
                        <td>{scraper.name.clone()}</td>
                        <td>{scraper.schedule.label()}</td>
                        <td>{scraper.schedule_priority.label()}</td>
                        <td><code>{scraper.handler.clone()}</code></td>
                    </tr>
                </For>
            </tbody>
        </table>
    }
    .into_any()
}

#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <Title text="Not found"/>
        <h1>"404"</h1>
        <p>"Nothing here. " <a href="/">"Back to the scrapers"</a></p>
    }
}
