//! The simulated organisation: users, departments, designations, teams and
//! layouts, seeded deterministically from a `u64`, rendered to the API's JSON
//! forms, and changed the way PUT, POST and the admin hooks change them.
//!
//! Memory matters (the simulator must hold 100,000 users): seeded text that
//! comes from a fixed vocabulary (names, locations, time zones) is borrowed
//! `'static` data ([`Text`]) and only becomes an owned `String` once changed;
//! team membership is a bitmask; departments and designations are indexes.

mod change;
mod layout;
mod seed;
mod view;

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};

pub(crate) use change::{valid_email, Change, ChangeError};
pub(crate) use layout::{layout, LAYOUT_NAMES};
pub(crate) use view::UserView;

/// Text that is usually one of the seeded vocabulary words.
pub(crate) type Text = Cow<'static, str>;

pub(crate) const ORG_ID: &str = "631836344";
pub(crate) const ZOID: &str = "54107592";

/// Seeded users' email domain.
pub(crate) const EMAIL_DOMAIN: &str = "zylker.example";

/// The org's custom user fields (unique names); accepted by POST and PUT.
pub(crate) const CUSTOM_FIELDS: [&str; 2] = ["cost_center", "shirt_size"];

/// Keys a POST or PUT user object may carry (besides [`CUSTOM_FIELDS`]).
pub(crate) const USER_KEYS: [&str; 18] = [
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
    "channel_ids",
    "team_ids",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Active,
    Inactive,
    Pending,
    ImportedActive,
    ImportedInactive,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Inactive => "inactive",
            Status::Pending => "pending",
            Status::ImportedActive => "imported_active",
            Status::ImportedInactive => "imported_inactive",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "active" => Status::Active,
            "inactive" => Status::Inactive,
            "pending" => Status::Pending,
            "imported_active" => Status::ImportedActive,
            "imported_inactive" => Status::ImportedInactive,
            _ => return None,
        })
    }
}

pub(crate) struct User {
    pub id: u64,
    pub email: String,
    pub first_name: Text,
    pub last_name: Text,
    /// `None`: "first last".
    pub display_name: Option<String>,
    pub employee_id: String,
    pub mobile: String,
    pub phone: String,
    pub extension: String,
    pub work_location: Text,
    pub status: Status,
    pub timezone: Text,
    pub language: Text,
    pub country: Text,
    pub department: Option<usize>,
    pub designation: Option<usize>,
    pub reporting_to: Option<u64>,
    pub paid: bool,
    pub usage: u32,
    /// Bit i: member of team i.
    pub teams: u32,
    /// Last change of a field `modified_after` can see; `None`: never.
    pub tracked_modified: Option<DateTime<Utc>>,
    pub cost_center: Text,
    pub shirt_size: Text,
}

impl User {
    pub(crate) fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
            .trim()
            .to_string()
    }

    pub(crate) fn display(&self) -> String {
        self.display_name
            .clone()
            .unwrap_or_else(|| self.full_name())
    }
}

pub(crate) struct Named {
    pub id: String,
    pub name: String,
}

pub(crate) struct Team {
    pub id: String,
    pub name: &'static str,
    pub description: &'static str,
    pub created: DateTime<Utc>,
    pub active: bool,
    pub participants: u64,
}

/// Which fields a listing or GET carries (`fields` parameter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Fields {
    pub all: bool,
    pub mobile: bool,
    pub department: bool,
    pub designation: bool,
}

impl Fields {
    pub(crate) const ALL: Fields = Fields {
        all: true,
        mobile: true,
        department: true,
        designation: true,
    };

    /// `all`, or a comma list of `display_name, mobile, department, designation`.
    pub(crate) fn parse(s: &str) -> Result<Fields, String> {
        if s == "all" {
            return Ok(Fields::ALL);
        }
        let mut f = Fields::default();
        for item in s.split(',') {
            match item.trim() {
                // Part of the minimal form anyway.
                "display_name" => {}
                "mobile" => f.mobile = true,
                "department" => f.department = true,
                "designation" => f.designation = true,
                other => return Err(format!("'{other}' is not a valid value of 'fields'.")),
            }
        }
        Ok(f)
    }
}

pub(crate) struct Org {
    pub users: BTreeMap<u64, User>,
    /// Lower-cased email → id.
    pub by_email: HashMap<String, u64>,
    /// (usage descending, id): the `sort_by=usage` order.
    pub by_usage: BTreeSet<(Reverse<u32>, u64)>,
    pub departments: Vec<Named>,
    pub designations: Vec<Named>,
    pub teams: Vec<Team>,
    /// The owner of the configured refresh token (the org admin).
    pub owner: u64,
    next_id: u64,
}

impl Org {
    pub(crate) fn id_by_email(&self, email: &str) -> Option<u64> {
        self.by_email.get(&email.to_ascii_lowercase()).copied()
    }
}
