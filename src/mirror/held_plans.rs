//! Held plans (`held_plans`): the plan a held push would have written, kept
//! for `cliq-sync approve` (see `crate::sync::approve`).
//!
//! A plan *waits* while it is neither consumed nor superseded and no push
//! run newer than its held run ended `ok` (a forced or fixed push that
//! completes releases it, as it releases the held run; see
//! [`Store::held_push`]). Held full pulls are listed beside them: a `held`
//! full run newer than the last full run that ended `ok`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::held::HeldPush;
use super::runs::RunKind;
use super::store::{Store, StoreError};
use crate::clock::to_db;

/// A held plan's ID: "H" + its held run's id (one held run per plan).
pub fn plan_id(run_id: i64) -> String {
    format!("H{run_id}")
}

/// A held plan that waits.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HeldPlan {
    pub id: String,
    pub run_id: i64,
    /// SHA-256 of `plan_json`.
    #[serde(skip)]
    pub plan_hash: String,
    /// What would be written (see the migration for the shape).
    #[serde(skip)]
    pub plan_json: String,
    pub reason: String,
    pub changes: u64,
    pub held_at: String,
    /// Set by `approve ID`; the next push of exactly this plan passes.
    pub approved_at: Option<String>,
}

/// A held plan as it is recorded.
pub(crate) struct NewHeldPlan<'a> {
    pub run_id: i64,
    pub plan_hash: &'a str,
    pub plan_json: &'a str,
    pub reason: &'a str,
    pub changes: u64,
}

const WAITING: &str = "consumed_by_run IS NULL AND superseded_at IS NULL
    AND run_id > coalesce((SELECT max(id) FROM sync_runs WHERE kind = 'push' AND status = 'ok'), 0)";

impl Store {
    /// Record the plan of held run `p.run_id` (once: the same plan held
    /// again is the same run) and supersede every other waiting plan: only
    /// the newest plan can be approved. A superseded plan held again (its
    /// approval was refused, then the source came back) waits again, to be
    /// approved afresh. Returns the plan's ID.
    pub(crate) async fn keep_held_plan(
        &self,
        p: &NewHeldPlan<'_>,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let id = plan_id(p.run_id);
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO held_plans (id, run_id, plan_hash, plan_json, reason, changes, held_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (id) DO UPDATE SET
                 approved_at = CASE WHEN superseded_at IS NULL THEN approved_at END,
                 superseded_at = NULL",
        )
        .bind(&id)
        .bind(p.run_id)
        .bind(p.plan_hash)
        .bind(p.plan_json)
        .bind(p.reason)
        .bind(i64::try_from(p.changes).unwrap_or(i64::MAX))
        .bind(to_db(now))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE held_plans SET superseded_at = ?1
             WHERE id <> ?2 AND consumed_by_run IS NULL AND superseded_at IS NULL",
        )
        .bind(to_db(now))
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The held plans that wait, oldest first.
    pub(crate) async fn waiting_held_plans(&self) -> Result<Vec<HeldPlan>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT id, run_id, plan_hash, plan_json, reason, changes, held_at, approved_at
             FROM held_plans WHERE {WAITING} ORDER BY run_id"
        ))
        .fetch_all(&*self.read())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| HeldPlan {
                id: r.get("id"),
                run_id: r.get("run_id"),
                plan_hash: r.get("plan_hash"),
                plan_json: r.get("plan_json"),
                reason: r.get("reason"),
                changes: u64::try_from(r.get::<i64, _>("changes")).unwrap_or(0),
                held_at: r.get("held_at"),
                approved_at: r.get("approved_at"),
            })
            .collect())
    }

    /// The held full pull that waits, if any (its `last_held_at` is the
    /// run's end).
    pub(crate) async fn held_full_pull(&self) -> Result<Option<HeldPush>, StoreError> {
        self.newest_held(RunKind::Full).await
    }

    /// Mark a waiting plan approved (`true`) or superseded (`false`).
    pub(crate) async fn settle_held_plan(
        &self,
        id: &str,
        approved: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let column = if approved {
            "approved_at"
        } else {
            "superseded_at"
        };
        let mut tx = self.write().await?;
        sqlx::query(&format!(
            "UPDATE held_plans SET {column} = ?1 WHERE id = ?2"
        ))
        .bind(to_db(now))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The waiting approved plan whose content hash is `hash`, if any.
    pub(crate) async fn approved_plan(&self, hash: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(&format!(
            "SELECT id FROM held_plans WHERE {WAITING} AND approved_at IS NOT NULL
               AND plan_hash = ?1 ORDER BY run_id DESC LIMIT 1"
        ))
        .bind(hash)
        .fetch_optional(&*self.read())
        .await?)
    }

    /// Record that push run `run_id` used the approval of plan `id`.
    pub(crate) async fn consume_held_plan(&self, id: &str, run_id: i64) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE held_plans SET consumed_by_run = ?1 WHERE id = ?2")
            .bind(run_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
