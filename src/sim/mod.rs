//! The built-in Cliq simulator: a strict, in-process (or TCP) stand-in for
//! the Zoho Cliq Users API v2 and the Zoho OAuth token endpoint.
//!
//! It is the peer of every test and of the demo, so it is **at least as
//! strict as the real service**: per-owner, per-endpoint *sliding* quota
//! windows with full lock periods, strict parameter and body validation, OAuth
//! failures with HTTP 200, expiring access tokens and listing cursors, and
//! fault injection (5xx, latency, forced throttling, truncated bodies, token
//! expiry).
//!
//! Decisions where the spec is silent (see `/work/shared/spec/cliq-users-api.md`):
//! * `GET /users` without `status` lists users of **every** status.
//! * `GET /users` default `limit` is 50 (1..=100 accepted).
//! * A listing continued with `next_token` must repeat the same filter
//!   parameters (`status`, `plan_type`, `sort_by`, `modified_after`, compared
//!   by value); `fields` and `limit` may change between pages.
//! * `sort_by=usage` orders by a seeded usage score, descending (ties by id),
//!   with keyset pagination; otherwise users come in id order.
//! * Cursors are `base64url(JSON{filter fingerprint, last key, issue time})`
//!   `.` 24 hex digits of SHA-256(secret ‖ payload); they expire 10 minutes
//!   (scaled) after issue.
//! * Quota windows count **every** authenticated arrival, accepted or
//!   refused (a refused arrival during a lock does not extend the lock, but
//!   it sits in the sliding window like any other).
//! * POST and PUT require `Content-Type: application/json`.
//! * An empty update (no field besides `email_id`) is a 400.
//! * `PUT` takes one body shape, [`SimConfig::update_body`]: the documented
//!   wrapped `{"users": [{…}]}` with `email_id` required (else 400
//!   `missing_key`), or the flat one; the other shape is a 400 `extra_key_found`.
//! * Every answer has a `Date` header from the simulator's clock.
//! * `/_sim/faults` (loopback peers only, see [`admin`]) reads and replaces
//!   the fault knobs at run time.
//! * The request log keeps the latest [`LOG_CAPACITY`] requests, OAuth ones
//!   included (endpoint [`Endpoint::OauthToken`]).

pub mod admin;
mod api;
mod config;
mod dispatch;
mod handler;
mod oauth;
pub(crate) mod org;
mod quotas;
mod reply;
#[cfg(test)]
mod tests;
mod window;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use rand::rngs::{SmallRng, StdRng};
use rand::SeedableRng;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::cliq::endpoint::{Endpoint, Quota};
use crate::clock::Clock;

pub use config::{
    required_scope, Counters, Faults, RecordedRequest, SimConfig, UpdateBody, ALL_SCOPES,
    LOG_CAPACITY, WRITE_HANG,
};
use handler::handle;
use org::{Change, Org, Status};
pub(crate) use reply::Reply;
use reply::{chrono_dur, hex};
// The OAuth token-minting window before scaling.
use quotas::TOKEN_WINDOW;

/// The simulator. Cheap to clone; every clone shares the same state.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

struct Inner {
    clock: Clock,
    state: Mutex<State>,
}

struct Token {
    owner: u64,
    expires_at: DateTime<Utc>,
    /// Granted to the refresh token when this token was minted.
    scopes: Vec<String>,
}

struct State {
    cfg: SimConfig,
    scale: f64,
    /// Scaled quotas of the API endpoints and of `OauthToken`.
    quotas: HashMap<Endpoint, Quota>,
    org: Org,
    tokens: HashMap<String, Token>,
    /// Successful mints for the configured refresh token, within the window.
    mints: VecDeque<DateTime<Utc>>,
    arrivals: HashMap<(u64, Endpoint), VecDeque<DateTime<Utc>>>,
    locks: HashMap<(u64, Endpoint), DateTime<Utc>>,
    faults: Faults,
    fault_rng: SmallRng,
    token_rng: StdRng,
    /// API requests that reached fault injection (for `expire_token_every`).
    api_seq: u64,
    counters: Counters,
    log: VecDeque<RecordedRequest>,
    cursor_secret: [u8; 32],
}

impl Simulator {
    /// Seed the org and get ready to serve. `clock` drives quotas, locks,
    /// token and cursor expiry and modification times.
    pub fn new(cfg: SimConfig, clock: Clock) -> Self {
        let scale = if cfg.time_scale.is_finite() && cfg.time_scale > 0.0 {
            cfg.time_scale
        } else {
            tracing::warn!(
                time_scale = cfg.time_scale,
                "sim: invalid time scale, using 1.0"
            );
            1.0
        };
        let now = clock.now();
        let org = Org::seed(cfg.users, cfg.seed, now);
        let mut quotas: HashMap<Endpoint, Quota> = Endpoint::API
            .iter()
            .map(|e| {
                let q = cfg
                    .quotas
                    .get(e)
                    .copied()
                    .unwrap_or_else(|| quotas::documented(*e));
                (*e, q.scaled(scale))
            })
            .collect();
        quotas.insert(
            Endpoint::OauthToken,
            Quota {
                requests: cfg.max_tokens_per_window,
                per: TOKEN_WINDOW,
                lock: TOKEN_WINDOW,
            }
            .scaled(scale),
        );
        let mut hasher = Sha256::new();
        hasher.update(b"cliq-sync simulator cursor");
        hasher.update(cfg.seed.to_le_bytes());
        let cursor_secret: [u8; 32] = hasher.finalize().into();
        let state = State {
            scale,
            quotas,
            org,
            tokens: HashMap::new(),
            mints: VecDeque::new(),
            arrivals: HashMap::new(),
            locks: HashMap::new(),
            faults: Faults::default(),
            fault_rng: SmallRng::seed_from_u64(cfg.seed ^ 0x5eed_fa17),
            token_rng: StdRng::seed_from_u64(cfg.seed ^ 0x7011_e115),
            api_seq: 0,
            counters: Counters::default(),
            log: VecDeque::new(),
            cursor_secret,
            cfg,
        };
        Simulator {
            inner: Arc::new(Inner {
                clock,
                state: Mutex::new(state),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// API (`/api/v2/...`) and OAuth (`/oauth/v2/token`) on one router.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .fallback(handle)
            .with_state(self.clone())
    }

    /// Serve over TCP until `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // The peer address lets the admin path answer loopback peers only.
        let service = self
            .router()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, service)
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Replace the fault knobs; restarts the `expire_token_every` count.
    pub fn set_faults(&self, f: Faults) {
        let mut st = self.state();
        st.faults = f;
        st.api_seq = 0;
    }

    pub fn faults(&self) -> Faults {
        self.state().faults.clone()
    }

    pub fn counters(&self) -> Counters {
        self.state().counters.clone()
    }

    pub fn reset_counters(&self) {
        self.state().counters = Counters::default();
    }

    /// Every request received (the latest [`LOG_CAPACITY`]), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().log.iter().cloned().collect()
    }

    /// Every issued access token becomes invalid now.
    /// Re-grant the refresh token with `scopes`: tokens minted from now on
    /// carry them (tokens already minted keep theirs).
    pub fn set_granted_scopes(&self, scopes: &[&str]) {
        self.state().cfg.scopes = scopes.iter().map(|s| s.to_string()).collect();
    }

    pub fn expire_tokens(&self) {
        self.state().tokens.clear();
    }

    /// Impose a lock on `ep` for the token owner now, as if its threshold were
    /// exceeded (for `OauthToken`: minting is refused for the scaled 10 minutes).
    pub fn lock_endpoint(&self, ep: Endpoint) {
        let at = self.inner.clock.now();
        let mut st = self.state();
        let owner = st.org.owner;
        st.impose_lock(owner, ep, at);
    }

    /// A user in full form (`fields=all`).
    pub fn user(&self, id: &str) -> Option<Value> {
        let st = self.state();
        let u = st.org.users.get(&id.parse::<u64>().ok()?)?;
        Some(st.org.render(u, org::Fields::ALL))
    }

    /// Every user in full form, in id order.
    pub fn users(&self) -> Vec<Value> {
        let st = self.state();
        st.org
            .users
            .values()
            .map(|u| st.org.render(u, org::Fields::ALL))
            .collect()
    }

    pub fn user_id_by_email(&self, email: &str) -> Option<String> {
        self.state().org.id_by_email(email).map(|id| id.to_string())
    }

    /// Change a user as an admin would in the Cliq console: the keys of PUT
    /// plus `status` and `email_id` (which renames). Bumps the tracked
    /// modification time if a field `modified_after` sees changed value.
    /// Returns false (and changes nothing) if the user does not exist or the
    /// changes are invalid (unknown key, bad value, unknown reference, email
    /// taken by someone else).
    pub fn mutate_user(&self, id: &str, changes: Value) -> bool {
        let at = self.inner.clock.now();
        let Ok(id) = id.parse::<u64>() else {
            return false;
        };
        let mut st = self.state();
        if !st.org.users.contains_key(&id) {
            return false;
        }
        let Some(obj) = changes.as_object() else {
            return false;
        };
        let changes = match st.org.parse_changes(obj, true) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(?e, "sim: mutate_user rejected");
                return false;
            }
        };
        for c in &changes {
            if let Change::Email(e) = c {
                if st.org.id_by_email(e).is_some_and(|other| other != id) {
                    return false;
                }
            }
        }
        st.org.apply(id, changes, at)
    }

    /// Add a user as an admin would (status `active` unless the object says
    /// otherwise); same keys as [`Simulator::mutate_user`], `email_id`
    /// required. Returns the new id, or the existing id if the email is
    /// already in the org (then nothing changes).
    ///
    /// # Panics
    /// If `email_id` is missing or a value is invalid (a test bug).
    pub fn add_user(&self, user: Value) -> String {
        let mut st = self.state();
        let obj = user.as_object().expect("add_user: a JSON object");
        let email = obj
            .get("email_id")
            .and_then(Value::as_str)
            .expect("add_user: email_id required")
            .to_string();
        if let Some(id) = st.org.id_by_email(&email) {
            return id.to_string();
        }
        let changes = st
            .org
            .parse_changes(obj, true)
            .unwrap_or_else(|e| panic!("add_user: invalid user: {e:?}"));
        let status = changes
            .iter()
            .find_map(|c| match c {
                Change::Status(s) => Some(*s),
                _ => None,
            })
            .unwrap_or(Status::Active);
        st.org.insert(&email, status, changes).to_string()
    }

    /// The user disappears from every listing (and can no longer be fetched).
    pub fn remove_user(&self, id: &str) -> bool {
        match id.parse::<u64>() {
            Ok(id) => self.state().org.remove(id),
            Err(_) => false,
        }
    }

    /// (id, name) of every department.
    pub fn departments(&self) -> Vec<(String, String)> {
        let st = self.state();
        st.org
            .departments
            .iter()
            .map(|d| (d.id.clone(), d.name.clone()))
            .collect()
    }

    /// Add a department as an admin would in the Cliq console; returns its
    /// id (the existing one if the name is taken). Appended after the
    /// seeded ones, so the seeded org does not change.
    pub fn add_department(&self, name: &str) -> String {
        let mut st = self.state();
        if let Some(d) = st.org.departments.iter().find(|d| d.name == name) {
            return d.id.clone();
        }
        let id = format!("1901318000002{:06}", st.org.departments.len());
        st.org.departments.push(org::Named {
            id: id.clone(),
            name: name.to_owned(),
        });
        id
    }

    /// (id, name) of every designation.
    pub fn designations(&self) -> Vec<(String, String)> {
        let st = self.state();
        st.org
            .designations
            .iter()
            .map(|d| (d.id.clone(), d.name.clone()))
            .collect()
    }

    /// The id of the user owning the configured refresh token (the org admin).
    pub fn owner_id(&self) -> String {
        self.state().org.owner.to_string()
    }
}
