//! The single-user endpoints: get, update, add, teams and layouts.

use bytes::Bytes;
use serde_json::Value;

use super::send::Call;
use super::{decode, CliqClient};
use crate::cliq::error::{CliqError, RequestContext};
use crate::cliq::models::{unwrap_data, BatchResult, Fields, Layout, Team, User, UserFields};
use crate::cliq::Endpoint;

impl CliqClient {
    /// `GET /users/{id}` (`fields`: `None` for the default short form).
    pub async fn get_user(&self, id: &str, fields: Option<&Fields>) -> Result<User, CliqError> {
        let ep = Endpoint::GetUser;
        let mut query = Vec::new();
        if let Some(f) = fields.and_then(Fields::to_query_value) {
            query.push(("fields", f));
        }
        let v = self
            .execute(Call {
                ep,
                method: http::Method::GET,
                path: format!("/users/{}", encode_segment(id)),
                query,
                body: None,
                ahead: false,
                ctx: RequestContext::default(),
            })
            .await?;
        User::from_value(unwrap_data(&v).clone()).map_err(|e| decode(ep, e))
    }

    /// `PUT /users/{id}` with the changed `fields` of the user `email`, in
    /// the configured body shape. A response without `success_users` /
    /// `failed_users` (e.g. the updated user, or an empty 204) counts as
    /// success for `email`.
    pub async fn update_user(
        &self,
        id: &str,
        email: &str,
        fields: &UserFields,
    ) -> Result<BatchResult, CliqError> {
        let ep = Endpoint::UpdateUser;
        if fields.is_empty() {
            return Err(CliqError::InvalidRequest {
                endpoint: ep,
                message: format!("nothing to update for {email}"),
            });
        }
        let body = fields.update_body(email, self.inner.cfg.update_body);
        let v = self
            .execute(Call {
                ep,
                method: http::Method::PUT,
                path: format!("/users/{}", encode_segment(id)),
                query: Vec::new(),
                body: Some(Bytes::from(body.to_string())),
                ahead: false,
                ctx: RequestContext {
                    had_cursor: false,
                    sent_fields: sent_fields(fields),
                    write: true,
                },
            })
            .await?;
        if BatchResult::mentions_outcome(&v) {
            BatchResult::from_value(&v).map_err(|e| decode(ep, e))
        } else {
            Ok(BatchResult {
                success_users: vec![email.to_string()],
                failed_users: Vec::new(),
            })
        }
    }

    /// `POST /users`. An empty slice sends nothing.
    pub async fn add_users(&self, users: &[UserFields]) -> Result<BatchResult, CliqError> {
        let ep = Endpoint::AddUsers;
        if users.is_empty() {
            return Ok(BatchResult::default());
        }
        if let Some(i) = users.iter().position(|u| u.email_id.is_none()) {
            return Err(CliqError::InvalidRequest {
                endpoint: ep,
                message: format!("user #{i} has no email_id (required to add a user)"),
            });
        }
        let body = UserFields::add_body(users);
        let v = self
            .execute(Call {
                ep,
                method: http::Method::POST,
                path: "/users".into(),
                query: Vec::new(),
                body: Some(Bytes::from(body.to_string())),
                ahead: false,
                ctx: RequestContext {
                    had_cursor: false,
                    sent_fields: users.iter().flat_map(sent_fields).collect(),
                    write: true,
                },
            })
            .await?;
        BatchResult::from_value(&v).map_err(|e| decode(ep, e))
    }

    /// `GET /users/{id}/teams`.
    pub async fn user_teams(&self, id: &str) -> Result<Vec<Team>, CliqError> {
        let ep = Endpoint::UserTeams;
        let v = self
            .execute(Call {
                ep,
                method: http::Method::GET,
                path: format!("/users/{}/teams", encode_segment(id)),
                query: Vec::new(),
                body: None,
                ahead: false,
                ctx: RequestContext::default(),
            })
            .await?;
        Team::list_from_value(&v).map_err(|e| decode(ep, e))
    }

    /// `GET /users/layout?unique_name=…` (`quick_view`,
    /// `profile_details_android`, `profile_details_ios`, `profile_details_web`).
    pub async fn user_layouts(&self, unique_name: &str) -> Result<Vec<Layout>, CliqError> {
        let ep = Endpoint::UserLayouts;
        let v = self
            .execute(Call {
                ep,
                method: http::Method::GET,
                path: "/users/layout".into(),
                query: vec![("unique_name", unique_name.to_string())],
                body: None,
                ahead: false,
                ctx: RequestContext::default(),
            })
            .await?;
        Layout::list_from_value(&v).map_err(|e| decode(ep, e))
    }
}

/// The fields (and short values) of a body, for error messages.
pub(super) fn sent_fields(f: &UserFields) -> Vec<(String, String)> {
    let json = f.to_json();
    f.keys()
        .into_iter()
        .map(|k| {
            let v = match json.get(&k) {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            let v = if k == "image_data" || v.chars().count() > 80 {
                "…".to_string()
            } else {
                v
            };
            (k, v)
        })
        .collect()
}

/// Percent-encode one path segment (user ids are numeric, but may be emails).
pub(super) fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
