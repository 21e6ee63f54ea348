//! The browser UI: pages and components rendered on the server and hydrated in the browser.
//!
//! Every action goes through a server function (in [`api`]) that calls the engine, so the UI
//! and the JsonRPC API share one implementation. Pages read their data with resources, so the
//! server renders them complete (and readable without JavaScript); live updates arrive over
//! the server-sent event streams of [`live`].

pub mod api;
mod components;
mod json;
pub mod live;
mod pages;
mod time;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::{path, Lazy};

use crate::components::{provide_settings, NotFound, ReadOnlyHidden, Toasts};

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
    provide_settings();
    time::provide_clock();
    let toasts = Toasts::provide();
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
            <a class="skip-link" href="#content">"Skip to content"</a>
            <header class="topbar">
                <A href="/" attr:class="brand">"Sneakpeek"</A>
                <nav aria-label="Main">
                    <A href="/" exact=true>"Scrapers"</A>
                    <ReadOnlyHidden>
                        <A href="/new">"New scraper"</A>
                    </ReadOnlyHidden>
                    <A href="/dashboard">"Dashboard"</A>
                    <a href="/api" rel="external">"API"</a>
                    <a href="/docs/" rel="external">"Docs"</a>
                </nav>
            </header>
            <main id="content">
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=pages::scrapers::ScrapersPage/>
                    <Route path=path!("/new") view={Lazy::<pages::form::NewScraperPage>::new()}/>
                    <Route path=path!("/scrapers/:id") view={Lazy::<pages::scraper::ScraperPage>::new()}/>
                    <Route path=path!("/scrapers/:id/edit") view={Lazy::<pages::form::EditScraperPage>::new()}/>
                    <Route path=path!("/scrapers/:id/jobs/:job_id") view={Lazy::<pages::job::JobPage>::new()}/>
                    <Route path=path!("/dashboard") view={Lazy::<pages::dashboard::DashboardPage>::new()}/>
                    <Route path=path!("/login") view=pages::login::LoginPage/>
                </Routes>
            </main>
            {toasts.view()}
        </Router>
    }
}
