//! The browser UI: pages and components rendered on the server and hydrated in the browser.
//!
//! Every action goes through a server function (in [`api`]) that calls the engine, so the UI
//! and the JsonRPC API share one implementation.

pub mod api;
mod pages;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::path;

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Effects run only in the browser, after hydration: the attribute tells people's tools
    // (and the end-to-end tests) that the page is interactive.
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <Stylesheet id="leptos" href="/pkg/sneakpeek.css"/>
        <Title formatter=|page: String| format!("{page} · Sneakpeek")/>
        <Router>
            <header class="topbar">
                <A href="/" attr:class="brand">"Sneakpeek"</A>
                <nav>
                    <A href="/">"Scrapers"</A>
                    <a href="/api" rel="external">"API"</a>
                    <a href="/docs/" rel="external">"Docs"</a>
                </nav>
            </header>
            <main>
                <Routes fallback=pages::NotFound>
                    <Route path=path!("/") view=pages::ScrapersPage/>
                </Routes>
            </main>
        </Router>
    }
}
