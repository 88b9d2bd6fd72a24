//! The six API endpoints: the lookups here, the listing, add, update,
//! validation and cursors in the submodules.

mod add;
mod cursor;
mod list;
mod update;
mod validate;

use http::StatusCode;
use serde_json::json;

use super::org::{self, Fields, User};
use super::{Reply, State};
use validate::{get, invalid_param, parse_query};

/// Default page size of `GET /users`.
pub(crate) const DEFAULT_LIMIT: usize = 50;
pub(crate) const MAX_LIMIT: usize = 100;
/// Most users one POST may add.
pub(crate) const MAX_ADD: usize = 100;
/// Cursor lifetime before scaling.
const CURSOR_TTL: std::time::Duration = std::time::Duration::from_secs(600);
/// How far back `modified_after` can see.
const MODIFIED_HORIZON_DAYS: i64 = 7;

fn user_not_found() -> Reply {
    Reply::error(
        StatusCode::NOT_FOUND,
        "user_not_found",
        "The requested user does not exist.",
    )
}

impl State {
    fn find_user(&self, id: &str) -> Option<&User> {
        self.org.users.get(&id.parse::<u64>().ok()?)
    }

    /// `GET /users/{id}`
    pub(in crate::sim) fn get_user(&mut self, id: &str, query: &str) -> Reply {
        let pairs = match parse_query(query, &["fields"]) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let fields = match get(&pairs, "fields") {
            None => Fields::default(),
            Some(s) => match Fields::parse(s) {
                Ok(f) => f,
                Err(m) => return invalid_param(&m),
            },
        };
        match self.find_user(id) {
            Some(u) => Reply::ok(&json!({"data": self.org.render(u, fields)})),
            None => user_not_found(),
        }
    }

    /// `GET /users/{id}/teams`
    pub(in crate::sim) fn user_teams(&mut self, id: &str, query: &str) -> Reply {
        if let Err(r) = parse_query(query, &[]) {
            return r;
        }
        match self.find_user(id) {
            Some(u) => Reply::ok(&json!({"data": self.org.teams_of(u)})),
            None => user_not_found(),
        }
    }

    /// `GET /users/layout`
    pub(in crate::sim) fn user_layouts(&mut self, query: &str) -> Reply {
        let pairs = match parse_query(query, &["unique_name"]) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let Some(name) = get(&pairs, "unique_name") else {
            return invalid_param("The parameter 'unique_name' is mandatory.");
        };
        match org::layout(name) {
            Some(l) => Reply::ok(&l),
            None => invalid_param(&format!(
                "'{name}' is not a valid value of 'unique_name' (expected one of {}).",
                org::LAYOUT_NAMES.join(", ")
            )),
        }
    }
}
