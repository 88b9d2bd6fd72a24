//! The write door, shared by the mirror's file ([`super::store`]) and the
//! quota ledger's ([`super::ledger`]): the test clock's hold, then this
//! process's writer turn for that file, which owns the file's write
//! connection, then (for a transaction) SQLite's write lock, always in
//! this order.
//!
//! Why the turn owns the connection, not a pool of one: sqlx tests every
//! pooled connection as it is given back (a round trip to its thread, in
//! a task of its own), and the next checkout waits for that test. For the
//! ledger that was a second round trip at every request start, on the
//! path from one page's answer to the next page's request.

use std::sync::Arc;

use sqlx::sqlite::SqliteTransactionManager;
use sqlx::{SqliteConnection, TransactionManager};
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};

use super::error::StoreError;
use crate::clock::{Clock, TimeHold};

/// One file's writer turn in this process, with the file's write
/// connection: `Some` while writes are allowed (`None` once closed, and
/// always for a read-only opener).
pub(crate) type Turn = Arc<Mutex<Option<SqliteConnection>>>;

/// A turn holding `conn`, or one that refuses every write (`None`).
pub(crate) fn turn(conn: Option<SqliteConnection>) -> Turn {
    Arc::new(Mutex::new(conn))
}

/// Shut `turn` after any write in progress: later writes fail with
/// [`StoreError::Closed`]. Returns the connection, for the caller to close.
pub(crate) async fn shut(turn: &Turn) -> Option<SqliteConnection> {
    turn.lock().await.take()
}

/// The turn, held: the write connection (deref), and the test clock's
/// hold, given back after the turn.
pub(crate) struct Held {
    conn: OwnedMappedMutexGuard<Option<SqliteConnection>, SqliteConnection>,
    // Dropped last: the clock stays held until the turn is given back.
    _hold: TimeHold,
}

/// The first two steps of every door: the clock's hold first (so the
/// turn is awaited under it), then `turn`. Fails with
/// [`StoreError::Closed`] once the turn was shut (or never open).
pub(crate) async fn enter(clock: &Clock, turn: &Turn) -> Result<Held, StoreError> {
    let hold = clock.hold();
    let guard = turn.clone().lock_owned().await;
    let conn = OwnedMutexGuard::try_map(guard, Option::as_mut).map_err(|_| StoreError::Closed)?;
    Ok(Held { conn, _hold: hold })
}

impl std::ops::Deref for Held {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Held {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}

/// A write transaction (`BEGIN IMMEDIATE`) on its file's write connection,
/// holding the turn and the test clock's hold, from the doors only
/// ([`super::Store::write`] and the ledger's). Derefs to the connection,
/// like sqlx's `Transaction`; dropped uncommitted, it rolls back (the
/// rollback is queued on the connection's thread before the turn is
/// given back, so the next write finds no transaction open).
pub struct WriteTx {
    held: Held,
    open: bool,
}

impl WriteTx {
    /// The door: [`enter`], then `BEGIN IMMEDIATE` (another process's
    /// transaction is waited for by the busy handler, on the connection's
    /// worker thread). A begin cancelled before its answer is rolled back
    /// by sqlx on that thread.
    pub(crate) async fn begin(clock: &Clock, turn: &Turn) -> Result<WriteTx, StoreError> {
        let mut held = enter(clock, turn).await?;
        SqliteTransactionManager::begin(&mut held, Some("BEGIN IMMEDIATE".into())).await?;
        Ok(WriteTx { held, open: true })
    }

    pub async fn commit(mut self) -> Result<(), StoreError> {
        SqliteTransactionManager::commit(&mut self.held).await?;
        self.open = false;
        Ok(())
    }

    pub async fn rollback(mut self) -> Result<(), StoreError> {
        SqliteTransactionManager::rollback(&mut self.held).await?;
        self.open = false;
        Ok(())
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if self.open {
            SqliteTransactionManager::start_rollback(&mut self.held);
        }
    }
}

impl std::ops::Deref for WriteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.held
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.held
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::clock::Clock;
    use crate::mirror::Store;

    /// `store` gets an empty `probe` table.
    async fn create_probe(store: &Store) {
        let mut tx = store.write().await.unwrap();
        sqlx::query("CREATE TABLE probe (x)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    async fn probe_rows(store: &Store) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM probe")
            .fetch_one(store.pool())
            .await
            .unwrap()
    }

    /// A write dropped uncommitted is undone, and the next write begins a
    /// transaction of its own (not a savepoint inside the dropped one).
    #[tokio::test]
    async fn a_write_dropped_uncommitted_is_undone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.db"), &Clock::system())
            .await
            .unwrap();
        create_probe(&store).await;
        let mut tx = store.write().await.unwrap();
        sqlx::query("INSERT INTO probe VALUES (1)")
            .execute(&mut *tx)
            .await
            .unwrap();
        drop(tx);
        let mut tx = store.write().await.unwrap();
        sqlx::query("INSERT INTO probe VALUES (2)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let kept: Vec<i64> = sqlx::query_scalar("SELECT x FROM probe")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(kept, [2]);
        store.close().await;
    }

    /// A write given up while it waits for another process's write lock
    /// (a caller's timeout) leaves no transaction open: once the other
    /// process is done, the next write commits, and others see it.
    #[tokio::test]
    async fn a_write_given_up_while_waiting_leaves_nothing_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let clock = Clock::system();
        let store = Store::open(&path, &clock).await.unwrap();
        let other_process = Store::open(&path, &clock).await.unwrap();
        create_probe(&store).await;
        let theirs = other_process.write().await.unwrap();
        let given_up = tokio::time::timeout(Duration::from_millis(100), store.write()).await;
        assert!(given_up.is_err(), "the write did not wait for the lock");
        theirs.rollback().await.unwrap();
        let mut tx = store.write().await.unwrap();
        sqlx::query("INSERT INTO probe VALUES (1)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(probe_rows(&other_process).await, 1);
        other_process.close().await;
        store.close().await;
    }
}
