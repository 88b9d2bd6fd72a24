//! The sliding quota windows and the lock periods the simulator enforces, per owner and endpoint.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use http::StatusCode;

use super::{chrono_dur, quotas, Reply, State};
use crate::cliq::endpoint::{Endpoint, Quota};

impl State {
    pub(super) fn bump(map: &mut BTreeMap<Endpoint, u64>, ep: Endpoint) {
        *map.entry(ep).or_default() += 1;
    }

    pub(super) fn quota(&self, ep: Endpoint) -> Quota {
        self.quotas
            .get(&ep)
            .copied()
            .unwrap_or_else(|| quotas::documented(ep).scaled(self.scale))
    }

    pub(super) fn throttled(&mut self, ep: Endpoint) -> Reply {
        State::bump(&mut self.counters.throttled, ep);
        let status = if self.faults.throttle_as_400 {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        Reply::error(
            status,
            "request_limit_exceeded",
            "You have exceeded the URL throttle limits",
        )
    }

    pub(super) fn impose_lock(&mut self, owner: u64, ep: Endpoint, at: DateTime<Utc>) {
        let until = at + chrono_dur(self.quota(ep).lock);
        self.locks.insert((owner, ep), until);
        State::bump(&mut self.counters.locks, ep);
    }

    pub(super) fn locked(&self, owner: u64, ep: Endpoint, at: DateTime<Utc>) -> bool {
        self.locks
            .get(&(owner, ep))
            .is_some_and(|until| at < *until)
    }

    /// Count the arrival in the sliding window; `Some(throttled reply)` if refused.
    pub(super) fn check_quota(
        &mut self,
        owner: u64,
        ep: Endpoint,
        at: DateTime<Utc>,
    ) -> Option<Reply> {
        let q = self.quota(ep);
        let window_start = at - chrono_dur(q.per);
        let arrivals = self.arrivals.entry((owner, ep)).or_default();
        while arrivals.front().is_some_and(|t| *t <= window_start) {
            arrivals.pop_front();
        }
        arrivals.push_back(at);
        let n = u32::try_from(arrivals.len()).unwrap_or(u32::MAX);
        let max = self.counters.max_in_window.entry(ep).or_default();
        *max = (*max).max(n);
        if self.faults.force_throttle || self.locked(owner, ep, at) {
            return Some(self.throttled(ep));
        }
        if n > q.requests {
            tracing::debug!(endpoint = %ep, n, "sim: threshold exceeded, locking");
            self.impose_lock(owner, ep, at);
            return Some(self.throttled(ep));
        }
        None
    }
}
