//! Minting a new access token: the mint budget, single-flight refresh, connect retries, the POST.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use secrecy::ExposeSecret;
use tokio::time::Instant;

use super::response::{connect_reason, failure_reason, parse_token_response};
use super::{Cached, Minted, TokenManager};
use crate::cliq::error::AuthError;
use crate::cliq::Endpoint;

impl TokenManager {
    /// `acquire` for a mint, saying so when it has to wait for the budget.
    pub(super) async fn acquire_mint_slot(&self) -> Result<(), AuthError> {
        let started = Instant::now();
        let acquire = self.gate.acquire(Endpoint::OauthToken);
        tokio::pin!(acquire);
        tokio::select! {
            r = &mut acquire => return Ok(r?),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        tracing::info!(
            endpoint = %Endpoint::OauthToken,
            "waiting for the token-mint budget (Zoho mints about 10 access tokens per refresh token per 10 minutes; they were used recently)"
        );
        acquire.await?;
        tracing::info!(
            waited_secs = started.elapsed().as_secs(),
            "the token-mint budget has room again; minting"
        );
        Ok(())
    }

    /// Mint a token, waiting out `Access Denied` through the scheduler —
    /// unless a still-valid token can be used meanwhile (`fallback`).
    pub(super) async fn mint(&self, fallback: bool) -> Result<Cached, AuthError> {
        let mut denied = 0u32;
        let first = Instant::now();
        let mut refused = 0u32;
        loop {
            self.acquire_mint_slot().await?;
            let sent_at = Instant::now();
            let minted = match self.post().await {
                Err(AuthError::CannotConnect(reason)) => {
                    // Never reached Zoho: the budget is not spent.
                    self.gate.refund(Endpoint::OauthToken).await?;
                    self.count_failure("unreachable");
                    refused += 1;
                    self.connect_retry(first, refused, fallback, reason).await?;
                    continue;
                }
                Err(e) => {
                    self.count_failure(failure_reason(&e));
                    return Err(e);
                }
                Ok(m) => m,
            };
            match minted {
                Minted::Token { token, ttl } => {
                    self.publish(&token, ttl);
                    let expires_at = sent_at + ttl;
                    let refresh_at = expires_at - self.cfg.skew_for(ttl);
                    tracing::info!(
                        expires_in_secs = ttl.as_secs(),
                        "minted a Cliq access token"
                    );
                    return Ok(Cached {
                        token,
                        expires_at,
                        refresh_at,
                    });
                }
                Minted::AccessDenied {
                    retry_after,
                    detail,
                } => {
                    denied += 1;
                    self.count_failure("access_denied");
                    let reason = format!("token endpoint: Access Denied ({detail})");
                    tracing::warn!(attempt = denied, "{reason}");
                    self.gate
                        .report_throttled(Endpoint::OauthToken, retry_after, &reason)
                        .await?;
                    if fallback || denied > self.cfg.max_access_denied_retries {
                        return Err(AuthError::TooManyTokens { attempts: denied });
                    }
                }
            }
        }
    }

    /// After the `attempt`-th refused connection: sleep before the next try,
    /// or give up once `token_timeout` since `first` is spent (at once with
    /// a still-valid token to fall back on).
    pub(super) async fn connect_retry(
        &self,
        first: Instant,
        attempt: u32,
        fallback: bool,
        reason: String,
    ) -> Result<(), AuthError> {
        let left = self.cfg.token_timeout.saturating_sub(first.elapsed());
        if fallback || left.is_zero() {
            return Err(AuthError::AccountsUnreachable {
                url: self.cfg.accounts_base.trim_end_matches('/').to_owned(),
                reason,
                waited_secs: first.elapsed().as_secs(),
            });
        }
        let delay = Duration::from_secs(1 << attempt.min(5).saturating_sub(1)).min(left);
        tracing::warn!(
            url = %self.cfg.accounts_base,
            %reason,
            attempt,
            retry_in_secs = delay.as_secs_f64(),
            "cannot reach the Zoho accounts server; retrying (no token budget spent)"
        );
        tokio::time::sleep(delay).await;
        Ok(())
    }

    /// One `POST /oauth/v2/token`.
    pub(super) async fn post(&self) -> Result<Minted, AuthError> {
        let form = serde_urlencoded::to_string([
            ("grant_type", "refresh_token"),
            ("refresh_token", self.cfg.refresh_token.expose_secret()),
            ("client_id", self.cfg.client_id.as_str()),
            ("client_secret", self.cfg.client_secret.expose_secret()),
        ])
        .map_err(|e| AuthError::Decode(e.to_string()))?;
        let req = http::Request::builder()
            .method(http::Method::POST)
            .uri(self.cfg.token_url())
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json")
            .body(Bytes::from(form))
            .map_err(|e| AuthError::Decode(format!("bad accounts URL: {e}")))?;
        let started = Instant::now();
        let sent = tokio::time::timeout(self.cfg.request_timeout, self.transport.send(req)).await;
        self.durations
            .observe(Endpoint::OauthToken, started.elapsed());
        let resp = match sent {
            Ok(Err(e)) if e.never_sent() => {
                return Err(AuthError::CannotConnect(connect_reason(&e.to_string())))
            }
            Err(_) => {
                self.refreshes.fetch_add(1, Ordering::Relaxed);
                return Err(AuthError::Unreachable(format!(
                    "no answer within {:?}",
                    self.cfg.request_timeout
                )));
            }
            Ok(Err(e)) => {
                self.refreshes.fetch_add(1, Ordering::Relaxed);
                return Err(AuthError::Unreachable(e.to_string()));
            }
            Ok(Ok(r)) => r,
        };
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        parse_token_response(
            resp.status(),
            crate::cliq::error::retry_after(resp.headers()),
            resp.body(),
        )
    }
}
