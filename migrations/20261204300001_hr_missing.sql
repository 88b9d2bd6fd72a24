-- Leavers (issue 12): people in Cliq whom the HR source no longer lists.
-- The Users API cannot deactivate anyone, so cliq-sync only reports them;
-- this table remembers since when, so `plan`, `status` and `/metrics` can
-- say how long each one has been missing. Written by every plan (and push):
-- a row is added the first time a plan sees the user missing from HR and
-- deleted when a plan sees them back in HR or no longer in Cliq.
CREATE TABLE hr_missing (
    user_id TEXT PRIMARY KEY NOT NULL,   -- users.id
    email   TEXT,                        -- users.email_id when first missed
    since   TEXT NOT NULL                -- RFC 3339 UTC: the first plan that missed them
) WITHOUT ROWID;
