//! "Try it": runs the script in the editor once, without saving it, and shows the job's
//! status, result and log as they come.

use engine::model::{BuiltinHandler, ScraperConfig, ScraperJob, ScraperJobPriority};
use leptos::prelude::*;

use crate::api::run_once;
use crate::components::{follow_job, use_toasts, JobLog, JobResult, StatusBadge};

/// "Run once": runs `handler` with the form's config (and the scraper's `state`) without
/// saving them.
#[component]
pub fn RunOnce(
    handler: BuiltinHandler,
    config: Memo<Result<ScraperConfig, String>>,
    state: Option<String>,
    /// The priority chosen in the form: a try-out waits its turn like the scraper would.
    priority: RwSignal<ScraperJobPriority>,
) -> impl IntoView {
    let toasts = use_toasts();
    let run = Action::new(move |config: &ScraperConfig| {
        run_once(
            handler.name().to_owned(),
            config.clone(),
            state.clone(),
            priority.get_untracked(),
        )
    });
    Effect::new(move |_| {
        if let Some(Err(error)) = run.value().get() {
            toasts.failure(format!("Could not run: {error}"));
        }
    });
    view! {
        <section class="card run-once" aria-label="Run once" data-testid="run-once">
            <div class="page-header">
                <h2>"Try it"</h2>
                <button type="button" class="button" data-testid="run-once-button"
                    disabled=move || run.pending().get() || config.with(Result::is_err)
                    on:click=move |_| {
                        if let Ok(config) = config.get_untracked() {
                            run.dispatch(config);
                        }
                    }>"Run once"</button>
            </div>
            <p class="hint">"Runs the script as it is in the editor, without saving it. Its state changes are not kept."</p>
            {move || run.value().get().and_then(Result::ok).map(|job| view! { <RunOnceResult job/> })}
        </section>
    }
}

/// The job a "Run once" started, followed live like on its job page.
#[component]
fn RunOnceResult(job: ScraperJob) -> impl IntoView {
    let job = RwSignal::new(job);
    let lines = RwSignal::new(Vec::new());
    follow_job(job, lines);
    view! {
        <p>"Status: " {move || view! { <StatusBadge status=job.get().status/> }}</p>
        {move || view! { <JobResult result=job.get().result/> }}
        <JobLog lines/>
    }
}
