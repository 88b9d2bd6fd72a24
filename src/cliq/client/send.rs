//! The request pipeline: retries, the quota gate, one refresh on a 401, sending, classifying the answer.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::time::Instant;
use tracing::Instrument;

use super::CliqClient;
use crate::cliq::error::{
    classify, decode_value, error_parts, BodyError, Classified, CliqError, RequestContext,
};
use crate::cliq::gate::AheadStart;
use crate::cliq::Endpoint;

/// One request to send (possibly several times).
pub(super) struct Call {
    pub(super) ep: Endpoint,
    pub(super) method: http::Method,
    pub(super) path: String,
    pub(super) query: Vec<(&'static str, String)>,
    pub(super) body: Option<Bytes>,
    /// A page of a listing that may go on: once its answer is in, the next
    /// page's start is taken while this one is read (see [`CliqClient::send`]).
    pub(super) ahead: bool,
    pub(super) ctx: RequestContext,
}

/// Turns a successful response's body into the endpoint's result.
pub(super) type Decoder<T> = fn(&[u8]) -> Result<T, BodyError>;

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
    pub(super) async fn execute(&self, call: Call) -> Result<Value, CliqError> {
        self.execute_as(call, decode_value).await
    }

    /// [`CliqClient::execute`] with the body decoded by `decode` (inside
    /// the retry loop: a body cut short is retried like a 5xx).
    pub(super) async fn execute_as<T>(
        &self,
        call: Call,
        decode: Decoder<T>,
    ) -> Result<T, CliqError> {
        Ok(self.execute_dated(call, decode).await?.0)
    }

    /// [`CliqClient::execute_as`], also returning the `Date` header of the
    /// answer that succeeded (`None` if absent or unparseable).
    pub(super) async fn execute_dated<T>(
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
        // Token first: a refresh is a request of its own and takes time, and
        // the start recorded by `acquire` must be the moment we really send.
        // Asking again after `acquire` is free while the token is cached,
        // and covers a token that expired while we waited for quota.
        inner.auth.token().await?;
        self.admit(call.ep).await?;
        let token = inner.auth.token().await?;
        let req = self.build(call, &token)?;
        let resp = self.transmit(call, state, req).await?;
        if !(call.ahead && resp.status().is_success()) {
            return self.answer(call, state, decode, token, &resp).await;
        }
        // The next page's start, taken while this page is read: the
        // ledger's round trip (its own thread) overlaps the reading (this
        // one), instead of following it on the path from one page to the
        // next. Only a start free without waiting is taken ahead.
        let (ahead, answer) = tokio::join!(
            inner.gate.take_ahead(call.ep),
            self.answer(call, state, decode, token, &resp)
        );
        match ahead {
            // Kept only for a page that came through: after anything else
            // (a retry waits its backoff, a throttle a lock) the request
            // that follows asks the gate afresh.
            Ok(Some(ahead)) if matches!(answer, Ok(Sent::Done(_))) => self.keep_ahead(ahead).await,
            Ok(Some(ahead)) => self.give_back(ahead).await,
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "no start taken ahead"),
        }
        answer
    }

    /// Record this request's start: the start taken ahead for `ep`, if it
    /// is still fresh (else it is given back), or one from the gate.
    async fn admit(&self, ep: Endpoint) -> Result<(), CliqError> {
        let inner = &*self.inner;
        let ahead = inner.ahead.lock().unwrap().take_if(|a| a.ep == ep);
        if let Some(ahead) = ahead {
            if inner.gate.is_fresh(&ahead) {
                return Ok(());
            }
            self.give_back(ahead).await;
        }
        Ok(inner.gate.acquire(ep).await?)
    }

    /// Keep a start taken ahead for the next request of its endpoint
    /// (one at a time: an older one is given back).
    async fn keep_ahead(&self, ahead: AheadStart) {
        let older = self.inner.ahead.lock().unwrap().replace(ahead);
        if let Some(older) = older {
            self.give_back(older).await;
        }
    }

    /// Give back the start taken ahead, if any: the listing it was taken
    /// for has ended (its last page, or an error), so nothing will send it.
    pub(super) async fn give_back_ahead(&self) {
        let ahead = self.inner.ahead.lock().unwrap().take();
        if let Some(ahead) = ahead {
            self.give_back(ahead).await;
        }
    }

    async fn give_back(&self, ahead: AheadStart) {
        if let Err(e) = self.inner.gate.give_back(ahead).await {
            // Left in the ledger: counted as a start that was never sent,
            // which only ever makes the budget smaller.
            tracing::warn!(error = %e, "a start taken ahead could not be given back");
        }
    }

    /// One HTTP request within `request_timeout`: the complete response, or
    /// the error its loss means for this call.
    async fn transmit(
        &self,
        call: &Call,
        state: &CallState,
        req: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, CliqError> {
        let inner = &*self.inner;
        let ep = call.ep;
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
        Ok(resp)
    }

    /// The classified response: its result (and Cliq's `Date`), a 401 to
    /// re-send after a refresh, or an error (a throttle reported to the gate).
    async fn answer<T>(
        &self,
        call: &Call,
        state: &CallState,
        decode: Decoder<T>,
        token: SecretString,
        resp: &http::Response<Bytes>,
    ) -> Result<Sent<T>, CliqError> {
        let inner = &*self.inner;
        let ep = call.ep;
        match classify(
            ep,
            resp.status(),
            resp.headers(),
            resp.body(),
            &call.ctx,
            decode,
        ) {
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
