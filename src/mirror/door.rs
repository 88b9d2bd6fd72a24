//! The write door's transaction, shared by the mirror's file
//! ([`super::store`]) and the quota ledger's ([`super::ledger`]): the test
//! clock's hold, this process's writer turn for that file, then SQLite's
//! write lock, always in this order.

use std::sync::Arc;

use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::OwnedMutexGuard;

use super::error::StoreError;
use crate::clock::{Clock, TimeHold};

/// One file's writer turn in this process: `true` while writes are
/// allowed (`false` once closed, and always for a read-only opener).
pub(crate) type Turn = Arc<tokio::sync::Mutex<bool>>;

/// A write transaction (`BEGIN IMMEDIATE`) holding its file's writer turn
/// and the test clock's hold, from the doors only ([`super::Store::write`]
/// and the ledger's). Derefs to the connection, like sqlx's
/// `Transaction`; dropped uncommitted, it rolls back.
pub struct WriteTx {
    tx: Transaction<'static, Sqlite>,
    _turn: OwnedMutexGuard<bool>,
    // Dropped last: the clock stays held until the turn is given back.
    _hold: TimeHold,
}

/// The first two steps of every door: the clock's hold first (so the
/// turn is awaited under it), then `turn`. Fails with
/// [`StoreError::Closed`] once the turn was shut (or never open).
pub(crate) async fn enter(
    clock: &Clock,
    turn: &Turn,
) -> Result<(TimeHold, OwnedMutexGuard<bool>), StoreError> {
    let hold = clock.hold();
    let turn = turn.clone().lock_owned().await;
    if !*turn {
        return Err(StoreError::Closed);
    }
    Ok((hold, turn))
}

impl WriteTx {
    /// The door: [`enter`], then `BEGIN IMMEDIATE` on `pool` (another
    /// process's transaction is waited for by the busy handler, on the
    /// connection's worker thread).
    pub(crate) async fn begin(
        clock: &Clock,
        turn: &Turn,
        pool: &SqlitePool,
    ) -> Result<WriteTx, StoreError> {
        let (hold, turn) = enter(clock, turn).await?;
        let tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx {
            tx,
            _turn: turn,
            _hold: hold,
        })
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.commit().await?)
    }

    pub async fn rollback(self) -> Result<(), StoreError> {
        Ok(self.tx.rollback().await?)
    }
}

impl std::ops::Deref for WriteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}
