//! `troupe up`: a node and its API until Ctrl-C / SIGTERM, or until the supervision tree
//! gives up (exit 3).

use std::process::ExitCode;
use std::sync::{Arc, Weak};

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use troupe_config::Settings;
use troupe_node::{Node, NodeBuilder};

use super::{InputError, tls};

pub async fn up(
    settings: Settings,
    sources: super::settings::Sources,
    live: super::telemetry::Live,
) -> anyhow::Result<ExitCode> {
    let address = troupe_api::check_bind_address(&settings.server.address, settings.auth.required)
        .map_err(|error| InputError(error.to_string()))?;
    // Before the node starts: bad certificate files stop `up` having done nothing.
    let tls = settings
        .server
        .tls
        .as_ref()
        .map(tls::config)
        .transpose()
        .map_err(|error| InputError(error.to_string()))?;
    if settings.models.serve
        && (settings.models.generation.is_empty() || settings.models.embedding.is_empty())
    {
        let fetching = settings.clone();
        tokio::task::spawn_blocking(move || super::models::fetch_defaults(&fetching))
            .await?
            .context("fetching the default models (or set models.serve = false)")?;
    }
    let node = Arc::new(
        NodeBuilder::new(settings.clone())
            .settings_source(Arc::new(move || sources.load()))
            .start()
            .await
            .context("starting the node")?,
    );
    live.follow(node.running_settings());
    reload_on_hangup(Arc::downgrade(&node));
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let url = format!(
        "{}://{address}",
        if tls.is_some() { "https" } else { "http" }
    );
    println!("Troupe is up.");
    println!("  API:   {url}/api/v1");
    println!("  Docs:  {url}/docs");
    println!("  Store: {}", settings.store.url);
    println!("Run a workflow:  troupe run examples/review.yaml --server {url}");
    println!(
        "Kinds that run commands or reach the network (shell, http, ...) are off until a \
         project is granted them: troupe projects allow default shell --server {url}"
    );
    if settings.auth.required {
        println!("Accounts are on: sign in first with `troupe login --email EMAIL`.");
    }
    if let Some((email, password)) = node.take_bootstrap_password() {
        // Shown this once and never stored in the clear: the account must change it.
        println!("First account: {email}  one-time password: {password}");
        println!("  (troupe login --email {email} asks for it, then for a password of your own)");
    }
    serve_until_stopped(node, listener, tls).await
}

/// SIGHUP reloads the settings, as `troupe config reload` does. It holds the node
/// weakly: the shutdown needs the last strong handle.
fn reload_on_hangup(node: Weak<Node>) {
    tokio::spawn(async move {
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(error) => {
                tracing::warn!(%error, "no SIGHUP reloads: the signal cannot be watched");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            let Some(node) = node.upgrade() else {
                return;
            };
            if let Err(error) = node.reload("signal").await {
                tracing::error!(%error, "SIGHUP: the settings were not reloaded");
            }
        }
    });
}

/// Serves the API on `listener` (over TLS with `tls`) until a shutdown signal or the
/// node's end.
async fn serve_until_stopped(
    node: Arc<Node>,
    listener: TcpListener,
    tls: Option<RustlsConfig>,
) -> anyhow::Result<ExitCode> {
    // The API's router sets the security headers on its own routes; the pages get the
    // same middleware.
    let pages = crate::ui::router().layer(axum::middleware::from_fn(
        troupe_api::headers::security_headers,
    ));
    let app = troupe_api::router(node.clone()).merge(pages);
    let watched = node.clone();
    let node_ended = async move {
        while watched.is_alive() {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    };
    let stopped = async {
        tokio::select! {
            () = shutdown_signal() => tracing::info!("shutting down"),
            () = node_ended => {
                tracing::error!("the node's supervision tree stopped after a crash loop");
            }
        }
    };
    serve(listener, app, tls, stopped)
        .await
        .context("serving the API")?;
    let crashed = !node.is_alive();
    match Arc::try_unwrap(node) {
        Ok(node) => node.shutdown().await,
        Err(_) => tracing::debug!("connections still hold the node; exiting anyway"),
    }
    Ok(if crashed {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// Serves `app` on `listener`, over TLS with `tls`, until `stopped`; requests under way
/// then get a moment to finish.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    tls: Option<RustlsConfig>,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Some(tls) = tls else {
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        return axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await;
    };
    // A browser that once reached the node over HTTPS never tries plain HTTP again.
    let app = app
        .layer(axum::middleware::map_response(strict_transport_security))
        .layer(axum::middleware::map_request(host_from_authority))
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let handle = axum_server::Handle::new();
    let stopping = handle.clone();
    tokio::spawn(async move {
        stopped.await;
        stopping.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    axum_server::from_tcp_rustls(listener.into_std()?, tls)?
        .handle(handle)
        .serve(app)
        .await
}

/// HTTP/2 (which browsers speak over TLS) names the host in `:authority`, not in a
/// `Host` header; the checks that compare `Origin` with the host read `Host`.
async fn host_from_authority(mut request: axum::extract::Request) -> axum::extract::Request {
    if !request.headers().contains_key(axum::http::header::HOST)
        && let Some(host) = request
            .uri()
            .authority()
            .and_then(|authority| axum::http::HeaderValue::from_str(authority.as_str()).ok())
    {
        request.headers_mut().insert(axum::http::header::HOST, host);
    }
    request
}

async fn strict_transport_security(
    mut response: axum::response::Response,
) -> axum::response::Response {
    response.headers_mut().insert(
        axum::http::header::STRICT_TRANSPORT_SECURITY,
        axum::http::HeaderValue::from_static("max-age=31536000"),
    );
    response
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        result = interrupt => if let Err(error) = result { tracing::warn!(%error, "cannot listen for Ctrl-C") },
        () = terminate => {}
    }
}
