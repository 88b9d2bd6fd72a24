//! The Zoho OAuth token endpoint: minting access tokens from the refresh token, within the mint window.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

use http::{header, HeaderMap};
use rand::Rng;
use serde_json::json;

use super::{chrono_dur, hex, Reply, State, Token, TOKEN_WINDOW};
use crate::cliq::endpoint::Endpoint;

impl State {
    pub(super) fn oauth(
        &mut self,
        headers: &HeaderMap,
        uri: &http::Uri,
        body: &Bytes,
        at: DateTime<Utc>,
    ) -> Reply {
        State::bump(&mut self.counters.requests, Endpoint::OauthToken);
        let params = form_params(uri, body);
        if let Err(reply) = self.check_grant(&params) {
            return reply;
        }
        if self.mint_refused(at) {
            self.counters.token_refusals += 1;
            return Reply::ok(&json!({
                "error": "Access Denied",
                "error_description": "You have made too many requests continuously. Please try again after some time.",
            }));
        }
        let access = self.mint(at);
        Reply::ok(&json!({
            "access_token": access,
            "expires_in": self.cfg.token_ttl.as_secs(),
            "api_domain": format!("http://{}", host(headers, uri)),
            "token_type": "Bearer",
            "scope": self.cfg.scopes.join(" "),
        }))
    }

    /// The grant type and the client's credentials; Zoho refuses with
    /// HTTP 200 and an `error` member.
    fn check_grant(&self, params: &HashMap<String, String>) -> Result<(), Reply> {
        let param = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
        let refuse = |e: &str| Reply::ok(&json!({"error": e}));
        if param("grant_type") != "refresh_token" {
            return Err(refuse("unsupported_grant_type"));
        }
        if param("client_id") != self.cfg.client_id
            || param("client_secret") != self.cfg.client_secret
        {
            return Err(refuse("invalid_client"));
        }
        if param("refresh_token") != self.cfg.refresh_token {
            return Err(refuse("invalid_code"));
        }
        Ok(())
    }

    /// Whether the owner is locked or the mint window is full (mints older
    /// than the window are forgotten first).
    fn mint_refused(&mut self, at: DateTime<Utc>) -> bool {
        let window_start = at - chrono_dur(TOKEN_WINDOW.mul_f64(self.scale));
        while self.mints.front().is_some_and(|t| *t <= window_start) {
            self.mints.pop_front();
        }
        self.locked(self.org.owner, Endpoint::OauthToken, at)
            || self.mints.len() >= self.cfg.max_tokens_per_window as usize
    }

    /// A fresh access token for the owner, recorded as minted at `at`.
    fn mint(&mut self, at: DateTime<Utc>) -> String {
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
                owner: self.org.owner,
                expires_at: at + chrono_dur(self.cfg.token_ttl),
                scopes: self.cfg.scopes.clone(),
            },
        );
        self.counters.tokens_minted += 1;
        access
    }
}

/// The form parameters of the query string and the body (the body's win).
fn form_params(uri: &http::Uri, body: &Bytes) -> HashMap<String, String> {
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
    params
}

/// The host the client reached, for `api_domain`.
fn host(headers: &HeaderMap, uri: &http::Uri) -> String {
    uri.authority()
        .map(|a| a.to_string())
        .or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "127.0.0.1".into())
}
