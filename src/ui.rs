//! The web UI, served by this binary: pages rendered on the server by troupe-frontend,
//! the stylesheet and theme script compiled in, and the browser bundle `cargo xtask ui`
//! builds (`<target>/site/pkg`). Without the bundle every page still renders, and says
//! how to build it. Nothing is fetched from elsewhere: no CDN, no web fonts.
//!
//! The pages themselves carry no data (the browser fetches it through the guarded API),
//! so they are served to anyone, signed in or not.

use std::path::PathBuf;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use leptos::prelude::{LeptosOptions, use_context};
use leptos_axum::{LeptosRoutes, ResponseOptions, generate_route_list};

/// Where the bundle is looked for: `site/` in the target directory (`CARGO_TARGET_DIR`,
/// else `target` in the repository), where `cargo xtask ui` writes it.
pub fn site_root() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("site")
}

/// One file of the bundle; only the two names wasm-bindgen writes are served.
async fn bundle_file(Path(name): Path<String>) -> impl IntoResponse {
    let content_type = match name.as_str() {
        "troupe.js" => "text/javascript",
        "troupe_bg.wasm" => "application/wasm",
        _ => {
            return (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain")],
                Vec::new(),
            );
        }
    };
    match tokio::fs::read(site_root().join("pkg").join(&name)).await {
        Ok(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, content_type)],
            bytes,
        ),
        Err(_) => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain")],
            b"the UI bundle is not built: run `cargo xtask ui`".to_vec(),
        ),
    }
}

const STYLESHEET: &str = include_str!("../frontend/style/troupe.css");
const THEME_SCRIPT: &str = include_str!("../frontend/style/theme.js");

fn bundle_built() -> bool {
    site_root().join("pkg").join("troupe_bg.wasm").is_file()
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
}

async fn theme_script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        THEME_SCRIPT,
    )
}

/// Gives the page being rendered a fresh nonce, which its hydration script carries, and
/// a Content-Security-Policy that allows that script and no other inline one.
fn with_script_policy() {
    leptos::nonce::provide_nonce();
    let policy = leptos::nonce::use_nonce()
        .map(|nonce| troupe_api::headers::page_policy(&nonce))
        .and_then(|policy| HeaderValue::from_str(&policy).ok());
    if let (Some(policy), Some(response)) = (policy, use_context::<ResponseOptions>()) {
        response.insert_header(header::CONTENT_SECURITY_POLICY, policy);
    }
}

pub fn router() -> Router {
    let options = LeptosOptions::builder()
        .output_name("troupe")
        .site_root(site_root().display().to_string())
        .site_pkg_dir("pkg")
        .build();
    let routes = generate_route_list(troupe_frontend::App);
    let shell_options = options.clone();
    Router::new()
        .leptos_routes(&options, routes, move || {
            with_script_policy();
            troupe_frontend::shell(shell_options.clone(), bundle_built())
        })
        .route("/pkg/{name}", get(bundle_file))
        .route("/assets/troupe.css", get(stylesheet))
        .route("/assets/theme.js", get(theme_script))
        .with_state(options)
}
