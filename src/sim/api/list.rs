//! `GET /users`: the filtered, keyset-paginated listing.

use std::cmp::Reverse;
use std::ops::Bound;

use chrono::{DateTime, Duration as CDuration, Utc};
use serde::Serialize;

use super::cursor::{CursorError, CursorPayload, ListFilter};
use super::validate::{get, invalid_param, parse_query, parse_time};
use super::{DEFAULT_LIMIT, MAX_LIMIT, MODIFIED_HORIZON_DAYS};
use crate::sim::org::{self, Fields, Status, User};
use crate::sim::{Reply, State};

/// The query parameters `GET /users` accepts.
const LIST_PARAMS: &[&str] = &[
    "status",
    "plan_type",
    "fields",
    "limit",
    "sort_by",
    "modified_after",
    "next_token",
];

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

impl State {
    /// `GET /users`
    pub(in crate::sim) fn list_users(&mut self, query: &str, at: DateTime<Utc>) -> Reply {
        let (filter, fields, limit, after) = match self.list_request(query, at) {
            Ok(r) => r,
            Err(r) => return r,
        };
        let (mut page, mut has_more) = self.matching_page(&filter, after.as_ref(), limit, at);
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
            data: page.iter().map(|u| self.org.view(u, fields)).collect(),
            has_more: (!cut).then_some(has_more),
            next_token,
        })
    }

    /// The validated request: filter, fields, page size and the cursor it
    /// continues from; checked in the order the parameters are listed.
    fn list_request(
        &self,
        query: &str,
        at: DateTime<Utc>,
    ) -> Result<(ListFilter, Fields, usize, Option<CursorPayload>), Reply> {
        let pairs = parse_query(query, LIST_PARAMS)?;
        let status = status_param(&pairs)?;
        let paid = plan_type_param(&pairs)?;
        let fields = fields_param(&pairs)?;
        let limit = limit_param(&pairs)?;
        let by_usage = sort_by_param(&pairs)?;
        let modified_after = modified_after_param(&pairs)?;
        let filter = ListFilter {
            status,
            paid,
            by_usage,
            modified_after,
        };
        let after = match get(&pairs, "next_token") {
            None => None,
            Some(token) => Some(
                self.open_cursor(token, &filter, at)
                    .map_err(cursor_refusal)?,
            ),
        };
        Ok((filter, fields, limit, after))
    }

    /// Up to `limit` users matching `filter` after the cursor, and whether
    /// more follow.
    fn matching_page(
        &self,
        filter: &ListFilter,
        after: Option<&CursorPayload>,
        limit: usize,
        at: DateTime<Utc>,
    ) -> (Vec<&User>, bool) {
        let ListFilter {
            status,
            paid,
            modified_after,
            ..
        } = *filter;
        // Only modifications within the last 7 days are visible.
        let horizon = at - CDuration::days(MODIFIED_HORIZON_DAYS);
        let cutoff = modified_after.map(|m| m.max(horizon));
        let matches = |u: &User| {
            status.is_none_or(|s| u.status == s)
                && paid.is_none_or(|p| u.paid == p)
                && cutoff.is_none_or(|c| u.tracked_modified.is_some_and(|t| t > c))
        };
        let mut page: Vec<&User> = Vec::with_capacity(limit);
        let mut has_more = false;
        for u in self
            .users_after(filter.by_usage, after)
            .filter(|u| matches(u))
        {
            if page.len() == limit {
                has_more = true;
                break;
            }
            page.push(u);
        }
        (page, has_more)
    }

    /// Every user after the cursor's key, in listing order (usage or id).
    fn users_after<'a>(
        &'a self,
        by_usage: bool,
        after: Option<&CursorPayload>,
    ) -> Box<dyn Iterator<Item = &'a User> + 'a> {
        let org = &self.org;
        if by_usage {
            let start = match after {
                Some(p) => Bound::Excluded((Reverse(p.u.unwrap_or(0)), p.i)),
                None => Bound::Unbounded,
            };
            Box::new(
                org.by_usage
                    .range((start, Bound::Unbounded))
                    .filter_map(|(_, id)| org.users.get(id)),
            )
        } else {
            let start = match after {
                Some(p) => Bound::Excluded(p.i),
                None => Bound::Unbounded,
            };
            Box::new(org.users.range((start, Bound::Unbounded)).map(|(_, u)| u))
        }
    }
}

/// The 400 for a `next_token` that cannot continue this listing.
fn cursor_refusal(e: CursorError) -> Reply {
    match e {
        CursorError::Invalid => {
            Reply::bad_request("invalid_next_token", "The next_token is invalid.")
        }
        CursorError::Expired => Reply::bad_request(
            "invalid_next_token",
            "The next_token has expired. Start the listing again without next_token.",
        ),
        CursorError::Mismatch => Reply::bad_request(
            "invalid_next_token",
            "The next_token was issued for different parameters (status, plan_type, sort_by, modified_after).",
        ),
    }
}

fn status_param(pairs: &[(String, String)]) -> Result<Option<Status>, Reply> {
    // Without `status`, users of every status are listed (the spec does
    // not say; listing all is what a mirror needs and the stricter choice
    // for a client that must then filter).
    match get(pairs, "status") {
        None => Ok(None),
        Some(s) => match Status::parse(s) {
            Some(s) => Ok(Some(s)),
            None => Err(invalid_param(&format!(
                "'{s}' is not a valid value of 'status'."
            ))),
        },
    }
}

fn plan_type_param(pairs: &[(String, String)]) -> Result<Option<bool>, Reply> {
    match get(pairs, "plan_type") {
        None => Ok(None),
        Some("paid") => Ok(Some(true)),
        Some("free") => Ok(Some(false)),
        Some(s) => Err(invalid_param(&format!(
            "'{s}' is not a valid value of 'plan_type'."
        ))),
    }
}

fn fields_param(pairs: &[(String, String)]) -> Result<Fields, Reply> {
    match get(pairs, "fields") {
        None => Ok(Fields::default()),
        Some(s) => Fields::parse(s).map_err(|m| invalid_param(&m)),
    }
}

fn limit_param(pairs: &[(String, String)]) -> Result<usize, Reply> {
    match get(pairs, "limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(invalid_param(&format!(
                "'limit' must be an integer from 1 to {MAX_LIMIT}."
            ))),
        },
    }
}

fn sort_by_param(pairs: &[(String, String)]) -> Result<bool, Reply> {
    match get(pairs, "sort_by") {
        None => Ok(false),
        Some("usage") => Ok(true),
        Some(s) => Err(invalid_param(&format!(
            "'{s}' is not a valid value of 'sort_by'."
        ))),
    }
}

fn modified_after_param(pairs: &[(String, String)]) -> Result<Option<DateTime<Utc>>, Reply> {
    match get(pairs, "modified_after") {
        None => Ok(None),
        Some(s) => match parse_time(s) {
            Some(t) => Ok(Some(t)),
            None => Err(invalid_param(
                "'modified_after' must be an RFC 3339 date-time or epoch milliseconds.",
            )),
        },
    }
}
