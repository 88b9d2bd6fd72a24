//! The outcome of an add or update (`success_users`, `failed_users`).

use serde::Serialize;
use serde_json::Value;

use super::{first_str, json_string, shape, type_name, unwrap_data, ShapeError};

/// The outcome of an add or update: which emails succeeded, which failed with
/// which per-email code (`zohoaccount.conflict`, `email.activeuser`, …).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct BatchResult {
    pub success_users: Vec<String>,
    /// `(email, code)`; the code is `"unknown"` when Cliq gave none.
    pub failed_users: Vec<(String, String)>,
}

impl BatchResult {
    /// Parse `{"data": {"success_users": [...], "failed_users": …}}` (or the
    /// inner object alone). `failed_users` may be a map email → code (code a
    /// string or `{code, message}`), an array of `{email_id|email, code|error}`
    /// objects, or an array of email strings.
    pub fn from_value(v: &Value) -> Result<BatchResult, ShapeError> {
        let d = unwrap_data(v);
        if !(d.is_object() || d.is_null()) {
            return Err(shape(format!(
                "batch result: expected an object, got {}",
                type_name(d)
            )));
        }
        let mut out = BatchResult::default();
        success_users(d, &mut out.success_users);
        failed_users(d, &mut out.failed_users);
        Ok(out)
    }

    /// Did the response mention `success_users` or `failed_users` at all?
    pub(crate) fn mentions_outcome(v: &Value) -> bool {
        let d = unwrap_data(v);
        d.get("success_users").is_some() || d.get("failed_users").is_some()
    }

    pub fn is_success(&self, email: &str) -> bool {
        self.success_users
            .iter()
            .any(|e| e.eq_ignore_ascii_case(email))
    }

    pub fn failure_code(&self, email: &str) -> Option<&str> {
        self.failed_users
            .iter()
            .find(|(e, _)| e.eq_ignore_ascii_case(email))
            .map(|(_, c)| c.as_str())
    }
}

fn success_users(d: &Value, out: &mut Vec<String>) {
    match d.get("success_users") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for it in items {
                if let Some(e) = email_of(it) {
                    out.push(e);
                }
            }
        }
        Some(Value::Object(m)) => out.extend(m.keys().cloned()),
        Some(other) => {
            if let Some(e) = json_string(other) {
                out.push(e);
            }
        }
    }
}

/// `failed_users`: a map email → code, an array of objects or of emails.
fn failed_users(d: &Value, out: &mut Vec<(String, String)>) {
    match d.get("failed_users") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (email, code) in m {
                out.push((email.clone(), code_of(code)));
            }
        }
        Some(Value::Array(items)) => {
            for it in items {
                match it {
                    Value::Object(m) => {
                        let email = first_str(m, &["email_id", "email", "emailid", "user"])
                            .unwrap_or_default();
                        let code = ["code", "error", "error_code", "reason", "message"]
                            .iter()
                            .find_map(|k| m.get(*k).map(code_of))
                            .unwrap_or_else(|| "unknown".into());
                        out.push((email, code));
                    }
                    other => {
                        if let Some(e) = json_string(other) {
                            out.push((e, "unknown".into()));
                        }
                    }
                }
            }
        }
        Some(other) => {
            if let Some(e) = json_string(other) {
                out.push((e, "unknown".into()));
            }
        }
    }
}

fn email_of(v: &Value) -> Option<String> {
    match v {
        Value::Object(m) => first_str(m, &["email_id", "email"]),
        other => json_string(other),
    }
}

fn code_of(v: &Value) -> String {
    match v {
        Value::Object(m) => first_str(m, &["code", "error", "error_code", "message"])
            .unwrap_or_else(|| "unknown".into()),
        other => json_string(other).unwrap_or_else(|| "unknown".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn batch_result_failed_users_as_map() {
        let r = BatchResult::from_value(&json!({"data": {
            "success_users": ["a@x.com"],
            "failed_users": {"b@x.com": "email.activeuser", "c@x.com": {"code": "zohoaccount.conflict"}}
        }}))
        .unwrap();
        assert_eq!(r.success_users, vec!["a@x.com"]);
        assert_eq!(
            r.failed_users,
            vec![
                ("b@x.com".to_string(), "email.activeuser".to_string()),
                ("c@x.com".to_string(), "zohoaccount.conflict".to_string())
            ]
        );
        assert!(r.is_success("A@x.com"));
        assert_eq!(r.failure_code("b@x.com"), Some("email.activeuser"));
    }

    #[test]
    fn batch_result_failed_users_as_array() {
        let r = BatchResult::from_value(&json!({"data": {
            "success_users": [],
            "failed_users": [
                {"email_id": "b@x.com", "code": "email.pendinguser"},
                {"email": "c@x.com", "error": "email.invitation.blocked"},
                "d@x.com"
            ]
        }}))
        .unwrap();
        assert!(r.success_users.is_empty());
        assert_eq!(
            r.failed_users,
            vec![
                ("b@x.com".to_string(), "email.pendinguser".to_string()),
                (
                    "c@x.com".to_string(),
                    "email.invitation.blocked".to_string()
                ),
                ("d@x.com".to_string(), "unknown".to_string()),
            ]
        );
        // Unwrapped and empty forms.
        let r = BatchResult::from_value(&json!({"success_users": [{"email_id": "e@x"}]})).unwrap();
        assert_eq!(r.success_users, vec!["e@x"]);
        assert_eq!(
            BatchResult::from_value(&json!({})).unwrap(),
            BatchResult::default()
        );
        assert!(BatchResult::from_value(&json!({"data": [1]})).is_err());
    }
}
