//! The user fields of add and update bodies: only documented keys (an
//! unknown key costs a 400 and a quota slot), never a `null`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::params::UpdateBodyShape;

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
