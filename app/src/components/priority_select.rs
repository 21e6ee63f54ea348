//! The choice of a priority: a scraper's (in its form) or a run's ("Run now").

use engine::model::ScraperJobPriority;
use leptos::prelude::*;

/// A `<select>` of `options`, showing and setting `value`.
#[component]
pub fn PrioritySelect(
    id: &'static str,
    test_id: &'static str,
    options: Vec<ScraperJobPriority>,
    value: RwSignal<ScraperJobPriority>,
) -> impl IntoView {
    view! {
        <select id=id data-testid=test_id on:change=move |event| {
            if let Some(option) = event_target_value(&event).parse().ok().and_then(ScraperJobPriority::from_value) {
                value.set(option);
            }
        }>
            {options.into_iter().map(|option| view! {
                <option value=option.value() selected=move || value.get() == option>{option.label()}</option>
            }).collect_view()}
        </select>
    }
}
