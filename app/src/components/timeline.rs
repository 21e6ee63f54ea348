//! When a job happened: its timeline, and how long it ran.

use engine::model::ScraperJob;
use leptos::prelude::*;

use crate::time::{duration, use_now, Time};

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
