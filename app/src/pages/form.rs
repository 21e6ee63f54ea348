//! The scraper form, for a new scraper (`/new`) and an existing one (`/scrapers/:id/edit`).
//!
//! Fields are checked while typing: the config's JSON and the timeout in the browser, the
//! crontab by the server, which also lists its next fire times. The server checks everything
//! again on save and its field errors are shown at their fields. In read-only mode the form
//! shows the settings without letting them change.

use engine::error::FieldError;
use engine::model::{Scraper, ScraperConfig, ScraperJobPriority, ScraperSchedule, UNSET_ID};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;
use leptos_router::{lazy_route, LazyRoute};
use serde_json::{Map, Value};

use crate::api::{
    check_crontab, delete_scraper, get_scraper, save_scraper, CrontabCheck, UiError, UiSettings,
};
use crate::components::{id_param, use_settings, use_toasts, LoadError};
use crate::editor::{json_error, CodeEditor};
use crate::json::{self, Loaded};
use crate::pages::job::RunOnce;
use crate::pages::NotFound;
use crate::time::{use_now, Time};

/// The handler whose params include a script, edited in the code editor.
const SCRIPT_HANDLER: &str = "script";
const EXTRACT_HANDLER: &str = "extract";

/// What a new `script` scraper starts with.
const SCRIPT_TEMPLATE: &str = r#"// The last value is the job's result. `args` comes from params.args.
let page = get(args.url);
log(`${page.url} answered ${page.status}`);
#{ url: page.url, title: select(page.text, "title").map(|element| element.text) }
"#;

/// The shape of `extract`'s params, offered as a starting point.
const EXTRACT_EXAMPLE: &str = r#"{
  "params": {
    "url": "https://example.com/",
    "fields": {
      "title": {"css": "h1"},
      "links": {"css": "a", "attr": "href", "all": true},
      "price": {"regex": "(?P<amount>\\d+[.,]\\d\\d)\\s*(?P<currency>EUR|USD)"}
    },
    "follow": {"css": "a.next", "attr": "href", "max_pages": 5}
  }
}"#;

/// The new scraper route, loaded on first visit.
pub struct NewScraperPage {
    settings: Loaded<Result<UiSettings, UiError>>,
}

#[lazy_route]
impl LazyRoute for NewScraperPage {
    fn data() -> Self {
        Self {
            settings: use_settings(),
        }
    }

    fn view(this: Self) -> AnyView {
        let settings = this.settings;
        view! {
            <Title text="New scraper"/>
            <p class="breadcrumb"><A href="/">"Scrapers"</A> " / new"</p>
            <h1>"New scraper"</h1>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match settings.await {
                        Ok(settings) => {
                            let handler = settings.handlers.first().cloned().unwrap_or_default();
                            let config = if handler == SCRIPT_HANDLER { script_config(SCRIPT_TEMPLATE) } else { ScraperConfig::default() };
                            let initial = Scraper {
                                id: UNSET_ID,
                                name: String::new(),
                                schedule: ScraperSchedule::Inactive,
                                schedule_crontab: None,
                                handler,
                                config,
                                schedule_priority: ScraperJobPriority::Normal,
                                state: None,
                                timeout_seconds: None,
                            };
                            view! { <ScraperForm initial settings/> }.into_any()
                        }
                        Err(error) => view! { <LoadError what="the form" error/> }.into_any(),
                    }
                })}
            </Suspense>
        }
        .into_any()
    }
}

/// The edit route, loaded on first visit: the scraper starts loading with its code.
pub struct EditScraperPage {
    scraper: Loaded<Option<Result<Scraper, UiError>>>,
    settings: Loaded<Result<UiSettings, UiError>>,
}

#[lazy_route]
impl LazyRoute for EditScraperPage {
    fn data() -> Self {
        let id = id_param("id");
        Self {
            scraper: json::load(
                move || id.get(),
                |id| async move { Some(get_scraper(id?).await) },
            ),
            settings: use_settings(),
        }
    }

    fn view(this: Self) -> AnyView {
        let EditScraperPage { scraper, settings } = this;
        view! {
            <Suspense fallback=|| view! { <p class="muted">"Loading the scraper…"</p> }>
                {move || Suspend::new(async move {
                    match (scraper.await, settings.await) {
                        (None, _) => view! { <NotFound/> }.into_any(),
                        (Some(Ok(initial)), Ok(settings)) => {
                            let (title, link, name) = (format!("Edit {}", initial.name), format!("/scrapers/{}", initial.id), initial.name.clone());
                            view! {
                                <Title text=title/>
                                <p class="breadcrumb">
                                    <A href="/">"Scrapers"</A> " / " <A href=link>{name}</A> " / edit"
                                </p>
                                <h1>{if settings.read_only { "Scraper settings" } else { "Edit scraper" }}</h1>
                                <ScraperForm initial settings/>
                            }.into_any()
                        }
                        (Some(Err(error)), _) | (_, Err(error)) => view! { <Title text="Scraper"/><LoadError what="the scraper" error/> }.into_any(),
                    }
                })}
            </Suspense>
        }
        .into_any()
    }
}

/// A config whose params hold only a script.
fn script_config(source: &str) -> ScraperConfig {
    let mut params = Map::new();
    params.insert("source".to_owned(), Value::String(source.to_owned()));
    params.insert(
        "args".to_owned(),
        serde_json::json!({"url": "https://example.com/"}),
    );
    ScraperConfig {
        params: Some(params),
        plugins: None,
    }
}

/// The config as the form edits it: for `script`, the script (edited in the code editor) is
/// taken out of the JSON text.
fn split_config(handler: &str, config: &ScraperConfig) -> (String, String) {
    let mut config = config.clone();
    let source = match (handler, config.params.as_mut()) {
        (SCRIPT_HANDLER, Some(params)) => match params.remove("source") {
            Some(Value::String(source)) => source,
            Some(other) => {
                // Not a string: leave it in the JSON, where the person can see it.
                params.insert("source".to_owned(), other);
                String::new()
            }
            None => String::new(),
        },
        _ => String::new(),
    };
    let text = serde_json::to_string_pretty(&config).unwrap_or_else(|_| "{}".to_owned());
    (text, source)
}

/// The config the form stands for: the JSON text, plus the script for `script`.
fn join_config(handler: &str, text: &str, source: &str) -> Result<ScraperConfig, String> {
    let value: Value = json::parse(text).map_err(|error| json_error(&error))?;
    if !value.is_object() {
        return Err("the config must be a JSON object, e.g. {\"params\": {}}".to_owned());
    }
    // Read again from the text rather than from `value`: the text reader's code is in the
    // wasm anyway, a `Value` reader would be another copy of the config's deserializer.
    let mut config: ScraperConfig = json::parse(text).map_err(|error| json_error(&error))?;
    if handler == SCRIPT_HANDLER {
        config
            .params
            .get_or_insert_with(Map::new)
            .insert("source".to_owned(), Value::String(source.to_owned()));
    }
    Ok(config)
}

/// The timeout field: empty for none, else whole seconds.
fn parse_timeout(text: &str) -> Result<Option<u64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<u64>() {
        Ok(0) | Err(_) => {
            Err("a whole number of seconds, at least 1 (or empty for no limit)".to_owned())
        }
        Ok(seconds) => Ok(Some(seconds)),
    }
}

/// Server field errors, removed one field at a time as the person edits that field.
#[derive(Clone, Copy)]
struct ServerErrors(RwSignal<Vec<FieldError>>);

impl ServerErrors {
    fn of(self, field: &'static str) -> Option<String> {
        self.0.with(|errors| {
            errors
                .iter()
                .find(|error| error.loc.last().map(String::as_str) == Some(field))
                .map(|error| error.msg.clone())
        })
    }

    fn clear(self, field: &'static str) {
        self.0.update(|errors| {
            errors.retain(|error| error.loc.last().map(String::as_str) != Some(field))
        });
    }
}

#[component]
fn ScraperForm(initial: Scraper, settings: UiSettings) -> impl IntoView {
    let toasts = use_toasts();
    let navigate = use_navigate();
    let now = use_now();
    let editing = initial.id > 0;
    let read_only = settings.read_only;

    let name = RwSignal::new(initial.name.clone());
    let handler = RwSignal::new(initial.handler.clone());
    let schedule = RwSignal::new(initial.schedule);
    let crontab = RwSignal::new(initial.schedule_crontab.clone().unwrap_or_default());
    let priority = RwSignal::new(initial.schedule_priority);
    let timeout = RwSignal::new(
        initial
            .timeout_seconds
            .map(|seconds| seconds.to_string())
            .unwrap_or_default(),
    );
    let (config_text, source) = split_config(&initial.handler, &initial.config);
    let config_text = RwSignal::new(config_text);
    let source = RwSignal::new(source);
    let server_errors = ServerErrors(RwSignal::new(Vec::new()));
    let form_error = RwSignal::new(None::<String>);

    let config = Memo::new(move |_| join_config(&handler.get(), &config_text.get(), &source.get()));
    let timeout_seconds = Memo::new(move |_| parse_timeout(&timeout.get()));
    let crontab_check = RwSignal::new(None::<CrontabCheck>);
    // Asked again every minute too, as the listed runs pass. Effects run only in the browser.
    let minute = Memo::new(move |_| now.get().map(|now| now.timestamp().div_euclid(60)));
    Effect::new(move |_| {
        minute.track();
        let Some(expression) = (schedule.get() == ScraperSchedule::Crontab).then(|| crontab.get())
        else {
            crontab_check.set(None);
            return;
        };
        leptos::task::spawn_local(async move {
            let check = check_crontab(expression.clone()).await;
            // A late answer about an earlier text must not replace the current one's.
            if crontab.with_untracked(|text| *text == expression) {
                crontab_check.set(check.ok());
            }
        });
    });
    let crontab_error = move || {
        server_errors
            .of("schedule_crontab")
            .or_else(|| crontab_check.get().and_then(Result::err))
    };
    let config_error = move || server_errors.of("config").or_else(|| config.get().err());
    let timeout_error = move || {
        server_errors
            .of("timeout_seconds")
            .or_else(|| timeout_seconds.get().err())
    };

    let initial = StoredValue::new(initial);
    let save = Action::new(|scraper: &Scraper| save_scraper(scraper.clone()));
    let submit = move || {
        form_error.set(None);
        let (Ok(config), Ok(timeout_seconds)) =
            (config.get_untracked(), timeout_seconds.get_untracked())
        else {
            form_error.set(Some("Fix the fields marked below first.".to_owned()));
            return;
        };
        let schedule = schedule.get_untracked();
        let scraper = Scraper {
            name: name.get_untracked(),
            schedule,
            schedule_crontab: (schedule == ScraperSchedule::Crontab)
                .then(|| crontab.get_untracked()),
            handler: handler.get_untracked(),
            config,
            schedule_priority: priority.get_untracked(),
            timeout_seconds,
            ..initial.get_value()
        };
        save.dispatch(scraper);
    };
    let after_save = navigate.clone();
    Effect::new(move |_| match save.value().get() {
        Some(Ok(saved)) => {
            toasts.success(if editing {
                format!("Scraper “{}” saved.", saved.name)
            } else {
                format!("Scraper “{}” created.", saved.name)
            });
            after_save(&format!("/scrapers/{}", saved.id), Default::default());
        }
        Some(Err(UiError { message, fields })) => {
            server_errors.0.set(fields);
            form_error.set(Some(message));
        }
        None => {}
    });

    let handlers = {
        let mut handlers = settings.handlers.clone();
        // A scraper may name a handler this server does not have; show it rather than hide it.
        if !handlers.contains(&handler.get_untracked()) && !handler.get_untracked().is_empty() {
            handlers.push(handler.get_untracked());
        }
        handlers
    };

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
                            <input id="scraper-id" type="text" readonly value=initial.with_value(|scraper| scraper.id)/>
                        </div>
                    })}
                    <Field id="scraper-name" label="Name" error=Signal::derive(move || server_errors.of("name"))>
                        <input id="scraper-name" type="text" required data-testid="scraper-name-input"
                            aria-describedby="scraper-name-error"
                            prop:value=move || name.get()
                            on:input=move |event| { name.set(event_target_value(&event)); server_errors.clear("name"); }/>
                    </Field>
                    <Field id="scraper-handler" label="Handler" error=Signal::derive(move || server_errors.of("handler"))>
                        <select id="scraper-handler" data-testid="scraper-handler" aria-describedby="scraper-handler-error"
                            on:change=move |event| { handler.set(event_target_value(&event)); server_errors.clear("handler"); }>
                            {handlers.into_iter().map(|option| {
                                let selected = { let option = option.clone(); move || handler.get() == option };
                                view! { <option value=option.clone() selected=selected>{option.clone()}</option> }
                            }).collect_view()}
                        </select>
                    </Field>
                    <Field id="scraper-schedule" label="Schedule" error=Signal::derive(|| None)>
                        <select id="scraper-schedule" data-testid="scraper-schedule-input"
                            on:change=move |event| {
                                let value = event_target_value(&event);
                                if let Some(option) = ScraperSchedule::ALL.into_iter().find(|option| option.as_str() == value) {
                                    schedule.set(option);
                                    server_errors.clear("schedule_crontab");
                                }
                            }>
                            {settings.schedules.iter().map(|&option| view! {
                                <option value=option.as_str() selected=move || schedule.get() == option>{option.label()}</option>
                            }).collect_view()}
                        </select>
                    </Field>
                    <Show when=move || schedule.get() == ScraperSchedule::Crontab>
                        <Field id="scraper-crontab" label="Crontab (UTC)" error=Signal::derive(crontab_error)>
                            <input id="scraper-crontab" type="text" class="mono" placeholder="*/15 * * * *" data-testid="scraper-crontab"
                                aria-describedby="scraper-crontab-error scraper-crontab-preview"
                                aria-invalid=move || crontab_error().is_some().to_string()
                                prop:value=move || crontab.get()
                                on:input=move |event| { crontab.set(event_target_value(&event)); server_errors.clear("schedule_crontab"); }/>
                            <div id="scraper-crontab-preview" class="hint" data-testid="crontab-preview" aria-live="polite">
                                {move || match crontab_check.get() {
                                    Some(Ok(runs)) => view! {
                                        <span>"Next runs:"</span>
                                        <ol>{runs.into_iter().map(|at| view! { <li><Time at/></li> }).collect_view()}</ol>
                                    }.into_any(),
                                    _ => view! { <span>"Minute, hour, day of month, month, day of week, e.g. " <code>"*/15 * * * *"</code></span> }.into_any(),
                                }}
                            </div>
                        </Field>
                    </Show>
                    <Field id="scraper-priority" label="Priority" error=Signal::derive(|| None)>
                        <select id="scraper-priority" data-testid="scraper-priority"
                            on:change=move |event| {
                                if let Some(option) = event_target_value(&event).parse().ok().and_then(ScraperJobPriority::from_value) {
                                    priority.set(option);
                                }
                            }>
                            {settings.priorities.iter().map(|&option| view! {
                                <option value=option.value() selected=move || priority.get() == option>{option.label()}</option>
                            }).collect_view()}
                        </select>
                    </Field>
                    <Field id="scraper-timeout" label="Timeout in seconds" error=Signal::derive(timeout_error)>
                        <input id="scraper-timeout" type="text" inputmode="numeric" placeholder="No limit" data-testid="scraper-timeout"
                            aria-describedby="scraper-timeout-error"
                            prop:value=move || timeout.get()
                            on:input=move |event| { timeout.set(event_target_value(&event)); server_errors.clear("timeout_seconds"); }/>
                    </Field>
                </div>
                <Show when=move || handler.get() == SCRIPT_HANDLER>
                    <div class="field">
                        <label for="scraper-source">"Script (" <a href="/docs/" rel="external">"Rhai"</a> ")"</label>
                        <CodeEditor text=source id="scraper-source" test_id="script-editor" read_only=Signal::derive(move || read_only)/>
                    </div>
                </Show>
                <Show when=move || handler.get() == EXTRACT_HANDLER>
                    <details class="helper" data-testid="extract-helper">
                        <summary>"What extract's params look like"</summary>
                        <p class="hint">
                            "Give " <code>"url"</code> " (or " <code>"urls"</code> ") and " <code>"fields"</code>
                            ": each field reads one of " <code>"css"</code> " (with " <code>"attr"</code> ", " <code>"all"</code> "), "
                            <code>"regex"</code> " or " <code>"json"</code> " (a JSON pointer). " <code>"follow"</code> " walks “next” links."
                        </p>
                        <pre class="code">{EXTRACT_EXAMPLE}</pre>
                        {(!read_only).then(|| view! {
                            <button type="button" class="button" on:click=move |_| config_text.set(EXTRACT_EXAMPLE.to_owned())>"Use this example"</button>
                        })}
                    </details>
                </Show>
                <Field id="scraper-config" label="Config (JSON)" error=Signal::derive(config_error)>
                    <CodeEditor text=config_text id="scraper-config" test_id="config-editor" described_by="scraper-config-error"
                        invalid=Signal::derive(move || config_error().is_some()) read_only=Signal::derive(move || read_only)/>
                </Field>
            </fieldset>
            {(!read_only).then(|| view! {
                <div class="form-actions">
                    <button type="submit" class="button primary" data-testid="save-scraper" disabled=move || save.pending().get()>
                        {if editing { "Save" } else { "Create scraper" }}
                    </button>
                    {editing.then(|| view! { <DeleteScraper id=initial.with_value(|scraper| scraper.id) name=name/> })}
                </div>
            })}
            {move || form_error.get().map(|message| view! { <p class="error" role="alert" data-testid="form-error">{message}</p> })}
        </form>
        <Show when=move || handler.get() == SCRIPT_HANDLER>
            <RunOnce handler=SCRIPT_HANDLER config state=initial.with_value(|scraper| scraper.state.clone()) priority=priority/>
        </Show>
    }
}

/// A labelled form field with the place for its error.
#[component]
fn Field(
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

/// "Delete", then a confirmation before anything is deleted.
#[component]
fn DeleteScraper(id: i64, name: RwSignal<String>) -> impl IntoView {
    let toasts = use_toasts();
    let navigate = use_navigate();
    let confirming = RwSignal::new(false);
    let cancel_ref = NodeRef::<leptos::html::Button>::new();
    let delete = Action::new(move |_: &()| delete_scraper(id));
    Effect::new(move |_| match delete.value().get() {
        Some(Ok(deleted)) => {
            toasts.success(format!("Scraper “{}” deleted.", deleted.name));
            navigate("/", Default::default());
        }
        Some(Err(error)) => toasts.failure(format!("Could not delete the scraper: {error}")),
        None => {}
    });
    // Focus moves into the confirmation so keyboard users land on its choices.
    Effect::new(move |_| {
        if confirming.get() {
            if let Some(button) = cancel_ref.get() {
                let _ = button.focus();
            }
        }
    });
    view! {
        <button type="button" class="button danger" data-testid="delete-scraper" on:click=move |_| confirming.set(true)>"Delete"</button>
        <Show when=move || confirming.get()>
            <div class="confirm" role="alertdialog" aria-labelledby="confirm-delete-text" data-testid="confirm-delete">
                <p id="confirm-delete-text">"Delete scraper “" {move || name.get()} "”? Its schedule stops; its past jobs stay readable."</p>
                <button type="button" class="button" node_ref=cancel_ref on:click=move |_| confirming.set(false)>"Cancel"</button>
                <button type="button" class="button danger" data-testid="confirm-delete-button" disabled=move || delete.pending().get()
                    on:click=move |_| { delete.dispatch(()); }>"Delete scraper"</button>
            </div>
        </Show>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_is_edited_apart_from_the_json_and_put_back_on_save() {
        let config = script_config("41 + 1");
        let (text, source) = split_config(SCRIPT_HANDLER, &config);
        assert_eq!(source, "41 + 1");
        assert!(!text.contains("source"));
        assert_eq!(join_config(SCRIPT_HANDLER, &text, &source).unwrap(), config);
    }

    #[test]
    fn other_handlers_keep_their_whole_config_in_the_json() {
        let config = script_config("x");
        let (text, source) = split_config(EXTRACT_HANDLER, &config);
        assert_eq!(source, "");
        assert_eq!(
            join_config(EXTRACT_HANDLER, &text, "ignored").unwrap(),
            config
        );
    }

    #[test]
    fn a_config_that_is_not_an_object_says_what_is_expected() {
        assert!(join_config(EXTRACT_HANDLER, "[]", "")
            .unwrap_err()
            .contains("JSON object"));
        assert!(join_config(EXTRACT_HANDLER, "{\"params\": ", "")
            .unwrap_err()
            .starts_with("line 1, column"));
    }

    #[test]
    fn a_timeout_is_empty_or_whole_positive_seconds() {
        assert_eq!(parse_timeout(" "), Ok(None));
        assert_eq!(parse_timeout("30"), Ok(Some(30)));
        assert!(parse_timeout("0").is_err() && parse_timeout("1.5").is_err());
    }
}
