//! The queries behind `cliq-sync status --check`.

use sqlx::Row;

use super::runs::{RunKind, RunRow};
use super::store::{Store, StoreError};

impl Store {
    /// The newest finished run (not `running`) of any of `kinds`: what a
    /// health check judges, since a run in flight has no outcome yet.
    pub async fn last_finished_run(&self, kinds: &[RunKind]) -> Result<Option<RunRow>, StoreError> {
        let _hold = self.hold();
        let wanted: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        // At most three kinds: bind them as a JSON list instead of building SQL.
        let list = serde_json::to_string(&wanted).unwrap_or_else(|_| "[]".into());
        let row = sqlx::query(
            "SELECT id, kind, started_at, finished_at, status, requests, users_seen,
                users_changed, error FROM sync_runs
             WHERE status <> 'running' AND kind IN (SELECT value FROM json_each(?))
             ORDER BY id DESC LIMIT 1",
        )
        .bind(list)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| RunRow {
            id: r.get("id"),
            kind: r.get("kind"),
            started_at: r.get("started_at"),
            finished_at: r.get("finished_at"),
            status: r.get("status"),
            requests: r.get("requests"),
            users_seen: r.get("users_seen"),
            users_changed: r.get("users_changed"),
            error: r.get("error"),
        }))
    }
}
