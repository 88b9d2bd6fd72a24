//! What every SQLite file of a mirror shares (the mirror itself and its
//! quota ledger, [`super::ledger`]): the busy timeout, quiet statement
//! logs, and creation with private permissions.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;

/// SQLite's busy handler waits in real time on the connection's thread;
/// long enough for another process's transaction.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Statements at trace, slow ones at debug: sqlx's default WARN past 1 s
/// fires on any loaded host for no fault (the busy timeout is the real limit).
pub(crate) fn quiet_statement_logs(options: SqliteConnectOptions) -> SqliteConnectOptions {
    use sqlx::ConnectOptions;
    options
        .log_statements(log::LevelFilter::Trace)
        .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1))
}

/// Create `path` empty with mode 0640 unless it exists: SQLite gives its
/// `-wal` and `-shm` files the main file's permissions, so an ops group can
/// read the mirror and nobody else can.
#[cfg(unix)]
pub(crate) fn create_private(path: &Path) -> std::io::Result<()> {
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
pub(crate) fn create_private(_path: &Path) -> std::io::Result<()> {
    Ok(())
}
