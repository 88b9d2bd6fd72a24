//! Held plans and their approval (`[push] on_threshold = "hold"`).
//!
//! A push over a safety threshold keeps its plan in `held_plans` as *what
//! would be written* (per person and field the desired value, plus the
//! adds), with the SHA-256 of that text as its content hash. `cliq-sync
//! approve ID` plans again from the current HR source and mirror: the same
//! hash marks the plan approved, and the next push whose plan has exactly
//! that hash passes the thresholds once (the run that used it is recorded).
//! A different plan is refused with the difference, and held in its turn
//! when it trips a threshold too: nobody approves a plan they did not see.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cliq::quotas::Limits;
use crate::hr::HrSource;
use crate::mirror::held::HeldPush;
use crate::mirror::held_plans::HeldPlan;
use crate::mirror::{Store, StoreError};
use crate::sync::held_plan::Writes;
use crate::sync::plan;
use crate::sync::push::{self, PushError, PushOptions};
use crate::text::escape;

/// Most difference lines shown when an approval is refused.
const DIFF_LINES: usize = 20;

/// One line of `cliq-sync approve`: a held plan or a held full pull.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HeldEntry {
    pub id: String,
    /// `push` or `full`.
    pub kind: &'static str,
    pub run_id: i64,
    pub reason: String,
    /// Planned changes; for a full pull, the users it would have marked
    /// removed (0 if the reason does not say).
    pub changes: u64,
    pub held_at: String,
    /// Not in `approve --json` (its shape is fixed); `status` shows it.
    #[serde(skip)]
    pub approved: bool,
}

/// A held full pull's ID: "F" + its run's id.
fn full_id(run_id: i64) -> String {
    format!("F{run_id}")
}

impl From<HeldPlan> for HeldEntry {
    fn from(p: HeldPlan) -> Self {
        HeldEntry {
            id: p.id,
            kind: "push",
            run_id: p.run_id,
            reason: p.reason,
            changes: p.changes,
            held_at: p.held_at,
            approved: p.approved_at.is_some(),
        }
    }
}

impl From<HeldPush> for HeldEntry {
    /// A held full pull.
    fn from(f: HeldPush) -> Self {
        // The breaker's reason says "… would mark N of M removed …".
        let changes = f
            .reason
            .split("would mark ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        HeldEntry {
            id: full_id(f.run_id),
            kind: "full",
            run_id: f.run_id,
            reason: f.reason,
            changes,
            held_at: f.held_at,
            approved: false,
        }
    }
}

/// Every held plan that waits, then the held full pull.
pub async fn list(store: &Store) -> Result<Vec<HeldEntry>, StoreError> {
    let mut out: Vec<HeldEntry> = store
        .waiting_held_plans()
        .await?
        .into_iter()
        .map(HeldEntry::from)
        .collect();
    out.extend(store.held_full_pull().await?.map(HeldEntry::from));
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
pub enum ApproveError {
    /// Exit 2.
    #[error("no held plan {id}; held now: {}", if .held.is_empty() { "none".to_owned() } else { .held.join(", ") })]
    Unknown { id: String, held: Vec<String> },
    /// Exit 2: a full pull is confirmed by a pull, not released here.
    #[error(
        "{id} is a full pull held by the removal circuit breaker, not a push plan: check the \
         org in Cliq, then confirm it with `cliq-sync sync --full --allow-removals`"
    )]
    FullPull { id: String },
    /// Exit 3: the plan changed since it was held.
    #[error("{}", refused(.id, .diff, .new_plan.as_deref()))]
    Changed {
        id: String,
        diff: Vec<String>,
        new_plan: Option<String>,
    },
    #[error(transparent)]
    Push(#[from] PushError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn refused(id: &str, diff: &[String], new_plan: Option<&str>) -> String {
    let next = match new_plan {
        Some(new) => format!(
            "the new plan is held as {new}: review it with `cliq-sync plan`, then run \
             `cliq-sync approve {new}`"
        ),
        None => "the new plan passes the thresholds: the next push sends it".to_owned(),
    };
    format!(
        "approval of {id} refused: the HR source or the mirror changed since it was held, and \
         the plan now differs:\n{}\n{next}",
        diff.join("\n")
    )
}

/// `cliq-sync approve ID`: plan again now; release the held plan if it is
/// exactly the same, else refuse with the difference.
pub async fn approve(
    store: &Store,
    limits: &Limits,
    hr: &HrSource,
    opts: &PushOptions,
    id: &str,
) -> Result<HeldEntry, ApproveError> {
    let _lock = push::take_push_lock(store).await?;
    let held = store.waiting_held_plans().await?;
    let wanted = id.trim().to_ascii_uppercase();
    let Some(plan) = held.iter().find(|p| p.id == wanted).cloned() else {
        if let Some(full) = store.held_full_pull().await? {
            if full_id(full.run_id) == wanted {
                return Err(ApproveError::FullPull { id: wanted });
            }
        }
        let mut ids: Vec<String> = held.into_iter().map(|p| p.id).collect();
        ids.extend(store.held_full_pull().await?.map(|f| full_id(f.run_id)));
        return Err(ApproveError::Unknown {
            id: wanted,
            held: ids,
        });
    };
    let now_plan = plan::plan(store, hr, &opts.plan, limits).await?;
    let writes = Writes::of(&now_plan);
    if writes.text_and_hash().1 == plan.plan_hash {
        store
            .settle_held_plan(&plan.id, true, store.clock().now())
            .await?;
        tracing::info!(plan = %plan.id, run = plan.run_id, "held plan approved for the next push");
        return Ok(HeldEntry::from(plan));
    }
    let before: Writes = serde_json::from_str(&plan.plan_json).unwrap_or_default();
    let diff = difference(&before, &writes);
    store
        .settle_held_plan(&plan.id, false, store.clock().now())
        .await?;
    let baseline = push::source_baseline(store).await?;
    let new_plan = match push::check_safety(&now_plan, baseline, opts) {
        Ok(()) => None,
        Err(reason) => match push::hold(store, &now_plan, hr, reason).await? {
            PushError::Safety(stop) => stop.plan_id,
            other => return Err(other.into()),
        },
    };
    Err(ApproveError::Changed {
        id: plan.id,
        diff,
        new_plan,
    })
}

/// Compact lines: `+` a write added, `-` one gone, `~` another value.
fn difference(before: &Writes, after: &Writes) -> Vec<String> {
    let mut lines = Vec::new();
    for (what, old, new) in [
        ("update", &before.updates, &after.updates),
        ("add", &before.adds, &after.adds),
    ] {
        let empty = BTreeMap::new();
        let people: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        for person in people {
            let (o, n) = (
                old.get(person).unwrap_or(&empty),
                new.get(person).unwrap_or(&empty),
            );
            let fields: std::collections::BTreeSet<&String> = o.keys().chain(n.keys()).collect();
            for f in fields {
                let who = format!("{what} {} {}", escape(person), escape(f));
                lines.push(match (o.get(f), n.get(f)) {
                    (Some(a), Some(b)) if a == b => continue,
                    (Some(a), Some(b)) => {
                        format!("  ~ {who}: \"{}\" -> \"{}\"", escape(a), escape(b))
                    }
                    (Some(a), None) => format!("  - {who} = \"{}\"", escape(a)),
                    (None, Some(b)) => format!("  + {who} = \"{}\"", escape(b)),
                    (None, None) => continue,
                });
            }
        }
    }
    if lines.len() > DIFF_LINES {
        let more = lines.len() - DIFF_LINES;
        lines.truncate(DIFF_LINES);
        lines.push(format!("  … and {more} more"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(updates: &[(&str, &str, &str)]) -> Writes {
        let mut out = Writes::default();
        for (p, f, v) in updates {
            out.updates
                .entry((*p).into())
                .or_default()
                .insert((*f).into(), (*v).into());
        }
        out
    }

    #[test]
    fn the_difference_names_added_removed_and_other_values_escaped() {
        let before = w(&[("a@x", "work_location", "Desk"), ("b@x", "extension", "1")]);
        let after = w(&[
            ("a@x", "work_location", "Room\u{202e}"),
            ("c@x", "extension", "2"),
        ]);
        let d = difference(&before, &after);
        assert_eq!(
            d,
            [
                "  ~ update a@x work_location: \"Desk\" -> \"Room\\u{202e}\"",
                "  - update b@x extension = \"1\"",
                "  + update c@x extension = \"2\"",
            ],
            "{d:?}"
        );
        assert_eq!(
            before.text_and_hash(),
            w(&[("b@x", "extension", "1"), ("a@x", "work_location", "Desk")]).text_and_hash()
        );
    }
}
