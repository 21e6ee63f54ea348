//! The built-in `extract` handler: declarative scraping configured entirely in
//! `config.params`, so scrapers can be made from the UI or the API without writing code.
//!
//! ```json
//! {"url": "https://example.com/list",
//!  "fields": {"title": {"css": "h1"},
//!             "links": {"css": "a", "attr": "href", "all": true},
//!             "price": {"regex": "(?P<amount>\\d+)\\s*(?P<currency>EUR|USD)"},
//!             "id":    {"json": "/data/id"}},
//!  "follow": {"css": "a.next", "attr": "href", "max_pages": 5}}
//! ```
//!
//! The result is `{"pages": [{"url": …, "status": …, "fields": {…}}]}`. The params are all
//! checked before the first request, and a wrong one fails the job naming it
//! (`invalid params.fields.title.css: …`).

use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;
use futures_util::{stream, StreamExt, TryStreamExt};
use regex::Regex;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::Url;
use scraper::{Html, Selector};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::limits;
use super::params::{parse_params, parse_params_at, ParamsError};
use super::parse::{compile_regex, element_text, parse_selector, to_match};
use super::{HandlerError, Method, Request, Response, ScraperContext, ScraperHandler};
use crate::redact::redact_url;

/// The `extract` handler (see the module docs for its params).
pub struct ExtractHandler;

#[async_trait]
impl ScraperHandler for ExtractHandler {
    fn name(&self) -> &str {
        crate::model::BuiltinHandler::Extract.name()
    }

    async fn run(&self, context: &ScraperContext) -> Result<String, HandlerError> {
        let plan = Plan::parse(context.params())?;
        let walks: Vec<Vec<Value>> = stream::iter(plan.starts.clone())
            .map(|start| plan.walk(context, start))
            .buffered(plan.max_concurrency)
            .try_collect()
            .await?;
        let pages: Vec<Value> = walks.into_iter().flatten().collect();
        Ok(json!({ "pages": pages }).to_string())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParams {
    url: Option<String>,
    urls: Option<Vec<String>>,
    method: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: Option<Value>,
    #[serde(default)]
    fields: Map<String, Value>,
    follow: Option<RawFollow>,
    max_concurrency: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    css: Option<String>,
    attr: Option<String>,
    regex: Option<String>,
    json: Option<String>,
    all: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFollow {
    css: String,
    attr: Option<String>,
    max_pages: Option<usize>,
}

/// What to pull out of each page.
enum Field {
    /// Text of the matched elements, or their attribute `attr`.
    Css {
        selector: Selector,
        attr: Option<String>,
        all: bool,
    },
    Regex {
        regex: Regex,
        all: bool,
    },
    /// A JSON pointer (RFC 6901) into a JSON response.
    Json {
        pointer: String,
    },
}

struct Follow {
    selector: Selector,
    attr: String,
    max_pages: usize,
}

/// Checked params, ready to run.
struct Plan {
    starts: Vec<String>,
    method: Method,
    headers: BTreeMap<String, String>,
    body: Option<Value>,
    fields: Vec<(String, Field)>,
    follow: Option<Follow>,
    /// Start URLs walked at once: `max_concurrency` as [`limits::concurrency`] reads it.
    max_concurrency: usize,
}

/// Pages walked per start URL when `follow.max_pages` is not given.
const DEFAULT_MAX_PAGES: usize = 10;

impl Plan {
    fn parse(params: &Map<String, Value>) -> Result<Plan, ParamsError> {
        let raw: RawParams = parse_params(params)?;
        let raw_urls_given = raw.urls.is_some();
        let starts = match (raw.url, raw.urls) {
            (Some(url), None) => vec![url],
            (None, Some(urls)) if urls.is_empty() => {
                return Err(ParamsError::new("urls", "must list at least one URL"))
            }
            (None, Some(urls)) => urls,
            (Some(_), Some(_)) => {
                return Err(ParamsError::new(
                    "urls",
                    "give either `url` or `urls`, not both",
                ))
            }
            (None, None) => return Err(ParamsError::new("url", "is required (or `urls`, a list)")),
        };
        for (index, start) in starts.iter().enumerate() {
            let field = if raw_urls_given {
                format!("urls.{index}")
            } else {
                "url".to_owned()
            };
            check_url(start).map_err(|message| ParamsError::new(field, message))?;
        }
        for (name, value) in &raw.headers {
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ParamsError::new("headers", format!("'{name}' is not a valid header name"))
            })?;
            HeaderValue::from_str(value).map_err(|_| {
                ParamsError::new(format!("headers.{name}"), "not a valid header value")
            })?;
        }
        let method = match raw.method {
            Some(method) => {
                Method::from_bytes(method.to_ascii_uppercase().as_bytes()).map_err(|_| {
                    ParamsError::new("method", format!("'{method}' is not an HTTP method"))
                })?
            }
            None => Method::GET,
        };
        let fields = raw
            .fields
            .into_iter()
            .map(|(name, spec)| Ok((name.clone(), Field::parse(&name, spec)?)))
            .collect::<Result<_, ParamsError>>()?;
        let follow = raw.follow.map(Follow::parse).transpose()?;
        let max_concurrency = limits::concurrency(raw.max_concurrency.unwrap_or(0));
        Ok(Plan {
            starts,
            method,
            headers: raw.headers,
            body: raw.body,
            fields,
            follow,
            max_concurrency,
        })
    }

    /// The first page of a walk is requested as configured; pages reached by `follow` are
    /// plain GETs with the same headers.
    fn request(&self, url: &str, first: bool) -> Request {
        let mut request = Request::new(
            if first {
                self.method.clone()
            } else {
                Method::GET
            },
            url,
        );
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        match (&self.body, first) {
            (Some(Value::String(text)), true) => request.body(text.clone()),
            (Some(body), true) => request.json(body),
            _ => request,
        }
    }

    /// Scrapes `start` and, with `follow`, the pages it links to, in order.
    async fn walk(
        &self,
        context: &ScraperContext,
        start: String,
    ) -> Result<Vec<Value>, HandlerError> {
        let max_pages = self.follow.as_ref().map_or(1, |follow| follow.max_pages);
        let mut pages = Vec::new();
        let mut visited = HashSet::new();
        let mut next = Some(start);
        while let Some(url) = next.take() {
            let response = context
                .request(self.request(&url, pages.is_empty()))
                .await?
                .error_for_status()?;
            visited.insert(url);
            visited.insert(response.url().to_owned());
            let (fields, link) = self.read_page(&response)?;
            pages.push(
                json!({ "url": response.url(), "status": response.status(), "fields": fields }),
            );
            next = link.filter(|link| pages.len() < max_pages && !visited.contains(link));
        }
        Ok(pages)
    }

    /// The fields of one page and the absolute URL of its `follow` link. Synchronous: the
    /// parsed document must not live across an `.await`.
    fn read_page(
        &self,
        response: &Response,
    ) -> Result<(Map<String, Value>, Option<String>), HandlerError> {
        let text = response.text();
        let needs_html = self.follow.is_some()
            || self
                .fields
                .iter()
                .any(|(_, field)| matches!(field, Field::Css { .. }));
        let document = needs_html.then(|| Html::parse_document(&text));
        let mut json_body: Option<Value> = None;
        let mut values = Map::new();
        for (name, field) in &self.fields {
            let value = match field {
                Field::Css {
                    selector,
                    attr,
                    all,
                } => {
                    let document = document.as_ref().expect("parsed for css fields");
                    let mut found = document.select(selector).filter_map(|element| match attr {
                        Some(attr) => element.attr(attr).map(str::to_owned),
                        None => Some(element_text(element)),
                    });
                    if *all {
                        Value::from(found.collect::<Vec<_>>())
                    } else {
                        found.next().map_or(Value::Null, Value::from)
                    }
                }
                Field::Regex { regex, all } => {
                    let mut found = regex
                        .captures_iter(&text)
                        .map(|captures| regex_value(regex, &captures));
                    if *all {
                        Value::from(found.collect::<Vec<_>>())
                    } else {
                        found.next().unwrap_or(Value::Null)
                    }
                }
                Field::Json { pointer } => {
                    if json_body.is_none() {
                        let parsed = response.json().map_err(|error| {
                            format!(
                                "field '{name}': {} {} did not return JSON: {error}",
                                self.method,
                                response.url()
                            )
                        })?;
                        json_body = Some(parsed);
                    }
                    json_body
                        .as_ref()
                        .and_then(|body| body.pointer(pointer))
                        .cloned()
                        .unwrap_or(Value::Null)
                }
            };
            values.insert(name.clone(), value);
        }
        let link = match (&self.follow, &document) {
            (Some(follow), Some(document)) => document
                .select(&follow.selector)
                .find_map(|element| element.attr(&follow.attr))
                .and_then(|href| Url::parse(response.url()).ok()?.join(href).ok())
                .map(String::from),
            _ => None,
        };
        Ok((values, link))
    }
}

/// Refuses what could never be fetched, before the first request.
fn check_url(url: &str) -> Result<(), String> {
    match Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => Ok(()),
        _ => Err(format!(
            "'{}' is not an http:// or https:// URL with a host",
            redact_url(url)
        )),
    }
}

/// A regex match as a field value: its named groups as an object, else its first group,
/// else the whole match.
fn regex_value(regex: &Regex, captures: &regex::Captures<'_>) -> Value {
    if regex.capture_names().flatten().next().is_some() {
        return json!(to_match(regex, captures).groups);
    }
    match regex.captures_len() {
        1 => Value::from(&captures[0]),
        _ => captures
            .get(1)
            .map_or(Value::Null, |group| Value::from(group.as_str())),
    }
}

impl Field {
    fn parse(name: &str, spec: Value) -> Result<Field, ParamsError> {
        let path = format!("fields.{name}");
        let raw: RawField = parse_params_at(&path, spec)?;
        let all = raw.all.unwrap_or(false);
        if raw.attr.is_some() && raw.css.is_none() {
            return Err(ParamsError::new(
                format!("{path}.attr"),
                "only applies to `css` fields",
            ));
        }
        match (raw.css, raw.regex, raw.json) {
            (Some(css), None, None) => {
                let selector = parse_selector(&css)
                    .map_err(|error| ParamsError::new(format!("{path}.css"), error.to_string()))?;
                Ok(Field::Css {
                    selector,
                    attr: raw.attr,
                    all,
                })
            }
            (None, Some(pattern), None) => {
                let regex = compile_regex(&pattern).map_err(|error| {
                    ParamsError::new(format!("{path}.regex"), error.to_string())
                })?;
                Ok(Field::Regex { regex, all })
            }
            (None, None, Some(pointer)) => {
                if raw.all.is_some() {
                    return Err(ParamsError::new(
                        format!("{path}.all"),
                        "does not apply to `json` fields",
                    ));
                }
                if !(pointer.is_empty() || pointer.starts_with('/')) {
                    return Err(ParamsError::new(
                        format!("{path}.json"),
                        format!("'{pointer}' is not a JSON pointer (it must start with '/')"),
                    ));
                }
                Ok(Field::Json { pointer })
            }
            _ => Err(ParamsError::new(
                path,
                "needs exactly one of `css`, `regex` or `json`",
            )),
        }
    }
}

impl Follow {
    fn parse(raw: RawFollow) -> Result<Follow, ParamsError> {
        let selector = parse_selector(&raw.css)
            .map_err(|error| ParamsError::new("follow.css", error.to_string()))?;
        let max_pages = raw.max_pages.unwrap_or(DEFAULT_MAX_PAGES);
        if max_pages == 0 {
            return Err(ParamsError::new("follow.max_pages", "must be at least 1"));
        }
        Ok(Follow {
            selector,
            attr: raw.attr.unwrap_or_else(|| "href".to_owned()),
            max_pages,
        })
    }
}
