//! `sync_runs`, the watermark and other small state, and the figures behind
//! `cliq-sync status`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::lease;
use super::store::{Store, StoreError};
pub use super::vocab::{PullKind, RunKind, RunStatus};
use crate::clock::{from_db, to_db};

/// Figures recorded when a run ends.
#[derive(Debug, Clone, Default)]
pub struct RunFigures {
    pub requests: u64,
    pub users_seen: u64,
    pub users_changed: u64,
    pub error: Option<String>,
}

/// One row of `sync_runs` (mapped by column name, in one place: `FromRow`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow)]
pub struct RunRow {
    pub id: i64,
    pub kind: RunKind,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: RunStatus,
    pub requests: i64,
    pub users_seen: i64,
    pub users_changed: i64,
    pub error: Option<String>,
    /// For an undo: the push run it undoes.
    #[sqlx(default)]
    pub undoes_run: Option<i64>,
}

const WATERMARK: &str = "watermark";

impl Store {
    pub async fn start_run(&self, kind: RunKind, now: DateTime<Utc>) -> Result<i64, StoreError> {
        let mut tx = self.write().await?;
        let owner = self.lease();
        let id = sqlx::query_scalar(
            "INSERT INTO sync_runs (kind, started_at, status, owner, owner_pid, owner_host)
             VALUES (?, ?, 'running', ?, ?, ?) RETURNING id",
        )
        .bind(kind.as_str())
        .bind(to_db(now))
        .bind(owner.id())
        .bind(owner.holder().pid)
        .bind(&owner.holder().host)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn finish_run(
        &self,
        id: i64,
        status: RunStatus,
        figures: &RunFigures,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE sync_runs SET finished_at = ?, status = ?, requests = ?, users_seen = ?,
                users_changed = ?, error = ? WHERE id = ?",
        )
        .bind(to_db(now))
        .bind(status.as_str())
        .bind(figures.requests as i64)
        .bind(figures.users_seen as i64)
        .bind(figures.users_changed as i64)
        .bind(&figures.error)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Runs left `running` by a process that ended: they did not
    /// complete. Only runs whose owner is provably gone (its lease file
    /// unlocked or missing, see [`super::lease`]) are marked failed, with
    /// the dead pid in the error; a live process's runs are left alone.
    /// Dead owners' lease files are removed on the way.
    pub(crate) async fn abandon_dead_runs(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let owners: Vec<(Option<String>, Option<i64>, Option<String>)> = {
            sqlx::query_as(
                "SELECT DISTINCT owner, owner_pid, owner_host FROM sync_runs
                 WHERE status = 'running'",
            )
            .fetch_all(&*self.read())
            .await?
        };
        let mut abandoned = 0;
        for (owner, pid, host) in owners {
            if owner.as_deref() == Some(self.lease().id()) {
                continue;
            }
            let gone = owner
                .as_deref()
                .is_none_or(|id| lease::owner_liveness(self.path(), id) != lease::Liveness::Alive);
            if !gone {
                continue;
            }
            let who = match (pid, host) {
                (Some(pid), Some(host)) => format!("the process that ran it (pid {pid} on {host})"),
                _ => "the process that ran it (an earlier version)".into(),
            };
            abandoned += self.fail_runs_of(owner.as_deref(), &who, now).await?;
        }
        lease::sweep_dead_owners(self.path());
        Ok(abandoned)
    }

    async fn fail_runs_of(
        &self,
        owner: Option<&str>,
        who: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let r = sqlx::query(
            "UPDATE sync_runs SET status = 'failed', finished_at = ?1,
                error = coalesce(error, ?2 || ' ended during the run')
             WHERE status = 'running' AND owner IS ?3",
        )
        .bind(to_db(now))
        .bind(who)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(r.rows_affected())
    }

    pub async fn recent_runs(&self, limit: i64) -> Result<Vec<RunRow>, StoreError> {
        Ok(sqlx::query_as::<_, RunRow>(
            "SELECT id, kind, started_at, finished_at, status, requests, users_seen,
                users_changed, error, undoes_run FROM sync_runs ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&*self.read())
        .await?)
    }

    pub async fn state(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM sync_state WHERE key = ?")
                .bind(key)
                .fetch_optional(&*self.read())
                .await?,
        )
    }

    pub(crate) async fn set_state(
        &self,
        key: &str,
        value: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO sync_state (key, value, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value)
        .bind(to_db(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The start time of the last successful pull: everything modified
    /// before it is in the mirror.
    pub async fn watermark(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.state(WATERMARK).await?.as_deref().and_then(from_db))
    }

    pub async fn set_watermark(
        &self,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.set_state(WATERMARK, &to_db(at), now).await
    }

    /// Users per status (removed users counted as `removed`).
    pub(crate) async fn user_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT CASE WHEN removed_at IS NOT NULL THEN 'removed'
                         ELSE coalesce(status, 'unknown') END AS s, count(*) AS n
             FROM users GROUP BY s ORDER BY s",
        )
        .fetch_all(&*self.read())
        .await?;
        Ok(rows.into_iter().map(|r| (r.get("s"), r.get("n"))).collect())
    }
}

impl Store {
    /// Runs of this opener started since `since` and still `running` when
    /// the daemon had to abandon them on stop (runs of other processes are
    /// left alone, whenever they started).
    pub(crate) async fn stop_running_runs(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let r = sqlx::query(
            "UPDATE sync_runs SET status = 'stopped', finished_at = ?1,
                error = coalesce(error, 'stopped by shutdown before the run could finish')
             WHERE status = 'running' AND started_at >= ?2 AND owner = ?3",
        )
        .bind(to_db(now))
        .bind(to_db(since))
        .bind(self.lease().id())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(r.rows_affected())
    }
}

impl Store {
    /// When the last successful run of each kind finished: `(kind, time)`.
    pub(crate) async fn last_successes(&self) -> Result<Vec<(RunKind, DateTime<Utc>)>, StoreError> {
        let rows: Vec<(RunKind, String)> = sqlx::query_as(
            "SELECT kind, max(finished_at) FROM sync_runs
             WHERE status = 'ok' AND finished_at IS NOT NULL GROUP BY kind",
        )
        .fetch_all(&*self.read())
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, t)| Some((k, from_db(&t)?)))
            .collect())
    }

    /// Whether the database answers and every embedded migration is applied.
    pub async fn ready(&self) -> Result<(), String> {
        let applied: i64 =
            sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success = 1")
                .fetch_one(&*self.read())
                .await
                .map_err(|e| format!("mirror not readable: {e}"))?;
        let expected = super::store::MIGRATIONS.iter().count() as i64;
        if applied < expected {
            return Err(format!("{applied} of {expected} migrations applied"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;

    /// The rebuilt `sync_runs` takes `held`, keeps its owner columns, and
    /// the tables that reference it still enforce it.
    #[tokio::test]
    async fn a_run_can_be_held_and_references_still_hold() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.db"), &Clock::system())
            .await
            .unwrap();
        let now = Utc::now();
        let id = store.start_run(RunKind::Full, now).await.unwrap();
        let figures = RunFigures {
            error: Some("held: why".into()),
            ..RunFigures::default()
        };
        store
            .finish_run(id, RunStatus::Held, &figures, now)
            .await
            .unwrap();
        let runs = store.recent_runs(1).await.unwrap();
        assert_eq!((runs[0].status.as_str(), runs[0].id), ("held", id));
        let owner: Option<String> = sqlx::query_scalar("SELECT owner FROM sync_runs")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(owner.as_deref(), Some(store.lease().id()));
        let orphan = sqlx::query(
            "INSERT INTO user_changes (user_id, field, observed_at, run_id, source)
             VALUES ('1', 'user', 'now', 999, 'full')",
        )
        .execute(store.pool())
        .await;
        assert!(orphan.is_err(), "a change of a run that does not exist");
        let bad = sqlx::query("UPDATE sync_runs SET status = 'bogus'")
            .execute(store.pool())
            .await;
        assert!(bad.is_err());
    }

    /// The rebuild keeps every run, its id and the sequence, and the rows
    /// that reference runs stay attached.
    #[tokio::test]
    async fn the_held_migration_keeps_runs_and_their_references() {
        use sqlx::migrate::Migrator;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .foreign_keys(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        let before = Migrator {
            migrations: std::borrow::Cow::Owned(
                super::super::store::MIGRATIONS
                    .iter()
                    .filter(|m| m.version < 20261202100002)
                    .cloned()
                    .collect(),
            ),
            ..Migrator::DEFAULT
        };
        before.run(&pool).await.unwrap();
        for sql in [
            "INSERT INTO sync_runs (kind, started_at, status) VALUES ('full', 'a', 'ok')",
            "INSERT INTO sync_runs (kind, started_at, status, owner) VALUES ('push', 'b', 'running', 'x')",
            "INSERT INTO user_changes (user_id, field, observed_at, run_id, source)
             VALUES ('1', 'user', 'a', 1, 'full')",
            "INSERT INTO pushes (run_id, email_id, action, fields_json, status, at)
             VALUES (2, 'a@x', 'update', '{}', 'planned', 'b')",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;
        let store = Store::open(&path, &Clock::system()).await.unwrap();
        let runs: Vec<(i64, String, Option<String>)> =
            sqlx::query_as("SELECT id, status, owner FROM sync_runs ORDER BY id")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert_eq!(
            runs,
            [
                (1, "ok".into(), None),
                (2, "running".into(), Some("x".into()))
            ]
        );
        let broken: Vec<(String, i64)> =
            sqlx::query_as("SELECT \"table\", rowid FROM pragma_foreign_key_check")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert!(broken.is_empty(), "{broken:?}");
        let parents: Vec<String> = sqlx::query_scalar(
            "SELECT \"table\" FROM pragma_foreign_key_list('pushes')
             UNION ALL SELECT \"table\" FROM pragma_foreign_key_list('user_changes')",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(parents, ["sync_runs", "sync_runs"]);
        assert_eq!(store.start_run(RunKind::Full, Utc::now()).await.unwrap(), 3);
    }
}
