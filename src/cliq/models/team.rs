//! `GET /users/{id}/teams` entries.

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::{first_str, get_str, json_bool, json_i64, list_of, shape, type_name, ShapeError};

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn teams_tolerant() {
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
    }
}
