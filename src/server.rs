//! The health and metrics server (`[server] listen`, loopback by default):
//! `/healthz` (the process answers), `/readyz` (mirror open, migrations
//! applied, pulls not failing again and again) and `/metrics` (Prometheus
//! text format).
//!
//! Metrics are computed at scrape time from the mirror and the in-process
//! counters, into a fresh registry: what is on disk (locks, quota use,
//! users) is shared with other processes and must be read, not cached.
//! Labels carry endpoint names, run kinds and statuses only: never an
//! email, a name or an id.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::app::App;
use crate::daemon::DaemonState;

mod conns;
mod exposition;
mod metrics;
mod process;

pub use exposition::Format;
pub use metrics::render;

/// What the handlers read.
pub struct ServerState {
    pub app: App,
    pub daemon: Arc<DaemonState>,
    /// `/readyz` fails once this many pulls in a row have failed.
    pub max_pull_failures: u32,
}

/// How connections are served (see [`serve`]).
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// A client must send a whole request head within this (also the
    /// keep-alive wait between requests).
    pub header_read_timeout: Duration,
    /// A connection on which nothing was read or written for this long is
    /// closed (a client that stops reading an answer, a stalled body).
    pub idle_timeout: Duration,
    /// Connections served at once (`[server] max_connections`).
    pub max_connections: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 64,
        }
    }
}

/// Serve `app` on `listener` until `shutdown` resolves, with the limits of
/// `opts` (see `server/conns.rs` for why and how).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let conns = conns::Connections::new(opts.max_connections);
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving
                    // the connections we have and try again shortly.
                    tracing::warn!(error = %e, "health server: accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        match conns.admit().await {
            Some(admitted) => {
                let task = conns::serve_connection(
                    stream,
                    app.clone(),
                    opts.clone(),
                    admitted,
                    stop.clone(),
                );
                tokio::spawn(task);
            }
            None => drop(stream), // every connection is busy: close at once
        }
    }
    stop.cancel();
    Ok(())
}

pub fn router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(s): State<Arc<ServerState>>) -> impl IntoResponse {
    if let Err(why) = s.app.store.ready().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        );
    }
    let failures = s.daemon.consecutive_pull_failures.load(Ordering::Relaxed);
    if failures >= s.max_pull_failures {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: the last {failures} pulls failed\n"),
        );
    }
    (StatusCode::OK, "ready\n".to_owned())
}

async fn metrics(
    State(s): State<Arc<ServerState>>,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    match render(&s).await {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, format.content_type())],
            match format {
                Format::OpenMetrics => text,
                Format::PrometheusText => exposition::to_prometheus_text(&text),
            },
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("metrics unavailable: {e}\n"),
        )
            .into_response(),
    }
}
