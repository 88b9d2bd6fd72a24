//! Diff: the users the join let through ([`crate::mirror::plan_join`]),
//! each met with their HR record and compared field by field, then the HR
//! people with no user. Only the differences stay in memory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use super::index::Index;
use super::resolve::{resolve, Resolved};
use super::{
    min_duration, scope, Blocked, Excluded, FieldChange, NotInHr, Plan, PlanOptions, PlanSummary,
    PlannedAdd, PlannedUpdate,
};
use crate::cliq::quotas::Limits;
use crate::cliq::Endpoint;
use crate::hr::{Attr, HrRecord, ValueKind};
use crate::mirror::pushes::{MirrorUser, PushFailure};
use crate::mirror::Column;

/// The plan being made, a user (or an HR person) at a time.
pub(super) struct Differ<'a> {
    source: &'a Path,
    hr_records: usize,
    index: &'a Index,
    opts: &'a PlanOptions,
    managed: Vec<Attr>,
    /// Users sharing an email with another live user, by email, with the
    /// HR record of that email: met as a group once all are in.
    shared: BTreeMap<String, (Vec<MirrorUser>, Option<HrRecord>)>,
    /// HR people no live user has the email of.
    unmatched_count: usize,
    failures: HashMap<(String, &'a str), &'a PushFailure>,
    recent_adds: HashSet<&'a str>,
    pub updates: Vec<PlannedUpdate>,
    pub adds: Vec<PlannedAdd>,
    pub blocked: Vec<Blocked>,
    pub missing: Vec<String>,
    pub pending: Vec<String>,
    pub not_in_hr: Vec<NotInHr>,
    pub excluded: Vec<Excluded>,
    /// Planned manager changes: user id → manager id (for the cycle check).
    pub desired_managers: HashMap<String, String>,
}

impl<'a> Differ<'a> {
    /// For the HR source at `source` of `hr_records` people.
    pub fn new(
        (source, hr_records): (&'a Path, usize),
        index: &'a Index,
        failures: &'a [PushFailure],
        recent_adds: &'a [String],
        opts: &'a PlanOptions,
    ) -> Self {
        Differ {
            source,
            hr_records,
            index,
            opts,
            managed: Attr::ALL
                .into_iter()
                .filter(|a| opts.managed.contains(a))
                .collect(),
            shared: BTreeMap::new(),
            unmatched_count: 0,
            failures: failures
                .iter()
                .map(|f| ((f.email_id.to_lowercase(), f.action.as_str()), f))
                .collect(),
            recent_adds: recent_adds.iter().map(String::as_str).collect(),
            updates: Vec::new(),
            adds: Vec::new(),
            blocked: Vec::new(),
            missing: Vec::new(),
            pending: Vec::new(),
            not_in_hr: Vec::new(),
            excluded: Vec::new(),
            desired_managers: HashMap::new(),
        }
    }

    /// The managed attributes (the join compares these).
    pub fn managed(&self) -> &[Attr] {
        &self.managed
    }

    /// Take in one live user of the mirror, with their HR record if any;
    /// `shared_email`: other live users have the same email.
    pub fn user(&mut self, u: MirrorUser, rec: Option<HrRecord>, shared_email: bool) {
        if shared_email {
            let email = u.email.clone().unwrap_or_default();
            let group = self.shared.entry(email).or_default();
            group.0.push(u);
            group.1 = group.1.take().or(rec);
            return;
        }
        match rec {
            None => self.not_in_hr.push(not_in_hr(u)),
            Some(rec) => {
                if !self.out_of_scope(&rec, std::slice::from_ref(&u)) {
                    self.matched_one(&rec, &u);
                }
            }
        }
    }

    /// Take in one HR person no live user has the email of.
    pub fn unmatched_person(&mut self, rec: &HrRecord) {
        self.unmatched_count += 1;
        if !self.out_of_scope(rec, &[]) {
            self.unmatched(rec);
        }
    }

    /// After the last user and person: the emails shared by several users.
    pub fn finish(&mut self) {
        for (_, (mut group, rec)) in std::mem::take(&mut self.shared) {
            // The mirror gives them in no set order.
            group.sort_unstable_by(|a, b| a.id.cmp(&b.id));
            let Some(rec) = rec else {
                self.not_in_hr.extend(group.into_iter().map(not_in_hr));
                continue;
            };
            if self.out_of_scope(&rec, &group) {
                continue;
            }
            self.blocked.push(Blocked {
                email: rec.email.clone(),
                user_id: None,
                field: None,
                kind: "duplicate_in_cliq",
                reason: format!(
                    "{} Cliq users in the mirror have this email ({}); nothing is pushed for it",
                    group.len(),
                    group
                        .iter()
                        .map(|u| u.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }

    /// Whether `scope` keeps the push from writing `rec` (then listed). A
    /// person's departments are those of their users in the mirror and the
    /// one their HR record gives (by name, or by id through the mirror's
    /// names): either being excluded protects them.
    fn out_of_scope(&mut self, rec: &HrRecord, users: &[MirrorUser]) -> bool {
        let scope = &self.opts.scope;
        if scope.is_everyone() {
            return false;
        }
        let mut depts: Vec<scope::DepartmentOf<'_>> = users
            .iter()
            .filter_map(|u| u.get(Column::DepartmentName))
            .map(scope::DepartmentOf::Mirror)
            .collect();
        if let Some(v) = rec.get(Attr::Department) {
            let name = match v.kind {
                ValueKind::Name => Some(v.text.as_ref()),
                _ => self
                    .index
                    .departments
                    .by_id
                    .get(v.text.as_ref())
                    .map(String::as_str),
            };
            depts.extend(name.map(scope::DepartmentOf::Hr));
        }
        let Some(o) = scope.check(&rec.email, &depts) else {
            return false;
        };
        let user_id = match users {
            [u] => Some(u.id.clone()),
            _ => None,
        };
        self.excluded.push(Excluded {
            email: rec.email.clone(),
            user_id,
            rule: o.rule,
            reason: o.reason,
        });
        true
    }

    /// The one Cliq user of an HR person: the fields that differ. The hash
    /// and the remembered-failure check wait for the cycle check
    /// ([`Differ::settle`]).
    fn matched_one(&mut self, rec: &HrRecord, u: &MirrorUser) {
        let mut changes = Vec::new();
        for k in 0..self.managed.len() {
            let a = self.managed[k];
            match resolve(self.index, rec, a) {
                None => {}
                Some(Resolved::Blocked(kind, reason)) => self.blocked.push(Blocked {
                    email: rec.email.clone(),
                    user_id: Some(u.id.clone()),
                    field: Some(a.name()),
                    kind,
                    reason,
                }),
                Some(Resolved::Value(desired, desired_name)) => {
                    let current = u.get(a.mirror_column());
                    if current == Some(desired.as_str()) {
                        continue;
                    }
                    if a == Attr::ReportingTo {
                        self.desired_managers.insert(u.id.clone(), desired.clone());
                    }
                    changes.push(FieldChange {
                        field: a.name(),
                        cliq_key: a.cliq_key(),
                        current: current.map(str::to_owned),
                        desired,
                        current_name: a.name_column().and_then(|c| u.get(c)).map(str::to_owned),
                        desired_name,
                        conflict: None,
                    });
                }
            }
        }
        if !changes.is_empty() {
            // A Vec grows to room for four: most people change one field,
            // and a plan of 100,000 updates would hold three spare each.
            changes.shrink_to_fit();
            self.updates.push(PlannedUpdate {
                user_id: u.id.clone(),
                email: rec.email.clone(),
                changes,
                desired_hash: String::new(),
            });
        }
    }
}

impl Differ<'_> {
    /// An HR person with no user in Cliq: pending, missing or an add.
    fn unmatched(&mut self, rec: &HrRecord) {
        if self.recent_adds.contains(rec.email.as_str()) {
            self.pending.push(rec.email.clone());
            return;
        }
        if !self.opts.create_missing {
            self.missing.push(rec.email.clone());
            return;
        }
        let mut fields = BTreeMap::new();
        for &a in &self.managed {
            match resolve(self.index, rec, a) {
                None => {}
                Some(Resolved::Blocked(kind, reason)) => self.blocked.push(Blocked {
                    email: rec.email.clone(),
                    user_id: None,
                    field: Some(a.name()),
                    kind,
                    reason,
                }),
                Some(Resolved::Value(v, _)) => {
                    fields.insert(a.cliq_key(), v);
                }
            }
        }
        let desired_hash = super::hash_fields(fields.iter().map(|(k, v)| (*k, v.as_str())));
        if let Some(f) = self.failures.get(&(rec.email.clone(), "add")) {
            if f.desired_hash == desired_hash {
                self.blocked.push(Blocked {
                    email: rec.email.clone(),
                    user_id: None,
                    field: None,
                    kind: "failed_before",
                    reason: format!(
                        "Cliq refused to add this person at {} ({}); not retried until the HR values change, push.retry_failed_after has passed, or `push --retry-failed`",
                        f.at,
                        f.error_code.as_deref().unwrap_or("error")
                    ),
                });
                return;
            }
        }
        self.adds.push(PlannedAdd {
            email: rec.email.clone(),
            fields,
            desired_hash,
        });
    }

    /// Once the cycles are known: block the manager changes that close one,
    /// hash what is left, and hold back what Cliq refused before.
    pub fn settle(&mut self, loops: &HashMap<String, (&'static str, String)>) {
        // In place: a second list of every update would double the plan's
        // largest part for a moment.
        let mut blocked = std::mem::take(&mut self.blocked);
        let failures = &self.failures;
        self.updates.retain_mut(|u| {
            if let Some((kind, reason)) = loops.get(&u.user_id) {
                u.changes.retain(|c| c.field != Attr::ReportingTo.name());
                blocked.push(Blocked {
                    email: u.email.clone(),
                    user_id: Some(u.user_id.clone()),
                    field: Some(Attr::ReportingTo.name()),
                    kind,
                    reason: reason.clone(),
                });
            }
            if u.changes.is_empty() {
                return false;
            }
            u.desired_hash =
                super::hash_fields(u.changes.iter().map(|c| (c.cliq_key, c.desired.as_str())));
            let Some(f) = failures
                .get(&(u.email.clone(), "update"))
                .filter(|f| f.desired_hash == u.desired_hash)
            else {
                return true;
            };
            blocked.push(Blocked {
                email: u.email.clone(),
                user_id: Some(u.user_id.clone()),
                field: None,
                kind: "failed_before",
                reason: format!(
                    "Cliq refused these values at {} ({}{}); not retried until the HR values change, push.retry_failed_after has passed, or `push --retry-failed`",
                    f.at,
                    f.error_code.as_deref().unwrap_or("error"),
                    f.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
                ),
            });
            false
        });
        self.blocked = blocked;
    }
}

impl Differ<'_> {
    /// The plan, sorted, with its totals; `live` is the mirror's live users.
    pub fn into_plan(mut self, live: usize, limits: &Limits) -> Plan {
        self.not_in_hr
            .sort_by(|a, b| a.email.cmp(&b.email).then(a.user_id.cmp(&b.user_id)));
        self.updates.sort_by(|a, b| a.email.cmp(&b.email));
        self.adds.sort_by(|a, b| a.email.cmp(&b.email));
        self.blocked
            .sort_by(|a, b| a.email.cmp(&b.email).then(a.field.cmp(&b.field)));
        self.missing.sort();
        self.pending.sort();
        self.excluded.sort_by(|a, b| a.email.cmp(&b.email));
        let opts = self.opts;
        let matched = self.hr_records - self.unmatched_count;
        let update_requests = self.updates.len();
        let add_requests = self.adds.len().div_ceil(opts.add_batch_size.max(1));
        let min = min_duration(limits, Endpoint::UpdateUser, update_requests)
            + min_duration(limits, Endpoint::AddUsers, add_requests);
        let summary = PlanSummary {
            hr_records: self.hr_records,
            cliq_users: live,
            matched,
            updates: self.updates.len(),
            field_changes: self.updates.iter().map(|u| u.changes.len()).sum(),
            adds: self.adds.len(),
            changes: self.updates.len() + self.adds.len(),
            blocked: self.blocked.len(),
            missing_in_cliq: self.missing.len(),
            pending_adds: self.pending.len(),
            not_in_hr: self.not_in_hr.len(),
            excluded: self.excluded.len(),
            conflicts: 0,
            skipped_conflicts: 0,
            update_requests,
            add_requests,
            min_duration_secs: min.as_secs_f64(),
        };
        Plan {
            source: self.source.display().to_string(),
            managed_fields: self.managed.iter().map(|a| a.name()).collect(),
            create_missing: opts.create_missing,
            summary,
            updates: self.updates,
            adds: self.adds,
            blocked: self.blocked,
            missing_in_cliq: self.missing,
            pending_adds: self.pending,
            not_in_hr: self.not_in_hr,
            excluded: self.excluded,
            on_conflict: opts.on_conflict,
            skipped_conflicts: Vec::new(),
        }
    }
}

/// A user HR does not list (the time since is filled in later).
fn not_in_hr(u: MirrorUser) -> NotInHr {
    NotInHr {
        user_id: u.id,
        email: u.email,
        status: u.status,
        missing_since: None,
        missing_seconds: None,
    }
}
