-- Pushes (issue 4). The latest permanent failure per person and action: a
-- change that Cliq refused for good is not sent again until the HR values
-- it asked for change (`desired_hash` is over the fields that were sent).
CREATE TABLE push_failures (
    email_id     TEXT NOT NULL COLLATE NOCASE,
    action       TEXT NOT NULL CHECK (action IN ('update', 'add')),
    user_id      TEXT,
    desired_hash TEXT NOT NULL,
    fields_json  TEXT NOT NULL,
    error_code   TEXT,
    message      TEXT,
    run_id       INTEGER REFERENCES sync_runs (id),
    at           TEXT NOT NULL,
    PRIMARY KEY (email_id, action)
);

-- Finding attempts of unknown outcome (`planned` rows of ended runs) and
-- recent adds quickly.
CREATE INDEX pushes_status ON pushes (status, action);
