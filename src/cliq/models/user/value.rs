//! The values a user object's fields hold: scalars (borrowed from the
//! text where they have no escapes) and references.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::{Field, Key};

/// A JSON scalar (Cliq sends ids as strings or numbers); anything else
/// (null, an object, an array) is `Other`.
#[derive(Clone, Debug)]
pub(crate) enum Scalar<'a> {
    Str(Cow<'a, str>),
    Other,
}

impl Scalar<'_> {
    /// As the `Value` path's `text`: trimmed, empty → `None`.
    pub(crate) fn text(self) -> Option<String> {
        match self {
            Scalar::Str(s) => {
                let t = s.trim();
                (!t.is_empty()).then(|| t.to_owned())
            }
            Scalar::Other => None,
        }
    }

    fn is_blank(&self) -> bool {
        match self {
            Scalar::Str(s) => s.trim().is_empty(),
            Scalar::Other => true,
        }
    }
}

/// The first of `options` with text (a blank or non-scalar value gives way
/// to the next, as `text` would read it as absent).
pub(super) fn pick<'a, const N: usize>(options: [Option<Scalar<'a>>; N]) -> Option<Scalar<'a>> {
    let mut last = None;
    for o in options.into_iter().flatten() {
        if !o.is_blank() {
            return Some(o);
        }
        last.get_or_insert(o);
    }
    last
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// Reads any JSON value as a [`Scalar`].
struct ScalarVisitor;
impl<'de> Visitor<'de> for ScalarVisitor {
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
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
        while s.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

/// A reference (department, designation, manager): `{"id", "name"}`
/// (also `zuid`/`user_id`, `display_name`); a bare scalar is its name; any
/// other value has neither.
#[derive(Clone, Debug, Default)]
pub(crate) struct Named<'a> {
    pub id: Option<Scalar<'a>>,
    pub name: Option<Scalar<'a>>,
}

impl<'a> Named<'a> {
    fn bare(name: Scalar<'a>) -> Self {
        Named {
            id: None,
            name: Some(name),
        }
    }

    /// Fill what `self` lacks from flat keys (`department_id`, …).
    pub(super) fn or_flat<const I: usize, const N: usize>(
        self,
        ids: [Option<Scalar<'a>>; I],
        names: [Option<Scalar<'a>>; N],
    ) -> Option<Self> {
        let id = ids.into_iter().fold(self.id, |a, b| pick([a, b]));
        let name = names.into_iter().fold(self.name, |a, b| pick([a, b]));
        (id.is_some() || name.is_some()).then_some(Named { id, name })
    }
}

impl<'de> Deserialize<'de> for Named<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NamedVisitor)
    }
}

/// Reads any JSON value as a [`Named`].
struct NamedVisitor;
impl<'de> Visitor<'de> for NamedVisitor {
    type Value = Named<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let [mut id, mut zuid, mut user_id, mut name, mut display] = Default::default();
        while let Some(k) = m.next_key::<Key>()? {
            let slot = match k.0 {
                Field::Id => &mut id,
                Field::Zuid => &mut zuid,
                Field::UserId => &mut user_id,
                Field::Name => &mut name,
                Field::DisplayName => &mut display,
                _ => {
                    m.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = Some(m.next_value()?);
        }
        Ok(Named {
            id: pick([id, zuid, user_id]),
            name: pick([name, display]),
        })
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
        while s.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Named::default())
    }
    // A bare value is the name (see the module doc).
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Named::bare(Scalar::Str(Cow::Borrowed(v))))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Named::bare(Scalar::Str(Cow::Owned(v.to_owned()))))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Scalar::deserialize(serde::de::value::U64Deserializer::<E>::new(v)).map(Named::bare)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Scalar::deserialize(serde::de::value::I64Deserializer::<E>::new(v)).map(Named::bare)
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Scalar::deserialize(serde::de::value::F64Deserializer::<E>::new(v)).map(Named::bare)
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Scalar::deserialize(serde::de::value::BoolDeserializer::<E>::new(v)).map(Named::bare)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Named::default())
    }
}
