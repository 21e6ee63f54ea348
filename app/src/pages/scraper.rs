//! The scraper page: its settings, "Run now" with a priority, and its jobs, updated live.

use std::cell::RefCell;

use engine::model::{Scraper, ScraperJob, ScraperJobPriority, ScraperSchedule};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::{lazy_route, LazyRoute};

use crate::api::{get_scraper, kill_job, run_scraper, scraper_jobs, UiError};
use crate::components::{id_param, use_toasts, PriorityBadge, ReadOnlyHidden, StatusBadge};
use crate::json::{self, Loaded};
use crate::live::{self, Flow, JobsUpdate};
use crate::pages::loaded_page;
use crate::time::{duration, use_now, Time};

/// The scraper route, loaded on first visit: the scraper and its jobs start loading with its
/// code.
pub struct ScraperPage {
    data: Loaded<Option<Result<(Scraper, Vec<ScraperJob>), UiError>>>,
}

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
        "jobs",
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
    let run =
        Action::new(move |priority: &ScraperJobPriority| run_scraper(scraper_id, priority.value()));
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
            <select id="run-priority" data-testid="run-priority" on:change=move |event| {
                if let Some(value) = event_target_value(&event).parse().ok().and_then(ScraperJobPriority::from_value) {
                    priority.set(value);
                }
            }>
                {ScraperJobPriority::ALL.into_iter().map(|option| view! {
                    <option value=option.value() selected=option == ScraperJobPriority::Utmost>{option.label()}</option>
                }).collect_view()}
            </select>
            <button type="submit" class="button primary" data-testid="run-now" disabled=move || run.pending().get()>"Run now"</button>
        </form>
    }
}

/// The jobs of a scraper, newest first, with a kill button on active ones.
#[component]
pub fn JobsTable(scraper_id: i64, jobs: RwSignal<Vec<ScraperJob>>) -> impl IntoView {
    // Keyed by what can change, so a row re-renders when its job moves on.
    let key = |job: &ScraperJob| (job.id, job.status, job.last_active_at, job.finished_at);
    view! {
        <Show
            when=move || jobs.with(|jobs| !jobs.is_empty())
            fallback=|| view! { <p class="empty" data-testid="jobs-empty">"No jobs yet. “Run now” queues one; a schedule queues them on its own."</p> }
        >
            <div class="table-scroll">
                <table class="table" data-testid="jobs-table">
                    <thead>
                        <tr>
                            <th scope="col">"ID"</th>
                            <th scope="col">"Status"</th>
                            <th scope="col" class="wide-only">"Priority"</th>
                            <th scope="col">"Timeline"</th>
                            <th scope="col" class="wide-only">"Duration"</th>
                            <th scope="col">"Result"</th>
                            <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                        </tr>
                    </thead>
                    <tbody>
                        <For each=move || jobs.get() key=key let:job>
                            <JobRow scraper_id job jobs/>
                        </For>
                    </tbody>
                </table>
            </div>
        </Show>
    }
}

#[component]
fn JobRow(scraper_id: i64, job: ScraperJob, jobs: RwSignal<Vec<ScraperJob>>) -> impl IntoView {
    let link = format!("/scrapers/{scraper_id}/jobs/{}", job.id);
    let summary = job.result.as_deref().map(first_line).unwrap_or_default();
    let (id, status, priority, result) = (job.id, job.status, job.priority, job.result.clone());
    view! {
        <tr data-testid="job-row" data-job-id=id>
            <td><A href=link>{id}</A></td>
            <td><StatusBadge status/></td>
            <td class="wide-only"><PriorityBadge priority/></td>
            <td class="small"><Timeline job=job.clone()/></td>
            <td class="wide-only"><JobDuration job=job.clone()/></td>
            <td class="result-cell" data-testid="job-result-summary" title=result>{summary}</td>
            <td>{job.status.is_active().then(|| view! { <KillButton job on_killed=move |killed: ScraperJob| replace_job(jobs, killed)/> })}</td>
        </tr>
    }
}

/// The first line of a result, cut to fit a table cell.
fn first_line(result: &str) -> String {
    const MAX: usize = 80;
    let line = result.lines().next().unwrap_or_default();
    match line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None if result.lines().nth(1).is_some() => format!("{line} …"),
        None => line.to_owned(),
    }
}

/// Created, started and finished times of a job, those it has.
#[component]
pub fn Timeline(job: ScraperJob) -> impl IntoView {
    let steps = [
        ("Created", Some(job.created_at)),
        ("Started", job.started_at),
        (
            "Last active",
            job.last_active_at.filter(|_| job.status.is_active()),
        ),
        ("Finished", job.finished_at),
    ];
    view! {
        <ul class="timeline">
            {steps.into_iter().filter_map(|(label, at)| at.map(|at| view! { <li><span class="muted">{label} ": "</span><Time at/></li> })).collect_view()}
        </ul>
    }
}

/// How long a job ran: fixed once finished, growing while it runs.
#[component]
pub fn JobDuration(job: ScraperJob) -> impl IntoView {
    let now = use_now();
    move || match (job.started_at, job.finished_at) {
        (Some(started), Some(finished)) => duration(started, finished),
        (Some(started), None) => now
            .get()
            .map(|now| duration(started, now))
            .unwrap_or_default(),
        (None, _) => "—".to_owned(),
    }
}

/// Puts a newer state of a job in the list.
fn replace_job(jobs: RwSignal<Vec<ScraperJob>>, newer: ScraperJob) {
    jobs.update(|jobs| {
        jobs.iter_mut()
            .filter(|known| known.id == newer.id)
            .for_each(|known| *known = newer.clone())
    });
}

/// Kills an active job; `on_killed` gets the killed job at once (before any live update).
#[component]
pub fn KillButton(job: ScraperJob, #[prop(into)] on_killed: Callback<ScraperJob>) -> impl IntoView {
    let toasts = use_toasts();
    let (scraper_id, job_id) = (job.scraper.id, job.id);
    let kill = Action::new(move |_: &()| kill_job(scraper_id, job_id));
    Effect::new(move |_| match kill.value().get() {
        Some(Ok(killed)) => {
            toasts.success(format!("Job {job_id} killed."));
            on_killed.run(killed);
        }
        Some(Err(error)) => toasts.failure(format!("Could not kill job {job_id}: {error}")),
        None => {}
    });
    view! {
        <button type="button" class="button danger small" data-testid="kill-job" aria-label=format!("Kill job {job_id}") disabled=move || kill.pending().get() on:click=move |_| {
            kill.dispatch(());
        }>"Kill"</button>
    }
}

#[cfg(test)]
mod tests {
    use super::first_line;

    #[test]
    fn a_result_summary_is_its_first_line_cut_to_fit() {
        assert_eq!(first_line("ok"), "ok");
        assert_eq!(first_line("{\n  \"a\": 1\n}"), "{ …");
        assert_eq!(first_line(&"x".repeat(100)), format!("{}…", "x".repeat(80)));
    }
}
