//! Progress of a run while it runs: the in-process hub that pulls and
//! pushes publish to (the CLI's bar reads it), and the progress columns of
//! `sync_runs` (`pages`, `expected_users`, `expected_pages`, `eta_at`,
//! `progress_at`) that `status`, `/metrics` and other readers see.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

pub use super::hub::{ProgressHub, RunProgress};
use super::lease;
use super::store::{Store, StoreError};
use super::vocab::RunKind;
use crate::clock::to_db;

/// A `running` run of a live process, with its progress as last written.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RunInProgress {
    pub id: i64,
    pub kind: RunKind,
    pub started_at: String,
    pub pages: i64,
    pub expected_pages: Option<i64>,
    pub users_seen: i64,
    pub expected_users: Option<i64>,
    pub requests: i64,
    pub eta_at: Option<String>,
    pub progress_at: Option<String>,
    pub owner_pid: Option<i64>,
    pub owner_host: Option<String>,
}

impl Store {
    /// Write a run's progress into its row (only while it is `running`).
    /// Called every few seconds, never per user: the page path stays cheap.
    pub(crate) async fn record_progress(
        &self,
        p: &RunProgress,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE sync_runs SET pages = ?, users_seen = ?, requests = ?, expected_users = ?,
                expected_pages = ?, eta_at = ?, progress_at = ?
             WHERE id = ? AND status = 'running'",
        )
        .bind(p.pages as i64)
        .bind(p.users as i64)
        .bind(p.requests as i64)
        .bind(p.expected_users.map(|n| n as i64))
        .bind(p.expected_pages.map(|n| n as i64))
        .bind(p.eta_at.map(to_db))
        .bind(to_db(now))
        .bind(p.run_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Users not marked removed: what a full pull expects to see.
    pub(crate) async fn present_users(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM user_state WHERE removed_at IS NULL")
            .fetch_one(&*self.read())
            .await?;
        Ok(n as u64)
    }

    /// Runs `running` in a live process (a dead process's run is not in
    /// progress, whatever its row still says), oldest first. A mirror that
    /// predates the progress columns (read by `status`, which does not
    /// migrate) shows its runs without them.
    pub(crate) async fn runs_in_progress(&self) -> Result<Vec<RunInProgress>, StoreError> {
        let has_progress: bool = sqlx::query_scalar(
            "SELECT count(*) > 0 FROM pragma_table_info('sync_runs') WHERE name = 'eta_at'",
        )
        .fetch_one(&*self.read())
        .await?;
        let columns = if has_progress {
            "pages, expected_pages, expected_users, eta_at, progress_at"
        } else {
            "0 AS pages, NULL AS expected_pages, NULL AS expected_users, NULL AS eta_at,
             NULL AS progress_at"
        };
        let sql = format!(
            "SELECT id, kind, started_at, users_seen, requests, owner, owner_pid, owner_host,
                {columns} FROM sync_runs WHERE status = 'running' ORDER BY id"
        );
        let rows = sqlx::query(&sql).fetch_all(&*self.read()).await?;
        Ok(rows
            .into_iter()
            .filter(|r| self.owner_alive(r.get("owner")))
            .map(|r| RunInProgress {
                id: r.get("id"),
                kind: r.get("kind"),
                started_at: r.get("started_at"),
                pages: r.get("pages"),
                expected_pages: r.get("expected_pages"),
                users_seen: r.get("users_seen"),
                expected_users: r.get("expected_users"),
                requests: r.get("requests"),
                eta_at: r.get("eta_at"),
                progress_at: r.get("progress_at"),
                owner_pid: r.get("owner_pid"),
                owner_host: r.get("owner_host"),
            })
            .collect())
    }

    fn owner_alive(&self, owner: Option<String>) -> bool {
        match owner {
            Some(id) if id == self.lease().id() => true,
            Some(id) => lease::owner_liveness(self.path(), &id) == lease::Liveness::Alive,
            // Runs of a version without owners: nobody can prove them alive.
            None => false,
        }
    }
}
