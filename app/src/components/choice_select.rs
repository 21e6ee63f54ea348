//! A choice among a few values of an enum in a `<select>`: a priority (in the scraper's form,
//! and "Run now"'s), a schedule, a crontab reading, a backoff.

use engine::model::{CrontabDialect, ScraperJobPriority, ScraperSchedule};
use engine::retry::Backoff;
use leptos::prelude::*;

/// A value a [`ChoiceSelect`] offers: how it is sent (its option's `value`) and shown.
pub trait Choice: Copy + PartialEq + Send + Sync + 'static {
    /// The option's value: the wire name, or for a priority its number.
    fn value(self) -> String;
    /// What the option says.
    fn label(self) -> &'static str;
}

impl Choice for ScraperJobPriority {
    fn value(self) -> String {
        ScraperJobPriority::value(self).to_string()
    }
    fn label(self) -> &'static str {
        ScraperJobPriority::label(self)
    }
}

impl Choice for ScraperSchedule {
    fn value(self) -> String {
        self.as_str().to_owned()
    }
    fn label(self) -> &'static str {
        ScraperSchedule::label(self)
    }
}

impl Choice for CrontabDialect {
    fn value(self) -> String {
        self.as_str().to_owned()
    }
    fn label(self) -> &'static str {
        CrontabDialect::label(self)
    }
}

impl Choice for Backoff {
    fn value(self) -> String {
        match self {
            Backoff::Exponential => "exponential",
            Backoff::Fixed => "fixed",
        }
        .to_owned()
    }
    fn label(self) -> &'static str {
        match self {
            Backoff::Exponential => "Exponential (doubles)",
            Backoff::Fixed => "Fixed",
        }
    }
}

/// A `<select>` of `options`, showing and setting `value`.
#[component]
pub fn ChoiceSelect<T: Choice>(
    id: &'static str,
    test_id: &'static str,
    options: Vec<T>,
    value: RwSignal<T>,
) -> impl IntoView {
    let offered = StoredValue::new(options.clone());
    view! {
        <select id=id data-testid=test_id on:change=move |event| {
            let picked = event_target_value(&event);
            if let Some(option) = offered.with_value(|options| options.iter().copied().find(|option| option.value() == picked)) {
                value.set(option);
            }
        }>
            {options.into_iter().map(|option| view! {
                <option value=option.value() selected=move || value.get() == option>{option.label()}</option>
            }).collect_view()}
        </select>
    }
}
