//! The queries behind `cliq-sync status --check`.

use super::runs::{RunKind, RunRow};
use super::store::{Store, StoreError};

impl Store {
    /// The newest finished run (not `running`) of any of `kinds`: what a
    /// health check judges, since a run in flight has no outcome yet.
    pub(crate) async fn last_finished_run(
        &self,
        kinds: &[RunKind],
    ) -> Result<Option<RunRow>, StoreError> {
        let wanted: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        // At most three kinds: bind them as a JSON list instead of building SQL.
        let list = serde_json::to_string(&wanted).unwrap_or_else(|_| "[]".into());
        Ok(sqlx::query_as::<_, RunRow>(
            "SELECT id, kind, started_at, finished_at, status, requests, users_seen,
                users_changed, error FROM sync_runs
             WHERE status <> 'running' AND kind IN (SELECT value FROM json_each(?))
             ORDER BY id DESC LIMIT 1",
        )
        .bind(list)
        .fetch_optional(&*self.read())
        .await?)
    }
}
