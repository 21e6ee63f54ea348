//! Text as every storage keeps it.
//!
//! PostgreSQL's `text` and `jsonb` cannot hold the NUL character (U+0000), and a handler may
//! well produce one (the text of a binary page, say). Every storage therefore stores NUL as
//! [`NUL_REPLACEMENT`], U+FFFD, the character HTML parsers put in its place too; everything
//! else is stored as given. The in-memory storage does the same, so what a job wrote reads
//! back identically on every backend.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::model::{JobLogLine, Scraper, ScraperConfig};
use crate::storage::Completion;

/// What a NUL character is stored as.
pub const NUL_REPLACEMENT: char = '\u{FFFD}';

/// `text` as stored: borrowed unchanged unless it holds a NUL.
pub fn storable(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}

fn storable_string(text: String) -> String {
    match storable(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(replaced) => replaced,
    }
}

/// An optional text as stored (a scraper's state, a job's result).
pub fn storable_option(text: Option<String>) -> Option<String> {
    text.map(storable_string)
}

fn json_has_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(json_has_nul),
        Value::Object(fields) => fields
            .iter()
            .any(|(key, value)| key.contains('\0') || json_has_nul(value)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

fn storable_json(value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(storable_string(text)),
        Value::Array(items) => Value::Array(items.into_iter().map(storable_json).collect()),
        Value::Object(fields) => Value::Object(storable_map(fields)),
        other => other,
    }
}

fn storable_map(fields: Map<String, Value>) -> Map<String, Value> {
    fields
        .into_iter()
        .map(|(key, value)| (storable_string(key), storable_json(value)))
        .collect()
}

fn map_has_nul(fields: &Option<Map<String, Value>>) -> bool {
    fields.as_ref().is_some_and(|fields| {
        fields
            .iter()
            .any(|(key, value)| key.contains('\0') || json_has_nul(value))
    })
}

fn scraper_has_nul(scraper: &Scraper) -> bool {
    [&scraper.name, &scraper.handler]
        .iter()
        .any(|text| text.contains('\0'))
        || [&scraper.schedule_crontab, &scraper.state]
            .iter()
            .any(|text| text.as_deref().is_some_and(|text| text.contains('\0')))
        || map_has_nul(&scraper.config.params)
        || map_has_nul(&scraper.config.plugins)
}

/// `scraper` as stored: borrowed unchanged unless one of its texts holds a NUL.
pub fn storable_scraper(scraper: &Scraper) -> Cow<'_, Scraper> {
    if !scraper_has_nul(scraper) {
        return Cow::Borrowed(scraper);
    }
    let scraper = scraper.clone();
    Cow::Owned(Scraper {
        name: storable_string(scraper.name),
        handler: storable_string(scraper.handler),
        schedule_crontab: storable_option(scraper.schedule_crontab),
        state: storable_option(scraper.state),
        config: ScraperConfig {
            params: scraper.config.params.map(storable_map),
            plugins: scraper.config.plugins.map(storable_map),
        },
        ..scraper
    })
}

/// Log lines as stored: borrowed unchanged unless a message holds a NUL.
pub fn storable_lines(lines: &[JobLogLine]) -> Cow<'_, [JobLogLine]> {
    if !lines.iter().any(|line| line.message.contains('\0')) {
        return Cow::Borrowed(lines);
    }
    Cow::Owned(
        lines
            .iter()
            .map(|line| JobLogLine {
                message: storable(&line.message).into_owned(),
                ..line.clone()
            })
            .collect(),
    )
}

/// A completion as stored: its result and log lines without NUL.
pub fn storable_completion(completion: &Completion) -> Cow<'_, Completion> {
    let result_has_nul = completion
        .result
        .as_deref()
        .is_some_and(|result| result.contains('\0'));
    let lines = storable_lines(&completion.log);
    if !result_has_nul && matches!(lines, Cow::Borrowed(_)) {
        return Cow::Borrowed(completion);
    }
    Cow::Owned(Completion {
        claim: completion.claim,
        status: completion.status,
        result: completion
            .result
            .as_deref()
            .map(|result| storable(result).into_owned()),
        log: lines.into_owned(),
        retry: completion.retry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_becomes_the_replacement_character_and_nothing_else_changes() {
        assert_eq!(storable("a\0b\0"), "a\u{FFFD}b\u{FFFD}");
        assert!(matches!(storable("plain ünïcode"), Cow::Borrowed(_)));
        let mut params = Map::new();
        params.insert("k\0".into(), serde_json::json!(["x\0", {"y": "\0"}, 1]));
        let scraper = Scraper {
            config: ScraperConfig {
                params: Some(params),
                plugins: None,
            },
            ..serde_json::from_value(
                serde_json::json!({"name": "n\0", "schedule": "inactive", "handler": "h"}),
            )
            .unwrap()
        };
        let stored = storable_scraper(&scraper);
        assert_eq!(stored.name, "n\u{FFFD}");
        assert_eq!(
            serde_json::to_value(&stored.config.params).unwrap(),
            serde_json::json!({"k\u{FFFD}": ["x\u{FFFD}", {"y": "\u{FFFD}"}, 1]})
        );
    }
}
