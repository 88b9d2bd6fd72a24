//! The quota ledger's own file, `<mirror path>.quota`: a small SQLite
//! database (WAL) beside the mirror, holding `request_ledger`, the request
//! starts the quota scheduler counts.
//!
//! Why a file of its own: every request start is a write that must be
//! durable before the request leaves, and SQLite has one writer per file.
//! In the mirror, a start had to wait for the page being written, so a
//! pull fetched at most a page ahead of its writer and every page was a
//! transaction of its own. Here, a start never waits for the mirror's
//! writer, and the mirror's writer can keep several pages in one
//! transaction. Every process on a mirror opens the same ledger file, so
//! the budget is still shared across processes; the endpoint locks stay
//! in the mirror (`endpoint_locks`, part of its public schema), which the
//! ledger's connection attaches as `mirror`, so that a start reads the
//! lock in the statement that takes it (one round trip, not two).
//!
//! Its doors are like the mirror's ([`super::store`]): the test clock's
//! hold and this process's ledger turn, then `BEGIN IMMEDIATE`
//! ([`Ledger::write`]), or a single statement that SQLite makes atomic by
//! itself ([`Ledger::turn`], for taking a start: one round trip to the
//! connection's thread instead of four). Every write runs on the write
//! connection's thread, every read on the read connection's.

use std::path::{Path, PathBuf};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Connection, Sqlite, SqliteConnection, SqlitePool};

use super::door::{enter, shut, turn, Held, Turn, WriteTx};
use super::error::StoreError;
use super::sqlite::{create_private, quiet_statement_logs, BUSY_TIMEOUT};
use crate::clock::Clock;

/// The ledger's schema, applied on every open (idempotent). No
/// AUTOINCREMENT: ids are only an order among equal times.
///
/// `seq` numbers each endpoint's starts 1, 2, 3… in the order they were
/// taken, so that "the N-th most recent start", which decides whether a
/// window has room, is one index lookup (the start numbered N − 1 below
/// the newest) however large N is: counting back N rows by time read
/// every start of the window, up to a millisecond per start once a
/// lifted quota let thousands into one window. A file from before the
/// numbers gets them on open ([`number_starts`]).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS request_ledger (
    id         INTEGER PRIMARY KEY,
    endpoint   TEXT NOT NULL,
    started_at TEXT NOT NULL,
    seq        INTEGER
);
CREATE INDEX IF NOT EXISTS request_ledger_endpoint ON request_ledger (endpoint, started_at);
";

/// The numbers' index, and a trigger that numbers a start written
/// without one (by a binary from before the numbers, still running on the
/// mirror, or by [`Ledger::import_from`]) as the next of its endpoint.
const NUMBERING: &str = "
CREATE UNIQUE INDEX IF NOT EXISTS request_ledger_seq ON request_ledger (endpoint, seq);
CREATE TRIGGER IF NOT EXISTS request_ledger_number AFTER INSERT ON request_ledger
WHEN NEW.seq IS NULL BEGIN
    UPDATE request_ledger
    SET seq = (SELECT coalesce(max(seq), 0) + 1 FROM request_ledger
               WHERE endpoint = NEW.endpoint)
    WHERE id = NEW.id;
END;
";

/// Give the starts of a ledger file from before the numbers theirs (in
/// time order, per endpoint), then [`NUMBERING`]; in one write
/// transaction, so two processes opening the file at once number it once.
async fn number_starts(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let numbered: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pragma_table_info('request_ledger') WHERE name = 'seq'",
    )
    .fetch_one(&mut *tx)
    .await?;
    if numbered == 0 {
        sqlx::raw_sql(
            "ALTER TABLE request_ledger ADD COLUMN seq INTEGER;
             UPDATE request_ledger SET seq = n.seq
             FROM (SELECT id, row_number() OVER (PARTITION BY endpoint
                                                 ORDER BY started_at, id) AS seq
                   FROM request_ledger) AS n
             WHERE n.id = request_ledger.id;",
        )
        .execute(&mut *tx)
        .await?;
    }
    sqlx::raw_sql(NUMBERING).execute(&mut *tx).await?;
    tx.commit().await
}

/// The ledger connections' page cache (KiB, as SQLite's negative
/// `cache_size`): the file holds a few minutes of starts, a few hundred
/// KiB. SQLite's default, 2 MiB for each file a connection has open,
/// let the write connection's heap grow by about 5 MB through a pull of
/// 1M users (10,000 starts), which took the process's peak RSS from
/// 30-31 MB to 33-34 MB.
const LEDGER_CACHE: &str = "-256";

/// The attached mirror's cache in the ledger's write connection: a start
/// reads one row of `endpoint_locks`.
const ATTACHED_MIRROR_CACHE: &str = "-64";

/// `<mirror path>.quota`.
pub fn ledger_path(mirror: &Path) -> PathBuf {
    let mut p = mirror.as_os_str().to_owned();
    p.push(".quota");
    PathBuf::from(p)
}

/// The ledger file of one mirror. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Ledger {
    /// For reads. `None` for a read-only opener of a mirror that has no
    /// ledger file yet (nothing was ever started through it).
    pool: Option<SqlitePool>,
    clock: Clock,
    /// This process's ledger turn, with the write connection (which has
    /// the mirror attached); `None` once closed and for a read-only opener.
    turn: Turn,
}

impl Ledger {
    /// Open (creating if missing, mode 0640 like the mirror) the ledger of
    /// the mirror at `mirror`.
    pub(crate) async fn open(mirror: &Path, clock: &Clock) -> Result<Self, StoreError> {
        let path = ledger_path(mirror);
        create_private(&path).map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?;
        let options = quiet_statement_logs(
            SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(BUSY_TIMEOUT)
                .pragma("synchronous", "NORMAL")
                .pragma("cache_size", LEDGER_CACHE),
        );
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        // The mirror is attached to the write connection as `mirror`, so
        // that a start reads the endpoint's lock (`mirror.endpoint_locks`,
        // the mirror's public schema) in its own statement: one round trip
        // to this connection's thread, not a second one to a mirror
        // connection's.
        let mut conn = SqliteConnection::connect_with(&options)
            .await
            .map_err(open_err)?;
        sqlx::query("ATTACH DATABASE ?1 AS mirror")
            .bind(mirror.to_string_lossy().into_owned())
            .execute(&mut conn)
            .await
            .map_err(open_err)?;
        sqlx::query(&format!(
            "PRAGMA mirror.cache_size = {ATTACHED_MIRROR_CACHE}"
        ))
        .execute(&mut conn)
        .await
        .map_err(open_err)?;
        sqlx::raw_sql(SCHEMA)
            .execute(&mut conn)
            .await
            .map_err(open_err)?;
        number_starts(&mut conn).await.map_err(open_err)?;
        // Reads are few (a full window's wait, `status`): one connection,
        // opened when first needed, and kept (a pool that closes idle
        // connections runs a reaper on tokio's clock, which under a paused
        // test clock keeps the runtime leaping ahead).
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(options);
        Ok(Self {
            pool: Some(pool),
            clock: clock.clone(),
            turn: turn(Some(conn)),
        })
    }

    /// The ledger of a mirror opened read-only: read-only too, and absent
    /// (every count is 0) if the file does not exist or cannot be read.
    pub(crate) async fn open_read_only(mirror: &Path, clock: &Clock) -> Self {
        let options = SqliteConnectOptions::new()
            .filename(ledger_path(mirror))
            .read_only(true)
            .create_if_missing(false)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(quiet_statement_logs(options))
            .await
            .ok();
        Self {
            pool,
            clock: clock.clone(),
            turn: turn(None),
        }
    }

    /// The door to every ledger write (see the module doc).
    pub(crate) async fn write(&self) -> Result<WriteTx, StoreError> {
        WriteTx::begin(&self.clock, &self.turn).await
    }

    /// The door to a write of one statement (autocommit): the clock's hold
    /// and this process's ledger turn, with the connection to run it on.
    /// SQLite makes the statement atomic by itself (another process's
    /// transaction is waited for by the busy handler), without the
    /// `BEGIN` and `COMMIT` round trips to the connection's thread.
    pub(crate) async fn turn(&self) -> Result<Held, StoreError> {
        enter(&self.clock, &self.turn).await
    }

    /// The pool for a read, with the clock held by the caller; `None`
    /// when there is no ledger to read.
    pub(crate) fn pool(&self) -> Option<&SqlitePool> {
        self.pool.as_ref()
    }

    /// Copy the starts a mirror's own `request_ledger` still holds (a
    /// mirror last opened by a version that kept the ledger there) into
    /// this file, so an upgrade does not forget the current windows. The
    /// table itself is dropped by a migration right after.
    pub(crate) async fn import_from(
        &self,
        mirror: &mut SqliteConnection,
    ) -> Result<(), StoreError> {
        let has_table: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'request_ledger'",
        )
        .fetch_optional(&mut *mirror)
        .await?;
        if has_table.is_none() {
            return Ok(());
        }
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT endpoint, started_at FROM request_ledger ORDER BY id")
                .fetch_all(&mut *mirror)
                .await?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        for chunk in rows.chunks(5_000) {
            let mut q = sqlx::QueryBuilder::<Sqlite>::new(
                "INSERT INTO request_ledger (endpoint, started_at) ",
            );
            q.push_values(chunk, |mut b, (endpoint, at)| {
                b.push_bind(endpoint).push_bind(at);
            });
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Close the ledger's connection; later writes fail with
    /// [`StoreError::Closed`].
    pub(crate) async fn close(&self) {
        let _hold = self.clock.hold();
        let conn = shut(&self.turn).await;
        if let Some(pool) = &self.pool {
            pool.close().await;
        }
        // Closed before the mirror's own connections, and awaited: it has
        // the mirror attached, and the mirror's last connection out is the
        // one that checkpoints and removes the mirror's WAL.
        if let Some(conn) = conn {
            if let Err(e) = conn.close().await {
                tracing::warn!(error = %e, "closing the ledger's connection failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::mirror::quotas::LedgerAnswer;
    use crate::mirror::Store;

    fn window() -> chrono::Duration {
        chrono::Duration::seconds(60)
    }

    /// A request start while this process holds the mirror's write lock
    /// (a pull in the middle of a group of pages) does not wait for it:
    /// with the ledger in the mirror it waited for the writer turn, so a
    /// pull could fetch at most a page ahead of its writer.
    #[tokio::test]
    async fn a_start_does_not_wait_for_the_mirrors_writer() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::system();
        let store = Store::open(&dir.path().join("m.db"), &clock).await.unwrap();
        let page_write = store.write().await.unwrap();
        let start = tokio::time::timeout(
            Duration::from_secs(10),
            store.ledger_try_start("list_users", 30, window(), &clock),
        )
        .await
        .expect("the start waited for the mirror's writer")
        .unwrap();
        assert!(matches!(start, LedgerAnswer::Started(_)), "{start:?}");
        page_write.commit().await.unwrap();
        assert!(ledger_path(&dir.path().join("m.db")).exists());
        store.close().await;
    }

    /// A start asked for while the endpoint is locked (in the mirror, by
    /// any opener) is refused with the lock's end, and leaves no start
    /// behind: the start statement reads the lock itself. A lock that has
    /// ended refuses nothing.
    #[tokio::test]
    async fn a_locked_endpoint_gets_no_start() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::system();
        let path = dir.path().join("m.db");
        let store = Store::open(&path, &clock).await.unwrap();
        let other_process = Store::open(&path, &clock).await.unwrap();
        let ended = crate::mirror::quotas::truncate_ms(clock.now() - chrono::Duration::seconds(1));
        other_process
            .lock_endpoint("get_user", ended, "test", ended)
            .await
            .unwrap();
        let until = crate::mirror::quotas::truncate_ms(clock.now() + chrono::Duration::minutes(10));
        other_process
            .lock_endpoint("list_users", until, "test", clock.now())
            .await
            .unwrap();
        let answer = store
            .ledger_try_start("list_users", 30, window(), &clock)
            .await
            .unwrap();
        assert_eq!(answer, LedgerAnswer::Locked(until));
        other_process.close().await;
        let since = clock.now() - window();
        assert_eq!(
            store
                .ledger_starts_since("list_users", since)
                .await
                .unwrap(),
            0
        );
        // Another endpoint's lock has ended.
        let other = store
            .ledger_try_start("get_user", 30, window(), &clock)
            .await
            .unwrap();
        assert!(matches!(other, LedgerAnswer::Started(_)), "{other:?}");
        store.close().await;
    }

    /// Two openers of one mirror (two processes, as far as state goes)
    /// draw from one budget through the ledger file; a read-only opener
    /// counts the same starts.
    #[tokio::test]
    async fn openers_of_one_mirror_share_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let clock = Clock::system();
        let (a, b) = (
            Store::open(&path, &clock).await.unwrap(),
            Store::open(&path, &clock).await.unwrap(),
        );
        for store in [&a, &b] {
            let answer = store
                .ledger_try_start("list_users", 2, window(), &clock)
                .await
                .unwrap();
            assert!(matches!(answer, LedgerAnswer::Started(_)), "{answer:?}");
        }
        let third = a
            .ledger_try_start("list_users", 2, window(), &clock)
            .await
            .unwrap();
        assert!(matches!(third, LedgerAnswer::Full(_)), "{third:?}");
        let since = clock.now() - window();
        let (reader, _) = Store::open_read_only(&path, &clock).await.unwrap();
        for store in [&a, &b, &reader] {
            assert_eq!(
                store
                    .ledger_starts_since("list_users", since)
                    .await
                    .unwrap(),
                2
            );
        }
        for store in [a, b, reader] {
            store.close().await;
        }
    }

    /// The ledger's write connection keeps small page caches, for its own
    /// file and for the attached mirror (see [`LEDGER_CACHE`]); so does its
    /// read connection.
    #[tokio::test]
    async fn the_ledgers_connections_keep_small_caches() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.db"), &Clock::system())
            .await
            .unwrap();
        let mut conn = store.ledger.turn().await.unwrap();
        for (schema, want) in [("main", LEDGER_CACHE), ("mirror", ATTACHED_MIRROR_CACHE)] {
            let size: i64 = sqlx::query_scalar(&format!("PRAGMA {schema}.cache_size"))
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(size.to_string(), want, "{schema}");
        }
        drop(conn);
        let read: i64 = sqlx::query_scalar("PRAGMA cache_size")
            .fetch_one(store.ledger.pool().unwrap())
            .await
            .unwrap();
        assert_eq!(read.to_string(), LEDGER_CACHE);
        store.close().await;
    }

    /// Each endpoint's starts, as (number, time), in number order.
    async fn numbered(store: &Store, endpoint: &str) -> Vec<(i64, String)> {
        sqlx::query_as("SELECT seq, started_at FROM request_ledger WHERE endpoint = ? ORDER BY seq")
            .bind(endpoint)
            .fetch_all(store.ledger.pool().unwrap())
            .await
            .unwrap()
    }

    /// A ledger file written before starts were numbered: on open, each
    /// endpoint's starts are numbered in time order, and the window still
    /// counts every one of them.
    #[tokio::test]
    async fn an_older_ledger_files_starts_are_numbered_in_time_order() {
        use sqlx::Connection;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let clock = Clock::system();
        let ago = |s| crate::clock::to_db(clock.now() - chrono::Duration::seconds(s));
        let (three, two, one) = (ago(3), ago(2), ago(1));
        let options = SqliteConnectOptions::new()
            .filename(ledger_path(&path))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let mut old = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        sqlx::raw_sql(&format!(
            "CREATE TABLE request_ledger (id INTEGER PRIMARY KEY,
                endpoint TEXT NOT NULL, started_at TEXT NOT NULL);
             CREATE INDEX request_ledger_endpoint ON request_ledger (endpoint, started_at);
             INSERT INTO request_ledger (endpoint, started_at) VALUES
                ('list_users', '{two}'), ('get_user', '{two}'),
                ('list_users', '{three}'), ('list_users', '{one}');"
        ))
        .execute(&mut old)
        .await
        .unwrap();
        old.close().await.unwrap();

        let store = Store::open(&path, &clock).await.unwrap();
        assert_eq!(
            numbered(&store, "list_users").await,
            vec![(1, three), (2, two.clone()), (3, one)]
        );
        assert_eq!(numbered(&store, "get_user").await, vec![(1, two)]);
        let full = store
            .ledger_try_start("list_users", 3, window(), &clock)
            .await
            .unwrap();
        assert!(matches!(full, LedgerAnswer::Full(_)), "{full:?}");
        let fourth = store
            .ledger_try_start("list_users", 4, window(), &clock)
            .await
            .unwrap();
        assert!(matches!(fourth, LedgerAnswer::Started(_)), "{fourth:?}");
        assert_eq!(numbered(&store, "list_users").await.last().unwrap().0, 4);
        store.close().await;
    }

    /// A start written without a number (by an older binary still running
    /// on the mirror) is numbered as it is written, and counted; a start
    /// is never recorded earlier than the newest one (so number order is
    /// time order), and a refund gives back the newest.
    #[tokio::test]
    async fn a_start_written_without_a_number_is_numbered_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let clock = Clock::system();
        let store = Store::open(&path, &clock).await.unwrap();
        let first = store
            .ledger_try_start("list_users", 10, window(), &clock)
            .await
            .unwrap();
        assert!(matches!(first, LedgerAnswer::Started(_)), "{first:?}");
        // Another process read its clock a little later, and wrote first.
        let later = crate::mirror::quotas::truncate_ms(clock.now() + chrono::Duration::seconds(1));
        sqlx::query("INSERT INTO request_ledger (endpoint, started_at) VALUES ('list_users', ?)")
            .bind(crate::clock::to_db(later))
            .execute(store.ledger.pool().unwrap())
            .await
            .unwrap();
        assert_eq!(numbered(&store, "list_users").await[1].0, 2);
        let full = store
            .ledger_try_start("list_users", 2, window(), &clock)
            .await
            .unwrap();
        assert!(matches!(full, LedgerAnswer::Full(_)), "{full:?}");
        let third = store
            .ledger_try_start("list_users", 3, window(), &clock)
            .await
            .unwrap();
        assert!(
            matches!(third, LedgerAnswer::Started(start) if start.at == later),
            "{third:?}"
        );
        assert_eq!(numbered(&store, "list_users").await[2].0, 3);
        store.ledger_refund("list_users").await.unwrap();
        let left: Vec<i64> = numbered(&store, "list_users")
            .await
            .iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(left, [1, 2]);
        store.close().await;
    }

    /// A mirror last opened by a version that kept the ledger in the
    /// mirror: its starts move to the ledger file (the current windows are
    /// not forgotten) and the mirror's table is dropped.
    #[tokio::test]
    async fn an_older_mirrors_ledger_moves_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let clock = Clock::system();
        let store = Store::open(&path, &clock).await.unwrap();
        let now = crate::clock::to_db(clock.now());
        let mut tx = store.write().await.unwrap();
        sqlx::raw_sql(&format!(
            "CREATE TABLE request_ledger (id INTEGER PRIMARY KEY AUTOINCREMENT,
                endpoint TEXT NOT NULL, started_at TEXT NOT NULL);
             INSERT INTO request_ledger (endpoint, started_at)
                VALUES ('oauth_token', '{now}'), ('oauth_token', '{now}');
             DELETE FROM _sqlx_migrations WHERE version = 20261207000001;"
        ))
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        store.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let mut file = ledger_path(&path).into_os_string();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }

        let store = Store::open(&path, &clock).await.unwrap();
        let since = clock.now() - chrono::Duration::minutes(10);
        assert_eq!(
            store
                .ledger_starts_since("oauth_token", since)
                .await
                .unwrap(),
            2
        );
        let left: Option<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE name = 'request_ledger'")
                .fetch_optional(store.pool())
                .await
                .unwrap();
        assert_eq!(left, None);
        store.close().await;
    }
}
