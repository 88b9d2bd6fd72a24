-- Undo (issue 12, point 7): an undo is a push run linked to the push run
-- it undoes. NULL for every other run.
ALTER TABLE sync_runs ADD COLUMN undoes_run INTEGER REFERENCES sync_runs(id);
