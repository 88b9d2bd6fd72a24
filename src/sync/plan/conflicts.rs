//! Hand edits in Cliq: a planned change of a field that a pull saw change
//! in Cliq after our last push of it would overwrite someone's edit.
//!
//! Only the mirror's history decides: our last `push` row for the field,
//! then a later row of a `full` or `incremental` pull. A field we never
//! pushed is not a conflict (HR simply differs, and HR is the source); a
//! field we pushed and no pull saw change since is not one either; nor is
//! one edited in Cliq and back to what we pushed (nothing would be lost).
//!
//! `[push] on_conflict`: `overwrite` marks the change and keeps it;
//! `skip` moves it to `skipped_conflicts` (a user left with no change is
//! not updated); `hold` marks it, and the push's safety check holds the
//! plan (see `push::check_safety`).

use std::collections::HashMap;

use super::{min_duration, Conflict, Plan, PlanOptions, SkippedConflict};
use crate::cliq::quotas::Limits;
use crate::cliq::Endpoint;
use crate::config::OnConflict;
use crate::hr::Attr;
use crate::mirror::history::EditSincePush;
use crate::mirror::{Store, StoreError};

/// Mark (or, with `skip`, take out) the planned changes that overwrite a
/// change made in Cliq, and bring the summary up to date.
pub(super) async fn apply(
    store: &Store,
    plan: &mut Plan,
    opts: &PlanOptions,
    limits: &Limits,
) -> Result<(), StoreError> {
    let wanted: Vec<(&str, &str)> = plan
        .updates
        .iter()
        .flat_map(|u| {
            u.changes
                .iter()
                .filter_map(|c| Some((u.user_id.as_str(), column(c.field)?)))
        })
        .collect();
    let edits = store.edits_since_push(&wanted).await?;
    let edits: HashMap<(String, String), EditSincePush> = edits
        .into_iter()
        .map(|e| ((e.user_id.clone(), e.column.clone()), e))
        .collect();
    mark(plan, &edits, opts.on_conflict);
    resummarise(plan, opts, limits);
    Ok(())
}

fn column(field: &str) -> Option<&'static str> {
    Attr::from_name(field).map(|a| a.mirror_column().as_str())
}

/// The pure step: mark each conflicting change, or move it out with `skip`.
fn mark(plan: &mut Plan, edits: &HashMap<(String, String), EditSincePush>, policy: OnConflict) {
    let mut skipped = Vec::new();
    for u in &mut plan.updates {
        let mut kept = Vec::with_capacity(u.changes.len());
        for mut c in std::mem::take(&mut u.changes) {
            let key = (u.user_id.clone(), column(c.field).unwrap_or("").to_owned());
            // Edited back to our value: Cliq has what we pushed, no one's
            // edit is lost.
            c.conflict = edits
                .get(&key)
                .filter(|e| e.pushed_value != c.current)
                .map(|e| {
                    Box::new(Conflict {
                        changed_at: e.changed_at.clone(),
                        observed_by: e.observed_by.clone(),
                        cliq_value: c.current.clone(),
                        pushed_value: e.pushed_value.clone(),
                        pushed_at: e.pushed_at.clone(),
                    })
                });
            match (&c.conflict, policy) {
                (Some(conflict), OnConflict::Skip) => skipped.push(SkippedConflict {
                    email: u.email.clone(),
                    user_id: u.user_id.clone(),
                    field: c.field,
                    desired: c.desired.clone(),
                    conflict: Conflict::clone(conflict),
                }),
                _ => kept.push(c),
            }
        }
        u.changes = kept;
        u.desired_hash =
            super::hash_fields(u.changes.iter().map(|c| (c.cliq_key, c.desired.as_str())));
    }
    plan.updates.retain(|u| !u.changes.is_empty());
    plan.skipped_conflicts = skipped;
}

/// The figures that depend on the updates, after [`mark`].
fn resummarise(plan: &mut Plan, opts: &PlanOptions, limits: &Limits) {
    let s = &mut plan.summary;
    s.updates = plan.updates.len();
    s.field_changes = plan.updates.iter().map(|u| u.changes.len()).sum();
    s.changes = s.updates + s.adds;
    s.update_requests = s.updates;
    s.conflicts = plan
        .updates
        .iter()
        .flat_map(|u| &u.changes)
        .filter(|c| c.conflict.is_some())
        .count();
    s.skipped_conflicts = plan.skipped_conflicts.len();
    let add_requests = s.adds.div_ceil(opts.add_batch_size.max(1));
    let min = min_duration(limits, Endpoint::UpdateUser, s.update_requests)
        + min_duration(limits, Endpoint::AddUsers, add_requests);
    s.min_duration_secs = min.as_secs_f64();
}

/// The conflicts of a plan in one line each (for a held push's reason):
/// `email field (changed in Cliq on DATE)`, at most `max`.
pub fn describe(plan: &Plan, max: usize) -> String {
    let all: Vec<String> = plan
        .updates
        .iter()
        .flat_map(|u| u.changes.iter().map(move |c| (u, c)))
        .filter_map(|(u, c)| {
            let k = c.conflict.as_ref()?;
            Some(format!(
                "{} {} (changed in Cliq on {})",
                u.email,
                c.field,
                day(&k.changed_at)
            ))
        })
        .collect();
    let mut out = all.iter().take(max).cloned().collect::<Vec<_>>().join(", ");
    if all.len() > max {
        out.push_str(&format!(" and {} more", all.len() - max));
    }
    out
}

/// `2026-06-01` of an RFC 3339 time.
pub fn day(at: &str) -> &str {
    at.get(..10).unwrap_or(at)
}
