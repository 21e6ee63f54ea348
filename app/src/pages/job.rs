//! The job page: its status, timeline, result and log, updated live until it has finished.

use engine::model::{JobAttempt, JobLogLine, ScraperJob};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::{lazy_route, LazyRoute};

use crate::api::{get_job, job_logs, UiError};
use crate::components::{
    follow_job, id_param, loaded_page, JobDuration, JobLog, JobResult, KillButton, PriorityBadge,
    StatusBadge, Timeline,
};
use crate::json::{self, Loaded};
use crate::time::Time;

/// Log lines the server renders with the page; the rest stream in after hydration.
const FIRST_LINES: usize = 1_000;

/// The job route, loaded on first visit: the job and its first log lines start loading with
/// its code.
pub struct JobPage {
    data: Loaded<JobData>,
}

/// The job with its first log lines; `None` when the URL's ids are not valid.
type JobData = Option<Result<(ScraperJob, Vec<JobLogLine>), UiError>>;

#[lazy_route]
impl LazyRoute for JobPage {
    fn data() -> Self {
        let scraper_id = id_param("id");
        let job_id = id_param("job_id");
        let data = json::load(
            move || scraper_id.get().zip(job_id.get()),
            |ids| async move {
                let (scraper_id, job_id) = ids?;
                Some(match get_job(scraper_id, job_id).await {
                    Ok(job) => job_logs(scraper_id, job_id, None, FIRST_LINES)
                        .await
                        .map(|lines| (job, lines)),
                    Err(error) => Err(error),
                })
            },
        );
        Self { data }
    }

    fn view(this: Self) -> AnyView {
        loaded_page(this.data, "the job", "Job", |(job, lines)| {
            view! { <JobView job lines/> }
        })
    }
}

#[component]
fn JobView(job: ScraperJob, lines: Vec<JobLogLine>) -> impl IntoView {
    let (scraper_id, job_id, scraper_name) = (job.scraper.id, job.id, job.scraper.name.clone());
    let job = RwSignal::new(job);
    let lines = RwSignal::new(lines);
    follow_job(job, lines);
    view! {
        <Title text=format!("Job {job_id} of {scraper_name}")/>
        <div class="page-header">
            <div>
                <p class="breadcrumb">
                    <A href="/">"Scrapers"</A> " / " <A href=format!("/scrapers/{scraper_id}")>{scraper_name}</A> " / job"
                </p>
                <h1>"Job " {job_id} " " {move || view! { <StatusBadge status=job.get().status/> }}</h1>
            </div>
            <div class="actions">
                {move || {
                    let current = job.get();
                    current.status.is_active().then(|| view! { <KillButton job=current on_killed=move |killed| job.set(killed)/> })
                }}
            </div>
        </div>
        <section class="card" aria-label="Timeline">
            {move || {
                let current = job.get();
                view! {
                    <dl class="settings">
                        <dt>"Priority"</dt><dd><PriorityBadge priority=current.priority/></dd>
                        <dt>"Duration"</dt><dd data-testid="job-duration"><JobDuration job=current.clone()/></dd>
                        <dt>"Attempt"</dt><dd data-testid="job-attempt"><AttemptOf job=current.clone()/></dd>
                    </dl>
                    <Timeline job=current/>
                }
            }}
        </section>
        {move || job.with(|job| (!job.attempts.is_empty()).then(|| view! { <Attempts attempts=job.attempts.clone()/> }))}
        <h2>"Result"</h2>
        {move || view! { <JobResult result=job.get().result/> }}
        <h2>"Log"</h2>
        <JobLog lines/>
    }
}

/// "2 of 3", and when a retry waiting in the queue is due.
#[component]
fn AttemptOf(job: ScraperJob) -> impl IntoView {
    let of = job
        .scraper
        .retry
        .as_ref()
        .map(|policy| format!(" of {}", policy.max_attempts))
        .unwrap_or_default();
    let due = job.retry_due();
    view! {
        {job.attempt} {of}
        {due.map(|at| view! { <span class="hint" data-testid="next-attempt">" — due " <Time at/></span> })}
    }
}

/// The attempts before the current one: how each ended.
#[component]
fn Attempts(attempts: Vec<JobAttempt>) -> impl IntoView {
    view! {
        <h2>"Earlier attempts"</h2>
        <table class="table" data-testid="job-attempts">
            <thead><tr><th>"Attempt"</th><th>"Failed with"</th><th>"Ended"</th><th>"Error"</th></tr></thead>
            <tbody>
                {attempts.into_iter().map(|attempt| view! {
                    <tr>
                        <td>{attempt.attempt}</td>
                        <td>{attempt.reason.label()}</td>
                        <td><Time at=attempt.finished_at/></td>
                        <td class="mono">{attempt.result.unwrap_or_default()}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}
