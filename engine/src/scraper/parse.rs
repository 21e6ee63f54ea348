//! Reading what a scraper fetched: regular expressions with named groups and CSS selection on
//! HTML. [`ScraperContext`](super::ScraperContext), the `extract` handler and the `script`
//! handler all parse through these functions, so they agree on flags, text and errors.
//!
//! Everything here is synchronous and returns owned values: a parsed HTML document is not
//! `Send`, so it must never live across an `.await` in a handler.

use std::collections::BTreeMap;

use regex::{Regex, RegexBuilder};
use scraper::{ElementRef, Html, Selector};
use serde::Serialize;

/// One match of [`regex()`]: the whole matched text and the named groups (`None` for a group
/// that did not take part in the match).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegexMatch {
    /// The text the whole pattern matched.
    pub full_match: String,
    /// Each named group of the pattern, by name, with the text it captured; `None` when the group
    /// did not take part in this match. Unnamed groups are left out.
    pub groups: BTreeMap<String, Option<String>>,
}

/// Compiles `pattern` case-insensitive and multi-line, the original's defaults. A pattern
/// turns them off inline: `(?-i)` for case, `(?-m)` for `^`/`$` at line ends.
pub fn compile_regex(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .multi_line(true)
        .build()
}

/// All non-overlapping matches of a compiled pattern in `text`.
pub fn regex_matches(regex: &Regex, text: &str) -> Vec<RegexMatch> {
    regex
        .captures_iter(text)
        .map(|captures| to_match(regex, &captures))
        .collect()
}

/// All matches of `pattern` (see [`compile_regex`] for its flags) in `text`.
pub fn regex(text: &str, pattern: &str) -> Result<Vec<RegexMatch>, regex::Error> {
    Ok(regex_matches(&compile_regex(pattern)?, text))
}

pub(crate) fn to_match(regex: &Regex, captures: &regex::Captures<'_>) -> RegexMatch {
    let groups = regex
        .capture_names()
        .flatten()
        .map(|name| {
            (
                name.to_owned(),
                captures.name(name).map(|group| group.as_str().to_owned()),
            )
        })
        .collect();
    RegexMatch {
        full_match: captures[0].to_owned(),
        groups,
    }
}

/// A CSS selector that failed to parse; the message names the selector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CSS selector '{selector}': {reason}")]
pub struct SelectorError {
    /// The selector as given.
    pub selector: String,
    /// The parser's reason, e.g. where the selector stops making sense.
    pub reason: String,
}

/// Parses a CSS selector once, to select with it many times; the error names the selector.
pub fn parse_selector(selector: &str) -> Result<Selector, SelectorError> {
    Selector::parse(selector).map_err(|error| SelectorError {
        selector: selector.to_owned(),
        reason: error.to_string(),
    })
}

/// One element a selector matched, detached from its document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Element {
    /// The element's text with its descendants', trimmed.
    pub text: String,
    /// The markup inside the element.
    pub inner_html: String,
    /// The element's attributes: names in lower case (as HTML parsing stores them), values
    /// as written.
    pub attrs: BTreeMap<String, String>,
}

impl Element {
    /// The value of the attribute `name` (in lower case, e.g. `href`); `None` when the element
    /// has none.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).map(String::as_str)
    }
}

/// Every element of the HTML document `html` that `selector` matches, in document order.
pub fn select(html: &str, selector: &str) -> Result<Vec<Element>, SelectorError> {
    let selector = parse_selector(selector)?;
    let document = Html::parse_document(html);
    Ok(document
        .select(&selector)
        .map(|element| Element {
            text: element_text(element),
            inner_html: element.inner_html(),
            attrs: element
                .value()
                .attrs()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
        })
        .collect())
}

/// The text of an element and its descendants, trimmed: what a person sees in it.
pub fn element_text(element: ElementRef<'_>) -> String {
    let text: String = element.text().collect();
    text.trim().to_owned()
}
