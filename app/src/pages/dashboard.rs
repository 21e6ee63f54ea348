//! The dashboard: the queue per priority, jobs finished per minute in the last hour (an SVG
//! chart drawn here), this replica's scheduler and worker, and the failing scrapers.

use chrono::{DateTime, Utc};
use engine::model::{JobCount, ReplicaStatus, ScraperJobStatus};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::{lazy_route, LazyRoute};

use crate::api::{get_dashboard, Dashboard, ScraperRow, UiError};
use crate::components::{LoadError, StatusBadge};
use crate::json::{self, Loaded};
use crate::time::{every, Time};

/// How often the figures are refreshed while the page is open.
const REFRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// The dashboard route, loaded on first visit: its figures start loading with its code.
pub struct DashboardPage {
    data: Loaded<Result<Dashboard, UiError>>,
}

#[lazy_route]
impl LazyRoute for DashboardPage {
    fn data() -> Self {
        Self {
            data: json::load(|| (), |_| get_dashboard()),
        }
    }

    fn view(this: Self) -> AnyView {
        let data = this.data;
        // In the browser only, and until the page is left: the server renders the figures once.
        every(REFRESH, move || data.refetch());
        view! {
            <Title text="Dashboard"/>
            <h1>"Dashboard"</h1>
            <Transition fallback=|| view! { <p class="muted">"Loading the dashboard…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(dashboard) => view! { <DashboardView dashboard/> }.into_any(),
                        Err(error) => view! { <LoadError what="the dashboard" error/> }.into_any(),
                    }
                })}
            </Transition>
        }
        .into_any()
    }
}

#[component]
fn DashboardView(dashboard: Dashboard) -> impl IntoView {
    let Dashboard {
        queue,
        since,
        finished,
        replica,
        failing,
    } = dashboard;
    view! {
        <div class="tiles">
            <section class="card tile" aria-labelledby="queue-title">
                <h2 id="queue-title">"Queue"</h2>
                <dl class="figures" data-testid="queue">
                    {queue.into_iter().map(|(priority, length)| view! { <dt>{priority.label()}</dt><dd>{length}</dd> }).collect_view()}
                </dl>
            </section>
            <section class="card tile" aria-labelledby="replica-title">
                <h2 id="replica-title">"This replica"</h2>
                <ReplicaView replica/>
            </section>
        </div>
        <section class="card" aria-labelledby="chart-title">
            <h2 id="chart-title">"Jobs finished per minute, last hour"</h2>
            <JobsChart since counts=finished/>
        </section>
        <section aria-labelledby="failing-title">
            <h2 id="failing-title">"Failing scrapers"</h2>
            <FailingScrapers rows=failing/>
        </section>
    }
}

#[component]
fn ReplicaView(replica: ReplicaStatus) -> impl IntoView {
    // A stopped component's last state is stale: it no longer fires or claims anything.
    let stopped = |name: &str| replica.stopped.iter().any(|stopped| stopped == name);
    let scheduler = match replica.scheduler {
        None => "Not running here".to_owned(),
        Some(_) if stopped("scheduler") => "Stopped".to_owned(),
        Some(state) if state.leading => format!("Leading, {} scheduled scrapers", state.planned),
        Some(_) => "Standing by (another replica leads)".to_owned(),
    };
    let worker = match replica.worker {
        None => "Not running here".to_owned(),
        Some(_) if stopped("worker") => "Stopped".to_owned(),
        Some(state) => format!(
            "{} of {} slots busy",
            state.running_jobs, state.max_concurrency
        ),
    };
    view! {
        <dl class="figures" data-testid="replica">
            <dt>"Scheduler"</dt><dd>{scheduler}</dd>
            <dt>"Worker"</dt><dd>{worker}</dd>
        </dl>
    }
}

/// The outcomes charted, bottom to top, with their colour class.
const OUTCOMES: [ScraperJobStatus; 4] = [
    ScraperJobStatus::Succeeded,
    ScraperJobStatus::Failed,
    ScraperJobStatus::Dead,
    ScraperJobStatus::Killed,
];
const MINUTES: i64 = 60;
const BAR_WIDTH: f64 = 10.0;
const CHART_HEIGHT: f64 = 120.0;

/// A stacked bar per minute; the total per outcome in the legend (and the label, for
/// screen readers, which cannot read bars).
#[component]
fn JobsChart(since: DateTime<Utc>, counts: Vec<JobCount>) -> impl IntoView {
    let start = since.timestamp().div_euclid(60);
    // Each minute's count per outcome, in the order of OUTCOMES. Arrays rather than maps keep
    // the ordered-map code for these types out of the wasm.
    let mut per_minute = vec![[0_u64; OUTCOMES.len()]; MINUTES as usize + 1];
    for count in &counts {
        let minute = usize::try_from(count.minute.timestamp().div_euclid(60) - start);
        let outcome = OUTCOMES.iter().position(|status| *status == count.status);
        if let (Some(outcomes), Some(outcome)) = (
            minute.ok().and_then(|minute| per_minute.get_mut(minute)),
            outcome,
        ) {
            outcomes[outcome] += count.count;
        }
    }
    let tallest = per_minute
        .iter()
        .map(|outcomes| outcomes.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let totals: Vec<(ScraperJobStatus, u64)> = OUTCOMES
        .iter()
        .map(|&status| {
            (
                status,
                counts
                    .iter()
                    .filter(|count| count.status == status)
                    .map(|count| count.count)
                    .sum(),
            )
        })
        .collect();
    let label = format!(
        "Jobs finished in the last hour: {}. Tallest minute: {tallest}.",
        totals
            .iter()
            .map(|(status, total)| format!("{total} {status}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let scale = CHART_HEIGHT / tallest as f64;
    let bars = per_minute.into_iter().enumerate().flat_map(|(minute, outcomes)| {
        let x = minute as f64 * BAR_WIDTH;
        let mut top = CHART_HEIGHT;
        OUTCOMES
            .iter()
            .zip(outcomes)
            .filter(|(_, count)| *count > 0)
            .map(|(&status, count)| {
                let height = count as f64 * scale;
                top -= height;
                view! {
                    <rect class=format!("bar status-{status}") x=x + 1.0 y=top width=BAR_WIDTH - 2.0 height=height>
                        <title>{format!("{count} {status}")}</title>
                    </rect>
                }
            })
            .collect::<Vec<_>>()
    });
    view! {
        <svg class="chart" viewBox=format!("0 0 {} {}", (MINUTES + 1) as f64 * BAR_WIDTH, CHART_HEIGHT + 1.0) role="img" aria-label=label data-testid="jobs-chart">
            <line class="axis" x1="0" x2=(MINUTES + 1) as f64 * BAR_WIDTH y1=CHART_HEIGHT y2=CHART_HEIGHT/>
            {bars.collect_view()}
        </svg>
        <ul class="legend">
            {totals.into_iter().map(|(status, total)| view! {
                <li><span class=format!("swatch status-{status}")></span>{format!("{total} {status}")}</li>
            }).collect_view()}
            <li class="muted">"Tallest minute: " {tallest} " · " <Time at=since/> " to now"</li>
        </ul>
    }
}

#[component]
fn FailingScrapers(rows: Vec<ScraperRow>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="empty" data-testid="failing-none">"No scraper's last job failed."</p> }.into_any();
    }
    view! {
        <div class="table-scroll">
            <table class="table" data-testid="failing-table">
                <thead><tr><th scope="col">"Scraper"</th><th scope="col">"Last job"</th><th scope="col">"When"</th></tr></thead>
                <tbody>
                    {rows.into_iter().filter_map(|row| {
                        let job = row.last_job?;
                        Some(view! {
                            <tr>
                                <td><A href=format!("/scrapers/{}", row.scraper.id)>{row.scraper.name}</A></td>
                                <td><A href=format!("/scrapers/{}/jobs/{}", row.scraper.id, job.id) attr:class="plain"><StatusBadge status=job.status/></A></td>
                                <td><Time at=job.at/></td>
                            </tr>
                        })
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}
