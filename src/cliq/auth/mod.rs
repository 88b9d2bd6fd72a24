//! The OAuth access-token cache.
//!
//! One access token is shared by every request of the process. It is minted
//! from the refresh token shortly before it expires (or after a 401), and
//! minting is *single-flight*: the cache's async mutex is held during the
//! refresh, so twenty concurrent callers cause exactly one POST, and twenty
//! concurrent 401s with the same token cause one refresh (only the first
//! [`TokenManager::invalidate`] still finds the failed token cached).
//!
//! Zoho allows about ten access tokens per refresh token per ten minutes, so
//! every refresh first passes the quota scheduler ([`Endpoint::OauthToken`]),
//! which every process sharing the mirror (and so the refresh token) sees.
//!
//! With a [`TokenFile`] (every command and the daemon: `<mirror>.token`),
//! the token is shared by every process on the mirror too, and minting is
//! single-flight across them (see [`crate::cliq::token_file`]).
//!
//! A connection that could not be made spends nothing: its scheduler start
//! is refunded (Zoho never saw it), and it is retried with backoff, logged,
//! for at most [`AuthConfig::token_timeout`]; then the command fails with
//! [`AuthError::AccountsUnreachable`].
//!
//! Secrets (client secret, refresh token, access token) never appear in logs
//! or `Debug` output.

mod cache;
mod refresh;
mod response;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

pub use crate::cliq::error::AuthError;
use crate::cliq::gate::QuotaGate;
use crate::cliq::quotas::QuotaScheduler;
use crate::cliq::stats::RequestDurations;
use crate::cliq::token_file::TokenFile;
use crate::cliq::transport::Transport;
pub use response::FAILURE_REASONS;

/// The longest the token is refreshed ahead of its expiry.
pub const DEFAULT_MAX_REFRESH_SKEW: Duration = Duration::from_secs(5 * 60);

/// The default of [`AuthConfig::token_timeout`].
pub const DEFAULT_TOKEN_TIMEOUT: Duration = Duration::from_secs(120);

/// Where and how to mint access tokens.
#[derive(Clone)]
pub struct AuthConfig {
    /// The accounts server, e.g. `https://accounts.zoho.eu` (no path).
    pub accounts_base: String,
    /// Not a secret (it appears in consent URLs); shown in `Debug`.
    pub client_id: String,
    pub client_secret: SecretString,
    pub refresh_token: SecretString,
    /// Refresh when less than this remains. `None`: `min(5 min, ttl / 10)`.
    pub refresh_skew: Option<Duration>,
    /// Timeout of one token request.
    pub request_timeout: Duration,
    /// How many times an `Access Denied` (too many tokens) is waited out
    /// (through the scheduler's lock) before giving up.
    pub max_access_denied_retries: u32,
    /// The longest an unreachable accounts server is retried
    /// (`[cliq] token_timeout`, default 2 minutes).
    pub token_timeout: Duration,
}

impl AuthConfig {
    pub fn new(
        accounts_base: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretString,
        refresh_token: SecretString,
    ) -> Self {
        AuthConfig {
            accounts_base: accounts_base.into(),
            client_id: client_id.into(),
            client_secret,
            refresh_token,
            refresh_skew: None,
            request_timeout: Duration::from_secs(30),
            max_access_denied_retries: 2,
            token_timeout: DEFAULT_TOKEN_TIMEOUT,
        }
    }

    /// `{accounts}/oauth/v2/token`.
    pub fn token_url(&self) -> String {
        format!(
            "{}/oauth/v2/token",
            self.accounts_base.trim_end_matches('/')
        )
    }

    fn skew_for(&self, ttl: Duration) -> Duration {
        let skew = self
            .refresh_skew
            .unwrap_or_else(|| DEFAULT_MAX_REFRESH_SKEW.min(ttl / 10));
        // Never so large that a fresh token is already due.
        skew.min(ttl / 2)
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("accounts_base", &self.accounts_base)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("refresh_token", &"[REDACTED]")
            .field("refresh_skew", &self.refresh_skew)
            .field("request_timeout", &self.request_timeout)
            .field("max_access_denied_retries", &self.max_access_denied_retries)
            .field("token_timeout", &self.token_timeout)
            .finish()
    }
}

struct Cached {
    token: SecretString,
    expires_at: Instant,
    refresh_at: Instant,
}

/// The shared access-token cache (see the module docs).
pub struct TokenManager {
    cfg: AuthConfig,
    transport: Arc<dyn Transport>,
    gate: Arc<dyn QuotaGate>,
    cache: tokio::sync::Mutex<Option<Cached>>,
    refreshes: AtomicU64,
    /// The cache shared with the other processes on the mirror, if any.
    file: Option<TokenFile>,
    /// The last token Cliq refused (401): never adopted from the file again.
    refused: std::sync::Mutex<Option<SecretString>>,
    /// Failed token POSTs by reason (`/metrics`).
    failures: std::sync::Mutex<BTreeMap<&'static str, u64>>,
    durations: RequestDurations,
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cached = match self.cache.try_lock() {
            Ok(g) => match g.as_ref() {
                Some(c) if Instant::now() < c.expires_at => "valid token cached",
                Some(_) => "expired token cached",
                None => "no token cached",
            },
            Err(_) => "refresh in progress",
        };
        f.debug_struct("TokenManager")
            .field("config", &self.cfg)
            .field("state", &cached)
            .field("refreshes", &self.refreshes())
            .finish_non_exhaustive()
    }
}

/// What one token POST produced.
enum Minted {
    Token {
        token: SecretString,
        ttl: Duration,
    },
    AccessDenied {
        retry_after: Option<Duration>,
        detail: String,
    },
}

impl TokenManager {
    /// The production constructor: refreshes pass `scheduler`.
    pub fn new(cfg: AuthConfig, transport: Arc<dyn Transport>, scheduler: QuotaScheduler) -> Self {
        Self::with_gate(cfg, transport, Arc::new(scheduler))
    }

    /// Same, with any [`QuotaGate`] (tests).
    pub fn with_gate(
        cfg: AuthConfig,
        transport: Arc<dyn Transport>,
        gate: Arc<dyn QuotaGate>,
    ) -> Self {
        TokenManager {
            cfg,
            transport,
            gate,
            cache: tokio::sync::Mutex::new(None),
            refreshes: AtomicU64::new(0),
            file: None,
            refused: std::sync::Mutex::new(None),
            failures: std::sync::Mutex::default(),
            durations: RequestDurations::default(),
        }
    }

    /// Share the token with every process on the mirror through `file`.
    pub fn with_file(mut self, file: TokenFile) -> Self {
        self.file = Some(file);
        self
    }

    /// Where the shared token is cached, if it is.
    pub fn token_file(&self) -> Option<&TokenFile> {
        self.file.as_ref()
    }

    /// Durations of the token POSTs (shared with the client, see
    /// [`RequestDurations`]).
    pub fn durations(&self) -> &RequestDurations {
        &self.durations
    }

    /// Failed token POSTs by reason: `unreachable`, `invalid_client`,
    /// `invalid_code`, `access_denied`, `other` (`/metrics`).
    pub fn refresh_failures(&self) -> BTreeMap<&'static str, u64> {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn count_failure(&self, reason: &'static str) {
        *self
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(reason)
            .or_default() += 1;
    }

    pub fn config(&self) -> &AuthConfig {
        &self.cfg
    }

    /// How many token POSTs this manager has sent (metrics, tests).
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// A valid access token: the cached one unless it is due for refresh,
    /// else a freshly minted one (single-flight: concurrent callers wait for
    /// the one refresh in progress and share its result).
    pub async fn token(&self) -> Result<SecretString, AuthError> {
        let mut guard = self.cache.lock().await;
        if let Some(c) = guard.as_ref() {
            if Instant::now() < c.refresh_at {
                return Ok(c.token.clone());
            }
        }
        // Another process may have minted a newer one.
        if let Some(c) = self.adopt() {
            let t = c.token.clone();
            *guard = Some(c);
            return Ok(t);
        }
        let _flight = match &self.file {
            Some(f) => match f.lock(self.cfg.token_timeout).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take the token-cache lock; minting without it");
                    None
                }
            },
            None => None,
        };
        // Whoever held the lock before us may just have minted.
        if let Some(c) = self.adopt() {
            let t = c.token.clone();
            *guard = Some(c);
            return Ok(t);
        }
        let now = Instant::now();
        let fallback = guard.as_ref().is_some_and(|c| now < c.expires_at);
        match self.mint(fallback).await {
            Ok(c) => {
                let t = c.token.clone();
                *guard = Some(c);
                Ok(t)
            }
            Err(e) => {
                // The old token may still have a few minutes: keep using it,
                // and try again a little later rather than on every call.
                let now = Instant::now();
                if let Some(c) = guard.as_mut().filter(|c| now < c.expires_at) {
                    let left = c.expires_at - now;
                    c.refresh_at = now + (left / 2).min(Duration::from_secs(30));
                    tracing::warn!(
                        error = %e,
                        remaining_secs = left.as_secs(),
                        "access token refresh failed; using the current token until it expires"
                    );
                    return Ok(c.token.clone());
                }
                Err(e)
            }
        }
    }

    /// `failed` was refused (HTTP 401): forget it, but only if it is still
    /// the cached token (so concurrent 401s with one token cause one refresh).
    pub async fn invalidate(&self, failed: &SecretString) {
        let mut guard = self.cache.lock().await;
        if guard
            .as_ref()
            .is_some_and(|c| c.token.expose_secret() == failed.expose_secret())
        {
            tracing::info!("access token refused by Cliq; it will be refreshed");
            *guard = None;
            *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(failed.clone());
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cliq::gate::RecordingGate;
    use crate::cliq::transport::RouterTransport;
    use crate::cliq::Endpoint;
    use axum::routing::post;
    use axum::Router;
    use bytes::Bytes;
    use std::sync::atomic::AtomicUsize;

    pub(crate) const SECRET: &str = "super-secret-client-secret";
    pub(crate) const REFRESH: &str = "1000.refresh-token-value";

    pub(crate) fn cfg(base: &str) -> AuthConfig {
        AuthConfig::new(
            base,
            "1000.CLIENTID",
            SecretString::from(SECRET),
            SecretString::from(REFRESH),
        )
    }

    /// A token endpoint answering `answers[min(n, len-1)]` to the n-th call
    /// (`{n}` in an answer becomes the call number, from 1).
    pub(crate) fn token_router(answers: Vec<&'static str>, calls: Arc<AtomicUsize>) -> Router {
        Router::new().route(
            "/oauth/v2/token",
            post(move |body: String| {
                let calls = calls.clone();
                let answers = answers.clone();
                async move {
                    assert!(body.contains("grant_type=refresh_token"), "{body}");
                    assert!(body.contains("client_id=1000.CLIENTID"), "{body}");
                    // Take some (virtual) time so concurrent callers overlap.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                    let a = answers[(n - 1).min(answers.len() - 1)];
                    (
                        [(http::header::CONTENT_TYPE, "application/json")],
                        a.replace("{n}", &n.to_string()),
                    )
                }
            }),
        )
    }

    fn manager(router: Router, gate: Arc<RecordingGate>, cfg: AuthConfig) -> TokenManager {
        TokenManager::with_gate(cfg, Arc::new(RouterTransport::new(router)), gate)
    }

    const OK: &str =
        r#"{"access_token":"1000.access-{n}","expires_in":3600,"token_type":"Bearer"}"#;

    #[tokio::test(start_paused = true)]
    async fn twenty_concurrent_callers_one_refresh() {
        let calls = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(RecordingGate::default());
        let tm = Arc::new(manager(
            token_router(vec![OK], calls.clone()),
            gate.clone(),
            cfg("http://accounts.test"),
        ));
        let tokens = futures::future::join_all((0..20).map(|_| {
            let tm = tm.clone();
            tokio::spawn(async move { tm.token().await.unwrap() })
        }))
        .await;
        for t in tokens {
            assert_eq!(t.unwrap().expose_secret(), "1000.access-1");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(tm.refreshes(), 1);
        assert_eq!(gate.acquired(Endpoint::OauthToken), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn twenty_concurrent_invalidations_one_refresh() {
        let calls = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(RecordingGate::default());
        let tm = Arc::new(manager(
            token_router(vec![OK], calls.clone()),
            gate,
            cfg("http://accounts.test"),
        ));
        let first = tm.token().await.unwrap();
        let tokens = futures::future::join_all((0..20).map(|_| {
            let tm = tm.clone();
            let first = first.clone();
            tokio::spawn(async move {
                tm.invalidate(&first).await;
                tm.token().await.unwrap()
            })
        }))
        .await;
        for t in tokens {
            assert_eq!(t.unwrap().expose_secret(), "1000.access-2");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // A stale invalidation does not drop the new token.
        tm.invalidate(&first).await;
        assert_eq!(tm.token().await.unwrap().expose_secret(), "1000.access-2");
        assert_eq!(tm.refreshes(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_before_expiry() {
        let calls = Arc::new(AtomicUsize::new(0));
        let tm = manager(
            token_router(
                vec![r#"{"access_token":"1000.access-{n}","expires_in":100}"#],
                calls.clone(),
            ),
            Arc::new(RecordingGate::default()),
            cfg("http://accounts.test"),
        );
        // ttl 100 s → skew min(5 min, 10 s) = 10 s: refresh from t≈90 s.
        assert_eq!(tm.token().await.unwrap().expose_secret(), "1000.access-1");
        tokio::time::sleep(Duration::from_secs(80)).await;
        assert_eq!(tm.token().await.unwrap().expose_secret(), "1000.access-1");
        assert_eq!(tm.refreshes(), 1);
        tokio::time::sleep(Duration::from_secs(11)).await;
        // Still 9 s before expiry, but inside the skew: refreshed.
        assert_eq!(tm.token().await.unwrap().expose_secret(), "1000.access-2");
        assert_eq!(tm.refreshes(), 2);

        // An explicit skew is honoured (and the string expires_in form).
        let calls = Arc::new(AtomicUsize::new(0));
        let mut c = cfg("http://accounts.test/");
        c.refresh_skew = Some(Duration::from_secs(30));
        let tm = manager(
            token_router(
                vec![r#"{"access_token":"t{n}","expires_in":"100"}"#],
                calls.clone(),
            ),
            Arc::new(RecordingGate::default()),
            c,
        );
        tm.token().await.unwrap();
        tokio::time::sleep(Duration::from_secs(69)).await;
        assert_eq!(tm.token().await.unwrap().expose_secret(), "t1");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(tm.token().await.unwrap().expose_secret(), "t2");
    }

    #[tokio::test(start_paused = true)]
    async fn invalid_code_with_http_200_is_a_clear_error_and_not_retried() {
        let calls = Arc::new(AtomicUsize::new(0));
        let tm = manager(
            token_router(vec![r#"{"error":"invalid_code"}"#], calls.clone()),
            Arc::new(RecordingGate::default()),
            cfg("http://accounts.test"),
        );
        let e = tm.token().await.unwrap_err();
        assert!(matches!(e, AuthError::InvalidRefreshToken { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("refresh token was rejected (invalid_code)"),
            "{msg}"
        );
        assert!(msg.contains("create a new one"), "{msg}");
        assert!(!msg.contains(REFRESH) && !msg.contains(SECRET));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let tm = manager(
            token_router(vec![r#"{"error":"invalid_client"}"#], Arc::default()),
            Arc::new(RecordingGate::default()),
            cfg("http://accounts.test"),
        );
        assert!(matches!(
            tm.token().await.unwrap_err(),
            AuthError::InvalidClient { .. }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn access_denied_is_reported_and_waited_out() {
        let calls = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(RecordingGate::with_lock(Duration::from_secs(600)));
        let tm = manager(
            token_router(
                vec![
                    r#"{"error_description":"You have made too many requests continuously. Please try again after some time.","error":"Access Denied","status":"failure"}"#,
                    OK,
                ],
                calls.clone(),
            ),
            gate.clone(),
            cfg("http://accounts.test"),
        );
        let start = Instant::now();
        assert_eq!(tm.token().await.unwrap().expose_secret(), "1000.access-2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let th = gate.throttled();
        assert_eq!(th.len(), 1);
        assert_eq!(th[0].0, Endpoint::OauthToken);
        assert!(th[0].2.contains("Access Denied"));
        // The second POST waited for the lock the gate applied.
        assert!(start.elapsed() >= Duration::from_secs(600));

        // Bounded: always denied → TooManyTokens after 1 + max retries POSTs.
        let calls = Arc::new(AtomicUsize::new(0));
        let tm = manager(
            token_router(vec![r#"{"error":"Access Denied"}"#], calls.clone()),
            Arc::new(RecordingGate::default()),
            cfg("http://accounts.test"),
        );
        let e = tm.token().await.unwrap_err();
        assert!(
            matches!(e, AuthError::TooManyTokens { attempts: 3 }),
            "{e:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn keeps_a_still_valid_token_when_refresh_fails() {
        let calls = Arc::new(AtomicUsize::new(0));
        let tm = manager(
            token_router(
                vec![
                    r#"{"access_token":"t{n}","expires_in":100}"#,
                    r#"{"error":"invalid_code"}"#,
                ],
                calls.clone(),
            ),
            Arc::new(RecordingGate::default()),
            cfg("http://accounts.test"),
        );
        assert_eq!(tm.token().await.unwrap().expose_secret(), "t1");
        tokio::time::sleep(Duration::from_secs(92)).await;
        // Refresh fails, but t1 has ~8 s left: it is still served.
        assert_eq!(tm.token().await.unwrap().expose_secret(), "t1");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // ... without retrying on every call.
        assert_eq!(tm.token().await.unwrap().expose_secret(), "t1");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(matches!(
            tm.token().await.unwrap_err(),
            AuthError::InvalidRefreshToken { .. }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn access_denied_with_a_valid_token_does_not_block_callers() {
        let calls = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(RecordingGate::with_lock(Duration::from_secs(600)));
        let tm = manager(
            token_router(
                vec![
                    r#"{"access_token":"t{n}","expires_in":100}"#,
                    r#"{"error":"Access Denied"}"#,
                ],
                calls.clone(),
            ),
            gate.clone(),
            cfg("http://accounts.test"),
        );
        tm.token().await.unwrap();
        tokio::time::sleep(Duration::from_secs(92)).await;
        let before = Instant::now();
        assert_eq!(tm.token().await.unwrap().expose_secret(), "t1");
        // Reported, but not waited out: the old token still had ~8 s.
        assert!(before.elapsed() < Duration::from_secs(1));
        assert_eq!(gate.throttled().len(), 1);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn transport_failures_are_transient() {
        let router = Router::new().route(
            "/oauth/v2/token",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(120)).await;
                "late"
            }),
        );
        let tm = manager(
            router,
            Arc::new(RecordingGate::default()),
            cfg("http://accounts.test"),
        );
        let e = tm.token().await.unwrap_err();
        assert!(e.is_transient(), "{e:?}");

        let router = Router::new().route(
            "/oauth/v2/token",
            post(|| async { (http::StatusCode::BAD_GATEWAY, "<html>bad gateway</html>") }),
        );
        let tm = manager(
            router,
            Arc::new(RecordingGate::default()),
            cfg("http://accounts.test"),
        );
        let e = tm.token().await.unwrap_err();
        assert!(matches!(e, AuthError::Http { status: 502, .. }) && e.is_transient());
    }

    /// Refuses the connection (nothing sent) while `down`; else answers OK.
    struct Flaky {
        down: std::sync::atomic::AtomicBool,
        refused: AtomicUsize,
        ok: RouterTransport,
    }

    impl Transport for Flaky {
        fn send(&self, req: http::Request<Bytes>) -> crate::cliq::transport::TransportFuture<'_> {
            Box::pin(async move {
                if self.down.load(Ordering::SeqCst) {
                    self.refused.fetch_add(1, Ordering::SeqCst);
                    return Err(crate::cliq::transport::TransportError::Connect(
                        "tcp connect error: Connection refused (os error 111)".into(),
                    ));
                }
                self.ok.send(req).await
            })
        }
    }

    fn flaky() -> Arc<Flaky> {
        Arc::new(Flaky {
            down: true.into(),
            refused: AtomicUsize::new(0),
            ok: RouterTransport::new(token_router(vec![OK], Arc::default())),
        })
    }

    async fn scheduler(dir: &tempfile::TempDir) -> QuotaScheduler {
        let clock = crate::clock::Clock::anchored(
            crate::clock::from_db("2026-03-01T08:00:00.000Z").unwrap(),
        );
        let store = crate::mirror::Store::open(&dir.path().join("mirror.db"), &clock)
            .await
            .unwrap();
        QuotaScheduler::new(&store, crate::cliq::quotas::Limits::documented())
    }

    #[tokio::test(start_paused = true)]
    async fn connection_failures_do_not_spend_the_mint_budget() {
        let dir = tempfile::tempdir().unwrap();
        let sched = scheduler(&dir).await;
        let transport = flaky();
        let tm = TokenManager::new(
            cfg("http://accounts.test"),
            transport.clone(),
            sched.clone(),
        );
        while transport.refused.load(Ordering::SeqCst) < 20 {
            assert!(tm.token().await.is_err());
        }
        assert_eq!(sched.used(Endpoint::OauthToken).await.unwrap(), 0);
        // The host is back: the mint proceeds at once, budget intact.
        transport.down.store(false, Ordering::SeqCst);
        let before = Instant::now();
        assert_eq!(tm.token().await.unwrap().expose_secret(), "1000.access-1");
        assert!(
            before.elapsed() < Duration::from_secs(1),
            "{:?}",
            before.elapsed()
        );
        assert_eq!(sched.used(Endpoint::OauthToken).await.unwrap(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_accounts_host_fails_within_the_bound_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let sched = scheduler(&dir).await;
        let transport = flaky();
        let tm = TokenManager::new(cfg("http://accounts.test"), transport.clone(), sched);
        let before = Instant::now();
        let e = tm.token().await.unwrap_err();
        let took = before.elapsed();
        assert!(took <= Duration::from_secs(120), "{took:?}");
        // Retried meanwhile, not given up on the first refusal.
        assert!(transport.refused.load(Ordering::SeqCst) >= 3);
        assert!(!e.is_transient(), "the bound is spent: {e:?}");
        let msg = e.to_string();
        assert!(
            msg.starts_with(
                "cannot reach the Zoho accounts server at http://accounts.test: connection refused"
            ),
            "{msg}"
        );
        assert!(msg.contains("[cliq] accounts_url"), "{msg}");
    }

    #[tokio::test(start_paused = true)]
    async fn debug_never_shows_secrets() {
        let tm = manager(
            token_router(vec![OK], Arc::default()),
            Arc::new(RecordingGate::default()),
            cfg("http://accounts.test"),
        );
        let token = tm.token().await.unwrap();
        let dbg = format!("{tm:?} {:?} {:?}", tm.config(), token);
        for secret in [SECRET, REFRESH, token.expose_secret()] {
            assert!(!dbg.contains(secret), "{dbg}");
        }
        assert!(dbg.contains("1000.CLIENTID"));
        assert!(dbg.contains("REDACTED"));
        assert!(dbg.contains("valid token cached"), "{dbg}");
    }

    /// `cliq_sync_token_refresh_failures_total`: every refresh that ended
    /// without a token counts, also one the still-valid token covered.
    fn failures(tm: &TokenManager) -> u64 {
        tm.refresh_failures().values().sum()
    }

    #[tokio::test(start_paused = true)]
    async fn failed_refreshes_are_counted() {
        let tm = manager(
            token_router(
                vec![
                    r#"{"access_token":"t{n}","expires_in":100}"#,
                    r#"{"error":"invalid_code"}"#,
                ],
                Arc::default(),
            ),
            Arc::new(RecordingGate::default()),
            cfg("http://accounts.test"),
        );
        tm.token().await.unwrap();
        assert_eq!(failures(&tm), 0);
        tokio::time::sleep(Duration::from_secs(92)).await;
        tm.token().await.unwrap(); // the old token covers the failure
        assert_eq!(failures(&tm), 1);
        tokio::time::sleep(Duration::from_secs(10)).await;
        tm.token().await.unwrap_err();
        assert_eq!(failures(&tm), 2);
    }
}
