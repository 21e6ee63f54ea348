//! The button that kills an active job, in the jobs table and on the job page.

use engine::model::ScraperJob;
use leptos::prelude::*;

use super::toasts::use_toasts;
use crate::api::kill_job;

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
