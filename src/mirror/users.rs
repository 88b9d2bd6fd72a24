//! Users in the mirror: flattening Cliq's user objects into the public
//! columns, and writing a page of them with change history.
//!
//! A user is stored in two tables, read together through the `users` view:
//! `user_rows` (the content, rewritten only when it changes) and
//! `user_state` (content hash, last seen, removed; touched by every
//! listing). See `migrations/20261201000001_user_state.sql`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::column::{Column, Values};
use super::store::{Store, StoreError, WriteTx};
use crate::clock::to_db;

/// One user as the mirror stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlatUser {
    pub id: String,
    /// A value for every [`Column`]; a change to any of them is a
    /// `user_changes` row.
    pub values: Values,
    pub raw_json: String,
    pub content_hash: String,
}

impl FlatUser {
    /// Flatten a user object as received (any of the documented variants:
    /// `id`, `user_id` or `zuid`; nested `department`, `designation`,
    /// `reportingto` objects). `None` if it has no id at all.
    pub fn from_raw(raw: &Value) -> Option<FlatUser> {
        Self::from_map(raw.as_object()?)
    }

    /// As [`FlatUser::from_raw`], from the object's map. The map is written
    /// as text and read by [`FlatUser::from_raw_json`], so both paths share
    /// one mapping; serde_json's Map is ordered by key, so this text is
    /// canonical and its hash changes only when the content does.
    pub fn from_map(obj: &serde_json::Map<String, Value>) -> Option<FlatUser> {
        let raw_json = serde_json::to_string(obj).ok()?;
        Self::from_raw_json(&raw_json).ok().flatten()
    }

    /// Flatten a user object from its JSON text as received (any of the
    /// documented variants: `id`, `user_id` or `zuid`; nested `department`,
    /// `designation`, `reportingto` objects or flat ids; a JSON scalar as
    /// text, blank → `None`), without building a `Value`: strings are
    /// borrowed from the text where they have no escapes. `None` if it has
    /// no id at all. `raw_json` is that text and the content
    /// hash is of it, so it changes only when the server's bytes do (a
    /// server that reorders keys would cost a rewrite of an unchanged row,
    /// never a `user_changes` row: those compare the columns).
    pub fn from_raw_json(raw: &str) -> Result<Option<FlatUser>, serde_json::Error> {
        let w: wire::UserWire = serde_json::from_str(raw)?;
        let t = |v: Option<wire::Scalar>| v.and_then(wire::Scalar::text);
        let named = |n: &Option<wire::Named>, id: bool| {
            n.as_ref()
                .and_then(|n| if id { n.id.clone() } else { n.name.clone() })
                .and_then(wire::Scalar::text)
        };
        let Some(id) = t(w.id).or_else(|| t(w.user_id)).or_else(|| t(w.zuid)) else {
            return Ok(None);
        };
        let values = Values::from([
            t(w.email_id).map(|e| e.to_lowercase()),
            t(w.first_name),
            t(w.last_name),
            t(w.display_name),
            t(w.full_name),
            t(w.status),
            t(w.employee_id),
            t(w.mobile),
            t(w.phone),
            t(w.extension),
            t(w.work_location),
            t(w.timezone),
            t(w.language),
            t(w.country),
            named(&w.department, true).or_else(|| t(w.department_id)),
            named(&w.department, false),
            named(&w.designation, true).or_else(|| t(w.designation_id)),
            named(&w.designation, false),
            named(&w.reportingto, true)
                .or_else(|| named(&w.reporting_to, true))
                .or_else(|| t(w.reporting_to_zuid)),
            named(&w.reportingto, false).or_else(|| named(&w.reporting_to, false)),
        ]);
        Ok(Some(FlatUser {
            id,
            values,
            content_hash: hex(&Sha256::digest(raw.as_bytes())),
            raw_json: raw.to_owned(),
        }))
    }

    pub fn get(&self, column: Column) -> Option<&str> {
        self.values.get(column)
    }
}

mod wire;

/// Lower-case hex, without a `format!` per byte (this runs for every
/// listed user).
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// What writing one page did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PageOutcome {
    pub seen: u64,
    pub added: u64,
    pub changed: u64,
    /// Users added or changed (for follow-up work such as team memberships).
    pub touched_ids: Vec<String>,
}

/// Where a change was observed (the `source` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeSource {
    Full,
    Incremental,
    Push,
}

impl ChangeSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeSource::Full => "full",
            ChangeSource::Incremental => "incremental",
            ChangeSource::Push => "push",
        }
    }
}

/// The columns of a `user_rows` insert: the id, the 20 [`Column`]s,
/// raw_json and the time twice (first seen, updated).
const ROW_INSERT: &str = "INSERT INTO user_rows (id, email_id, first_name, last_name,
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
const STATE_INSERT: &str = "INSERT INTO user_state (id, content_hash, last_seen_at, removed_at) ";
const STATE_UPSERT: &str = "
 ON CONFLICT (id) DO UPDATE SET
    content_hash = excluded.content_hash, last_seen_at = excluded.last_seen_at, removed_at = NULL";

const CHANGE_INSERT: &str =
    "INSERT INTO user_changes (user_id, field, old_value, new_value, observed_at, run_id, source) ";

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
                w.changes.push((&u.id, "user", None, Some("added")));
                out.added += 1;
                out.touched_ids.push(u.id.clone());
            }
            Some(p) => {
                let n = w.changes.len();
                if p.removed {
                    w.changes
                        .push((&u.id, "user", Some("removed"), Some("restored")));
                }
                let old = p
                    .values
                    .expect("columns are read for every user that differs");
                for col in Column::ALL {
                    if old[col] != u.values[col] {
                        let (o, v) = (old.get(col), u.values.get(col));
                        w.changes.push((&u.id, col.as_str(), o, v));
                    }
                }
                if w.changes.len() > n {
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

/// The ids of `users` as a JSON array, for `json_each`.
fn json_ids<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    serde_json::to_string(&ids.collect::<Vec<_>>()).expect("strings serialise")
}

impl Store {
    /// Write one page of users in one transaction, so a reader never sees
    /// half a page and a crash loses at most the page in flight.
    ///
    /// Unchanged users (same content hash) only get `last_seen_at` bumped
    /// in the narrow `user_state`; their `user_rows` row is not rewritten.
    /// Changed users get one `user_changes` row per changed column; a new
    /// user gets one row with field `user` and new value `added`, a user
    /// who reappears after removal one with new value `restored`. Users
    /// are applied in order, so one listed twice ends as the later copy.
    ///
    /// A handful of statements per page, whatever its size (two reads,
    /// then multi-row writes): each statement is a round trip to the
    /// connection's worker thread, so one per user would cost more than
    /// the work.
    pub async fn write_users_page(
        &self,
        users: &[FlatUser],
        run_id: i64,
        source: ChangeSource,
        now: DateTime<Utc>,
    ) -> Result<PageOutcome, StoreError> {
        let mut out = PageOutcome {
            seen: users.len() as u64,
            ..PageOutcome::default()
        };
        if users.is_empty() {
            return Ok(out);
        }
        let now_s = to_db(now);
        let mut tx = self.write().await?;
        let before = read_before(&mut tx, users).await?;
        let w = page_writes(users, &before, &mut out);
        if !w.seen.is_empty() {
            sqlx::query(
                "UPDATE user_state SET last_seen_at = ?1
                 WHERE id IN (SELECT value FROM json_each(?2))",
            )
            .bind(&now_s)
            .bind(json_ids(w.seen.iter().copied()))
            .execute(&mut *tx)
            .await?;
        }
        write_rows(&mut tx, &w.new, "", &now_s).await?;
        write_rows(&mut tx, &w.known, ROW_UPSERT, &now_s).await?;
        for chunk in w.changes.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(CHANGE_INSERT);
            q.push_values(chunk, |mut b, (id, field, old, new)| {
                b.push_bind(*id)
                    .push_bind(*field)
                    .push_bind(*old)
                    .push_bind(*new);
                b.push_bind(&now_s)
                    .push_bind(run_id)
                    .push_bind(source.as_str());
            });
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    /// What [`Store::mark_unseen_removed`] would do now:
    /// `(users it would mark removed, users present before)`.
    pub async fn unseen_since(
        &self,
        listing_started: DateTime<Utc>,
    ) -> Result<(u64, u64), StoreError> {
        let (unseen, present): (i64, i64) = sqlx::query_as(
            "SELECT coalesce(sum(last_seen_at < ?1), 0), count(*) FROM user_state
             WHERE removed_at IS NULL",
        )
        .bind(to_db(listing_started))
        .fetch_one(&*self.read())
        .await?;
        Ok((unseen as u64, present as u64))
    }

    /// After a *complete* full listing that started at `listing_started`:
    /// everyone not seen since then is gone from Cliq. Returns how many
    /// users were newly marked removed. Never call it for a listing that
    /// failed, was stopped or throttled beyond its budget.
    pub async fn mark_unseen_removed(
        &self,
        listing_started: DateTime<Utc>,
        run_id: i64,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let now_s = to_db(now);
        let started = to_db(listing_started);
        const UNSEEN: &str =
            "SELECT id FROM user_state WHERE removed_at IS NULL AND last_seen_at < ?1";
        let mut tx = self.write().await?;
        sqlx::query(&format!(
            "INSERT INTO user_changes
                 (user_id, field, old_value, new_value, observed_at, run_id, source)
             SELECT id, 'user', 'present', 'removed', ?2, ?3, 'full' FROM ({UNSEEN})"
        ))
        .bind(&started)
        .bind(&now_s)
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "UPDATE user_rows SET updated_at = ?2 WHERE id IN ({UNSEEN})"
        ))
        .bind(&started)
        .bind(&now_s)
        .execute(&mut *tx)
        .await?;
        let removed = sqlx::query(
            "UPDATE user_state SET removed_at = ?2
             WHERE removed_at IS NULL AND last_seen_at < ?1",
        )
        .bind(&started)
        .bind(&now_s)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(removed)
    }
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

/// Insert (`tail` empty) or upsert (`tail` = [`ROW_UPSERT`]) the content
/// and state of `users`, in multi-row statements.
async fn write_rows(
    tx: &mut WriteTx,
    users: &[&FlatUser],
    tail: &str,
    now_s: &str,
) -> Result<(), StoreError> {
    for chunk in users.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(ROW_INSERT);
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
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(STATE_INSERT);
        q.push_values(chunk, |mut b, u| {
            b.push_bind(u.id.as_str())
                .push_bind(u.content_hash.as_str());
            b.push_bind(now_s).push("NULL");
        });
        let state_tail = if tail.is_empty() { "" } else { STATE_UPSERT };
        q.push(state_tail).build().execute(&mut **tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{from_db, Clock};

    /// A user flattened from the text as received and from a `Value` of it
    /// (written out again, compact and key-sorted) gets the same columns,
    /// whatever whitespace, escapes or key order the text had.
    #[test]
    fn raw_json_and_value_paths_agree() {
        let org = crate::sim::org::Org::seed(200, 3, chrono::Utc::now());
        let mut texts: Vec<String> = org
            .users
            .values()
            .map(|u| org.render(u, crate::sim::org::Fields::ALL).to_string())
            .collect();
        texts.extend(
            [
                r#"{"user_id": 12, "email_id": " A\u00c9@X.example ", "first_name": "  ",
                   "reporting_to": {"id": 7.5, "name": "M\"x"}, "department_id": 4,
                   "designation": [1, 2], "status": true, "mobile": null,
                   "phone": {"a": 1}, "extension": [], "country": "\t"}"#,
                r#"{"zuid": "9", "reporting_to_zuid": "3", "department": "Ops",
                   "designation": {"id": {"x": 1}, "name": "Lead", "other": [1]}}"#,
                r#"{"id": "1", "id": "2", "timezone": "UTC", "timezone": "Asia/Kolkata",
                   "reportingto": {"name": "Boss"}, "reporting_to": {"id": "5"}}"#,
                r#"{"id": 18446744073709551615, "language": -3, "work_location": 1e3}"#,
                r#"{"email_id": "nobody@x.example"}"#,
            ]
            .map(String::from),
        );
        for text in &texts {
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            let by_value = FlatUser::from_raw(&value);
            let by_text = FlatUser::from_raw_json(text).unwrap();
            assert_eq!(
                by_value.as_ref().map(|u| (&u.id, &u.values)),
                by_text.as_ref().map(|u| (&u.id, &u.values)),
                "{text}"
            );
            if let Some(u) = by_text {
                assert_eq!(u.raw_json, *text);
                assert_eq!(u.content_hash, hex(&Sha256::digest(text.as_bytes())));
            }
        }
        assert!(FlatUser::from_raw_json("[1]").is_err());
        assert!(FlatUser::from_raw_json("{\"id\": \"1\"").is_err());
    }

    /// What each documented variant flattens to, column by column.
    #[test]
    fn variant_objects_flatten_to_these_columns() {
        let flat = |text: &str| FlatUser::from_raw_json(text).unwrap();
        let u = flat(
            r#"{"user_id": 12, "email_id": " A\u00c9@X.example ", "first_name": "  ",
                "reporting_to": {"id": 7.5, "name": "M\"x"}, "department_id": 4,
                "designation": [1, 2], "status": true, "mobile": null,
                "phone": {"a": 1}, "extension": [], "country": "\t"}"#,
        )
        .unwrap();
        assert_eq!(u.id, "12");
        let expect = [
            (Column::EmailId, Some("aé@x.example")),
            (Column::FirstName, None),
            (Column::Status, Some("true")),
            (Column::Mobile, None),
            (Column::Phone, None),
            (Column::Extension, None),
            (Column::Country, None),
            (Column::DepartmentId, Some("4")),
            (Column::DesignationId, None),
            (Column::DesignationName, None),
            (Column::ReportingToId, Some("7.5")),
            (Column::ReportingToName, Some("M\"x")),
        ];
        for (col, want) in expect {
            assert_eq!(u.get(col), want, "{col}");
        }

        let u = flat(
            r#"{"zuid": "9", "reporting_to_zuid": "3", "department": "Ops",
                "designation": {"id": {"x": 1}, "name": "Lead", "other": [1]}}"#,
        )
        .unwrap();
        assert_eq!(u.id, "9");
        assert_eq!(u.get(Column::ReportingToId), Some("3"));
        // A bare-string reference is its name, never an id.
        assert_eq!(
            (u.get(Column::DepartmentId), u.get(Column::DepartmentName)),
            (None, Some("Ops"))
        );
        assert_eq!(
            (u.get(Column::DesignationId), u.get(Column::DesignationName)),
            (None, Some("Lead"))
        );

        // A key given twice keeps its last value; `reportingto` and
        // `reporting_to` fill in for each other.
        let u = flat(
            r#"{"id": "1", "id": "2", "timezone": "UTC", "timezone": "Asia/Kolkata",
                "reportingto": {"name": "Boss"}, "reporting_to": {"id": "5"}}"#,
        )
        .unwrap();
        assert_eq!(u.id, "2");
        assert_eq!(u.get(Column::Timezone), Some("Asia/Kolkata"));
        assert_eq!(
            (u.get(Column::ReportingToId), u.get(Column::ReportingToName)),
            (Some("5"), Some("Boss"))
        );

        let u =
            flat(r#"{"id": 18446744073709551615, "language": -3, "work_location": 1e3}"#).unwrap();
        assert_eq!(u.id, "18446744073709551615");
        assert_eq!(u.get(Column::Language), Some("-3"));
        assert_eq!(u.get(Column::WorkLocation), Some("1000.0"));

        assert_eq!(flat(r#"{"email_id": "nobody@x.example"}"#), None);
    }

    #[test]
    fn hex_is_lower_case_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    fn user(id: &str, location: &str) -> FlatUser {
        FlatUser::from_raw(&serde_json::json!({
            "id": id, "email_id": format!("{id}@zylker.example"), "work_location": location,
            "department": {"id": "7", "name": "Ops"}
        }))
        .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn history_removal_and_return() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = from_db("2026-03-01T00:00:00Z").unwrap();
        let clock = Clock::anchored(t0);
        let store = Store::open(&dir.path().join("m.db"), &clock).await.unwrap();
        let at = |m| t0 + chrono::Duration::minutes(m);
        for _ in 0..4 {
            store
                .start_run(crate::mirror::runs::RunKind::Full, t0)
                .await
                .unwrap();
        }
        let page = [user("1", "A"), user("2", "B")];
        let out = store
            .write_users_page(&page, 1, ChangeSource::Full, at(1))
            .await
            .unwrap();
        assert_eq!((out.seen, out.added, out.changed), (2, 2, 0));

        // Unchanged: no history, only last_seen_at.
        let out = store
            .write_users_page(&page, 2, ChangeSource::Full, at(2))
            .await
            .unwrap();
        assert_eq!((out.added, out.changed), (0, 0));

        // A complete listing without user 2 marks it removed, once.
        store
            .write_users_page(&page[..1], 3, ChangeSource::Full, at(4))
            .await
            .unwrap();
        assert_eq!(store.mark_unseen_removed(at(3), 3, at(5)).await.unwrap(), 1);
        assert_eq!(store.mark_unseen_removed(at(3), 3, at(5)).await.unwrap(), 0);

        // User 2 returns with a new location: removed_at cleared, history kept.
        let back = [user("2", "C")];
        let out = store
            .write_users_page(&back, 4, ChangeSource::Full, at(6))
            .await
            .unwrap();
        assert_eq!(out.changed, 1);
        let _hold = store.hold();
        let (removed, location): (Option<String>, String) =
            sqlx::query_as("SELECT removed_at, work_location FROM users WHERE id = '2'")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!((removed, location.as_str()), (None, "C"));
        let history: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT field, old_value, new_value FROM user_changes WHERE user_id = '2' ORDER BY id",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        let fields: Vec<_> = history
            .iter()
            .map(|(f, o, n)| {
                format!(
                    "{f}:{}->{}",
                    o.as_deref().unwrap_or(""),
                    n.as_deref().unwrap_or("")
                )
            })
            .collect();
        assert_eq!(
            fields,
            [
                "user:->added",
                "user:present->removed",
                "user:removed->restored",
                "work_location:B->C"
            ]
        );
    }

    /// The columns of `users`, in order: the public interface.
    const USERS_COLUMNS: &str = "id,email_id,first_name,last_name,display_name,full_name,\
        status,employee_id,mobile,phone,extension,work_location,timezone,language,country,\
        department_id,department_name,designation_id,designation_name,reporting_to_id,\
        reporting_to_name,raw_json,content_hash,first_seen_at,last_seen_at,updated_at,removed_at";

    async fn users_columns(pool: &sqlx::SqlitePool) -> String {
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info('users')")
            .fetch_all(pool)
            .await
            .unwrap();
        names.join(",")
    }

    /// An unchanged user costs a `user_state` update and nothing in
    /// `user_rows`; a removed user who comes back unchanged is restored; a
    /// user listed twice in a page ends as the later copy.
    #[tokio::test(start_paused = true)]
    async fn sightings_do_not_rewrite_content() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = from_db("2026-03-01T00:00:00Z").unwrap();
        let clock = Clock::anchored(t0);
        let store = Store::open(&dir.path().join("m.db"), &clock).await.unwrap();
        let at = |m| t0 + chrono::Duration::minutes(m);
        for _ in 0..4 {
            store
                .start_run(crate::mirror::runs::RunKind::Full, t0)
                .await
                .unwrap();
        }
        let page = [user("1", "A"), user("2", "B")];
        store
            .write_users_page(&page, 1, ChangeSource::Full, at(0))
            .await
            .unwrap();
        let _hold = store.hold();
        let rows_before: Vec<(String, String)> =
            sqlx::query_as("SELECT id, updated_at FROM user_rows ORDER BY id")
                .fetch_all(store.pool())
                .await
                .unwrap();
        let out = store
            .write_users_page(&page, 2, ChangeSource::Full, at(1))
            .await
            .unwrap();
        assert_eq!((out.added, out.changed), (0, 0));
        let rows_after: Vec<(String, String)> =
            sqlx::query_as("SELECT id, updated_at FROM user_rows ORDER BY id")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert_eq!(rows_before, rows_after);
        let seen: Vec<String> = sqlx::query_scalar("SELECT last_seen_at FROM users ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(seen, vec![to_db(at(1)), to_db(at(1))]);

        // User 2 is gone, then back with the same content: restored, one
        // `restored` row and no field changes.
        store
            .write_users_page(&page[..1], 3, ChangeSource::Full, at(2))
            .await
            .unwrap();
        assert_eq!(store.mark_unseen_removed(at(2), 3, at(3)).await.unwrap(), 1);
        let out = store
            .write_users_page(&page[1..], 4, ChangeSource::Full, at(4))
            .await
            .unwrap();
        assert_eq!((out.added, out.changed), (0, 1));
        let history: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT field, old_value, new_value FROM user_changes
             WHERE user_id = '2' AND run_id = 4 ORDER BY id",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(
            history,
            vec![(
                "user".into(),
                Some("removed".into()),
                Some("restored".into())
            )]
        );
        let removed: Option<String> =
            sqlx::query_scalar("SELECT removed_at FROM users WHERE id = '2'")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(removed, None);

        // Listed twice in one page: the later copy wins, with its change.
        let twice = [user("1", "X"), user("1", "Y")];
        let out = store
            .write_users_page(&twice, 4, ChangeSource::Full, at(5))
            .await
            .unwrap();
        assert_eq!(out.changed, 2);
        let location: String = sqlx::query_scalar("SELECT work_location FROM users WHERE id = '1'")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(location, "Y");
        assert_eq!(users_columns(store.pool()).await, USERS_COLUMNS);
    }

    /// A mirror created before `users` became a view keeps every user,
    /// every value and its column order.
    #[tokio::test]
    async fn a_mirror_from_before_the_split_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        // The migrations as they were before the split.
        let old_migrations = dir.path().join("migrations");
        std::fs::create_dir(&old_migrations).unwrap();
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations")).unwrap()
        {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if name.as_str() < "20261201" {
                std::fs::copy(entry.path(), old_migrations.join(&name)).unwrap();
            }
        }
        let pool = sqlx::SqlitePool::connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true),
        )
        .await
        .unwrap();
        sqlx::migrate::Migrator::new(old_migrations.as_path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO users (id, email_id, first_name, work_location, raw_json, content_hash,
                 first_seen_at, last_seen_at, updated_at, removed_at)
             VALUES ('1', 'a@x.example', 'Ann', 'Pune', '{\"id\":\"1\"}', 'h1',
                     '2026-01-01T00:00:00.000Z', '2026-02-01T00:00:00.000Z',
                     '2026-01-15T00:00:00.000Z', NULL),
                    ('2', 'b@x.example', 'Bob', NULL, '{\"id\":\"2\"}', 'h2',
                     '2026-01-02T00:00:00.000Z', '2026-01-20T00:00:00.000Z',
                     '2026-01-21T00:00:00.000Z', '2026-01-21T00:00:00.000Z')",
        )
        .execute(&pool)
        .await
        .unwrap();
        let before: Vec<String> = sqlx::query_scalar(
            "SELECT json_array(id, email_id, first_name, work_location, raw_json, content_hash,
                 first_seen_at, last_seen_at, updated_at, removed_at) FROM users ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;

        let store = Store::open(&path, &Clock::system()).await.unwrap();
        let after: Vec<String> = sqlx::query_scalar(
            "SELECT json_array(id, email_id, first_name, work_location, raw_json, content_hash,
                 first_seen_at, last_seen_at, updated_at, removed_at) FROM users ORDER BY id",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(before.len(), 2);
        assert_eq!(before, after);
        assert_eq!(users_columns(store.pool()).await, USERS_COLUMNS);
    }
}
