//! Flattening a Cliq user object into the mirror's columns: the one
//! reader (`crate::cliq::models::user`) settles the variants, this maps its
//! fields onto [`Column`]s and hashes the text as received.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{FlatUser, UserKey};
use crate::cliq::models::user::{Named, Scalar, UserWire};
use crate::mirror::column::Values;

impl FlatUser {
    /// Flatten a user object as received (any of the documented variants:
    /// `id`, `user_id` or `zuid`; nested `department`, `designation`,
    /// `reportingto` objects). `None` if it has no id at all.
    pub fn from_raw(raw: &Value) -> Option<FlatUser> {
        Self::from_map(raw.as_object()?)
    }

    /// As [`FlatUser::from_raw`], from the object's map. The map is written
    /// as text and read by [`FlatUser::from_raw_json`], so both paths share
    /// one mapping; serde_json's Map is ordered by key, so this text is
    /// canonical and its hash changes only when the content does.
    pub fn from_map(obj: &serde_json::Map<String, Value>) -> Option<FlatUser> {
        let raw_json = serde_json::to_string(obj).ok()?;
        Self::from_raw_json(&raw_json).ok().flatten()
    }

    /// Flatten a user object from its JSON text as received (any of the
    /// documented variants: `id`, `user_id` or `zuid`; nested `department`,
    /// `designation`, `reportingto` objects or flat ids; a JSON scalar as
    /// text, blank → `None`), without building a `Value`: strings are
    /// borrowed from the text where they have no escapes. `None` if it has
    /// no id at all. `raw_json` is that text and the content
    /// hash is of it, so it changes only when the server's bytes do (a
    /// server that reorders keys would cost a rewrite of an unchanged row,
    /// never a `user_changes` row: those compare the columns).
    pub fn from_raw_json(raw: &str) -> Result<Option<FlatUser>, serde_json::Error> {
        // The reader has settled the variants (id, e-mail, references): the
        // resolved fields are all this mapping reads.
        let w: UserWire = serde_json::from_str(raw)?;
        let t = |v: Option<Scalar>| v.and_then(Scalar::text);
        let named = |n: &Option<Named>, id: bool| {
            n.as_ref()
                .and_then(|n| if id { n.id.clone() } else { n.name.clone() })
                .and_then(Scalar::text)
        };
        let Some(id) = t(w.id) else {
            return Ok(None);
        };
        let values = Values::from([
            t(w.email_id).map(|e| e.to_lowercase()),
            t(w.first_name),
            t(w.last_name),
            t(w.display_name),
            t(w.full_name),
            t(w.status),
            t(w.employee_id),
            t(w.mobile),
            t(w.phone),
            t(w.extension),
            t(w.work_location),
            t(w.timezone),
            t(w.language),
            t(w.country),
            named(&w.department, true),
            named(&w.department, false),
            named(&w.designation, true),
            named(&w.designation, false),
            named(&w.reportingto, true),
            named(&w.reportingto, false),
        ]);
        Ok(Some(FlatUser {
            id,
            values,
            content_hash: content_hash(raw),
            raw_json: raw.to_owned(),
        }))
    }
}

impl UserKey {
    /// The id and content hash of a user object's JSON text, as
    /// [`FlatUser::from_raw_json`] gives them, without reading the other
    /// fields. `None` if it has no id at all.
    pub fn from_raw_json(raw: &str) -> Result<Option<UserKey>, serde_json::Error> {
        Ok(UserWire::id_of(raw)?
            .and_then(Scalar::text)
            .map(|id| UserKey {
                id,
                content_hash: content_hash(raw),
            }))
    }
}

/// The content hash of a user's JSON text as received.
fn content_hash(raw: &str) -> String {
    hex(&Sha256::digest(raw.as_bytes()))
}

/// Lower-case hex, without a `format!` per byte (this runs for every
/// listed user).
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::Column;

    /// A user flattened from the text as received and from a `Value` of it
    /// (written out again, compact and key-sorted) gets the same columns,
    /// whatever whitespace, escapes or key order the text had.
    #[test]
    fn raw_json_and_value_paths_agree() {
        let org = crate::sim::org::Org::seed(200, 3, chrono::Utc::now());
        let mut texts: Vec<String> = org
            .users
            .values()
            .map(|u| org.render(u, crate::sim::org::Fields::ALL).to_string())
            .collect();
        texts.extend(
            [
                r#"{"user_id": 12, "email_id": " A\u00c9@X.example ", "first_name": "  ",
                   "reporting_to": {"id": 7.5, "name": "M\"x"}, "department_id": 4,
                   "designation": [1, 2], "status": true, "mobile": null,
                   "phone": {"a": 1}, "extension": [], "country": "\t"}"#,
                r#"{"zuid": "9", "reporting_to_zuid": "3", "department": "Ops",
                   "designation": {"id": {"x": 1}, "name": "Lead", "other": [1]}}"#,
                r#"{"id": "1", "id": "2", "timezone": "UTC", "timezone": "Asia/Kolkata",
                   "reportingto": {"name": "Boss"}, "reporting_to": {"id": "5"}}"#,
                r#"{"id": 18446744073709551615, "language": -3, "work_location": 1e3}"#,
                r#"{"email_id": "nobody@x.example"}"#,
            ]
            .map(String::from),
        );
        for text in &texts {
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            let by_value = FlatUser::from_raw(&value);
            let by_text = FlatUser::from_raw_json(text).unwrap();
            assert_eq!(
                by_value.as_ref().map(|u| (&u.id, &u.values)),
                by_text.as_ref().map(|u| (&u.id, &u.values)),
                "{text}"
            );
            let key = UserKey::from_raw_json(text).unwrap();
            assert_eq!(
                key.as_ref().map(|k| (&k.id, &k.content_hash)),
                by_text.as_ref().map(|u| (&u.id, &u.content_hash)),
                "the key alone: {text}"
            );
            if let Some(u) = by_text {
                assert_eq!(u.raw_json, *text);
                assert_eq!(u.content_hash, hex(&Sha256::digest(text.as_bytes())));
            }
        }
        for bad in ["[1]", "{\"id\": \"1\"", "{\"id\": \"1\"} x", "{\"a\": tru}"] {
            assert!(FlatUser::from_raw_json(bad).is_err(), "{bad}");
            assert!(UserKey::from_raw_json(bad).is_err(), "the key alone: {bad}");
        }
    }

    /// What each documented variant flattens to, column by column.
    #[test]
    fn variant_objects_flatten_to_these_columns() {
        let flat = |text: &str| FlatUser::from_raw_json(text).unwrap();
        let u = flat(
            r#"{"user_id": 12, "email_id": " A\u00c9@X.example ", "first_name": "  ",
                "reporting_to": {"id": 7.5, "name": "M\"x"}, "department_id": 4,
                "designation": [1, 2], "status": true, "mobile": null,
                "phone": {"a": 1}, "extension": [], "country": "\t"}"#,
        )
        .unwrap();
        assert_eq!(u.id, "12");
        let expect = [
            (Column::EmailId, Some("aé@x.example")),
            (Column::FirstName, None),
            (Column::Status, Some("true")),
            (Column::Mobile, None),
            (Column::Phone, None),
            (Column::Extension, None),
            (Column::Country, None),
            (Column::DepartmentId, Some("4")),
            (Column::DesignationId, None),
            (Column::DesignationName, None),
            (Column::ReportingToId, Some("7.5")),
            (Column::ReportingToName, Some("M\"x")),
        ];
        for (col, want) in expect {
            assert_eq!(u.get(col), want, "{col}");
        }

        let u = flat(
            r#"{"zuid": "9", "reporting_to_zuid": "3", "department": "Ops",
                "designation": {"id": {"x": 1}, "name": "Lead", "other": [1]}}"#,
        )
        .unwrap();
        assert_eq!(u.id, "9");
        assert_eq!(u.get(Column::ReportingToId), Some("3"));
        // A bare-string reference is its name, never an id.
        assert_eq!(
            (u.get(Column::DepartmentId), u.get(Column::DepartmentName)),
            (None, Some("Ops"))
        );
        assert_eq!(
            (u.get(Column::DesignationId), u.get(Column::DesignationName)),
            (None, Some("Lead"))
        );

        // A key given twice keeps its last value; `reportingto` and
        // `reporting_to` fill in for each other.
        let u = flat(
            r#"{"id": "1", "id": "2", "timezone": "UTC", "timezone": "Asia/Kolkata",
                "reportingto": {"name": "Boss"}, "reporting_to": {"id": "5"}}"#,
        )
        .unwrap();
        assert_eq!(u.id, "2");
        assert_eq!(u.get(Column::Timezone), Some("Asia/Kolkata"));
        assert_eq!(
            (u.get(Column::ReportingToId), u.get(Column::ReportingToName)),
            (Some("5"), Some("Boss"))
        );

        let u =
            flat(r#"{"id": 18446744073709551615, "language": -3, "work_location": 1e3}"#).unwrap();
        assert_eq!(u.id, "18446744073709551615");
        assert_eq!(u.get(Column::Language), Some("-3"));
        assert_eq!(u.get(Column::WorkLocation), Some("1000.0"));

        assert_eq!(flat(r#"{"email_id": "nobody@x.example"}"#), None);
    }

    #[test]
    fn hex_is_lower_case_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }
}
