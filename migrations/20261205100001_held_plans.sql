-- Held plans (issue 12, point 1): a push stopped by a safety threshold
-- under `[push] on_threshold = "hold"` keeps the plan it would have
-- written, so `cliq-sync approve ID` can release exactly that plan.
--
-- `id` is printable and stable: "H" + the held run's id (one held run per
-- plan; the same plan held again touches that run, never a new row).
-- `plan_hash` is the SHA-256 of `plan_json`, which lists only what would be
-- written: {"updates": {zuid: {field: value}}, "adds": {email: {key: value}}}.
-- Approval state: `approved_at` (approve ID found the same plan), then
-- `consumed_by_run` (the push run that used the approval); `superseded_at`
-- (a newer plan was held in its place, or the approval was refused).
CREATE TABLE held_plans (
    id              TEXT PRIMARY KEY,
    run_id          INTEGER NOT NULL UNIQUE REFERENCES sync_runs(id),
    plan_hash       TEXT NOT NULL,
    plan_json       TEXT NOT NULL,
    reason          TEXT NOT NULL,
    changes         INTEGER NOT NULL,
    held_at         TEXT NOT NULL,
    approved_at     TEXT,
    consumed_by_run INTEGER REFERENCES sync_runs(id),
    superseded_at   TEXT
);
CREATE INDEX held_plans_waiting ON held_plans (plan_hash)
    WHERE consumed_by_run IS NULL AND superseded_at IS NULL;
