//! The simulator's own quota table, written from Cliq's documentation
//! (the Endpoints table of the Users API: threshold per minute and lock
//! period, per user and per endpoint), not read from the client's. The
//! simulator is the client's test peer: were it to read the client's
//! numbers, a wrong one would move both together and every test would still
//! pass. A test compares the two tables.

use std::time::Duration;

use crate::cliq::endpoint::{Endpoint, Quota};

/// Zoho mints at most 10 access tokens per refresh token per 10 minutes
/// ("Access Denied" beyond it, until the window has room).
pub const TOKEN_WINDOW: Duration = Duration::from_secs(600);

/// The documented threshold and lock period of an endpoint, unscaled.
pub fn documented(ep: Endpoint) -> Quota {
    let minutes = |n: u64| Duration::from_secs(60 * n);
    let (requests, per, lock) = match ep {
        Endpoint::AddUsers => (5, minutes(1), minutes(5)),
        Endpoint::ListUsers => (30, minutes(1), minutes(10)),
        Endpoint::UpdateUser => (20, minutes(1), minutes(10)),
        Endpoint::GetUser => (20, minutes(1), minutes(10)),
        Endpoint::UserTeams => (20, minutes(1), minutes(10)),
        Endpoint::UserLayouts => (10, minutes(1), minutes(10)),
        Endpoint::OauthToken => (10, TOKEN_WINDOW, TOKEN_WINDOW),
    };
    Quota {
        requests,
        per,
        lock,
    }
}
