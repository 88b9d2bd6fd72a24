//! The six Cliq Users API endpoints (plus the OAuth token endpoint) and their
//! documented quotas. Names here are the keys of the `[limits]` config table,
//! the `endpoint` column of `endpoint_locks` and the `endpoint` metric label.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A rate-limited operation. Every limit is per Cliq user and per endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `POST /users`
    AddUsers,
    /// `GET /users`
    ListUsers,
    /// `PUT /users/{id}`
    UpdateUser,
    /// `GET /users/{id}`
    GetUser,
    /// `GET /users/{id}/teams`
    UserTeams,
    /// `GET /users/layout`
    UserLayouts,
    /// `POST /oauth/v2/token`: Zoho allows about 10 access tokens per refresh
    /// token per 10 minutes; scheduling it like an endpoint keeps every process
    /// sharing the refresh token under that cap.
    OauthToken,
}

impl Endpoint {
    pub const ALL: [Endpoint; 7] = [
        Endpoint::AddUsers,
        Endpoint::ListUsers,
        Endpoint::UpdateUser,
        Endpoint::GetUser,
        Endpoint::UserTeams,
        Endpoint::UserLayouts,
        Endpoint::OauthToken,
    ];

    /// The six API endpoints (without OAuth).
    pub const API: [Endpoint; 6] = [
        Endpoint::AddUsers,
        Endpoint::ListUsers,
        Endpoint::UpdateUser,
        Endpoint::GetUser,
        Endpoint::UserTeams,
        Endpoint::UserLayouts,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Endpoint::AddUsers => "add_users",
            Endpoint::ListUsers => "list_users",
            Endpoint::UpdateUser => "update_user",
            Endpoint::GetUser => "get_user",
            Endpoint::UserTeams => "user_teams",
            Endpoint::UserLayouts => "user_layouts",
            Endpoint::OauthToken => "oauth_token",
        }
    }

    /// The documented threshold and lock period (spec table).
    pub fn documented_quota(self) -> Quota {
        let m = |n: u64| Duration::from_secs(60 * n);
        let (requests, per, lock) = match self {
            Endpoint::AddUsers => (5, m(1), m(5)),
            Endpoint::ListUsers => (30, m(1), m(10)),
            Endpoint::UpdateUser => (20, m(1), m(10)),
            Endpoint::GetUser => (20, m(1), m(10)),
            Endpoint::UserTeams => (20, m(1), m(10)),
            Endpoint::UserLayouts => (10, m(1), m(10)),
            // Not a documented lock: Zoho answers "Access Denied" until the
            // 10-minute window has room again.
            Endpoint::OauthToken => (10, m(10), m(10)),
        };
        Quota {
            requests,
            per,
            lock,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Endpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Endpoint::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Endpoint::ALL.iter().map(|e| e.name()).collect();
                format!(
                    "unknown endpoint '{s}' (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// "At most `requests` request starts in any window of `per`; exceeding it
/// refuses the endpoint for `lock`."
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub requests: u32,
    pub per: Duration,
    pub lock: Duration,
}

impl Quota {
    /// Multiply window and lock by `factor` (the simulator's `--time-scale`).
    pub fn scaled(self, factor: f64) -> Quota {
        Quota {
            requests: self.requests,
            per: self.per.mul_f64(factor),
            lock: self.lock.mul_f64(factor),
        }
    }
}
