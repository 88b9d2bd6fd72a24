//! The HR source staged on disk: its records in a private, temporary SQLite
//! file, so that a plan joins HR and the mirror in SQL instead of holding
//! either whole (issue 10, point 8: memory follows the work, not the org).
//!
//! A record is an email and [`SLOTS`] value slots, each an optional
//! `(kind, text)`; which attribute a slot holds, and what a kind means, is
//! the HR source's business (`hr`), so this layer stays below it. The file
//! lives in the temporary directory (`TMPDIR`) and is deleted when the last
//! handle drops; it is scratch, so it is written without a journal or
//! fsync: a crash loses nothing that the HR file does not still hold.

use std::path::{Path, PathBuf};

use sqlx::{Connection, SqliteConnection};

use super::store::StoreError;

/// Value slots per record (the attributes HR can manage).
pub const SLOTS: usize = 14;

/// Records per insert statement: 33 bound values each, well under
/// SQLite's limit of 32,766 per statement.
const CHUNK: usize = 400;

/// One record as staged: everything the HR source keeps of a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedRecord {
    /// Lowercased, trimmed: the join key.
    pub email: String,
    /// The email as the file gives it (trimmed), for messages.
    pub given: String,
    /// Where the record is in its file: a kind code and a number.
    pub location: (u8, u64),
    /// Per slot: the value's kind code and trimmed text.
    pub values: [Option<(u8, Box<str>)>; SLOTS],
}

/// A record sharing its email with an earlier one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    pub given: String,
    pub location: (u8, u64),
    /// Where the email first appears.
    pub first: (u8, u64),
}

/// A staged HR source: the temporary file and its record count.
#[derive(Debug)]
pub struct HrStage {
    // Dropped last: the file goes with the directory.
    dir: tempfile::TempDir,
    path: PathBuf,
    len: usize,
}

/// A stage being written (one connection, one transaction).
pub struct StageWriter {
    stage: HrStage,
    conn: SqliteConnection,
}

impl HrStage {
    /// A new, empty stage in the temporary directory.
    pub async fn create() -> Result<StageWriter, StoreError> {
        let dir = tempfile::Builder::new()
            .prefix("cliq-sync-hr.")
            .tempdir()
            .map_err(|source| StoreError::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        let path = dir.path().join("hr.db");
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Off)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Off);
        let mut conn = SqliteConnection::connect_with(&options).await?;
        sqlx::query(&create_sql()).execute(&mut conn).await?;
        sqlx::query("BEGIN").execute(&mut conn).await?;
        let stage = HrStage { dir, path, len: 0 };
        Ok(StageWriter { stage, conn })
    }

    /// The file, for a plan to attach.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every record, in file order. This loads them all: for tests and
    /// for looking at a small source, never for planning.
    pub async fn records(&self) -> Result<Vec<StagedRecord>, StoreError> {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&self.path)
            .read_only(true);
        let mut conn = SqliteConnection::connect_with(&options).await?;
        let sql = format!(
            "SELECT {} FROM records ORDER BY pos",
            record_json("records")
        );
        let rows: Vec<String> = sqlx::query_scalar(&sql).fetch_all(&mut conn).await?;
        conn.close().await?;
        rows.iter().map(|t| parse_record(t)).collect()
    }

    /// The directory holding the file (kept alive by the stage).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl StageWriter {
    /// Add records (in file order).
    pub async fn insert(&mut self, records: &[StagedRecord]) -> Result<(), StoreError> {
        for chunk in records.chunks(CHUNK) {
            let row = format!("({})", vec!["?"; 4 + 2 * SLOTS].join(", "));
            let sql = format!(
                "INSERT INTO records (email, given, loc_kind, loc, {}) VALUES {}",
                slot_columns(),
                vec![row.as_str(); chunk.len()].join(", ")
            );
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q
                    .bind(&r.email)
                    .bind(&r.given)
                    .bind(i64::from(r.location.0))
                    .bind(r.location.1 as i64);
                for v in &r.values {
                    q = q
                        .bind(v.as_ref().map(|(k, _)| i64::from(*k)))
                        .bind(v.as_ref().map(|(_, t)| t.as_ref()));
                }
            }
            q.execute(&mut self.conn).await?;
            self.stage.len += chunk.len();
        }
        Ok(())
    }

    /// Commit, index by email and list the records whose email an earlier
    /// record already gave (in email order, then file order).
    pub async fn finish(mut self) -> Result<(HrStage, Vec<Duplicate>), StoreError> {
        sqlx::query("COMMIT").execute(&mut self.conn).await?;
        // Indexed after the bulk insert: one sort instead of a B-tree
        // insertion per row.
        sqlx::query("CREATE INDEX records_email ON records (email)")
            .execute(&mut self.conn)
            .await?;
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT email, given, loc_kind, loc FROM records
             WHERE email IN (SELECT email FROM records GROUP BY email HAVING count(*) > 1)
             ORDER BY email, pos",
        )
        .fetch_all(&mut self.conn)
        .await?;
        self.conn.close().await?;
        let mut out = Vec::new();
        let mut first: Option<(String, (u8, u64))> = None;
        for (email, given, kind, n) in rows {
            let location = (kind as u8, n as u64);
            match &first {
                Some((e, at)) if *e == email => out.push(Duplicate {
                    given,
                    location,
                    first: *at,
                }),
                _ => first = Some((email, location)),
            }
        }
        Ok((self.stage, out))
    }
}

fn create_sql() -> String {
    let slots: Vec<String> = (0..SLOTS)
        .map(|i| format!("k{i} INTEGER, v{i} TEXT"))
        .collect();
    format!(
        "CREATE TABLE records (
            pos INTEGER PRIMARY KEY,
            email TEXT NOT NULL,
            given TEXT NOT NULL,
            loc_kind INTEGER NOT NULL,
            loc INTEGER NOT NULL,
            {}
        )",
        slots.join(",\n            ")
    )
}

/// `k0, v0, k1, v1, …`
fn slot_columns() -> String {
    (0..SLOTS)
        .map(|i| format!("k{i}, v{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A record of table `t` as one JSON array (one text column through sqlx
/// instead of 33): `[email, given, loc_kind, loc, k0, v0, …]`.
pub(crate) fn record_json(t: &str) -> String {
    let cols: Vec<String> = ["email", "given", "loc_kind", "loc"]
        .iter()
        .map(|c| format!("{t}.{c}"))
        .chain((0..SLOTS).map(|i| format!("{t}.k{i}, {t}.v{i}")))
        .collect();
    format!("json_array({})", cols.join(", "))
}

/// One [`record_json`] row.
pub(crate) fn parse_record(text: &str) -> Result<StagedRecord, StoreError> {
    use serde_json::Value;
    let bad = |e: serde_json::Error| StoreError::Db(sqlx::Error::Decode(Box::new(e)));
    let v: Vec<Value> = serde_json::from_str(text).map_err(bad)?;
    let s = |i: usize| v.get(i).and_then(Value::as_str).unwrap_or_default();
    let n = |i: usize| v.get(i).and_then(Value::as_u64).unwrap_or_default();
    let mut values: [Option<(u8, Box<str>)>; SLOTS] = Default::default();
    for (i, slot) in values.iter_mut().enumerate() {
        if let (Some(k), Some(t)) = (
            v.get(4 + 2 * i).and_then(Value::as_u64),
            v.get(5 + 2 * i).and_then(Value::as_str),
        ) {
            *slot = Some((k as u8, t.into()));
        }
    }
    Ok(StagedRecord {
        email: s(0).to_owned(),
        given: s(1).to_owned(),
        location: (n(2) as u8, n(3)),
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(email: &str, line: u64, v0: Option<&str>) -> StagedRecord {
        let mut values: [Option<(u8, Box<str>)>; SLOTS] = Default::default();
        values[0] = v0.map(|t| (0, t.into()));
        values[13] = Some((2, "boss@x.example".into()));
        StagedRecord {
            email: email.to_lowercase(),
            given: email.to_owned(),
            location: (1, line),
            values,
        }
    }

    #[tokio::test]
    async fn records_come_back_as_staged_and_duplicates_name_the_first() {
        let mut w = HrStage::create().await.unwrap();
        let recs: Vec<StagedRecord> = (0..1000)
            .map(|i| rec(&format!("U{i}@x.example"), i + 2, Some("A \"q\"")))
            .chain([rec("u7@X.example", 1002, None)])
            .collect();
        w.insert(&recs).await.unwrap();
        let (stage, dups) = w.finish().await.unwrap();
        assert_eq!(stage.len(), 1001);
        assert_eq!(stage.records().await.unwrap(), recs);
        assert_eq!(
            dups,
            vec![Duplicate {
                given: "u7@X.example".into(),
                location: (1, 1002),
                first: (1, 9),
            }]
        );
        let dir = stage.dir().to_owned();
        assert!(dir.exists());
        drop(stage);
        assert!(!dir.exists(), "the stage's file outlived it");
    }
}
