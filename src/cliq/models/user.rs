//! The one reader of a Cliq user object. A pull reads each user's JSON
//! text once through `UserWire`, without building a `Value`; the client
//! (`GET /users/{id}`, reconcile, listings) builds its [`User`] through the
//! same reader, so the mirror and the client cannot disagree on a variant.
//!
//! Tolerated variants, resolved here once: the id as `id`, `user_id` or
//! `zuid`; the e-mail as `email_id` or `email`; a reference (department,
//! designation, reporting-to) as the documented `{"name", "id"}` object
//! (also `zuid`/`user_id` for the id, `display_name` for the name), as flat
//! `department_id`/`department_name`-style keys, or as a bare value. A bare
//! value is the reference's *name*, never its id: `"department": "Ops"` is
//! no Cliq id, and an id taken from it would be compared, snapshotted and
//! sent back as `department_id`.

use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

mod value;
use serde::Serialize;
use serde_json::{Map, Value};
use value::pick;
pub(crate) use value::{Named, Scalar};

use super::{get_str, shape, type_name, ShapeError};

macro_rules! fields {
    ($($name:ident => $key:literal),+ $(,)?) => {
        #[derive(Clone, Copy)]
        enum Field { $($name,)+ Other }

        /// An object key, matched without allocating.
        struct Key(Field);

        impl<'de> Deserialize<'de> for Key {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = Key;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("a key")
                    }
                    fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                        Ok(Key(match v { $($key => Field::$name,)+ _ => Field::Other }))
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

fields! {
    Id => "id", UserId => "user_id", Zuid => "zuid", EmailId => "email_id",
    FirstName => "first_name", LastName => "last_name", DisplayName => "display_name",
    FullName => "full_name", Status => "status", EmployeeId => "employee_id",
    Mobile => "mobile", Phone => "phone", Extension => "extension",
    WorkLocation => "work_location", Timezone => "timezone", Language => "language",
    Country => "country", Department => "department", DepartmentId => "department_id",
    Designation => "designation", DesignationId => "designation_id",
    Reportingto => "reportingto", ReportingTo => "reporting_to",
    ReportingToZuid => "reporting_to_zuid", Name => "name",
    Email => "email", Zoid => "zoid", OrganizationId => "organization_id",
    DepartmentName => "department_name", DesignationName => "designation_name",
    ReportingtoId => "reportingto_id", ReportingtoName => "reportingto_name",
    ReportingToId => "reporting_to_id", ReportingToName => "reporting_to_name",
}

/// The fields of a user object the mirror and the client read, variants
/// resolved (see the module doc): `id`, `email_id`, `department`,
/// `designation` and `reportingto` carry the resolved value; the other
/// spellings stay as received. A key given twice keeps its last value, as a
/// `serde_json::Map` does.
#[derive(Default)]
pub(crate) struct UserWire<'a> {
    pub id: Option<Scalar<'a>>,
    pub user_id: Option<Scalar<'a>>,
    pub zuid: Option<Scalar<'a>>,
    pub email_id: Option<Scalar<'a>>,
    pub first_name: Option<Scalar<'a>>,
    pub last_name: Option<Scalar<'a>>,
    pub display_name: Option<Scalar<'a>>,
    pub full_name: Option<Scalar<'a>>,
    pub name: Option<Scalar<'a>>,
    pub status: Option<Scalar<'a>>,
    pub employee_id: Option<Scalar<'a>>,
    pub mobile: Option<Scalar<'a>>,
    pub phone: Option<Scalar<'a>>,
    pub extension: Option<Scalar<'a>>,
    pub work_location: Option<Scalar<'a>>,
    pub timezone: Option<Scalar<'a>>,
    pub language: Option<Scalar<'a>>,
    pub country: Option<Scalar<'a>>,
    pub zoid: Option<Scalar<'a>>,
    pub organization_id: Option<Scalar<'a>>,
    pub department: Option<Named<'a>>,
    pub department_id: Option<Scalar<'a>>,
    pub designation: Option<Named<'a>>,
    pub designation_id: Option<Scalar<'a>>,
    pub reportingto: Option<Named<'a>>,
    pub reporting_to: Option<Named<'a>>,
    pub reporting_to_zuid: Option<Scalar<'a>>,
    /// Other spellings, folded into the fields above by `resolve`.
    alt: Alternates<'a>,
}

#[derive(Default)]
struct Alternates<'a> {
    email: Option<Scalar<'a>>,
    department_name: Option<Scalar<'a>>,
    designation_name: Option<Scalar<'a>>,
    reportingto_id: Option<Scalar<'a>>,
    reportingto_name: Option<Scalar<'a>>,
    reporting_to_id: Option<Scalar<'a>>,
    reporting_to_name: Option<Scalar<'a>>,
}

/// Where the value of a key goes.
enum Slot<'s, 'a> {
    Scalar(&'s mut Option<Scalar<'a>>),
    Named(&'s mut Option<Named<'a>>),
    Skip,
}

impl<'a> UserWire<'a> {
    fn slot(&mut self, k: Field) -> Slot<'_, 'a> {
        use Slot::{Named as N, Scalar as S};
        match k {
            Field::Id => S(&mut self.id),
            Field::UserId => S(&mut self.user_id),
            Field::Zuid => S(&mut self.zuid),
            Field::EmailId => S(&mut self.email_id),
            Field::FirstName => S(&mut self.first_name),
            Field::LastName => S(&mut self.last_name),
            Field::DisplayName => S(&mut self.display_name),
            Field::FullName => S(&mut self.full_name),
            Field::Name => S(&mut self.name),
            Field::Status => S(&mut self.status),
            Field::EmployeeId => S(&mut self.employee_id),
            Field::Mobile => S(&mut self.mobile),
            Field::Phone => S(&mut self.phone),
            Field::Extension => S(&mut self.extension),
            Field::WorkLocation => S(&mut self.work_location),
            Field::Timezone => S(&mut self.timezone),
            Field::Language => S(&mut self.language),
            Field::Country => S(&mut self.country),
            Field::Zoid => S(&mut self.zoid),
            Field::OrganizationId => S(&mut self.organization_id),
            Field::Department => N(&mut self.department),
            Field::DepartmentId => S(&mut self.department_id),
            Field::Designation => N(&mut self.designation),
            Field::DesignationId => S(&mut self.designation_id),
            Field::Reportingto => N(&mut self.reportingto),
            Field::ReportingTo => N(&mut self.reporting_to),
            Field::ReportingToZuid => S(&mut self.reporting_to_zuid),
            Field::Email => S(&mut self.alt.email),
            Field::DepartmentName => S(&mut self.alt.department_name),
            Field::DesignationName => S(&mut self.alt.designation_name),
            Field::ReportingtoId => S(&mut self.alt.reportingto_id),
            Field::ReportingtoName => S(&mut self.alt.reportingto_name),
            Field::ReportingToId => S(&mut self.alt.reporting_to_id),
            Field::ReportingToName => S(&mut self.alt.reporting_to_name),
            Field::Other => Slot::Skip,
        }
    }

    /// Fold the other spellings in, first with text wins: the object form
    /// of a reference before its flat keys, `reportingto` before
    /// `reporting_to`.
    fn resolve(mut self) -> Self {
        let alt = std::mem::take(&mut self.alt);
        self.id = pick([self.id, self.user_id.clone(), self.zuid.clone()]);
        self.email_id = pick([self.email_id, alt.email]);
        self.department = self
            .department
            .unwrap_or_default()
            .or_flat([self.department_id.clone()], [alt.department_name]);
        self.designation = self
            .designation
            .unwrap_or_default()
            .or_flat([self.designation_id.clone()], [alt.designation_name]);
        let other = self.reporting_to.clone().unwrap_or_default();
        self.reportingto = self.reportingto.unwrap_or_default().or_flat(
            [
                other.id,
                self.reporting_to_zuid.clone(),
                alt.reportingto_id,
                alt.reporting_to_id,
            ],
            [other.name, alt.reportingto_name, alt.reporting_to_name],
        );
        self
    }
}

/// The visitor of a user object: every field, or (`only_id`) the id's
/// three spellings alone, the rest skipped unread.
struct WireVisitor {
    only_id: bool,
}

impl<'de> Visitor<'de> for WireVisitor {
    type Value = UserWire<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a user object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut w = UserWire::default();
        while let Some(Key(k)) = m.next_key()? {
            let is_id = matches!(k, Field::Id | Field::UserId | Field::Zuid);
            match if self.only_id && !is_id {
                Slot::Skip
            } else {
                w.slot(k)
            } {
                Slot::Scalar(s) => *s = Some(m.next_value()?),
                Slot::Named(n) => *n = Some(m.next_value()?),
                Slot::Skip => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(w.resolve())
    }
}

impl<'de> Deserialize<'de> for UserWire<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(WireVisitor { only_id: false })
    }
}

impl<'a> UserWire<'a> {
    /// The resolved id of a user object's JSON text (`id`, else `user_id`,
    /// else `zuid`), read by the same visitor as every other field, so it
    /// is the id a full read gives; the other values are skipped (still
    /// checked to be JSON), which costs a fraction of reading them.
    pub(crate) fn id_of(raw: &'a str) -> Result<Option<Scalar<'a>>, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(raw);
        let w = Deserializer::deserialize_map(&mut de, WireVisitor { only_id: true })?;
        de.end()?;
        Ok(w.id)
    }
}

/// A `{name, id}` reference (department, designation, reporting-to).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct NamedRef {
    pub id: Option<String>,
    pub name: Option<String>,
}

impl NamedRef {
    fn read(n: Option<Named>) -> Option<NamedRef> {
        let n = n?;
        let r = NamedRef {
            id: n.id.and_then(Scalar::text),
            name: n.name.and_then(Scalar::text),
        };
        (r.id.is_some() || r.name.is_some()).then_some(r)
    }
}

/// A Cliq user as the client returns it: the fields [`UserWire`] reads,
/// owned, plus the raw JSON object, kept whole. Serialises back to exactly
/// `raw`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct User {
    /// The user object as received (unknown fields included).
    pub raw: Map<String, Value>,
    /// `id`, else `user_id`, else `zuid`.
    pub id: Option<String>,
    /// `email_id`, else `email`.
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
    /// `reportingto` (also accepted: `reporting_to`, flat `reporting_to_zuid`).
    pub reportingto: Option<NamedRef>,
    pub department: Option<NamedRef>,
    pub designation: Option<NamedRef>,
}

impl User {
    /// Build from a JSON object. Anything but an object is a shape error.
    pub fn from_value(v: Value) -> Result<User, ShapeError> {
        if !v.is_object() {
            return Err(shape(format!(
                "a user must be a JSON object, got {}",
                type_name(&v)
            )));
        }
        let w = UserWire::deserialize(&v).map_err(|e| shape(e.to_string()))?;
        let mut user = User::read(w);
        if let Value::Object(raw) = v {
            user.raw = raw;
        }
        Ok(user)
    }

    fn read(w: UserWire) -> User {
        let t = |s: Option<Scalar>| s.and_then(Scalar::text);
        User {
            raw: Map::new(),
            id: t(w.id),
            email_id: t(w.email_id),
            first_name: t(w.first_name),
            last_name: t(w.last_name),
            display_name: t(w.display_name),
            full_name: t(w.full_name),
            name: t(w.name),
            status: t(w.status),
            employee_id: t(w.employee_id),
            mobile: t(w.mobile),
            phone: t(w.phone),
            extension: t(w.extension),
            work_location: t(w.work_location),
            timezone: t(w.timezone),
            language: t(w.language),
            country: t(w.country),
            zuid: t(w.zuid),
            zoid: t(w.zoid),
            organization_id: t(w.organization_id),
            reportingto: NamedRef::read(w.reportingto),
            department: NamedRef::read(w.department),
            designation: NamedRef::read(w.designation),
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

impl serde::Serialize for User {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
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
        // A bare value is the reference's name, never its id.
        assert_eq!(
            u.reportingto,
            Some(NamedRef {
                id: None,
                name: Some("77".into())
            })
        );
        let d = u.department.unwrap();
        assert_eq!(
            (d.id.as_deref(), d.name.as_deref()),
            (Some("5"), Some("Ops"))
        );
        assert_eq!(u.designation, None);
    }
}
