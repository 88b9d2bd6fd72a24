//! Validation and handlers of the six API endpoints, and listing cursors.

use std::cmp::Reverse;
use std::ops::Bound;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Duration as CDuration, Utc};
use http::{header, HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::org::{self, ChangeError, Fields, Org, Status, User};
use super::{chrono_dur, hex, Reply, State, UpdateBody};

/// Default page size of `GET /users`.
pub(crate) const DEFAULT_LIMIT: usize = 50;
pub(crate) const MAX_LIMIT: usize = 100;
/// Most users one POST may add.
pub(crate) const MAX_ADD: usize = 100;
/// Cursor lifetime before scaling.
const CURSOR_TTL: std::time::Duration = std::time::Duration::from_secs(600);
/// How far back `modified_after` can see.
const MODIFIED_HORIZON_DAYS: i64 = 7;

const TECHNICAL_ERROR: &str = "Sorry, we couldn't process your request due to a technical error.";

fn invalid_param(message: &str) -> Reply {
    Reply::bad_request("invalid_param", message)
}

fn invalid_json(message: &str) -> Reply {
    Reply::bad_request("invalid_json", message)
}

fn extra_key(key: &str) -> Reply {
    Reply::bad_request(
        "extra_key_found",
        &format!("'{key}' is an extra key in the JSON Object."),
    )
}

fn missing_key(key: &str) -> Reply {
    Reply::bad_request(
        "missing_key",
        &format!("'{key}' is missing in the JSON Object."),
    )
}

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

fn user_not_found() -> Reply {
    Reply::error(
        StatusCode::NOT_FOUND,
        "user_not_found",
        "The requested user does not exist.",
    )
}

/// Parse a query string, allowing only `allowed` keys, each at most once.
fn parse_query(query: &str, allowed: &[&str]) -> Result<Vec<(String, String)>, Reply> {
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

fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `modified_after`: RFC 3339, or epoch milliseconds (digits only).
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return DateTime::<Utc>::from_timestamp_millis(s.parse().ok()?);
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn require_json(headers: &HeaderMap) -> Result<(), Reply> {
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

fn parse_body(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, Reply> {
    require_json(headers)?;
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(invalid_json("The request body must be a JSON object.")),
        Err(_) => Err(invalid_json("The request body is not valid JSON.")),
    }
}

fn bad_value(key: &str, what: &str) -> Reply {
    Reply::bad_request("invalid_value", &format!("'{key}' {what}."))
}

/// The filter a listing cursor is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ListFilter {
    status: Option<Status>,
    paid: Option<bool>,
    by_usage: bool,
    modified_after: Option<DateTime<Utc>>,
}

impl ListFilter {
    fn fingerprint(&self) -> String {
        let text = format!(
            "status={};plan={:?};usage={};modified_after={:?}",
            self.status.map_or("", Status::as_str),
            self.paid,
            self.by_usage,
            self.modified_after.map(|t| t.timestamp_millis()),
        );
        hex(&Sha256::digest(text.as_bytes())[..8])
    }
}

#[derive(Serialize, Deserialize)]
struct CursorPayload {
    /// Filter fingerprint.
    f: String,
    /// Last id returned.
    i: u64,
    /// Its usage score (`sort_by=usage` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    u: Option<u32>,
    /// Issue time, epoch milliseconds.
    t: i64,
    /// Pages served so far in this listing (for the listing faults).
    #[serde(default)]
    n: u32,
}

enum CursorError {
    Invalid,
    Expired,
    Mismatch,
}

impl State {
    fn cursor_mac(&self, payload: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(self.cursor_secret);
        h.update(payload);
        hex(&h.finalize()[..12])
    }

    fn issue_cursor(
        &self,
        filter: &ListFilter,
        last: &User,
        page: u32,
        at: DateTime<Utc>,
    ) -> String {
        let payload = CursorPayload {
            f: filter.fingerprint(),
            i: last.id,
            u: filter.by_usage.then_some(last.usage),
            t: at.timestamp_millis(),
            n: page,
        };
        let bytes = serde_json::to_vec(&payload).unwrap_or_default();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&bytes),
            self.cursor_mac(&bytes)
        )
    }

    fn open_cursor(
        &self,
        token: &str,
        filter: &ListFilter,
        at: DateTime<Utc>,
    ) -> Result<CursorPayload, CursorError> {
        let (b64, mac) = token.split_once('.').ok_or(CursorError::Invalid)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|_| CursorError::Invalid)?;
        if self.cursor_mac(&bytes) != mac {
            return Err(CursorError::Invalid);
        }
        let p: CursorPayload = serde_json::from_slice(&bytes).map_err(|_| CursorError::Invalid)?;
        if p.f != filter.fingerprint() || p.u.is_some() != filter.by_usage {
            return Err(CursorError::Mismatch);
        }
        let issued = DateTime::<Utc>::from_timestamp_millis(p.t).ok_or(CursorError::Invalid)?;
        if at - issued >= chrono_dur(CURSOR_TTL.mul_f64(self.scale)) {
            return Err(CursorError::Expired);
        }
        Ok(p)
    }

    /// `GET /users`
    pub(super) fn list_users(&mut self, query: &str, at: DateTime<Utc>) -> Reply {
        let pairs = match parse_query(
            query,
            &[
                "status",
                "plan_type",
                "fields",
                "limit",
                "sort_by",
                "modified_after",
                "next_token",
            ],
        ) {
            Ok(p) => p,
            Err(r) => return r,
        };
        // Without `status`, users of every status are listed (the spec does
        // not say; listing all is what a mirror needs and the stricter choice
        // for a client that must then filter).
        let status = match get(&pairs, "status") {
            None => None,
            Some(s) => match Status::parse(s) {
                Some(s) => Some(s),
                None => return invalid_param(&format!("'{s}' is not a valid value of 'status'.")),
            },
        };
        let paid = match get(&pairs, "plan_type") {
            None => None,
            Some("paid") => Some(true),
            Some("free") => Some(false),
            Some(s) => {
                return invalid_param(&format!("'{s}' is not a valid value of 'plan_type'."))
            }
        };
        let fields = match get(&pairs, "fields") {
            None => Fields::default(),
            Some(s) => match Fields::parse(s) {
                Ok(f) => f,
                Err(m) => return invalid_param(&m),
            },
        };
        let limit = match get(&pairs, "limit") {
            None => DEFAULT_LIMIT,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return invalid_param(&format!(
                        "'limit' must be an integer from 1 to {MAX_LIMIT}."
                    ))
                }
            },
        };
        let by_usage = match get(&pairs, "sort_by") {
            None => false,
            Some("usage") => true,
            Some(s) => return invalid_param(&format!("'{s}' is not a valid value of 'sort_by'.")),
        };
        let modified_after = match get(&pairs, "modified_after") {
            None => None,
            Some(s) => match parse_time(s) {
                Some(t) => Some(t),
                None => {
                    return invalid_param(
                        "'modified_after' must be an RFC 3339 date-time or epoch milliseconds.",
                    )
                }
            },
        };
        let filter = ListFilter {
            status,
            paid,
            by_usage,
            modified_after,
        };
        let after = match get(&pairs, "next_token") {
            None => None,
            Some(token) => match self.open_cursor(token, &filter, at) {
                Ok(p) => Some(p),
                Err(CursorError::Invalid) => {
                    return Reply::bad_request("invalid_next_token", "The next_token is invalid.")
                }
                Err(CursorError::Expired) => {
                    return Reply::bad_request(
                        "invalid_next_token",
                        "The next_token has expired. Start the listing again without next_token.",
                    )
                }
                Err(CursorError::Mismatch) => {
                    return Reply::bad_request(
                        "invalid_next_token",
                        "The next_token was issued for different parameters (status, plan_type, sort_by, modified_after).",
                    )
                }
            },
        };
        // Only modifications within the last 7 days are visible.
        let horizon = at - CDuration::days(MODIFIED_HORIZON_DAYS);
        let cutoff = modified_after.map(|m| m.max(horizon));
        let matches = |u: &User| {
            status.is_none_or(|s| u.status == s)
                && paid.is_none_or(|p| u.paid == p)
                && cutoff.is_none_or(|c| u.tracked_modified.is_some_and(|t| t > c))
        };
        let org = &self.org;
        let users: Box<dyn Iterator<Item = &User>> = if by_usage {
            let start = match &after {
                Some(p) => Bound::Excluded((Reverse(p.u.unwrap_or(0)), p.i)),
                None => Bound::Unbounded,
            };
            Box::new(
                org.by_usage
                    .range((start, Bound::Unbounded))
                    .filter_map(|(_, id)| org.users.get(id)),
            )
        } else {
            let start = match &after {
                Some(p) => Bound::Excluded(p.i),
                None => Bound::Unbounded,
            };
            Box::new(org.users.range((start, Bound::Unbounded)).map(|(_, u)| u))
        };
        let mut page: Vec<&User> = Vec::with_capacity(limit);
        let mut has_more = false;
        for u in users.filter(|u| matches(u)) {
            if page.len() == limit {
                has_more = true;
                break;
            }
            page.push(u);
        }
        // Serialised from borrowed views, no `Value` per user. Fields in the
        // order `serde_json::Map` writes keys, as for [`org::UserView`].
        #[derive(Serialize)]
        struct Page<'a> {
            data: Vec<org::UserView<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            has_more: Option<bool>,
            #[serde(skip_serializing_if = "Option::is_none")]
            next_token: Option<String>,
        }
        // This page's number within the listing (1 = the first page).
        let number = after.as_ref().map_or(0, |p| p.n) + 1;
        // Listing faults: the page says nothing about more (no has_more,
        // no next_token), as a listing that just stops would.
        let cut = self.faults.list_end_early_at_page == Some(number)
            || self.faults.list_empty_page_at == Some(number);
        if cut {
            has_more = false;
        }
        if self.faults.list_empty_page_at == Some(number) {
            page.clear();
        }
        let next_token = page
            .last()
            .filter(|_| has_more)
            .map(|last| self.issue_cursor(&filter, last, number, at));
        Reply::ok(&Page {
            data: page.iter().map(|u| org.view(u, fields)).collect(),
            has_more: (!cut).then_some(has_more),
            next_token,
        })
    }

    fn find_user(&self, id: &str) -> Option<&User> {
        self.org.users.get(&id.parse::<u64>().ok()?)
    }

    /// `GET /users/{id}`
    pub(super) fn get_user(&mut self, id: &str, query: &str) -> Reply {
        let pairs = match parse_query(query, &["fields"]) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let fields = match get(&pairs, "fields") {
            None => Fields::default(),
            Some(s) => match Fields::parse(s) {
                Ok(f) => f,
                Err(m) => return invalid_param(&m),
            },
        };
        match self.find_user(id) {
            Some(u) => Reply::ok(&json!({"data": self.org.render(u, fields)})),
            None => user_not_found(),
        }
    }

    /// `GET /users/{id}/teams`
    pub(super) fn user_teams(&mut self, id: &str, query: &str) -> Reply {
        if let Err(r) = parse_query(query, &[]) {
            return r;
        }
        match self.find_user(id) {
            Some(u) => Reply::ok(&json!({"data": self.org.teams_of(u)})),
            None => user_not_found(),
        }
    }

    /// `GET /users/layout`
    pub(super) fn user_layouts(&mut self, query: &str) -> Reply {
        let pairs = match parse_query(query, &["unique_name"]) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let Some(name) = get(&pairs, "unique_name") else {
            return invalid_param("The parameter 'unique_name' is mandatory.");
        };
        match org::layout(name) {
            Some(l) => Reply::ok(&l),
            None => invalid_param(&format!(
                "'{name}' is not a valid value of 'unique_name' (expected one of {}).",
                org::LAYOUT_NAMES.join(", ")
            )),
        }
    }

    /// `POST /users`
    pub(super) fn add_users(&mut self, headers: &HeaderMap, body: &Bytes) -> Reply {
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

    /// `PUT /users/{id}`: the documented wrapped body `{"users":[{...}]}`
    /// with a mandatory `email_id`, or, only when the simulator is in
    /// [`UpdateBody::Flat`] mode, the flat `{...}` some clients send. Never
    /// both: a client must not pass against the simulator with a shape
    /// Cliq would refuse.
    pub(super) fn update_user(
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
