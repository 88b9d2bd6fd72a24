//! The mirror joined with the staged HR source, as a plan reads it.
//!
//! The HR records are in a temporary SQLite file ([`super::hr_stage`]),
//! attached to one read transaction of the mirror, and SQL does the join:
//! only the users whose HR record may change something cross into Rust
//! (a field HR gives differently, a reference to resolve, an email shared
//! by several users, a user HR does not list), then the HR people with no
//! user. A plan's memory is so bounded by the work, not by the org or the
//! HR file. Manager chains are followed by id, a batch of ids at a time,
//! only from the people whose manager the plan changes.

use std::collections::HashMap;

use futures::TryStreamExt;
use sqlx::pool::PoolConnection;
use sqlx::{Row, Sqlite};

use super::column::{Column, Values};
use super::hr_stage::{parse_record, record_json, HrStage, StagedRecord};
use super::pushes::MirrorUser;
use super::store::{Store, StoreError};

/// One link of a manager chain: a live user, their manager and email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ManagerLink {
    pub manager_id: Option<String>,
    pub email: Option<String>,
}

/// A plan's view of the mirror and the HR stage: one read transaction, so
/// every query of the plan sees the same snapshot even while a pull writes.
pub(crate) struct PlanRead<'a> {
    store: &'a Store,
    // Closed when dropped, never back to the pool: it has the stage attached.
    conn: PoolConnection<Sqlite>,
}

/// Which HR value slots the join compares with which mirror columns.
pub(crate) struct JoinSpec {
    /// (slot, column, the kind code of a value that is the column's text).
    pub compared: Vec<(usize, Column, u8)>,
    /// `false`: every matched user crosses (a scope rule decides per person).
    pub filter: bool,
}

/// Department id and name, designation id and name, number of users.
pub(crate) type NamesRow = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

/// One user of the mirror, with their HR record if HR lists their email,
/// and whether other live users share that email.
pub(crate) struct Candidate {
    pub user: MirrorUser,
    pub record: Option<StagedRecord>,
    pub shared_email: bool,
}

impl Store {
    /// Begin a plan's read of the mirror with `hr` attached as `hr`.
    pub(crate) async fn plan_read(&self, hr: &HrStage) -> Result<PlanRead<'_>, StoreError> {
        let _hold = self.hold();
        let mut conn = self.pool().acquire().await?;
        conn.close_on_drop();
        sqlx::query("ATTACH DATABASE ?1 AS hr")
            .bind(hr.path().to_string_lossy().into_owned())
            .execute(&mut *conn)
            .await?;
        sqlx::query("BEGIN").execute(&mut *conn).await?;
        Ok(PlanRead { store: self, conn })
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
    /// The department and designation `(id, name)` pairs of live users,
    /// each combination once with its number of users, in the order of the
    /// first user by email: one scan of the table for every name the plan
    /// resolves and the live count.
    pub(crate) async fn reference_names(&mut self) -> Result<Vec<NamesRow>, StoreError> {
        let _hold = self.store.hold();
        Ok(sqlx::query_as(
            // The tables under the `users` view, read in table order: left
            // to itself SQLite walks `users_department` and fetches every
            // row from it at random, several times slower for a large org.
            "SELECT r.department_id, r.department_name, r.designation_id,
                    r.designation_name, count(*)
             FROM user_rows r NOT INDEXED LEFT JOIN user_state s ON s.id = r.id
             WHERE s.removed_at IS NULL
             GROUP BY 1, 2, 3, 4 ORDER BY min(r.email_id COLLATE NOCASE)",
        )
        .fetch_all(&mut *self.conn)
        .await?)
    }

    /// The live users HR's slot `slot` names by email (values of kind
    /// `email_kind`; `by_email`) or else by id, in email order. Each is a
    /// lookup in an index (`users_email`, the primary key), not a scan.
    pub(crate) async fn referenced(
        &mut self,
        slot: usize,
        email_kind: u8,
        by_email: bool,
    ) -> Result<Vec<MirrorUser>, StoreError> {
        let _hold = self.store.hold();
        let wanted = if by_email {
            format!(
                "email_id COLLATE NOCASE IN (SELECT v{slot} FROM hr.records WHERE k{slot} = {email_kind})"
            )
        } else {
            format!("id IN (SELECT v{slot} FROM hr.records WHERE k{slot} IS NOT {email_kind})")
        };
        let sql = format!(
            "SELECT {} FROM users WHERE {wanted} AND removed_at IS NULL
             ORDER BY email_id COLLATE NOCASE",
            user_json()
        );
        let rows: Vec<String> = sqlx::query_scalar(&sql).fetch_all(&mut *self.conn).await?;
        rows.iter().map(|t| parse_plan_row(t)).collect()
    }

    /// Call `each` for every live user whose HR record may change something
    /// or who has none (see [`candidates_sql`]), in no set order.
    pub(crate) async fn candidates(
        &mut self,
        spec: &JoinSpec,
        mut each: impl FnMut(Candidate),
    ) -> Result<(), StoreError> {
        let _hold = self.store.hold();
        let sql = candidates_sql(spec);
        let mut rows =
            sqlx::query_as::<_, (String, Option<String>, bool)>(&sql).fetch(&mut *self.conn);
        while let Some((user, record, shared_email)) = rows.try_next().await? {
            each(Candidate {
                user: parse_plan_row(&user)?,
                record: record.as_deref().map(parse_record).transpose()?,
                shared_email,
            });
        }
        Ok(())
    }

    /// Call `each` for every HR record no live user has the email of, in
    /// file order.
    pub(crate) async fn unmatched(
        &mut self,
        mut each: impl FnMut(StagedRecord),
    ) -> Result<(), StoreError> {
        let _hold = self.store.hold();
        let sql = unmatched_sql();
        let mut rows = sqlx::query_scalar::<_, String>(&sql).fetch(&mut *self.conn);
        while let Some(text) = rows.try_next().await? {
            each(parse_record(&text)?);
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
            for r in q.fetch_all(&mut *self.conn).await? {
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

    /// End the read (it wrote nothing); the connection closes with it.
    pub async fn finish(mut self) -> Result<(), StoreError> {
        let _hold = self.store.hold();
        sqlx::query("ROLLBACK").execute(&mut *self.conn).await?;
        Ok(())
    }
}

/// A user as one JSON array (`json_array` in SQLite): one text column per
/// row instead of 21 is about four times faster through sqlx.
fn user_json() -> String {
    format!(
        "json_array(users.id, users.email_id, users.status, users.removed_at IS NOT NULL, {})",
        Column::PLAN
            .iter()
            .map(|c| format!("users.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The live users with their HR record (by email, through the stage's
/// index), keeping only those the plan must look at: no HR record (a
/// leaver), an email shared with another live user, or a compared slot
/// that HR gives and that is not already the column's exact text (`IS`:
/// NULL-safe and byte for byte). Everyone HR agrees with stays in SQLite.
fn candidates_sql(spec: &JoinSpec) -> String {
    let differs: Vec<String> = spec
        .compared
        .iter()
        .map(|(i, c, direct)| {
            format!("(h.v{i} IS NOT NULL AND (h.k{i} IS NOT {direct} OR h.v{i} IS NOT users.{c}))")
        })
        .collect();
    let keep = match (spec.filter, differs.is_empty()) {
        (false, _) => "1".to_owned(),
        (true, true) => "0".to_owned(),
        (true, false) => differs.join(" OR "),
    };
    format!(
        "WITH shared AS MATERIALIZED (
            SELECT email_id AS e FROM users
            WHERE removed_at IS NULL AND email_id IS NOT NULL
            GROUP BY email_id COLLATE NOCASE HAVING count(*) > 1)
         SELECT {}, CASE WHEN h.pos IS NULL THEN NULL ELSE {} END,
                users.email_id IN (SELECT e FROM shared)
         FROM users LEFT JOIN hr.records h ON h.email = users.email_id
         WHERE users.removed_at IS NULL
           AND (h.pos IS NULL OR users.email_id IN (SELECT e FROM shared) OR {keep})",
        user_json(),
        record_json("h")
    )
}

/// The HR records no live user has the email of (the users_email index
/// answers each), in file order.
fn unmatched_sql() -> String {
    format!(
        "SELECT {} FROM hr.records h
         WHERE NOT EXISTS (SELECT 1 FROM users
                           WHERE users.email_id = h.email COLLATE NOCASE
                             AND users.removed_at IS NULL)
         ORDER BY h.pos",
        record_json("h")
    )
}

/// One [`user_json`] row.
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
    /// to disk for a large org) would make the plan grow faster than the
    /// org; the join must follow indexes instead: the stage's by email, the
    /// mirror's `users_email` for the HR people with no user.
    #[tokio::test]
    async fn the_join_follows_indexes_and_sorts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.db"), &Clock::system())
            .await
            .unwrap();
        let (stage, _) = HrStage::create().await.unwrap().finish().await.unwrap();
        let spec = JoinSpec {
            compared: vec![(10, Column::WorkLocation, 0)],
            filter: true,
        };
        let mut read = store.plan_read(&stage).await.unwrap();
        let join = explain(&mut read, &candidates_sql(&spec)).await;
        let unmatched = explain(&mut read, &unmatched_sql()).await;
        read.finish().await.unwrap();
        for steps in [&join, &unmatched] {
            assert!(
                !steps.iter().any(|s| s.contains("TEMP B-TREE")),
                "{steps:?}"
            );
        }
        assert!(join.iter().any(|s| s.contains("records_email")), "{join:?}");
        assert!(
            unmatched.iter().any(|s| s.contains("users_email")),
            "{unmatched:?}"
        );
    }

    async fn explain(read: &mut PlanRead<'_>, sql: &str) -> Vec<String> {
        let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
            .fetch_all(&mut *read.conn)
            .await
            .unwrap();
        rows.iter().map(|r| r.get::<String, _>("detail")).collect()
    }
}
