//! The mirror as a plan reads it: streamed, never loaded whole.
//!
//! A plan passes over the users twice (index, then diff), each time one row
//! at a time in `email_id` order, so its memory is bounded by the work (the
//! references HR names, the changes, the leavers), not by the org. Manager
//! chains are followed by id, a batch of ids at a time, only from the
//! people whose manager the plan changes.

use std::collections::HashMap;

use futures::TryStreamExt;
use sqlx::Row;

use super::column::{Column, Values};
use super::pushes::MirrorUser;
use super::store::{Store, StoreError};

/// One link of a manager chain: a live user, their manager and email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ManagerLink {
    pub manager_id: Option<String>,
    pub email: Option<String>,
}

/// A plan's view of the mirror: one read transaction, so the index pass,
/// the diff pass and the manager chains all see the same snapshot even
/// while a pull writes.
pub(crate) struct PlanRead<'a> {
    store: &'a Store,
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
}

impl Store {
    /// Begin a plan's read of the mirror.
    pub(crate) async fn plan_read(&self) -> Result<PlanRead<'_>, StoreError> {
        let _hold = self.hold();
        let tx = self.pool().begin().await?;
        Ok(PlanRead { store: self, tx })
    }

    /// The mirror users (removed ones flagged) whose id is among `ids` or
    /// whose email is among `emails`: what a given plan (a plan file, an
    /// undo) needs to check its parts (emails as the mirror stores them:
    /// lowercased), read a batch at a time so the memory
    /// follows the plan, not the org.
    pub(crate) async fn plan_users(
        &self,
        ids: &[String],
        emails: &[String],
    ) -> Result<Vec<MirrorUser>, StoreError> {
        let mut out = Vec::new();
        let wanted = [("id", ids), ("email_id", emails)];
        for (column, values) in wanted {
            // Well under SQLite's limit of bound parameters.
            for chunk in values.chunks(500) {
                let marks = vec!["?"; chunk.len()].join(", ");
                let sql = format!(
                    "SELECT json_array(id, email_id, status, removed_at IS NOT NULL, {})
                     FROM users WHERE {column} IN ({marks})",
                    Column::sql_list(&Column::PLAN)
                );
                let mut q = sqlx::query_scalar::<_, String>(&sql);
                for v in chunk {
                    q = q.bind(v);
                }
                for text in q.fetch_all(&*self.read()).await? {
                    out.push(parse_plan_row(&text)?);
                }
            }
        }
        Ok(out)
    }
}

impl PlanRead<'_> {
    /// Call `each` for every user of the mirror (removed ones flagged), in
    /// `email_id` order (case-insensitive; users with the same email are
    /// adjacent, in no particular order among themselves).
    ///
    /// Each row comes back as one JSON array (`json_array` in SQLite): one
    /// text column per row instead of 21 is about four times faster through
    /// sqlx for a 100,000-user mirror.
    pub(crate) async fn each_user(
        &mut self,
        mut each: impl FnMut(MirrorUser),
    ) -> Result<(), StoreError> {
        let _hold = self.store.hold();
        let sql = each_user_sql();
        let mut rows = sqlx::query_scalar::<_, String>(&sql).fetch(&mut *self.tx);
        while let Some(text) = rows.try_next().await? {
            each(parse_plan_row(&text)?);
        }
        Ok(())
    }

    /// The manager and email of each live user among `ids` (ids not in the
    /// mirror, or removed, are absent from the answer).
    pub(crate) async fn manager_links(
        &mut self,
        ids: &[String],
    ) -> Result<HashMap<String, ManagerLink>, StoreError> {
        let _hold = self.store.hold();
        let mut out = HashMap::with_capacity(ids.len());
        // Well under SQLite's limit of bound parameters.
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "SELECT id, email_id, reporting_to_id FROM users
                 WHERE removed_at IS NULL AND id IN ({marks})"
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                let email: Option<String> = r.get("email_id");
                out.insert(
                    r.get("id"),
                    ManagerLink {
                        manager_id: r.get("reporting_to_id"),
                        email: email.map(|e| e.to_lowercase()),
                    },
                );
            }
        }
        Ok(out)
    }

    /// End the read (it wrote nothing).
    pub async fn finish(self) -> Result<(), StoreError> {
        let _hold = self.store.hold();
        self.tx.rollback().await?;
        Ok(())
    }
}

/// Every user as one JSON array, same-email users adjacent. The order is
/// that of the `users_email` index (`COLLATE NOCASE`; emails are stored
/// lowercased, so equal emails are adjacent as in byte order): ordering by
/// `email_id, id` instead sorted the whole table into a temporary B-tree
/// on each pass, which for a large org spilled to disk and grew faster
/// than the org. Users of one email come in any order.
fn each_user_sql() -> String {
    format!(
        "SELECT json_array(id, email_id, status, removed_at IS NOT NULL, {}) FROM users
         ORDER BY email_id COLLATE NOCASE",
        Column::sql_list(&Column::PLAN)
    )
}

/// One `json_array` row of [`Store::each_plan_user`].
fn parse_plan_row(text: &str) -> Result<MirrorUser, StoreError> {
    let v: Vec<serde_json::Value> =
        serde_json::from_str(text).map_err(|e| StoreError::Db(sqlx::Error::Decode(Box::new(e))))?;
    let s = |i: usize| -> Option<String> {
        match v.get(i)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let mut values = Values::default();
    for (i, c) in Column::PLAN.into_iter().enumerate() {
        values[c] = s(i + 4);
    }
    Ok(MirrorUser {
        id: s(0).unwrap_or_default(),
        email: s(1).map(|e| e.to_lowercase()),
        status: s(2),
        removed: v.get(3).and_then(serde_json::Value::as_i64) == Some(1),
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;

    /// A sort of the whole table (a temporary B-tree of every row, spilled
    /// to disk for a large org) made the plan's passes grow faster than the
    /// org; the walk must follow an index instead.
    #[tokio::test]
    async fn the_plan_walks_the_users_in_index_order_without_sorting_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.db"), &Clock::system())
            .await
            .unwrap();
        let steps = explain(&store).await;
        assert!(
            !steps.iter().any(|s| s.contains("TEMP B-TREE")),
            "{steps:?}"
        );
        assert!(steps.iter().any(|s| s.contains("users_email")), "{steps:?}");
    }

    async fn explain(store: &Store) -> Vec<String> {
        let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {}", each_user_sql()))
            .fetch_all(&*store.read())
            .await
            .unwrap();
        rows.iter().map(|r| r.get::<String, _>("detail")).collect()
    }
}
