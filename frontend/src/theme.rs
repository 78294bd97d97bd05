//! Dark and light themes. The system preference decides until the person picks one with
//! the toggle; the pick is kept in `localStorage` and applied by `/assets/theme.js`
//! before the first paint.

use leptos::prelude::*;

#[component]
pub fn ThemeToggle() -> impl IntoView {
    view! {
        <button
            type="button"
            class="button ghost"
            data-testid="theme-toggle"
            aria-label="Switch between the dark and the light theme"
            on:click=move |_| toggle()
        >
            <span aria-hidden="true">"◐"</span>
            " Theme"
        </button>
    }
}

#[cfg(feature = "hydrate")]
fn toggle() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let Some(root) = window
        .document()
        .and_then(|document| document.document_element())
    else {
        return;
    };
    let current = root.get_attribute("data-theme").unwrap_or_else(|| {
        let dark = window
            .match_media("(prefers-color-scheme: dark)")
            .ok()
            .flatten()
            .is_some_and(|query| query.matches());
        if dark { "dark" } else { "light" }.to_owned()
    });
    let next = if current == "dark" { "light" } else { "dark" };
    let _ = root.set_attribute("data-theme", next);
    if let Ok(Some(storage)) = window.local_storage() {
        // The key `style/theme.js` reads.
        let _ = storage.set_item("troupe-theme", next);
    }
}

#[cfg(not(feature = "hydrate"))]
fn toggle() {}
