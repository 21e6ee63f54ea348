//! The job page (status, timeline, result, live log) and the inline "Run once" panel of the
//! script editor, which shows an ephemeral job the same way.

use engine::model::{JobLogLine, ScraperConfig, ScraperJob, ScraperJobPriority};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::{lazy_route, LazyRoute};

use crate::api::{get_job, job_logs, run_once, UiError};
use crate::components::{id_param, use_toasts, PriorityBadge, StatusBadge};
use crate::json::{self, Loaded};
use crate::live::{self, Flow, JobUpdate, LOG_CHUNK};
use crate::pages::loaded_page;
use crate::pages::scraper::{JobDuration, KillButton, Timeline};
use crate::time::time_of_day_millis;

/// Log lines the server renders with the page; the rest stream in after hydration.
const FIRST_LINES: usize = 1_000;

/// The job route, loaded on first visit: the job and its first log lines start loading with
/// its code.
pub struct JobPage {
    data: Loaded<Option<Result<(ScraperJob, Vec<JobLogLine>), UiError>>>,
}

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
                    </dl>
                    <Timeline job=current/>
                }
            }}
        </section>
        <h2>"Result"</h2>
        {move || view! { <ResultView result=job.get().result/> }}
        <h2>"Log"</h2>
        <LogView lines/>
    }
}

/// Keeps `job` and `lines` up to date from the job's live stream (or by polling), until the
/// job has finished and its whole log is here.
fn follow_job(job: RwSignal<ScraperJob>, lines: RwSignal<Vec<JobLogLine>>) {
    let (scraper_id, job_id) = job.with_untracked(|job| (job.scraper.id, job.id));
    let last_line = move || lines.with_untracked(|lines| lines.last().map_or(0, |line| line.id));
    // Overlapping updates (a poll racing a reconnect) must not repeat lines.
    let add_lines = move |new: Vec<JobLogLine>| {
        let after = last_line();
        lines.update(|lines| lines.extend(new.into_iter().filter(|line| line.id > after)));
    };
    live::follow(
        live::job_url(scraper_id, job_id, last_line()),
        "job",
        move |update: JobUpdate| {
            let last_chunk = update.lines.len() < LOG_CHUNK;
            if !update.job.is_empty() {
                job.update(|job| update.job.apply(job));
            }
            add_lines(update.lines);
            if last_chunk && job.with_untracked(|job| job.status.is_finished()) {
                Flow::Stop
            } else {
                Flow::Continue
            }
        },
        move || {
            leptos::task::spawn_local(async move {
                if let (Ok(polled), Ok(new)) = (
                    get_job(scraper_id, job_id).await,
                    job_logs(scraper_id, job_id, Some(last_line()), LOG_CHUNK).await,
                ) {
                    if job.with_untracked(|known| *known != polled) {
                        job.set(polled);
                    }
                    add_lines(new);
                }
            })
        },
    );
}

/// A job's result: pretty-printed when it is JSON, with a copy button.
#[component]
fn ResultView(result: Option<String>) -> impl IntoView {
    let Some(result) = result else {
        return view! { <p class="muted" data-testid="job-result">"No result yet."</p> }.into_any();
    };
    let shown = json::parse::<serde_json::Value>(&result)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or(result);
    let toasts = use_toasts();
    let copied = shown.clone();
    view! {
        <div class="result">
            <button type="button" class="button small copy" data-testid="copy-result" on:click=move |_| {
                copy_to_clipboard(&copied);
                toasts.success("Result copied.");
            }>"Copy"</button>
            <pre class="code" data-testid="job-result">{shown}</pre>
        </div>
    }
    .into_any()
}

fn copy_to_clipboard(text: &str) {
    #[cfg(feature = "hydrate")]
    {
        // The promise settles on its own; a refusal (no permission) leaves the text selectable.
        let _ = window().navigator().clipboard().write_text(text);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = text;
}

/// Height of one log line in pixels; `.log-line` in style/main.css has the same.
const LINE_HEIGHT: f64 = 20.0;
/// Lines rendered above and below the visible ones, so fast scrolling shows no gap.
const OVERSCAN: usize = 30;
/// Lines visible at once at most (the log box is at most this many lines tall).
const VISIBLE: usize = 30;

/// A job log of any length: only the lines in view are in the page (a 100,000-line log is
/// as fast as a short one), coloured by level, following the end while "Follow" is on.
#[component]
fn LogView(lines: RwSignal<Vec<JobLogLine>>) -> impl IntoView {
    let scroll_top = RwSignal::new(0.0);
    let follow = RwSignal::new(true);
    let container = NodeRef::<leptos::html::Div>::new();
    let count = Memo::new(move |_| lines.with(Vec::len));
    let window = move || {
        let first = (scroll_top.get() / LINE_HEIGHT) as usize;
        let start = first.saturating_sub(OVERSCAN);
        lines.with(|lines| {
            let end = (first + VISIBLE + OVERSCAN).min(lines.len());
            lines.get(start.min(end)..end).unwrap_or_default().to_vec()
        })
    };
    let offset = move || {
        let first = (scroll_top.get() / LINE_HEIGHT) as usize;
        format!(
            "translateY({}px)",
            first.saturating_sub(OVERSCAN).min(count.get()) as f64 * LINE_HEIGHT
        )
    };
    // New lines while following: jump to the end.
    Effect::new(move |_| {
        count.track();
        if follow.get() {
            if let Some(element) = container.get() {
                element.set_scroll_top(element.scroll_height());
            }
        }
    });
    let on_scroll = move |_| {
        if let Some(element) = container.get() {
            let top = element.scroll_top();
            scroll_top.set(f64::from(top));
            // Scrolling up to read stops following; scrolling back to the end resumes it.
            let at_end =
                top + element.client_height() >= element.scroll_height() - LINE_HEIGHT as i32;
            if follow.get_untracked() != at_end {
                follow.set(at_end);
            }
        }
    };
    view! {
        <div class="log-toolbar">
            <span class="muted" data-testid="log-count">{move || format!("{} lines", count.get())}</span>
            <label class="toggle">
                <input type="checkbox" data-testid="log-follow" prop:checked=move || follow.get() on:change=move |event| follow.set(event_target_checked(&event))/>
                " Follow the end"
            </label>
        </div>
        <div class="log" node_ref=container tabindex="0" role="log" aria-label="Job log (times in UTC)" on:scroll=on_scroll data-testid="job-log">
            <Show when=move || count.get() == 0>
                <p class="muted log-empty">"No log lines yet."</p>
            </Show>
            <div class="log-content" style:height=move || format!("{}px", count.get() as f64 * LINE_HEIGHT)>
                <div style:transform=offset>
                    <For each=window key=|line| line.id let:line>
                        <div class=format!("log-line level-{}", line.level.as_str().to_lowercase()) data-testid="log-line">
                            <span class="log-at">{time_of_day_millis(&line.at)}</span>
                            <span class="log-level">{line.level.as_str()}</span>
                            <span class="log-message" title=line.message.clone()>{line.message.clone()}</span>
                        </div>
                    </For>
                </div>
            </div>
        </div>
    }
}

/// "Run once": runs the form's handler and config without saving, and shows the job's
/// status, result and log as they come.
#[component]
pub fn RunOnce(
    handler: &'static str,
    config: Memo<Result<ScraperConfig, String>>,
    state: Option<String>,
    /// The priority chosen in the form: a try-out waits its turn like the scraper would.
    priority: RwSignal<ScraperJobPriority>,
) -> impl IntoView {
    let toasts = use_toasts();
    let run = Action::new(move |config: &ScraperConfig| {
        run_once(
            handler.to_owned(),
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

#[component]
fn RunOnceResult(job: ScraperJob) -> impl IntoView {
    let job = RwSignal::new(job);
    let lines = RwSignal::new(Vec::new());
    follow_job(job, lines);
    view! {
        <p>"Status: " {move || view! { <StatusBadge status=job.get().status/> }}</p>
        {move || view! { <ResultView result=job.get().result/> }}
        <LogView lines/>
    }
}
