//! The mirror's history of a field: `user_changes` read back to tell a hand
//! edit in Cliq (a change a pull observed after our last push of the
//! field) from a value HR simply differs on (never pushed by us) or one we
//! pushed and nobody touched since.

use serde::Serialize;
use sqlx::Row;

use super::store::{Store, StoreError};

/// A field changed in Cliq after our last push of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct EditSincePush {
    pub user_id: String,
    /// The mirror column (`work_location`, `department_id`, …).
    pub column: String,
    /// What our last push of the field set, and when.
    pub pushed_value: Option<String>,
    pub pushed_at: String,
    /// The latest value a pull observed after that push, and when.
    pub cliq_value: Option<String>,
    pub changed_at: String,
    /// The pull that observed it: `full` or `incremental`.
    pub observed_by: String,
}

/// One `user_changes` row of a pull, with the user's email.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChangeRow {
    pub user_id: String,
    pub email: String,
    pub field: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

/// For each wanted (user, column): our last `push` row, and the latest row
/// of a pull after it. Both lookups go through the `(user_id, …)` index,
/// so the cost is per asked field, not per history row.
const EDITS_SINCE_PUSH: &str = "
WITH wanted AS (
    SELECT json_extract(value, '$[0]') AS user_id, json_extract(value, '$[1]') AS field
    FROM json_each(?1)
), pushed AS (
    SELECT w.user_id, w.field,
           (SELECT max(c.id) FROM user_changes c
            WHERE c.user_id = w.user_id AND c.field = w.field AND c.source = 'push') AS push_id
    FROM wanted w
)
SELECT p.user_id, p.field, pc.new_value AS pushed_value, pc.observed_at AS pushed_at,
       oc.new_value AS cliq_value, oc.observed_at AS changed_at, oc.source AS observed_by
FROM pushed p
JOIN user_changes pc ON pc.id = p.push_id
JOIN user_changes oc ON oc.id = (
    SELECT max(c.id) FROM user_changes c
    WHERE c.user_id = p.user_id AND c.field = p.field AND c.id > p.push_id
      AND c.source <> 'push')";

impl Store {
    /// The fields among `fields` (user id, mirror column) that a pull saw
    /// change after our last push of them. A field we never pushed, or
    /// pushed with no pull-observed change since, is not returned.
    pub(crate) async fn edits_since_push(
        &self,
        fields: &[(&str, &str)],
    ) -> Result<Vec<EditSincePush>, StoreError> {
        if fields.is_empty() {
            return Ok(Vec::new());
        }
        let wanted = serde_json::to_string(fields).expect("pairs of strings serialise");
        let rows = sqlx::query(EDITS_SINCE_PUSH)
            .bind(wanted)
            .fetch_all(&*self.read())
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| EditSincePush {
                user_id: r.get("user_id"),
                column: r.get("field"),
                pushed_value: r.get("pushed_value"),
                pushed_at: r.get("pushed_at"),
                cliq_value: r.get("cliq_value"),
                changed_at: r.get("changed_at"),
                observed_by: r.get("observed_by"),
            })
            .collect())
    }

    /// The `user_changes` rows run `run_id` wrote, in order, with the
    /// user's email (empty if the user is not in the mirror).
    pub(crate) async fn changes_of_run(&self, run_id: i64) -> Result<Vec<ChangeRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT c.user_id, coalesce(u.email_id, '') AS email, c.field, c.old_value, c.new_value
             FROM user_changes c LEFT JOIN users u ON u.id = c.user_id
             WHERE c.run_id = ?1 ORDER BY c.id",
        )
        .bind(run_id)
        .fetch_all(&*self.read())
        .await?)
    }
}
