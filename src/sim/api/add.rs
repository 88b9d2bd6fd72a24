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
        if let Some(k) = top.keys().find(|k| *k != "users") {
            return extra_key(k);
        }
        let Some(list) = top.get("users") else {
            return missing_key("users");
        };
        let Some(list) = list.as_array() else {
            return bad_value("users", "must be an array of user objects");
        };
        if list.is_empty() {
            return bad_value("users", "must not be empty");
        }
        if list.len() > MAX_ADD {
            return bad_value("users", &format!("may hold at most {MAX_ADD} users"));
        }
        let mut objs = Vec::with_capacity(list.len());
        for u in list {
            let Some(o) = u.as_object() else {
                return bad_value("users", "must be an array of user objects");
            };
            if let Err(ChangeError::ExtraKey(k)) = Org::check_keys(o, &[]) {
                return extra_key(&k);
            }
            objs.push(o);
        }
        // Whole-request checks first: mandatory email and value types.
        let mut emails = Vec::with_capacity(objs.len());
        for o in &objs {
            match o.get("email_id") {
                None => return missing_key("email_id"),
                Some(Value::String(e)) if org::valid_email(e) => emails.push(e.clone()),
                Some(_) => return bad_value("email_id", "must be a valid email address"),
            }
            match self.org.parse_changes(o, false) {
                Err(ChangeError::BadValue(k, m)) => return bad_value(&k, &m),
                Err(ChangeError::ExtraKey(k)) => return extra_key(&k),
                Ok(_) | Err(ChangeError::BadReference(_)) => {}
            }
        }
        let mut success = Vec::new();
        let mut failed = Map::new();
        for (o, email) in objs.iter().zip(emails) {
            let lower = email.to_ascii_lowercase();
            let code = if lower.ends_with("@elsewhere.example") {
                Some("zohoaccount.conflict")
            } else if lower.contains("blocked") {
                Some("email.invitation.blocked")
            } else if let Some(id) = self.org.id_by_email(&lower) {
                // Any existing member (active, inactive or imported) is
                // "already in the org"; only a pending invitation differs.
                match self.org.users.get(&id).map(|u| u.status) {
                    Some(Status::Pending) => Some("email.pendinguser"),
                    _ => Some("email.activeuser"),
                }
            } else {
                None
            };
            if let Some(code) = code {
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
}
