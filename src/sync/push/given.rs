//! A push of a given plan whose parts carry preconditions: a reviewed plan
//! file (`push --plan`), whose parts carry the mirror values they were made
//! against, and an undo, whose parts carry the values the undone run set.
//!
//! Nothing is recomputed from HR. Each part is checked against the mirror
//! right before sending: inside the push lock, after the attempts of
//! unknown outcome were reconciled (which refreshes the mirror rows they
//! concern). A part whose values changed since is refused and reported (a
//! `skipped` row with `error_code` `changed_since`); the rest goes through
//! the same run as a normal push: quota scheduler, thresholds, records,
//! progress.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{
    check_safety, run_plan, take_push_lock, PushError, PushOptions, PushOutcome, PushReport, Run,
    SafetyStop, Work,
};
use crate::cliq::client::CliqClient;
use crate::cliq::quotas::Limits;
use crate::cliq::Endpoint;
use crate::config::OnConflict;
use crate::hr::Attr;
use crate::mirror::pushes::{MirrorUser, NewPush};
use crate::mirror::{Store, StoreError};
use crate::sync::plan::{self, Plan, PlanOptions, PlanSummary, PlannedAdd, PlannedUpdate};

/// A plan given from outside the HR source, with its preconditions.
#[derive(Debug, Clone)]
pub struct Given {
    /// What it is, for the plan's `source` (`plan file …`, `undo of run N`).
    pub source: String,
    pub managed_fields: Vec<&'static str>,
    pub updates: Vec<GivenUpdate>,
    pub adds: Vec<PlannedAdd>,
    /// The push run this one undoes (`sync_runs.undoes_run`).
    pub undoes_run: Option<i64>,
    /// Parts refused while building it (an undo's adds: no deletion).
    pub refused: Vec<Refused>,
}

/// An update and the mirror values it expects.
#[derive(Debug, Clone)]
pub struct GivenUpdate {
    pub update: PlannedUpdate,
    /// Attribute name → the value the mirror must have now.
    pub expect: BTreeMap<&'static str, Option<String>>,
    /// Refuse only the changed fields (an undo) instead of the whole part
    /// (a reviewed plan: a person's part was reviewed as a whole).
    pub per_field: bool,
}

/// A part (or, for an undo, a field) not sent, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refused {
    pub email: String,
    pub user_id: Option<String>,
    /// `update` or `add`.
    pub action: &'static str,
    /// The field concerned; `None` for the whole part.
    pub field: Option<String>,
    /// `changed_since`, `gone`, `exists`, `cannot_undo`, `was_empty`.
    pub code: &'static str,
    pub reason: String,
}

impl Given {
    /// The parts given (what `users_seen` of the run counts).
    pub fn parts(&self) -> usize {
        self.updates.len() + self.adds.len()
    }

    /// Record the run this one undoes.
    pub(super) async fn record_link(&self, store: &Store, run_id: i64) -> Result<(), StoreError> {
        match self.undoes_run {
            Some(undone) => store.link_undo(run_id, undone).await,
            None => Ok(()),
        }
    }

    /// The parts whose preconditions hold in the mirror now, as a plan,
    /// and the refused ones.
    pub(super) async fn check(
        &self,
        store: &Store,
        opts: &PlanOptions,
        limits: &Limits,
    ) -> Result<(Plan, Vec<Refused>), StoreError> {
        let ids: Vec<String> = self
            .updates
            .iter()
            .map(|g| g.update.user_id.clone())
            .collect();
        let emails: Vec<String> = self.adds.iter().map(|a| a.email.to_lowercase()).collect();
        let snapshot = store.plan_users(&ids, &emails).await?;
        let present: HashMap<&str, &MirrorUser> = snapshot
            .iter()
            .filter(|u| !u.removed)
            .map(|u| (u.id.as_str(), u))
            .collect();
        let emails: HashSet<&str> = present
            .values()
            .filter_map(|u| u.email.as_deref())
            .collect();
        let mut refused = self.refused.clone();
        let updates = self
            .updates
            .iter()
            .filter_map(|g| checked(g, present.get(g.update.user_id.as_str()), &mut refused))
            .collect();
        let mut adds = Vec::new();
        for a in &self.adds {
            if emails.contains(a.email.to_lowercase().as_str()) {
                refused.push(Refused {
                    email: a.email.clone(),
                    user_id: None,
                    action: "add",
                    field: None,
                    code: "exists",
                    reason: "is in Cliq by now (a pull saw them since the plan was made)".into(),
                });
            } else {
                adds.push(a.clone());
            }
        }
        Ok((self.plan(updates, adds, opts, limits), refused))
    }

    /// `updates` and `adds` as a [`Plan`] (rendered and reported like any).
    fn plan(
        &self,
        updates: Vec<PlannedUpdate>,
        adds: Vec<PlannedAdd>,
        opts: &PlanOptions,
        limits: &Limits,
    ) -> Plan {
        let update_requests = updates.len();
        let add_requests = adds.len().div_ceil(opts.add_batch_size.max(1));
        let min = plan::min_duration(limits, Endpoint::UpdateUser, update_requests)
            + plan::min_duration(limits, Endpoint::AddUsers, add_requests);
        Plan {
            source: self.source.clone(),
            managed_fields: self.managed_fields.clone(),
            create_missing: !adds.is_empty(),
            summary: PlanSummary {
                hr_records: 0,
                cliq_users: 0,
                matched: updates.len(),
                updates: updates.len(),
                field_changes: updates.iter().map(|u| u.changes.len()).sum(),
                adds: adds.len(),
                changes: updates.len() + adds.len(),
                blocked: 0,
                missing_in_cliq: 0,
                pending_adds: 0,
                not_in_hr: 0,
                excluded: 0,
                conflicts: 0,
                skipped_conflicts: 0,
                update_requests,
                add_requests,
                min_duration_secs: min.as_secs_f64(),
            },
            updates,
            adds,
            blocked: Vec::new(),
            missing_in_cliq: Vec::new(),
            pending_adds: Vec::new(),
            not_in_hr: Vec::new(),
            excluded: Vec::new(),
            on_conflict: OnConflict::Overwrite,
            skipped_conflicts: Vec::new(),
        }
    }
}

/// The update of `g` that may still be sent to `user` (the mirror row,
/// `None` when the person is gone); what may not is added to `refused`.
fn checked(
    g: &GivenUpdate,
    user: Option<&&MirrorUser>,
    refused: &mut Vec<Refused>,
) -> Option<PlannedUpdate> {
    let u = &g.update;
    let refuse = |field: Option<&str>, code, reason: String| Refused {
        email: u.email.clone(),
        user_id: Some(u.user_id.clone()),
        action: "update",
        field: field.map(str::to_owned),
        code,
        reason,
    };
    let Some(user) = user else {
        let reason = "is no longer in the mirror (removed from Cliq since?)".to_owned();
        refused.push(refuse(None, "gone", reason));
        return None;
    };
    let changed: Vec<(&str, String)> = g
        .expect
        .iter()
        .filter_map(|(field, want)| {
            let column = Attr::from_name(field)?.mirror_column();
            let now = user.get(column);
            (now != want.as_deref()).then(|| {
                let why = format!("the mirror has {now:?} now, the part was made against {want:?}");
                (*field, why)
            })
        })
        .collect();
    if changed.is_empty() {
        return Some(u.clone());
    }
    if !g.per_field {
        let why: Vec<String> = changed.iter().map(|(f, w)| format!("{f}: {w}")).collect();
        let reason = format!("changed since the plan was made ({})", why.join("; "));
        refused.push(refuse(None, "changed_since", reason));
        return None;
    }
    for (field, why) in &changed {
        refused.push(refuse(
            Some(field),
            "changed_since",
            format!("changed since: {why}"),
        ));
    }
    let mut left = u.clone();
    left.changes
        .retain(|c| !changed.iter().any(|(f, _)| *f == c.field));
    if left.changes.is_empty() {
        return None;
    }
    left.desired_hash = plan::hash_fields(
        left.changes
            .iter()
            .map(|c| (c.cliq_key, c.desired.as_str())),
    );
    Some(left)
}

impl Run<'_> {
    /// The refused parts as `skipped` rows of the run: the trace of what a
    /// given plan did not do.
    pub(super) async fn record_refused(&mut self, refused: &[Refused]) -> Result<(), StoreError> {
        let rows: Vec<NewPush> = refused
            .iter()
            .map(|r| {
                let (user_id, field) = (r.user_id.as_deref(), r.field.as_deref());
                self.skipped_row(user_id, &r.email, r.action, field, r.code, &r.reason)
            })
            .collect();
        self.report.skipped += rows.len() as u64;
        self.store.insert_pushes(&rows, self.now()).await
    }
}

/// Push `given` (a reviewed plan file, an undo). The push lock, the
/// thresholds (`max_changes_per_run`; `opts.force` passes them), the
/// records and the progress are a normal push's; a dry run checks the
/// parts and sends nothing.
pub async fn push_given(
    store: &Store,
    client: &CliqClient,
    limits: &Limits,
    given: &Given,
    opts: &PushOptions,
    cancel: &CancellationToken,
) -> Result<PushOutcome, PushError> {
    let started = tokio::time::Instant::now();
    let mut lock = take_push_lock(store).await?;
    let (first, refused) = given.check(store, &opts.plan, limits).await?;
    // No source to compare sizes with: only the change count applies.
    if let Err(reason) = check_safety(&first, None, opts) {
        tracing::warn!(source = %given.source, %reason, "a given plan stopped by a safety threshold; nothing was sent");
        return Err(PushError::Safety(SafetyStop {
            reason,
            run_id: None,
            repeated: false,
            plan_id: None,
            failed: false,
        }));
    }
    if opts.dry_run || !opts.enabled {
        let mut report = PushReport::new(if opts.dry_run { "dry_run" } else { "disabled" });
        report.refused = refused;
        report.undoes_run = given.undoes_run;
        return Ok(PushOutcome {
            plan: first,
            report,
        });
    }
    let work = Work::Given { given, opts };
    run_plan(
        store, client, limits, &mut lock, first, work, cancel, started,
    )
    .await
}
