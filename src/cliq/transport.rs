//! How a request reaches Cliq.
//!
//! Production sends it over HTTPS with reqwest. Tests and the demo may instead
//! hand it straight to the simulator's axum `Router` in the same process: no
//! socket, so tokio's paused clock never races real I/O (a paused runtime that
//! idles on a socket auto-advances to the next timer, firing request timeouts
//! that never happened). Both paths carry the same `http` request and response
//! bytes, so everything above this module is exercised identically.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http_body_util::BodyExt;

/// A failure to get a complete HTTP response. Worth a retry for a read; for
/// a write only [`TransportError::Connect`] proves nothing reached the server.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Nothing was sent: the connection could not be made.
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("request failed: {0}")]
    Io(String),
    #[error("response body incomplete: {0}")]
    Body(String),
}

impl TransportError {
    /// The request certainly never reached the server (so even a write may
    /// be sent again blindly).
    pub fn never_sent(&self) -> bool {
        matches!(self, TransportError::Connect(_))
    }
}

pub type TransportFuture<'a> =
    Pin<Box<dyn Future<Output = Result<http::Response<Bytes>, TransportError>> + Send + 'a>>;

/// Sends one HTTP request and returns the whole response.
pub trait Transport: Send + Sync + 'static {
    fn send(&self, req: http::Request<Bytes>) -> TransportFuture<'_>;
}

/// HTTPS (or loopback HTTP) through reqwest with rustls.
#[derive(Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
}

impl ReqwestTransport {
    pub fn new() -> Result<Self, TransportError> {
        Self::build(reqwest::Client::builder())
    }

    /// As [`ReqwestTransport::new`], but ignoring `HTTP_PROXY`/`HTTPS_PROXY`:
    /// for a simulator on loopback (the demo), which a proxy cannot reach.
    pub fn without_proxy() -> Result<Self, TransportError> {
        Self::build(reqwest::Client::builder().no_proxy())
    }

    fn build(builder: reqwest::ClientBuilder) -> Result<Self, TransportError> {
        crate::install_crypto_provider();
        let client = builder
            .user_agent(concat!("cliq-sync/", env!("CARGO_PKG_VERSION")))
            // A host that drops SYNs would otherwise hold a request for the
            // whole request timeout; a failed connect is provably unsent.
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| TransportError::Connect(e.to_string()))?;
        Ok(Self { client })
    }
}

impl Transport for ReqwestTransport {
    fn send(&self, req: http::Request<Bytes>) -> TransportFuture<'_> {
        Box::pin(async move {
            let req = reqwest::Request::try_from(req.map(reqwest::Body::from))
                .map_err(|e| TransportError::Io(e.to_string()))?;
            let resp = self.client.execute(req).await.map_err(|e| {
                if e.is_connect() {
                    TransportError::Connect(error_chain(&e))
                } else {
                    TransportError::Io(e.to_string())
                }
            })?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = resp
                .bytes()
                .await
                .map_err(|e| TransportError::Body(e.to_string()))?;
            let mut out = http::Response::new(body);
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            Ok(out)
        })
    }
}

/// An error with its sources ("error sending request …: tcp connect error:
/// Connection refused"): reqwest's own text omits the cause.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// In-process transport: calls an axum `Router` (the simulator) directly.
#[derive(Clone)]
pub struct RouterTransport {
    router: axum::Router,
}

impl RouterTransport {
    pub fn new(router: axum::Router) -> Self {
        Self { router }
    }
}

impl Transport for RouterTransport {
    fn send(&self, req: http::Request<Bytes>) -> TransportFuture<'_> {
        use tower::ServiceExt;
        let router = self.router.clone();
        Box::pin(async move {
            let resp = router
                .oneshot(req.map(axum::body::Body::from))
                .await
                .map_err(|e| TransportError::Io(e.to_string()))?;
            let (parts, body) = resp.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| TransportError::Body(e.to_string()))?
                .to_bytes();
            Ok(http::Response::from_parts(parts, body))
        })
    }
}
