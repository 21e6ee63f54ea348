//! The jobs of a scraper, newest first, as a table.

use engine::model::ScraperJob;
use leptos::prelude::*;
use leptos_router::components::A;

use super::badges::{PriorityBadge, StatusBadge};
use super::kill_button::KillButton;
use super::timeline::{JobDuration, Timeline};
use crate::time::Time;

/// The jobs of a scraper, newest first, with a kill button on active ones.
#[component]
pub fn JobsTable(scraper_id: i64, jobs: RwSignal<Vec<ScraperJob>>) -> impl IntoView {
    // Keyed by what can change, so a row re-renders when its job moves on.
    let key = |job: &ScraperJob| {
        (
            job.id,
            job.status,
            job.attempt,
            job.last_active_at,
            job.finished_at,
        )
    };
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
            <td><StatusBadge status/>{attempt_note(&job)}</td>
            <td class="wide-only"><PriorityBadge priority/></td>
            <td class="small"><Timeline job=job.clone()/></td>
            <td class="wide-only"><JobDuration job=job.clone()/></td>
            <td class="result-cell" data-testid="job-result-summary" title=result>{summary}</td>
            <td>{job.status.is_active().then(|| view! { <KillButton job on_killed=move |killed: ScraperJob| replace_job(jobs, killed)/> })}</td>
        </tr>
    }
}

/// For a job past its first attempt: which attempt it is on, and when a retry waiting in the
/// queue is due.
fn attempt_note(job: &ScraperJob) -> Option<impl IntoView> {
    let due = job.retry_due();
    (job.attempt > 1).then(|| {
        view! {
            <span class="hint attempt-note" data-testid="job-attempt-note">
                " attempt " {job.attempt}
                {due.map(|at| view! { ", due " <Time at/> })}
            </span>
        }
    })
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

/// Puts a newer state of a job in the list.
fn replace_job(jobs: RwSignal<Vec<ScraperJob>>, newer: ScraperJob) {
    jobs.update(|jobs| {
        jobs.iter_mut()
            .filter(|known| known.id == newer.id)
            .for_each(|known| *known = newer.clone())
    });
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
