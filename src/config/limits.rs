//! `[limits]`: overrides of Cliq's documented quotas, and the rule that
//! they may only be lowered unless `allow_above_documented` says so.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{invalid, ConfigError};
use crate::cliq::quotas::Limits;
use crate::cliq::{Endpoint, Quota};

/// One `[limits]` entry: `{ requests = 30, per = "60s", lock = "10m" }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverride {
    pub requests: Option<u32>,
    #[serde(default, with = "crate::clock::duration_text::option")]
    pub per: Option<Duration>,
    #[serde(default, with = "crate::clock::duration_text::option")]
    pub lock: Option<Duration>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSettings {
    pub add_users: Option<LimitOverride>,
    pub list_users: Option<LimitOverride>,
    pub update_user: Option<LimitOverride>,
    pub get_user: Option<LimitOverride>,
    pub user_teams: Option<LimitOverride>,
    pub user_layouts: Option<LimitOverride>,
    pub oauth_token: Option<LimitOverride>,
    /// Added to every quota window to absorb network jitter (default 500ms).
    #[serde(default, with = "crate::clock::duration_text::option")]
    pub safety_margin: Option<Duration>,
    /// Entries above Cliq's documented quotas (more requests, a shorter
    /// window or lock) are refused unless this is true: the docs say "only
    /// lower them", and a real Cliq locks an endpoint whose quota is exceeded.
    pub allow_above_documented: bool,
}

impl LimitsSettings {
    fn get(&self, ep: Endpoint) -> Option<&LimitOverride> {
        match ep {
            Endpoint::AddUsers => self.add_users.as_ref(),
            Endpoint::ListUsers => self.list_users.as_ref(),
            Endpoint::UpdateUser => self.update_user.as_ref(),
            Endpoint::GetUser => self.get_user.as_ref(),
            Endpoint::UserTeams => self.user_teams.as_ref(),
            Endpoint::UserLayouts => self.user_layouts.as_ref(),
            Endpoint::OauthToken => self.oauth_token.as_ref(),
        }
    }

    /// The documented quotas with these overrides applied.
    pub fn to_limits(&self) -> Result<Limits, ConfigError> {
        let mut limits = Limits::documented();
        for ep in Endpoint::ALL {
            if let Some(o) = self.get(ep) {
                let d = ep.documented_quota();
                let q = Quota {
                    requests: o.requests.unwrap_or(d.requests),
                    per: o.per.unwrap_or(d.per),
                    lock: o.lock.unwrap_or(d.lock),
                };
                let key = format!("limits.{}", ep.name());
                if q.requests == 0 {
                    return Err(invalid(&key, "requests must be at least 1"));
                }
                if q.per.is_zero() {
                    return Err(invalid(&key, "per must be longer than zero"));
                }
                limits.set(ep, q);
            }
        }
        if let Some(m) = self.safety_margin {
            limits.margin = m;
        }
        Ok(limits)
    }

    /// The keys of the entries above the documented quotas (`limits.list_users`).
    pub fn above_documented(&self) -> Vec<String> {
        Endpoint::ALL
            .into_iter()
            .filter(|ep| {
                self.get(*ep)
                    .is_some_and(|o| above(o, ep.documented_quota()))
            })
            .map(|ep| format!("limits.{}", ep.name()))
            .collect()
    }

    /// Refuse an entry above the documented quota unless
    /// `allow_above_documented` says it is meant.
    pub(super) fn check_documented(&self) -> Result<(), ConfigError> {
        if self.allow_above_documented {
            return Ok(());
        }
        let Some(ep) = Endpoint::ALL.into_iter().find(|ep| {
            self.get(*ep)
                .is_some_and(|o| above(o, ep.documented_quota()))
        }) else {
            return Ok(());
        };
        let d = ep.documented_quota();
        let human = |d: Duration| humantime::format_duration(d).to_string();
        Err(invalid(
            &format!("limits.{}", ep.name()),
            format!(
                "is above Cliq's documented quota ({} requests per {}, lock {}); a real Cliq \
                 locks the endpoint for the lock period when it is exceeded. Lower it (only \
                 fewer requests, a longer per or lock are safe), or set [limits] \
                 allow_above_documented = true if your org's quota really is higher",
                d.requests,
                human(d.per),
                human(d.lock)
            ),
        ))
    }
}

/// More requests, a shorter window or a shorter lock than documented.
fn above(o: &LimitOverride, d: Quota) -> bool {
    o.requests.is_some_and(|r| r > d.requests)
        || o.per.is_some_and(|p| p < d.per)
        || o.lock.is_some_and(|l| l < d.lock)
}

/// `[limits]` as in force: every endpoint's `{ requests, per, lock }`,
/// the safety margin and the switch.
pub(super) fn effective_limits(set: &LimitsSettings, limits: &Limits) -> toml::Value {
    let human = |d: Duration| toml::Value::String(humantime::format_duration(d).to_string());
    let mut out = toml::Table::new();
    for ep in Endpoint::ALL {
        let q = limits.get(ep);
        let mut entry = toml::Table::new();
        entry.insert(
            "requests".into(),
            toml::Value::Integer(i64::from(q.requests)),
        );
        entry.insert("per".into(), human(q.per));
        entry.insert("lock".into(), human(q.lock));
        out.insert(ep.name().into(), toml::Value::Table(entry));
    }
    out.insert("safety_margin".into(), human(limits.margin));
    out.insert(
        "allow_above_documented".into(),
        toml::Value::Boolean(set.allow_above_documented),
    );
    toml::Value::Table(out)
}
