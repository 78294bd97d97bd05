//! The web UI: a Leptos app rendered on the server by the `troupe` binary (`ssr`) and
//! hydrated in the browser by WebAssembly (`hydrate`, built for wasm32 by `xtask`).

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::StaticSegment;
use leptos_router::components::{Route, Router, Routes};

/// The document around every page: the hydration script and the page's meta tags.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
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
    view! {
        <Title text="Troupe"/>
        <Router>
            <main>
                <Routes fallback=|| "No such page.".into_view()>
                    <Route path=StaticSegment("") view=Dashboard/>
                    <Route path=StaticSegment("login") view=SignIn/>
                </Routes>
            </main>
        </Router>
    }
}

#[component]
fn Dashboard() -> impl IntoView {
    view! { <h1>"Troupe"</h1><p>"Nodes, agents, runs and approvals will show here, live."</p> }
}

#[component]
fn SignIn() -> impl IntoView {
    view! {
        <h1>"Sign in"</h1>
        <form method="post" action="/api/v1/auth/login">
            <label>"Email" <input type="email" name="email" autocomplete="username" required/></label>
            <label>"Password" <input type="password" name="password" autocomplete="current-password" required/></label>
            <button type="submit">"Sign in"</button>
        </form>
    }
}

/// The browser's entry point: takes over the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
