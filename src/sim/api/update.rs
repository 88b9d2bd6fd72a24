//! `PUT /users/{id}`: the one body shape the simulator accepts, and the
//! change it applies.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderMap, StatusCode};
use serde_json::{json, Map, Value};

use super::validate::{bad_value, extra_key, missing_key, parse_body};
use crate::sim::org::{ChangeError, Org};
use crate::sim::{Reply, State, UpdateBody};

const TECHNICAL_ERROR: &str = "Sorry, we couldn't process your request due to a technical error.";

/// The one user object of a wrapped body `{"users": [{...}]}`.
fn unwrap_single_user(mut top: Map<String, Value>) -> Result<Map<String, Value>, Reply> {
    if let Some(k) = top.keys().find(|k| *k != "users") {
        return Err(extra_key(k));
    }
    match top.remove("users") {
        None => Err(missing_key("users")),
        Some(Value::Array(list)) => match <[Value; 1]>::try_from(list) {
            Ok([Value::Object(o)]) => Ok(o),
            _ => Err(bad_value(
                "users",
                "must be an array of exactly one user object",
            )),
        },
        Some(_) => Err(bad_value(
            "users",
            "must be an array of exactly one user object",
        )),
    }
}

impl State {
    /// `PUT /users/{id}`: the documented wrapped body `{"users":[{...}]}`
    /// with a mandatory `email_id`, or, only when the simulator is in
    /// [`UpdateBody::Flat`] mode, the flat `{...}` some clients send. Never
    /// both: a client must not pass against the simulator with a shape
    /// Cliq would refuse.
    pub(in crate::sim) fn update_user(
        &mut self,
        id: &str,
        headers: &HeaderMap,
        body: &Bytes,
        at: DateTime<Utc>,
    ) -> Reply {
        let top = match parse_body(headers, body) {
            Ok(m) => m,
            Err(r) => return r,
        };
        let obj = match self.cfg.update_body {
            UpdateBody::Wrapped => match unwrap_single_user(top) {
                Ok(o) => o,
                Err(r) => return r,
            },
            UpdateBody::Flat => top,
        };
        if let Err(ChangeError::ExtraKey(k)) = Org::check_keys(&obj, &[]) {
            return extra_key(&k);
        }
        if self.cfg.update_body == UpdateBody::Wrapped && !obj.contains_key("email_id") {
            // Documented as mandatory; Cliq refuses the body without it.
            return missing_key("email_id");
        }
        let Some(user) = self.find_user(id) else {
            return Reply::bad_request(
                "operation_not_allowed",
                "The operation is not allowed for this user.",
            );
        };
        let (uid, email) = (user.id, user.email.clone());
        match obj.get("email_id") {
            None => {}
            Some(Value::String(e)) if e.eq_ignore_ascii_case(&email) => {}
            Some(_) => {
                return bad_value("email_id", "does not match the email address of the user")
            }
        }
        if obj.keys().all(|k| k == "email_id") {
            return Reply::bad_request("invalid_value", "There is nothing to update.");
        }
        let changes = match self.org.parse_changes(&obj, false) {
            Ok(c) => c,
            Err(ChangeError::ExtraKey(k)) => return extra_key(&k),
            Err(ChangeError::BadValue(k, m)) => return bad_value(&k, &m),
            Err(ChangeError::BadReference(field)) => {
                tracing::debug!(field, "sim: PUT with an unknown reference");
                return Reply::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    TECHNICAL_ERROR,
                );
            }
        };
        self.org.apply(uid, changes, at);
        Reply::ok(&json!({"data": {"success_users": [email], "failed_users": {}}}))
    }
}
