//! `cliq-sync undo RUN`: the inverse of push run RUN, built from its stored
//! before-values. Each applied update's `pushes.fields_json` has `fields`
//! (what RUN sent) and `current` (the mirror's values before the write);
//! the undo sends `current` back, expecting the mirror to still have what
//! RUN set. A field someone changed since is skipped and reported, not
//! overwritten. Adds cannot be undone (the Users API has no deletion).
//! An undo is itself a push run (linked by `sync_runs.undoes_run`), so an
//! undo of an undo restores what the first push set.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::hr::Attr;
use crate::mirror::undo::AppliedWrite;
use crate::mirror::{Store, StoreError};
use crate::sync::plan::{hash_fields, FieldChange, PlannedUpdate};
use crate::sync::push::{Given, GivenUpdate, Refused};

#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    #[error("there is no run {0} in the mirror; `cliq-sync status` lists the recent runs")]
    Unknown(i64),
    #[error("run {0} is a {1} run, not a push run: only a push can be undone")]
    NotPush(i64, String),
    #[error("run {0} is still running; undo it once it has ended")]
    Running(i64),
    #[error("push run {0} applied no update that can be undone{1}; nothing was sent")]
    Nothing(i64, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The inverse of push run `run`, to push with [`crate::sync::push::push_given`].
pub async fn given(store: &Store, run: i64) -> Result<Given, UndoError> {
    match store.run_kind_status(run).await? {
        None => return Err(UndoError::Unknown(run)),
        Some((kind, _)) if kind != "push" => return Err(UndoError::NotPush(run, kind)),
        Some((_, status)) if status == "running" => return Err(UndoError::Running(run)),
        Some(_) => {}
    }
    let mut updates = Vec::new();
    let mut refused = Vec::new();
    for w in store.applied_writes(run).await? {
        match (w.action.as_str(), w.user_id.as_deref()) {
            ("update", Some(id)) => updates.extend(inverse(run, id, &w, &mut refused)),
            _ => refused.push(Refused {
                email: w.email.clone(),
                user_id: w.user_id.clone(),
                action: "add",
                field: None,
                code: "cannot_undo",
                reason: "an add cannot be undone: the Users API has no deletion \
                         (deactivate the person in Cliq's admin console if need be)"
                    .into(),
            }),
        }
    }
    if updates.is_empty() {
        let why = if refused.is_empty() {
            String::new()
        } else {
            format!(
                " ({} add(s) or empty before-values cannot be undone)",
                refused.len()
            )
        };
        return Err(UndoError::Nothing(run, why));
    }
    Ok(Given {
        source: format!("undo of push run {run}"),
        managed_fields: Vec::new(),
        updates,
        adds: Vec::new(),
        undoes_run: Some(run),
        refused,
    })
}

/// The inverse of one applied update: its before-values sent back, each
/// expecting what `run` set. A field that was empty before is not sent
/// (cliq-sync never sends an empty value).
fn inverse(
    run: i64,
    user_id: &str,
    w: &AppliedWrite,
    refused: &mut Vec<Refused>,
) -> Option<GivenUpdate> {
    let v: Value = serde_json::from_str(&w.fields_json).unwrap_or(Value::Null);
    let sent: BTreeMap<String, String> =
        serde_json::from_value(v["fields"].clone()).unwrap_or_default();
    let before: BTreeMap<String, Option<String>> =
        serde_json::from_value(v["current"].clone()).unwrap_or_default();
    let mut changes = Vec::new();
    let mut expect = BTreeMap::new();
    for (key, set) in &sent {
        let Some(attr) = Attr::ALL.into_iter().find(|a| a.cliq_key() == key) else {
            continue;
        };
        let Some(Some(was)) = before.get(key) else {
            refused.push(Refused {
                email: w.email.clone(),
                user_id: Some(user_id.to_owned()),
                action: "update",
                field: Some(attr.name().to_owned()),
                code: "was_empty",
                reason: format!("was empty before run {run}; an undo does not send empty values"),
            });
            continue;
        };
        expect.insert(attr.name(), Some(set.clone()));
        changes.push(FieldChange {
            field: attr.name(),
            cliq_key: attr.cliq_key(),
            current: Some(set.clone()),
            desired: was.clone(),
            current_name: None,
            desired_name: None,
            conflict: None,
        });
    }
    if changes.is_empty() {
        return None;
    }
    let desired_hash = hash_fields(changes.iter().map(|c| (c.cliq_key, c.desired.as_str())));
    Some(GivenUpdate {
        update: PlannedUpdate {
            user_id: user_id.to_owned(),
            email: w.email.clone(),
            changes,
            desired_hash,
        },
        expect,
        per_field: true,
    })
}
