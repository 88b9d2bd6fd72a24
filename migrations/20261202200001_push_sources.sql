-- One row per push run that passed the safety checks: the size of the HR
-- source it was checked with. The source-drop baseline is the largest size
-- of the last 7 days since the last approved (forced) one, so a slow shrink
-- cannot walk the baseline down push by push.
CREATE TABLE push_sources (
    id INTEGER PRIMARY KEY,
    run_id INTEGER,
    at TEXT NOT NULL,
    records INTEGER NOT NULL,
    -- 1: the push was forced past the thresholds (an operator approved this size).
    approved INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX push_sources_at ON push_sources (at);
