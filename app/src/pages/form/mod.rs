//! The scraper form, for a new scraper (`/new`) and an existing one (`/scrapers/:id/edit`).
//!
//! Fields are checked while typing: the config's JSON and the timeout in the browser, the
//! crontab by the server, which also lists its next fire times. The server checks everything
//! again on save and its field errors are shown at their fields. In read-only mode the form
//! shows the settings without letting them change.
//!
//! This module has the two routes; [`scraper_form`] puts the form together from the scraper
//! being edited ([`draft`]), its fields ([`fields`], and [`config`] for the handler's config),
//! the "Run once" panel that tries a script out ([`run_once`]) and deletion ([`delete`]).

mod config;
mod delete;
mod draft;
mod fields;
mod retry;
mod run_once;
mod scraper_form;

use engine::model::{Scraper, ScraperJobPriority, ScraperSchedule, UNSET_ID};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::{lazy_route, LazyRoute};

use crate::api::{get_scraper, UiError, UiSettings};
use crate::components::{id_param, use_settings, LoadError, NotFound};
use crate::json::{self, Loaded};
use scraper_form::ScraperForm;

/// The new scraper route, loaded on first visit.
pub struct NewScraperPage {
    settings: Loaded<Result<UiSettings, UiError>>,
}

#[lazy_route]
impl LazyRoute for NewScraperPage {
    fn data() -> Self {
        Self {
            settings: use_settings(),
        }
    }

    fn view(this: Self) -> AnyView {
        let settings = this.settings;
        view! {
            <Title text="New scraper"/>
            <p class="breadcrumb"><A href="/">"Scrapers"</A> " / new"</p>
            <h1>"New scraper"</h1>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match settings.await {
                        Ok(settings) => {
                            let handler = settings.handlers.first().cloned().unwrap_or_default();
                            let initial = Scraper {
                                id: UNSET_ID,
                                name: String::new(),
                                schedule: ScraperSchedule::Inactive,
                                schedule_crontab: None,
                                config: config::starting_config(&handler),
                                handler,
                                schedule_priority: ScraperJobPriority::Normal,
                                state: None,
                                timeout_seconds: None,
                                retry: None,
                                schedule_timezone: None,
                                schedule_crontab_dialect: None,
                            };
                            view! { <ScraperForm initial settings/> }.into_any()
                        }
                        Err(error) => view! { <LoadError what="the form" error/> }.into_any(),
                    }
                })}
            </Suspense>
        }
        .into_any()
    }
}

/// The edit route, loaded on first visit: the scraper starts loading with its code.
pub struct EditScraperPage {
    scraper: Loaded<Option<Result<Scraper, UiError>>>,
    settings: Loaded<Result<UiSettings, UiError>>,
}

#[lazy_route]
impl LazyRoute for EditScraperPage {
    fn data() -> Self {
        let id = id_param("id");
        Self {
            scraper: json::load(
                move || id.get(),
                |id| async move { Some(get_scraper(id?).await) },
            ),
            settings: use_settings(),
        }
    }

    fn view(this: Self) -> AnyView {
        let EditScraperPage { scraper, settings } = this;
        view! {
            <Suspense fallback=|| view! { <p class="muted">"Loading the scraper…"</p> }>
                {move || Suspend::new(async move {
                    match (scraper.await, settings.await) {
                        (None, _) => view! { <NotFound/> }.into_any(),
                        (Some(Ok(initial)), Ok(settings)) => {
                            let (title, link, name) = (format!("Edit {}", initial.name), format!("/scrapers/{}", initial.id), initial.name.clone());
                            view! {
                                <Title text=title/>
                                <p class="breadcrumb">
                                    <A href="/">"Scrapers"</A> " / " <A href=link>{name}</A> " / edit"
                                </p>
                                <h1>{if settings.read_only { "Scraper settings" } else { "Edit scraper" }}</h1>
                                <ScraperForm initial settings/>
                            }.into_any()
                        }
                        (Some(Err(error)), _) | (_, Err(error)) => view! { <Title text="Scraper"/><LoadError what="the scraper" error/> }.into_any(),
                    }
                })}
            </Suspense>
        }
        .into_any()
    }
}
