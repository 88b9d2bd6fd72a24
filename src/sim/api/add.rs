//! `POST /users`: inviting up to [`MAX_ADD`] users in one request.

use bytes::Bytes;
use http::HeaderMap;
use serde_json::{json, Map, Value};

use super::validate::{bad_value, extra_key, missing_key, parse_body};
use super::MAX_ADD;
use crate::sim::org::{self, ChangeError, Org, Status};
use crate::sim::{Reply, State};

impl State {
    /// `POST /users`
    pub(in crate::sim) fn add_users(&mut self, headers: &HeaderMap, body: &Bytes) -> Reply {
        let top = match parse_body(headers, body) {
            Ok(m) => m,
            Err(r) => return r,
        };
        let objs = match user_objects(&top) {
            Ok(o) => o,
            Err(r) => return r,
        };
        let emails = match self.checked_emails(&objs) {
            Ok(e) => e,
            Err(r) => return r,
        };
        let mut success = Vec::new();
        let mut failed = Map::new();
        for (o, email) in objs.iter().zip(emails) {
            if let Some(code) = self.refusal_code(&email.to_ascii_lowercase()) {
                failed.insert(email, json!(code));
                continue;
            }
            match self.org.parse_changes(o, false) {
                Ok(changes) => {
                    self.org.insert(&email, Status::Pending, changes);
                    success.push(json!(email));
                }
                Err(_) => {
                    failed.insert(email, json!("operation_failed"));
                }
            }
        }
        Reply::ok(&json!({"data": {"success_users": success, "failed_users": failed}}))
    }

    /// Whole-request checks first: mandatory email and value types. The
    /// emails as given, one per user object.
    fn checked_emails(&self, objs: &[&Map<String, Value>]) -> Result<Vec<String>, Reply> {
        let mut emails = Vec::with_capacity(objs.len());
        for o in objs {
            match o.get("email_id") {
                None => return Err(missing_key("email_id")),
                Some(Value::String(e)) if org::valid_email(e) => emails.push(e.clone()),
                Some(_) => return Err(bad_value("email_id", "must be a valid email address")),
            }
            match self.org.parse_changes(o, false) {
                Err(ChangeError::BadValue(k, m)) => return Err(bad_value(&k, &m)),
                Err(ChangeError::ExtraKey(k)) => return Err(extra_key(&k)),
                Ok(_) | Err(ChangeError::BadReference(_)) => {}
            }
        }
        Ok(emails)
    }

    /// Why Cliq refuses to invite `lower` (a lower-cased email), if it does.
    fn refusal_code(&self, lower: &str) -> Option<&'static str> {
        if lower.ends_with("@elsewhere.example") {
            Some("zohoaccount.conflict")
        } else if lower.contains("blocked") {
            Some("email.invitation.blocked")
        } else if let Some(id) = self.org.id_by_email(lower) {
            // Any existing member (active, inactive or imported) is
            // "already in the org"; only a pending invitation differs.
            match self.org.users.get(&id).map(|u| u.status) {
                Some(Status::Pending) => Some("email.pendinguser"),
                _ => Some("email.activeuser"),
            }
        } else {
            None
        }
    }
}

/// The user objects of `{"users": [...]}`: 1 to [`MAX_ADD`] objects, none
/// with a key Cliq does not know.
fn user_objects(top: &Map<String, Value>) -> Result<Vec<&Map<String, Value>>, Reply> {
    if let Some(k) = top.keys().find(|k| *k != "users") {
        return Err(extra_key(k));
    }
    let Some(list) = top.get("users") else {
        return Err(missing_key("users"));
    };
    let Some(list) = list.as_array() else {
        return Err(bad_value("users", "must be an array of user objects"));
    };
    if list.is_empty() {
        return Err(bad_value("users", "must not be empty"));
    }
    if list.len() > MAX_ADD {
        return Err(bad_value(
            "users",
            &format!("may hold at most {MAX_ADD} users"),
        ));
    }
    let mut objs = Vec::with_capacity(list.len());
    for u in list {
        let Some(o) = u.as_object() else {
            return Err(bad_value("users", "must be an array of user objects"));
        };
        if let Err(ChangeError::ExtraKey(k)) = Org::check_keys(o, &[]) {
            return Err(extra_key(&k));
        }
        objs.push(o);
    }
    Ok(objs)
}
