//! The scraper page: its settings, "Run now" with a priority, and its jobs, updated live.

use std::cell::RefCell;

use engine::model::{Scraper, ScraperJob, ScraperJobPriority, ScraperSchedule};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::{lazy_route, LazyRoute};

use crate::api::{get_scraper, run_scraper, scraper_jobs, UiError};
use crate::components::{
    id_param, loaded_page, use_toasts, ChoiceSelect, JobsTable, PriorityBadge, ReadOnlyHidden,
};
use crate::json::{self, Loaded};
use crate::live::{self, Flow, JobsUpdate};

/// The scraper route, loaded on first visit: the scraper and its jobs start loading with its
/// code.
pub struct ScraperPage {
    data: Loaded<ScraperData>,
}

/// The scraper with its jobs; `None` when the URL's id is not valid.
type ScraperData = Option<Result<(Scraper, Vec<ScraperJob>), UiError>>;

#[lazy_route]
impl LazyRoute for ScraperPage {
    fn data() -> Self {
        let id = id_param("id");
        let data = json::load(
            move || id.get(),
            |id| async move {
                let id = id?;
                Some(match get_scraper(id).await {
                    Ok(scraper) => scraper_jobs(id).await.map(|jobs| (scraper, jobs)),
                    Err(error) => Err(error),
                })
            },
        );
        Self { data }
    }

    fn view(this: Self) -> AnyView {
        loaded_page(this.data, "the scraper", "Scraper", |(scraper, jobs)| {
            view! { <ScraperView scraper jobs/> }
        })
    }
}

#[component]
fn ScraperView(scraper: Scraper, jobs: Vec<ScraperJob>) -> impl IntoView {
    let scraper_id = scraper.id;
    let jobs = RwSignal::new(jobs);
    // The scraper snapshots the stream sent: it sends each once per connection.
    let snapshots = RefCell::new(Vec::new());
    live::follow(
        live::scraper_jobs_url(scraper_id),
        move |update: JobsUpdate| {
            jobs.update(|jobs| update.apply(jobs, &mut snapshots.borrow_mut()));
            Flow::Continue
        },
        move || {
            leptos::task::spawn_local(async move {
                if let Ok(update) = scraper_jobs(scraper_id).await {
                    jobs.set(update);
                }
            })
        },
    );
    let title = scraper.name.clone();
    view! {
        <Title text=title/>
        <div class="page-header">
            <div>
                <p class="breadcrumb"><A href="/">"Scrapers"</A> " / " {scraper_id}</p>
                <h1 data-testid="scraper-name">{scraper.name.clone()}</h1>
            </div>
            <div class="actions">
                <RunNow scraper_id jobs/>
                <ReadOnlyHidden>
                    <A href=format!("/scrapers/{scraper_id}/edit") attr:class="button" attr:data-testid="edit-scraper">"Edit"</A>
                </ReadOnlyHidden>
            </div>
        </div>
        <Settings scraper/>
        <h2>"Jobs"</h2>
        <JobsTable scraper_id jobs/>
    }
}

/// The scraper's settings, as a read-only summary.
#[component]
fn Settings(scraper: Scraper) -> impl IntoView {
    let schedule = match scraper.schedule {
        ScraperSchedule::Crontab => format!(
            "Crontab {} (UTC)",
            scraper.schedule_crontab.unwrap_or_default()
        ),
        other => other.label().to_owned(),
    };
    let config = serde_json::to_string_pretty(&scraper.config).unwrap_or_default();
    view! {
        <section class="card" aria-label="Settings">
            <dl class="settings">
                <dt>"Handler"</dt><dd><code>{scraper.handler}</code></dd>
                <dt>"Schedule"</dt><dd data-testid="scraper-schedule">{schedule}</dd>
                <dt>"Priority"</dt><dd><PriorityBadge priority=scraper.schedule_priority/></dd>
                <dt>"Timeout"</dt><dd>{scraper.timeout_seconds.map_or_else(|| "None".to_owned(), |seconds| format!("{seconds} s"))}</dd>
                <dt>"State"</dt><dd>{scraper.state.unwrap_or_else(|| "None".to_owned())}</dd>
            </dl>
            <details>
                <summary>"Config"</summary>
                <pre class="code">{config}</pre>
            </details>
        </section>
    }
}

/// "Run now" with a priority; the new job shows up in the jobs table.
#[component]
fn RunNow(scraper_id: i64, jobs: RwSignal<Vec<ScraperJob>>) -> impl IntoView {
    let toasts = use_toasts();
    let priority = RwSignal::new(ScraperJobPriority::Utmost);
    let run = Action::new(move |priority: &ScraperJobPriority| run_scraper(scraper_id, *priority));
    Effect::new(move |_| match run.value().get() {
        Some(Ok(job)) => {
            toasts.success(format!(
                "Job {} queued with {} priority.",
                job.id,
                job.priority.label().to_lowercase()
            ));
            // Shown at once; the live stream confirms it.
            jobs.update(|jobs| {
                if !jobs.iter().any(|known| known.id == job.id) {
                    jobs.insert(0, job)
                }
            });
        }
        Some(Err(error)) => toasts.failure(format!("Could not run the scraper: {error}")),
        None => {}
    });
    view! {
        <form class="inline-form" on:submit=move |event| {
            event.prevent_default();
            run.dispatch(priority.get_untracked());
        }>
            <label class="visually-hidden" for="run-priority">"Priority of the run"</label>
            <ChoiceSelect id="run-priority" test_id="run-priority" options=ScraperJobPriority::ALL.to_vec() value=priority/>
            <button type="submit" class="button primary" data-testid="run-now" disabled=move || run.pending().get()>"Run now"</button>
        </form>
    }
}
