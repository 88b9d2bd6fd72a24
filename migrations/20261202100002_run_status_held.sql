-- sync_runs.status gains 'held' (issue 9): a run stopped by a safety
-- threshold before it wrote anything, waiting for `approve` (push) or
-- `sync --full --allow-removals` (pull); `error` says why.
--
-- SQLite cannot alter a CHECK constraint, so the table is rebuilt under its
-- own name. sqlx runs a migration in a transaction, where foreign_keys
-- cannot be switched off; deferring them instead lets the drop orphan the
-- rows of user_changes, pushes and push_failures for a moment, and
-- re-inserting the same ids adopts them again before the commit checks.
-- Rows are never deleted from sync_runs, so the AUTOINCREMENT sequence
-- (max id) carries over with them.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE sync_runs_copy AS SELECT * FROM sync_runs;
DROP TABLE sync_runs;
CREATE TABLE sync_runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT NOT NULL CHECK (kind IN ('full', 'incremental', 'push')),
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    status        TEXT NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'stopped', 'held')),
    requests      INTEGER NOT NULL DEFAULT 0,
    users_seen    INTEGER NOT NULL DEFAULT 0,
    users_changed INTEGER NOT NULL DEFAULT 0,
    error         TEXT,
    owner         TEXT,                 -- the owner lease of the process that ran it
    owner_pid     INTEGER,
    owner_host    TEXT
);
INSERT INTO sync_runs (id, kind, started_at, finished_at, status, requests, users_seen,
                       users_changed, error, owner, owner_pid, owner_host)
    SELECT id, kind, started_at, finished_at, status, requests, users_seen,
           users_changed, error, owner, owner_pid, owner_host
    FROM sync_runs_copy ORDER BY id;
DROP TABLE sync_runs_copy;
CREATE INDEX sync_runs_kind ON sync_runs (kind, started_at);
CREATE INDEX sync_runs_running ON sync_runs (status, owner);
