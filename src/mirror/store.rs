//! Opening the mirror database, and the one door every write goes through.
//!
//! SQLite in WAL mode so that readers (sqlite3, Datasette, Grafana) never block
//! the daemon and never see half a page; every write transaction starts with
//! `BEGIN IMMEDIATE` so concurrent writers (a manual `push` beside the daemon)
//! queue on SQLite's busy handler instead of failing mid-transaction.
//!
//! Where blocking work runs: one driver, sqlx, and sqlx-sqlite runs each
//! connection on its own worker thread. Every SQLite call (a statement, a
//! commit, the busy handler's waits of up to [`BUSY_TIMEOUT`] while another
//! process writes) runs there; a tokio worker only sends the command and
//! awaits the answer, so nothing here blocks the runtime. (Like mini-redis's
//! `db.rs`, which keeps its blocking-free lock short, the rule is: no
//! synchronous database call in async code, and none is left.)
//!
//! The door: [`Store::write`] is the only way to a write transaction. It
//! takes, in this order and always, the test clock's hold (see
//! [`Clock::hold`]), this process's writer turn and SQLite's write lock
//! (`BEGIN IMMEDIATE`, which meets the busy handler if another process
//! writes). A [`WriteTx`] cannot be had any other way, so a forgotten
//! ritual cannot compile.
//!
//! Writes have a connection of their own, owned by the writer turn (see
//! [`super::door`]), reads the pool: SQLite drops a connection's page
//! cache whenever another connection committed since its last
//! transaction, so writes taking turns on the pool's connections re-read
//! their indexes at every transaction.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use std::sync::Arc;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection, SqliteConnection, SqlitePool};

use super::door::{enter, shut, turn, Turn};
use super::lease::OwnerLease;
use super::ledger::Ledger;
use super::sqlite::{create_private, quiet_statement_logs, BUSY_TIMEOUT};
use crate::clock::{Clock, TimeHold};

pub use super::door::WriteTx;
pub use super::error::StoreError;

/// Set on every read-write connection (WAL itself is a property of the
/// file, set when the first connection opens it).
///
/// * `synchronous = NORMAL`: in WAL mode a commit is durable against a
///   process crash; only a checkpoint syncs the file.
/// * `wal_autocheckpoint`: checkpoint once the WAL holds 10,000 pages
///   (SQLite's default is 1,000, about 4 MB). A pull commits a transaction
///   per page of users, and every checkpoint copies each touched index page
///   back and syncs the file: checkpointing every ~40 MB instead of every
///   4 MB cut a 100,000-user first pull by a third (the pages an index
///   keeps rewriting are copied once per checkpoint, not once per 4 MB).
/// * `journal_size_limit`: after a checkpoint, a WAL file larger than
///   64 MB is truncated to it.
const CONNECTION_PRAGMAS: [(&str, &str); 4] = [
    ("synchronous", "NORMAL"),
    ("foreign_keys", "ON"),
    ("wal_autocheckpoint", "10000"),
    ("journal_size_limit", "67108864"),
];

/// Set on the write connection only: `temp_store = MEMORY`. A multi-row
/// statement inside a transaction first copies every page it will change
/// to a statement journal, in case it must undo just itself; SQLite writes
/// that journal to a temporary file once it passes 64 KiB, and for a first
/// pull's page writes that file's writes were about a quarter of the
/// process's system time. In memory it is bounded by the pages one
/// statement touches (a few hundred KiB). The read pool keeps files, so a
/// large sort or temporary table on a read spills to disk as before.
const WRITE_CONNECTION_PRAGMAS: [(&str, &str); 1] = [("temp_store", "MEMORY")];

/// The embedded migrations (applied on every open; idempotent).
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A handle to the mirror database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
    clock: Clock,
    /// The writer turn, with the one connection every write runs on (see
    /// the module doc): `None` once [`Store::close`] ran, and always for
    /// a read-only opener.
    ///
    /// One writer at a time within this process. SQLite allows one writer
    /// anyway; queueing here (FIFO, no sleeping) instead of in SQLite's
    /// busy handler (which sleeps 1, 2, 5, 10… ms between tries) keeps a
    /// page write and a quota-ledger update from slowing each other down.
    /// Other processes still meet the busy handler, rarely.
    writer: Turn,
    /// The quota ledger's own file (see [`super::ledger`]).
    pub(super) ledger: Ledger,
    /// This opener's claim on the runs it starts (see [`super::lease`]).
    lease: Arc<OwnerLease>,
    /// The progress of the run this opener is running, published by pulls
    /// and pushes as they go (see [`super::progress`]).
    progress: super::hub::ProgressHub,
}

/// See [`Store::read`]: the pool, with the test clock held.
pub(crate) struct Read<'a> {
    pool: &'a SqlitePool,
    _hold: TimeHold,
}

impl std::ops::Deref for Read<'_> {
    type Target = SqlitePool;
    fn deref(&self) -> &SqlitePool {
        self.pool
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
        let lease = Arc::new(OwnerLease::take(path)?);

        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let mut writes = read_write_options(path, &WRITE_CONNECTION_PRAGMAS)?
            .connect()
            .await
            .map_err(open_err)?;
        let ledger = Ledger::open(path, clock).await?;
        // Before the migration that drops the mirror's own ledger table.
        ledger.import_from(&mut writes).await?;
        migrate(&mut writes, path).await?;
        let pool = read_pool(path).await?;
        let store = Self {
            pool,
            path: path.to_owned(),
            clock: clock.clone(),
            writer: turn(Some(writes)),
            ledger,
            lease,
            progress: Default::default(),
        };
        // A first load that never reached its end left an index to build.
        store.build_deferred_indexes().await?;
        Ok(store)
    }

    /// Open an existing mirror for reading only (`status`): no file is
    /// created or changed, no migration is run, so it works on a read-only
    /// mount and beside a running daemon. A mirror without its `-shm` file
    /// in a directory where SQLite cannot create one is read as immutable
    /// (there is no WAL to miss then). Returns the migrations this binary
    /// knows that the mirror lacks (an older mirror: readable, not migrated).
    pub async fn open_read_only(
        path: &Path,
        clock: &Clock,
    ) -> Result<(Self, Vec<i64>), StoreError> {
        let _hold = clock.hold();
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let pool = match read_only_pool(path, false).await {
            Ok(pool) => pool,
            Err(_) if !wal_files_present(path) => {
                read_only_pool(path, true).await.map_err(open_err)?
            }
            Err(e) => return Err(open_err(e)),
        };
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
            .fetch_all(&pool)
            .await
            .map_err(open_err)?;
        let known: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
        if let Some(&version) = applied.iter().find(|v| !known.contains(v)) {
            pool.close().await;
            return Err(StoreError::NewerMirror {
                path: path.to_owned(),
                version,
            });
        }
        let pending = known.into_iter().filter(|v| !applied.contains(v)).collect();
        let store = Self {
            pool,
            path: path.to_owned(),
            clock: clock.clone(),
            writer: turn(None),
            ledger: Ledger::open_read_only(path, clock).await,
            lease: Arc::new(OwnerLease::reader()),
            progress: Default::default(),
        };
        Ok((store, pending))
    }

    /// The pool, for reads outside the crate's own (tests, the bench).
    /// Inside `mirror`, reads go through [`Store::read`].
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Run `sql`, one statement that sorts a whole table (`CREATE INDEX`),
    /// through the door but outside a transaction (a single statement is
    /// atomic by itself), with the write connection's temporary files on
    /// disk for it: in memory (see [`WRITE_CONNECTION_PRAGMAS`]) the sort's
    /// runs would be held whole, about 55 MB for 1M e-mails, and SQLite
    /// refuses to switch that setting inside a transaction.
    pub(super) async fn write_sorting(&self, sql: &str) -> Result<(), StoreError> {
        let mut conn = enter(&self.clock, &self.writer).await?;
        let [(name, value)] = WRITE_CONNECTION_PRAGMAS;
        let (to_files, back) = (
            format!("PRAGMA {name} = FILE"),
            format!("PRAGMA {name} = {value}"),
        );
        sqlx::query(&to_files).execute(&mut *conn).await?;
        let done = sqlx::query(sql).execute(&mut *conn).await;
        let restored = sqlx::query(&back).execute(&mut *conn).await;
        done?;
        restored?;
        Ok(())
    }

    /// The door to every read: the pool, with the test clock held for as
    /// long as the returned guard lives. Used as `.fetch_one(&*self.read())`
    /// the guard is a temporary of the statement, so it lives until the
    /// query's `.await` is done, and a read cannot forget the hold.
    pub(crate) fn read(&self) -> Read<'_> {
        Read {
            pool: &self.pool,
            _hold: self.clock.hold(),
        }
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

    /// Where this opener's runs publish their progress (the CLI's bar reads it).
    pub fn progress(&self) -> &super::hub::ProgressHub {
        &self.progress
    }

    /// This opener's owner lease: the runs it starts carry its id.
    pub fn lease(&self) -> &OwnerLease {
        &self.lease
    }

    /// The door to every write: a transaction that holds the test clock
    /// (taken first, so the turn and the lock are awaited under it), this
    /// process's writer turn, and SQLite's write lock, taken at once
    /// (`BEGIN IMMEDIATE`; another process's transaction is waited for by
    /// the busy handler, on the connection's worker thread).
    pub async fn write(&self) -> Result<WriteTx, StoreError> {
        WriteTx::begin(&self.clock, &self.writer).await
    }

    /// Close every connection (checkpointing the WAL), after any write in
    /// progress. Writes after this fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        let _hold = self.hold();
        let last = shut(&self.writer).await;
        self.ledger.close().await;
        // The last connection to close checkpoints the WAL and removes it;
        // the pool does not wait for its connections' threads to finish
        // closing, so the write connection is closed last, awaited until
        // its thread has closed it.
        self.pool.close().await;
        if let Some(last) = last {
            if let Err(e) = last.close().await {
                tracing::warn!(error = %e, "closing the mirror's last connection failed");
            }
        }
    }
}

/// A read-only pool on an existing mirror; `immutable`: promise SQLite the
/// file does not change, so it needs no `-shm` (see `Store::open_read_only`).
async fn read_only_pool(path: &Path, immutable: bool) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .immutable(immutable)
        .create_if_missing(false)
        .busy_timeout(BUSY_TIMEOUT);
    let options = quiet_statement_logs(options);
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .test_before_acquire(false)
        .connect_with(options)
        .await?;
    // Connecting is lazy about the WAL index: a first read tells.
    sqlx::query("SELECT count(*) FROM sqlite_master")
        .fetch_one(&pool)
        .await?;
    Ok(pool)
}

fn wal_files_present(path: &Path) -> bool {
    let with = |suffix: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p).exists()
    };
    with("-wal") || with("-shm")
}

/// Connections of the read pool: enough that callers never queue for one
/// (under tokio's paused clock a queued acquire would see its timeout fire
/// early). Writes take turns on their own connection.
const READ_CONNECTIONS: u32 = 16;

/// Read-write connections on a mirror: WAL, the busy timeout,
/// [`CONNECTION_PRAGMAS`] and `extra`.
fn read_write_options(
    path: &Path,
    extra: &[(&'static str, &'static str)],
) -> Result<SqliteConnectOptions, StoreError> {
    let options = SqliteConnectOptions::from_str("sqlite:")
        .map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(BUSY_TIMEOUT);
    let options = quiet_statement_logs(options);
    Ok(CONNECTION_PRAGMAS
        .iter()
        .chain(extra)
        .fold(options, |o, (key, value)| o.pragma(*key, *value)))
}

/// The pool every read of a read-write opener runs on.
async fn read_pool(path: &Path) -> Result<SqlitePool, StoreError> {
    SqlitePoolOptions::new()
        .max_connections(READ_CONNECTIONS)
        // A ping per checkout costs a round trip to the worker thread
        // for nothing: SQLite connections do not go stale.
        .test_before_acquire(false)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(60))
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(read_write_options(path, &[])?)
        .await
        .map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })
}

/// Bring the mirror's schema up to this build's; a mirror written by a newer
/// build is refused rather than guessed at.
async fn migrate(conn: &mut SqliteConnection, path: &Path) -> Result<(), StoreError> {
    MIGRATIONS.run(conn).await.map_err(|source| match source {
        // sqlx checks the applied migrations before applying any.
        sqlx::migrate::MigrateError::VersionMissing(version) => StoreError::NewerMirror {
            path: path.to_owned(),
            version,
        },
        source => StoreError::Migrate {
            path: path.to_owned(),
            source,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pool's connections and the write connection (the only ones:
    /// sqlx is the one driver) run with the intended settings.
    #[tokio::test]
    async fn every_connection_gets_the_same_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.db"), &Clock::system())
            .await
            .unwrap();
        let names = [
            "synchronous",
            "foreign_keys",
            "wal_autocheckpoint",
            "journal_size_limit",
            "journal_mode",
        ];
        let expected = ["1", "1", "10000", "67108864", "wal"];
        let mut conn = store.pool().acquire().await.unwrap();
        let mut tx = store.write().await.unwrap();
        for conn in [&mut *conn, &mut *tx] {
            let mut got = Vec::new();
            for name in names {
                let v: sqlx::sqlite::SqliteRow = sqlx::query(&format!("PRAGMA {name}"))
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
                use sqlx::{Row, ValueRef};
                let raw = v.try_get_raw(0).unwrap();
                let text = match raw.type_info().to_string().as_str() {
                    "INTEGER" => v.get::<i64, _>(0).to_string(),
                    _ => v.get::<String, _>(0),
                };
                got.push(text);
            }
            assert_eq!(got, expected);
        }
        tx.commit().await.unwrap();
    }

    /// Neither pool warns about slow statements (sqlx's default is a WARN
    /// past 1 s, noise on a loaded host), and statements log at trace.
    #[tokio::test]
    async fn slow_statements_do_not_warn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let store = Store::open(&path, &Clock::system()).await.unwrap();
        let read_only = read_only_pool(&path, false).await.unwrap();
        for pool in [store.pool(), &read_only] {
            // sqlx exposes its log settings only through Debug.
            let options = format!("{:?}", pool.connect_options());
            for want in ["statements_level: Trace", "slow_statements_level: Debug"] {
                assert!(options.contains(want), "{want} not in {options}");
            }
        }
    }

    /// Every write runs on the same connection, so SQLite keeps its page
    /// cache from one write transaction to the next: a connection whose
    /// last read predates another connection's commit drops its whole cache
    /// at its next transaction (a first pull re-read its indexes per page).
    /// A TEMP table is per connection: the later writes see the first's.
    #[tokio::test]
    async fn every_write_runs_on_one_connection() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.db"), &Clock::system())
            .await
            .unwrap();
        // Several connections open and idle, as after concurrent reads.
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(store.pool().acquire().await.unwrap());
        }
        drop(held);
        let mut tx = store.write().await.unwrap();
        sqlx::query("CREATE TEMP TABLE probe (x)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        for _ in 0..4 {
            let mut tx = store.write().await.unwrap();
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM temp.probe")
                .fetch_one(&mut *tx)
                .await
                .expect("the write runs on the connection that made temp.probe");
            assert_eq!(n, 0);
            tx.commit().await.unwrap();
        }
    }

    /// The write connection keeps statement journals in memory
    /// (`temp_store = MEMORY`, 2); the read pool keeps SQLite's default (0).
    /// (Also after `write_sorting` switched it to files for a sort: open
    /// runs one, building any deferred index.)
    #[tokio::test]
    async fn only_the_write_connection_keeps_temp_storage_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.db"), &Clock::system())
            .await
            .unwrap();
        let mut tx = store.write().await.unwrap();
        let writes: i64 = sqlx::query_scalar("PRAGMA temp_store")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let reads: i64 = sqlx::query_scalar("PRAGMA temp_store")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!((writes, reads), (2, 0));
    }

    /// `close` waits for a write in flight, closes the pool (the last
    /// connection out checkpoints and removes the WAL), and later writes
    /// fail plainly instead of reopening.
    #[tokio::test]
    async fn close_checkpoints_and_refuses_later_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let store = Store::open(&path, &Clock::system()).await.unwrap();
        let mut tx = store.write().await.unwrap();
        sqlx::query("CREATE TABLE probe (x)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(dir.path().join("m.db-wal").exists());
        store.close().await;
        assert!(!dir.path().join("m.db-wal").exists());
        let err = store.write().await.err().expect("a write after close");
        assert!(matches!(err, StoreError::Closed), "{err}");
    }
}
