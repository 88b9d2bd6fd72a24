//! Errors of the Cliq client and the token cache, and the classification of
//! HTTP responses into them.
//!
//! The classes decide what the client does next:
//! * [`CliqError::Throttled`]: the endpoint is locked; reported to the quota
//!   scheduler (which then keeps every caller away until the lock ends).
//! * [`CliqError::Transient`]: worth a retry with backoff (5xx, timeouts,
//!   connection failures, a truncated 2xx body).
//! * [`CliqError::Permanent`]: the request itself is wrong; never retried.
//! * [`CliqError::OutcomeUnknown`]: a write (PUT/POST) reached Cliq, or may
//!   have, and its answer was lost (timeout after sending, connection reset
//!   or closed, truncated body). Never retried blindly: re-sending a write
//!   that was applied is what turned 60 changes into 86 PUTs. The caller
//!   re-checks Cliq first. Reads keep treating these cases as transient.
//! * [`CliqError::TechnicalError`]: a 500 "technical error" to an update.
//!   Retried as transient first (Cliq has transient 500s); the push decides
//!   whether a persistent one is about a reference the mirror does not know.

use std::time::Duration;

use serde_json::Value;

use crate::cliq::quotas::QuotaError;
use crate::cliq::Endpoint;

/// A failure of the OAuth token endpoint.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// `{"error": "invalid_code"}`: the refresh token is revoked, expired or
    /// from another data centre.
    #[error("the refresh token was rejected (invalid_code): it is revoked, expired or belongs to another data centre's accounts server; create a new one (Zoho API console, self client, scopes ZohoCliq.Users.READ,ZohoCliq.Users.CREATE,ZohoCliq.Users.UPDATE) and update refresh_token{}", detail_suffix(.detail))]
    InvalidRefreshToken { detail: Option<String> },
    /// `{"error": "invalid_client"}`.
    #[error("the OAuth client was rejected (invalid_client): check client_id and client_secret, and that accounts_url/data_center matches the data centre the client was registered in{}", detail_suffix(.detail))]
    InvalidClient { detail: Option<String> },
    /// `Access Denied`: too many access tokens minted for this refresh token
    /// (Zoho allows about 10 per 10 minutes), still refused after waiting.
    #[error("Zoho refused to mint another access token (Access Denied: too many tokens for this refresh token in 10 minutes), still refused after {attempts} attempts")]
    TooManyTokens { attempts: u32 },
    /// Any other `error` value from the token endpoint.
    #[error("the token endpoint refused the refresh: {error}{}", detail_suffix(.detail))]
    Rejected {
        error: String,
        detail: Option<String>,
    },
    /// A non-2xx answer without a recognisable `error` field.
    #[error("the token endpoint answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    /// The connection to the accounts server could not be made (nothing
    /// was sent; retried within `token_timeout`, the budget refunded).
    #[error("cannot connect to the Zoho accounts server: {0}")]
    CannotConnect(String),
    /// [`AuthError::CannotConnect`] for the whole of `[cliq] token_timeout`.
    #[error("cannot reach the Zoho accounts server at {url}: {reason}; tried for {waited_secs} s; check [cliq] accounts_url (or data_center) and the network (DNS, proxy, firewall) from this host")]
    AccountsUnreachable {
        url: String,
        reason: String,
        waited_secs: u64,
    },
    /// Timeout, connection failure, truncated body: retrying may help.
    #[error("the token endpoint could not be reached: {0}")]
    Unreachable(String),
    /// A 2xx answer that is neither a token nor an error.
    #[error("the token endpoint's answer could not be read: {0}")]
    Decode(String),
    #[error("quota scheduler (oauth_token): {0}")]
    Quota(#[from] QuotaError),
}

fn detail_suffix(d: &Option<String>) -> String {
    match d {
        Some(d) if !d.is_empty() => format!(" ({d})"),
        _ => String::new(),
    }
}

impl AuthError {
    /// Worth retrying later (network trouble, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            // AccountsUnreachable is not: the token manager already retried
            // it for the whole bound.
            AuthError::Unreachable(_) | AuthError::CannotConnect(_) => true,
            AuthError::Http { status, .. } => *status >= 500 || *status == 408,
            _ => false,
        }
    }
}

/// An error of the typed Cliq client.
#[derive(Debug, thiserror::Error)]
pub enum CliqError {
    /// HTTP 429, or HTTP 400 `request_limit_exceeded`: the endpoint is locked.
    #[error("{endpoint}: throttled by Cliq (HTTP {status}){}", retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    Throttled {
        endpoint: Endpoint,
        status: u16,
        retry_after: Option<Duration>,
    },
    /// 5xx, timeout, connection failure, truncated body: retried with backoff.
    #[error("{endpoint}: transient failure: {reason}")]
    Transient { endpoint: Endpoint, reason: String },
    /// A write was sent (or may have been) and its answer was lost: it may
    /// or may not be applied. Re-check Cliq before sending it again.
    #[error("{endpoint}: the outcome of the write is unknown ({reason}); it is re-checked in Cliq before anything is sent again")]
    OutcomeUnknown { endpoint: Endpoint, reason: String },
    /// HTTP 500 "couldn't process your request due to a technical error" to
    /// an update (not applied). Retried with backoff; seen persistently when a
    /// referenced department, designation or manager does not exist.
    #[error("{endpoint}: HTTP 500 technical error (fields sent: {}): {message}", fields_sent(.sent_fields))]
    TechnicalError {
        endpoint: Endpoint,
        message: String,
        /// The fields and values sent, references included.
        sent_fields: Vec<(String, String)>,
    },
    /// The request was refused for a reason a retry will not fix.
    #[error("{endpoint}: HTTP {status}{}: {message}", code.as_ref().map(|c| format!(" {c}")).unwrap_or_default())]
    Permanent {
        endpoint: Endpoint,
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// Still 401 after refreshing the token once.
    #[error("{endpoint}: unauthorized even with a freshly minted access token (check the scopes ZohoCliq.Users.READ/CREATE/UPDATE and that the token's user belongs to the org): {message}")]
    Unauthorized { endpoint: Endpoint, message: String },
    /// The access token could not be obtained.
    #[error("OAuth: {0}")]
    Auth(#[from] AuthError),
    /// The listing cursor expired (the listing restarts from page one).
    #[error("{endpoint}: the listing cursor (next_token) expired: {message}")]
    ExpiredCursor { endpoint: Endpoint, message: String },
    /// The quota scheduler failed (its store, not a throttle).
    #[error("quota scheduler: {0}")]
    Quota(#[from] QuotaError),
    /// A well-formed JSON answer of an unexpected shape.
    #[error("{endpoint}: unexpected response: {message}")]
    Decode { endpoint: Endpoint, message: String },
    /// Refused locally before sending (would certainly be a 400).
    #[error("{endpoint}: invalid request: {message}")]
    InvalidRequest { endpoint: Endpoint, message: String },
}

impl CliqError {
    pub fn is_transient(&self) -> bool {
        match self {
            CliqError::Transient { .. } | CliqError::TechnicalError { .. } => true,
            CliqError::Auth(a) => a.is_transient(),
            _ => false,
        }
    }

    pub fn is_throttled(&self) -> bool {
        matches!(self, CliqError::Throttled { .. })
    }

    /// The endpoint concerned, where there is one.
    pub fn endpoint(&self) -> Option<Endpoint> {
        match self {
            CliqError::Throttled { endpoint, .. }
            | CliqError::Transient { endpoint, .. }
            | CliqError::OutcomeUnknown { endpoint, .. }
            | CliqError::TechnicalError { endpoint, .. }
            | CliqError::Permanent { endpoint, .. }
            | CliqError::Unauthorized { endpoint, .. }
            | CliqError::ExpiredCursor { endpoint, .. }
            | CliqError::Decode { endpoint, .. }
            | CliqError::InvalidRequest { endpoint, .. } => Some(*endpoint),
            CliqError::Auth(_) => Some(Endpoint::OauthToken),
            CliqError::Quota(_) => None,
        }
    }

    /// The Cliq error code, where the server gave one (for the `pushes.error_code` column).
    pub fn code(&self) -> Option<&str> {
        match self {
            CliqError::Permanent { code, .. } => code.as_deref(),
            CliqError::Throttled { .. } => Some("throttled"),
            CliqError::Unauthorized { .. } => Some("unauthorized"),
            CliqError::ExpiredCursor { .. } => Some("expired_cursor"),
            CliqError::OutcomeUnknown { .. } => Some("outcome_unknown"),
            CliqError::TechnicalError { .. } => Some("technical_error"),
            _ => None,
        }
    }

    /// The references (`department_id`, `designation_id`,
    /// `reporting_to_zuid`) and values a [`CliqError::TechnicalError`] was
    /// answered to; empty for any other error.
    pub fn sent_references(&self) -> Vec<(&str, &str)> {
        use crate::cliq::models::UserFields;
        match self {
            CliqError::TechnicalError { sent_fields, .. } => sent_fields
                .iter()
                .filter(|(k, _)| UserFields::REFERENCE_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            _ => Vec::new(),
        }
    }
}

fn fields_sent(f: &[(String, String)]) -> String {
    f.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a request carried, for classification.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestContext {
    /// The request carried a `next_token`.
    pub had_cursor: bool,
    /// The body's fields and values (update/add), for error messages.
    pub sent_fields: Vec<(String, String)>,
    /// A write (PUT/POST): a lost answer means "outcome unknown", not
    /// "transient".
    pub write: bool,
}

/// The classification of one complete HTTP response.
#[derive(Debug)]
pub(crate) enum Classified<T = Value> {
    Ok(T),
    /// 401: the caller invalidates the token and re-sends once.
    Unauthorized {
        message: String,
    },
    Err(CliqError),
}

/// Why a successful response's body could not be used.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Not JSON (or cut short): a transport problem, worth retrying.
    Unreadable(String),
    /// JSON of the wrong shape: retrying will not change it.
    Shape(String),
}

impl From<crate::cliq::models::RawPageError> for BodyError {
    fn from(e: crate::cliq::models::RawPageError) -> Self {
        match e {
            crate::cliq::models::RawPageError::Shape(m) => BodyError::Shape(m),
            crate::cliq::models::RawPageError::Json(e) => BodyError::Unreadable(e.to_string()),
        }
    }
}

/// A body as a `Value` (an empty body is `null`, e.g. a 204).
pub(crate) fn decode_value(body: &[u8]) -> Result<Value, BodyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| BodyError::Unreadable(e.to_string()))
}

/// `{"code", "message"}` of an error body (also `error`, `error_description`,
/// or the text itself when it is not JSON).
pub(crate) fn error_parts(body: &[u8]) -> (Option<String>, String) {
    let text = String::from_utf8_lossy(body);
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            let s = |k: &str| text_field(&v, k);
            let code = s("code").or_else(|| s("error_code"));
            let message = s("message")
                .or_else(|| s("error_description"))
                .or_else(|| s("error"))
                .or_else(|| {
                    v.get("data")
                        .and_then(|d| d.get("message"))
                        .and_then(|m| m.as_str().map(String::from))
                })
                .unwrap_or_else(|| snippet(&text));
            (code, message)
        }
        Err(_) => (None, snippet(&text)),
    }
}

/// A non-empty string (or a number, as text) under `k` of a JSON answer.
pub(crate) fn text_field(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(|x| match x {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// At most 300 characters of a body, for messages.
pub(crate) fn snippet(text: &str) -> String {
    let t = text.trim();
    if t.chars().count() <= 300 {
        t.to_string()
    } else {
        let s: String = t.chars().take(300).collect();
        format!("{s}…")
    }
}

/// Parse a `Retry-After` header given in seconds (an HTTP date is ignored).
pub(crate) fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = v.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

fn mentions_throttle(code: Option<&str>, message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    code.is_some_and(|c| c.eq_ignore_ascii_case("request_limit_exceeded"))
        || m.contains("throttle limit")
        || m.contains("request_limit_exceeded")
        || m.contains("rate limit")
}

/// Classify one complete response of `ep`.
pub(crate) fn classify<T>(
    ep: Endpoint,
    status: http::StatusCode,
    headers: &http::HeaderMap,
    body: &[u8],
    ctx: &RequestContext,
    decode: impl FnOnce(&[u8]) -> Result<T, BodyError>,
) -> Classified<T> {
    if status.is_success() {
        return classify_success(ep, status.as_u16(), body, ctx, decode);
    }
    classify_failure(ep, status, headers, body, ctx)
}

/// A 2xx answer: its body decoded, or why it could not be.
fn classify_success<T>(
    ep: Endpoint,
    code_u16: u16,
    body: &[u8],
    ctx: &RequestContext,
    decode: impl FnOnce(&[u8]) -> Result<T, BodyError>,
) -> Classified<T> {
    match decode(body) {
        Ok(v) => Classified::Ok(v),
        Err(BodyError::Unreadable(e)) => {
            let reason =
                format!("HTTP {code_u16} with an unreadable body ({e}), probably truncated");
            Classified::Err(if ctx.write {
                CliqError::OutcomeUnknown {
                    endpoint: ep,
                    reason,
                }
            } else {
                CliqError::Transient {
                    endpoint: ep,
                    reason,
                }
            })
        }
        Err(BodyError::Shape(message)) => Classified::Err(CliqError::Decode {
            endpoint: ep,
            message,
        }),
    }
}

/// A non-2xx answer, by its status, code and message.
fn classify_failure<T>(
    ep: Endpoint,
    status: http::StatusCode,
    headers: &http::HeaderMap,
    body: &[u8],
    ctx: &RequestContext,
) -> Classified<T> {
    let code_u16 = status.as_u16();
    let (code, message) = error_parts(body);
    let retry = retry_after(headers);
    if code_u16 == 429 || (code_u16 == 400 && mentions_throttle(code.as_deref(), &message)) {
        return Classified::Err(CliqError::Throttled {
            endpoint: ep,
            status: code_u16,
            retry_after: retry,
        });
    }
    if code_u16 == 401 {
        return Classified::Unauthorized {
            message: coded(code.as_deref(), &message),
        };
    }
    if code_u16 == 400 && ctx.had_cursor && mentions_cursor(code.as_deref(), &message) {
        return Classified::Err(CliqError::ExpiredCursor {
            endpoint: ep,
            message: coded(code.as_deref(), &message),
        });
    }
    if ep == Endpoint::UpdateUser
        && code_u16 == 500
        && message.to_ascii_lowercase().contains("technical error")
    {
        return Classified::Err(technical_error(ep, code, &message, ctx));
    }
    // A gateway timeout may come after the backend applied the write.
    if ctx.write && code_u16 == 504 {
        return Classified::Err(CliqError::OutcomeUnknown {
            endpoint: ep,
            reason: format!("HTTP 504: {message}"),
        });
    }
    if status.is_server_error() || code_u16 == 408 {
        return Classified::Err(CliqError::Transient {
            endpoint: ep,
            reason: format!(
                "HTTP {code_u16}{}: {message}",
                code.map(|c| format!(" {c}")).unwrap_or_default()
            ),
        });
    }
    Classified::Err(CliqError::Permanent {
        endpoint: ep,
        status: code_u16,
        code,
        message,
    })
}

/// An error's message prefixed by its code, where there is one.
fn coded(code: Option<&str>, message: &str) -> String {
    match code {
        Some(c) => format!("{c}: {message}"),
        None => message.to_string(),
    }
}

/// The code or message of a 400 names the listing cursor (`next_token`).
fn mentions_cursor(code: Option<&str>, message: &str) -> bool {
    let hit = |s: &str| {
        let s = s.to_ascii_lowercase();
        s.contains("next_token") || s.contains("nexttoken")
    };
    code.is_some_and(hit) || hit(message)
}

/// A 500 "couldn't process your request due to a technical error" to an
/// update: retried as transient; the fields sent travel with it so that a
/// persistent one can be reported against the reference that was sent.
fn technical_error(
    ep: Endpoint,
    code: Option<String>,
    message: &str,
    ctx: &RequestContext,
) -> CliqError {
    CliqError::TechnicalError {
        endpoint: ep,
        message: coded(code.as_deref(), message),
        sent_fields: ctx.sent_fields.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, StatusCode};

    fn cl(ep: Endpoint, status: u16, body: &str, ctx: &RequestContext) -> Classified {
        classify(
            ep,
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.as_bytes(),
            ctx,
            decode_value,
        )
    }

    fn err(c: Classified) -> CliqError {
        match c {
            Classified::Err(e) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn classification_table() {
        let ctx = RequestContext::default();
        let ep = Endpoint::ListUsers;
        assert!(matches!(
            cl(ep, 200, "{\"data\":[]}", &ctx),
            Classified::Ok(_)
        ));
        assert!(matches!(cl(ep, 204, "", &ctx), Classified::Ok(Value::Null)));
        assert!(err(cl(ep, 200, "{\"data\":[", &ctx)).is_transient());
        assert!(err(cl(ep, 429, "", &ctx)).is_throttled());
        let e = err(cl(
            ep,
            400,
            r#"{"code":"request_limit_exceeded","message":"You have exceeded the URL throttle limits"}"#,
            &ctx,
        ));
        assert!(matches!(e, CliqError::Throttled { status: 400, .. }));
        assert!(err(cl(
            ep,
            400,
            r#"{"message":"You have exceeded the URL throttle limits"}"#,
            &ctx
        ))
        .is_throttled());
        assert!(matches!(
            cl(
                ep,
                401,
                r#"{"code":"oauthtoken_invalid","message":"bad"}"#,
                &ctx
            ),
            Classified::Unauthorized { .. }
        ));
        assert!(err(cl(ep, 503, "<html>down</html>", &ctx)).is_transient());
        match err(cl(
            ep,
            400,
            r#"{"code":"extra_param_found","message":"x is extra"}"#,
            &ctx,
        )) {
            CliqError::Permanent {
                status,
                code,
                message,
                ..
            } => {
                assert_eq!(status, 400);
                assert_eq!(code.as_deref(), Some("extra_param_found"));
                assert_eq!(message, "x is extra");
            }
            e => panic!("{e:?}"),
        }
        assert!(matches!(
            err(cl(ep, 403, "{}", &ctx)),
            CliqError::Permanent { status: 403, .. }
        ));
        // A 500 technical error is transient for anything but an update.
        assert!(err(cl(
            Endpoint::GetUser,
            500,
            r#"{"message":"Sorry, we couldn't process your request due to a technical error."}"#,
            &ctx
        ))
        .is_transient());
    }

    #[test]
    fn expired_cursor_only_with_a_cursor() {
        let body = r#"{"code":"invalid_next_token","message":"The next_token has expired"}"#;
        let with = RequestContext {
            had_cursor: true,
            ..Default::default()
        };
        assert!(matches!(
            err(cl(Endpoint::ListUsers, 400, body, &with)),
            CliqError::ExpiredCursor { .. }
        ));
        assert!(matches!(
            err(cl(
                Endpoint::ListUsers,
                400,
                body,
                &RequestContext::default()
            )),
            CliqError::Permanent { .. }
        ));
    }

    #[test]
    fn update_technical_error_is_transient_and_names_the_fields() {
        let ctx = RequestContext {
            sent_fields: vec![
                ("department_id".into(), "999".into()),
                ("work_location".into(), "B".into()),
            ],
            write: true,
            ..Default::default()
        };
        let e = err(cl(
            Endpoint::UpdateUser,
            500,
            r#"{"message":"Sorry, we couldn't process your request due to a technical error. Please try again later."}"#,
            &ctx,
        ));
        // Retried first: Cliq has transient 500s too.
        assert!(e.is_transient(), "{e:?}");
        assert_eq!(e.code(), Some("technical_error"));
        assert_eq!(e.sent_references(), vec![("department_id", "999")]);
        let text = e.to_string();
        assert!(text.contains("department_id=999"), "{text}");
        assert!(text.contains("work_location=B"), "{text}");
    }

    #[test]
    fn a_lost_answer_to_a_write_is_unknown_not_transient() {
        let write = RequestContext {
            write: true,
            ..Default::default()
        };
        let ep = Endpoint::UpdateUser;
        let e = err(cl(ep, 200, r#"{"data":{"success_us"#, &write));
        assert!(matches!(e, CliqError::OutcomeUnknown { .. }), "{e:?}");
        assert!(!e.is_transient());
        let e = err(cl(ep, 504, "<html>gateway timeout</html>", &write));
        assert!(matches!(e, CliqError::OutcomeUnknown { .. }), "{e:?}");
        // A 5xx answer is "not applied": transient, retried with backoff.
        assert!(err(cl(ep, 503, "<html>down</html>", &write)).is_transient());
        // The same cut-short body to a read is transient.
        let read = RequestContext::default();
        assert!(err(cl(Endpoint::GetUser, 200, r#"{"data":{"#, &read)).is_transient());
    }

    #[test]
    fn retry_after_seconds() {
        let mut h = HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(120)));
        h.insert(
            http::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
        let e = classify(
            Endpoint::GetUser,
            StatusCode::TOO_MANY_REQUESTS,
            &{
                let mut h = HeaderMap::new();
                h.insert(http::header::RETRY_AFTER, "30".parse().unwrap());
                h
            },
            b"",
            &RequestContext::default(),
            decode_value,
        );
        assert!(matches!(
            e,
            Classified::Err(CliqError::Throttled { retry_after: Some(d), .. }) if d == Duration::from_secs(30)
        ));
    }

    #[test]
    fn auth_error_messages() {
        let e = AuthError::InvalidRefreshToken { detail: None }.to_string();
        assert!(
            e.contains("invalid_code") && e.contains("create a new one"),
            "{e}"
        );
        assert!(AuthError::InvalidClient { detail: None }
            .to_string()
            .contains("client_id"));
        assert!(AuthError::Unreachable("x".into()).is_transient());
        assert!(!AuthError::TooManyTokens { attempts: 3 }.is_transient());
        assert!(CliqError::Auth(AuthError::Http {
            status: 502,
            body: String::new()
        })
        .is_transient());
    }
}
