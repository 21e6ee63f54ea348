//! The handler's config in the form: JSON text, plus a code editor for the script of a
//! `script` scraper (taken out of the JSON to be edited, put back on save), and for `extract`
//! an example of its params.

use engine::model::{BuiltinHandler, ScraperConfig};
use leptos::prelude::*;
use serde_json::{Map, Value};

use super::draft::Draft;
use super::fields::{Field, ServerErrors};
use crate::components::{json_error, CodeEditor};
use crate::json;

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

/// The key of a `script` scraper's params that holds the script.
const SOURCE: &str = "source";

/// The config a new scraper with `handler` starts with: a script to change for `script`,
/// else nothing.
pub fn starting_config(handler: &str) -> ScraperConfig {
    if handler == BuiltinHandler::Script.name() {
        script_config(SCRIPT_TEMPLATE)
    } else {
        ScraperConfig::default()
    }
}

/// A config whose params hold only a script.
fn script_config(source: &str) -> ScraperConfig {
    let mut params = Map::new();
    params.insert(SOURCE.to_owned(), Value::String(source.to_owned()));
    params.insert(
        "args".to_owned(),
        serde_json::json!({"url": "https://example.com/"}),
    );
    ScraperConfig {
        params: Some(params),
        plugins: None,
    }
}

/// The config as the form edits it, JSON text and script: for `script`, the script is taken
/// out of the JSON text.
pub fn split_config(handler: &str, config: &ScraperConfig) -> (String, String) {
    let mut config = config.clone();
    let source = match config.params.as_mut() {
        Some(params) if handler == BuiltinHandler::Script.name() => match params.remove(SOURCE) {
            Some(Value::String(source)) => source,
            Some(other) => {
                // Not a string: leave it in the JSON, where the person can see it.
                params.insert(SOURCE.to_owned(), other);
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
pub fn join_config(handler: &str, text: &str, source: &str) -> Result<ScraperConfig, String> {
    let value: Value = json::parse(text).map_err(|error| json_error(&error))?;
    if !value.is_object() {
        return Err("the config must be a JSON object, e.g. {\"params\": {}}".to_owned());
    }
    // Read again from the text rather than from `value`: the text reader's code is in the
    // wasm anyway, a `Value` reader would be another copy of the config's deserializer.
    let mut config: ScraperConfig = json::parse(text).map_err(|error| json_error(&error))?;
    if handler == BuiltinHandler::Script.name() {
        config
            .params
            .get_or_insert_with(Map::new)
            .insert(SOURCE.to_owned(), Value::String(source.to_owned()));
    }
    Ok(config)
}

/// The script editor (for `script`), the params example (for `extract`) and the config's
/// JSON.
#[component]
pub fn ConfigFields(draft: Draft, errors: ServerErrors, read_only: bool) -> impl IntoView {
    let config_error = move || errors.of("config").or_else(|| draft.config.get().err());
    view! {
        <Show when=move || draft.runs(BuiltinHandler::Script)>
            <div class="field">
                <label for="scraper-source">"Script (" <a href="/docs/" rel="external">"Rhai"</a> ")"</label>
                <CodeEditor text=draft.source id="scraper-source" test_id="script-editor" read_only=Signal::derive(move || read_only)/>
            </div>
        </Show>
        <Show when=move || draft.runs(BuiltinHandler::Extract)>
            <details class="helper" data-testid="extract-helper">
                <summary>"What extract's params look like"</summary>
                <p class="hint">
                    "Give " <code>"url"</code> " (or " <code>"urls"</code> ") and " <code>"fields"</code>
                    ": each field reads one of " <code>"css"</code> " (with " <code>"attr"</code> ", " <code>"all"</code> "), "
                    <code>"regex"</code> " or " <code>"json"</code> " (a JSON pointer). " <code>"follow"</code> " walks “next” links."
                </p>
                <pre class="code">{EXTRACT_EXAMPLE}</pre>
                {(!read_only).then(|| view! {
                    <button type="button" class="button" on:click=move |_| draft.config_text.set(EXTRACT_EXAMPLE.to_owned())>"Use this example"</button>
                })}
            </details>
        </Show>
        <Field id="scraper-config" label="Config (JSON)" error=Signal::derive(config_error)>
            <CodeEditor text=draft.config_text id="scraper-config" test_id="config-editor" described_by="scraper-config-error"
                invalid=Signal::derive(move || config_error().is_some()) read_only=Signal::derive(move || read_only)/>
        </Field>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = BuiltinHandler::Script.name();
    const EXTRACT: &str = BuiltinHandler::Extract.name();

    #[test]
    fn a_script_is_edited_apart_from_the_json_and_put_back_on_save() {
        let config = script_config("41 + 1");
        let (text, source) = split_config(SCRIPT, &config);
        assert_eq!(source, "41 + 1");
        assert!(!text.contains("source"));
        assert_eq!(join_config(SCRIPT, &text, &source).unwrap(), config);
    }

    #[test]
    fn other_handlers_keep_their_whole_config_in_the_json() {
        let config = script_config("x");
        let (text, source) = split_config(EXTRACT, &config);
        assert_eq!(source, "");
        assert_eq!(join_config(EXTRACT, &text, "ignored").unwrap(), config);
    }

    #[test]
    fn a_config_that_is_not_an_object_says_what_is_expected() {
        assert!(join_config(EXTRACT, "[]", "")
            .unwrap_err()
            .contains("JSON object"));
        assert!(join_config(EXTRACT, "{\"params\": ", "")
            .unwrap_err()
            .starts_with("line 1, column"));
    }
}
