//! `GET /users/layout` entries: layouts, their sections and fields.

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::{get_str, json_bool, json_i64, list_of, shape, type_name, unwrap_data, ShapeError};

/// One field of a layout section.
#[derive(Debug, Clone, PartialEq)]
pub struct LayoutField {
    pub raw: Map<String, Value>,
    pub id: Option<String>,
    pub label: Option<String>,
    pub unique_name: Option<String>,
    pub status: Option<String>,
    pub sequence_number: Option<i64>,
    pub system_defined: Option<bool>,
}

/// One section of a layout.
#[derive(Debug, Clone, PartialEq)]
pub struct LayoutSection {
    pub raw: Map<String, Value>,
    pub label: Option<String>,
    pub unique_name: Option<String>,
    pub sequence_number: Option<i64>,
    pub system_defined: Option<bool>,
    pub fields: Vec<LayoutField>,
}

/// One entry of `GET /users/layout`.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub raw: Map<String, Value>,
    pub unique_name: Option<String>,
    pub sections: Vec<LayoutSection>,
}

fn objects(v: Option<&Value>) -> impl Iterator<Item = &Map<String, Value>> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

impl Layout {
    pub fn from_value(v: Value) -> Result<Layout, ShapeError> {
        let raw = match v {
            Value::Object(m) => m,
            other => {
                return Err(shape(format!(
                    "a layout must be a JSON object, got {}",
                    type_name(&other)
                )))
            }
        };
        let sections = objects(raw.get("sections"))
            .map(|s| LayoutSection {
                label: get_str(s, "label"),
                unique_name: get_str(s, "unique_name"),
                sequence_number: s.get("sequence_number").and_then(json_i64),
                system_defined: s.get("system_defined").and_then(json_bool),
                fields: objects(s.get("fields"))
                    .map(|f| LayoutField {
                        id: get_str(f, "id"),
                        label: get_str(f, "label"),
                        unique_name: get_str(f, "unique_name"),
                        status: get_str(f, "status"),
                        sequence_number: f.get("sequence_number").and_then(json_i64),
                        system_defined: f.get("system_defined").and_then(json_bool),
                        raw: f.clone(),
                    })
                    .collect(),
                raw: s.clone(),
            })
            .collect();
        Ok(Layout {
            unique_name: get_str(&raw, "unique_name"),
            sections,
            raw,
        })
    }

    /// Parse `{"data": [layouts]}` (or a bare array, or a single layout object).
    pub fn list_from_value(v: &Value) -> Result<Vec<Layout>, ShapeError> {
        let d = unwrap_data(v);
        if d.is_object() {
            return Ok(vec![Layout::from_value(d.clone())?]);
        }
        list_of(v, "layouts", Layout::from_value)
    }
}

impl Serialize for Layout {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn layouts_tolerant() {
        let layouts = Layout::list_from_value(&json!({"data": [{
            "unique_name": "quick_view",
            "sections": [{"label": "Basic", "unique_name": "basic", "sequence_number": 1,
                          "system_defined": true,
                          "fields": [{"label": "Email", "unique_name": "email_id", "status": "enabled",
                                      "sequence_number": "2", "system_defined": true, "id": 55}]}]
        }]}))
        .unwrap();
        assert_eq!(layouts[0].unique_name.as_deref(), Some("quick_view"));
        let f = &layouts[0].sections[0].fields[0];
        assert_eq!(f.id.as_deref(), Some("55"));
        assert_eq!(f.sequence_number, Some(2));
        let bare = Layout::list_from_value(&json!({"data": {"unique_name": "x"}})).unwrap();
        assert_eq!(bare.len(), 1);
        assert!(bare[0].sections.is_empty());
    }
}
