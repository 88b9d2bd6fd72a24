-- `users` becomes a view over two tables, with the same columns in the same
-- order, so every query written against it keeps working:
--
-- * `user_rows`: what Cliq says about a user (the flattened columns and
--   raw_json, first_seen_at, updated_at). Rewritten only when that changes.
-- * `user_state`: the mirror's bookkeeping per user (content_hash,
--   last_seen_at, removed_at). Narrow, and touched by every listing.
--
-- Why: every full pull sees every user, and bumping last_seen_at inside a
-- ~1.6 KB row rewrote the whole table (160 MB of WAL for 100,000 users) on
-- every pull even when nothing had changed. Now a pull of an unchanged org
-- rewrites about 40 bytes per user.

ALTER TABLE users RENAME TO user_rows;   -- its indexes follow it

CREATE TABLE user_state (
    id           TEXT PRIMARY KEY NOT NULL,   -- user_rows.id
    content_hash TEXT NOT NULL,               -- of raw_json
    last_seen_at TEXT NOT NULL,               -- start of the last listing that saw the user
    removed_at   TEXT                         -- set only by a complete full listing
) WITHOUT ROWID;

INSERT INTO user_state (id, content_hash, last_seen_at, removed_at)
    SELECT id, content_hash, last_seen_at, removed_at FROM user_rows;

ALTER TABLE user_rows DROP COLUMN content_hash;
ALTER TABLE user_rows DROP COLUMN last_seen_at;
ALTER TABLE user_rows DROP COLUMN removed_at;

-- LEFT JOIN on user_state's primary key: a query that uses no user_state
-- column does not read user_state at all. Every user_rows row has its
-- user_state row (both are written in one transaction).
CREATE VIEW users AS
SELECT r.id, r.email_id, r.first_name, r.last_name, r.display_name, r.full_name,
       r.status, r.employee_id, r.mobile, r.phone, r.extension, r.work_location,
       r.timezone, r.language, r.country, r.department_id, r.department_name,
       r.designation_id, r.designation_name, r.reporting_to_id, r.reporting_to_name,
       r.raw_json, s.content_hash, r.first_seen_at, s.last_seen_at, r.updated_at,
       s.removed_at
FROM user_rows r LEFT JOIN user_state s ON s.id = r.id;
