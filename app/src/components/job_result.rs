//! A job's result, on the job page and in the form's "Run once" panel.

use leptos::prelude::*;

use super::toasts::use_toasts;
use crate::json;

/// A job's result: pretty-printed when it is JSON, with a copy button.
#[component]
pub fn JobResult(result: Option<String>) -> impl IntoView {
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
