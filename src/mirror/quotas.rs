//! The quota ledger (`request_ledger`, in its own file: [`super::ledger`])
//! and the endpoint locks (`endpoint_locks`, in the mirror): the SQL
//! behind the quota scheduler (`cliq::quotas`), which keeps the policy
//! (FIFO order, sleeping, the margin). Endpoints are named as in the ledger (`Endpoint::name`).

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::store::{Store, StoreError};
use crate::clock::{from_db, to_db, Clock};

/// An endpoint's lock as stored in `endpoint_locks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockState {
    pub endpoint: String,
    pub locked_until: DateTime<Utc>,
    pub reason: String,
}

/// The N-th most recent start of an endpoint (`?1`; `?2` = N − 1, see
/// [`nth_back`]), the start that decides whether its window has room,
/// found by its number (see the ledger's schema): the newest start
/// numbered at most `newest` − (N − 1). A number missing below the newest
/// (a start given back by an older binary) makes it a more recent start,
/// never an older one, so a gap can only refuse, never admit.
fn nth_start(newest: &str) -> String {
    format!(
        "SELECT started_at FROM request_ledger
         WHERE endpoint = ?1 AND seq <= {newest} - ?2
         ORDER BY seq DESC LIMIT 1"
    )
}

/// [`nth_start`] on its own, for the wait for a full window.
static NTH_START: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    nth_start("(SELECT max(seq) FROM request_ledger WHERE endpoint = ?1)")
});

/// A start, unless the endpoint is locked or its window is full (see
/// `Store::ledger_take`); written once, as it runs at every request. It is
/// numbered after the newest, and recorded no earlier than the newest (a
/// process that read its clock before another's wrote after it), so that
/// number order is time order.
static TAKE_START: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO request_ledger (endpoint, started_at, seq)
         SELECT ?1, max(?3, coalesce(newest.started_at, '')), coalesce(newest.seq, 0) + 1
         FROM (SELECT 1) LEFT JOIN (SELECT seq, started_at FROM request_ledger
                                    WHERE endpoint = ?1 ORDER BY seq DESC LIMIT 1) AS newest
         WHERE NOT EXISTS (SELECT 1 FROM mirror.endpoint_locks
                           WHERE endpoint = ?1 AND locked_until > ?3)
           AND coalesce(({}), '') <= ?4
         RETURNING id, started_at",
        nth_start("coalesce(newest.seq, 0)")
    )
});

/// N − 1: how far below the newest start the N-th most recent is
/// numbered, for [`nth_start`].
fn nth_back(requests: u32) -> i64 {
    i64::from(requests.max(1) - 1)
}

/// Old starts are pruned at every this many-th start.
const PRUNE_EVERY: i64 = 64;

/// What one start statement did: took a start, or refused it (the
/// endpoint is locked or its window is full).
enum Taken {
    Started(LedgerStart),
    Refused,
}

/// A start as the ledger recorded it: its row (to give it back by, see
/// [`Store::ledger_give_back`]) and its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LedgerStart {
    pub id: i64,
    pub at: DateTime<Utc>,
}

/// What the ledger said to a request that asked to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LedgerAnswer {
    /// Recorded as started.
    Started(LedgerStart),
    /// The endpoint is locked until then.
    Locked(DateTime<Utc>),
    /// The window is full; a slot frees then.
    Full(DateTime<Utc>),
}

impl Store {
    /// Honour a lock (in the mirror, where every process writes and reads
    /// them), and take a start in the ledger's own file ([`super::ledger`])
    /// if `endpoint`'s `window` has room (at most `requests`): one
    /// statement on the ledger's connection, which has the mirror attached
    /// (see [`Ledger`](super::ledger)). A start never waits for the
    /// mirror's writer (a pull's page transaction): the lock is read from
    /// the mirror's last commit.
    pub(crate) async fn ledger_try_start(
        &self,
        endpoint: &str,
        requests: u32,
        window: chrono::Duration,
        clock: &Clock,
    ) -> Result<LedgerAnswer, StoreError> {
        let now = truncate_ms(clock.now());
        match self.ledger_take(endpoint, requests, window, now).await? {
            Taken::Started(start) => Ok(LedgerAnswer::Started(start)),
            // Refused: locked, or the window is full (read again, apart:
            // the rare case).
            Taken::Refused => {
                let locked = self.endpoint_locked_until(endpoint).await?;
                match locked.filter(|until| *until > now) {
                    Some(until) => Ok(LedgerAnswer::Locked(until)),
                    None => Ok(LedgerAnswer::Full(
                        self.ledger_free_at(endpoint, requests, window, now).await?,
                    )),
                }
            }
        }
    }

    /// Record a start unless `endpoint` is locked or its window is full,
    /// in one statement that reads the lock, counts and inserts (a new
    /// start is allowed once the N-th most recent has left the window),
    /// atomic in SQLite. Its time is read just before; if the busy handler
    /// then waited for another process, the time returned is older than
    /// the start, and the scheduler takes a new slot instead of sending
    /// late (see `MAX_RECORD_SKEW` in `cliq::quotas`).
    async fn ledger_take(
        &self,
        endpoint: &str,
        requests: u32,
        window: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<Taken, StoreError> {
        let mut turn = self.ledger.turn().await?;
        let taken: Option<(i64, String)> = sqlx::query_as(&TAKE_START)
            .bind(endpoint)
            .bind(nth_back(requests))
            .bind(to_db(now))
            .bind(to_db(now - window))
            .fetch_optional(&mut *turn)
            .await?;
        let Some((id, recorded)) = taken else {
            return Ok(Taken::Refused);
        };
        // Keep the ledger small (nothing older than the window plus a
        // minute matters), every so often rather than at every start.
        if id % PRUNE_EVERY == 0 {
            sqlx::query("DELETE FROM request_ledger WHERE endpoint = ?1 AND started_at < ?2")
                .bind(endpoint)
                .bind(to_db(now - window - chrono::Duration::minutes(1)))
                .execute(&mut *turn)
                .await?;
        }
        Ok(Taken::Started(LedgerStart {
            id,
            at: from_db(&recorded).unwrap_or(now),
        }))
    }

    /// When a slot of `endpoint`'s full window frees: the N-th most recent
    /// start plus the window (now, if it has left already).
    async fn ledger_free_at(
        &self,
        endpoint: &str,
        requests: u32,
        window: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, StoreError> {
        let Some(pool) = self.ledger.pool() else {
            return Ok(now);
        };
        let _hold = self.clock().hold();
        let nth: Option<String> = sqlx::query_scalar(&NTH_START)
            .bind(endpoint)
            .bind(nth_back(requests))
            .fetch_optional(pool)
            .await?;
        Ok(nth.as_deref().and_then(from_db).map_or(now, |t| t + window))
    }

    /// Remove the newest recorded start of `endpoint` (a refund).
    pub(crate) async fn ledger_refund(&self, endpoint: &str) -> Result<(), StoreError> {
        let mut tx = self.ledger.write().await?;
        sqlx::query(
            "DELETE FROM request_ledger WHERE id = (SELECT id FROM request_ledger
             WHERE endpoint = ?1 ORDER BY seq DESC LIMIT 1)",
        )
        .bind(endpoint)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Remove one start, by its row: one taken ahead of a request that was
    /// then not sent (see `QuotaGate::take_ahead`). By its row, not the
    /// newest: another process may have started since, and removing its
    /// start instead would leave the ledger short in the windows that hold
    /// it. The gap left in the numbers can only refuse, never admit (see
    /// [`nth_start`]).
    pub(crate) async fn ledger_give_back(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self.ledger.write().await?;
        sqlx::query("DELETE FROM request_ledger WHERE id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Lock `endpoint` until `until`; an existing longer lock is kept.
    pub async fn lock_endpoint(
        &self,
        endpoint: &str,
        until: DateTime<Utc>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO endpoint_locks (endpoint, locked_until, reason, locked_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (endpoint) DO UPDATE SET
               locked_until = max(locked_until, excluded.locked_until),
               reason = CASE WHEN excluded.locked_until > locked_until
                             THEN excluded.reason ELSE reason END,
               locked_at = CASE WHEN excluded.locked_until > locked_until
                             THEN excluded.locked_at ELSE locked_at END",
        )
        .bind(endpoint)
        .bind(to_db(until))
        .bind(reason)
        .bind(to_db(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every persisted lock (past ones included: `locked_until` tells).
    pub(crate) async fn endpoint_locks(&self) -> Result<Vec<LockState>, StoreError> {
        let rows = sqlx::query(
            "SELECT endpoint, locked_until, reason FROM endpoint_locks ORDER BY endpoint",
        )
        .fetch_all(&*self.read())
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(LockState {
                    endpoint: r.get("endpoint"),
                    locked_until: from_db(r.get::<&str, _>("locked_until"))?,
                    reason: r.get("reason"),
                })
            })
            .collect())
    }

    /// When `endpoint`'s lock ends, as stored (maybe in the past).
    pub(crate) async fn endpoint_locked_until(
        &self,
        endpoint: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let until: Option<String> =
            sqlx::query_scalar("SELECT locked_until FROM endpoint_locks WHERE endpoint = ?")
                .bind(endpoint)
                .fetch_optional(&*self.read())
                .await?;
        Ok(until.as_deref().and_then(from_db))
    }

    /// Starts of `endpoint` recorded (by any process) after `since`.
    pub(crate) async fn ledger_starts_since(
        &self,
        endpoint: &str,
        since: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let Some(pool) = self.ledger.pool() else {
            return Ok(0);
        };
        let _hold = self.hold();
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM request_ledger WHERE endpoint = ? AND started_at > ?",
        )
        .bind(endpoint)
        .bind(to_db(since))
        .fetch_one(pool)
        .await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
}

/// The ledger keeps milliseconds: a time compared with stored ones must
/// be cut to them first.
pub(crate) fn truncate_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    from_db(&to_db(t)).unwrap_or(t)
}
