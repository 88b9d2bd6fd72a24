//! `GET /users`: the filtered, keyset-paginated listing.

use std::cmp::Reverse;
use std::ops::Bound;

use chrono::{DateTime, Duration as CDuration, Utc};
use serde::Serialize;

use super::cursor::{CursorError, ListFilter};
use super::validate::{get, invalid_param, parse_query, parse_time};
use super::{DEFAULT_LIMIT, MAX_LIMIT, MODIFIED_HORIZON_DAYS};
use crate::sim::org::{self, Fields, Status, User};
use crate::sim::{Reply, State};

impl State {
    /// `GET /users`
    pub(in crate::sim) fn list_users(&mut self, query: &str, at: DateTime<Utc>) -> Reply {
        let pairs = match parse_query(
            query,
            &[
                "status",
                "plan_type",
                "fields",
                "limit",
                "sort_by",
                "modified_after",
                "next_token",
            ],
        ) {
            Ok(p) => p,
            Err(r) => return r,
        };
        // Without `status`, users of every status are listed (the spec does
        // not say; listing all is what a mirror needs and the stricter choice
        // for a client that must then filter).
        let status = match get(&pairs, "status") {
            None => None,
            Some(s) => match Status::parse(s) {
                Some(s) => Some(s),
                None => return invalid_param(&format!("'{s}' is not a valid value of 'status'.")),
            },
        };
        let paid = match get(&pairs, "plan_type") {
            None => None,
            Some("paid") => Some(true),
            Some("free") => Some(false),
            Some(s) => {
                return invalid_param(&format!("'{s}' is not a valid value of 'plan_type'."))
            }
        };
        let fields = match get(&pairs, "fields") {
            None => Fields::default(),
            Some(s) => match Fields::parse(s) {
                Ok(f) => f,
                Err(m) => return invalid_param(&m),
            },
        };
        let limit = match get(&pairs, "limit") {
            None => DEFAULT_LIMIT,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return invalid_param(&format!(
                        "'limit' must be an integer from 1 to {MAX_LIMIT}."
                    ))
                }
            },
        };
        let by_usage = match get(&pairs, "sort_by") {
            None => false,
            Some("usage") => true,
            Some(s) => return invalid_param(&format!("'{s}' is not a valid value of 'sort_by'.")),
        };
        let modified_after = match get(&pairs, "modified_after") {
            None => None,
            Some(s) => match parse_time(s) {
                Some(t) => Some(t),
                None => {
                    return invalid_param(
                        "'modified_after' must be an RFC 3339 date-time or epoch milliseconds.",
                    )
                }
            },
        };
        let filter = ListFilter {
            status,
            paid,
            by_usage,
            modified_after,
        };
        let after = match get(&pairs, "next_token") {
            None => None,
            Some(token) => match self.open_cursor(token, &filter, at) {
                Ok(p) => Some(p),
                Err(CursorError::Invalid) => {
                    return Reply::bad_request("invalid_next_token", "The next_token is invalid.")
                }
                Err(CursorError::Expired) => {
                    return Reply::bad_request(
                        "invalid_next_token",
                        "The next_token has expired. Start the listing again without next_token.",
                    )
                }
                Err(CursorError::Mismatch) => {
                    return Reply::bad_request(
                        "invalid_next_token",
                        "The next_token was issued for different parameters (status, plan_type, sort_by, modified_after).",
                    )
                }
            },
        };
        // Only modifications within the last 7 days are visible.
        let horizon = at - CDuration::days(MODIFIED_HORIZON_DAYS);
        let cutoff = modified_after.map(|m| m.max(horizon));
        let matches = |u: &User| {
            status.is_none_or(|s| u.status == s)
                && paid.is_none_or(|p| u.paid == p)
                && cutoff.is_none_or(|c| u.tracked_modified.is_some_and(|t| t > c))
        };
        let org = &self.org;
        let users: Box<dyn Iterator<Item = &User>> = if by_usage {
            let start = match &after {
                Some(p) => Bound::Excluded((Reverse(p.u.unwrap_or(0)), p.i)),
                None => Bound::Unbounded,
            };
            Box::new(
                org.by_usage
                    .range((start, Bound::Unbounded))
                    .filter_map(|(_, id)| org.users.get(id)),
            )
        } else {
            let start = match &after {
                Some(p) => Bound::Excluded(p.i),
                None => Bound::Unbounded,
            };
            Box::new(org.users.range((start, Bound::Unbounded)).map(|(_, u)| u))
        };
        let mut page: Vec<&User> = Vec::with_capacity(limit);
        let mut has_more = false;
        for u in users.filter(|u| matches(u)) {
            if page.len() == limit {
                has_more = true;
                break;
            }
            page.push(u);
        }
        // Serialised from borrowed views, no `Value` per user. Fields in the
        // order `serde_json::Map` writes keys, as for [`org::UserView`].
        #[derive(Serialize)]
        struct Page<'a> {
            data: Vec<org::UserView<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            has_more: Option<bool>,
            #[serde(skip_serializing_if = "Option::is_none")]
            next_token: Option<String>,
        }
        // This page's number within the listing (1 = the first page).
        let number = after.as_ref().map_or(0, |p| p.n) + 1;
        // Listing faults: the page says nothing about more (no has_more,
        // no next_token), as a listing that just stops would.
        let cut = self.faults.list_end_early_at_page == Some(number)
            || self.faults.list_empty_page_at == Some(number);
        if cut {
            has_more = false;
        }
        if self.faults.list_empty_page_at == Some(number) {
            page.clear();
        }
        let next_token = page
            .last()
            .filter(|_| has_more)
            .map(|last| self.issue_cursor(&filter, last, number, at));
        Reply::ok(&Page {
            data: page.iter().map(|u| org.view(u, fields)).collect(),
            has_more: (!cut).then_some(has_more),
            next_token,
        })
    }
}
