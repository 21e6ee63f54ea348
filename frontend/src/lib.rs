//! The wasm entry point: hydrates the server-rendered page in the browser.

// The UI's views are deeply nested types; optimised builds need more than the default.
#![recursion_limit = "256"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Lazy routes: the code of a page other than the scrapers list loads on first visit.
    leptos::mount::hydrate_lazy(app::App);
}
