-- Users whose team memberships are to be fetched. Teams cost one request per
-- user at 20/min, so the work is queued and spread over runs.
CREATE TABLE teams_queue (
    user_id   TEXT PRIMARY KEY NOT NULL,
    queued_at TEXT NOT NULL
);
