//! Team memberships, the teams queue, and layouts.

use chrono::{DateTime, Utc};

use super::store::{Store, StoreError};
use crate::clock::to_db;

/// A team membership as fetched for one user.
#[derive(Debug, Clone)]
pub(crate) struct TeamRow {
    pub team_id: String,
    pub name: Option<String>,
    pub organization_id: Option<String>,
    pub description: Option<String>,
    pub is_active: Option<bool>,
    pub participant_count: Option<i64>,
    pub creation_time: Option<String>,
    pub is_moderator: Option<bool>,
    pub joined: Option<bool>,
    pub raw_json: String,
}

impl Store {
    /// Queue every current user (teams = "all").
    pub(crate) async fn queue_all_teams(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let r = sqlx::query(
            "INSERT OR IGNORE INTO teams_queue (user_id, queued_at)
             SELECT id, ? FROM users WHERE removed_at IS NULL",
        )
        .bind(to_db(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(r.rows_affected())
    }

    /// The oldest `limit` queued users.
    pub(crate) async fn next_team_fetches(&self, limit: i64) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT user_id FROM teams_queue ORDER BY queued_at, user_id LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&*self.read())
        .await?)
    }

    pub(crate) async fn teams_queue_len(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM teams_queue")
            .fetch_one(&*self.read())
            .await?)
    }

    /// Replace `user_id`'s memberships with `teams` and dequeue the user.
    pub(crate) async fn write_user_teams(
        &self,
        user_id: &str,
        teams: &[TeamRow],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = to_db(now);
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM user_teams WHERE user_id = ?")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        for t in teams {
            sqlx::query(
                "INSERT INTO teams (team_id, name, organization_id, description, is_active,
                    participant_count, creation_time, raw_json, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (team_id) DO UPDATE SET name = excluded.name,
                    organization_id = excluded.organization_id, description = excluded.description,
                    is_active = excluded.is_active, participant_count = excluded.participant_count,
                    creation_time = excluded.creation_time, raw_json = excluded.raw_json,
                    updated_at = excluded.updated_at",
            )
            .bind(&t.team_id)
            .bind(&t.name)
            .bind(&t.organization_id)
            .bind(&t.description)
            .bind(t.is_active)
            .bind(t.participant_count)
            .bind(&t.creation_time)
            .bind(&t.raw_json)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT OR REPLACE INTO user_teams (user_id, team_id, is_moderator, joined, fetched_at)
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(user_id)
            .bind(&t.team_id)
            .bind(t.is_moderator)
            .bind(t.joined)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM teams_queue WHERE user_id = ?")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Drop a queued user without fetching (e.g. the user no longer exists).
    pub(crate) async fn dequeue_teams(&self, user_id: &str) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM teams_queue WHERE user_id = ?")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn write_layout(
        &self,
        unique_name: &str,
        raw_json: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO layouts (unique_name, raw_json, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (unique_name) DO UPDATE SET raw_json = excluded.raw_json,
                updated_at = excluded.updated_at",
        )
        .bind(unique_name)
        .bind(raw_json)
        .bind(to_db(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
