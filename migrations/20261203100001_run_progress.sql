-- Progress of a run while it runs (issue 11): written every few seconds by
-- the run's process, so `status`, `/metrics` and anyone reading the mirror
-- see how far a long pull or push has got and when it should end.
-- Only columns are added: sync_runs is a public table.
ALTER TABLE sync_runs ADD COLUMN pages INTEGER NOT NULL DEFAULT 0;
-- The estimate of the total: present users (full pull) or planned users (push).
ALTER TABLE sync_runs ADD COLUMN expected_users INTEGER;
-- Listing pages a full pull expects (present users / page size).
ALTER TABLE sync_runs ADD COLUMN expected_pages INTEGER;
-- Estimated end (RFC 3339 UTC) from the quota floor; NULL once the run ended.
ALTER TABLE sync_runs ADD COLUMN eta_at TEXT;
-- When the progress columns were last written.
ALTER TABLE sync_runs ADD COLUMN progress_at TEXT;
