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
    pub(crate) async fn note_hr_missing(
        &self,
        missing: &[(String, Option<String>)],
        now: DateTime<Utc>,
    ) -> Result<HashMap<String, String>, StoreError> {
        let now = to_db(now);
        let mut tx = self.write().await?;
        let known: HashMap<String, String> =
            sqlx::query_as::<_, (String, String)>("SELECT user_id, since FROM hr_missing")
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
        let current: HashSet<&str> = missing.iter().map(|(id, _)| id.as_str()).collect();
        let gone: Vec<&str> = known
            .keys()
            .map(String::as_str)
            .filter(|id| !current.contains(id))
            .collect();
        // One statement each way, the ids as JSON through `json_each`.
        sqlx::query("DELETE FROM hr_missing WHERE user_id IN (SELECT value FROM json_each(?1))")
            .bind(serde_json::to_string(&gone).expect("strings serialise"))
            .execute(&mut *tx)
            .await?;
        let newcomers: Vec<(&str, Option<&str>)> = missing
            .iter()
            .filter(|(id, _)| !known.contains_key(id))
            .map(|(id, email)| (id.as_str(), email.as_deref()))
            .collect();
        sqlx::query(
            "INSERT OR IGNORE INTO hr_missing (user_id, email, since)
             SELECT value ->> 0, value ->> 1, ?2 FROM json_each(?1)",
        )
        .bind(serde_json::to_string(&newcomers).expect("strings serialise"))
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let since = |id: &String| known.get(id).cloned().unwrap_or_else(|| now.clone());
        Ok(missing
            .iter()
            .map(|(id, _)| (id.clone(), since(id)))
            .collect())
    }

    /// The leavers as the last plan saw them, without those a full pull has
    /// since marked removed. Empty on a mirror that predates the table
    /// (`status` opens old mirrors read-only, unmigrated).
    pub async fn hr_missing(&self, now: DateTime<Utc>) -> Result<HrMissing, StoreError> {
        let exists: bool = sqlx::query_scalar(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'hr_missing'",
        )
        .fetch_one(&*self.read())
        .await?;
        if !exists {
            return Ok(HrMissing::default());
        }
        const PRESENT: &str = "FROM hr_missing m JOIN users u ON u.id = m.user_id
                               WHERE u.removed_at IS NULL";
        let users: i64 = sqlx::query_scalar(&format!("SELECT count(*) {PRESENT}"))
            .fetch_one(&*self.read())
            .await?;
        let oldest = sqlx::query(&format!(
            "SELECT m.user_id, m.since, coalesce(u.email_id, m.email) AS email {PRESENT}
             ORDER BY m.since, m.user_id LIMIT 1"
        ))
        .fetch_optional(&*self.read())
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
