//! The user documentation at `/docs/`: the Markdown pages of the repository's `docs/` folder,
//! compiled into the binary and rendered to HTML once, when the router is built.
//!
//! The pages link to each other as files (`[middleware](middleware.md)`) so that they also
//! read well in the repository; here those links become page URLs. Headings get the ids a
//! code host gives them (`## Writing a handler` becomes `#writing-a-handler`), so the pages'
//! anchors work in both places.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag, TagEnd};

/// A page's source: the last segment of its URL and its Markdown.
struct Source {
    slug: &'static str,
    markdown: &'static str,
}

macro_rules! page {
    ($slug:literal) => {
        Source {
            slug: $slug,
            markdown: include_str!(concat!("../../docs/", $slug, ".md")),
        }
    };
}

/// The pages, in the order of the navigation. `index` is the one at `/docs/`.
const SOURCES: [Source; 8] = [
    page!("index"),
    page!("quick-start"),
    page!("architecture"),
    page!("deployment"),
    page!("handlers"),
    page!("middleware"),
    page!("api"),
    page!("configuration"),
];

/// Files the pages show, served next to them: (path under `/docs/`, content type, bytes).
const FILES: [(&str, &str, &[u8]); 1] = [(
    "screenshots/scrapers.png",
    "image/png",
    include_bytes!("../../docs/screenshots/scrapers.png"),
)];

const STYLESHEET: &str = include_str!("docs.css");
const STYLESHEET_PATH: &str = "style.css";

/// `/docs` (redirects to `/docs/`), `/docs/` (the index), `/docs/<page>`, the stylesheet and
/// the pages' images.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let site = Arc::new(Site::render());
    let index = site.clone();
    Router::new()
        .route("/docs", get(|| async { Redirect::permanent("/docs/") }))
        .route("/docs/", get(move || async move { index.respond("index") }))
        .route(
            "/docs/{*path}",
            get(move |Path(path): Path<String>| async move { site.respond(&path) }),
        )
}

/// Every page, rendered.
struct Site {
    /// Page slug -> the whole HTML document.
    pages: HashMap<&'static str, String>,
    not_found: String,
}

impl Site {
    fn render() -> Site {
        let rendered: Vec<(&'static str, String, String)> = SOURCES
            .iter()
            .map(|source| {
                let (title, body) = render_markdown(source.markdown);
                (
                    source.slug,
                    title.unwrap_or_else(|| source.slug.to_owned()),
                    body,
                )
            })
            .collect();
        let navigation: Vec<(&str, &str)> = rendered
            .iter()
            .map(|(slug, title, _)| (*slug, title.as_str()))
            .collect();
        let pages = rendered
            .iter()
            .map(|(slug, title, body)| (*slug, layout(title, body, &navigation, Some(slug))))
            .collect();
        let not_found = layout(
            "Page not found",
            "<h1>Page not found</h1><p>No page of the documentation has this address.</p>",
            &navigation,
            None,
        );
        Site { pages, not_found }
    }

    fn respond(&self, path: &str) -> Response {
        if let Some(page) = self.pages.get(path) {
            return Html(page.clone()).into_response();
        }
        if path == STYLESHEET_PATH {
            return (
                [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
                STYLESHEET,
            )
                .into_response();
        }
        if let Some((_, content_type, bytes)) = FILES.iter().find(|(file, ..)| *file == path) {
            return ([(header::CONTENT_TYPE, *content_type)], *bytes).into_response();
        }
        (StatusCode::NOT_FOUND, Html(self.not_found.clone())).into_response()
    }
}

/// The URL of a page from anywhere.
fn page_url(slug: &str) -> String {
    if slug == "index" {
        "/docs/".to_owned()
    } else {
        format!("/docs/{slug}")
    }
}

/// A whole HTML document: the header, the navigation between pages (`current` marked) and
/// `body`.
fn layout(title: &str, body: &str, navigation: &[(&str, &str)], current: Option<&str>) -> String {
    let items: String = navigation
        .iter()
        .map(|(slug, title)| {
            let marker = if Some(*slug) == current {
                r#" aria-current="page""#
            } else {
                ""
            };
            format!(
                r#"<li><a href="{}"{marker}>{}</a></li>"#,
                page_url(slug),
                escaped(title)
            )
        })
        .collect();
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Sneakpeek documentation</title>
<link rel="stylesheet" href="/docs/{STYLESHEET_PATH}">
</head>
<body>
<header><a class="brand" href="/docs/">Sneakpeek documentation</a><nav class="elsewhere"><a href="/">Scrapers</a><a href="/api">API explorer</a></nav></header>
<div class="columns">
<nav class="pages" aria-label="Pages"><ul>{items}</ul></nav>
<main>
{body}
</main>
</div>
</body>
</html>
"#,
        title = escaped(title)
    )
}

/// `text` as HTML text.
fn escaped(text: &str) -> String {
    let mut html = String::new();
    html::push_html(&mut html, std::iter::once(Event::Text(text.into())));
    html
}

/// Renders a page's Markdown: (the text of its first `#` heading, the HTML).
fn render_markdown(markdown: &str) -> (Option<String>, String) {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut events: Vec<Event> = Parser::new_ext(markdown, options)
        .map(link_to_pages)
        .collect();
    let mut title = None;
    let mut used_anchors: HashMap<String, usize> = HashMap::new();
    let mut index = 0;
    while index < events.len() {
        if let Event::Start(Tag::Heading { level, .. }) = &events[index] {
            let level = *level;
            let text = heading_text(&events[index + 1..]);
            if level == pulldown_cmark::HeadingLevel::H1 && title.is_none() {
                title = Some(text.clone());
            }
            let anchor = unique_anchor(&text, &mut used_anchors);
            if let Event::Start(Tag::Heading { id, .. }) = &mut events[index] {
                *id = Some(anchor.into());
            }
        }
        index += 1;
    }
    let mut body = String::new();
    html::push_html(&mut body, events.into_iter());
    (title, body)
}

/// The plain text of a heading whose start precedes `events`.
fn heading_text(events: &[Event]) -> String {
    events
        .iter()
        .take_while(|event| !matches!(event, Event::End(TagEnd::Heading(_))))
        .filter_map(|event| match event {
            Event::Text(text) | Event::Code(text) => Some(text.as_ref()),
            _ => None,
        })
        .collect()
}

/// The id a code host gives a heading: lower case, punctuation dropped, spaces as hyphens,
/// and `-1`, `-2`... after a repeated one.
fn unique_anchor(text: &str, used: &mut HashMap<String, usize>) -> String {
    let anchor: String = text
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect();
    let seen = used.entry(anchor.clone()).or_insert(0);
    *seen += 1;
    match *seen {
        1 => anchor,
        repeat => format!("{anchor}-{}", repeat - 1),
    }
}

/// A link to another page's file (`handlers.md#extract`) becomes a link to the page
/// (`handlers#extract`); other links stay as they are.
fn link_to_pages(event: Event) -> Event {
    match event {
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: page_link(dest_url),
            title,
            id,
        }),
        other => other,
    }
}

fn page_link(destination: CowStr) -> CowStr {
    let is_relative = !destination.contains(':') && !destination.starts_with('/');
    let (path, fragment) = destination
        .split_once('#')
        .map_or((destination.as_ref(), None), |(path, fragment)| {
            (path, Some(fragment))
        });
    let Some(slug) = path
        .strip_suffix(".md")
        .filter(|slug| is_relative && !slug.contains('/'))
    else {
        return destination;
    };
    let page = if slug == "index" { "./" } else { slug };
    match fragment {
        Some(fragment) => format!("{page}#{fragment}").into(),
        None => page.to_owned().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_to_page_files_become_page_links_and_others_stay() {
        let cases = [
            ("middleware.md", "middleware"),
            (
                "handlers.md#extract-declarative-scraping",
                "handlers#extract-declarative-scraping",
            ),
            ("index.md", "./"),
            ("#local", "#local"),
            (
                "https://example.com/readme.md",
                "https://example.com/readme.md",
            ),
            ("../README.md", "../README.md"),
            ("screenshots/scrapers.png", "screenshots/scrapers.png"),
        ];
        for (link, expected) in cases {
            assert_eq!(page_link(link.into()).as_ref(), expected, "{link}");
        }
    }

    #[test]
    fn headings_get_the_anchors_a_code_host_gives_them() {
        let (title, html) = render_markdown("# The `extract` handler\n\n## `extract`: declarative scraping\n\n## Notes\n\n## Notes\n");
        assert_eq!(title.as_deref(), Some("The extract handler"));
        assert!(
            html.contains(r#"<h2 id="extract-declarative-scraping">"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<h2 id="notes">"#) && html.contains(r#"<h2 id="notes-1">"#),
            "{html}"
        );
    }

    #[test]
    fn titles_are_escaped_in_the_layout() {
        let page = layout("A <b> & C", "", &[("index", "A <b> & C")], Some("index"));
        assert!(
            page.contains("<title>A &lt;b&gt; &amp; C · Sneakpeek documentation</title>"),
            "{page}"
        );
        assert!(
            page.contains(r#"<a href="/docs/" aria-current="page">A &lt;b&gt; &amp; C</a>"#),
            "{page}"
        );
    }
}
