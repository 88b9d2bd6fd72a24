//! Leavers: Cliq users the HR source no longer lists, and since when.
//!
//! Cliq's Users API has no deactivation, so cliq-sync never writes anything
//! for them; it only remembers when a plan first missed each one (table
//! `hr_missing`), so `plan`, `status` and `/metrics` can say how long an
//! operator has left them active in Cliq.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::store::{Store, StoreError};
use crate::clock::{from_db, to_db};

/// What `status` (and `/metrics`) say about the leavers the last plan saw.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct HrMissing {
    /// People in Cliq (not removed) whom the last plan found missing from HR.
    pub users: i64,
    /// The longest-missing one: since when, for how long, who.
    pub oldest_since: Option<String>,
    pub oldest_seconds: Option<i64>,
    pub oldest_user_id: Option<String>,
    pub oldest_email: Option<String>,
}

impl Store {
    /// Record that a plan at `now` found exactly `missing` (user id, email)
    /// in Cliq but not in HR: newcomers get `since = now`, everyone no longer
    /// in the list (back in HR, or gone from Cliq) is forgotten. Returns
    /// since when each of `missing` has been missing (RFC 3339 UTC).
    pub async fn note_hr_missing(
        &self,
        missing: &[(String, Option<String>)],
        now: DateTime<Utc>,
    ) -> Result<HashMap<String, String>, StoreError> {
        let now = to_db(now);
        self.write_direct(|tx| {
            let mut known: HashMap<String, String> = HashMap::new();
            {
                let mut q = tx.prepare_cached("SELECT user_id, since FROM hr_missing")?;
                let rows = q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                for row in rows {
                    let (id, since) = row?;
                    known.insert(id, since);
                }
            }
            let current: HashSet<&str> = missing.iter().map(|(id, _)| id.as_str()).collect();
            let mut delete = tx.prepare_cached("DELETE FROM hr_missing WHERE user_id = ?1")?;
            for id in known.keys().filter(|id| !current.contains(id.as_str())) {
                delete.execute([id])?;
            }
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO hr_missing (user_id, email, since) VALUES (?1, ?2, ?3)",
            )?;
            let mut out = HashMap::with_capacity(missing.len());
            for (id, email) in missing {
                let since = match known.get(id) {
                    Some(since) => since.clone(),
                    None => {
                        insert.execute(rusqlite::params![id, email, now])?;
                        now.clone()
                    }
                };
                out.insert(id.clone(), since);
            }
            Ok(out)
        })
        .await
    }

    /// The leavers as the last plan saw them, without those a full pull has
    /// since marked removed. Empty on a mirror that predates the table
    /// (`status` opens old mirrors read-only, unmigrated).
    pub async fn hr_missing(&self, now: DateTime<Utc>) -> Result<HrMissing, StoreError> {
        let _hold = self.hold();
        let exists: bool = sqlx::query_scalar(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'hr_missing'",
        )
        .fetch_one(self.pool())
        .await?;
        if !exists {
            return Ok(HrMissing::default());
        }
        const PRESENT: &str = "FROM hr_missing m JOIN users u ON u.id = m.user_id
                               WHERE u.removed_at IS NULL";
        let users: i64 = sqlx::query_scalar(&format!("SELECT count(*) {PRESENT}"))
            .fetch_one(self.pool())
            .await?;
        let oldest = sqlx::query(&format!(
            "SELECT m.user_id, m.since, coalesce(u.email_id, m.email) AS email {PRESENT}
             ORDER BY m.since, m.user_id LIMIT 1"
        ))
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = oldest else {
            return Ok(HrMissing::default());
        };
        let since: String = row.get("since");
        Ok(HrMissing {
            users,
            oldest_seconds: from_db(&since).map(|s| (now - s).num_seconds().max(0)),
            oldest_since: Some(since),
            oldest_user_id: Some(row.get("user_id")),
            oldest_email: row.get("email"),
        })
    }
}
