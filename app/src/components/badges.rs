//! A job's status and a priority, as small coloured labels.

use engine::model::{ScraperJobPriority, ScraperJobStatus};
use leptos::prelude::*;

#[component]
pub fn StatusBadge(status: ScraperJobStatus) -> impl IntoView {
    let label = match status {
        ScraperJobStatus::Pending => "Pending",
        ScraperJobStatus::Started => "Running",
        ScraperJobStatus::Succeeded => "Succeeded",
        ScraperJobStatus::Failed => "Failed",
        ScraperJobStatus::Dead => "Dead",
        ScraperJobStatus::Killed => "Killed",
    };
    view! { <span class=format!("badge status-{status}") data-testid="job-status">{label}</span> }
}

#[component]
pub fn PriorityBadge(priority: ScraperJobPriority) -> impl IntoView {
    view! { <span class=format!("badge priority-{}", priority.value())>{priority.label()}</span> }
}
