//! Borrowing deserialisation of the user fields the mirror flattens: a
//! pull reads each user's JSON text once, without building a `Value`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

/// A JSON scalar (Cliq sends ids as strings or numbers); anything else
/// (null, an object, an array) is `Other`.
#[derive(Clone, Debug)]
pub enum Scalar<'a> {
    Str(Cow<'a, str>),
    Other,
}

impl Scalar<'_> {
    /// As the `Value` path's `text`: trimmed, empty → `None`.
    pub fn text(self) -> Option<String> {
        match self {
            Scalar::Str(s) => {
                let t = s.trim();
                (!t.is_empty()).then(|| t.to_owned())
            }
            Scalar::Other => None,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            // Numbers as `serde_json::Number` writes them.
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_string())))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(match serde_json::Number::from_f64(v) {
                    Some(n) => Scalar::Str(Cow::Owned(n.to_string())),
                    None => Scalar::Other,
                })
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(if v { "true" } else { "false" })))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Other)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Other)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// `{"id", "name"}` (department, designation, manager); any other value
/// has neither.
#[derive(Clone, Debug, Default)]
pub struct Named<'a> {
    pub id: Option<Scalar<'a>>,
    pub name: Option<Scalar<'a>>,
}

impl<'de> Deserialize<'de> for Named<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Named<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut n = Named::default();
                while let Some(k) = m.next_key::<Key>()? {
                    match k.0 {
                        Field::Id => n.id = Some(m.next_value()?),
                        Field::Name => n.name = Some(m.next_value()?),
                        _ => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(n)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Named::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Named::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Named::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Named::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Named::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Named::default())
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Named::default())
            }
        }
        d.deserialize_any(V)
    }
}

macro_rules! fields {
    ($($name:ident => $key:literal),+ $(,)?) => {
        #[derive(Clone, Copy)]
        pub enum Field { $($name,)+ Other }

        /// An object key, matched without allocating.
        pub struct Key(pub Field);

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
}

/// The flattened fields of a user object. A key given twice keeps its
/// last value, as a `serde_json::Map` does.
#[derive(Default)]
pub struct UserWire<'a> {
    pub id: Option<Scalar<'a>>,
    pub user_id: Option<Scalar<'a>>,
    pub zuid: Option<Scalar<'a>>,
    pub email_id: Option<Scalar<'a>>,
    pub first_name: Option<Scalar<'a>>,
    pub last_name: Option<Scalar<'a>>,
    pub display_name: Option<Scalar<'a>>,
    pub full_name: Option<Scalar<'a>>,
    pub status: Option<Scalar<'a>>,
    pub employee_id: Option<Scalar<'a>>,
    pub mobile: Option<Scalar<'a>>,
    pub phone: Option<Scalar<'a>>,
    pub extension: Option<Scalar<'a>>,
    pub work_location: Option<Scalar<'a>>,
    pub timezone: Option<Scalar<'a>>,
    pub language: Option<Scalar<'a>>,
    pub country: Option<Scalar<'a>>,
    pub department: Option<Named<'a>>,
    pub department_id: Option<Scalar<'a>>,
    pub designation: Option<Named<'a>>,
    pub designation_id: Option<Scalar<'a>>,
    pub reportingto: Option<Named<'a>>,
    pub reporting_to: Option<Named<'a>>,
    pub reporting_to_zuid: Option<Scalar<'a>>,
}

impl<'de> Deserialize<'de> for UserWire<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UserWire<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a user object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut w = UserWire::default();
                while let Some(Key(k)) = m.next_key()? {
                    match k {
                        Field::Id => w.id = Some(m.next_value()?),
                        Field::UserId => w.user_id = Some(m.next_value()?),
                        Field::Zuid => w.zuid = Some(m.next_value()?),
                        Field::EmailId => w.email_id = Some(m.next_value()?),
                        Field::FirstName => w.first_name = Some(m.next_value()?),
                        Field::LastName => w.last_name = Some(m.next_value()?),
                        Field::DisplayName => w.display_name = Some(m.next_value()?),
                        Field::FullName => w.full_name = Some(m.next_value()?),
                        Field::Status => w.status = Some(m.next_value()?),
                        Field::EmployeeId => w.employee_id = Some(m.next_value()?),
                        Field::Mobile => w.mobile = Some(m.next_value()?),
                        Field::Phone => w.phone = Some(m.next_value()?),
                        Field::Extension => w.extension = Some(m.next_value()?),
                        Field::WorkLocation => w.work_location = Some(m.next_value()?),
                        Field::Timezone => w.timezone = Some(m.next_value()?),
                        Field::Language => w.language = Some(m.next_value()?),
                        Field::Country => w.country = Some(m.next_value()?),
                        Field::Department => w.department = Some(m.next_value()?),
                        Field::DepartmentId => w.department_id = Some(m.next_value()?),
                        Field::Designation => w.designation = Some(m.next_value()?),
                        Field::DesignationId => w.designation_id = Some(m.next_value()?),
                        Field::Reportingto => w.reportingto = Some(m.next_value()?),
                        Field::ReportingTo => w.reporting_to = Some(m.next_value()?),
                        Field::ReportingToZuid => w.reporting_to_zuid = Some(m.next_value()?),
                        Field::Name | Field::Other => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(w)
            }
        }
        d.deserialize_map(V)
    }
}
