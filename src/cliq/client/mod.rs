//! The typed Cliq client for the six Users API endpoints.
//!
//! Every HTTP attempt (first try, transient retry, throttle retry, the
//! re-send after a 401) is one *request start*, so each one first passes
//! [`QuotaGate::acquire`] — immediately before the token is fetched and the
//! request sent. That is what makes retries safe: a retry can never go
//! *through* a lock, because the scheduler holds it back until the lock ends.
//!
//! Responses are classified (see [`crate::cliq::error`]):
//! * transient (5xx, timeout, connection failure, truncated 2xx body):
//!   retried with jittered exponential backoff (backon, tokio's sleeper, so
//!   paused test time works), honouring a `Retry-After` header;
//! * for a write (PUT/POST) only a 5xx answer or a connection that never
//!   opened is transient: a timeout, reset or truncated body after sending
//!   is [`CliqError::OutcomeUnknown`], returned at once for the caller to
//!   re-check (a blind re-send may apply a change twice);
//! * throttled (429, 400 `request_limit_exceeded`): reported to the scheduler
//!   (which locks the endpoint), then tried again — the next `acquire` sleeps
//!   until the lock ends — at most `max_throttle_retries` times;
//! * 401: the token is invalidated and the request re-sent once;
//! * permanent: returned at once.

mod paginate;
mod send;
mod users;

use std::sync::Arc;
use std::time::Duration;

pub use crate::cliq::gate::{GateFuture, QuotaGate};
pub use crate::cliq::stats::{ClientStats, ClientStatsSnapshot, RequestDurations};

use crate::cliq::auth::TokenManager;
use crate::cliq::dc::DataCenter;
use crate::cliq::error::CliqError;
use crate::cliq::models::{ModifiedAfterFormat, UpdateBodyShape, UsersPage};
use crate::cliq::quotas::QuotaScheduler;
use crate::cliq::transport::Transport;
use crate::cliq::Endpoint;

/// How often an expired listing cursor restarts the listing before giving up.
pub const MAX_LIST_RESTARTS: u32 = 3;

/// Client settings (from `[cliq]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// `https://cliq.zoho.com` (with or without a trailing `/api/v2`).
    pub api_base: String,
    pub request_timeout: Duration,
    /// `limit` of listing pages when the params give none (1..=100).
    pub page_size: u32,
    pub modified_after_format: ModifiedAfterFormat,
    pub update_body: UpdateBodyShape,
    /// Retries of a transient failure (after the first attempt).
    pub max_transient_retries: usize,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Attempts after a throttle answer (each waits for the lock to end).
    pub max_throttle_retries: usize,
}

impl ClientConfig {
    pub fn new(api_base: impl Into<String>) -> Self {
        ClientConfig {
            api_base: api_base.into(),
            request_timeout: Duration::from_secs(30),
            page_size: 100,
            modified_after_format: ModifiedAfterFormat::Rfc3339,
            update_body: UpdateBodyShape::Wrapped,
            max_transient_retries: 5,
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_throttle_retries: 3,
        }
    }

    pub fn for_data_center(dc: DataCenter) -> Self {
        Self::new(dc.api_base())
    }

    /// `{base}/api/v2`.
    pub fn api_root(&self) -> String {
        let b = self.api_base.trim_end_matches('/');
        if b.ends_with("/api/v2") {
            b.to_string()
        } else {
            format!("{b}/api/v2")
        }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self::for_data_center(DataCenter::Us)
    }
}

/// One event of a full listing.
#[derive(Debug, Clone, PartialEq)]
pub enum ListEvent<P = UsersPage> {
    Page(P),
    /// The cursor expired: the listing starts again from page one. Pages
    /// already received are not complete evidence of the org any more.
    Restarted,
}

/// The typed client. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct CliqClient {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: ClientConfig,
    transport: Arc<dyn Transport>,
    auth: Arc<TokenManager>,
    gate: Arc<dyn QuotaGate>,
    stats: ClientStats,
    /// A listing's next start, taken while its page was read (see `send`).
    ahead: std::sync::Mutex<Option<crate::cliq::gate::AheadStart>>,
}

impl std::fmt::Debug for CliqClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CliqClient")
            .field("config", &self.inner.cfg)
            .field("auth", &self.inner.auth)
            .finish_non_exhaustive()
    }
}

impl CliqClient {
    /// The production constructor.
    pub fn new(
        cfg: ClientConfig,
        transport: Arc<dyn Transport>,
        auth: Arc<TokenManager>,
        scheduler: QuotaScheduler,
    ) -> Self {
        Self::with_gate(cfg, transport, auth, Arc::new(scheduler))
    }

    /// Same, with any [`QuotaGate`] (tests).
    pub fn with_gate(
        cfg: ClientConfig,
        transport: Arc<dyn Transport>,
        auth: Arc<TokenManager>,
        gate: Arc<dyn QuotaGate>,
    ) -> Self {
        // One duration histogram for the API requests and the token POSTs.
        let stats = ClientStats::with_durations(auth.durations().clone());
        CliqClient {
            inner: Arc::new(Inner {
                cfg,
                transport,
                auth,
                gate,
                stats,
                ahead: std::sync::Mutex::default(),
            }),
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    pub fn auth(&self) -> &Arc<TokenManager> {
        &self.inner.auth
    }

    /// Request/throttle/retry counters since start.
    pub fn stats(&self) -> ClientStatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// Request durations by endpoint (the histogram behind `/metrics`).
    pub fn request_durations(&self) -> &RequestDurations {
        &self.inner.stats.durations
    }

    /// Remember how far Cliq's clock is from ours (`Date` of an answer minus
    /// our clock when it arrived), for `/metrics`.
    pub fn record_clock_skew(&self, skew: chrono::Duration) {
        self.inner.stats.record_clock_skew(skew);
    }
}

fn decode(ep: Endpoint, e: crate::cliq::models::ShapeError) -> CliqError {
    CliqError::Decode {
        endpoint: ep,
        message: e.0,
    }
}

#[cfg(test)]
mod tests;
