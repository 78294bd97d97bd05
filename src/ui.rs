//! The web UI, served by this binary: pages rendered on the server by troupe-frontend,
//! and the browser bundle `cargo xtask ui` builds (`<target>/site/pkg`). Without the
//! bundle every page still renders, and says how to build it.

use std::path::PathBuf;

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use leptos::prelude::LeptosOptions;
use leptos_axum::{LeptosRoutes, generate_route_list};

/// Where the bundle is looked for: `ui.site_root`, else the build's target directory.
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
            troupe_frontend::shell(shell_options.clone())
        })
        .route("/pkg/{name}", get(bundle_file))
        .with_state(options)
}
