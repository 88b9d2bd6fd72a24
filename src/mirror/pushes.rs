//! The `pushes` and `push_failures` tables, and the mirror user a plan
//! reads (streamed by [`super::plan_join`]).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::column::{Column, Values};
use super::store::{Store, StoreError};
use crate::clock::to_db;

/// One user of the mirror as a plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorUser {
    pub id: String,
    /// Lowercased (the mirror stores emails lowercased).
    pub email: Option<String>,
    pub status: Option<String>,
    pub removed: bool,
    /// Values of [`Column::PLAN`] (the other columns are `None`).
    pub values: Values,
}

impl MirrorUser {
    pub fn get(&self, column: Column) -> Option<&str> {
        self.values.get(column)
    }
}

/// The `status` column of `pushes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PushStatus {
    Planned,
    Applied,
    Failed,
    Skipped,
}

impl PushStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PushStatus::Planned => "planned",
            PushStatus::Applied => "applied",
            PushStatus::Failed => "failed",
            PushStatus::Skipped => "skipped",
        }
    }
}

/// A new `pushes` row.
#[derive(Debug, Clone)]
pub struct NewPush<'a> {
    pub run_id: i64,
    pub user_id: Option<&'a str>,
    pub email: &'a str,
    /// `update` or `add`.
    pub action: &'a str,
    pub fields_json: String,
    pub status: PushStatus,
    pub error_code: Option<&'a str>,
}

impl<'a> NewPush<'a> {
    /// The `INSERT` of this row at `at` (returns its id).
    fn insert<'q>(
        &'q self,
        at: &'q str,
    ) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
        sqlx::query(
            "INSERT INTO pushes (run_id, user_id, email_id, action, fields_json, status, error_code, at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(self.run_id)
        .bind(self.user_id)
        .bind(self.email)
        .bind(self.action)
        .bind(&self.fields_json)
        .bind(self.status.as_str())
        .bind(self.error_code)
        .bind(at)
    }
}

/// A `planned` row of a run that ended: the request may or may not have
/// reached Cliq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DanglingPush {
    pub id: i64,
    pub run_id: Option<i64>,
    pub user_id: Option<String>,
    pub email: String,
    pub action: String,
    pub fields_json: String,
}

/// One row of `push_failures`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushFailure {
    pub email_id: String,
    pub action: String,
    pub user_id: Option<String>,
    pub desired_hash: String,
    pub fields_json: String,
    pub error_code: Option<String>,
    pub message: Option<String>,
    pub run_id: Option<i64>,
    pub at: String,
}

impl Store {
    /// Insert one `pushes` row; returns its id.
    pub async fn insert_push(
        &self,
        p: &NewPush<'_>,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let mut tx = self.write().await?;
        let now = to_db(now);
        let id = p.insert(&now).fetch_one(&mut *tx).await?.get(0);
        tx.commit().await?;
        Ok(id)
    }

    /// Insert many `pushes` rows in one transaction (e.g. the skipped ones).
    pub async fn insert_pushes(
        &self,
        rows: &[NewPush<'_>],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let now = to_db(now);
        let mut tx = self.write().await?;
        for p in rows {
            p.insert(&now).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Set the outcome of a `pushes` row. A success also clears the
    /// person's recorded permanent failure for that action.
    pub async fn set_push_status(
        &self,
        id: i64,
        status: PushStatus,
        error_code: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE pushes SET status = ?, error_code = ?, at = ? WHERE id = ?")
            .bind(status.as_str())
            .bind(error_code)
            .bind(to_db(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if status == PushStatus::Applied {
            sqlx::query(
                "DELETE FROM push_failures WHERE (email_id, action) IN
                    (SELECT email_id, action FROM pushes WHERE id = ?)",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Mark a `pushes` row failed for good and remember the failure (the
    /// same desired values are not sent again).
    pub async fn record_push_failure(
        &self,
        push_id: i64,
        failure: &PushFailure,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = to_db(now);
        let mut tx = self.write().await?;
        sqlx::query("UPDATE pushes SET status = 'failed', error_code = ?, at = ? WHERE id = ?")
            .bind(&failure.error_code)
            .bind(&now)
            .bind(push_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO push_failures (email_id, action, user_id, desired_hash, fields_json,
                error_code, message, run_id, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (email_id, action) DO UPDATE SET user_id = excluded.user_id,
                desired_hash = excluded.desired_hash, fields_json = excluded.fields_json,
                error_code = excluded.error_code, message = excluded.message,
                run_id = excluded.run_id, at = excluded.at",
        )
        .bind(failure.email_id.to_lowercase())
        .bind(&failure.action)
        .bind(&failure.user_id)
        .bind(&failure.desired_hash)
        .bind(&failure.fields_json)
        .bind(&failure.error_code)
        .bind(&failure.message)
        .bind(failure.run_id)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every remembered permanent failure, newest first.
    pub async fn push_failures(&self) -> Result<Vec<PushFailure>, StoreError> {
        let rows = sqlx::query(
            "SELECT email_id, action, user_id, desired_hash, fields_json, error_code, message,
                run_id, at FROM push_failures ORDER BY at DESC, email_id",
        )
        .fetch_all(&*self.read())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| PushFailure {
                email_id: r.get("email_id"),
                action: r.get("action"),
                user_id: r.get("user_id"),
                desired_hash: r.get("desired_hash"),
                fields_json: r.get("fields_json"),
                error_code: r.get("error_code"),
                message: r.get("message"),
                run_id: r.get("run_id"),
                at: r.get("at"),
            })
            .collect())
    }

    /// `planned` rows of runs that are no longer running: attempts whose
    /// outcome was never recorded (the process was killed or the run was
    /// cancelled while the request was in flight).
    pub async fn dangling_pushes(&self) -> Result<Vec<DanglingPush>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.id, p.run_id, p.user_id, p.email_id, p.action, p.fields_json
             FROM pushes p LEFT JOIN sync_runs r ON r.id = p.run_id
             WHERE p.status = 'planned' AND (r.status IS NULL OR r.status <> 'running')
             ORDER BY p.id",
        )
        .fetch_all(&*self.read())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| DanglingPush {
                id: r.get("id"),
                run_id: r.get("run_id"),
                user_id: r.get("user_id"),
                email: r.get("email_id"),
                action: r.get("action"),
                fields_json: r.get("fields_json"),
            })
            .collect())
    }

    /// A push run still marked running, if any (another push in progress).
    pub async fn running_push(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM sync_runs WHERE kind = 'push' AND status = 'running' ORDER BY id LIMIT 1",
        )
        .fetch_optional(&*self.read())
        .await?)
    }

    /// Emails added by a push since the last complete full pull started:
    /// Cliq has them (probably as pending invitations) but the mirror does
    /// not know them yet, so they must not be added again.
    pub async fn recent_adds(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT lower(email_id) FROM pushes
             WHERE action = 'add' AND status = 'applied'
               AND at >= coalesce((SELECT max(started_at) FROM sync_runs
                                   WHERE kind = 'full' AND status = 'ok'), '')",
        )
        .fetch_all(&*self.read())
        .await?)
    }

    /// Does the mirror know this reference? `department_id` and
    /// `designation_id`: some current user has it; `reporting_to_zuid`: it
    /// is a current user. Any other key is unknown.
    pub async fn reference_known(&self, key: &str, id: &str) -> Result<bool, StoreError> {
        let sql = match key {
            "department_id" => {
                "SELECT EXISTS (SELECT 1 FROM users WHERE department_id = ? AND removed_at IS NULL)"
            }
            "designation_id" => {
                "SELECT EXISTS (SELECT 1 FROM users WHERE designation_id = ? AND removed_at IS NULL)"
            }
            "reporting_to_zuid" => {
                "SELECT EXISTS (SELECT 1 FROM users WHERE id = ? AND removed_at IS NULL)"
            }
            _ => return Ok(false),
        };
        let known: bool = sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(&*self.read())
            .await?;
        Ok(known)
    }

    /// Remember the HR source size a push run was checked with; `approved`
    /// when it was forced past the thresholds.
    pub async fn record_push_source(
        &self,
        run_id: i64,
        records: u64,
        approved: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("INSERT INTO push_sources (run_id, at, records, approved) VALUES (?, ?, ?, ?)")
            .bind(run_id)
            .bind(to_db(now))
            .bind(i64::try_from(records).unwrap_or(i64::MAX))
            .bind(approved)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The source size a new push is compared with: the largest pushed since
    /// `since` and since the last approved one; if none is that recent, the
    /// last one pushed. `None` before the first push.
    pub async fn push_source_baseline(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError> {
        let recent: Option<i64> = sqlx::query_scalar(
            "SELECT max(records) FROM push_sources WHERE at >= ?1
               AND id >= coalesce((SELECT max(id) FROM push_sources WHERE approved = 1), 0)",
        )
        .bind(to_db(since))
        .fetch_one(&*self.read())
        .await?;
        let n = match recent {
            Some(n) => Some(n),
            None => {
                sqlx::query_scalar("SELECT records FROM push_sources ORDER BY id DESC LIMIT 1")
                    .fetch_optional(&*self.read())
                    .await?
            }
        };
        Ok(n.and_then(|n| u64::try_from(n).ok()))
    }

    /// The current raw JSON of a user.
    pub async fn user_raw_json(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT raw_json FROM users WHERE id = ?")
                .bind(id)
                .fetch_optional(&*self.read())
                .await?,
        )
    }

    /// Counts of `pushes` rows per status (for `status`).
    pub async fn push_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows =
            sqlx::query("SELECT status, count(*) AS n FROM pushes GROUP BY status ORDER BY status")
                .fetch_all(&*self.read())
                .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get("status"), r.get("n")))
            .collect())
    }
}
