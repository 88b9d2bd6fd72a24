//! Users in the mirror: flattening Cliq's user objects into the public
//! columns, and writing a page of them with change history.
//!
//! A user is stored in two tables, read together through the `users` view:
//! `user_rows` (the content, rewritten only when it changes) and
//! `user_state` (content hash, last seen, removed; touched by every
//! listing). See `migrations/20261201000001_user_state.sql`.

use chrono::{DateTime, Utc};

use super::column::{Column, Values};
use super::store::{Store, StoreError};
use crate::clock::to_db;

/// One user as the mirror stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlatUser {
    pub id: String,
    /// A value for every [`Column`]; a change to any of them is a
    /// `user_changes` row.
    pub values: Values,
    pub raw_json: String,
    pub content_hash: String,
}

/// What identifies a listed user's content: its id and content hash, read
/// without its columns. A page whose every key the mirror has, present,
/// is written from its keys alone (see [`PageGroup::write_unchanged`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserKey {
    pub id: String,
    pub content_hash: String,
}

impl FlatUser {
    pub fn get(&self, column: Column) -> Option<&str> {
        self.values.get(column)
    }
}

mod first_load;
mod flatten;
mod page_write;
pub use first_load::FirstLoad;
pub use page_write::PageGroup;

/// What writing one page did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PageOutcome {
    pub seen: u64,
    pub added: u64,
    pub changed: u64,
    /// Users added or changed (for follow-up work such as team memberships).
    pub touched_ids: Vec<String>,
}

/// Where a change was observed (the `source` column): the kind of the run
/// that saw it, in the same words as `sync_runs.kind`.
pub use super::vocab::RunKind as ChangeSource;

impl Store {
    /// What [`Store::mark_unseen_removed`] would do now:
    /// `(users it would mark removed, users present before)`.
    pub async fn unseen_since(
        &self,
        listing_started: DateTime<Utc>,
    ) -> Result<(u64, u64), StoreError> {
        let (unseen, present): (i64, i64) = sqlx::query_as(
            "SELECT coalesce(sum(last_seen_at < ?1), 0), count(*) FROM user_state
             WHERE removed_at IS NULL",
        )
        .bind(to_db(listing_started))
        .fetch_one(&*self.read())
        .await?;
        Ok((unseen as u64, present as u64))
    }

    /// After a *complete* full listing that started at `listing_started`:
    /// everyone not seen since then is gone from Cliq. Returns how many
    /// users were newly marked removed. Never call it for a listing that
    /// failed, was stopped or throttled beyond its budget.
    pub async fn mark_unseen_removed(
        &self,
        listing_started: DateTime<Utc>,
        run_id: i64,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let now_s = to_db(now);
        let started = to_db(listing_started);
        const UNSEEN: &str =
            "SELECT id FROM user_state WHERE removed_at IS NULL AND last_seen_at < ?1";
        let mut tx = self.write().await?;
        let unseen = sqlx::query(&format!(
            "INSERT INTO user_changes
                 (user_id, field, old_value, new_value, observed_at, run_id, source)
             SELECT id, 'user', 'present', 'removed', ?2, ?3, 'full' FROM ({UNSEEN})"
        ))
        .bind(&started)
        .bind(&now_s)
        .bind(run_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if unseen == 0 {
            // Nobody to mark (every full pull of a quiet org): each of the
            // two statements below would read all of `user_state` again.
            tx.commit().await?;
            return Ok(0);
        }
        sqlx::query(&format!(
            "UPDATE user_rows SET updated_at = ?2 WHERE id IN ({UNSEEN})"
        ))
        .bind(&started)
        .bind(&now_s)
        .execute(&mut *tx)
        .await?;
        let removed = sqlx::query(
            "UPDATE user_state SET removed_at = ?2
             WHERE removed_at IS NULL AND last_seen_at < ?1",
        )
        .bind(&started)
        .bind(&now_s)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{from_db, Clock};

    fn user(id: &str, location: &str) -> FlatUser {
        FlatUser::from_raw(&serde_json::json!({
            "id": id, "email_id": format!("{id}@zylker.example"), "work_location": location,
            "department": {"id": "7", "name": "Ops"}
        }))
        .unwrap()
    }

    /// The rows of a one-column query of strings.
    async fn strings(store: &Store, sql: &str) -> Vec<String> {
        sqlx::query_scalar(sql)
            .fetch_all(store.pool())
            .await
            .unwrap()
    }

    /// A new mirror, its clock at 2026-03-01T00:00Z, with `runs` full
    /// runs started (the runs its pages are written for), and that time.
    async fn mirror_with_runs(runs: usize) -> (tempfile::TempDir, Store, DateTime<Utc>) {
        let dir = tempfile::tempdir().unwrap();
        let t0 = from_db("2026-03-01T00:00:00Z").unwrap();
        let store = Store::open(&dir.path().join("m.db"), &Clock::anchored(t0))
            .await
            .unwrap();
        for _ in 0..runs {
            store
                .start_run(crate::mirror::runs::RunKind::Full, t0)
                .await
                .unwrap();
        }
        (dir, store, t0)
    }

    #[tokio::test(start_paused = true)]
    async fn history_removal_and_return() {
        let (_dir, store, t0) = mirror_with_runs(4).await;
        let at = |m| t0 + chrono::Duration::minutes(m);
        let page = [user("1", "A"), user("2", "B")];
        let out = store
            .write_users_page(&page, 1, ChangeSource::Full, at(1))
            .await
            .unwrap();
        assert_eq!((out.seen, out.added, out.changed), (2, 2, 0));

        // Unchanged: no history, only last_seen_at.
        let out = store
            .write_users_page(&page, 2, ChangeSource::Full, at(2))
            .await
            .unwrap();
        assert_eq!((out.added, out.changed), (0, 0));

        // A complete listing without user 2 marks it removed, once.
        store
            .write_users_page(&page[..1], 3, ChangeSource::Full, at(4))
            .await
            .unwrap();
        assert_eq!(store.mark_unseen_removed(at(3), 3, at(5)).await.unwrap(), 1);
        assert_eq!(store.mark_unseen_removed(at(3), 3, at(5)).await.unwrap(), 0);

        // User 2 returns with a new location: removed_at cleared, history kept.
        let back = [user("2", "C")];
        let out = store
            .write_users_page(&back, 4, ChangeSource::Full, at(6))
            .await
            .unwrap();
        assert_eq!(out.changed, 1);
        let _hold = store.hold();
        let (removed, location): (Option<String>, String) =
            sqlx::query_as("SELECT removed_at, work_location FROM users WHERE id = '2'")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!((removed, location.as_str()), (None, "C"));
        let history: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT field, old_value, new_value FROM user_changes WHERE user_id = '2' ORDER BY id",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        let fields: Vec<_> = history
            .iter()
            .map(|(f, o, n)| {
                format!(
                    "{f}:{}->{}",
                    o.as_deref().unwrap_or(""),
                    n.as_deref().unwrap_or("")
                )
            })
            .collect();
        assert_eq!(
            fields,
            [
                "user:->added",
                "user:present->removed",
                "user:removed->restored",
                "work_location:B->C"
            ]
        );
    }

    /// The columns of `users`, in order: the public interface.
    const USERS_COLUMNS: &str = "id,email_id,first_name,last_name,display_name,full_name,\
        status,employee_id,mobile,phone,extension,work_location,timezone,language,country,\
        department_id,department_name,designation_id,designation_name,reporting_to_id,\
        reporting_to_name,raw_json,content_hash,first_seen_at,last_seen_at,updated_at,removed_at";

    async fn users_columns(pool: &sqlx::SqlitePool) -> String {
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info('users')")
            .fetch_all(pool)
            .await
            .unwrap();
        names.join(",")
    }

    /// An unchanged user costs a `user_state` update and nothing in
    /// `user_rows`; a removed user who comes back unchanged is restored; a
    /// user listed twice in a page ends as the later copy.
    #[tokio::test(start_paused = true)]
    async fn sightings_do_not_rewrite_content() {
        let (_dir, store, t0) = mirror_with_runs(4).await;
        let at = |m| t0 + chrono::Duration::minutes(m);
        let page = [user("1", "A"), user("2", "B")];
        store
            .write_users_page(&page, 1, ChangeSource::Full, at(0))
            .await
            .unwrap();
        let _hold = store.hold();
        // Each new user's `added` row, with its run and source.
        let added = strings(
            &store,
            "SELECT json_array(user_id, field, old_value, new_value, run_id, source)
             FROM user_changes ORDER BY id",
        )
        .await;
        assert_eq!(
            added,
            [
                r#"["1","user",null,"added",1,"full"]"#,
                r#"["2","user",null,"added",1,"full"]"#
            ]
        );
        let rows_before: Vec<(String, String)> =
            sqlx::query_as("SELECT id, updated_at FROM user_rows ORDER BY id")
                .fetch_all(store.pool())
                .await
                .unwrap();
        let out = store
            .write_users_page(&page, 2, ChangeSource::Full, at(1))
            .await
            .unwrap();
        assert_eq!((out.added, out.changed), (0, 0));
        let rows_after: Vec<(String, String)> =
            sqlx::query_as("SELECT id, updated_at FROM user_rows ORDER BY id")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert_eq!(rows_before, rows_after);
        let seen: Vec<String> = sqlx::query_scalar("SELECT last_seen_at FROM users ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(seen, vec![to_db(at(1)), to_db(at(1))]);

        // User 2 is gone, then back with the same content: restored, one
        // `restored` row and no field changes.
        store
            .write_users_page(&page[..1], 3, ChangeSource::Full, at(2))
            .await
            .unwrap();
        assert_eq!(store.mark_unseen_removed(at(2), 3, at(3)).await.unwrap(), 1);
        let out = store
            .write_users_page(&page[1..], 4, ChangeSource::Full, at(4))
            .await
            .unwrap();
        assert_eq!((out.added, out.changed), (0, 1));
        let history: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT field, old_value, new_value FROM user_changes
             WHERE user_id = '2' AND run_id = 4 ORDER BY id",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(
            history,
            vec![(
                "user".into(),
                Some("removed".into()),
                Some("restored".into())
            )]
        );
        let removed: Option<String> =
            sqlx::query_scalar("SELECT removed_at FROM users WHERE id = '2'")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(removed, None);

        // Listed twice in one page: the later copy wins, with its change.
        let twice = [user("1", "X"), user("1", "Y")];
        let out = store
            .write_users_page(&twice, 4, ChangeSource::Full, at(5))
            .await
            .unwrap();
        assert_eq!(out.changed, 2);
        let location: String = sqlx::query_scalar("SELECT work_location FROM users WHERE id = '1'")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(location, "Y");

        // Twice again, the first copy as the mirror has it: that copy is a
        // sighting, the second a change against it (and an unchanged user
        // listed twice is seen, nothing more).
        let out = store
            .write_users_page(
                &[user("1", "Y"), user("1", "Z")],
                4,
                ChangeSource::Full,
                at(6),
            )
            .await
            .unwrap();
        assert_eq!((out.added, out.changed), (0, 1));
        let out = store
            .write_users_page(
                &[user("1", "Z"), user("1", "Z")],
                4,
                ChangeSource::Full,
                at(7),
            )
            .await
            .unwrap();
        assert_eq!((out.seen, out.added, out.changed), (2, 0, 0));
        let changes: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT field, old_value, new_value FROM user_changes
             WHERE user_id = '1' AND observed_at >= ?1 ORDER BY id",
        )
        .bind(to_db(at(6)))
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(
            changes,
            vec![("work_location".into(), Some("Y".into()), Some("Z".into()))]
        );
        let seen: String = sqlx::query_scalar("SELECT last_seen_at FROM users WHERE id = '1'")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(seen, to_db(at(7)));

        // A new user listed twice, changed: `added`, then the change
        // against the first copy.
        let out = store
            .write_users_page(
                &[user("3", "C"), user("3", "D")],
                1,
                ChangeSource::Full,
                at(8),
            )
            .await
            .unwrap();
        assert_eq!((out.added, out.changed), (1, 1));
        let history: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT field, old_value, new_value FROM user_changes WHERE user_id = '3' ORDER BY id",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(
            history,
            vec![
                ("user".into(), None, Some("added".into())),
                ("work_location".into(), Some("C".into()), Some("D".into())),
            ]
        );
        assert_eq!(users_columns(store.pool()).await, USERS_COLUMNS);
    }

    /// A mirror created before `users` became a view keeps every user,
    /// every value and its column order.
    #[tokio::test]
    async fn a_mirror_from_before_the_split_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        // The migrations as they were before the split.
        let old_migrations = dir.path().join("migrations");
        std::fs::create_dir(&old_migrations).unwrap();
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations")).unwrap()
        {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if name.as_str() < "20261201" {
                std::fs::copy(entry.path(), old_migrations.join(&name)).unwrap();
            }
        }
        let pool = sqlx::SqlitePool::connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true),
        )
        .await
        .unwrap();
        sqlx::migrate::Migrator::new(old_migrations.as_path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO users (id, email_id, first_name, work_location, raw_json, content_hash,
                 first_seen_at, last_seen_at, updated_at, removed_at)
             VALUES ('1', 'a@x.example', 'Ann', 'Pune', '{\"id\":\"1\"}', 'h1',
                     '2026-01-01T00:00:00.000Z', '2026-02-01T00:00:00.000Z',
                     '2026-01-15T00:00:00.000Z', NULL),
                    ('2', 'b@x.example', 'Bob', NULL, '{\"id\":\"2\"}', 'h2',
                     '2026-01-02T00:00:00.000Z', '2026-01-20T00:00:00.000Z',
                     '2026-01-21T00:00:00.000Z', '2026-01-21T00:00:00.000Z')",
        )
        .execute(&pool)
        .await
        .unwrap();
        let before: Vec<String> = sqlx::query_scalar(
            "SELECT json_array(id, email_id, first_name, work_location, raw_json, content_hash,
                 first_seen_at, last_seen_at, updated_at, removed_at) FROM users ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;

        let store = Store::open(&path, &Clock::system()).await.unwrap();
        let after = strings(
            &store,
            "SELECT json_array(id, email_id, first_name, work_location, raw_json, content_hash,
                 first_seen_at, last_seen_at, updated_at, removed_at) FROM users ORDER BY id",
        )
        .await;
        assert_eq!(before.len(), 2);
        assert_eq!(before, after);
        assert_eq!(users_columns(store.pool()).await, USERS_COLUMNS);
    }

    /// Write `users` as one page known by their keys, the long way if
    /// need be: the outcome if the keys were enough.
    async fn by_keys(store: &Store, users: &[FlatUser], now: DateTime<Utc>) -> Option<PageOutcome> {
        let keys: Vec<UserKey> = users
            .iter()
            .map(|u| UserKey::from_raw_json(&u.raw_json).unwrap().unwrap())
            .collect();
        let mut group = store
            .begin_pages(2, ChangeSource::Full, false)
            .await
            .unwrap();
        let out = group.write_unchanged(&keys, now).await.unwrap();
        if out.is_none() {
            let long = group.write_changed(users, now).await.unwrap();
            assert_eq!(long.seen, users.len() as u64);
        }
        group.commit().await.unwrap();
        out
    }

    /// A page known by its users' keys is written from them only if the
    /// mirror has every one present with that content; otherwise nothing
    /// of it is written (its `last_seen_at` aside) and the long way, with
    /// the same `now`, records what a full page would have.
    #[tokio::test(start_paused = true)]
    async fn a_page_is_written_by_its_keys_only_when_nobody_in_it_changed() {
        let (_dir, store, t0) = mirror_with_runs(2).await;
        let at = |m| t0 + chrono::Duration::minutes(m);
        let page = [user("1", "A"), user("2", "B"), user("3", "C")];
        store
            .write_users_page(&page, 1, ChangeSource::Full, at(0))
            .await
            .unwrap();
        store
            .write_users_page(&page[..2], 1, ChangeSource::Full, at(1))
            .await
            .unwrap();
        store.mark_unseen_removed(at(1), 1, at(1)).await.unwrap();
        // Users 1 and 2 are present and unchanged: by their keys.
        let out = by_keys(&store, &page[..2], at(2)).await;
        assert_eq!(out.map(|o| (o.seen, o.added, o.changed)), Some((2, 0, 0)));
        // Someone changed, new, removed (3), or listed twice: the long way.
        let moved = [user("1", "A"), user("2", "Z")];
        let new = [user("1", "A"), user("4", "D")];
        let twice = [user("1", "A"), user("1", "A")];
        for (users, m) in [
            (&moved[..], 3),
            (&new[..], 4),
            (&page[..], 5),
            (&twice[..], 6),
        ] {
            assert_eq!(
                by_keys(&store, users, at(m)).await,
                None,
                "{:?}",
                users.iter().map(|u| &u.id).collect::<Vec<_>>()
            );
        }
        let _hold = store.hold();
        let rows = strings(
            &store,
            "SELECT json_array(id, work_location, last_seen_at, removed_at) FROM users ORDER BY id",
        )
        .await;
        assert_eq!(
            rows,
            [
                r#"["1","A","2026-03-01T00:06:00.000Z",null]"#,
                r#"["2","B","2026-03-01T00:05:00.000Z",null]"#,
                r#"["3","C","2026-03-01T00:05:00.000Z",null]"#,
                r#"["4","D","2026-03-01T00:04:00.000Z",null]"#,
            ]
        );
        let changes = strings(
            &store,
            "SELECT json_array(user_id, field, old_value, new_value) FROM user_changes
             WHERE run_id = 2 ORDER BY id",
        )
        .await;
        assert_eq!(
            changes,
            [
                r#"["2","work_location","B","Z"]"#,
                r#"["4","user",null,"added"]"#,
                r#"["2","work_location","Z","B"]"#,
                r#"["3","user","removed","restored"]"#,
            ]
        );
    }
}
