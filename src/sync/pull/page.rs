//! Reading a listed page on the blocking pool: in full (every user's
//! columns) or, while the listing's pages come back unchanged, by its
//! users' keys alone, which is all an unchanged page needs.
//!
//! Why keys: on a re-pull of a quiet org nearly every page is unchanged,
//! and reading each user's columns was the largest part of the pull's CPU
//! (about a quarter, ahead of SQLite). The pull guesses from the page
//! before: a page read by its keys that is not unchanged after all is read
//! in full before it is written, so a wrong guess costs time, never a
//! change.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::value::RawValue;

use crate::cliq::error::CliqError;
use crate::cliq::Endpoint;
use crate::mirror::users::{FlatUser, UserKey};

/// A listed page, read.
pub(super) enum ReadPage {
    Full(Vec<FlatUser>),
    /// Its users' keys, and their text to read in full if need be.
    Keys {
        keys: Vec<UserKey>,
        raw: Vec<Box<RawValue>>,
    },
}

/// How the next pages are read: by their keys while the pages written
/// were unchanged. Shared by the producer (which reads) and the writer
/// (which finds out); a page or two read the other way when it turns is
/// harmless either way.
#[derive(Clone)]
pub(super) struct ReadMode(Arc<AtomicBool>);

impl ReadMode {
    /// Starts with keys: a re-pull's first page is then cheap, and a first
    /// pull's pays for one read of its keys.
    pub(super) fn new() -> ReadMode {
        ReadMode(Arc::new(AtomicBool::new(true)))
    }

    pub(super) fn by_keys(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// After a page is written: whether it was unchanged.
    pub(super) fn note(&self, unchanged: bool) {
        self.0.store(unchanged, Ordering::Relaxed);
    }
}

/// Read a page (on the blocking pool). By its keys only if every user has
/// an id and reads as JSON; otherwise in full, which warns about a user
/// without an id and fails on one that cannot be read.
pub(super) fn read(users: Vec<Box<RawValue>>, by_keys: bool) -> Result<ReadPage, CliqError> {
    if by_keys {
        let keys: Option<Vec<UserKey>> = users
            .iter()
            .map(|u| UserKey::from_raw_json(u.get()).ok().flatten())
            .collect();
        if let Some(keys) = keys {
            return Ok(ReadPage::Keys { keys, raw: users });
        }
    }
    flatten(&users).map(ReadPage::Full)
}

/// Flatten a page as received. A user without an id is skipped with a
/// warning; one that cannot be read fails the page (and so the listing:
/// skipping them would later mark them removed).
pub(super) fn flatten(users: &[Box<RawValue>]) -> Result<Vec<FlatUser>, CliqError> {
    let mut out = Vec::with_capacity(users.len());
    for (i, u) in users.iter().enumerate() {
        match FlatUser::from_raw_json(u.get()) {
            Ok(Some(flat)) => out.push(flat),
            Ok(None) => tracing::warn!("a listed user has no id; skipped"),
            Err(e) => {
                return Err(CliqError::Decode {
                    endpoint: Endpoint::ListUsers,
                    message: format!("list users: item {i}: {e}"),
                })
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(texts: &[&str]) -> Vec<Box<RawValue>> {
        texts
            .iter()
            .map(|t| RawValue::from_string(t.to_string()).unwrap())
            .collect()
    }

    /// By keys only when every user has an id; a page with a user it
    /// cannot key is read in full, which skips the id-less user or fails
    /// on the unreadable one, as a full read always does.
    #[test]
    fn a_page_is_read_by_keys_only_when_every_user_has_one() {
        let ids = |page: ReadPage| match page {
            ReadPage::Keys { keys, raw } => {
                assert_eq!(keys.len(), raw.len());
                ("keys", keys.into_iter().map(|k| k.id).collect::<Vec<_>>())
            }
            ReadPage::Full(users) => ("full", users.into_iter().map(|u| u.id).collect()),
        };
        let two = [r#"{"id": "1"}"#, r#"{"zuid": 2, "email_id": "b@x"}"#];
        assert_eq!(
            ids(read(raw(&two), true).unwrap()),
            ("keys", vec!["1".into(), "2".into()])
        );
        assert_eq!(
            ids(read(raw(&two), false).unwrap()),
            ("full", vec!["1".into(), "2".into()])
        );
        let idless = [r#"{"id": "1"}"#, r#"{"email_id": "b@x"}"#];
        assert_eq!(
            ids(read(raw(&idless), true).unwrap()),
            ("full", vec!["1".into()])
        );
        let bad = [r#"{"id": "1"}"#, "[2]"];
        let e = read(raw(&bad), true).err().expect("an array is no user");
        assert!(e.to_string().contains("item 1"), "{e}");
    }

    #[test]
    fn the_mode_follows_the_last_page_written() {
        let mode = ReadMode::new();
        let producer = mode.clone();
        assert!(producer.by_keys());
        mode.note(false);
        assert!(!producer.by_keys());
        mode.note(true);
        assert!(producer.by_keys());
    }
}
