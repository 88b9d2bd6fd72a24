//! The first full pull into an empty mirror builds `users_email` once, at
//! its end, instead of row by row.
//!
//! Why: listing order is id order, so every other index of a user grows at
//! its end, but e-mail order is random against it. Each commit of a page
//! group rewrites, in the WAL, about one `users_email` page per user it
//! inserted, and once the index outgrows the page cache (about 45 MB at
//! 1M users against 2 MB) every insert also reads a page back. `CREATE
//! INDEX` sorts instead: measured by `cargo bench --bench pull` at 1M
//! users, the first pull took 70 s maintaining the index and 34 s
//! building it at the end.
//!
//! While it is missing, a query by e-mail still answers, by a scan; the
//! mirror is half-listed then anyway. Whatever ends the listing (complete,
//! stopped, failed) builds it, and so do [`Store::open`] and the start of
//! every pull, so a crash cannot leave it missing beyond the next start.

use crate::mirror::store::{Store, StoreError};

/// The one index a first load defers, exactly as the initial migration
/// created it (`migrations/20261129000001_initial.sql`; the table was
/// renamed `user_rows` later and the index followed it).
const BUILD: &str = "CREATE INDEX IF NOT EXISTS users_email ON user_rows (email_id COLLATE NOCASE)";
const DROP: &str = "DROP INDEX IF EXISTS users_email";

/// Whether the indexes of a first load are deferred: hand it back to
/// [`Store::end_first_load`] when the listing ends, however it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a deferred index is built by Store::end_first_load"]
pub struct FirstLoad(bool);

impl FirstLoad {
    pub fn deferred(self) -> bool {
        self.0
    }
}

impl Store {
    /// Before a listing: a full listing into a mirror that has never held
    /// a user defers `users_email` (see the module doc); any other listing
    /// first builds it if it is missing.
    pub async fn begin_first_load(&self, full: bool) -> Result<FirstLoad, StoreError> {
        let mut tx = self.write().await?;
        let empty: bool = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM user_rows)")
            .fetch_one(&mut *tx)
            .await?;
        let defer = full && empty;
        if defer {
            // In the transaction that found the mirror empty.
            sqlx::query(DROP).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        if defer {
            tracing::debug!("first load: users_email is built when the listing ends");
        } else {
            // The same sort as at a first load's end (temporary files on
            // disk), should the index be missing.
            self.build_deferred_indexes().await?;
        }
        Ok(FirstLoad(defer))
    }

    /// After a listing: build what [`Store::begin_first_load`] deferred.
    pub async fn end_first_load(&self, load: FirstLoad) -> Result<(), StoreError> {
        if load.deferred() {
            self.build_deferred_indexes().await?;
        }
        Ok(())
    }

    /// Build any deferred index that is missing (at open: a first load
    /// that never reached its end).
    pub(crate) async fn build_deferred_indexes(&self) -> Result<(), StoreError> {
        self.write_sorting(BUILD).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;

    async fn has_email_index(store: &Store) -> bool {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master
             WHERE type = 'index' AND name = 'users_email' AND tbl_name = 'user_rows')",
        )
        .fetch_one(store.pool())
        .await
        .unwrap()
    }

    async fn open(path: &std::path::Path) -> Store {
        Store::open(path, &Clock::system()).await.unwrap()
    }

    /// Only a full listing into a mirror without users defers the index,
    /// and its end builds it back, the same index as the migration's.
    #[tokio::test]
    async fn only_a_first_full_listing_defers_the_email_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir.path().join("m.db")).await;
        let migrated: String =
            sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = 'users_email'")
                .fetch_one(store.pool())
                .await
                .unwrap();
        let load = store.begin_first_load(false).await.unwrap();
        assert!(!load.deferred(), "an incremental listing defers nothing");
        assert!(has_email_index(&store).await);

        let load = store.begin_first_load(true).await.unwrap();
        assert!(load.deferred());
        assert!(!has_email_index(&store).await);
        store.end_first_load(load).await.unwrap();
        let built: String =
            sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = 'users_email'")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(
            built.replace("IF NOT EXISTS ", ""),
            migrated.replace('"', "")
        );

        let user = crate::mirror::users::FlatUser::from_raw_json(r#"{"id":"1","email_id":"a@x"}"#)
            .unwrap()
            .unwrap();
        let run = store
            .start_run(crate::mirror::vocab::RunKind::Full, chrono::Utc::now())
            .await
            .unwrap();
        store
            .write_users_page(
                &[user],
                run,
                crate::mirror::vocab::RunKind::Full,
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        let load = store.begin_first_load(true).await.unwrap();
        assert!(!load.deferred(), "a mirror with users keeps its index");
        assert!(has_email_index(&store).await);
    }

    /// A first load that never reached its end (a crash) leaves the index
    /// missing: the next open, and the next listing, build it.
    #[tokio::test]
    async fn a_missing_email_index_is_built_at_open_and_before_a_listing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let store = open(&path).await;
        let _ = store.begin_first_load(true).await.unwrap();
        store.close().await;
        let store = open(&path).await;
        assert!(has_email_index(&store).await, "open builds it");

        sqlx::query(DROP).execute(store.pool()).await.unwrap();
        let _ = store.begin_first_load(false).await.unwrap();
        assert!(
            has_email_index(&store).await,
            "a listing that does not defer builds it"
        );
    }
}
