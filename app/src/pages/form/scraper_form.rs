//! The form itself: its fields, saving, and for a `script` scraper the "Run once" panel.

use engine::model::{BuiltinHandler, Scraper, ScraperSchedule};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use super::config::ConfigFields;
use super::delete::DeleteScraper;
use super::draft::Draft;
use super::fields::{
    CrontabField, DialectField, HandlerField, NameField, PriorityField, ScheduleField,
    ServerErrors, TimeoutField, TimezoneField,
};
use super::retry::RetryFields;
use super::run_once::RunOnce;
use crate::api::{save_scraper, UiError, UiSettings};
use crate::components::use_toasts;

/// The form of `initial`: a new scraper when its id is not set, else an existing one (which can
/// also be deleted). Saving goes to the saved scraper's page.
#[component]
pub fn ScraperForm(initial: Scraper, settings: UiSettings) -> impl IntoView {
    let toasts = use_toasts();
    let navigate = use_navigate();
    let (id, state) = (initial.id, initial.state.clone());
    let editing = id > 0;
    let UiSettings {
        read_only,
        handlers,
        schedules,
        priorities,
        default_retry,
        time_zones,
    } = settings;
    let draft = Draft::new(initial, &default_retry);
    let errors = ServerErrors::new();
    let form_error = RwSignal::new(None::<String>);

    let save = Action::new(|scraper: &Scraper| save_scraper(scraper.clone()));
    let submit = move || {
        form_error.set(None);
        match draft.scraper() {
            Some(scraper) => {
                save.dispatch(scraper);
            }
            None => form_error.set(Some("Fix the fields marked below first.".to_owned())),
        }
    };
    Effect::new(move |_| match save.value().get() {
        Some(Ok(saved)) => {
            toasts.success(if editing {
                format!("Scraper “{}” saved.", saved.name)
            } else {
                format!("Scraper “{}” created.", saved.name)
            });
            navigate(&format!("/scrapers/{}", saved.id), Default::default());
        }
        Some(Err(UiError { message, fields })) => {
            errors.set(fields);
            form_error.set(Some(message));
        }
        None => {}
    });

    view! {
        <form class="form card" novalidate on:submit=move |event| { event.prevent_default(); submit(); }>
            {read_only.then(|| view! {
                <p class="notice" data-testid="read-only-notice">"This server is read-only: the scraper's settings can be viewed, not changed."</p>
            })}
            <fieldset disabled=read_only>
                <div class="fields">
                    {editing.then(|| view! {
                        <div class="field">
                            <label for="scraper-id">"ID"</label>
                            <input id="scraper-id" type="text" readonly value=id/>
                        </div>
                    })}
                    <NameField draft errors/>
                    <HandlerField draft errors handlers/>
                    <ScheduleField draft errors schedules/>
                    <Show when=move || draft.schedule.get() == ScraperSchedule::Crontab>
                        <CrontabField draft errors/>
                        <DialectField draft/>
                    </Show>
                    <Show when=move || draft.schedule.get().reads_time_zone()>
                        <TimezoneField draft errors zones=time_zones.clone()/>
                    </Show>
                    <PriorityField draft priorities/>
                    <TimeoutField draft errors/>
                </div>
                <RetryFields retry=draft.retry errors default=default_retry/>
                <ConfigFields draft errors read_only/>
            </fieldset>
            {(!read_only).then(|| view! {
                <div class="form-actions">
                    <button type="submit" class="button primary" data-testid="save-scraper" disabled=move || save.pending().get()>
                        {if editing { "Save" } else { "Create scraper" }}
                    </button>
                    {editing.then(|| view! { <DeleteScraper id name=draft.name/> })}
                </div>
            })}
            {move || form_error.get().map(|message| view! { <p class="error" role="alert" data-testid="form-error">{message}</p> })}
        </form>
        <Show when=move || draft.runs(BuiltinHandler::Script)>
            <RunOnce handler=BuiltinHandler::Script config=draft.config state=state.clone() priority=draft.priority/>
        </Show>
    }
}
