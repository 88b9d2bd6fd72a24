//! The queries behind `cliq-sync undo`: the undone run and the writes it
//! applied, and the link of an undo run to it (`sync_runs.undoes_run`).

use sqlx::Row;

use super::store::{Store, StoreError};

/// A write a push run applied: its `pushes` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppliedWrite {
    pub user_id: Option<String>,
    pub email: String,
    /// `update` or `add`.
    pub action: String,
    /// `{"fields": {cliq key: value sent}, "current": {cliq key: value before}, …}`.
    pub fields_json: String,
}

impl Store {
    /// `(kind, status)` of run `id`, if there is one.
    pub(crate) async fn run_kind_status(
        &self,
        id: i64,
    ) -> Result<Option<(String, String)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT kind, status FROM sync_runs WHERE id = ?")
                .bind(id)
                .fetch_optional(&*self.read())
                .await?,
        )
    }

    /// The writes run `id` applied (reconciled ones included), in order.
    pub(crate) async fn applied_writes(&self, id: i64) -> Result<Vec<AppliedWrite>, StoreError> {
        let rows = sqlx::query(
            "SELECT user_id, email_id, action, fields_json FROM pushes
             WHERE run_id = ? AND status = 'applied' ORDER BY id",
        )
        .bind(id)
        .fetch_all(&*self.read())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| AppliedWrite {
                user_id: r.get("user_id"),
                email: r.get("email_id"),
                action: r.get("action"),
                fields_json: r.get("fields_json"),
            })
            .collect())
    }

    /// Record that push run `run` undoes run `undone`.
    pub(crate) async fn link_undo(&self, run: i64, undone: i64) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE sync_runs SET undoes_run = ? WHERE id = ?")
            .bind(undone)
            .bind(run)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
}
