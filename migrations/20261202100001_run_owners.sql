-- Who ran a run (issue 9): the owner lease of the process that started it
-- (`<mirror>.owners/<owner>.lock`, flocked while that process lives), and
-- its pid and host for people. Only a run whose owner is provably gone is
-- marked failed by another process. Rows from before this migration have
-- no owner and count as gone.
ALTER TABLE sync_runs ADD COLUMN owner TEXT;
ALTER TABLE sync_runs ADD COLUMN owner_pid INTEGER;
ALTER TABLE sync_runs ADD COLUMN owner_host TEXT;
CREATE INDEX sync_runs_running ON sync_runs (status, owner);
