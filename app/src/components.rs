//! Small pieces shared by the pages: the server's UI settings, toasts, badges, load errors.

use engine::model::{ScraperJobPriority, ScraperJobStatus};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api::{get_ui_settings, UiError, UiSettings};
use crate::json::{self, Loaded};

/// The server's [`UiSettings`], loaded once per page load and shared by every page.
#[derive(Clone, Copy)]
pub struct SettingsResource(pub Loaded<Result<UiSettings, UiError>>);

pub fn provide_settings() {
    provide_context(SettingsResource(json::load(|| (), |_| get_ui_settings())));
}

pub fn use_settings() -> Loaded<Result<UiSettings, UiError>> {
    expect_context::<SettingsResource>().0
}

/// Shows its children only when the server accepts changes (not read-only).
#[component]
pub fn ReadOnlyHidden(children: ChildrenFn) -> impl IntoView {
    let settings = use_settings();
    let children = StoredValue::new(children);
    view! {
        <Transition>
            {move || Suspend::new(async move {
                let writable = settings.await.map(|settings| !settings.read_only).unwrap_or(false);
                writable.then(|| children.read_value()())
            })}
        </Transition>
    }
}

/// A positive integer route parameter, e.g. the `:id` of `/scrapers/:id`.
pub fn id_param(name: &'static str) -> Memo<Option<i64>> {
    let params = use_params_map();
    Memo::new(move |_| {
        params
            .with(|params| params.get(name))
            .and_then(|value| value.parse().ok())
            .filter(|id: &i64| *id > 0)
    })
}

/// A failed load, said plainly, with the way out.
#[component]
pub fn LoadError(what: &'static str, error: UiError) -> impl IntoView {
    view! {
        <div class="notice error" role="alert">
            <p>"Could not load " {what} ": " {error.message}</p>
            <p><a href="/">"Back to the scrapers"</a></p>
        </div>
    }
}

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

/// How a toast looks: confirmation or failure.
#[derive(Clone, Copy, PartialEq)]
pub enum ToastKind {
    Success,
    Failure,
}

#[derive(Clone)]
struct Toast {
    id: u64,
    kind: ToastKind,
    text: String,
}

/// Short messages confirming (or refusing) an action, shown above every page so they
/// survive the navigation an action may trigger.
#[derive(Clone, Copy)]
pub struct Toasts {
    list: RwSignal<Vec<Toast>>,
    next_id: StoredValue<u64>,
}

/// How long a toast stays; long enough to read two lines.
const TOAST_SECONDS: u64 = 8;

impl Toasts {
    pub fn provide() -> Self {
        let toasts = Toasts {
            list: RwSignal::new(Vec::new()),
            next_id: StoredValue::new(0),
        };
        provide_context(toasts);
        toasts
    }

    pub fn show(&self, kind: ToastKind, text: impl Into<String>) {
        let id = self.next_id.get_value();
        self.next_id.set_value(id + 1);
        self.list.update(|list| {
            list.push(Toast {
                id,
                kind,
                text: text.into(),
            })
        });
        let list = self.list;
        set_timeout(
            move || list.update(|list| list.retain(|toast| toast.id != id)),
            std::time::Duration::from_secs(TOAST_SECONDS),
        );
    }

    pub fn success(&self, text: impl Into<String>) {
        self.show(ToastKind::Success, text);
    }

    pub fn failure(&self, text: impl Into<String>) {
        self.show(ToastKind::Failure, text);
    }

    pub fn view(self) -> impl IntoView {
        let list = self.list;
        view! {
            <div class="toasts" role="status" aria-live="polite">
                <For each=move || list.get() key=|toast| toast.id let:toast>
                    <div class="toast" class:failure=toast.kind == ToastKind::Failure data-testid="toast">
                        <span>{toast.text}</span>
                        <button
                            type="button"
                            class="icon-button"
                            aria-label="Dismiss"
                            on:click=move |_| list.update(|list| list.retain(|other| other.id != toast.id))
                        >
                            "×"
                        </button>
                    </div>
                </For>
            </div>
        }
    }
}

pub fn use_toasts() -> Toasts {
    expect_context::<Toasts>()
}
