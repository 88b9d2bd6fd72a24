//! Reading the token endpoint's answer, and the failure labels of `/metrics`.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;

use super::Minted;
use crate::cliq::error::snippet;
use crate::cliq::error::text_field;
use crate::cliq::error::AuthError;

/// Every label `failure_reason` gives, so `/metrics` can export each
/// from 0 (an alert's `increase()` then sees the first failure).
pub const FAILURE_REASONS: [&str; 5] = [
    "unreachable",
    "invalid_client",
    "invalid_code",
    "access_denied",
    "other",
];

/// The metric label of a failed token POST.
pub(super) fn failure_reason(e: &AuthError) -> &'static str {
    match e {
        AuthError::InvalidRefreshToken { .. } => "invalid_code",
        AuthError::InvalidClient { .. } => "invalid_client",
        AuthError::TooManyTokens { .. } => "access_denied",
        AuthError::Unreachable(_)
        | AuthError::CannotConnect(_)
        | AuthError::AccountsUnreachable { .. } => "unreachable",
        _ => "other",
    }
}

/// A short, plain reason for a refused connection ("connection refused"),
/// else the transport's own text.
pub(super) fn connect_reason(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let known = [
        ("connection refused", "connection refused"),
        ("dns error", "the host name does not resolve (DNS)"),
        ("failed to lookup", "the host name does not resolve (DNS)"),
        ("timed out", "connecting timed out"),
        ("network is unreachable", "network is unreachable"),
        ("no route to host", "no route to host"),
    ];
    known
        .iter()
        .find(|(k, _)| lower.contains(k))
        .map(|(_, r)| (*r).to_owned())
        .unwrap_or_else(|| text.to_owned())
}

pub(super) fn parse_token_response(
    status: http::StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<Minted, AuthError> {
    let text = String::from_utf8_lossy(body);
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return not_json(status, retry_after, &text, e),
    };
    let s = |k: &str| text_field(&v, k);
    if let Some(token) = s("access_token") {
        let secs = ["expires_in_sec", "expires_in"]
            .iter()
            .find_map(|k| s(k).and_then(|x| x.parse::<u64>().ok()))
            .filter(|s| *s > 0)
            .unwrap_or(3600);
        return Ok(Minted::Token {
            token: SecretString::from(token),
            ttl: Duration::from_secs(secs),
        });
    }
    let detail = s("error_description").or_else(|| s("message"));
    if let Some(error) = s("error") {
        return named_error(error, detail, retry_after);
    }
    if status.as_u16() == 429 {
        return Ok(Minted::AccessDenied {
            retry_after,
            detail: snippet(&text),
        });
    }
    if !status.is_success() {
        return Err(AuthError::Http {
            status: status.as_u16(),
            body: snippet(&text),
        });
    }
    Err(AuthError::Decode(
        "neither access_token nor error in the token response".into(),
    ))
}

/// A token answer that is not JSON: an "Access Denied" page or a 429, a
/// truncated 2xx body, or any other HTTP failure.
fn not_json(
    status: http::StatusCode,
    retry_after: Option<Duration>,
    text: &str,
    e: serde_json::Error,
) -> Result<Minted, AuthError> {
    if text.to_ascii_lowercase().contains("access denied") || status.as_u16() == 429 {
        return Ok(Minted::AccessDenied {
            retry_after,
            detail: snippet(text),
        });
    }
    if status.is_success() {
        return Err(AuthError::Unreachable(format!(
            "unreadable token response ({e}), probably truncated"
        )));
    }
    Err(AuthError::Http {
        status: status.as_u16(),
        body: snippet(text),
    })
}

/// A JSON answer with an `error` field (and maybe a description).
fn named_error(
    error: String,
    detail: Option<String>,
    retry_after: Option<Duration>,
) -> Result<Minted, AuthError> {
    let lower = error.to_ascii_lowercase();
    let desc_lower = detail.clone().unwrap_or_default().to_ascii_lowercase();
    match lower.as_str() {
        "invalid_code" => Err(AuthError::InvalidRefreshToken { detail }),
        "invalid_client" | "invalid_client_secret" => Err(AuthError::InvalidClient { detail }),
        _ if lower.contains("access denied")
            || lower.contains("access_denied")
            || desc_lower.contains("too many requests") =>
        {
            Ok(Minted::AccessDenied {
                retry_after,
                detail: detail.unwrap_or(error),
            })
        }
        _ => Err(AuthError::Rejected { error, detail }),
    }
}
