//! Counters of the client, for `/metrics` and `sync_runs.requests`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

use crate::cliq::Endpoint;

/// Upper bounds (seconds) of the request-duration buckets: from a 10 ms
/// loopback answer to the 30 s default request timeout.
pub const DURATION_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    pub endpoint: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// How long each request took, per endpoint (`oauth_token` included): the
/// `cliq_sync_request_duration_seconds` histogram. Cheap to clone; clones
/// share the observations, so the client and the token manager feed one.
#[derive(Clone, Debug)]
pub struct RequestDurations(Family<EndpointLabel, Histogram, fn() -> Histogram>);

impl Default for RequestDurations {
    fn default() -> Self {
        RequestDurations(Family::new_with_constructor(duration_histogram))
    }
}

impl RequestDurations {
    pub fn observe(&self, ep: Endpoint, took: Duration) {
        self.0
            .get_or_create(&EndpointLabel {
                endpoint: ep.name().into(),
            })
            .observe(took.as_secs_f64());
    }

    /// The metric family, for registering with `/metrics`.
    pub fn family(&self) -> Family<EndpointLabel, Histogram, fn() -> Histogram> {
        self.0.clone()
    }
}

/// Live counters (cheap, never held across an await).
#[derive(Debug, Default)]
pub struct ClientStats {
    inner: Mutex<ClientStatsSnapshot>,
    /// Shared with the token manager (see [`RequestDurations`]).
    pub durations: RequestDurations,
}

/// A copy of the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientStatsSnapshot {
    /// HTTP attempts by endpoint and outcome: the status code (`"200"`,
    /// `"429"`, …), `"timeout"` or `"transport_error"`.
    pub requests: BTreeMap<(Endpoint, String), u64>,
    /// Throttle answers (429 / 400 `request_limit_exceeded`) by endpoint.
    pub throttled: BTreeMap<Endpoint, u64>,
    /// Transient-failure retries by endpoint.
    pub retries: BTreeMap<Endpoint, u64>,
    /// 401 answers by endpoint.
    pub unauthorized: BTreeMap<Endpoint, u64>,
    /// Cliq's clock minus ours, in milliseconds, at the latest measurement
    /// (a listing's first answer); `None` until one was made.
    pub clock_skew_ms: Option<i64>,
}

impl ClientStatsSnapshot {
    /// All attempts on `ep`, whatever the outcome.
    pub fn requests_to(&self, ep: Endpoint) -> u64 {
        self.requests
            .iter()
            .filter(|((e, _), _)| *e == ep)
            .map(|(_, n)| n)
            .sum()
    }

    /// All attempts on every endpoint.
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }

    /// Attempts on `ep` that ended with `outcome` (`"200"`, `"timeout"`, …).
    pub fn count(&self, ep: Endpoint, outcome: &str) -> u64 {
        self.requests
            .get(&(ep, outcome.to_string()))
            .copied()
            .unwrap_or(0)
    }
}

impl ClientStats {
    pub fn with_durations(durations: RequestDurations) -> Self {
        ClientStats {
            inner: Mutex::default(),
            durations,
        }
    }

    fn with(&self, f: impl FnOnce(&mut ClientStatsSnapshot)) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g);
    }

    pub fn record_request(&self, ep: Endpoint, outcome: &str) {
        self.with(|s| *s.requests.entry((ep, outcome.to_string())).or_default() += 1);
    }

    pub fn record_throttled(&self, ep: Endpoint) {
        self.with(|s| *s.throttled.entry(ep).or_default() += 1);
    }

    pub fn record_retry(&self, ep: Endpoint) {
        self.with(|s| *s.retries.entry(ep).or_default() += 1);
    }

    pub fn record_unauthorized(&self, ep: Endpoint) {
        self.with(|s| *s.unauthorized.entry(ep).or_default() += 1);
    }

    pub fn record_clock_skew(&self, skew: chrono::Duration) {
        self.with(|s| s.clock_skew_ms = Some(skew.num_milliseconds()));
    }

    pub fn snapshot(&self) -> ClientStatsSnapshot {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
