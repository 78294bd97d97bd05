//! The web UI: a Leptos app rendered on the server by the `troupe` binary (`ssr`) and
//! hydrated in the browser by WebAssembly (`hydrate`, built for wasm32 by `cargo xtask ui`).
//!
//! The server renders each page's frame; the browser fetches the data through the API
//! with the session cookie (see `api`), so the route guard sees every read and write.

// Leptos views are nested types; the hydrate build's async layouts of the larger pages
// go past the default depth of 128.
#![recursion_limit = "256"]

pub mod api;
pub mod builder;
pub mod model;
mod pages;
mod theme;
pub mod view;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::{StaticSegment, path};

/// The pages of the app, as the server registers them and the tests visit them.
pub const PAGES: &[&str] = &[
    "/",
    "/login",
    "/runs",
    "/approvals",
    "/triggers",
    "/builder",
    "/costs",
    "/audit",
    "/findings",
    "/agents",
    "/account",
];

/// The document around every page. `bundle_built`: whether the browser bundle exists;
/// without it the page renders without its script and says how to build it.
pub fn shell(options: LeptosOptions, bundle_built: bool) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="dark light"/>
                // Sets the saved theme before the first paint, so the page never flashes.
                <script src="/assets/theme.js"></script>
                <link rel="stylesheet" href="/assets/troupe.css"/>
                {bundle_built.then(|| view! { <HydrationScripts options/> })}
                <MetaTags/>
            </head>
            // `hydrate_body` takes over the body from its first node, so with the bundle
            // the body holds the app alone (an empty `Option` would leave a marker there).
            {if bundle_built {
                view! { <body><App/></body> }.into_any()
            } else {
                view! {
                    <body>
                        <p class="banner" role="status">
                            "This page is rendered without its interactive bundle, so it shows no "
                            "data. Build the bundle with " <code>"cargo xtask ui"</code>
                            " and reload."
                        </p>
                        <App/>
                    </body>
                }.into_any()
            }}
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title text="Troupe"/>
        <Router>
            <a class="skip-link" href="#main">"Skip to content"</a>
            <header class="topbar glass">
                <A href="/" attr:class="brand">"Troupe"</A>
                <nav aria-label="Main">
                    <A href="/">"Dashboard"</A>
                    <A href="/runs">"Runs"</A>
                    <A href="/approvals">"Approvals"</A>
                    <A href="/triggers">"Triggers"</A>
                    <A href="/builder">"Builder"</A>
                    <A href="/costs">"Costs"</A>
                    <A href="/audit">"Audit"</A>
                    <A href="/findings">"Findings"</A>
                    <A href="/agents">"Agents"</A>
                    <A href="/account">"Account"</A>
                </nav>
                <div class="topbar-actions">
                    <theme::ThemeToggle/>
                    <pages::sign_in::SignOut/>
                </div>
            </header>
            <main id="main" class="content" tabindex="-1">
                <Routes fallback=|| view! { <section class="panel glass"><h1>"No such page"</h1></section> }>
                    <Route path=StaticSegment("") view=pages::dashboard::Dashboard/>
                    <Route path=StaticSegment("login") view=pages::sign_in::SignIn/>
                    <Route path=StaticSegment("runs") view=pages::runs::Runs/>
                    <Route path=path!("/runs/:id") view=pages::run::RunPage/>
                    <Route path=StaticSegment("approvals") view=pages::approvals::Approvals/>
                    <Route path=StaticSegment("triggers") view=pages::triggers::TriggersPage/>
                    <Route path=StaticSegment("builder") view=builder::BuilderPage/>
                    <Route path=StaticSegment("costs") view=pages::costs::CostsPage/>
                    <Route path=StaticSegment("audit") view=pages::audit::AuditPage/>
                    <Route path=StaticSegment("findings") view=pages::findings::FindingsPage/>
                    <Route path=StaticSegment("agents") view=pages::agents::AgentsPage/>
                    <Route path=StaticSegment("account") view=pages::account::Account/>
                </Routes>
            </main>
        </Router>
    }
}

/// The browser's entry point: takes over the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
    // Says the page is interactive: the UI tests wait for it, and `troupe bench ui`
    // times it.
    let Some(window) = web_sys::window() else {
        return;
    };
    if let Some(root) = window
        .document()
        .and_then(|document| document.document_element())
    {
        let since_navigation = window.performance().map_or(0.0, |clock| clock.now());
        let _ = root.set_attribute("data-hydrated-at", &format!("{since_navigation:.1}"));
        let _ = root.set_attribute("data-hydrated", "true");
    }
}
