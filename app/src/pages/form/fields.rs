//! The scraper's settings in the form (the handler's config has [`super::config`]): each
//! field edits its part of the [`Draft`] and shows what is wrong with it, as checked while
//! typing or by the server on save.

use engine::error::FieldError;
use engine::model::{CrontabDialect, ScraperJobPriority, ScraperSchedule};
use leptos::prelude::*;

use super::draft::Draft;
use crate::api::{check_crontab, CrontabCheck};
use crate::components::ChoiceSelect;
use crate::time::{use_now, Time};

/// The field errors the server gave on save; each goes once the person edits its field.
#[derive(Clone, Copy)]
pub struct ServerErrors(RwSignal<Vec<FieldError>>);

impl ServerErrors {
    pub fn new() -> Self {
        ServerErrors(RwSignal::new(Vec::new()))
    }

    /// The errors of the last save.
    pub fn set(self, errors: Vec<FieldError>) {
        self.0.set(errors);
    }

    /// The error of `field` (a scraper field's name), if any.
    pub fn of(self, field: &'static str) -> Option<String> {
        self.0.with(|errors| {
            errors
                .iter()
                .find(|error| error.loc.last().map(String::as_str) == Some(field))
                .map(|error| error.msg.clone())
        })
    }

    /// Forgets the error of `field` once it is edited.
    pub(super) fn clear(self, field: &'static str) {
        self.0.update(|errors| {
            errors.retain(|error| error.loc.last().map(String::as_str) != Some(field))
        });
    }
}

/// A labelled form field with the place for its error.
#[component]
pub fn Field(
    id: &'static str,
    label: &'static str,
    error: Signal<Option<String>>,
    children: Children,
) -> impl IntoView {
    view! {
        <div class="field" class:invalid=move || error.with(Option::is_some)>
            <label for=id>{label}</label>
            {children()}
            <p class="field-error" id=format!("{id}-error") data-testid=format!("{id}-error") role="alert">{move || error.get()}</p>
        </div>
    }
}

#[component]
pub fn NameField(draft: Draft, errors: ServerErrors) -> impl IntoView {
    let name = draft.name;
    view! {
        <Field id="scraper-name" label="Name" error=Signal::derive(move || errors.of("name"))>
            <input id="scraper-name" type="text" required data-testid="scraper-name-input"
                aria-describedby="scraper-name-error"
                prop:value=move || name.get()
                on:input=move |event| { name.set(event_target_value(&event)); errors.clear("name"); }/>
        </Field>
    }
}

/// The choice among the server's `handlers`.
#[component]
pub fn HandlerField(draft: Draft, errors: ServerErrors, handlers: Vec<String>) -> impl IntoView {
    let handler = draft.handler;
    let mut handlers = handlers;
    // A scraper may name a handler this server does not have; show it rather than hide it.
    let current = handler.get_untracked();
    if !handlers.contains(&current) && !current.is_empty() {
        handlers.push(current);
    }
    view! {
        <Field id="scraper-handler" label="Handler" error=Signal::derive(move || errors.of("handler"))>
            <select id="scraper-handler" data-testid="scraper-handler" aria-describedby="scraper-handler-error"
                on:change=move |event| { handler.set(event_target_value(&event)); errors.clear("handler"); }>
                {handlers.into_iter().map(|option| {
                    let selected = { let option = option.clone(); move || handler.get() == option };
                    view! { <option value=option.clone() selected=selected>{option.clone()}</option> }
                }).collect_view()}
            </select>
        </Field>
    }
}

/// The choice among the server's `schedules`.
#[component]
pub fn ScheduleField(
    draft: Draft,
    errors: ServerErrors,
    schedules: Vec<ScraperSchedule>,
) -> impl IntoView {
    let schedule = draft.schedule;
    // A new schedule makes the server's verdict on the old crontab moot.
    Effect::new(move |_| {
        schedule.track();
        errors.clear("schedule_crontab");
    });
    view! {
        <Field id="scraper-schedule" label="Schedule" error=Signal::derive(|| None)>
            <ChoiceSelect id="scraper-schedule" test_id="scraper-schedule-input" options=schedules value=schedule/>
        </Field>
    }
}

/// The expression of a crontab schedule (the field is there only for one), checked by the
/// server as it is typed, which also lists its next runs.
#[component]
pub fn CrontabField(draft: Draft, errors: ServerErrors) -> impl IntoView {
    let crontab = draft.crontab;
    let now = use_now();
    let check = RwSignal::new(None::<CrontabCheck>);
    // Asked again every minute too, as the listed runs pass. Effects run only in the browser.
    let minute = Memo::new(move |_| now.get().map(|now| now.timestamp().div_euclid(60)));
    let (timezone, dialect) = (draft.timezone, draft.dialect);
    Effect::new(move |_| {
        minute.track();
        let asked = (crontab.get(), timezone.get(), dialect.get());
        leptos::task::spawn_local(async move {
            let (expression, zone, reading) = asked.clone();
            let zone = (!zone.trim().is_empty()).then_some(zone);
            let answer = check_crontab(expression, zone, reading).await;
            // A late answer about earlier fields must not replace the current one's.
            let current = (
                crontab.get_untracked(),
                timezone.get_untracked(),
                dialect.get_untracked(),
            );
            if current == asked {
                check.set(answer.ok());
            }
        });
    });
    // The expression's own problems; the time zone's are shown by its field.
    let error = move || {
        errors.of("schedule_crontab").or_else(|| {
            check
                .get()
                .and_then(Result::err)
                .filter(|problem| {
                    problem
                        .loc
                        .last()
                        .is_some_and(|field| field == "schedule_crontab")
                })
                .map(|problem| problem.msg)
        })
    };
    view! {
        <Field id="scraper-crontab" label="Crontab" error=Signal::derive(error)>
            <input id="scraper-crontab" type="text" class="mono" placeholder="*/15 * * * *" data-testid="scraper-crontab"
                aria-describedby="scraper-crontab-error scraper-crontab-preview"
                aria-invalid=move || error().is_some().to_string()
                prop:value=move || crontab.get()
                on:input=move |event| { crontab.set(event_target_value(&event)); errors.clear("schedule_crontab"); }/>
            <div id="scraper-crontab-preview" class="hint" data-testid="crontab-preview" aria-live="polite">
                {move || match check.get() {
                    Some(Ok(runs)) => view! {
                        <span>"Next runs:"</span>
                        <ol>{runs.into_iter().map(|at| view! { <li><Time at/></li> }).collect_view()}</ol>
                    }.into_any(),
                    _ => view! { <span>"Minute, hour, day of month, month, day of week, e.g. " <code>"*/15 * * * *"</code></span> }.into_any(),
                }}
            </div>
        </Field>
    }
}

/// The choice among the server's `priorities`.
#[component]
pub fn PriorityField(draft: Draft, priorities: Vec<ScraperJobPriority>) -> impl IntoView {
    view! {
        <Field id="scraper-priority" label="Priority" error=Signal::derive(|| None)>
            <ChoiceSelect id="scraper-priority" test_id="scraper-priority" options=priorities value=draft.priority/>
        </Field>
    }
}

/// The IANA time zone the schedule is read in, chosen among the server's `zones` (empty: UTC).
#[component]
pub fn TimezoneField(draft: Draft, errors: ServerErrors, zones: Vec<String>) -> impl IntoView {
    let timezone = draft.timezone;
    let known = StoredValue::new(zones.clone());
    let error = move || {
        errors.of("schedule_timezone").or_else(|| {
            let typed = timezone.get();
            let typed = typed.trim();
            (!typed.is_empty() && !known.with_value(|zones| zones.iter().any(|zone| zone == typed)))
                .then(|| format!("`{typed}` is not an IANA time zone name (such as Europe/Berlin)"))
        })
    };
    view! {
        <Field id="scraper-timezone" label="Time zone" error=Signal::derive(error)>
            <input id="scraper-timezone" type="text" list="time-zones" placeholder="UTC" data-testid="scraper-timezone"
                aria-describedby="scraper-timezone-error"
                prop:value=move || timezone.get()
                on:input=move |event| { timezone.set(event_target_value(&event)); errors.clear("schedule_timezone"); }/>
            <datalist id="time-zones">
                {zones.into_iter().map(|zone| view! { <option value=zone/> }).collect_view()}
            </datalist>
        </Field>
    }
}

/// How the crontab is read: standard cron, or as Sneakpeek 0.1.7 read it.
#[component]
pub fn DialectField(draft: Draft) -> impl IntoView {
    view! {
        <Field id="scraper-dialect" label="Crontab reading" error=Signal::derive(|| None)>
            <ChoiceSelect id="scraper-dialect" test_id="scraper-dialect" options=CrontabDialect::ALL.to_vec() value=draft.dialect/>
        </Field>
    }
}

#[component]
pub fn TimeoutField(draft: Draft, errors: ServerErrors) -> impl IntoView {
    let (timeout, timeout_seconds) = (draft.timeout, draft.timeout_seconds);
    let error = move || {
        errors
            .of("timeout_seconds")
            .or_else(|| timeout_seconds.get().err())
    };
    view! {
        <Field id="scraper-timeout" label="Timeout in seconds" error=Signal::derive(error)>
            <input id="scraper-timeout" type="text" inputmode="numeric" placeholder="No limit" data-testid="scraper-timeout"
                aria-describedby="scraper-timeout-error"
                prop:value=move || timeout.get()
                on:input=move |event| { timeout.set(event_target_value(&event)); errors.clear("timeout_seconds"); }/>
        </Field>
    }
}
