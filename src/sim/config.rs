//! What the simulator is told (its configuration and fault knobs) and what it reports (counters, the request log).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::quotas;
use crate::cliq::endpoint::{Endpoint, Quota};

/// How many requests [`Simulator::requests`] remembers (oldest dropped first).
pub const LOG_CAPACITY: usize = 100_000;

/// How long a write hit by [`Faults::write_hang_rate`] goes unanswered
/// (tokio time: a paused test does not wait, the client's timeout fires).
pub const WRITE_HANG: Duration = Duration::from_secs(3600);

/// What the simulator serves and accepts.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Size of the seeded org (the first user owns the refresh token).
    pub users: usize,
    /// Seed of the deterministic org.
    pub seed: u64,
    /// Multiplies every quota window and lock period, the token-minting window
    /// and the cursor expiry (not the access-token lifetime).
    pub time_scale: f64,
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    /// Access-token lifetime.
    pub token_ttl: Duration,
    /// Tokens mintable per refresh token within the (scaled) 10-minute sliding
    /// window; beyond: `{"error":"Access Denied"}` with HTTP 200.
    pub max_tokens_per_window: u32,
    /// Per-endpoint quotas before scaling; a missing endpoint gets its documented quota.
    pub quotas: HashMap<Endpoint, Quota>,
    /// The PUT body shape accepted (`simulate --update-body`); the other is refused.
    pub update_body: UpdateBody,
    /// The OAuth scopes granted to the refresh token (default: the three
    /// Users scopes; `simulate --scopes`). Access tokens minted from it
    /// carry these, and every API call needs its endpoint's scope (see
    /// [`required_scope`]); without it the answer is 401
    /// `oauth_scope_mismatch`, as Cliq answers a token minted from a grant
    /// without that scope.
    pub scopes: Vec<String>,
}

/// The scopes a token for every endpoint needs.
pub const ALL_SCOPES: [&str; 3] = [
    "ZohoCliq.Users.READ",
    "ZohoCliq.Users.CREATE",
    "ZohoCliq.Users.UPDATE",
];

/// The OAuth scope an API endpoint requires.
pub fn required_scope(ep: Endpoint) -> &'static str {
    match ep {
        Endpoint::AddUsers => "ZohoCliq.Users.CREATE",
        Endpoint::UpdateUser => "ZohoCliq.Users.UPDATE",
        _ => "ZohoCliq.Users.READ",
    }
}

/// The one `PUT /users/{id}` body shape the simulator accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UpdateBody {
    /// The documented `{"users": [{"email_id": …, …}]}`, `email_id` required
    /// (what Cliq's documentation shows, and the client's default).
    #[default]
    Wrapped,
    /// `{…fields}` alone, as a public third-party client sends it
    /// (`[cliq] update_body = "flat"`); `email_id` optional.
    Flat,
}

impl std::str::FromStr for UpdateBody {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "wrapped" => Ok(UpdateBody::Wrapped),
            "flat" => Ok(UpdateBody::Flat),
            _ => Err(format!(
                "the update body must be wrapped or flat, not {s:?}"
            )),
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            users: 200,
            seed: 42,
            time_scale: 1.0,
            client_id: "1000.SIMCLIENT".into(),
            client_secret: "sim-secret".into(),
            refresh_token: "1000.sim-refresh-token".into(),
            token_ttl: Duration::from_secs(3600),
            max_tokens_per_window: quotas::documented(Endpoint::OauthToken).requests,
            quotas: Endpoint::API
                .iter()
                .map(|e| (*e, quotas::documented(*e)))
                .collect(),
            update_body: UpdateBody::Wrapped,
            scopes: ALL_SCOPES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Fault injection knobs (all off by default). As JSON (the admin path
/// `/_sim/faults`), a missing field is off and an unknown one an error.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Fraction of API requests answered 500/502/503 (after counting against quota).
    pub error_5xx_rate: f64,
    /// Added to every API answer (refusals included) after the request is
    /// counted (tokio time, so paused tests do not wait). JSON: `"250ms"`.
    #[serde(with = "crate::clock::duration_text")]
    pub latency: Duration,
    /// Every API request is answered as throttled (no lock is imposed).
    pub force_throttle: bool,
    /// Throttling answered as HTTP 400 `request_limit_exceeded` instead of 429.
    pub throttle_as_400: bool,
    /// Fraction of 200 API responses whose body is cut in half. A write
    /// (PUT/POST) is applied first: only its answer is lost.
    pub truncate_rate: f64,
    /// Fraction of successful writes (PUT/POST) that are applied, then
    /// answered with the body cut in half (only writes, unlike `truncate_rate`).
    pub write_truncate_rate: f64,
    /// Fraction of successful writes (PUT/POST) that are applied, then the
    /// connection is reset before any byte of the answer.
    pub write_reset_rate: f64,
    /// Fraction of successful writes (PUT/POST) that are applied, then get
    /// no answer for [`WRITE_HANG`] (the client times out first).
    pub write_hang_rate: f64,
    /// Fraction of writes (PUT/POST) lost before they are applied: no
    /// answer for [`WRITE_HANG`], and nothing changes.
    pub write_drop_rate: f64,
    /// The next this-many writes (PUT/POST, past auth and quota) are
    /// answered 500 "technical error" without being applied; `u32::MAX`
    /// makes that permanent.
    pub write_500_next: u32,
    /// Every n-th API request (past auth and quota, counted from the last
    /// [`Simulator::set_faults`]) finds its token expired: 401, and that
    /// token stays invalid.
    pub expire_token_every: Option<u32>,
    /// Page n (1-based) of every listing ends it early: its users are
    /// there, but it carries neither `has_more` nor `next_token`.
    pub list_end_early_at_page: Option<u32>,
    /// Page n (1-based) of every listing comes back empty, without
    /// `has_more` or `next_token` (an empty page in the middle).
    pub list_empty_page_at: Option<u32>,
}

impl Faults {
    /// Rates must be fractions: a typo like `5` for 5% must not silently
    /// fail every request.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_5xx_rate", self.error_5xx_rate),
            ("truncate_rate", self.truncate_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be a fraction from 0 to 1, not {rate}"));
            }
        }
        Ok(())
    }
}

/// What the simulator has seen (test hooks).
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Requests received per endpoint, including rejected ones (OAuth under `OauthToken`).
    pub requests: BTreeMap<Endpoint, u64>,
    /// Requests answered as throttled.
    pub throttled: BTreeMap<Endpoint, u64>,
    /// Locks imposed.
    pub locks: BTreeMap<Endpoint, u64>,
    /// Most authenticated arrivals within any sliding window of the endpoint's (scaled) length.
    pub max_in_window: BTreeMap<Endpoint, u32>,
    pub tokens_minted: u64,
    pub token_refusals: u64,
    /// 401 answers (bad, unknown or expired token, injected expiry).
    pub unauthorized: u64,
    /// Injected 5xx answers (plus the 500 of a PUT with an unknown reference).
    pub server_errors: u64,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// `None` for unknown paths and unsupported methods.
    pub endpoint: Option<Endpoint>,
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
    pub at: DateTime<Utc>,
    pub status: u16,
}
