//! The mirror's error type, one driver's errors (sqlx) with the path they
//! concern.

use std::path::PathBuf;

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
    #[error(transparent)]
    Lease(#[from] super::lease::LeaseError),
    /// The mirror has a migration this binary does not know: it was
    /// made (or last opened) by a newer cliq-sync. Nothing was changed.
    #[error(
        "the mirror at {path} was made by a newer cliq-sync (it has migration {version}, \
         which this version does not know); upgrade cliq-sync to use it"
    )]
    NewerMirror { path: PathBuf, version: i64 },
    #[error("the mirror is closed")]
    Closed,
    #[error("mirror database error: {0}")]
    Db(#[from] sqlx::Error),
}
