//! Pages of `GET /users`: typed ([`UsersPage`], for the client's few
//! listings) and raw ([`RawUsersPage`], the pull's hot path: each user left
//! as the JSON text received). Both continue a listing the same way.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::user::User;
use super::{json_bool, json_string, shape, type_name, ShapeError};

/// One page of `GET /users`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UsersPage {
    pub users: Vec<User>,
    /// The cursor for the next page; `None` on the last page.
    pub next_token: Option<String>,
    /// `false` on the last page (normalised: `has_more` implies `next_token`).
    pub has_more: bool,
    /// The HTTP `Date` of the answer (Cliq's clock, whole seconds); set by
    /// the client, `None` if the header was absent or unparseable.
    pub server_date: Option<DateTime<Utc>>,
}

impl UsersPage {
    /// Parse `{"next_token", "has_more", "data": [users]}` (also tolerated:
    /// `users` instead of `data`, a missing `has_more`, an empty cursor).
    pub fn from_value(v: &Value) -> Result<UsersPage, ShapeError> {
        Self::from_owned(v.clone())
    }

    /// As [`UsersPage::from_value`], taking the body: the user objects move
    /// into the page instead of being copied.
    pub fn from_owned(mut v: Value) -> Result<UsersPage, ShapeError> {
        let token = v.get("next_token").and_then(json_string);
        let has_more_field = v.get("has_more").and_then(json_bool);
        let list = match &mut v {
            Value::Array(items) => std::mem::take(items),
            Value::Object(m) => match (m.get("data"), m.get("users")) {
                (Some(Value::Array(_)), _) => match m.get_mut("data") {
                    Some(Value::Array(items)) => std::mem::take(items),
                    _ => Vec::new(),
                },
                (_, Some(Value::Array(_))) => match m.get_mut("users") {
                    Some(Value::Array(items)) => std::mem::take(items),
                    _ => Vec::new(),
                },
                (None | Some(Value::Null), None | Some(Value::Null)) => Vec::new(),
                (Some(other), _) | (None, Some(other)) => {
                    return Err(shape(format!(
                        "list users: `data` must be an array, got {}",
                        type_name(other)
                    )))
                }
            },
            other => {
                return Err(shape(format!(
                    "list users: expected an object, got {}",
                    type_name(other)
                )))
            }
        };
        let users = list
            .into_iter()
            .enumerate()
            .map(|(i, u)| {
                User::from_value(u).map_err(|e| shape(format!("list users: item {i}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (next_token, has_more) = continuation(token, has_more_field).map_err(shape)?;
        Ok(UsersPage {
            users,
            next_token,
            has_more,
            server_date: None,
        })
    }

    pub fn is_last(&self) -> bool {
        !self.has_more
    }
}

/// Where a listing goes after a page: `(next_token, has_more)`. The spec:
/// "the last page has no next_token (or has_more: false)". So a cursor
/// without `has_more` continues, `has_more: false` ends whatever the
/// cursor, and neither ends. But `has_more: true` without a cursor is a
/// broken page, not the end: taken as the end, an incomplete listing would
/// look complete and mark everyone after it removed.
fn continuation(
    token: Option<String>,
    has_more: Option<bool>,
) -> Result<(Option<String>, bool), String> {
    match (token, has_more) {
        (None, Some(true)) => Err(
            "list users: the page says has_more but carries no next_token; \
             the listing cannot continue and is not complete"
                .into(),
        ),
        (Some(t), None | Some(true)) => Ok((Some(t), true)),
        (_, _) => Ok((None, false)),
    }
}

/// One page of `GET /users` with each user left as the JSON text received:
/// what a pull stores, without building a `Value` per user (the shape
/// tolerance is that of [`UsersPage`]).
#[derive(Debug, Default)]
pub struct RawUsersPage {
    pub users: Vec<Box<RawValue>>,
    pub next_token: Option<String>,
    pub has_more: bool,
    /// As [`UsersPage::server_date`].
    pub server_date: Option<DateTime<Utc>>,
}

impl RawUsersPage {
    /// Parse a body. A `serde_json` *data* error means the body has another
    /// shape; any other error that it is damaged.
    pub fn from_slice(body: &[u8]) -> Result<RawUsersPage, RawPageError> {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(default)]
            data: Option<Vec<Box<RawValue>>>,
            #[serde(default)]
            users: Option<Vec<Box<RawValue>>>,
            #[serde(default)]
            next_token: Option<Value>,
            #[serde(default)]
            has_more: Option<Value>,
        }
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        let (list, token, has_more_field) = match first {
            Some(b'[') => (
                serde_json::from_slice::<Vec<Box<RawValue>>>(body)?,
                None,
                None,
            ),
            Some(b'{') => {
                let w: Wire = serde_json::from_slice(body)?;
                (
                    w.data.or(w.users).unwrap_or_default(),
                    w.next_token.as_ref().and_then(json_string),
                    w.has_more.as_ref().and_then(json_bool),
                )
            }
            _ => {
                // Not an object or array: let serde_json say what it is.
                let v: Value = serde_json::from_slice(body)?;
                return Err(RawPageError::Shape(format!(
                    "list users: expected an object, got {}",
                    type_name(&v)
                )));
            }
        };
        if let Some(i) = list.iter().position(|u| !u.get().starts_with('{')) {
            return Err(RawPageError::Shape(format!(
                "list users: item {i}: a user must be a JSON object"
            )));
        }
        let (next_token, has_more) =
            continuation(token, has_more_field).map_err(RawPageError::Shape)?;
        Ok(RawUsersPage {
            users: list,
            next_token,
            has_more,
            server_date: None,
        })
    }

    pub fn is_last(&self) -> bool {
        !self.has_more
    }
}

/// Why a body is not a [`RawUsersPage`].
#[derive(Debug)]
pub enum RawPageError {
    /// Valid JSON of another shape.
    Shape(String),
    /// Not valid JSON (e.g. cut short).
    Json(serde_json::Error),
}

impl From<serde_json::Error> for RawPageError {
    fn from(e: serde_json::Error) -> Self {
        match e.classify() {
            serde_json::error::Category::Data => RawPageError::Shape(e.to_string()),
            _ => RawPageError::Json(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn users_page_shapes() {
        let p = UsersPage::from_value(&json!({
            "next_token": "abc", "has_more": true, "data": [{"id": "1"}, {"id": 2}]
        }))
        .unwrap();
        assert_eq!(p.users.len(), 2);
        assert_eq!(p.next_token.as_deref(), Some("abc"));
        assert!(p.has_more && !p.is_last());

        // has_more false wins over a token.
        let p = UsersPage::from_value(&json!({"next_token": "abc", "has_more": false, "data": []}))
            .unwrap();
        assert!(p.is_last());
        assert_eq!(p.next_token, None);

        // No token and no has_more: last page; missing data = empty.
        let p = UsersPage::from_value(&json!({"data": []})).unwrap();
        assert!(p.is_last() && p.users.is_empty());

        // has_more true without a cursor is a broken page, not the end: a
        // listing accepted as complete there would mark the rest removed.
        for body in [
            json!({"has_more": true}),
            json!({"has_more": true, "next_token": "", "data": [{"id": "1"}]}),
        ] {
            let e = UsersPage::from_value(&body).unwrap_err();
            assert!(e.to_string().contains("has_more"), "{e}");
        }

        // Token without has_more: more pages.
        let p = UsersPage::from_value(&json!({"next_token": "t", "users": [{"id": "1"}]})).unwrap();
        assert!(p.has_more);
        assert_eq!(p.users.len(), 1);

        // Empty token string = last page.
        let p = UsersPage::from_value(&json!({"next_token": "", "data": []})).unwrap();
        assert!(p.is_last());

        assert!(UsersPage::from_value(&json!({"data": "nope"})).is_err());
        assert!(UsersPage::from_value(&json!({"data": [1]})).is_err());
    }

    /// The raw page accepts and refuses exactly what the typed page does.
    #[test]
    fn raw_users_page_matches_users_page() {
        let bodies = [
            r#"{"next_token": "abc", "has_more": true, "data": [{"id": "1"}, {"id": 2}]}"#,
            r#"{"next_token": "abc", "has_more": false, "data": []}"#,
            r#"{"has_more": true}"#,
            r#"{"next_token": "t", "users": [{"id": "1"}]}"#,
            r#"{"next_token": "", "data": []}"#,
            r#"{"next_token": 5, "has_more": "yes", "data": null}"#,
            r#"[{"id": "1"}]"#,
            r#"{"data": "nope"}"#,
            r#"{"data": [1]}"#,
            r#""text""#,
        ];
        for body in bodies {
            let typed = UsersPage::from_value(&serde_json::from_str(body).unwrap());
            let raw = RawUsersPage::from_slice(body.as_bytes());
            match (typed, raw) {
                (Ok(t), Ok(r)) => {
                    assert_eq!(t.users.len(), r.users.len(), "{body}");
                    assert_eq!(t.next_token, r.next_token, "{body}");
                    assert_eq!(t.has_more, r.has_more, "{body}");
                }
                (Err(_), Err(RawPageError::Shape(_))) => {}
                (t, r) => panic!("{body}: typed {t:?}, raw {r:?}"),
            }
        }
        // A body cut short is damaged, not of another shape (retried).
        assert!(matches!(
            RawUsersPage::from_slice(br#"{"data": [{"id": "1"}, {"id""#),
            Err(RawPageError::Json(_))
        ));
    }
}
