//! Changing users the way PUT, POST and the admin hooks do: validated changes, applying them, adding and removing users.

use std::borrow::Cow;
use std::cmp::Reverse;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::seed::ZONES;
use super::{Org, Status, User, CUSTOM_FIELDS, USER_KEYS};

/// One validated change of a user attribute.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    FirstName(String),
    LastName(String),
    DisplayName(String),
    Phone(String),
    Mobile(String),
    Timezone(String),
    Language(String),
    Country(String),
    WorkLocation(String),
    Extension(String),
    EmployeeId(String),
    Department(usize),
    Designation(usize),
    ReportingTo(u64),
    Teams(u32),
    CostCenter(String),
    ShirtSize(String),
    Status(Status),
    Email(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChangeError {
    /// A key that is not a user field.
    ExtraKey(String),
    /// A value of the wrong type or shape: (key, message).
    BadValue(String, String),
    /// A department, designation, reporting-to or team id that does not exist.
    BadReference(String),
}

/// A plausible email: one `@`, something before it, a dot after it.
pub(crate) fn valid_email(e: &str) -> bool {
    match e.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !e.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// A well-typed value whose reference (if any) is not checked yet.
enum Pending {
    Done(Change),
    Department(String),
    Designation(String),
    ReportingTo(String),
    Teams(Vec<String>),
    Nothing,
}

fn bad(k: &str, what: &str) -> ChangeError {
    ChangeError::BadValue(k.to_string(), what.to_string())
}

fn string(k: &str, v: &Value) -> Result<String, ChangeError> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| bad(k, "must be a string"))
}

fn strings(k: &str, v: &Value) -> Result<Vec<String>, ChangeError> {
    v.as_array()
        .and_then(|a| {
            a.iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| bad(k, "must be an array of strings"))
}

/// The change a plain text field's string value makes.
fn text_change(k: &str) -> Option<fn(String) -> Change> {
    Some(match k {
        "first_name" => Change::FirstName,
        "last_name" => Change::LastName,
        "display_name" => Change::DisplayName,
        "phone" => Change::Phone,
        "mobile" => Change::Mobile,
        "timezone" => Change::Timezone,
        "language" => Change::Language,
        "country" => Change::Country,
        "work_location" => Change::WorkLocation,
        "extension" => Change::Extension,
        "employee_id" => Change::EmployeeId,
        "cost_center" => Change::CostCenter,
        "shirt_size" => Change::ShirtSize,
        _ => return None,
    })
}

/// Pass 1 for one key: its value's type and shape.
fn typed(k: &str, v: &Value, admin: bool) -> Result<Pending, ChangeError> {
    if let Some(change) = text_change(k) {
        return Ok(Pending::Done(change(string(k, v)?)));
    }
    Ok(match k {
        "email_id" => {
            let e = string(k, v)?;
            if !valid_email(&e) {
                return Err(bad(k, "is not a valid email address"));
            }
            if admin {
                Pending::Done(Change::Email(e))
            } else {
                Pending::Nothing
            }
        }
        "department_id" => Pending::Department(string(k, v)?),
        "designation_id" => Pending::Designation(string(k, v)?),
        "reporting_to_zuid" => Pending::ReportingTo(string(k, v)?),
        "team_ids" => Pending::Teams(strings(k, v)?),
        "channel_ids" => {
            strings(k, v)?;
            Pending::Nothing
        }
        "image_data" => {
            let s = string(k, v)?;
            if base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .is_err()
            {
                return Err(bad(k, "must be base64"));
            }
            Pending::Nothing
        }
        "status" => {
            let s = string(k, v)?;
            Pending::Done(Change::Status(
                Status::parse(&s).ok_or_else(|| bad(k, "is not a valid status"))?,
            ))
        }
        other => return Err(ChangeError::ExtraKey(other.to_string())),
    })
}

impl Org {
    /// Check that every key of a user object is a user field (or in `extra`).
    pub(crate) fn check_keys(obj: &Map<String, Value>, extra: &[&str]) -> Result<(), ChangeError> {
        match obj.keys().find(|k| {
            let k = k.as_str();
            !USER_KEYS.contains(&k) && !CUSTOM_FIELDS.contains(&k) && !extra.contains(&k)
        }) {
            Some(k) => Err(ChangeError::ExtraKey(k.clone())),
            None => Ok(()),
        }
    }

    /// Validate a user object into changes: every key must be known (see
    /// [`Org::check_keys`]), then every value well-typed, then every reference
    /// must exist. `email_id` becomes a change only with `admin` (the hooks),
    /// which also allows `status`.
    pub(crate) fn parse_changes(
        &self,
        obj: &Map<String, Value>,
        admin: bool,
    ) -> Result<Vec<Change>, ChangeError> {
        let extra: &[&str] = if admin { &["status"] } else { &[] };
        Self::check_keys(obj, extra)?;
        // Pass 1: types (references are checked after every type is fine).
        let mut pending = Vec::with_capacity(obj.len());
        for (k, v) in obj {
            pending.push(typed(k, v, admin)?);
        }
        // Pass 2: references.
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            if let Some(c) = self.resolve(p)? {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// A typed value as a change, once its reference (if any) exists.
    fn resolve(&self, p: Pending) -> Result<Option<Change>, ChangeError> {
        Ok(Some(match p {
            Pending::Done(c) => c,
            Pending::Nothing => return Ok(None),
            Pending::Department(id) => Change::Department(
                self.departments
                    .iter()
                    .position(|d| d.id == id)
                    .ok_or_else(|| ChangeError::BadReference("department_id".into()))?,
            ),
            Pending::Designation(id) => Change::Designation(
                self.designations
                    .iter()
                    .position(|d| d.id == id)
                    .ok_or_else(|| ChangeError::BadReference("designation_id".into()))?,
            ),
            Pending::ReportingTo(id) => Change::ReportingTo(
                id.parse::<u64>()
                    .ok()
                    .filter(|id| self.users.contains_key(id))
                    .ok_or_else(|| ChangeError::BadReference("reporting_to_zuid".into()))?,
            ),
            Pending::Teams(ids) => {
                let mut mask = 0u32;
                for id in ids {
                    let t = self
                        .teams
                        .iter()
                        .position(|t| t.id == id)
                        .ok_or_else(|| ChangeError::BadReference("team_ids".into()))?;
                    mask |= 1 << t;
                }
                Change::Teams(mask)
            }
        }))
    }

    /// Apply changes to user `id`; bumps its tracked modification time to
    /// `now` if a field `modified_after` can see changed value. Returns
    /// whether the user exists. An email change must not collide (checked by
    /// the caller).
    pub(crate) fn apply(&mut self, id: u64, changes: Vec<Change>, now: DateTime<Utc>) -> bool {
        if !self.users.contains_key(&id) {
            return false;
        }
        if self.apply_inner(id, changes) {
            if let Some(u) = self.users.get_mut(&id) {
                u.tracked_modified = Some(now);
            }
        }
        true
    }

    /// Returns whether a tracked field changed value.
    fn apply_inner(&mut self, id: u64, changes: Vec<Change>) -> bool {
        let mut tracked = false;
        for c in changes {
            if let Change::Email(e) = &c {
                let old = self.users[&id].email.to_ascii_lowercase();
                self.by_email.remove(&old);
                self.by_email.insert(e.to_ascii_lowercase(), id);
            }
            if let Change::Teams(mask) = &c {
                let old = self.users[&id].teams;
                for (t, team) in self.teams.iter_mut().enumerate() {
                    let bit = 1 << t;
                    if old & bit != 0 && mask & bit == 0 {
                        team.participants -= 1;
                    } else if old & bit == 0 && mask & bit != 0 {
                        team.participants += 1;
                    }
                }
            }
            let Some(u) = self.users.get_mut(&id) else {
                return tracked;
            };
            fn set<T: PartialEq>(slot: &mut T, v: T) -> bool {
                let changed = *slot != v;
                *slot = v;
                changed
            }
            match c {
                Change::FirstName(v) => u.first_name = Cow::Owned(v),
                Change::LastName(v) => u.last_name = Cow::Owned(v),
                Change::DisplayName(v) => u.display_name = Some(v),
                Change::Phone(v) => u.phone = v,
                Change::Mobile(v) => u.mobile = v,
                Change::Timezone(v) => u.timezone = Cow::Owned(v),
                Change::Language(v) => u.language = Cow::Owned(v),
                Change::Country(v) => u.country = Cow::Owned(v),
                Change::CostCenter(v) => u.cost_center = Cow::Owned(v),
                Change::ShirtSize(v) => u.shirt_size = Cow::Owned(v),
                Change::Teams(m) => u.teams = m,
                Change::Status(s) => u.status = s,
                Change::Email(e) => u.email = e,
                Change::WorkLocation(v) => tracked |= set(&mut u.work_location, Cow::Owned(v)),
                Change::Extension(v) => tracked |= set(&mut u.extension, v),
                Change::EmployeeId(v) => tracked |= set(&mut u.employee_id, v),
                Change::Department(d) => tracked |= set(&mut u.department, Some(d)),
                Change::Designation(d) => tracked |= set(&mut u.designation, Some(d)),
                Change::ReportingTo(r) => tracked |= set(&mut u.reporting_to, Some(r)),
            }
        }
        tracked
    }

    /// Create a user with `email` (not yet in the org), then apply `changes`.
    /// A new user has no tracked modification: `modified_after` never sees
    /// additions. Names default from the email's local part.
    pub(crate) fn insert(&mut self, email: &str, status: Status, changes: Vec<Change>) -> u64 {
        let id = self.next_id;
        self.next_id += 1 + id % 5;
        let local = email.split('@').next().unwrap_or(email);
        let mut parts = local.split(['.', '_', '-']);
        let cap = |s: &str| {
            let mut c = s.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        };
        let first = parts.next().map(cap).unwrap_or_default();
        let last = parts.next().map(cap).unwrap_or_default();
        let user = User {
            id,
            email: email.to_string(),
            first_name: Cow::Owned(first),
            last_name: Cow::Owned(last),
            display_name: None,
            employee_id: String::new(),
            mobile: String::new(),
            phone: String::new(),
            extension: String::new(),
            work_location: Cow::Borrowed(""),
            status,
            timezone: Cow::Borrowed(ZONES[0].0),
            language: Cow::Borrowed("English"),
            country: Cow::Borrowed(""),
            department: None,
            designation: None,
            reporting_to: None,
            paid: true,
            usage: 0,
            teams: 0,
            tracked_modified: None,
            cost_center: Cow::Borrowed(""),
            shirt_size: Cow::Borrowed(""),
        };
        self.by_email.insert(email.to_ascii_lowercase(), id);
        self.by_usage.insert((Reverse(0), id));
        self.users.insert(id, user);
        self.apply_inner(id, changes);
        id
    }

    pub(crate) fn remove(&mut self, id: u64) -> bool {
        let Some(u) = self.users.remove(&id) else {
            return false;
        };
        self.by_email.remove(&u.email.to_ascii_lowercase());
        self.by_usage.remove(&(Reverse(u.usage), id));
        for (t, team) in self.teams.iter_mut().enumerate() {
            if u.teams & (1 << t) != 0 {
                team.participants -= 1;
            }
        }
        true
    }
}
