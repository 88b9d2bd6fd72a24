//! Opening the mirror database.
//!
//! SQLite in WAL mode so that readers (sqlite3, Datasette, Grafana) never block
//! the daemon and never see half a page; every write transaction starts with
//! `BEGIN IMMEDIATE` so concurrent writers (a manual `push` beside the daemon)
//! queue on SQLite's busy handler instead of failing mid-transaction.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::sync::Arc;

use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::OwnedMutexGuard;

use crate::clock::{Clock, TimeHold};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot prepare the mirror at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the mirror at {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot apply migrations to the mirror at {path}: {source}")]
    Migrate {
        path: PathBuf,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("mirror database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// The embedded migrations (applied on every open; idempotent).
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A handle to the mirror database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
    clock: Clock,
    /// One writer at a time within this process. SQLite allows one writer
    /// anyway; queueing here (FIFO, no sleeping) instead of in SQLite's
    /// busy handler (which sleeps 1, 2, 5, 10… ms between tries) keeps a
    /// page write and a quota-ledger update from slowing each other down.
    /// Other processes still meet the busy handler, rarely.
    writer: Arc<tokio::sync::Mutex<()>>,
}

/// A write transaction (`BEGIN IMMEDIATE`) holding this process's writer
/// turn. Derefs to the connection, like sqlx's `Transaction`.
pub struct WriteTx {
    tx: Transaction<'static, Sqlite>,
    _turn: OwnedMutexGuard<()>,
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
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

impl Store {
    /// Open (creating if missing) the mirror at `path` and apply migrations.
    ///
    /// A new database file is created with mode 0640 before SQLite touches it:
    /// SQLite gives its `-wal` and `-shm` files the main file's permissions,
    /// so an ops group can read the mirror and nobody else can.
    pub async fn open(path: &Path, clock: &Clock) -> Result<Self, StoreError> {
        let _hold = clock.hold();
        let io = |source| StoreError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        create_private(path).map_err(io)?;

        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(|source| StoreError::Open {
                path: path.to_owned(),
                source,
            })?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // SQLite's busy handler waits in real time on the connection's
            // worker thread; long enough for another process's transaction.
            .busy_timeout(Duration::from_secs(30));

        let pool = SqlitePoolOptions::new()
            // Enough that callers never queue for a connection: under tokio's
            // paused clock a queued acquire would see its timeout fire early.
            .max_connections(16)
            // A ping per checkout costs a round trip to the worker thread
            // for nothing: SQLite connections do not go stale.
            .test_before_acquire(false)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(60))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                path: path.to_owned(),
                source,
            })?;
        MIGRATIONS
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self {
            pool,
            path: path.to_owned(),
            clock: clock.clone(),
            writer: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Hold a paused test clock still during a database operation (see
    /// [`Clock::hold`]); a no-op in production.
    pub fn hold(&self) -> TimeHold {
        self.clock.hold()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Start a write transaction that takes SQLite's write lock at once,
    /// after waiting for this process's writer turn.
    pub async fn write(&self) -> Result<WriteTx, sqlx::Error> {
        let turn = self.writer.clone().lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx { tx, _turn: turn })
    }

    /// The writer turn, for a single auto-committed write statement.
    pub async fn writer(&self) -> OwnedMutexGuard<()> {
        self.writer.clone().lock_owned().await
    }

    /// Close every connection (checkpointing the WAL).
    pub async fn close(&self) {
        let _hold = self.hold();
        self.pool.close().await;
    }
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn create_private(_path: &Path) -> std::io::Result<()> {
    Ok(())
}
