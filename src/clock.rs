//! One injectable clock for the whole program.
//!
//! Two notions of time meet in cliq-sync:
//! * *waiting* (quota windows, lock periods, token expiry, cron ticks) runs on
//!   tokio's clock so tests can run a simulated day in milliseconds with
//!   `tokio::time::pause`;
//! * *persisted* facts (the request ledger, endpoint locks, watermarks) are
//!   wall-clock UTC, because they must mean the same thing to another process
//!   or after a restart. A monotonic `Instant` means nothing outside the
//!   process that made it.
//!
//! [`Clock`] bridges the two. In production it reads the system clock. In
//! tests it is *anchored*: a fixed UTC instant plus however far tokio's
//! (possibly paused) clock has moved since, so both notions advance together.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

/// Wall-clock source shared by the scheduler, the token cache, the simulator and the pulls.
#[derive(Clone)]
pub struct Clock {
    kind: Arc<Kind>,
}

enum Kind {
    System,
    Anchored {
        base_utc: DateTime<Utc>,
        base_instant: tokio::time::Instant,
    },
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.kind {
            Kind::System => f.write_str("Clock::System"),
            Kind::Anchored { base_utc, .. } => write!(f, "Clock::Anchored({base_utc})"),
        }
    }
}

impl Clock {
    /// The real wall clock (production).
    pub fn system() -> Self {
        Self {
            kind: Arc::new(Kind::System),
        }
    }

    /// A clock that reads `base_utc` now and then follows tokio's clock.
    /// Under `tokio::time::pause` it advances only as virtual time does.
    /// Must be called inside a tokio runtime.
    pub fn anchored(base_utc: DateTime<Utc>) -> Self {
        Self {
            kind: Arc::new(Kind::Anchored {
                base_utc,
                base_instant: tokio::time::Instant::now(),
            }),
        }
    }

    /// The current UTC time according to this clock.
    pub fn now(&self) -> DateTime<Utc> {
        match &*self.kind {
            Kind::System => Utc::now(),
            Kind::Anchored {
                base_utc,
                base_instant,
            } => {
                let elapsed = tokio::time::Instant::now().saturating_duration_since(*base_instant);
                *base_utc + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::MAX)
            }
        }
    }

    /// Hold tokio's paused clock still while the returned guard lives.
    ///
    /// Under `tokio::time::pause` the runtime jumps to the next timer as soon
    /// as it has nothing to poll, and it cannot see work done on other
    /// threads: SQLite runs on sqlx's worker threads, so a query in flight
    /// would let virtual time leap ahead (and fire sqlx's own acquire
    /// timeout at once). A running `spawn_blocking` task inhibits that
    /// auto-advance, so the guard parks one until it is dropped. Every
    /// database operation takes one, making it take zero virtual time.
    ///
    /// With the system clock (production) this does nothing.
    pub fn hold(&self) -> TimeHold {
        match &*self.kind {
            Kind::System => TimeHold { _release: None },
            Kind::Anchored { .. } => {
                let (tx, rx) = std::sync::mpsc::channel::<()>();
                tokio::task::spawn_blocking(move || {
                    let _ = rx.recv();
                });
                TimeHold { _release: Some(tx) }
            }
        }
    }

    /// Sleep (on tokio's clock) until this clock reads at least `at`.
    ///
    /// The sleep length is computed once from the difference, so a wall-clock
    /// jump in production shortens or lengthens one wait, never loops.
    pub(crate) async fn sleep_until(&self, at: DateTime<Utc>) {
        let wait = until(self.now(), at);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// See [`Clock::hold`]: releases the paused clock when dropped.
#[must_use = "the clock is held only while the guard lives"]
pub struct TimeHold {
    _release: Option<std::sync::mpsc::Sender<()>>,
}

/// The non-negative duration from `now` to `at` (zero if `at` is past).
pub fn until(now: DateTime<Utc>, at: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or(Duration::ZERO)
}

/// Timestamps are stored as RFC 3339 UTC text with millisecond precision and
/// a `Z` suffix: fixed width, so SQLite compares them correctly as text.
pub fn to_db(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parse a timestamp written by [`to_db`] (or any RFC 3339 text).
pub fn from_db(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// An HTTP `Date` header value (RFC 7231 IMF-fixdate, e.g.
/// `Sun, 06 Nov 1994 08:49:37 GMT`): whole seconds, truncated, as servers send it.
pub(crate) fn to_http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Parse an HTTP `Date` header value (IMF-fixdate; RFC 2822 forms with a
/// zone are tolerated). `None` if it is anything else.
pub fn from_http_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `Duration` as humantime text ("250ms", "30s", "10m", "1h 30m"): the
/// config files and the simulator's fault JSON.
pub(crate) mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration \"{text}\": {e} (examples: \"250ms\", \"30s\", \"10m\", \"1h\")"
            ))
        })
    }

    pub(crate) mod option {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(
            d: &Option<Duration>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Duration>, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn anchored_clock_follows_paused_time() {
        let base = from_db("2026-01-01T00:00:00.000Z").unwrap();
        let clock = Clock::anchored(base);
        assert_eq!(clock.now(), base);
        tokio::time::sleep(Duration::from_secs(90)).await;
        assert_eq!(to_db(clock.now()), "2026-01-01T00:01:30.000Z");
        clock
            .sleep_until(base + chrono::Duration::minutes(10))
            .await;
        assert_eq!(to_db(clock.now()), "2026-01-01T00:10:00.000Z");
    }

    #[test]
    fn http_dates_round_trip_at_one_second_resolution() {
        let t = from_db("2026-06-01T09:00:07.900Z").unwrap();
        let text = to_http_date(t);
        assert_eq!(text, "Mon, 01 Jun 2026 09:00:07 GMT");
        // Truncated, never rounded up: a Date never claims a later second.
        assert_eq!(from_http_date(&text), from_db("2026-06-01T09:00:07.000Z"));
        assert_eq!(from_http_date("yesterday"), None);
        assert_eq!(from_http_date(""), None);
    }
}
