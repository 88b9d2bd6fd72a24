//! Request and response types for the Cliq Users API.
//!
//! Responses are parsed *tolerantly*: every object keeps its raw JSON whole
//! (unknown fields are kept, never rejected), ids and numbers may arrive as
//! JSON numbers or strings and are normalised to `String`, and a missing
//! optional field is simply `None`. Requests are built from typed values that
//! can only carry documented keys (an unknown key costs a 400 and a quota slot).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

// ---------------------------------------------------------------------------
// Tolerant scalar extraction
// ---------------------------------------------------------------------------

/// A string-ish JSON value as `String`: strings (non-empty after trim),
/// numbers (`631830849` → `"631830849"`), booleans. `null`, objects, arrays
/// and empty strings are `None`.
pub fn json_string(v: &Value) -> Option<String> {
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
pub fn unwrap_data(v: &Value) -> &Value {
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

// ---------------------------------------------------------------------------
// User
// ---------------------------------------------------------------------------

/// A `{name, id}` reference (department, designation, reporting-to).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct NamedRef {
    pub id: Option<String>,
    pub name: Option<String>,
}

impl NamedRef {
    fn from_value(v: &Value) -> Option<NamedRef> {
        match v {
            Value::Object(m) => {
                let r = NamedRef {
                    id: first_str(m, &["id", "zuid", "user_id"]),
                    name: first_str(m, &["name", "display_name"]),
                };
                (r.id.is_some() || r.name.is_some()).then_some(r)
            }
            // Tolerate a bare id.
            other => json_string(other).map(|id| NamedRef {
                id: Some(id),
                name: None,
            }),
        }
    }

    /// Object form under `key`, else flat `{key}_id` / `{key}_name` fields.
    fn lookup(m: &Map<String, Value>, keys: &[&str]) -> Option<NamedRef> {
        for key in keys {
            if let Some(r) = m.get(*key).and_then(NamedRef::from_value) {
                return Some(r);
            }
        }
        for key in keys {
            let r = NamedRef {
                id: get_str(m, &format!("{key}_id")),
                name: get_str(m, &format!("{key}_name")),
            };
            if r.id.is_some() || r.name.is_some() {
                return Some(r);
            }
        }
        None
    }
}

/// A Cliq user: typed accessors for the documented fields plus the raw JSON
/// object, kept whole. Serialises back to exactly `raw`.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// The user object as received (unknown fields included).
    pub raw: Map<String, Value>,
    /// `id`, else `user_id`, else `zuid`.
    pub id: Option<String>,
    pub email_id: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    pub full_name: Option<String>,
    pub name: Option<String>,
    pub status: Option<String>,
    pub employee_id: Option<String>,
    pub mobile: Option<String>,
    pub phone: Option<String>,
    pub extension: Option<String>,
    pub work_location: Option<String>,
    pub timezone: Option<String>,
    pub language: Option<String>,
    pub country: Option<String>,
    pub zuid: Option<String>,
    pub zoid: Option<String>,
    pub organization_id: Option<String>,
    /// `reportingto` (also accepted: `reporting_to`, flat `reporting_to_id`).
    pub reportingto: Option<NamedRef>,
    pub department: Option<NamedRef>,
    pub designation: Option<NamedRef>,
}

impl User {
    /// Build from a JSON object. Anything but an object is a shape error.
    pub fn from_value(v: Value) -> Result<User, ShapeError> {
        match v {
            Value::Object(m) => Ok(User::from_map(m)),
            other => Err(shape(format!(
                "a user must be a JSON object, got {}",
                type_name(&other)
            ))),
        }
    }

    pub fn from_map(raw: Map<String, Value>) -> User {
        let m = &raw;
        User {
            id: first_str(m, &["id", "user_id", "zuid"]),
            email_id: first_str(m, &["email_id", "email"]),
            first_name: get_str(m, "first_name"),
            last_name: get_str(m, "last_name"),
            display_name: get_str(m, "display_name"),
            full_name: get_str(m, "full_name"),
            name: get_str(m, "name"),
            status: get_str(m, "status"),
            employee_id: get_str(m, "employee_id"),
            mobile: get_str(m, "mobile"),
            phone: get_str(m, "phone"),
            extension: get_str(m, "extension"),
            work_location: get_str(m, "work_location"),
            timezone: get_str(m, "timezone"),
            language: get_str(m, "language"),
            country: get_str(m, "country"),
            zuid: get_str(m, "zuid"),
            zoid: get_str(m, "zoid"),
            organization_id: get_str(m, "organization_id"),
            reportingto: NamedRef::lookup(m, &["reportingto", "reporting_to"]),
            department: NamedRef::lookup(m, &["department"]),
            designation: NamedRef::lookup(m, &["designation"]),
            raw,
        }
    }

    /// Any raw field as a normalised string (for custom/undocumented fields).
    pub fn raw_str(&self, key: &str) -> Option<String> {
        get_str(&self.raw, key)
    }

    /// The raw object as a JSON value (for `raw_json`).
    pub fn raw_json(&self) -> Value {
        Value::Object(self.raw.clone())
    }
}

impl<'de> Deserialize<'de> for User {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        User::from_value(v).map_err(serde::de::Error::custom)
    }
}

impl Serialize for User {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

/// One page of `GET /users`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UsersPage {
    pub users: Vec<User>,
    /// The cursor for the next page; `None` on the last page.
    pub next_token: Option<String>,
    /// `false` on the last page (normalised: `has_more` implies `next_token`).
    pub has_more: bool,
    /// The HTTP `Date` of the answer (Cliq's clock, whole seconds); set by
    /// the client, `None` if the header was absent or unparseable.
    pub server_date: Option<DateTime<Utc>>,
}

impl UsersPage {
    /// Parse `{"next_token", "has_more", "data": [users]}` (also tolerated:
    /// `users` instead of `data`, a missing `has_more`, an empty cursor).
    pub fn from_value(v: &Value) -> Result<UsersPage, ShapeError> {
        Self::from_owned(v.clone())
    }

    /// As [`UsersPage::from_value`], taking the body: the user objects move
    /// into the page instead of being copied.
    pub fn from_owned(mut v: Value) -> Result<UsersPage, ShapeError> {
        let token = v.get("next_token").and_then(json_string);
        let has_more_field = v.get("has_more").and_then(json_bool);
        let list = match &mut v {
            Value::Array(items) => std::mem::take(items),
            Value::Object(m) => match (m.get("data"), m.get("users")) {
                (Some(Value::Array(_)), _) => match m.get_mut("data") {
                    Some(Value::Array(items)) => std::mem::take(items),
                    _ => Vec::new(),
                },
                (_, Some(Value::Array(_))) => match m.get_mut("users") {
                    Some(Value::Array(items)) => std::mem::take(items),
                    _ => Vec::new(),
                },
                (None | Some(Value::Null), None | Some(Value::Null)) => Vec::new(),
                (Some(other), _) | (None, Some(other)) => {
                    return Err(shape(format!(
                        "list users: `data` must be an array, got {}",
                        type_name(other)
                    )))
                }
            },
            other => {
                return Err(shape(format!(
                    "list users: expected an object, got {}",
                    type_name(other)
                )))
            }
        };
        let users = list
            .into_iter()
            .enumerate()
            .map(|(i, u)| {
                User::from_value(u).map_err(|e| shape(format!("list users: item {i}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (next_token, has_more) = continuation(token, has_more_field).map_err(shape)?;
        Ok(UsersPage {
            users,
            next_token,
            has_more,
            server_date: None,
        })
    }

    pub fn is_last(&self) -> bool {
        !self.has_more
    }
}

/// Where a listing goes after a page: `(next_token, has_more)`. The spec:
/// "the last page has no next_token (or has_more: false)". So a cursor
/// without `has_more` continues, `has_more: false` ends whatever the
/// cursor, and neither ends. But `has_more: true` without a cursor is a
/// broken page, not the end: taken as the end, an incomplete listing would
/// look complete and mark everyone after it removed.
fn continuation(
    token: Option<String>,
    has_more: Option<bool>,
) -> Result<(Option<String>, bool), String> {
    match (token, has_more) {
        (None, Some(true)) => Err(
            "list users: the page says has_more but carries no next_token; \
             the listing cannot continue and is not complete"
                .into(),
        ),
        (Some(t), None | Some(true)) => Ok((Some(t), true)),
        (_, _) => Ok((None, false)),
    }
}

/// One page of `GET /users` with each user left as the JSON text received:
/// what a pull stores, without building a `Value` per user (the shape
/// tolerance is that of [`UsersPage`]).
#[derive(Debug, Default)]
pub struct RawUsersPage {
    pub users: Vec<Box<RawValue>>,
    pub next_token: Option<String>,
    pub has_more: bool,
    /// As [`UsersPage::server_date`].
    pub server_date: Option<DateTime<Utc>>,
}

impl RawUsersPage {
    /// Parse a body. A `serde_json` *data* error means the body has another
    /// shape; any other error that it is damaged.
    pub fn from_slice(body: &[u8]) -> Result<RawUsersPage, RawPageError> {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(default)]
            data: Option<Vec<Box<RawValue>>>,
            #[serde(default)]
            users: Option<Vec<Box<RawValue>>>,
            #[serde(default)]
            next_token: Option<Value>,
            #[serde(default)]
            has_more: Option<Value>,
        }
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        let (list, token, has_more_field) = match first {
            Some(b'[') => (
                serde_json::from_slice::<Vec<Box<RawValue>>>(body)?,
                None,
                None,
            ),
            Some(b'{') => {
                let w: Wire = serde_json::from_slice(body)?;
                (
                    w.data.or(w.users).unwrap_or_default(),
                    w.next_token.as_ref().and_then(json_string),
                    w.has_more.as_ref().and_then(json_bool),
                )
            }
            _ => {
                // Not an object or array: let serde_json say what it is.
                let v: Value = serde_json::from_slice(body)?;
                return Err(RawPageError::Shape(format!(
                    "list users: expected an object, got {}",
                    type_name(&v)
                )));
            }
        };
        if let Some(i) = list.iter().position(|u| !u.get().starts_with('{')) {
            return Err(RawPageError::Shape(format!(
                "list users: item {i}: a user must be a JSON object"
            )));
        }
        let (next_token, has_more) =
            continuation(token, has_more_field).map_err(RawPageError::Shape)?;
        Ok(RawUsersPage {
            users: list,
            next_token,
            has_more,
            server_date: None,
        })
    }

    pub fn is_last(&self) -> bool {
        !self.has_more
    }
}

/// Why a body is not a [`RawUsersPage`].
#[derive(Debug)]
pub enum RawPageError {
    /// Valid JSON of another shape.
    Shape(String),
    /// Not valid JSON (e.g. cut short).
    Json(serde_json::Error),
}

impl From<serde_json::Error> for RawPageError {
    fn from(e: serde_json::Error) -> Self {
        match e.classify() {
            serde_json::error::Category::Data => RawPageError::Shape(e.to_string()),
            _ => RawPageError::Json(e),
        }
    }
}

// ---------------------------------------------------------------------------
// Listing parameters
// ---------------------------------------------------------------------------

macro_rules! str_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $s)] $var),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $s),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                let t = s.trim().to_ascii_lowercase();
                $name::ALL.iter().copied().find(|v| v.as_str() == t).ok_or_else(|| {
                    let all: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                    format!(concat!("unknown ", stringify!($name), " '{}' (expected one of: {})"), s, all.join(", "))
                })
            }
        }
    };
}

str_enum!(
    /// `status` filter of `GET /users`.
    UserStatus {
        Active => "active",
        Inactive => "inactive",
        Pending => "pending",
        ImportedActive => "imported_active",
        ImportedInactive => "imported_inactive",
    }
);

str_enum!(
    /// `plan_type` filter of `GET /users`.
    PlanType {
        Paid => "paid",
        Free => "free",
    }
);

str_enum!(
    /// One value of the `fields` query parameter.
    UserField {
        DisplayName => "display_name",
        Mobile => "mobile",
        Department => "department",
        Designation => "designation",
    }
);

str_enum!(
    /// How `modified_after` is written (`[cliq] modified_after_format`).
    /// The documentation says "date-time" (RFC 3339, the default); some
    /// clients send epoch milliseconds.
    #[derive(Default)]
    ModifiedAfterFormat {
        #[default]
        Rfc3339 => "rfc3339",
        EpochMillis => "epoch_millis",
    }
);

str_enum!(
    /// The body shape of `PUT /users/{id}` (`[cliq] update_body`).
    /// `wrapped` (documented, default): `{"users": [{email_id, …changed}]}`;
    /// `flat`: the changed-fields object alone.
    #[derive(Default)]
    UpdateBodyShape {
        #[default]
        Wrapped => "wrapped",
        Flat => "flat",
    }
);

impl ModifiedAfterFormat {
    pub fn format(self, t: DateTime<Utc>) -> String {
        match self {
            ModifiedAfterFormat::Rfc3339 => t.to_rfc3339_opts(SecondsFormat::Secs, true),
            ModifiedAfterFormat::EpochMillis => t.timestamp_millis().to_string(),
        }
    }
}

/// The `fields` query parameter: `all`, or a list of the documented names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fields {
    All,
    List(Vec<UserField>),
}

impl Fields {
    /// The query value (`all` or `display_name,mobile`); `None` for an empty list.
    pub fn to_query_value(&self) -> Option<String> {
        match self {
            Fields::All => Some("all".into()),
            Fields::List(l) if l.is_empty() => None,
            Fields::List(l) => {
                let mut seen: Vec<&str> = Vec::new();
                for f in l {
                    if !seen.contains(&f.as_str()) {
                        seen.push(f.as_str());
                    }
                }
                Some(seen.join(","))
            }
        }
    }
}

/// Parameters of `GET /users` (the cursor is passed separately).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListUsersParams {
    pub status: Option<UserStatus>,
    pub plan_type: Option<PlanType>,
    pub fields: Option<Fields>,
    /// 1..=100; the client fills in its configured page size when `None`.
    pub limit: Option<u32>,
    /// `sort_by=usage`.
    pub sort_by_usage: bool,
    pub modified_after: Option<DateTime<Utc>>,
}

impl ListUsersParams {
    /// Every field (`fields=all`), the form a mirror wants.
    pub fn all_fields() -> Self {
        ListUsersParams {
            fields: Some(Fields::All),
            ..Default::default()
        }
    }

    /// The query pairs, in a stable order. Only documented parameters are
    /// ever produced (any other one is a 400 `extra_param_found`).
    pub fn to_query(&self, fmt: ModifiedAfterFormat) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(s) = self.status {
            q.push(("status", s.as_str().to_string()));
        }
        if let Some(p) = self.plan_type {
            q.push(("plan_type", p.as_str().to_string()));
        }
        if let Some(f) = self.fields.as_ref().and_then(Fields::to_query_value) {
            q.push(("fields", f));
        }
        if let Some(l) = self.limit {
            q.push(("limit", l.clamp(1, 100).to_string()));
        }
        if self.sort_by_usage {
            q.push(("sort_by", "usage".to_string()));
        }
        if let Some(t) = self.modified_after {
            q.push(("modified_after", fmt.format(t)));
        }
        q
    }
}

// ---------------------------------------------------------------------------
// Add / update bodies
// ---------------------------------------------------------------------------

/// The user fields of an add or update body. Only documented keys exist as
/// fields; custom user fields go in `custom` (keyed by their unique name).
/// `None` fields are not serialised (never sent as `null`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UserFields {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub designation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reporting_to_zuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub employee_id: Option<String>,
    /// Base64 profile picture.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_ids: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_ids: Option<Vec<String>>,
    /// Custom user fields, by unique name.
    #[serde(flatten, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom: BTreeMap<String, Value>,
}

/// `UserFields::set` was given a key that is not a documented string field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a Cliq user field (expected one of: {list})", list = UserFields::STRING_KEYS.join(", "))]
pub struct UnknownUserField(pub String);

impl UserFields {
    /// The documented string-valued keys, in body order.
    pub const STRING_KEYS: [&'static str; 16] = [
        "email_id",
        "first_name",
        "last_name",
        "display_name",
        "phone",
        "mobile",
        "timezone",
        "language",
        "country",
        "designation_id",
        "department_id",
        "reporting_to_zuid",
        "work_location",
        "extension",
        "employee_id",
        "image_data",
    ];

    /// Keys whose values refer to other Cliq objects (a reference Cliq does
    /// not know comes back as a generic "technical error").
    pub const REFERENCE_KEYS: [&'static str; 3] =
        ["department_id", "designation_id", "reporting_to_zuid"];

    pub fn new() -> Self {
        Self::default()
    }

    /// Fields for adding `email` (the only required key).
    pub fn for_email(email: impl Into<String>) -> Self {
        UserFields {
            email_id: Some(email.into()),
            ..Default::default()
        }
    }

    fn slot_mut(&mut self, key: &str) -> Option<&mut Option<String>> {
        Some(match key {
            "email_id" => &mut self.email_id,
            "first_name" => &mut self.first_name,
            "last_name" => &mut self.last_name,
            "display_name" => &mut self.display_name,
            "phone" => &mut self.phone,
            "mobile" => &mut self.mobile,
            "timezone" => &mut self.timezone,
            "language" => &mut self.language,
            "country" => &mut self.country,
            "designation_id" => &mut self.designation_id,
            "department_id" => &mut self.department_id,
            "reporting_to_zuid" => &mut self.reporting_to_zuid,
            "work_location" => &mut self.work_location,
            "extension" => &mut self.extension,
            "employee_id" => &mut self.employee_id,
            "image_data" => &mut self.image_data,
            _ => return None,
        })
    }

    /// Set a documented string field by its API name.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> Result<(), UnknownUserField> {
        match self.slot_mut(key) {
            Some(slot) => {
                *slot = Some(value.into());
                Ok(())
            }
            None => Err(UnknownUserField(key.to_string())),
        }
    }

    /// Builder form of [`UserFields::set`].
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Result<Self, UnknownUserField> {
        self.set(key, value)?;
        Ok(self)
    }

    /// A documented string field by its API name.
    pub fn get(&self, key: &str) -> Option<&str> {
        let v = match key {
            "email_id" => &self.email_id,
            "first_name" => &self.first_name,
            "last_name" => &self.last_name,
            "display_name" => &self.display_name,
            "phone" => &self.phone,
            "mobile" => &self.mobile,
            "timezone" => &self.timezone,
            "language" => &self.language,
            "country" => &self.country,
            "designation_id" => &self.designation_id,
            "department_id" => &self.department_id,
            "reporting_to_zuid" => &self.reporting_to_zuid,
            "work_location" => &self.work_location,
            "extension" => &self.extension,
            "employee_id" => &self.employee_id,
            "image_data" => &self.image_data,
            _ => return None,
        };
        v.as_deref()
    }

    /// The keys that will be sent (documented ones in body order, then lists, then custom).
    pub fn keys(&self) -> Vec<String> {
        let mut out: Vec<String> = Self::STRING_KEYS
            .iter()
            .filter(|k| self.get(k).is_some())
            .map(|k| k.to_string())
            .collect();
        if self.channel_ids.is_some() {
            out.push("channel_ids".into());
        }
        if self.team_ids.is_some() {
            out.push("team_ids".into());
        }
        out.extend(self.custom.keys().cloned());
        out
    }

    pub fn is_empty(&self) -> bool {
        self.keys().is_empty()
    }

    /// The JSON object that is sent (no nulls).
    pub fn to_json(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }

    /// The body of `PUT /users/{id}` in the configured shape.
    /// `wrapped`: `{"users": [{"email_id": email, …fields}]}`;
    /// `flat`: the fields alone (with `email_id` only if it is set in `self`).
    pub fn update_body(&self, email: &str, shape: UpdateBodyShape) -> Value {
        let mut obj = self.to_json();
        match shape {
            UpdateBodyShape::Wrapped => {
                let mut user = Map::new();
                user.insert("email_id".into(), Value::String(email.to_string()));
                obj.remove("email_id");
                user.extend(obj);
                serde_json::json!({ "users": [Value::Object(user)] })
            }
            UpdateBodyShape::Flat => Value::Object(obj),
        }
    }

    /// The body of `POST /users`.
    pub fn add_body(users: &[UserFields]) -> Value {
        let list: Vec<Value> = users.iter().map(|u| Value::Object(u.to_json())).collect();
        serde_json::json!({ "users": list })
    }
}

// ---------------------------------------------------------------------------
// Batch results (add / update)
// ---------------------------------------------------------------------------

/// The outcome of an add or update: which emails succeeded, which failed with
/// which per-email code (`zohoaccount.conflict`, `email.activeuser`, …).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct BatchResult {
    pub success_users: Vec<String>,
    /// `(email, code)`; the code is `"unknown"` when Cliq gave none.
    pub failed_users: Vec<(String, String)>,
}

impl BatchResult {
    /// Parse `{"data": {"success_users": [...], "failed_users": …}}` (or the
    /// inner object alone). `failed_users` may be a map email → code (code a
    /// string or `{code, message}`), an array of `{email_id|email, code|error}`
    /// objects, or an array of email strings.
    pub fn from_value(v: &Value) -> Result<BatchResult, ShapeError> {
        let d = unwrap_data(v);
        if !(d.is_object() || d.is_null()) {
            return Err(shape(format!(
                "batch result: expected an object, got {}",
                type_name(d)
            )));
        }
        let mut out = BatchResult::default();
        match d.get("success_users") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for it in items {
                    if let Some(e) = email_of(it) {
                        out.success_users.push(e);
                    }
                }
            }
            Some(Value::Object(m)) => out.success_users.extend(m.keys().cloned()),
            Some(other) => {
                if let Some(e) = json_string(other) {
                    out.success_users.push(e);
                }
            }
        }
        match d.get("failed_users") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (email, code) in m {
                    out.failed_users.push((email.clone(), code_of(code)));
                }
            }
            Some(Value::Array(items)) => {
                for it in items {
                    match it {
                        Value::Object(m) => {
                            let email = first_str(m, &["email_id", "email", "emailid", "user"])
                                .unwrap_or_default();
                            let code = ["code", "error", "error_code", "reason", "message"]
                                .iter()
                                .find_map(|k| m.get(*k).map(code_of))
                                .unwrap_or_else(|| "unknown".into());
                            out.failed_users.push((email, code));
                        }
                        other => {
                            if let Some(e) = json_string(other) {
                                out.failed_users.push((e, "unknown".into()));
                            }
                        }
                    }
                }
            }
            Some(other) => {
                if let Some(e) = json_string(other) {
                    out.failed_users.push((e, "unknown".into()));
                }
            }
        }
        Ok(out)
    }

    /// Did the response mention `success_users` or `failed_users` at all?
    pub(crate) fn mentions_outcome(v: &Value) -> bool {
        let d = unwrap_data(v);
        d.get("success_users").is_some() || d.get("failed_users").is_some()
    }

    pub fn is_success(&self, email: &str) -> bool {
        self.success_users
            .iter()
            .any(|e| e.eq_ignore_ascii_case(email))
    }

    pub fn failure_code(&self, email: &str) -> Option<&str> {
        self.failed_users
            .iter()
            .find(|(e, _)| e.eq_ignore_ascii_case(email))
            .map(|(_, c)| c.as_str())
    }
}

fn email_of(v: &Value) -> Option<String> {
    match v {
        Value::Object(m) => first_str(m, &["email_id", "email"]),
        other => json_string(other),
    }
}

fn code_of(v: &Value) -> String {
    match v {
        Value::Object(m) => first_str(m, &["code", "error", "error_code", "message"])
            .unwrap_or_else(|| "unknown".into()),
        other => json_string(other).unwrap_or_else(|| "unknown".into()),
    }
}

// ---------------------------------------------------------------------------
// Teams and layouts
// ---------------------------------------------------------------------------

/// One entry of `GET /users/{id}/teams`.
#[derive(Debug, Clone, PartialEq)]
pub struct Team {
    pub raw: Map<String, Value>,
    pub team_id: Option<String>,
    pub name: Option<String>,
    pub organization_id: Option<String>,
    /// As sent (epoch millis or a date string), normalised to text.
    pub creation_time: Option<String>,
    pub description: Option<String>,
    pub is_active: Option<bool>,
    pub is_moderator: Option<bool>,
    pub joined: Option<bool>,
    pub participant_count: Option<i64>,
}

impl Team {
    pub fn from_value(v: Value) -> Result<Team, ShapeError> {
        let raw = match v {
            Value::Object(m) => m,
            other => {
                return Err(shape(format!(
                    "a team must be a JSON object, got {}",
                    type_name(&other)
                )))
            }
        };
        let m = &raw;
        Ok(Team {
            team_id: first_str(m, &["team_id", "id"]),
            name: get_str(m, "name"),
            organization_id: get_str(m, "organization_id"),
            creation_time: get_str(m, "creation_time"),
            description: get_str(m, "description"),
            is_active: m.get("is_active").and_then(json_bool),
            is_moderator: m.get("is_moderator").and_then(json_bool),
            joined: m.get("joined").and_then(json_bool),
            participant_count: m.get("participant_count").and_then(json_i64),
            raw,
        })
    }

    /// Parse `{"data": [teams]}` (or a bare array).
    pub fn list_from_value(v: &Value) -> Result<Vec<Team>, ShapeError> {
        list_of(v, "teams", Team::from_value)
    }
}

impl Serialize for Team {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

/// One field of a layout section.
#[derive(Debug, Clone, PartialEq)]
pub struct LayoutField {
    pub raw: Map<String, Value>,
    pub id: Option<String>,
    pub label: Option<String>,
    pub unique_name: Option<String>,
    pub status: Option<String>,
    pub sequence_number: Option<i64>,
    pub system_defined: Option<bool>,
}

/// One section of a layout.
#[derive(Debug, Clone, PartialEq)]
pub struct LayoutSection {
    pub raw: Map<String, Value>,
    pub label: Option<String>,
    pub unique_name: Option<String>,
    pub sequence_number: Option<i64>,
    pub system_defined: Option<bool>,
    pub fields: Vec<LayoutField>,
}

/// One entry of `GET /users/layout`.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub raw: Map<String, Value>,
    pub unique_name: Option<String>,
    pub sections: Vec<LayoutSection>,
}

fn objects(v: Option<&Value>) -> impl Iterator<Item = &Map<String, Value>> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

impl Layout {
    pub fn from_value(v: Value) -> Result<Layout, ShapeError> {
        let raw = match v {
            Value::Object(m) => m,
            other => {
                return Err(shape(format!(
                    "a layout must be a JSON object, got {}",
                    type_name(&other)
                )))
            }
        };
        let sections = objects(raw.get("sections"))
            .map(|s| LayoutSection {
                label: get_str(s, "label"),
                unique_name: get_str(s, "unique_name"),
                sequence_number: s.get("sequence_number").and_then(json_i64),
                system_defined: s.get("system_defined").and_then(json_bool),
                fields: objects(s.get("fields"))
                    .map(|f| LayoutField {
                        id: get_str(f, "id"),
                        label: get_str(f, "label"),
                        unique_name: get_str(f, "unique_name"),
                        status: get_str(f, "status"),
                        sequence_number: f.get("sequence_number").and_then(json_i64),
                        system_defined: f.get("system_defined").and_then(json_bool),
                        raw: f.clone(),
                    })
                    .collect(),
                raw: s.clone(),
            })
            .collect();
        Ok(Layout {
            unique_name: get_str(&raw, "unique_name"),
            sections,
            raw,
        })
    }

    /// Parse `{"data": [layouts]}` (or a bare array, or a single layout object).
    pub fn list_from_value(v: &Value) -> Result<Vec<Layout>, ShapeError> {
        let d = unwrap_data(v);
        if d.is_object() {
            return Ok(vec![Layout::from_value(d.clone())?]);
        }
        list_of(v, "layouts", Layout::from_value)
    }
}

impl Serialize for Layout {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_full_form_from_spec() {
        let v = json!({ "id": "631830849", "email_id": "scott.fisher@zylker.com", "first_name": "Scott",
          "last_name": "Fisher", "full_name": "Scott Fisher", "display_name": "Scott Fisher",
          "name": "Scott Fisher", "employee_id": "213", "mobile": "534 678 1234",
          "extension": "3129", "work_location": "C block, S-H12", "status": "active",
          "timezone": "Asia/Kolkata", "timeoffset": 19800000, "language": "English",
          "country": "United States", "zoid": "54107592", "organization_id": "631836344",
          "reportingto": {"name": "Tim Harrison", "id": "631831446"},
          "department": {"name": "Zylker Corp", "id": "1901318000001424001"},
          "designation": {"name": "Leadership Staff", "id": "1901318000001072003"} });
        let u: User = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(u.id.as_deref(), Some("631830849"));
        assert_eq!(u.email_id.as_deref(), Some("scott.fisher@zylker.com"));
        assert_eq!(u.work_location.as_deref(), Some("C block, S-H12"));
        assert_eq!(
            u.reportingto,
            Some(NamedRef {
                id: Some("631831446".into()),
                name: Some("Tim Harrison".into())
            })
        );
        assert_eq!(
            u.department.as_ref().unwrap().id.as_deref(),
            Some("1901318000001424001")
        );
        assert_eq!(
            u.designation.as_ref().unwrap().name.as_deref(),
            Some("Leadership Staff")
        );
        // Serialises back to exactly what came in.
        assert_eq!(serde_json::to_value(&u).unwrap(), v);
    }

    #[test]
    fn user_keeps_unknown_fields_and_normalises_numbers() {
        let v = json!({
            "user_id": 631830849u64, "email_id": "a@x.com", "zoid": 54107592,
            "nick_name": "Scotty", "custom_attributes": {"badge": 7}, "user_type": "admin",
            "employee_id": 213, "department": {"name": "Ops", "id": 1901318000001424001u64}
        });
        let u = User::from_value(v).unwrap();
        assert_eq!(u.id.as_deref(), Some("631830849"));
        assert_eq!(u.zoid.as_deref(), Some("54107592"));
        assert_eq!(u.employee_id.as_deref(), Some("213"));
        assert_eq!(
            u.department.as_ref().unwrap().id.as_deref(),
            Some("1901318000001424001")
        );
        assert_eq!(u.raw["nick_name"], json!("Scotty"));
        assert_eq!(u.raw["custom_attributes"], json!({"badge": 7}));
        assert_eq!(u.raw_str("user_type").as_deref(), Some("admin"));
    }

    #[test]
    fn user_id_variants() {
        let by_id = User::from_value(json!({"id": "1", "zuid": "9"})).unwrap();
        assert_eq!(by_id.id.as_deref(), Some("1"));
        assert_eq!(by_id.zuid.as_deref(), Some("9"));
        let by_user_id = User::from_value(json!({"user_id": "2", "zuid": "9"})).unwrap();
        assert_eq!(by_user_id.id.as_deref(), Some("2"));
        let by_zuid = User::from_value(json!({"zuid": 3})).unwrap();
        assert_eq!(by_zuid.id.as_deref(), Some("3"));
        let none = User::from_value(json!({"email_id": "x@y"})).unwrap();
        assert_eq!(none.id, None);
        // Empty strings and nulls are absent, not "".
        let blank = User::from_value(json!({"id": "", "zuid": "4", "mobile": null})).unwrap();
        assert_eq!(blank.id.as_deref(), Some("4"));
        assert_eq!(blank.mobile, None);
        assert!(User::from_value(json!(["not", "a", "user"])).is_err());
    }

    #[test]
    fn user_tolerates_reference_variants() {
        let u = User::from_value(json!({
            "id": "1", "reporting_to": "77", "department_id": "5", "department_name": "Ops",
            "designation": null
        }))
        .unwrap();
        assert_eq!(u.reportingto.unwrap().id.as_deref(), Some("77"));
        let d = u.department.unwrap();
        assert_eq!(
            (d.id.as_deref(), d.name.as_deref()),
            (Some("5"), Some("Ops"))
        );
        assert_eq!(u.designation, None);
    }

    #[test]
    fn users_page_shapes() {
        let p = UsersPage::from_value(&json!({
            "next_token": "abc", "has_more": true, "data": [{"id": "1"}, {"id": 2}]
        }))
        .unwrap();
        assert_eq!(p.users.len(), 2);
        assert_eq!(p.next_token.as_deref(), Some("abc"));
        assert!(p.has_more && !p.is_last());

        // has_more false wins over a token.
        let p = UsersPage::from_value(&json!({"next_token": "abc", "has_more": false, "data": []}))
            .unwrap();
        assert!(p.is_last());
        assert_eq!(p.next_token, None);

        // No token and no has_more: last page; missing data = empty.
        let p = UsersPage::from_value(&json!({"data": []})).unwrap();
        assert!(p.is_last() && p.users.is_empty());

        // has_more true without a cursor is a broken page, not the end: a
        // listing accepted as complete there would mark the rest removed.
        for body in [
            json!({"has_more": true}),
            json!({"has_more": true, "next_token": "", "data": [{"id": "1"}]}),
        ] {
            let e = UsersPage::from_value(&body).unwrap_err();
            assert!(e.to_string().contains("has_more"), "{e}");
        }

        // Token without has_more: more pages.
        let p = UsersPage::from_value(&json!({"next_token": "t", "users": [{"id": "1"}]})).unwrap();
        assert!(p.has_more);
        assert_eq!(p.users.len(), 1);

        // Empty token string = last page.
        let p = UsersPage::from_value(&json!({"next_token": "", "data": []})).unwrap();
        assert!(p.is_last());

        assert!(UsersPage::from_value(&json!({"data": "nope"})).is_err());
        assert!(UsersPage::from_value(&json!({"data": [1]})).is_err());
    }

    /// The raw page accepts and refuses exactly what the typed page does.
    #[test]
    fn raw_users_page_matches_users_page() {
        let bodies = [
            r#"{"next_token": "abc", "has_more": true, "data": [{"id": "1"}, {"id": 2}]}"#,
            r#"{"next_token": "abc", "has_more": false, "data": []}"#,
            r#"{"has_more": true}"#,
            r#"{"next_token": "t", "users": [{"id": "1"}]}"#,
            r#"{"next_token": "", "data": []}"#,
            r#"{"next_token": 5, "has_more": "yes", "data": null}"#,
            r#"[{"id": "1"}]"#,
            r#"{"data": "nope"}"#,
            r#"{"data": [1]}"#,
            r#""text""#,
        ];
        for body in bodies {
            let typed = UsersPage::from_value(&serde_json::from_str(body).unwrap());
            let raw = RawUsersPage::from_slice(body.as_bytes());
            match (typed, raw) {
                (Ok(t), Ok(r)) => {
                    assert_eq!(t.users.len(), r.users.len(), "{body}");
                    assert_eq!(t.next_token, r.next_token, "{body}");
                    assert_eq!(t.has_more, r.has_more, "{body}");
                }
                (Err(_), Err(RawPageError::Shape(_))) => {}
                (t, r) => panic!("{body}: typed {t:?}, raw {r:?}"),
            }
        }
        // A body cut short is damaged, not of another shape (retried).
        assert!(matches!(
            RawUsersPage::from_slice(br#"{"data": [{"id": "1"}, {"id""#),
            Err(RawPageError::Json(_))
        ));
    }

    #[test]
    fn list_params_query() {
        let t = DateTime::parse_from_rfc3339("2026-03-01T10:20:30.456Z")
            .unwrap()
            .with_timezone(&Utc);
        let p = ListUsersParams {
            status: Some(UserStatus::ImportedActive),
            plan_type: Some(PlanType::Paid),
            fields: Some(Fields::List(vec![
                UserField::Department,
                UserField::Mobile,
                UserField::Department,
            ])),
            limit: Some(500),
            sort_by_usage: true,
            modified_after: Some(t),
        };
        let q = p.to_query(ModifiedAfterFormat::Rfc3339);
        assert_eq!(
            q,
            vec![
                ("status", "imported_active".to_string()),
                ("plan_type", "paid".to_string()),
                ("fields", "department,mobile".to_string()),
                ("limit", "100".to_string()),
                ("sort_by", "usage".to_string()),
                ("modified_after", "2026-03-01T10:20:30Z".to_string()),
            ]
        );
        let q = p.to_query(ModifiedAfterFormat::EpochMillis);
        assert_eq!(q.last().unwrap().1, t.timestamp_millis().to_string());
        assert!(ListUsersParams::default()
            .to_query(ModifiedAfterFormat::Rfc3339)
            .is_empty());
        assert_eq!(
            ListUsersParams::all_fields().to_query(ModifiedAfterFormat::Rfc3339),
            vec![("fields", "all".to_string())]
        );
    }

    #[test]
    fn config_enums_parse() {
        assert_eq!(
            "epoch_millis".parse::<ModifiedAfterFormat>().unwrap(),
            ModifiedAfterFormat::EpochMillis
        );
        assert_eq!(
            "Flat".parse::<UpdateBodyShape>().unwrap(),
            UpdateBodyShape::Flat
        );
        let e = "nested".parse::<UpdateBodyShape>().unwrap_err();
        assert!(e.contains("wrapped, flat"), "{e}");
        let s: UpdateBodyShape = serde_json::from_str("\"wrapped\"").unwrap();
        assert_eq!(s, UpdateBodyShape::default());
        assert_eq!(ModifiedAfterFormat::default(), ModifiedAfterFormat::Rfc3339);
    }

    #[test]
    fn user_fields_bodies_have_no_nulls() {
        let mut f = UserFields::new();
        f.set("department_id", "5").unwrap();
        f.work_location = Some("B-2".into());
        assert!(f.set("favourite_colour", "blue").is_err());
        assert_eq!(f.keys(), vec!["department_id", "work_location"]);

        let wrapped = f.update_body("a@x.com", UpdateBodyShape::Wrapped);
        assert_eq!(
            wrapped,
            json!({"users": [{"email_id": "a@x.com", "department_id": "5", "work_location": "B-2"}]})
        );
        let flat = f.update_body("a@x.com", UpdateBodyShape::Flat);
        assert_eq!(flat, json!({"department_id": "5", "work_location": "B-2"}));

        let mut add = UserFields::for_email("n@x.com")
            .with("first_name", "N")
            .unwrap();
        add.custom.insert("badge_no".into(), json!("B7"));
        assert_eq!(
            UserFields::add_body(&[add]),
            json!({"users": [{"email_id": "n@x.com", "first_name": "N", "badge_no": "B7"}]})
        );
        assert!(UserFields::new().is_empty());
        let err = UnknownUserField("x".into()).to_string();
        assert!(err.contains("reporting_to_zuid"), "{err}");
    }

    #[test]
    fn batch_result_failed_users_as_map() {
        let r = BatchResult::from_value(&json!({"data": {
            "success_users": ["a@x.com"],
            "failed_users": {"b@x.com": "email.activeuser", "c@x.com": {"code": "zohoaccount.conflict"}}
        }}))
        .unwrap();
        assert_eq!(r.success_users, vec!["a@x.com"]);
        assert_eq!(
            r.failed_users,
            vec![
                ("b@x.com".to_string(), "email.activeuser".to_string()),
                ("c@x.com".to_string(), "zohoaccount.conflict".to_string())
            ]
        );
        assert!(r.is_success("A@x.com"));
        assert_eq!(r.failure_code("b@x.com"), Some("email.activeuser"));
    }

    #[test]
    fn batch_result_failed_users_as_array() {
        let r = BatchResult::from_value(&json!({"data": {
            "success_users": [],
            "failed_users": [
                {"email_id": "b@x.com", "code": "email.pendinguser"},
                {"email": "c@x.com", "error": "email.invitation.blocked"},
                "d@x.com"
            ]
        }}))
        .unwrap();
        assert!(r.success_users.is_empty());
        assert_eq!(
            r.failed_users,
            vec![
                ("b@x.com".to_string(), "email.pendinguser".to_string()),
                (
                    "c@x.com".to_string(),
                    "email.invitation.blocked".to_string()
                ),
                ("d@x.com".to_string(), "unknown".to_string()),
            ]
        );
        // Unwrapped and empty forms.
        let r = BatchResult::from_value(&json!({"success_users": [{"email_id": "e@x"}]})).unwrap();
        assert_eq!(r.success_users, vec!["e@x"]);
        assert_eq!(
            BatchResult::from_value(&json!({})).unwrap(),
            BatchResult::default()
        );
        assert!(BatchResult::from_value(&json!({"data": [1]})).is_err());
    }

    #[test]
    fn teams_and_layouts_tolerant() {
        let teams = Team::list_from_value(&json!({"data": [
            {"name": "Ops", "team_id": 123, "organization_id": "9", "creation_time": 1700000000000u64,
             "description": "d", "is_active": true, "is_moderator": "false", "joined": true,
             "participant_count": "12", "extra": 1},
            {"team_id": "124"}
        ]}))
        .unwrap();
        assert_eq!(teams.len(), 2);
        assert_eq!(teams[0].team_id.as_deref(), Some("123"));
        assert_eq!(teams[0].creation_time.as_deref(), Some("1700000000000"));
        assert_eq!(teams[0].is_moderator, Some(false));
        assert_eq!(teams[0].participant_count, Some(12));
        assert_eq!(teams[0].raw["extra"], json!(1));
        assert_eq!(teams[1].name, None);
        assert!(Team::list_from_value(&json!({"data": null}))
            .unwrap()
            .is_empty());

        let layouts = Layout::list_from_value(&json!({"data": [{
            "unique_name": "quick_view",
            "sections": [{"label": "Basic", "unique_name": "basic", "sequence_number": 1,
                          "system_defined": true,
                          "fields": [{"label": "Email", "unique_name": "email_id", "status": "enabled",
                                      "sequence_number": "2", "system_defined": true, "id": 55}]}]
        }]}))
        .unwrap();
        assert_eq!(layouts[0].unique_name.as_deref(), Some("quick_view"));
        let f = &layouts[0].sections[0].fields[0];
        assert_eq!(f.id.as_deref(), Some("55"));
        assert_eq!(f.sequence_number, Some(2));
        let bare = Layout::list_from_value(&json!({"data": {"unique_name": "x"}})).unwrap();
        assert_eq!(bare.len(), 1);
        assert!(bare[0].sections.is_empty());
    }
}
