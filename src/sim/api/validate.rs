//! Request validation shared by the endpoints: query strings, JSON bodies,
//! and the 400 answers Cliq gives for them.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{header, HeaderMap};
use serde_json::{Map, Value};

use crate::sim::Reply;

pub(super) fn invalid_param(message: &str) -> Reply {
    Reply::bad_request("invalid_param", message)
}

pub(super) fn invalid_json(message: &str) -> Reply {
    Reply::bad_request("invalid_json", message)
}

pub(super) fn extra_key(key: &str) -> Reply {
    Reply::bad_request(
        "extra_key_found",
        &format!("'{key}' is an extra key in the JSON Object."),
    )
}

pub(super) fn missing_key(key: &str) -> Reply {
    Reply::bad_request(
        "missing_key",
        &format!("'{key}' is missing in the JSON Object."),
    )
}

/// Parse a query string, allowing only `allowed` keys, each at most once.
pub(super) fn parse_query(query: &str, allowed: &[&str]) -> Result<Vec<(String, String)>, Reply> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|_| invalid_param("The query string is malformed."))?;
    for (i, (k, _)) in pairs.iter().enumerate() {
        if !allowed.contains(&k.as_str()) {
            return Err(Reply::bad_request(
                "extra_param_found",
                &format!("'{k}' is an extra parameter."),
            ));
        }
        if pairs[..i].iter().any(|(k2, _)| k2 == k) {
            return Err(invalid_param(&format!(
                "The parameter '{k}' is given more than once."
            )));
        }
    }
    Ok(pairs)
}

pub(super) fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `modified_after`: RFC 3339, or epoch milliseconds (digits only).
pub(super) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return DateTime::<Utc>::from_timestamp_millis(s.parse().ok()?);
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub(super) fn require_json(headers: &HeaderMap) -> Result<(), Reply> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    {
        Ok(())
    } else {
        Err(Reply::bad_request(
            "invalid_content_type",
            "The Content-Type must be application/json.",
        ))
    }
}

pub(super) fn parse_body(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, Reply> {
    require_json(headers)?;
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(invalid_json("The request body must be a JSON object.")),
        Err(_) => Err(invalid_json("The request body is not valid JSON.")),
    }
}

pub(super) fn bad_value(key: &str, what: &str) -> Reply {
    Reply::bad_request("invalid_value", &format!("'{key}' {what}."))
}
