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
pub(crate) mod org;
mod quotas;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{header, HeaderMap, Method, StatusCode};
use rand::rngs::{SmallRng, StdRng};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::cliq::endpoint::{Endpoint, Quota};
use crate::clock::Clock;

use org::{Change, Org, Status};
// The OAuth token-minting window before scaling.
use quotas::TOKEN_WINDOW;

/// How many requests [`Simulator::requests`] remembers (oldest dropped first).
pub const LOG_CAPACITY: usize = 100_000;
/// Largest request body accepted (profile pictures travel base64-encoded).
const MAX_BODY: usize = 16 * 1024 * 1024;
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

/// A computed answer.
pub(crate) struct Reply {
    status: StatusCode,
    body: Bytes,
    content_type: &'static str,
}

impl Reply {
    fn json(status: StatusCode, v: &impl serde::Serialize) -> Reply {
        Reply {
            status,
            body: Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
            content_type: "application/json;charset=UTF-8",
        }
    }

    fn ok(v: &impl serde::Serialize) -> Reply {
        Reply::json(StatusCode::OK, v)
    }

    fn error(status: StatusCode, code: &str, message: &str) -> Reply {
        Reply::json(status, &json!({"code": code, "message": message}))
    }

    fn bad_request(code: &str, message: &str) -> Reply {
        Reply::error(StatusCode::BAD_REQUEST, code, message)
    }

    fn into_response(self) -> Response {
        let mut resp = Response::new(Body::from(self.body));
        *resp.status_mut() = self.status;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(self.content_type),
        );
        resp
    }
}

enum Route {
    Oauth,
    Api(Endpoint, Option<String>),
    NotFound,
    MethodNotAllowed,
}

fn route(method: &Method, path: &str) -> Route {
    if path == "/oauth/v2/token" {
        return if method == Method::POST {
            Route::Oauth
        } else {
            Route::MethodNotAllowed
        };
    }
    let Some(rest) = path.strip_prefix("/api/v2/users") else {
        return Route::NotFound;
    };
    let segs: Vec<&str> = if rest.is_empty() {
        Vec::new()
    } else if let Some(r) = rest.strip_prefix('/') {
        r.split('/').collect()
    } else {
        return Route::NotFound;
    };
    let (get, other) = match segs.as_slice() {
        [] => (
            Some(Endpoint::ListUsers),
            Some((Method::POST, Endpoint::AddUsers)),
        ),
        ["layout"] => (Some(Endpoint::UserLayouts), None),
        [id] if !id.is_empty() => (
            Some(Endpoint::GetUser),
            Some((Method::PUT, Endpoint::UpdateUser)),
        ),
        [id, "teams"] if !id.is_empty() => (Some(Endpoint::UserTeams), None),
        _ => return Route::NotFound,
    };
    let target = match segs.first() {
        Some(id) if *id != "layout" => Some(id.to_string()),
        _ => None,
    };
    if method == Method::GET {
        if let Some(ep) = get {
            return Route::Api(ep, target);
        }
    }
    match other {
        Some((m, ep)) if m == method => Route::Api(ep, target),
        _ => Route::MethodNotAllowed,
    }
}

/// The access token of an `Authorization: Zoho-oauthtoken <t>` or `Bearer <t>` header.
fn access_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    let token = token.trim();
    ((scheme.eq_ignore_ascii_case("Zoho-oauthtoken") || scheme.eq_ignore_ascii_case("Bearer"))
        && !token.is_empty())
    .then_some(token)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn unauthorized() -> Reply {
    Reply::error(
        StatusCode::UNAUTHORIZED,
        "oauthtoken_invalid",
        "Invalid OAuth access token.",
    )
}

/// How the answer to an applied write is lost (fault injection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LostAnswer {
    /// The body is cut in half.
    Truncate,
    /// The connection is reset before the answer.
    Reset,
    /// No answer for [`WRITE_HANG`].
    Hang,
}

/// Outcome of the synchronous part of handling a request.
struct Processed {
    reply: Reply,
    latency: Duration,
    lost: Option<LostAnswer>,
}

impl Processed {
    fn plain(reply: Reply) -> Processed {
        Processed {
            reply,
            latency: Duration::ZERO,
            lost: None,
        }
    }
}

impl State {
    fn bump(map: &mut BTreeMap<Endpoint, u64>, ep: Endpoint) {
        *map.entry(ep).or_default() += 1;
    }

    fn quota(&self, ep: Endpoint) -> Quota {
        self.quotas
            .get(&ep)
            .copied()
            .unwrap_or_else(|| quotas::documented(ep).scaled(self.scale))
    }

    fn throttled(&mut self, ep: Endpoint) -> Reply {
        State::bump(&mut self.counters.throttled, ep);
        let status = if self.faults.throttle_as_400 {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        Reply::error(
            status,
            "request_limit_exceeded",
            "You have exceeded the URL throttle limits",
        )
    }

    fn impose_lock(&mut self, owner: u64, ep: Endpoint, at: DateTime<Utc>) {
        let until = at + chrono_dur(self.quota(ep).lock);
        self.locks.insert((owner, ep), until);
        State::bump(&mut self.counters.locks, ep);
    }

    fn locked(&self, owner: u64, ep: Endpoint, at: DateTime<Utc>) -> bool {
        self.locks
            .get(&(owner, ep))
            .is_some_and(|until| at < *until)
    }

    /// Count the arrival in the sliding window; `Some(throttled reply)` if refused.
    fn check_quota(&mut self, owner: u64, ep: Endpoint, at: DateTime<Utc>) -> Option<Reply> {
        let q = self.quota(ep);
        let window_start = at - chrono_dur(q.per);
        let arrivals = self.arrivals.entry((owner, ep)).or_default();
        while arrivals.front().is_some_and(|t| *t <= window_start) {
            arrivals.pop_front();
        }
        arrivals.push_back(at);
        let n = u32::try_from(arrivals.len()).unwrap_or(u32::MAX);
        let max = self.counters.max_in_window.entry(ep).or_default();
        *max = (*max).max(n);
        if self.faults.force_throttle || self.locked(owner, ep, at) {
            return Some(self.throttled(ep));
        }
        if n > q.requests {
            tracing::debug!(endpoint = %ep, n, "sim: threshold exceeded, locking");
            self.impose_lock(owner, ep, at);
            return Some(self.throttled(ep));
        }
        None
    }

    fn process(
        &mut self,
        route: Route,
        method: &Method,
        headers: &HeaderMap,
        uri: &http::Uri,
        body: &Bytes,
        at: DateTime<Utc>,
    ) -> Processed {
        match route {
            Route::NotFound => Processed::plain(Reply::error(
                StatusCode::NOT_FOUND,
                "url_not_found",
                "The requested URL was not found on this server.",
            )),
            Route::MethodNotAllowed => Processed::plain(Reply::error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                &format!("The method {method} is not supported for this URL."),
            )),
            Route::Oauth => Processed::plain(self.oauth(headers, uri, body, at)),
            Route::Api(ep, target) => {
                // Latency applies to every API answer, refusals included.
                let mut p = self.api(ep, target, headers, uri, body, at);
                p.latency = self.faults.latency;
                p
            }
        }
    }

    fn api(
        &mut self,
        ep: Endpoint,
        target: Option<String>,
        headers: &HeaderMap,
        uri: &http::Uri,
        body: &Bytes,
        at: DateTime<Utc>,
    ) -> Processed {
        State::bump(&mut self.counters.requests, ep);
        // 1. auth
        let token = access_token(headers).map(str::to_string);
        let (owner, scoped) = match token.as_deref().and_then(|t| self.tokens.get(t)) {
            Some(tok) if at < tok.expires_at => (
                tok.owner,
                tok.scopes.iter().any(|s| s == required_scope(ep)),
            ),
            _ => {
                self.counters.unauthorized += 1;
                return Processed::plain(unauthorized());
            }
        };
        // 2. quota (a request refused for its scope still counts: the
        // stricter reading)
        if let Some(reply) = self.check_quota(owner, ep, at) {
            return Processed::plain(reply);
        }
        if !scoped {
            self.counters.unauthorized += 1;
            return Processed::plain(Reply::error(
                StatusCode::UNAUTHORIZED,
                "oauth_scope_mismatch",
                "The OAuth access token does not have the scope this request needs.",
            ));
        }
        // 3. faults
        self.api_seq += 1;
        if self.faults.error_5xx_rate > 0.0
            && self.fault_rng.gen::<f64>() < self.faults.error_5xx_rate
        {
            self.counters.server_errors += 1;
            let reply = match self.fault_rng.gen_range(0..3) {
                0 => Reply::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "Sorry, we couldn't process your request due to a technical error.",
                ),
                // Gateways answer in HTML, not JSON.
                1 => Reply {
                    status: StatusCode::BAD_GATEWAY,
                    body: Bytes::from_static(b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
                    content_type: "text/html",
                },
                _ => Reply {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    body: Bytes::from_static(
                        b"<html><body><h1>503 Service Unavailable</h1></body></html>",
                    ),
                    content_type: "text/html",
                },
            };
            return Processed::plain(reply);
        }
        let write = matches!(ep, Endpoint::AddUsers | Endpoint::UpdateUser);
        if write && self.faults.write_500_next > 0 {
            if self.faults.write_500_next != u32::MAX {
                self.faults.write_500_next -= 1;
            }
            self.counters.server_errors += 1;
            return Processed::plain(Reply::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "Sorry, we couldn't process your request due to a technical error.",
            ));
        }
        let drop = self.faults.write_drop_rate;
        if write && drop > 0.0 && self.fault_rng.gen::<f64>() < drop {
            return Processed {
                lost: Some(LostAnswer::Hang),
                ..Processed::plain(Reply::error(StatusCode::OK, "", ""))
            };
        }
        if let Some(n) = self.faults.expire_token_every {
            if n > 0 && self.api_seq % u64::from(n) == 0 {
                if let Some(t) = token {
                    self.tokens.remove(&t);
                }
                self.counters.unauthorized += 1;
                return Processed::plain(unauthorized());
            }
        }
        // 4./5. validation and handler
        let query = uri.query().unwrap_or("");
        let target = target.unwrap_or_default();
        let reply = match ep {
            Endpoint::ListUsers => self.list_users(query, at),
            Endpoint::AddUsers => self.add_users(headers, body),
            Endpoint::UpdateUser => self.update_user(&target, headers, body, at),
            Endpoint::GetUser => self.get_user(&target, query),
            Endpoint::UserTeams => self.user_teams(&target, query),
            Endpoint::UserLayouts => self.user_layouts(query),
            Endpoint::OauthToken => unreachable!("OAuth is not an API route"),
        };
        if reply.status.is_server_error() {
            self.counters.server_errors += 1;
        }
        let lost = self.lost_answer(&reply, write);
        Processed {
            reply,
            latency: self.faults.latency,
            lost,
        }
    }

    /// Whether (and how) the answer to a handled request is lost. The
    /// handler already ran: a write is applied whatever happens here.
    fn lost_answer(&mut self, reply: &Reply, write: bool) -> Option<LostAnswer> {
        let f = &self.faults;
        let (truncate, reset, hang) = (f.truncate_rate, f.write_reset_rate, f.write_hang_rate);
        let write_truncate = f.write_truncate_rate;
        let mut hit = |rate: f64| rate > 0.0 && self.fault_rng.gen::<f64>() < rate;
        if reply.status == StatusCode::OK && hit(truncate) {
            return Some(LostAnswer::Truncate);
        }
        if !(write && reply.status.is_success()) {
            return None;
        }
        if reply.status == StatusCode::OK && hit(write_truncate) {
            Some(LostAnswer::Truncate)
        } else if hit(reset) {
            Some(LostAnswer::Reset)
        } else if hit(hang) {
            Some(LostAnswer::Hang)
        } else {
            None
        }
    }

    fn oauth(
        &mut self,
        headers: &HeaderMap,
        uri: &http::Uri,
        body: &Bytes,
        at: DateTime<Utc>,
    ) -> Reply {
        State::bump(&mut self.counters.requests, Endpoint::OauthToken);
        let mut params: HashMap<String, String> = HashMap::new();
        if let Some(q) = uri.query() {
            if let Ok(pairs) = serde_urlencoded::from_str::<Vec<(String, String)>>(q) {
                params.extend(pairs);
            }
        }
        if !body.is_empty() {
            if let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body) {
                params.extend(pairs);
            }
        }
        let param = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
        let refuse = |e: &str| Reply::ok(&json!({"error": e}));
        if param("grant_type") != "refresh_token" {
            return refuse("unsupported_grant_type");
        }
        if param("client_id") != self.cfg.client_id
            || param("client_secret") != self.cfg.client_secret
        {
            return refuse("invalid_client");
        }
        if param("refresh_token") != self.cfg.refresh_token {
            return refuse("invalid_code");
        }
        let owner = self.org.owner;
        let window_start = at - chrono_dur(TOKEN_WINDOW.mul_f64(self.scale));
        while self.mints.front().is_some_and(|t| *t <= window_start) {
            self.mints.pop_front();
        }
        if self.locked(owner, Endpoint::OauthToken, at)
            || self.mints.len() >= self.cfg.max_tokens_per_window as usize
        {
            self.counters.token_refusals += 1;
            return Reply::ok(&json!({
                "error": "Access Denied",
                "error_description": "You have made too many requests continuously. Please try again after some time.",
            }));
        }
        self.mints.push_back(at);
        self.tokens.retain(|_, t| t.expires_at > at);
        let mut a = [0u8; 16];
        let mut b = [0u8; 16];
        self.token_rng.fill(&mut a);
        self.token_rng.fill(&mut b);
        let access = format!("1000.{}.{}", hex(&a), hex(&b));
        self.tokens.insert(
            access.clone(),
            Token {
                owner,
                expires_at: at + chrono_dur(self.cfg.token_ttl),
                scopes: self.cfg.scopes.clone(),
            },
        );
        self.counters.tokens_minted += 1;
        let host = uri
            .authority()
            .map(|a| a.to_string())
            .or_else(|| {
                headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "127.0.0.1".into());
        Reply::ok(&json!({
            "access_token": access,
            "expires_in": self.cfg.token_ttl.as_secs(),
            "api_domain": format!("http://{host}"),
            "token_type": "Bearer",
            "scope": self.cfg.scopes.join(" "),
        }))
    }

    fn record(&mut self, r: RecordedRequest) {
        if self.log.len() >= LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(r);
    }
}

async fn handle(AxState(sim): AxState<Simulator>, req: Request) -> Response {
    if admin::is_admin_path(req.uri().path()) {
        let resp = admin::handle(&sim, req).await;
        return with_date(resp, sim.inner.clock.now());
    }
    let (parts, body) = req.into_parts();
    let at = sim.inner.clock.now();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let route = route(&parts.method, &path);
    let endpoint = match &route {
        Route::Oauth => Some(Endpoint::OauthToken),
        Route::Api(ep, _) => Some(*ep),
        _ => None,
    };
    let (processed, body_text) = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => {
            let p =
                sim.state()
                    .process(route, &parts.method, &parts.headers, &parts.uri, &bytes, at);
            (p, String::from_utf8_lossy(&bytes).into_owned())
        }
        Err(_) => (
            Processed::plain(Reply::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The request body is too large.",
            )),
            String::new(),
        ),
    };
    if !processed.latency.is_zero() {
        tokio::time::sleep(processed.latency).await;
    }
    let mut reply = processed.reply;
    if processed.lost == Some(LostAnswer::Truncate) {
        reply.body = reply.body.slice(..reply.body.len() / 2);
    }
    sim.state().record(RecordedRequest {
        endpoint,
        method: parts.method.to_string(),
        path,
        query,
        body: body_text,
        at,
        status: reply.status.as_u16(),
    });
    match processed.lost {
        Some(LostAnswer::Reset) => reset_response(),
        Some(LostAnswer::Hang) => {
            tokio::time::sleep(WRITE_HANG).await;
            with_date(reply.into_response(), sim.inner.clock.now())
        }
        _ => with_date(reply.into_response(), sim.inner.clock.now()),
    }
}

/// Every answer carries a `Date` from the *simulator's* clock, as a real
/// server's does from its own: clients take Cliq's notion of time from it
/// (an explicit header also stops hyper adding one from the system clock).
fn with_date(mut resp: Response, now: DateTime<Utc>) -> Response {
    if let Ok(v) = header::HeaderValue::try_from(crate::clock::to_http_date(now)) {
        resp.headers_mut().insert(header::DATE, v);
    }
    resp
}

/// A response whose body fails before its first byte: in process the
/// transport sees a body error, over TCP hyper aborts the connection (the
/// client sees it closed or reset after sending).
fn reset_response() -> Response {
    let failing = futures::stream::once(async {
        Err::<Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by peer (simulated)",
        ))
    });
    Response::new(Body::from_stream(failing))
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
