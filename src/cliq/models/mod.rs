//! Request and response types for the Cliq Users API.
//!
//! Responses are parsed *tolerantly*: every object keeps its raw JSON whole
//! (unknown fields are kept, never rejected), ids and numbers may arrive as
//! JSON numbers or strings and are normalised to `String`, and a missing
//! optional field is simply `None`. Requests are built from typed values that
//! can only carry documented keys (an unknown key costs a 400 and a quota slot).
//!
//! * [`user`]: the one reader of a user object (the pull, the client and
//!   reconcile all read users through it).
//! * [`page`]: pages of `GET /users`, typed and raw.
//! * [`params`]: listing parameters and request-shaping config enums.
//! * [`fields`]: add and update bodies.
//! * [`batch`]: add and update outcomes.
//! * [`team`], [`layout`]: teams of a user, user field layouts.

use serde_json::{Map, Value};

pub mod batch;
pub mod fields;
pub mod layout;
pub mod page;
pub mod params;
pub mod team;
pub mod user;

pub use batch::BatchResult;
pub use fields::{UnknownUserField, UserFields};
pub use layout::{Layout, LayoutField, LayoutSection};
pub use page::{RawPageError, RawUsersPage, UsersPage};
pub use params::{
    Fields, ListUsersParams, ModifiedAfterFormat, PlanType, UpdateBodyShape, UserField, UserStatus,
};
pub use team::Team;
pub use user::{NamedRef, User};

// ---------------------------------------------------------------------------
// Tolerant scalar extraction
// ---------------------------------------------------------------------------

/// A string-ish JSON value as `String`: strings (non-empty after trim),
/// numbers (`631830849` → `"631830849"`), booleans. `null`, objects, arrays
/// and empty strings are `None`.
pub(crate) fn json_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn json_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn json_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn get_str(m: &Map<String, Value>, key: &str) -> Option<String> {
    m.get(key).and_then(json_string)
}

fn first_str(m: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| get_str(m, k))
}

/// Unwrap the `{"data": …}` envelope if present.
pub(crate) fn unwrap_data(v: &Value) -> &Value {
    match v.get("data") {
        Some(d) if !d.is_null() => d,
        _ => v,
    }
}

/// Why a response could not be read as the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShapeError(pub String);

fn shape(msg: impl Into<String>) -> ShapeError {
    ShapeError(msg.into())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
fn list_of<T>(
    v: &Value,
    what: &str,
    f: impl Fn(Value) -> Result<T, ShapeError>,
) -> Result<Vec<T>, ShapeError> {
    let d = match v.get("data") {
        Some(Value::Null) => return Ok(Vec::new()),
        Some(d) => d,
        None => v,
    };
    match d {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, it)| f(it).map_err(|e| shape(format!("{what}: item {i}: {e}"))))
            .collect(),
        other => Err(shape(format!(
            "{what}: expected an array, got {}",
            type_name(other)
        ))),
    }
}
