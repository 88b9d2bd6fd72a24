//! Writing a page of listed users: what the mirror has for them, what
//! changes, and the multi-row statements that write it in one transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{ChangeSource, FlatUser, PageOutcome, UserKey};
use crate::clock::to_db;
use crate::mirror::column::{Column, Values};
use crate::mirror::store::{Store, StoreError, WriteTx};

/// The columns of a `user_rows` insert: the id, the 20 [`Column`]s,
/// raw_json and the time twice (first seen, updated).
const ROW_INSERT: &str = "INTO user_rows (id, email_id, first_name, last_name,
    display_name, full_name, status, employee_id, mobile, phone, extension, work_location,
    timezone, language, country, department_id, department_name, designation_id,
    designation_name, reporting_to_id, reporting_to_name, raw_json, first_seen_at, updated_at) ";

/// A known user's new content (`first_seen_at` is kept). New users get a
/// plain insert instead, which needs no statement journal: the first pull
/// of a large org is almost all of these.
const ROW_UPSERT: &str = "
 ON CONFLICT (id) DO UPDATE SET
    email_id = excluded.email_id, first_name = excluded.first_name, last_name = excluded.last_name,
    display_name = excluded.display_name, full_name = excluded.full_name, status = excluded.status,
    employee_id = excluded.employee_id, mobile = excluded.mobile, phone = excluded.phone,
    extension = excluded.extension, work_location = excluded.work_location,
    timezone = excluded.timezone, language = excluded.language, country = excluded.country,
    department_id = excluded.department_id, department_name = excluded.department_name,
    designation_id = excluded.designation_id, designation_name = excluded.designation_name,
    reporting_to_id = excluded.reporting_to_id, reporting_to_name = excluded.reporting_to_name,
    raw_json = excluded.raw_json, updated_at = excluded.updated_at";

/// A user seen with this content: present.
const STATE_INSERT: &str = "INTO user_state (id, content_hash, last_seen_at, removed_at) ";
const STATE_UPSERT: &str = "
 ON CONFLICT (id) DO UPDATE SET
    content_hash = excluded.content_hash, last_seen_at = excluded.last_seen_at, removed_at = NULL";

const CHANGE_INSERT: &str =
    "INSERT INTO user_changes (user_id, field, old_value, new_value, observed_at, run_id, source) ";

/// How new users are inserted: `OR FAIL`, so that SQLite needs no
/// statement journal for them. A statement that may abort halfway must
/// first copy every page it changes that existed before it (for
/// `users_email`, about one per user) so that it can undo just itself;
/// `FAIL` stops at the failing row instead, which is the same to us: any
/// error fails the whole transaction, and it rolls back. Known users keep
/// the upsert (and its journal), which only changed users need.
const NEW_ROWS: &str = "INSERT OR FAIL ";
const KNOWN_ROWS: &str = "INSERT ";

/// Rows per multi-row `VALUES` statement: 24 parameters a user row keeps
/// a statement of 500 at 12,000, well under SQLite's 32,766.
const ROWS_PER_STATEMENT: usize = 500;

/// A user as the mirror (or an earlier copy in the same page) has it.
#[derive(Clone, Copy)]
struct Known<'a> {
    hash: &'a str,
    removed: bool,
    values: Option<&'a Values>,
}

/// What the mirror has for a page's users: id → (content hash, removed,
/// the columns if some copy in the page differs from it).
type Before = HashMap<String, (String, bool, Option<Values>)>;

/// One `user_changes` row: (user id, field, old, new).
type Change<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>);

/// What a page does to the mirror, worked out in memory so that it is
/// written in a handful of statements.
#[derive(Default)]
struct PageWrites<'a> {
    /// Unchanged users: `last_seen_at` only.
    seen: Vec<&'a str>,
    /// The last copy of each user to write, new to the mirror or not.
    new: Vec<&'a FlatUser>,
    known: Vec<&'a FlatUser>,
    changes: Vec<Change<'a>>,
}

/// Apply `users` in order against what the mirror had (`before`), so
/// that one listed twice ends as the later copy and its changes are
/// recorded against the earlier one, as if written one by one.
fn page_writes<'a>(
    users: &'a [FlatUser],
    before: &'a Before,
    out: &mut PageOutcome,
) -> PageWrites<'a> {
    let mut w = PageWrites::default();
    let mut now: HashMap<&'a str, Known<'a>> = HashMap::with_capacity(users.len());
    let mut last: HashMap<&'a str, usize> = HashMap::with_capacity(users.len());
    for (i, u) in users.iter().enumerate() {
        let prev = now.get(u.id.as_str()).copied().or_else(|| {
            before.get(&u.id).map(|(hash, removed, values)| Known {
                hash,
                removed: *removed,
                values: values.as_ref(),
            })
        });
        match prev {
            Some(p) if !p.removed && p.hash == u.content_hash => {
                w.seen.push(&u.id);
                continue;
            }
            None => {
                // Its `added` row is written with the other new users' (see
                // `write_new`), before any change a later copy records.
                out.added += 1;
                out.touched_ids.push(u.id.clone());
            }
            Some(p) => {
                if record_changes(&mut w.changes, u, p) {
                    out.changed += 1;
                    out.touched_ids.push(u.id.clone());
                }
            }
        }
        let hash = &u.content_hash;
        let values = Some(&u.values);
        now.insert(
            &u.id,
            Known {
                hash,
                removed: false,
                values,
            },
        );
        last.insert(&u.id, i);
    }
    let mut order: Vec<usize> = last.into_values().collect();
    order.sort_unstable();
    for u in order.into_iter().map(|i| &users[i]) {
        if before.contains_key(&u.id) {
            w.known.push(u);
        } else {
            w.new.push(u);
        }
    }
    w
}

/// The `user_changes` rows of `u` against `p`, a copy it differs from:
/// `restored` if `p` was removed, then one row per changed column.
/// Whether any was recorded.
fn record_changes<'a>(changes: &mut Vec<Change<'a>>, u: &'a FlatUser, p: Known<'a>) -> bool {
    let n = changes.len();
    if p.removed {
        changes.push((&u.id, "user", Some("removed"), Some("restored")));
    }
    let old = p
        .values
        .expect("columns are read for every user that differs");
    for col in Column::ALL {
        if old[col] != u.values[col] {
            let (o, v) = (old.get(col), u.values.get(col));
            changes.push((&u.id, col.as_str(), o, v));
        }
    }
    changes.len() > n
}

/// The ids of `users` as a JSON array, for `json_each`.
fn json_ids<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    serde_json::to_string(&ids.collect::<Vec<_>>()).expect("strings serialise")
}

/// `[[id, content hash], …]`, for `json_each` (`value ->> 0`,
/// `value ->> 1`).
fn json_id_hashes<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    serde_json::to_string(&pairs.collect::<Vec<_>>()).expect("strings serialise")
}

/// The (id, content hash) pairs of flattened users.
fn id_hashes<'a>(
    users: impl Iterator<Item = &'a FlatUser>,
) -> impl Iterator<Item = (&'a str, &'a str)> {
    users.map(|u| (u.id.as_str(), u.content_hash.as_str()))
}

impl Store {
    /// Write one page of users in one transaction, so a reader never sees
    /// half a page and a crash loses at most the page in flight. (A pull
    /// writes consecutive pages through a [`PageGroup`] instead.)
    ///
    /// Unchanged users (same content hash) only get `last_seen_at` bumped
    /// in the narrow `user_state`; their `user_rows` row is not rewritten.
    /// Changed users get one `user_changes` row per changed column; a new
    /// user gets one row with field `user` and new value `added`, a user
    /// who reappears after removal one with new value `restored`. Users
    /// are applied in order, so one listed twice ends as the later copy.
    pub async fn write_users_page(
        &self,
        users: &[FlatUser],
        run_id: i64,
        source: ChangeSource,
        now: DateTime<Utc>,
    ) -> Result<PageOutcome, StoreError> {
        let mut group = self.begin_pages(run_id, source, false).await?;
        let out = group.write(users, now).await?;
        group.commit().await?;
        Ok(out)
    }

    /// Begin a group of listed pages written in one transaction (group
    /// commit): each [`PageGroup::write`] is what [`Store::write_users_page`]
    /// does for one page, and `queue_teams` also queues its new and changed
    /// users for their team memberships, in the same transaction.
    pub async fn begin_pages(
        &self,
        run_id: i64,
        source: ChangeSource,
        queue_teams: bool,
    ) -> Result<PageGroup, StoreError> {
        Ok(PageGroup {
            tx: self.write().await?,
            run_id,
            source,
            queue_teams,
            try_unchanged: true,
        })
    }
}

/// The fast path of a page the mirror already has, unchanged (every page
/// of a re-pull of a quiet org): one statement bumps `last_seen_at` of the
/// page's users whose content hash the mirror has, present, instead of
/// reading their state out and updating them by id (measured on a re-pull
/// of 100,000 unchanged users: 8% less CPU). Whether that was every user
/// of the page: if not (someone is new, changed, removed or listed twice),
/// the page is written the long way, which sets the same `last_seen_at`
/// again for those (the same value: nothing else changes).
async fn seen_unchanged<'a>(
    tx: &mut WriteTx,
    users: impl Iterator<Item = (&'a str, &'a str)>,
    now_s: &str,
) -> Result<u64, StoreError> {
    let pairs = json_id_hashes(users);
    let done = sqlx::query(
        "UPDATE user_state SET last_seen_at = ?1
         FROM (SELECT value ->> 0 AS id, value ->> 1 AS hash FROM json_each(?2)) AS page
         WHERE user_state.id = page.id AND user_state.content_hash = page.hash
           AND user_state.removed_at IS NULL",
    )
    .bind(now_s)
    .bind(pairs)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// Consecutive pages of a listing in one write transaction (it holds the
/// writer turn). Dropped uncommitted, it rolls back all of them.
pub struct PageGroup {
    tx: WriteTx,
    run_id: i64,
    source: ChangeSource,
    queue_teams: bool,
    /// Whether to try [`seen_unchanged`] first: until a page of the group
    /// had no user the mirror knew unchanged (a first pull's pages never
    /// do, so they pay for one try per group).
    try_unchanged: bool,
}

impl PageGroup {
    /// Write one page (see [`Store::write_users_page`]). A handful of
    /// statements per page, whatever its size (two reads, then multi-row
    /// writes): each statement is a round trip to the connection's worker
    /// thread, so one per user would cost more than the work.
    pub async fn write(
        &mut self,
        users: &[FlatUser],
        now: DateTime<Utc>,
    ) -> Result<PageOutcome, StoreError> {
        let seen = PageOutcome {
            seen: users.len() as u64,
            ..PageOutcome::default()
        };
        if users.is_empty() {
            return Ok(seen);
        }
        if self.try_unchanged {
            let unchanged =
                seen_unchanged(&mut self.tx, id_hashes(users.iter()), &to_db(now)).await?;
            if unchanged == users.len() as u64 {
                return Ok(seen);
            }
            self.try_unchanged = unchanged > 0;
        }
        self.write_changed(users, now).await
    }

    /// A page known by its users' keys alone: written (`last_seen_at`) if
    /// the mirror has every one of them present with that content, which
    /// is all a page of unchanged users needs. `None` if not (someone is
    /// new, changed, removed or listed twice): then its users are to be
    /// read in full and given to [`PageGroup::write_changed`], with the
    /// same `now`.
    pub async fn write_unchanged(
        &mut self,
        keys: &[UserKey],
        now: DateTime<Utc>,
    ) -> Result<Option<PageOutcome>, StoreError> {
        let pairs = keys
            .iter()
            .map(|k| (k.id.as_str(), k.content_hash.as_str()));
        let unchanged = seen_unchanged(&mut self.tx, pairs, &to_db(now)).await?;
        Ok((unchanged == keys.len() as u64).then(|| PageOutcome {
            seen: unchanged,
            ..PageOutcome::default()
        }))
    }

    /// Write one page the long way: what the mirror has for its users,
    /// then its new and changed users and their `user_changes` rows.
    pub async fn write_changed(
        &mut self,
        users: &[FlatUser],
        now: DateTime<Utc>,
    ) -> Result<PageOutcome, StoreError> {
        let mut out = PageOutcome {
            seen: users.len() as u64,
            ..PageOutcome::default()
        };
        let now_s = to_db(now);
        let tx = &mut self.tx;
        let before = read_before(tx, users).await?;
        let w = page_writes(users, &before, &mut out);
        if !w.seen.is_empty() {
            sqlx::query(
                "UPDATE user_state SET last_seen_at = ?1
                 WHERE id IN (SELECT value FROM json_each(?2))",
            )
            .bind(&now_s)
            .bind(json_ids(w.seen.iter().copied()))
            .execute(&mut **tx)
            .await?;
        }
        write_rows(tx, &w.new, "", &now_s).await?;
        write_new(tx, &w.new, &now_s, self.run_id, self.source).await?;
        write_rows(tx, &w.known, ROW_UPSERT, &now_s).await?;
        write_changes(tx, &w.changes, &now_s, self.run_id, self.source).await?;
        if self.queue_teams && !out.touched_ids.is_empty() {
            sqlx::query(
                "INSERT OR IGNORE INTO teams_queue (user_id, queued_at)
                 SELECT value, ?1 FROM json_each(?2)",
            )
            .bind(&now_s)
            .bind(json_ids(out.touched_ids.iter().map(String::as_str)))
            .execute(&mut **tx)
            .await?;
        }
        Ok(out)
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await
    }
}

/// The `user_changes` rows of a page, in multi-row statements.
async fn write_changes(
    tx: &mut WriteTx,
    changes: &[Change<'_>],
    now_s: &str,
    run_id: i64,
    source: ChangeSource,
) -> Result<(), StoreError> {
    for chunk in changes.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(CHANGE_INSERT);
        q.push_values(chunk, |mut b, (id, field, old, new)| {
            b.push_bind(*id)
                .push_bind(*field)
                .push_bind(*old)
                .push_bind(*new);
            b.push_bind(now_s)
                .push_bind(run_id)
                .push_bind(source.as_str());
        });
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// What the mirror has for the users of a page: id → (content hash,
/// removed, the columns if some copy in the page differs from it).
async fn read_before(tx: &mut WriteTx, users: &[FlatUser]) -> Result<Before, StoreError> {
    let rows: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT s.id, s.content_hash, s.removed_at IS NOT NULL
         FROM user_state s WHERE s.id IN (SELECT value FROM json_each(?1))",
    )
    .bind(json_ids(users.iter().map(|u| u.id.as_str())))
    .fetch_all(&mut **tx)
    .await?;
    let mut before: Before = rows
        .into_iter()
        .map(|(id, hash, removed)| (id, (hash, removed, None)))
        .collect();
    let differ = users.iter().filter(|u| {
        before
            .get(&u.id)
            .is_some_and(|(hash, removed, _)| *removed || *hash != u.content_hash)
    });
    let differ = json_ids(differ.map(|u| u.id.as_str()));
    if differ != "[]" {
        let sql = format!(
            "SELECT id, {} FROM user_rows WHERE id IN (SELECT value FROM json_each(?1))",
            Column::sql_list(&Column::ALL)
        );
        let rows = sqlx::query(&sql).bind(differ).fetch_all(&mut **tx).await?;
        for row in rows {
            use sqlx::Row;
            let id: String = row.try_get(0)?;
            let mut values = Values::default();
            for (i, c) in Column::ALL.into_iter().enumerate() {
                values[c] = row.try_get(i + 1)?;
            }
            if let Some(entry) = before.get_mut(&id) {
                entry.2 = Some(values);
            }
        }
    }
    Ok(before)
}

/// What new users get besides their `user_rows` row: their `user_state`
/// row and their `added` change, each one statement over the page's ids
/// (and content hashes) through `json_each`, whatever the page's size:
/// one parameter instead of three (state) and seven (change) per user,
/// each of which sqlx copies and SQLite copies again.
async fn write_new(
    tx: &mut WriteTx,
    users: &[&FlatUser],
    now_s: &str,
    run_id: i64,
    source: ChangeSource,
) -> Result<(), StoreError> {
    if users.is_empty() {
        return Ok(());
    }
    let pairs = json_id_hashes(id_hashes(users.iter().copied()));
    sqlx::query(
        "INSERT OR FAIL INTO user_state (id, content_hash, last_seen_at, removed_at)
         SELECT value ->> 0, value ->> 1, ?1, NULL FROM json_each(?2)",
    )
    .bind(now_s)
    .bind(pairs)
    .execute(&mut **tx)
    .await?;
    sqlx::query(&format!(
        "{CHANGE_INSERT} SELECT value, 'user', NULL, 'added', ?1, ?2, ?3 FROM json_each(?4)"
    ))
    .bind(now_s)
    .bind(run_id)
    .bind(source.as_str())
    .bind(json_ids(users.iter().map(|u| u.id.as_str())))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Insert (`tail` empty) or upsert (`tail` = [`ROW_UPSERT`]) the content
/// of `users` (and the state of known ones), in multi-row statements.
async fn write_rows(
    tx: &mut WriteTx,
    users: &[&FlatUser],
    tail: &str,
    now_s: &str,
) -> Result<(), StoreError> {
    let verb = if tail.is_empty() {
        NEW_ROWS
    } else {
        KNOWN_ROWS
    };
    for chunk in users.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(verb);
        q.push(ROW_INSERT);
        q.push_values(chunk, |mut b, u| {
            b.push_bind(u.id.as_str());
            for v in &u.values {
                b.push_bind(v.as_deref());
            }
            b.push_bind(u.raw_json.as_str())
                .push_bind(now_s)
                .push_bind(now_s);
        });
        q.push(tail).build().execute(&mut **tx).await?;
        if tail.is_empty() {
            continue; // new users' state: `write_new`
        }
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(verb);
        q.push(STATE_INSERT);
        q.push_values(chunk, |mut b, u| {
            b.push_bind(u.id.as_str())
                .push_bind(u.content_hash.as_str());
            b.push_bind(now_s).push("NULL");
        });
        q.push(STATE_UPSERT).build().execute(&mut **tx).await?;
    }
    Ok(())
}
