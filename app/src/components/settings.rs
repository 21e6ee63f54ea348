//! The server's UI settings (read-only mode, handlers, schedules, priorities), loaded once per
//! page load and shared by every page.

use leptos::prelude::*;

use crate::api::{get_ui_settings, UiError, UiSettings};
use crate::json::{self, Loaded};

/// The server's [`UiSettings`], as the app provides them.
#[derive(Clone, Copy)]
struct SettingsResource(Loaded<Result<UiSettings, UiError>>);

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
