//! The simulated organisation: users, departments, designations, teams and
//! layouts, seeded deterministically from a `u64`, rendered to the API's JSON
//! forms, and changed the way PUT, POST and the admin hooks change them.
//!
//! Memory matters (the simulator must hold 100,000 users): seeded text that
//! comes from a fixed vocabulary (names, locations, time zones) is borrowed
//! `'static` data ([`Text`]) and only becomes an owned `String` once changed;
//! team membership is a bitmask; departments and designations are indexes.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use base64::Engine;
use chrono::{DateTime, Duration as CDuration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{json, Map, Value};

/// Text that is usually one of the seeded vocabulary words.
pub(crate) type Text = Cow<'static, str>;

pub(crate) const ORG_ID: &str = "631836344";
pub(crate) const ZOID: &str = "54107592";

/// Seeded users' email domain.
pub(crate) const EMAIL_DOMAIN: &str = "zylker.example";

const FIRST_NAMES: [&str; 48] = [
    "Scott", "Tim", "Priya", "Aarav", "Emma", "Liam", "Olivia", "Noah", "Ava", "Ethan", "Sophia",
    "Mason", "Isabella", "Lucas", "Mia", "Arjun", "Amelia", "Kenji", "Yuki", "Hannah", "Lena",
    "Jonas", "Chloe", "Rahul", "Ananya", "Diego", "Lucia", "Mateo", "Fatima", "Omar", "Grace",
    "Henry", "Zoe", "Leo", "Nora", "Ravi", "Meera", "Daniel", "Sara", "Felix", "Ines", "Hugo",
    "Maya", "Samuel", "Elena", "Karthik", "Divya", "Aisha",
];

const LAST_NAMES: [&str; 48] = [
    "Fisher", "Harrison", "Sharma", "Patel", "Johnson", "Smith", "Brown", "Williams", "Jones",
    "Garcia", "Miller", "Davis", "Martinez", "Lopez", "Wilson", "Anderson", "Taylor", "Thomas",
    "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Nakamura", "Tanaka", "Schmidt",
    "Muller", "Weber", "Iyer", "Nair", "Reddy", "Kumar", "Singh", "Khan", "Rossi", "Bianchi",
    "Dubois", "Moreau", "Silva", "Santos", "Clark", "Lewis", "Walker", "Hall", "Young", "King",
    "Wright",
];

const DEPARTMENTS: [&str; 12] = [
    "Zylker Corp",
    "Engineering",
    "Sales",
    "Marketing",
    "Customer Support",
    "Finance",
    "Human Resources",
    "Operations",
    "Legal",
    "Product Management",
    "Design",
    "IT Services",
];

/// Index 0..=3 are given by depth in the management tree; the rest to staff.
const DESIGNATIONS: [&str; 15] = [
    "Chief Executive Officer",
    "Vice President",
    "Director",
    "Manager",
    "Leadership Staff",
    "Team Lead",
    "Senior Engineer",
    "Engineer",
    "Associate",
    "Analyst",
    "Consultant",
    "Specialist",
    "Coordinator",
    "Administrator",
    "Intern",
];

const TEAMS: [(&str, &str); 20] = [
    ("Platform", "Core platform and infrastructure"),
    ("Mobile Apps", "iOS and Android apps"),
    ("Web Frontend", "Everything in the browser"),
    ("Data", "Analytics and data pipelines"),
    ("Security", "Application and infrastructure security"),
    ("SRE", "Site reliability and on-call"),
    ("EMEA Sales", "Sales in Europe, Middle East and Africa"),
    ("APAC Sales", "Sales in Asia Pacific"),
    ("Americas Sales", "Sales in North and South America"),
    ("Brand", "Brand and communications"),
    ("Growth", "Growth marketing"),
    ("Tier 1 Support", "First line support"),
    ("Tier 2 Support", "Escalations"),
    ("Payroll", "Payroll and benefits"),
    ("Recruiting", "Hiring and onboarding"),
    ("Facilities", "Offices and equipment"),
    ("Compliance", "Audits and policies"),
    ("Roadmap", "Product planning"),
    ("UX Research", "User research"),
    ("Helpdesk", "Internal IT helpdesk"),
];

const WORK_LOCATIONS: [&str; 12] = [
    "C block, S-H12",
    "A block, F-1",
    "A block, F-2",
    "B block, G-4",
    "B block, S-3",
    "D block, F-7",
    "Chennai Estancia",
    "Austin Office",
    "London Office",
    "Berlin Office",
    "Tokyo Office",
    "Remote",
];

/// (time zone, offset in milliseconds, country, language). Offsets ignore DST.
const ZONES: [(&str, i64, &str, &str); 8] = [
    ("Asia/Kolkata", 19_800_000, "India", "English"),
    ("America/New_York", -18_000_000, "United States", "English"),
    ("America/Chicago", -21_600_000, "United States", "English"),
    (
        "America/Los_Angeles",
        -28_800_000,
        "United States",
        "English",
    ),
    ("Europe/London", 0, "United Kingdom", "English"),
    ("Europe/Berlin", 3_600_000, "Germany", "German"),
    ("Asia/Tokyo", 32_400_000, "Japan", "Japanese"),
    ("Australia/Sydney", 36_000_000, "Australia", "English"),
];

/// The org's custom user fields (unique names); accepted by POST and PUT.
pub(crate) const CUSTOM_FIELDS: [&str; 2] = ["cost_center", "shirt_size"];
/// Seeded cost centre by department index.
const COST_CENTERS: [&str; 12] = [
    "CC-100", "CC-101", "CC-102", "CC-103", "CC-104", "CC-105", "CC-106", "CC-107", "CC-108",
    "CC-109", "CC-110", "CC-111",
];
const SHIRT_SIZES: [&str; 5] = ["S", "M", "L", "XL", "XXL"];

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

pub(crate) const LAYOUT_NAMES: [&str; 4] = [
    "quick_view",
    "profile_details_android",
    "profile_details_ios",
    "profile_details_web",
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

/// A user as the API shows it. Fields are in alphabetical order, the order
/// in which `serde_json::Map` (a `BTreeMap`) writes keys, so a view and the
/// `Value` made from it serialise to the same bytes.
#[derive(Serialize)]
pub(crate) struct UserView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    custom_attributes: Option<CustomView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    department: Option<NamedView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    designation: Option<NamedView<'a>>,
    display_name: String,
    email_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    employee_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extension: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_name: Option<&'a Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    full_name: Option<String>,
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<&'a Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_name: Option<&'a Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mobile: Option<&'a str>,
    name: String,
    organization_id: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reportingto: Option<ManagerView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeoffset: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timezone: Option<&'a Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    work_location: Option<&'a Text>,
    zoid: &'static str,
    zuid: String,
}

#[derive(Serialize)]
pub(crate) struct NamedView<'a> {
    id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
pub(crate) struct ManagerView {
    id: String,
    name: String,
}

#[derive(Serialize)]
pub(crate) struct CustomView<'a> {
    cost_center: &'a Text,
    shirt_size: &'a Text,
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

fn pick<T: Copy>(rng: &mut StdRng, items: &[T]) -> T {
    items[rng.gen_range(0..items.len())]
}

impl Org {
    /// Seed an organisation of `n` users (at least 1: the owner), deterministic in `seed`.
    /// Every seeded tracked modification is 8 to 400 days before `now`.
    pub(crate) fn seed(n: usize, seed: u64, now: DateTime<Utc>) -> Org {
        let n = n.max(1);
        let mut rng = StdRng::seed_from_u64(seed);
        let departments = DEPARTMENTS
            .iter()
            .enumerate()
            .map(|(i, name)| Named {
                id: format!("1901318000001{:06}", 424_001 + 1_000 * i),
                name: name.to_string(),
            })
            .collect();
        let designations = DESIGNATIONS
            .iter()
            .enumerate()
            .map(|(i, name)| Named {
                id: format!("1901318000001{:06}", 72_003 + 1_000 * i),
                name: name.to_string(),
            })
            .collect();
        let mut teams: Vec<Team> = TEAMS
            .iter()
            .enumerate()
            .map(|(i, (name, description))| Team {
                id: format!("1901318000003{:06}", 110_001 + 17 * i),
                name,
                description,
                created: now - CDuration::days(400 + 13 * i as i64),
                active: i != 15,
                participants: 0,
            })
            .collect();

        let mut users = BTreeMap::new();
        let mut by_email = HashMap::with_capacity(n);
        let mut by_usage = BTreeSet::new();
        // (id, department, depth) by seeding index, for the management tree.
        let mut tree: Vec<(u64, usize, u32)> = Vec::with_capacity(n);
        let mut id: u64 = 631_830_000 + rng.gen_range(0..1_000);
        for i in 0..n {
            id += rng.gen_range(1..=17u64);
            let first = pick(&mut rng, &FIRST_NAMES);
            let last = pick(&mut rng, &LAST_NAMES);
            let email = format!(
                "{}.{}{}@{EMAIL_DOMAIN}",
                first.to_ascii_lowercase(),
                last.to_ascii_lowercase(),
                i
            );
            // A 6-ary management tree: the parent was seeded earlier.
            let (reporting_to, department, depth) = if i == 0 {
                (None, 0, 0)
            } else {
                let (pid, pdept, pdepth) = tree[(i - 1) / 6];
                let dept = if pdept != 0 && rng.gen_bool(0.8) {
                    pdept
                } else {
                    rng.gen_range(1..DEPARTMENTS.len())
                };
                (Some(pid), dept, pdepth + 1)
            };
            tree.push((id, department, depth));
            let designation = if depth <= 3 {
                depth as usize
            } else {
                rng.gen_range(4..DESIGNATIONS.len())
            };
            let status = if i == 0 {
                Status::Active
            } else {
                match rng.gen_range(0..100) {
                    0..=87 => Status::Active,
                    88..=92 => Status::Inactive,
                    93..=95 => Status::Pending,
                    96..=97 => Status::ImportedActive,
                    _ => Status::ImportedInactive,
                }
            };
            let (tz, _, country, language) = pick(&mut rng, &ZONES);
            let mut team_mask = 0u32;
            for _ in 0..rng.gen_range(0..=3) {
                team_mask |= 1 << rng.gen_range(0..TEAMS.len());
            }
            for (t, team) in teams.iter_mut().enumerate() {
                if team_mask & (1 << t) != 0 {
                    team.participants += 1;
                }
            }
            let usage = rng.gen_range(0..100_000u32);
            let user = User {
                id,
                email: email.clone(),
                first_name: Cow::Borrowed(first),
                last_name: Cow::Borrowed(last),
                display_name: None,
                employee_id: (100 + i).to_string(),
                mobile: format!(
                    "+1 555 {:03} {:04}",
                    rng.gen_range(0..1000),
                    rng.gen_range(0..10_000)
                ),
                phone: if rng.gen_bool(0.3) {
                    format!("+1 415 {:03} {:04}", rng.gen_range(0..1000), i % 10_000)
                } else {
                    String::new()
                },
                extension: if rng.gen_bool(0.9) {
                    rng.gen_range(1000..10_000u32).to_string()
                } else {
                    String::new()
                },
                work_location: Cow::Borrowed(pick(&mut rng, &WORK_LOCATIONS)),
                status,
                timezone: Cow::Borrowed(tz),
                language: Cow::Borrowed(language),
                country: Cow::Borrowed(country),
                department: Some(department),
                designation: Some(designation),
                reporting_to,
                paid: i == 0 || rng.gen_bool(0.9),
                usage,
                teams: team_mask,
                tracked_modified: Some(
                    now - CDuration::days(rng.gen_range(8..=400))
                        - CDuration::seconds(rng.gen_range(0..86_400)),
                ),
                cost_center: Cow::Borrowed(COST_CENTERS[department]),
                shirt_size: Cow::Borrowed(pick(&mut rng, &SHIRT_SIZES)),
            };
            by_email.insert(email, id);
            by_usage.insert((Reverse(usage), id));
            users.insert(id, user);
        }
        let owner = tree[0].0;
        Org {
            users,
            by_email,
            by_usage,
            departments,
            designations,
            teams,
            owner,
            next_id: id + 1,
        }
    }

    pub(crate) fn id_by_email(&self, email: &str) -> Option<u64> {
        self.by_email.get(&email.to_ascii_lowercase()).copied()
    }

    fn named(items: &[Named], idx: Option<usize>) -> Option<NamedView<'_>> {
        let n = items.get(idx?)?;
        Some(NamedView {
            id: &n.id,
            name: &n.name,
        })
    }

    /// The user in the API's form for `fields`.
    pub(crate) fn render(&self, u: &User, f: Fields) -> Value {
        serde_json::to_value(self.view(u, f)).unwrap_or(Value::Null)
    }

    /// The user in the API's form for `fields`, as a borrowed view that
    /// serialises straight to bytes: a listing page is written without
    /// building a `Value` per user (which made the simulator, not the
    /// client, the slow side of a raw-speed benchmark).
    pub(crate) fn view<'a>(&'a self, u: &'a User, f: Fields) -> UserView<'a> {
        let id = u.id.to_string();
        let display = u.display();
        let mut v = UserView {
            country: None,
            custom_attributes: None,
            department: None,
            designation: None,
            display_name: display.clone(),
            email_id: &u.email,
            employee_id: None,
            extension: None,
            first_name: None,
            full_name: None,
            id: id.clone(),
            language: None,
            last_name: None,
            mobile: None,
            name: display,
            organization_id: ORG_ID,
            phone: None,
            reportingto: None,
            status: None,
            timeoffset: None,
            timezone: None,
            user_type: None,
            work_location: None,
            zoid: ZOID,
            zuid: id,
        };
        if f.mobile {
            v.mobile = Some(&u.mobile);
        }
        if f.department {
            v.department = Self::named(&self.departments, u.department);
        }
        if f.designation {
            v.designation = Self::named(&self.designations, u.designation);
        }
        if f.all {
            v.first_name = Some(&u.first_name);
            v.last_name = Some(&u.last_name);
            v.full_name = Some(u.full_name());
            v.employee_id = Some(&u.employee_id);
            v.phone = Some(&u.phone);
            v.extension = Some(&u.extension);
            v.work_location = Some(&u.work_location);
            v.status = Some(u.status.as_str());
            v.timezone = Some(&u.timezone);
            v.timeoffset = Some(ZONES.iter().find(|z| z.0 == u.timezone).map_or(0, |z| z.1));
            v.language = Some(&u.language);
            v.country = Some(&u.country);
            v.user_type = Some(if u.paid { "paid" } else { "free" });
            // The top of the management chain has no `reportingto` at all;
            // neither has a user whose manager was removed.
            v.reportingto =
                u.reporting_to
                    .and_then(|r| self.users.get(&r))
                    .map(|mgr| ManagerView {
                        id: mgr.id.to_string(),
                        name: mgr.display(),
                    });
            v.custom_attributes = Some(CustomView {
                cost_center: &u.cost_center,
                shirt_size: &u.shirt_size,
            });
        }
        v
    }

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
        let bad = |k: &str, what: &str| ChangeError::BadValue(k.to_string(), what.to_string());
        let string = |k: &str, v: &Value| -> Result<String, ChangeError> {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| bad(k, "must be a string"))
        };
        let strings = |k: &str, v: &Value| -> Result<Vec<String>, ChangeError> {
            v.as_array()
                .and_then(|a| {
                    a.iter()
                        .map(|x| x.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| bad(k, "must be an array of strings"))
        };
        // Pass 1: types (references are checked after every type is fine).
        enum Pending {
            Done(Change),
            Department(String),
            Designation(String),
            ReportingTo(String),
            Teams(Vec<String>),
            Nothing,
        }
        let mut pending = Vec::with_capacity(obj.len());
        for (k, v) in obj {
            let p = match k.as_str() {
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
                "first_name" => Pending::Done(Change::FirstName(string(k, v)?)),
                "last_name" => Pending::Done(Change::LastName(string(k, v)?)),
                "display_name" => Pending::Done(Change::DisplayName(string(k, v)?)),
                "phone" => Pending::Done(Change::Phone(string(k, v)?)),
                "mobile" => Pending::Done(Change::Mobile(string(k, v)?)),
                "timezone" => Pending::Done(Change::Timezone(string(k, v)?)),
                "language" => Pending::Done(Change::Language(string(k, v)?)),
                "country" => Pending::Done(Change::Country(string(k, v)?)),
                "work_location" => Pending::Done(Change::WorkLocation(string(k, v)?)),
                "extension" => Pending::Done(Change::Extension(string(k, v)?)),
                "employee_id" => Pending::Done(Change::EmployeeId(string(k, v)?)),
                "cost_center" => Pending::Done(Change::CostCenter(string(k, v)?)),
                "shirt_size" => Pending::Done(Change::ShirtSize(string(k, v)?)),
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
            };
            pending.push(p);
        }
        // Pass 2: references.
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            let c = match p {
                Pending::Done(c) => c,
                Pending::Nothing => continue,
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
            };
            out.push(c);
        }
        Ok(out)
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

    /// `GET /users/{id}/teams` entries.
    pub(crate) fn teams_of(&self, u: &User) -> Vec<Value> {
        self.teams
            .iter()
            .enumerate()
            .filter(|(t, _)| u.teams & (1 << t) != 0)
            .map(|(t, team)| {
                json!({
                    "name": team.name,
                    "team_id": team.id,
                    "organization_id": ORG_ID,
                    "creation_time": team.created.timestamp_millis().to_string(),
                    "description": team.description,
                    "is_active": team.active,
                    "is_moderator": (u.id + t as u64) % 7 == 0,
                    "joined": true,
                    "participant_count": team.participants,
                })
            })
            .collect()
    }
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

/// The layout (`GET /users/layout?unique_name=`) for one of [`LAYOUT_NAMES`].
pub(crate) fn layout(unique_name: &str) -> Option<Value> {
    let idx = LAYOUT_NAMES.iter().position(|n| *n == unique_name)?;
    type Sec = (
        &'static str,
        &'static str,
        &'static [(&'static str, &'static str)],
    );
    const SECTIONS: [Sec; 4] = [
        (
            "Basic Information",
            "basic_info",
            &[
                ("First Name", "first_name"),
                ("Last Name", "last_name"),
                ("Display Name", "display_name"),
                ("Email", "email_id"),
            ],
        ),
        (
            "Work Information",
            "work_info",
            &[
                ("Department", "department"),
                ("Designation", "designation"),
                ("Reporting To", "reporting_to"),
                ("Employee ID", "employee_id"),
                ("Work Location", "work_location"),
                ("Extension", "extension"),
            ],
        ),
        (
            "Contact Information",
            "contact_info",
            &[
                ("Mobile", "mobile"),
                ("Phone", "phone"),
                ("Time Zone", "timezone"),
            ],
        ),
        (
            "Additional Information",
            "custom_fields",
            &[("Cost Center", "cost_center"), ("Shirt Size", "shirt_size")],
        ),
    ];
    // The quick view shows the first two sections only; the phone apps hide
    // the custom fields.
    let count = if idx == 0 { 2 } else { 4 };
    let sections: Vec<Value> = SECTIONS
        .iter()
        .take(count)
        .enumerate()
        .map(|(s, (label, name, fields))| {
            let custom = *name == "custom_fields";
            let fields: Vec<Value> = fields
                .iter()
                .enumerate()
                .map(|(f, (flabel, fname))| {
                    let hidden = custom && (idx == 1 || idx == 2);
                    json!({
                        "label": flabel,
                        "unique_name": fname,
                        "status": if hidden { "hidden" } else { "active" },
                        "sequence_number": f + 1,
                        "system_defined": !custom,
                        "id": format!("1901318000002{:03}{:03}", s + 1, f + 1),
                    })
                })
                .collect();
            json!({
                "label": label,
                "unique_name": name,
                "sequence_number": s + 1,
                "system_defined": !custom,
                "fields": fields,
            })
        })
        .collect();
    Some(json!({"data": [{"unique_name": unique_name, "sections": sections}]}))
}
