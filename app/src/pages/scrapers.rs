//! The scrapers page: every scraper with its schedule, last job and next run, filtered by
//! name with the search box (kept in the URL as `?q=`, so reload and back keep it).

use engine::model::BuiltinHandler;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::query_signal;

use crate::api::{list_scrapers, ScraperRow};
use crate::components::{use_settings, LoadError, PriorityBadge, ReadOnlyHidden, StatusBadge};
use crate::json;
use crate::time::Time;

#[component]
pub fn ScrapersPage() -> impl IntoView {
    let scrapers = json::load(|| (), |_| list_scrapers());
    let (query, set_query) = query_signal::<String>("q");
    let filter = Memo::new(move |_| query.get().unwrap_or_default().to_lowercase());

    view! {
        <Title text="Scrapers"/>
        <div class="page-header">
            <h1>"Scrapers"</h1>
            <div class="actions">
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
                <ReadOnlyHidden>
                    <A href="/new" attr:class="button primary" attr:data-testid="new-scraper">"New scraper"</A>
                </ReadOnlyHidden>
            </div>
        </div>
        <Suspense fallback=|| view! { <p class="muted">"Loading scrapers…"</p> }>
            {move || Suspend::new(async move {
                match scrapers.await {
                    Ok(rows) => view! { <ScrapersTable rows filter/> }.into_any(),
                    Err(error) => view! { <LoadError what="the scrapers" error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ScrapersTable(rows: Vec<ScraperRow>, filter: Memo<String>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <EmptyState/> }.into_any();
    }
    let rows = StoredValue::new(rows);
    let visible = move || {
        let filter = filter.get();
        rows.read_value()
            .iter()
            .filter(|row| row.scraper.name.to_lowercase().contains(&filter))
            .cloned()
            .collect::<Vec<_>>()
    };
    view! {
        <div class="table-scroll">
            <table class="table" data-testid="scrapers-table">
                <thead>
                    <tr>
                        <th scope="col">"ID"</th>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Schedule"</th>
                        <th scope="col">"Priority"</th>
                        <th scope="col" class="wide-only">"Handler"</th>
                        <th scope="col">"Last job"</th>
                        <th scope="col" class="wide-only">"Next run"</th>
                    </tr>
                </thead>
                <tbody>
                    <For each=visible key=|row| row.scraper.id let:row>
                        <ScraperTableRow row/>
                    </For>
                </tbody>
            </table>
        </div>
        <Show when=move || visible().is_empty()>
            <p class="empty" data-testid="scrapers-no-match">"No scraper's name contains “" {move || filter.get()} "”."</p>
        </Show>
    }
    .into_any()
}

#[component]
fn ScraperTableRow(row: ScraperRow) -> impl IntoView {
    let ScraperRow {
        scraper,
        last_job,
        next_run,
    } = row;
    let mut schedule = match (&scraper.schedule_crontab, scraper.schedule) {
        (Some(crontab), engine::model::ScraperSchedule::Crontab) => format!("Crontab {crontab}"),
        (_, schedule) => schedule.label().to_owned(),
    };
    if let Some(zone) = scraper
        .schedule_timezone
        .as_deref()
        .filter(|_| scraper.schedule.reads_time_zone())
    {
        schedule.push_str(&format!(" ({zone})"));
    }
    let link = format!("/scrapers/{}", scraper.id);
    // Plain anchors (the router still navigates on their clicks): a row has no use for `A`'s
    // relative paths and `aria-current`, which cost a reactive memo per link, a thousand
    // rows over.
    view! {
        <tr data-testid="scraper-row">
            <td>{scraper.id}</td>
            <td><a href=link>{scraper.name}</a></td>
            <td>{schedule}</td>
            <td><PriorityBadge priority=scraper.schedule_priority/></td>
            <td class="wide-only"><code>{scraper.handler}</code></td>
            <td>
                {match last_job {
                    Some(job) => view! {
                        <a href=format!("/scrapers/{}/jobs/{}", scraper.id, job.id) class="plain">
                            <StatusBadge status=job.status/>
                        </a>
                        " "
                        <span class="muted small"><Time at=job.at/></span>
                    }.into_any(),
                    None => view! { <span class="muted">"Never run"</span> }.into_any(),
                }}
            </td>
            <td class="wide-only" data-testid="next-run">
                {match next_run {
                    Some(at) => view! { <Time at/> }.into_any(),
                    None => view! { <span class="muted">"Not scheduled"</span> }.into_any(),
                }}
            </td>
        </tr>
    }
}

/// What to do when there is nothing to show, depending on whether changes are allowed.
#[component]
fn EmptyState() -> impl IntoView {
    let settings = use_settings();
    view! {
        <div class="empty" data-testid="scrapers-empty">
            <p><strong>"No scrapers yet."</strong></p>
            <Transition>
                {move || Suspend::new(async move {
                    if settings.await.map(|settings| settings.read_only).unwrap_or(false) {
                        view! {
                            <p>"This server is read-only: scrapers are added on a server that accepts changes, or through its JsonRPC API."</p>
                        }.into_any()
                    } else {
                        view! {
                            <p>"A scraper runs a handler (such as " <code>{BuiltinHandler::Extract.name()}</code> " or " <code>{BuiltinHandler::Script.name()}</code>
                            ") on a schedule. Create one with " <A href="/new">"New scraper"</A>
                            ", or through the JsonRPC API's " <code>"create_scraper"</code> "."</p>
                        }.into_any()
                    }
                })}
            </Transition>
        </div>
    }
}
