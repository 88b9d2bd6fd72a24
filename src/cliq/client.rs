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

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::time::Instant;
use tracing::Instrument;

pub use crate::cliq::gate::{GateFuture, QuotaGate};
pub use crate::cliq::stats::{ClientStats, ClientStatsSnapshot, RequestDurations};

use crate::cliq::auth::TokenManager;
use crate::cliq::dc::DataCenter;
use crate::cliq::error::{
    classify, decode_value, error_parts, BodyError, Classified, CliqError, RequestContext,
};
use crate::cliq::models::{
    unwrap_data, BatchResult, Fields, Layout, ListUsersParams, ModifiedAfterFormat, RawUsersPage,
    Team, UpdateBodyShape, User, UserFields, UsersPage,
};
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
}

impl std::fmt::Debug for CliqClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CliqClient")
            .field("config", &self.inner.cfg)
            .field("auth", &self.inner.auth)
            .finish_non_exhaustive()
    }
}

/// One request to send (possibly several times).
struct Call {
    ep: Endpoint,
    method: http::Method,
    path: String,
    query: Vec<(&'static str, String)>,
    body: Option<Bytes>,
    ctx: RequestContext,
}

/// A listing page: where the next one starts.
trait Paged {
    /// `None` on the last page.
    fn next_token(&self) -> Option<&str>;
}

impl Paged for UsersPage {
    fn next_token(&self) -> Option<&str> {
        self.next_token.as_deref()
    }
}

impl Paged for RawUsersPage {
    fn next_token(&self) -> Option<&str> {
        self.next_token.as_deref()
    }
}

/// Turns a successful response's body into the endpoint's result.
type Decoder<T> = fn(&[u8]) -> Result<T, BodyError>;

/// Per-call mutable state shared by the attempts.
#[derive(Default)]
struct CallState {
    attempts: AtomicU32,
    /// `Retry-After` of the last transient answer.
    server_hint: Mutex<Option<Duration>>,
    /// The `Date` header of the successful answer (Cliq's clock).
    server_date: Mutex<Option<DateTime<Utc>>>,
}

enum Sent<T> {
    Done(T),
    Unauthorized {
        token: SecretString,
        message: String,
    },
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

    // -----------------------------------------------------------------
    // Endpoints
    // -----------------------------------------------------------------

    /// `GET /users`: one page. `next_token` continues a listing (the same
    /// params are sent again with it).
    pub async fn list_users_page(
        &self,
        params: &ListUsersParams,
        next_token: Option<&str>,
    ) -> Result<UsersPage, CliqError> {
        let (v, date) = self
            .execute_dated(self.list_call(params, next_token), decode_value)
            .await?;
        let mut page = UsersPage::from_owned(v).map_err(|e| decode(Endpoint::ListUsers, e))?;
        page.server_date = date;
        Ok(page)
    }

    /// As [`CliqClient::list_users_page`], each user kept as the JSON text
    /// received (what a pull stores).
    pub async fn list_users_raw_page(
        &self,
        params: &ListUsersParams,
        next_token: Option<&str>,
    ) -> Result<RawUsersPage, CliqError> {
        let (mut page, date) = self
            .execute_dated(self.list_call(params, next_token), |body| {
                RawUsersPage::from_slice(body).map_err(BodyError::from)
            })
            .await?;
        page.server_date = date;
        Ok(page)
    }

    fn list_call(&self, params: &ListUsersParams, next_token: Option<&str>) -> Call {
        let cfg = &self.inner.cfg;
        let mut query = params.to_query(cfg.modified_after_format);
        if params.limit.is_none() {
            query.push(("limit", cfg.page_size.clamp(1, 100).to_string()));
        }
        if let Some(t) = next_token {
            query.push(("next_token", t.to_string()));
        }
        Call {
            ep: Endpoint::ListUsers,
            method: http::Method::GET,
            path: "/users".into(),
            query,
            body: None,
            ctx: RequestContext {
                had_cursor: next_token.is_some(),
                ..Default::default()
            },
        }
    }

    /// `GET /users`, every page: follows cursors to the last page. An expired
    /// cursor yields [`ListEvent::Restarted`] and the listing starts again
    /// from page one (at most [`MAX_LIST_RESTARTS`] times). The stream ends
    /// after the last page or after the first error.
    pub fn list_users(
        &self,
        params: ListUsersParams,
    ) -> BoxStream<'static, Result<ListEvent, CliqError>> {
        self.paginate(params, |client, params, cursor| async move {
            client.list_users_page(&params, cursor.as_deref()).await
        })
    }

    /// As [`CliqClient::list_users`], with [`RawUsersPage`]s.
    pub fn list_users_raw(
        &self,
        params: ListUsersParams,
    ) -> BoxStream<'static, Result<ListEvent<RawUsersPage>, CliqError>> {
        self.paginate(params, |client, params, cursor| async move {
            client.list_users_raw_page(&params, cursor.as_deref()).await
        })
    }

    fn paginate<P, F, Fut>(
        &self,
        params: ListUsersParams,
        fetch: F,
    ) -> BoxStream<'static, Result<ListEvent<P>, CliqError>>
    where
        P: Paged + Send + 'static,
        F: Fn(CliqClient, ListUsersParams, Option<String>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<P, CliqError>> + Send,
    {
        struct St<F> {
            client: CliqClient,
            params: ListUsersParams,
            cursor: Option<String>,
            restarts: u32,
            done: bool,
            fetch: F,
        }
        let st = St {
            client: self.clone(),
            params,
            cursor: None,
            restarts: 0,
            done: false,
            fetch,
        };
        futures::stream::unfold(st, |mut s| async move {
            if s.done {
                return None;
            }
            let res = (s.fetch)(s.client.clone(), s.params.clone(), s.cursor.clone()).await;
            match res {
                Ok(page) => {
                    if page.next_token().is_some() && page.next_token() == s.cursor.as_deref() {
                        s.done = true;
                        let e = CliqError::Decode {
                            endpoint: Endpoint::ListUsers,
                            message: "the listing cursor did not advance (same next_token twice)"
                                .into(),
                        };
                        return Some((Err(e), s));
                    }
                    s.cursor = page.next_token().map(str::to_owned);
                    s.done = page.next_token().is_none();
                    Some((Ok(ListEvent::Page(page)), s))
                }
                Err(CliqError::ExpiredCursor { message, .. }) if s.restarts < MAX_LIST_RESTARTS => {
                    s.restarts += 1;
                    s.cursor = None;
                    tracing::warn!(
                        restart = s.restarts,
                        %message,
                        "listing cursor expired; restarting the listing from the first page"
                    );
                    Some((Ok(ListEvent::Restarted), s))
                }
                Err(e) => {
                    s.done = true;
                    Some((Err(e), s))
                }
            }
        })
        .boxed()
    }

    /// `GET /users/{id}` (`fields`: `None` for the default short form).
    pub async fn get_user(&self, id: &str, fields: Option<&Fields>) -> Result<User, CliqError> {
        let ep = Endpoint::GetUser;
        let mut query = Vec::new();
        if let Some(f) = fields.and_then(Fields::to_query_value) {
            query.push(("fields", f));
        }
        let v = self
            .execute(Call {
                ep,
                method: http::Method::GET,
                path: format!("/users/{}", encode_segment(id)),
                query,
                body: None,
                ctx: RequestContext::default(),
            })
            .await?;
        User::from_value(unwrap_data(&v).clone()).map_err(|e| decode(ep, e))
    }

    /// `PUT /users/{id}` with the changed `fields` of the user `email`, in
    /// the configured body shape. A response without `success_users` /
    /// `failed_users` (e.g. the updated user, or an empty 204) counts as
    /// success for `email`.
    pub async fn update_user(
        &self,
        id: &str,
        email: &str,
        fields: &UserFields,
    ) -> Result<BatchResult, CliqError> {
        let ep = Endpoint::UpdateUser;
        if fields.is_empty() {
            return Err(CliqError::InvalidRequest {
                endpoint: ep,
                message: format!("nothing to update for {email}"),
            });
        }
        let body = fields.update_body(email, self.inner.cfg.update_body);
        let v = self
            .execute(Call {
                ep,
                method: http::Method::PUT,
                path: format!("/users/{}", encode_segment(id)),
                query: Vec::new(),
                body: Some(Bytes::from(body.to_string())),
                ctx: RequestContext {
                    had_cursor: false,
                    sent_fields: sent_fields(fields),
                    write: true,
                },
            })
            .await?;
        if BatchResult::mentions_outcome(&v) {
            BatchResult::from_value(&v).map_err(|e| decode(ep, e))
        } else {
            Ok(BatchResult {
                success_users: vec![email.to_string()],
                failed_users: Vec::new(),
            })
        }
    }

    /// `POST /users`. An empty slice sends nothing.
    pub async fn add_users(&self, users: &[UserFields]) -> Result<BatchResult, CliqError> {
        let ep = Endpoint::AddUsers;
        if users.is_empty() {
            return Ok(BatchResult::default());
        }
        if let Some(i) = users.iter().position(|u| u.email_id.is_none()) {
            return Err(CliqError::InvalidRequest {
                endpoint: ep,
                message: format!("user #{i} has no email_id (required to add a user)"),
            });
        }
        let body = UserFields::add_body(users);
        let v = self
            .execute(Call {
                ep,
                method: http::Method::POST,
                path: "/users".into(),
                query: Vec::new(),
                body: Some(Bytes::from(body.to_string())),
                ctx: RequestContext {
                    had_cursor: false,
                    sent_fields: users.iter().flat_map(sent_fields).collect(),
                    write: true,
                },
            })
            .await?;
        BatchResult::from_value(&v).map_err(|e| decode(ep, e))
    }

    /// `GET /users/{id}/teams`.
    pub async fn user_teams(&self, id: &str) -> Result<Vec<Team>, CliqError> {
        let ep = Endpoint::UserTeams;
        let v = self
            .execute(Call {
                ep,
                method: http::Method::GET,
                path: format!("/users/{}/teams", encode_segment(id)),
                query: Vec::new(),
                body: None,
                ctx: RequestContext::default(),
            })
            .await?;
        Team::list_from_value(&v).map_err(|e| decode(ep, e))
    }

    /// `GET /users/layout?unique_name=…` (`quick_view`,
    /// `profile_details_android`, `profile_details_ios`, `profile_details_web`).
    pub async fn user_layouts(&self, unique_name: &str) -> Result<Vec<Layout>, CliqError> {
        let ep = Endpoint::UserLayouts;
        let v = self
            .execute(Call {
                ep,
                method: http::Method::GET,
                path: "/users/layout".into(),
                query: vec![("unique_name", unique_name.to_string())],
                body: None,
                ctx: RequestContext::default(),
            })
            .await?;
        Layout::list_from_value(&v).map_err(|e| decode(ep, e))
    }

    // -----------------------------------------------------------------
    // The request pipeline
    // -----------------------------------------------------------------

    async fn execute(&self, call: Call) -> Result<Value, CliqError> {
        self.execute_as(call, decode_value).await
    }

    /// [`CliqClient::execute`] with the body decoded by `decode` (inside
    /// the retry loop: a body cut short is retried like a 5xx).
    async fn execute_as<T>(&self, call: Call, decode: Decoder<T>) -> Result<T, CliqError> {
        Ok(self.execute_dated(call, decode).await?.0)
    }

    /// [`CliqClient::execute_as`], also returning the `Date` header of the
    /// answer that succeeded (`None` if absent or unparseable).
    async fn execute_dated<T>(
        &self,
        call: Call,
        decode: Decoder<T>,
    ) -> Result<(T, Option<DateTime<Utc>>), CliqError> {
        let span = tracing::info_span!(
            "cliq_request",
            endpoint = %call.ep,
            method = %call.method,
            path = %call.path,
        );
        let state = CallState::default();
        let v = self
            .execute_inner(call, &state, decode)
            .instrument(span)
            .await?;
        let date = *state.server_date.lock().unwrap();
        Ok((v, date))
    }

    async fn execute_inner<T>(
        &self,
        call: Call,
        state: &CallState,
        decode: Decoder<T>,
    ) -> Result<T, CliqError> {
        let inner = &*self.inner;
        let cfg = &inner.cfg;
        let mut throttles = 0usize;
        loop {
            let backoff = ExponentialBuilder::default()
                .with_jitter()
                .with_min_delay(cfg.min_backoff)
                .with_max_delay(cfg.max_backoff)
                .with_max_times(cfg.max_transient_retries);
            let res = (|| self.attempt(&call, state, decode))
                .retry(backoff)
                .sleep(backon::TokioSleeper)
                .when(CliqError::is_transient)
                .adjust(|_, d| {
                    let hint = state.server_hint.lock().unwrap().take();
                    d.map(|d| d.min(cfg.max_backoff).max(hint.unwrap_or_default()))
                })
                .notify(|e, d| {
                    inner.stats.record_retry(call.ep);
                    tracing::warn!(error = %e, delay_ms = d.as_millis() as u64, "transient failure; retrying");
                })
                .await;
            match res {
                Err(e) if e.is_throttled() && throttles < cfg.max_throttle_retries => {
                    throttles += 1;
                    tracing::warn!(
                        throttle_retry = throttles,
                        "throttled; trying again once the scheduler lets us"
                    );
                }
                other => return other,
            }
        }
    }

    /// One attempt, including the single re-send after a 401.
    async fn attempt<T>(
        &self,
        call: &Call,
        state: &CallState,
        decode: Decoder<T>,
    ) -> Result<T, CliqError> {
        match self.send(call, state, decode).await? {
            Sent::Done(v) => Ok(v),
            Sent::Unauthorized { token, message } => {
                tracing::info!(%message, "401 from Cliq; refreshing the token and re-sending once");
                self.inner.auth.invalidate(&token).await;
                match self.send(call, state, decode).await? {
                    Sent::Done(v) => Ok(v),
                    Sent::Unauthorized { message, .. } => Err(CliqError::Unauthorized {
                        endpoint: call.ep,
                        message,
                    }),
                }
            }
        }
    }

    /// acquire → token → one HTTP request → classification.
    async fn send<T>(
        &self,
        call: &Call,
        state: &CallState,
        decode: Decoder<T>,
    ) -> Result<Sent<T>, CliqError> {
        let inner = &*self.inner;
        let ep = call.ep;
        // Token first: a refresh is a request of its own and takes time, and
        // the start recorded by `acquire` must be the moment we really send.
        // Asking again after `acquire` is free while the token is cached,
        // and covers a token that expired while we waited for quota.
        inner.auth.token().await?;
        inner.gate.acquire(ep).await?;
        let token = inner.auth.token().await?;
        let req = self.build(call, &token)?;
        let attempt = state.attempts.fetch_add(1, Ordering::Relaxed) + 1;
        let started = Instant::now();
        let res = tokio::time::timeout(inner.cfg.request_timeout, inner.transport.send(req)).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        inner.stats.durations.observe(ep, started.elapsed());
        let resp = match res {
            Err(_) => {
                inner.stats.record_request(ep, "timeout");
                tracing::debug!(attempt, latency_ms, "request timed out");
                let reason = format!("no response within {:?}", inner.cfg.request_timeout);
                // The request may have been sent before the timer fired.
                return Err(lost(call, reason, false));
            }
            Ok(Err(e)) => {
                inner.stats.record_request(ep, "transport_error");
                tracing::debug!(attempt, latency_ms, error = %e, "request failed");
                return Err(lost(call, e.to_string(), e.never_sent()));
            }
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        inner.stats.record_request(ep, status.as_str());
        tracing::debug!(
            attempt,
            latency_ms,
            status = status.as_u16(),
            "cliq response"
        );
        match classify(ep, status, resp.headers(), resp.body(), &call.ctx, decode) {
            Classified::Ok(v) => {
                *state.server_date.lock().unwrap() = resp
                    .headers()
                    .get(http::header::DATE)
                    .and_then(|d| d.to_str().ok())
                    .and_then(crate::clock::from_http_date);
                Ok(Sent::Done(v))
            }
            Classified::Unauthorized { message } => {
                inner.stats.record_unauthorized(ep);
                Ok(Sent::Unauthorized { token, message })
            }
            Classified::Err(e) => {
                if let CliqError::Throttled {
                    status,
                    retry_after,
                    ..
                } = &e
                {
                    inner.stats.record_throttled(ep);
                    let (_, message) = error_parts(resp.body());
                    let reason = format!("HTTP {status}: {message}");
                    tracing::warn!(%reason, retry_after_secs = retry_after.map(|d| d.as_secs()), "throttled by Cliq");
                    inner
                        .gate
                        .report_throttled(ep, *retry_after, &reason)
                        .await?;
                } else if e.is_transient() {
                    let hint = crate::cliq::error::retry_after(resp.headers());
                    *state.server_hint.lock().unwrap() = hint;
                }
                Err(e)
            }
        }
    }

    fn build(&self, call: &Call, token: &SecretString) -> Result<http::Request<Bytes>, CliqError> {
        let mut url = format!("{}{}", self.inner.cfg.api_root(), call.path);
        if !call.query.is_empty() {
            let q = serde_urlencoded::to_string(&call.query).map_err(|e| {
                CliqError::InvalidRequest {
                    endpoint: call.ep,
                    message: e.to_string(),
                }
            })?;
            url.push('?');
            url.push_str(&q);
        }
        let mut auth =
            http::HeaderValue::try_from(format!("Zoho-oauthtoken {}", token.expose_secret()))
                .map_err(|_| CliqError::InvalidRequest {
                    endpoint: call.ep,
                    message: "the access token is not a valid header value".into(),
                })?;
        auth.set_sensitive(true);
        let mut b = http::Request::builder()
            .method(call.method.clone())
            .uri(&url)
            .header(http::header::AUTHORIZATION, auth)
            .header(http::header::ACCEPT, "application/json");
        if call.body.is_some() {
            b = b.header(http::header::CONTENT_TYPE, "application/json");
        }
        b.body(call.body.clone().unwrap_or_default())
            .map_err(|e| CliqError::InvalidRequest {
                endpoint: call.ep,
                message: format!("cannot build a request for {url}: {e}"),
            })
    }
}

/// No complete answer: transient for a read or a request that never left,
/// outcome unknown for a write that may have reached Cliq.
fn lost(call: &Call, reason: String, never_sent: bool) -> CliqError {
    if call.ctx.write && !never_sent {
        CliqError::OutcomeUnknown {
            endpoint: call.ep,
            reason,
        }
    } else {
        CliqError::Transient {
            endpoint: call.ep,
            reason,
        }
    }
}

fn decode(ep: Endpoint, e: crate::cliq::models::ShapeError) -> CliqError {
    CliqError::Decode {
        endpoint: ep,
        message: e.0,
    }
}

/// The fields (and short values) of a body, for error messages.
fn sent_fields(f: &UserFields) -> Vec<(String, String)> {
    let json = f.to_json();
    f.keys()
        .into_iter()
        .map(|k| {
            let v = match json.get(&k) {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            let v = if k == "image_data" || v.chars().count() > 80 {
                "…".to_string()
            } else {
                v
            };
            (k, v)
        })
        .collect()
}

/// Percent-encode one path segment (user ids are numeric, but may be emails).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
