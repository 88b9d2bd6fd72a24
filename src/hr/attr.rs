//! The attributes HR can manage, how a value designates one, and the source keys.

use std::fmt;

use super::did_you_mean;
use crate::mirror::Column;

/// An attribute of a Cliq user that the HR source can manage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attr {
    FirstName,
    LastName,
    DisplayName,
    Phone,
    Mobile,
    Timezone,
    Language,
    Country,
    EmployeeId,
    Extension,
    WorkLocation,
    Department,
    Designation,
    ReportingTo,
}

impl Attr {
    pub const ALL: [Attr; 14] = [
        Attr::FirstName,
        Attr::LastName,
        Attr::DisplayName,
        Attr::Phone,
        Attr::Mobile,
        Attr::Timezone,
        Attr::Language,
        Attr::Country,
        Attr::EmployeeId,
        Attr::Extension,
        Attr::WorkLocation,
        Attr::Department,
        Attr::Designation,
        Attr::ReportingTo,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The attribute's name (as in `[hr] managed_fields`).
    pub fn name(self) -> &'static str {
        match self {
            Attr::FirstName => "first_name",
            Attr::LastName => "last_name",
            Attr::DisplayName => "display_name",
            Attr::Phone => "phone",
            Attr::Mobile => "mobile",
            Attr::Timezone => "timezone",
            Attr::Language => "language",
            Attr::Country => "country",
            Attr::EmployeeId => "employee_id",
            Attr::Extension => "extension",
            Attr::WorkLocation => "work_location",
            Attr::Department => "department",
            Attr::Designation => "designation",
            Attr::ReportingTo => "reporting_to",
        }
    }

    /// The key sent to Cliq (`PUT`/`POST /users`).
    pub fn cliq_key(self) -> &'static str {
        match self {
            Attr::Department => "department_id",
            Attr::Designation => "designation_id",
            Attr::ReportingTo => "reporting_to_zuid",
            other => other.name(),
        }
    }

    /// The `users` column of the mirror holding the current value.
    pub fn mirror_column(self) -> Column {
        match self {
            Attr::FirstName => Column::FirstName,
            Attr::LastName => Column::LastName,
            Attr::DisplayName => Column::DisplayName,
            Attr::Phone => Column::Phone,
            Attr::Mobile => Column::Mobile,
            Attr::Timezone => Column::Timezone,
            Attr::Language => Column::Language,
            Attr::Country => Column::Country,
            Attr::EmployeeId => Column::EmployeeId,
            Attr::Extension => Column::Extension,
            Attr::WorkLocation => Column::WorkLocation,
            Attr::Department => Column::DepartmentId,
            Attr::Designation => Column::DesignationId,
            Attr::ReportingTo => Column::ReportingToId,
        }
    }

    /// The mirror column holding the referenced object's name, if any.
    pub fn name_column(self) -> Option<Column> {
        match self {
            Attr::Department => Some(Column::DepartmentName),
            Attr::Designation => Some(Column::DesignationName),
            Attr::ReportingTo => Some(Column::ReportingToName),
            _ => None,
        }
    }

    pub fn from_name(s: &str) -> Option<Attr> {
        Attr::ALL.into_iter().find(|a| a.name() == s)
    }
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a value in the source designates the attribute's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// The value itself (for references: the Cliq id).
    Direct,
    /// A department or designation name, resolved through the mirror.
    Name,
    /// The manager's email, resolved through the mirror.
    Email,
}

/// The source columns / keys besides `email_id`: (key, attribute, kind).
pub const COLUMNS: [(&str, Attr, ValueKind); 17] = [
    ("first_name", Attr::FirstName, ValueKind::Direct),
    ("last_name", Attr::LastName, ValueKind::Direct),
    ("display_name", Attr::DisplayName, ValueKind::Direct),
    ("phone", Attr::Phone, ValueKind::Direct),
    ("mobile", Attr::Mobile, ValueKind::Direct),
    ("timezone", Attr::Timezone, ValueKind::Direct),
    ("language", Attr::Language, ValueKind::Direct),
    ("country", Attr::Country, ValueKind::Direct),
    ("employee_id", Attr::EmployeeId, ValueKind::Direct),
    ("extension", Attr::Extension, ValueKind::Direct),
    ("work_location", Attr::WorkLocation, ValueKind::Direct),
    ("department_id", Attr::Department, ValueKind::Direct),
    ("designation_id", Attr::Designation, ValueKind::Direct),
    ("reporting_to_zuid", Attr::ReportingTo, ValueKind::Direct),
    ("department", Attr::Department, ValueKind::Name),
    ("designation", Attr::Designation, ValueKind::Name),
    ("reporting_to_email", Attr::ReportingTo, ValueKind::Email),
];

/// Every accepted key, `email_id` first.
pub fn allowed_keys() -> impl Iterator<Item = &'static str> {
    std::iter::once("email_id").chain(COLUMNS.iter().map(|c| c.0))
}

pub(super) fn column(key: &str) -> Option<(Attr, ValueKind)> {
    COLUMNS.iter().find(|c| c.0 == key).map(|&(_, a, k)| (a, k))
}
/// Validate `[hr] managed_fields`: each name an attribute (`department`,
/// `reporting_to`, …) or one of its source keys (`department_id`,
/// `reporting_to_email`, …). Returns the managed attributes (all when `None`).
pub fn managed_attrs(names: Option<&[String]>) -> Result<Vec<Attr>, String> {
    let Some(names) = names else {
        return Ok(Attr::ALL.to_vec());
    };
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for n in names {
        let t = n.trim();
        let a = Attr::from_name(t).or_else(|| column(t).map(|c| c.0));
        match a {
            Some(a) => {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
            None => {
                let candidates: Vec<&str> = Attr::ALL
                    .iter()
                    .map(|a| a.name())
                    .chain(COLUMNS.iter().map(|c| c.0))
                    .collect();
                bad.push(format!(
                    "'{t}' is not a field{}",
                    did_you_mean(t, &candidates)
                ));
            }
        }
    }
    if bad.is_empty() {
        Ok(out)
    } else {
        Err(format!(
            "{} (allowed: {})",
            bad.join("; "),
            Attr::ALL.map(|a| a.name()).join(", ")
        ))
    }
}
