//! "Delete", then a confirmation before anything is deleted.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::api::delete_scraper;
use crate::components::use_toasts;

/// Deletes scraper `id` once confirmed, then goes to the scrapers list. `name` is the name in
/// the form, which the confirmation repeats.
#[component]
pub fn DeleteScraper(id: i64, name: RwSignal<String>) -> impl IntoView {
    let toasts = use_toasts();
    let navigate = use_navigate();
    let confirming = RwSignal::new(false);
    let cancel_ref = NodeRef::<leptos::html::Button>::new();
    let delete = Action::new(move |_: &()| delete_scraper(id));
    Effect::new(move |_| match delete.value().get() {
        Some(Ok(deleted)) => {
            toasts.success(format!("Scraper “{}” deleted.", deleted.name));
            navigate("/", Default::default());
        }
        Some(Err(error)) => toasts.failure(format!("Could not delete the scraper: {error}")),
        None => {}
    });
    // Focus moves into the confirmation so keyboard users land on its choices.
    Effect::new(move |_| {
        if confirming.get() {
            if let Some(button) = cancel_ref.get() {
                let _ = button.focus();
            }
        }
    });
    view! {
        <button type="button" class="button danger" data-testid="delete-scraper" on:click=move |_| confirming.set(true)>"Delete"</button>
        <Show when=move || confirming.get()>
            <div class="confirm" role="alertdialog" aria-labelledby="confirm-delete-text" data-testid="confirm-delete">
                <p id="confirm-delete-text">"Delete scraper “" {move || name.get()} "”? Its schedule stops; its past jobs stay readable."</p>
                <button type="button" class="button" node_ref=cancel_ref on:click=move |_| confirming.set(false)>"Cancel"</button>
                <button type="button" class="button danger" data-testid="confirm-delete-button" disabled=move || delete.pending().get()
                    on:click=move |_| { delete.dispatch(()); }>"Delete scraper"</button>
            </div>
        </Show>
    }
}
