//! Counters of the client, for `/metrics` and `sync_runs.requests`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::cliq::Endpoint;

/// Live counters (cheap, never held across an await).
#[derive(Debug, Default)]
pub struct ClientStats {
    inner: Mutex<ClientStatsSnapshot>,
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
