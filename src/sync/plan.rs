//! The plan: what a push would change in Cliq, per user and field.
//!
//! HR records are joined to the mirror by email (case-insensitive; removed
//! users do not count as being in Cliq). For each managed attribute with a
//! non-empty HR value, the normalised value (trimmed; emails lowercased;
//! names resolved to ids) is compared with the mirror's column; a difference
//! is a change. By-name values resolve through the mirror itself:
//! `department`/`designation` through `users.department_name → department_id`
//! (case-insensitive), `reporting_to_email` through `users.email_id → id`. A
//! name that resolves to nothing or to several ids blocks that field (the
//! user's other fields still go), with the reason.
//!
//! A plan writes nothing to Cliq. In the mirror it writes one piece of
//! bookkeeping: since when each Cliq user has been missing from HR
//! (`hr_missing`, see [`crate::mirror::leavers`]).
//!
//! A field that a pull saw change in Cliq after our last push of it (a hand
//! edit) is a conflict: marked, skipped or held per `[push] on_conflict`
//! (see `plan/conflicts.rs`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::cliq::quotas::Limits;
use crate::cliq::Endpoint;
use crate::config::OnConflict;
use crate::hr::{from_staged, Attr, HrSource, ValueKind};
use crate::mirror::plan_join::{JoinSpec, PlanRead};
use crate::mirror::pushes::PushFailure;
use crate::mirror::{Store, StoreError};

/// What a plan needs besides the HR source and the mirror.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// The attributes a push may touch (`[hr] managed_fields`).
    pub managed: Vec<Attr>,
    /// Add HR people who are not in Cliq (`[push] create_missing`).
    pub create_missing: bool,
    /// People per `POST /users`.
    pub add_batch_size: usize,
    /// A remembered permanent failure older than this is planned again
    /// (`[push] retry_failed_after`).
    pub retry_failed_after: Duration,
    /// Plan every remembered failure again now (`push --retry-failed`).
    pub retry_failed: bool,
    /// Who may be written (`[push] include`, `exclude`, `exclude_departments`).
    pub scope: scope::Scope,
    /// A field changed in Cliq since our last push of it (`[push] on_conflict`).
    pub on_conflict: OnConflict,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            managed: Attr::ALL.to_vec(),
            create_missing: false,
            add_batch_size: 10,
            retry_failed_after: Duration::from_secs(24 * 3600),
            retry_failed: false,
            scope: scope::Scope::default(),
            on_conflict: OnConflict::Overwrite,
        }
    }
}

impl PlanOptions {
    pub fn from_settings(s: &crate::config::Settings) -> Result<Self, String> {
        let managed =
            crate::hr::managed_attrs(s.hr.as_ref().and_then(|h| h.managed_fields.as_deref()))?;
        Ok(Self {
            managed,
            create_missing: s.push.create_missing,
            add_batch_size: s.push.add_batch_size.max(1),
            retry_failed_after: s.push.retry_failed_after,
            retry_failed: false,
            // Checked at load already; a message naming the key all the same.
            scope: scope::Scope::from_settings(&s.push).map_err(|e| e.to_string())?,
            on_conflict: s.push.on_conflict,
        })
    }
}

/// One field to change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// The attribute (`department`, `work_location`, …).
    pub field: &'static str,
    /// The key sent to Cliq (`department_id`, `work_location`, …).
    pub cliq_key: &'static str,
    /// The mirror's value (for references: the id).
    pub current: Option<String>,
    /// The value to send.
    pub desired: String,
    /// For references: the name of the current and desired object, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired_name: Option<String>,
    /// Set when this change overwrites a change made in Cliq since our
    /// last push of the field. Boxed: rare, and five strings wide, it would
    /// otherwise more than double every change a large plan holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflict: Option<Box<Conflict>>,
}

/// A hand edit in Cliq that a change would overwrite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// When a pull first saw the value Cliq has now (RFC 3339; the mirror
    /// knows when it observed a change, not the second it was made).
    pub changed_at: String,
    /// The pull that saw it: `full` or `incremental`.
    pub observed_by: String,
    /// Cliq's value now (for references: the id).
    pub cliq_value: Option<String>,
    /// What our last push of the field set, and when.
    pub pushed_value: Option<String>,
    pub pushed_at: String,
}

/// A change left out because the field was changed in Cliq since our
/// last push of it (`[push] on_conflict = "skip"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedConflict {
    pub email: String,
    pub user_id: String,
    pub field: &'static str,
    /// HR's value, not sent.
    pub desired: String,
    pub conflict: Conflict,
}

/// An update of one Cliq user: one `PUT /users/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedUpdate {
    pub user_id: String,
    pub email: String,
    pub changes: Vec<FieldChange>,
    /// Hash of the values to send (a remembered permanent failure with the
    /// same hash suppresses the update).
    pub desired_hash: String,
}

/// A person to add (`POST /users`, in batches).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedAdd {
    pub email: String,
    /// Cliq key → value (without `email_id`).
    pub fields: BTreeMap<&'static str, String>,
    pub desired_hash: String,
}

/// Something the plan will not do, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocked {
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The attribute concerned; `None` for the whole person.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// `unresolved`, `ambiguous`, `failed_before`, `duplicate_in_cliq`,
    /// `self_report` (the manager would be the person), `cycle` (a
    /// management cycle once the plan is applied).
    pub kind: &'static str,
    pub reason: String,
}

/// An HR person the push never writes (`[push] include`, `exclude`,
/// `exclude_departments`), and the rule that matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Excluded {
    pub email: String,
    /// The Cliq user, if the mirror has exactly one with this email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// `exclude "svc-*@example.com"`, `exclude_departments "Board"`,
    /// `not in include`.
    pub rule: String,
    pub reason: String,
}

/// A Cliq user the HR source does not mention (reported, never touched:
/// the Users API has no deactivation, so a leaver is for an operator to
/// deactivate in Cliq's admin console).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotInHr {
    pub user_id: String,
    pub email: Option<String>,
    pub status: Option<String>,
    /// The first plan that found them missing from HR (RFC 3339 UTC).
    pub missing_since: Option<String>,
    /// How long ago that was, when this plan was made.
    pub missing_seconds: Option<i64>,
}

/// Totals, requests and the minimum time the push takes under the quotas.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanSummary {
    pub hr_records: usize,
    pub cliq_users: usize,
    pub matched: usize,
    pub updates: usize,
    pub field_changes: usize,
    pub adds: usize,
    /// Updates + adds: what `max_changes_per_run` is compared with.
    pub changes: usize,
    pub blocked: usize,
    pub missing_in_cliq: usize,
    pub pending_adds: usize,
    pub not_in_hr: usize,
    /// HR people out of the push's scope (never written, not counted in `changes`).
    pub excluded: usize,
    /// Planned changes that overwrite a change made in Cliq.
    pub conflicts: usize,
    /// Changes left out for such a conflict (`on_conflict = "skip"`).
    pub skipped_conflicts: usize,
    pub update_requests: usize,
    pub add_requests: usize,
    /// The k-th request of an endpoint (from 0) cannot start before
    /// floor(k / N) enforced windows; updates run before adds.
    pub min_duration_secs: f64,
}

/// The whole plan. Serialised as the stable `plan --json` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub source: String,
    pub managed_fields: Vec<&'static str>,
    pub create_missing: bool,
    pub summary: PlanSummary,
    pub updates: Vec<PlannedUpdate>,
    pub adds: Vec<PlannedAdd>,
    pub blocked: Vec<Blocked>,
    /// HR people not in Cliq who are not added (`create_missing = false`).
    pub missing_in_cliq: Vec<String>,
    /// HR people added by an earlier push, waiting for a full pull to see them.
    pub pending_adds: Vec<String>,
    pub not_in_hr: Vec<NotInHr>,
    /// HR people out of the push's scope, with the rule that matched.
    pub excluded: Vec<Excluded>,
    /// `[push] on_conflict` the plan was made with.
    pub on_conflict: OnConflict,
    /// Changes not planned: changed in Cliq since our last push of them.
    pub skipped_conflicts: Vec<SkippedConflict>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.updates.is_empty() && self.adds.is_empty()
    }

    pub fn min_duration(&self) -> Duration {
        Duration::from_secs_f64(self.summary.min_duration_secs)
    }
}

/// Minimum time for `n` requests of `ep` starting now on an idle budget.
pub fn min_duration(limits: &Limits, ep: Endpoint, n: usize) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    let per = limits.get(ep).requests.max(1) as usize;
    limits.effective_window(ep) * ((n - 1) / per) as u32
}

/// Plan against the mirror: index → resolve → diff, in one read of it.
///
/// The HR source is staged on disk and joined with the mirror in SQL
/// ([`crate::mirror::plan_join`]): the index asks for the names and the
/// managers HR refers to, the diff meets only the users whose HR record
/// may change something (and the leavers and newcomers) and keeps only
/// the differences, then the manager chains above the changed people are
/// followed for cycles. Memory follows the work, not the org or HR.
pub async fn plan(
    store: &Store,
    hr: &HrSource,
    opts: &PlanOptions,
    limits: &Limits,
) -> Result<Plan, StoreError> {
    let failures = still_remembered(store.push_failures().await?, opts, store.clock().now());
    let recent_adds = store.recent_adds().await?;
    let mut read = store.plan_read(hr.stage()).await?;
    let index = index::Index::read(&mut read).await?;
    let source = (hr.path.as_path(), hr.len());
    let mut differ = diff::Differ::new(source, &index, &failures, &recent_adds, opts);
    let spec = JoinSpec {
        compared: differ
            .managed()
            .iter()
            .map(|a| (a.index(), a.mirror_column(), ValueKind::Direct.code()))
            .collect(),
        filter: opts.scope.is_everyone(),
    };
    read.candidates(&spec, |c| {
        differ.user(c.user, c.record.map(from_staged), c.shared_email)
    })
    .await?;
    read.unmatched(|r| differ.unmatched_person(&from_staged(r)))
        .await?;
    differ.finish();
    let loops = manager_loops(&mut read, &differ.desired_managers).await?;
    read.finish().await?;
    differ.settle(&loops);
    let mut plan = differ.into_plan(index.live, limits);
    conflicts::apply(store, &mut plan, opts, limits).await?;
    note_missing(store, &mut plan.not_in_hr).await?;
    Ok(plan)
}

/// The planned manager changes that close a loop, reading the chains
/// above the changed people a round at a time.
async fn manager_loops(
    read: &mut PlanRead<'_>,
    desired: &HashMap<String, String>,
) -> Result<HashMap<String, (&'static str, String)>, StoreError> {
    let mut links = HashMap::new();
    loop {
        match resolve::manager_loops(desired, &links) {
            Ok(loops) => return Ok(loops),
            Err(ids) => {
                let mut found = read.manager_links(&ids).await?;
                links.extend(ids.into_iter().map(|id| {
                    let link = found.remove(&id);
                    (id, link)
                }));
            }
        }
    }
}

/// Remember since when each leaver has been missing from HR and put it in
/// the plan. A plan only runs on an HR source that loaded whole, so a
/// broken export never starts anyone's clock.
async fn note_missing(store: &Store, not_in_hr: &mut [NotInHr]) -> Result<(), StoreError> {
    let now = store.clock().now();
    let ids: Vec<(String, Option<String>)> = not_in_hr
        .iter()
        .map(|u| (u.user_id.clone(), u.email.clone()))
        .collect();
    let since = store.note_hr_missing(&ids, now).await?;
    for u in not_in_hr {
        u.missing_since = since.get(&u.user_id).cloned();
        u.missing_seconds = u
            .missing_since
            .as_deref()
            .and_then(crate::clock::from_db)
            .map(|s| (now - s).num_seconds().max(0));
    }
    Ok(())
}

/// The remembered failures that still suppress a change: none with
/// `--retry-failed`, else those younger than `retry_failed_after` (a
/// refusal may have been Cliq's passing trouble, or the reference may exist
/// by now). A failure whose time cannot be read is kept.
fn still_remembered(
    failures: Vec<PushFailure>,
    opts: &PlanOptions,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<PushFailure> {
    if opts.retry_failed {
        return Vec::new();
    }
    let max_age =
        chrono::Duration::from_std(opts.retry_failed_after).unwrap_or(chrono::Duration::MAX);
    failures
        .into_iter()
        .filter(|f| {
            crate::clock::from_db(&f.at).is_none_or(|at| now.signed_duration_since(at) < max_age)
        })
        .collect()
}

/// Hash of `key=value` lines, sorted by key.
pub fn hash_fields<'a>(fields: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut v: Vec<(&str, &str)> = fields.collect();
    v.sort();
    let mut h = Sha256::new();
    for (k, val) in v {
        h.update(k.as_bytes());
        h.update(b"=");
        h.update(val.as_bytes());
        h.update(b"\n");
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

pub mod conflicts;
mod diff;
mod index;
#[cfg(test)]
mod memory_tests;
mod render;
mod resolve;
// The push scope is parsed (and so validated) with the settings.
pub use crate::config::scope;
pub use render::render;
#[cfg(test)]
mod tests;
