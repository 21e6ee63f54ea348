//! A plain-text code editor: a monospace text area with line numbers, used for scripts and
//! JSON configs.
//!
//! It is a `<textarea>` (so typing, selection, undo and keyboard use are the browser's own)
//! that grows with its text, so the line-number gutter next to it never needs to scroll in
//! step with it. Tab keeps its usual meaning (next control), so keyboard users are not trapped.

use leptos::prelude::*;

/// Lines shown at least, so an empty editor still looks like one.
const MIN_ROWS: usize = 8;

#[component]
pub fn CodeEditor(
    /// The text, read and written.
    text: RwSignal<String>,
    /// The id of the text area, for its `<label for>`.
    id: &'static str,
    /// Shown next to the area as its description (an error or a hint), `aria-describedby`.
    #[prop(optional)]
    described_by: Option<&'static str>,
    #[prop(optional, into)] invalid: Signal<bool>,
    #[prop(optional, into)] read_only: Signal<bool>,
    #[prop(optional)] test_id: &'static str,
) -> impl IntoView {
    let line_count = Memo::new(move |_| {
        text.with(|text| {
            text.lines().count() + usize::from(text.ends_with('\n') || text.is_empty())
        })
    });
    let numbers = move || {
        (1..=line_count.get())
            .map(|number| number.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    view! {
        <div class="code-editor" class:invalid=move || invalid.get()>
            <pre class="gutter" aria-hidden="true">{numbers}</pre>
            <textarea
                id=id
                data-testid=test_id
                spellcheck="false"
                autocapitalize="off"
                autocomplete="off"
                wrap="off"
                rows=move || line_count.get().max(MIN_ROWS)
                readonly=move || read_only.get()
                aria-invalid=move || invalid.get().to_string()
                aria-describedby=described_by
                prop:value=move || text.get()
                on:input=move |event| text.set(event_target_value(&event))
            >
                {text.get_untracked()}
            </textarea>
        </div>
    }
}

/// Where a JSON text is wrong, as a person looks for it: "line 3, column 14: expected `,`".
pub fn json_error(error: &serde_json::Error) -> String {
    let message = error.to_string();
    // serde_json appends " at line L column C"; say it first, where the eye starts.
    let message = message.split(" at line ").next().unwrap_or(&message);
    format!(
        "line {}, column {}: {message}",
        error.line(),
        error.column()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_error_names_its_line_and_column_first() {
        let error =
            serde_json::from_str::<serde_json::Value>("{\n  \"a\": 1,\n  \"b\" 2\n}").unwrap_err();
        assert_eq!(json_error(&error), "line 3, column 7: expected `:`");
    }
}
