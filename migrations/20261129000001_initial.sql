-- cliq-sync mirror schema. The tables and columns named in the product
-- contract (users, user_changes, sync_runs, pushes, teams, user_teams,
-- layouts, endpoint_locks) are a public interface: extend, never rename.
-- Timestamps are RFC 3339 UTC text, millisecond precision, 'Z' suffix
-- (fixed width, so text comparison is time order).

CREATE TABLE users (
    id                TEXT PRIMARY KEY NOT NULL,   -- the zuid
    email_id          TEXT,
    first_name        TEXT,
    last_name         TEXT,
    display_name      TEXT,
    full_name         TEXT,
    status            TEXT,
    employee_id       TEXT,
    mobile            TEXT,
    phone             TEXT,
    extension         TEXT,
    work_location     TEXT,
    timezone          TEXT,
    language          TEXT,
    country           TEXT,
    department_id     TEXT,
    department_name   TEXT,
    designation_id    TEXT,
    designation_name  TEXT,
    reporting_to_id   TEXT,
    reporting_to_name TEXT,
    raw_json          TEXT NOT NULL,               -- the user object as last received
    content_hash      TEXT NOT NULL,               -- of raw_json: unchanged users are not rewritten
    first_seen_at     TEXT NOT NULL,
    last_seen_at      TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    removed_at        TEXT                         -- set only by a complete full listing
);
CREATE INDEX users_email ON users (email_id COLLATE NOCASE);
CREATE INDEX users_department ON users (department_id);
CREATE INDEX users_status ON users (status);

CREATE TABLE sync_runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT NOT NULL CHECK (kind IN ('full', 'incremental', 'push')),
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    status        TEXT NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'stopped')),
    requests      INTEGER NOT NULL DEFAULT 0,
    users_seen    INTEGER NOT NULL DEFAULT 0,
    users_changed INTEGER NOT NULL DEFAULT 0,
    error         TEXT
);
CREATE INDEX sync_runs_kind ON sync_runs (kind, started_at);

CREATE TABLE user_changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     TEXT NOT NULL,
    field       TEXT NOT NULL,
    old_value   TEXT,
    new_value   TEXT,
    observed_at TEXT NOT NULL,
    run_id      INTEGER REFERENCES sync_runs (id),
    source      TEXT NOT NULL CHECK (source IN ('full', 'incremental', 'push'))
);
CREATE INDEX user_changes_user ON user_changes (user_id, observed_at);
CREATE INDEX user_changes_observed ON user_changes (observed_at);

CREATE TABLE pushes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      INTEGER REFERENCES sync_runs (id),
    user_id     TEXT,
    email_id    TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('update', 'add')),
    fields_json TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('applied', 'failed', 'planned', 'skipped')),
    error_code  TEXT,
    at          TEXT NOT NULL
);
CREATE INDEX pushes_email ON pushes (email_id COLLATE NOCASE, at);

CREATE TABLE teams (
    team_id           TEXT PRIMARY KEY NOT NULL,
    name              TEXT,
    organization_id   TEXT,
    description       TEXT,
    is_active         INTEGER,
    participant_count INTEGER,
    creation_time     TEXT,
    raw_json          TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);

CREATE TABLE user_teams (
    user_id      TEXT NOT NULL,
    team_id      TEXT NOT NULL,
    is_moderator INTEGER,
    joined       INTEGER,
    fetched_at   TEXT NOT NULL,
    PRIMARY KEY (user_id, team_id)
);

CREATE TABLE layouts (
    unique_name TEXT PRIMARY KEY NOT NULL,
    raw_json    TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- Persisted so that a restart (or another process on the same mirror)
-- never calls a locked endpoint.
CREATE TABLE endpoint_locks (
    endpoint     TEXT PRIMARY KEY NOT NULL,
    locked_until TEXT NOT NULL,
    reason       TEXT NOT NULL,
    locked_at    TEXT NOT NULL
);

-- Recent request starts per endpoint: the quota belongs to the Cliq user, not
-- to the process, so every process using this mirror counts the same ledger.
CREATE TABLE request_ledger (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint   TEXT NOT NULL,
    started_at TEXT NOT NULL
);
CREATE INDEX request_ledger_endpoint ON request_ledger (endpoint, started_at);

-- Small key/value state: watermarks, cursors of unfinished work.
CREATE TABLE sync_state (
    key        TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
