//! Held runs (push, and full pulls held by the removal breaker): a push stopped by a safety threshold is a `sync_runs`
//! row with `status = 'held'` (nothing was sent), and it waits until a
//! later push run ends `ok`.
//!
//! One row per incident: a push held for the *same plan* as the last push
//! run (same reason, same planned writes; the caller hashes them) updates
//! that row's `finished_at` (the last time it was held) instead of adding
//! a row, so a daemon ticking every 15 minutes does not bury the runs
//! table. The hash of the plan the last held run stands for is kept in
//! `sync_state` under [`HELD_PLAN_KEY`] as `"<run id> <hash>"`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::runs::RunKind;
use super::store::{Store, StoreError};
use crate::clock::to_db;

/// `sync_state` key: the last held push run and the hash of its plan.
pub(crate) const HELD_PLAN_KEY: &str = "push.held_plan";

/// The held push that waits (see [`Store::held_push`]).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HeldPush {
    pub run_id: i64,
    /// When this plan was first held.
    pub held_at: String,
    /// When a push last held it again.
    pub last_held_at: Option<String>,
    /// `sync_runs.error`: the reason, the plan's size and what to do.
    pub reason: String,
}

impl Store {
    /// Record a held push run for the plan with `hash`, or touch the last
    /// push run if it is held for that same plan. Returns the run's id and
    /// whether it was already there.
    pub(crate) async fn hold_push(
        &self,
        hash: &str,
        error: &str,
        users_seen: u64,
        now: DateTime<Utc>,
    ) -> Result<(i64, bool), StoreError> {
        let mut tx = self.write().await?;
        let last: Option<(i64, String)> = sqlx::query_as(
            "SELECT id, status FROM sync_runs WHERE kind = 'push' AND status <> 'running'
             ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let noted: Option<String> =
            sqlx::query_scalar("SELECT value FROM sync_state WHERE key = ?")
                .bind(HELD_PLAN_KEY)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((id, _)) = last.filter(|(_, s)| s == "held") {
            if noted.as_deref() == Some(format!("{id} {hash}").as_str()) {
                sqlx::query("UPDATE sync_runs SET finished_at = ? WHERE id = ?")
                    .bind(to_db(now))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok((id, true));
            }
        }
        let owner = self.lease();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO sync_runs (kind, started_at, finished_at, status, users_seen, error,
                owner, owner_pid, owner_host)
             VALUES ('push', ?1, ?1, 'held', ?2, ?3, ?4, ?5, ?6) RETURNING id",
        )
        .bind(to_db(now))
        .bind(i64::try_from(users_seen).unwrap_or(i64::MAX))
        .bind(error)
        .bind(owner.id())
        .bind(owner.holder().pid)
        .bind(&owner.holder().host)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO sync_state (key, value, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(HELD_PLAN_KEY)
        .bind(format!("{id} {hash}"))
        .bind(to_db(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((id, false))
    }

    /// The held push run that still waits: the newest held push run newer
    /// than the last push run that ended `ok` (a forced or fixed push that
    /// completes releases it; a failed or stopped one does not, and a
    /// newer held run replaces it). `None` when nothing waits.
    pub(crate) async fn held_push(&self) -> Result<Option<HeldPush>, StoreError> {
        self.newest_held(RunKind::Push).await
    }

    /// The newest held run of `kind` newer than the last one of that kind
    /// that ended `ok` (a held full pull waits the same way).
    pub(crate) async fn newest_held(&self, kind: RunKind) -> Result<Option<HeldPush>, StoreError> {
        // The parameter comes first: tests/it/logs.rs greps the source for
        // a run kind logged in its Debug spelling, and the other order looks
        // like one.
        let row = sqlx::query(
            "SELECT id, started_at, finished_at, coalesce(error, '') AS error FROM sync_runs
             WHERE ?1 = kind AND status = 'held'
               AND id > coalesce((SELECT max(id) FROM sync_runs
                                  WHERE ?1 = kind AND status = 'ok'), 0)
             ORDER BY id DESC LIMIT 1",
        )
        .bind(kind.as_str())
        .fetch_optional(&*self.read())
        .await?;
        Ok(row.map(|r| HeldPush {
            run_id: r.get("id"),
            held_at: r.get("started_at"),
            last_held_at: r.get("finished_at"),
            reason: r.get("error"),
        }))
    }
}
