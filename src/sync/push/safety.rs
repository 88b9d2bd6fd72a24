//! The push's safety stops: thresholds, conflicts, held and approved
//! plans, the push lock and the source-size baseline.

use super::{PushError, PushOptions, SOURCE_BASELINE_WINDOW, SOURCE_RECORDS_KEY};
use crate::config::{OnConflict, OnThreshold};
use crate::hr::HrSource;
use crate::mirror::lease::{PushLock, PushLockError};
use crate::mirror::runs::{RunFigures, RunKind, RunStatus};
use crate::mirror::{Store, StoreError};
use crate::sync::plan::{self, Plan};

/// Why a push was stopped by a safety threshold, and the `held` run that
/// records it (`None` for a dry run, which records nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetyStop {
    /// What tripped, the plan's size, and what to do (without "held: ";
    /// `sync_runs.error` is "held: " + this).
    pub reason: String,
    pub run_id: Option<i64>,
    /// The same plan was already held by the last push run: that run was
    /// touched (`finished_at`), no new one recorded.
    pub repeated: bool,
    /// The held plan's ID (`held_plans.id`) for `cliq-sync approve ID`;
    /// `None` for a dry run and under `on_threshold = "fail"`.
    pub plan_id: Option<String>,
    /// `on_threshold = "fail"`: `run_id` is a `failed` run, not a held one.
    pub failed: bool,
}

impl SafetyStop {
    pub(super) fn held_as(&self) -> String {
        match (self.run_id, &self.plan_id) {
            (Some(id), _) if self.failed => format!(" (failed run {id})"),
            (Some(_), Some(plan)) => {
                format!(" (held as plan {plan}; release it with `cliq-sync approve {plan}`)")
            }
            (Some(id), None) => format!(" (held as run {id})"),
            _ => String::new(),
        }
    }
}

/// The plan's size as the held run's error states it.
pub(super) fn plan_size(plan: &Plan) -> String {
    format!(
        "{} planned changes ({} updates, {} adds)",
        plan.summary.changes, plan.summary.updates, plan.summary.adds
    )
}

/// Check the thresholds against a plan: `Err(reason)` when one trips.
pub fn check_safety(
    plan: &Plan,
    previous_records: Option<u64>,
    opts: &PushOptions,
) -> Result<(), String> {
    if opts.force {
        return Ok(());
    }
    let n = plan.summary.hr_records as u64;
    if let Some(prev) = previous_records {
        let floor = (1.0 - opts.max_source_drop) * prev as f64;
        if (n as f64) < floor {
            return Err(format!(
                "the HR source {} has {n} records, fewer than (1 − [push] max_source_drop {}) × {prev} \
                 (the largest source pushed in the last 7 days, or since the last forced push) \
                 = {floor:.0}: is the export truncated? Its {} were not sent. Check it, or run \
                 `cliq-sync push --force` to approve this size as the new reference",
                plan.source,
                opts.max_source_drop,
                plan_size(plan)
            ));
        }
    }
    let changes = plan.summary.changes as u64;
    if changes > u64::from(opts.max_changes_per_run) {
        return Err(format!(
            "{}, more than [push] max_changes_per_run = {}; review them with `cliq-sync plan`, \
             then run `cliq-sync push --force`",
            plan_size(plan),
            opts.max_changes_per_run
        ));
    }
    check_conflicts(plan, opts)
}

/// `[push] on_conflict = "hold"`: a plan that would overwrite changes made
/// in Cliq since our last push of them waits for a person.
pub(super) fn check_conflicts(plan: &Plan, opts: &PushOptions) -> Result<(), String> {
    let n = plan.summary.conflicts;
    if opts.plan.on_conflict != OnConflict::Hold || n == 0 {
        return Ok(());
    }
    Err(format!(
        "{n} planned change{} would overwrite a change made in Cliq since our last push \
         ({}), and [push] on_conflict = \"hold\"; {} were not sent. Review them with \
         `cliq-sync plan`, then run `cliq-sync push --force` to overwrite them, or set \
         [push] on_conflict = \"skip\" to keep Cliq's values",
        if n == 1 { "" } else { "s" },
        plan::conflicts::describe(plan, 10),
        plan_size(plan)
    ))
}

/// What identifies a held plan: the same reason for the same planned
/// writes is the same incident (see [`Store::hold_push`]).
pub(super) fn held_plan_hash(plan: &Plan, reason: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(reason.as_bytes());
    h.update(serde_json::to_vec(&(&plan.updates, &plan.adds)).unwrap_or_default());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Record a push stopped by a threshold as a `held` run (once per
/// incident: the same plan held again touches the existing row) with its
/// plan kept for `approve`, and return the error that says so (the caller
/// logs or prints it).
pub(crate) async fn hold(
    store: &Store,
    plan: &Plan,
    hr: &HrSource,
    reason: String,
) -> Result<PushError, PushError> {
    let hash = held_plan_hash(plan, &reason);
    let error = format!("held: {reason}");
    let now = store.clock().now();
    let (run_id, repeated) = store.hold_push(&hash, &error, hr.len() as u64, now).await?;
    let plan_id = crate::sync::held_plan::keep(store, run_id, plan, &reason).await?;
    Ok(PushError::Safety(SafetyStop {
        reason,
        run_id: Some(run_id),
        repeated,
        plan_id: Some(plan_id),
        failed: false,
    }))
}

/// `on_threshold = "fail"`: a push over a threshold is a `failed` run,
/// every time (no incident deduplication, no held plan).
pub(super) async fn fail_threshold(store: &Store, hr: &HrSource, reason: String) -> PushError {
    let now = store.clock().now();
    let recorded = async {
        let run_id = store.start_run(RunKind::Push, now).await?;
        let figures = RunFigures {
            users_seen: hr.len() as u64,
            error: Some(format!("safety threshold: {reason}")),
            ..Default::default()
        };
        store
            .finish_run(run_id, RunStatus::Failed, &figures, now)
            .await?;
        Ok::<_, StoreError>(run_id)
    };
    match recorded.await {
        Ok(run_id) => PushError::Safety(SafetyStop {
            reason,
            run_id: Some(run_id),
            repeated: false,
            plan_id: None,
            failed: true,
        }),
        Err(e) => e.into(),
    }
}

/// Check the thresholds: `Ok(Some(id))` when only the approval of held
/// plan `id` lets this plan pass. An approved plan passes (a dry run too);
/// otherwise a dry run records nothing and a real one is held or failed.
pub(super) async fn thresholds(
    store: &Store,
    first: &Plan,
    hr: &HrSource,
    opts: &PushOptions,
) -> Result<Option<String>, PushError> {
    let previous = source_baseline(store).await?;
    let Err(reason) = check_safety(first, previous, opts) else {
        return Ok(None);
    };
    match crate::sync::held_plan::approval_for(store, first).await? {
        Some(id) => {
            tracing::info!(plan = %id, "push over a safety threshold released by `cliq-sync approve {id}`");
            Ok(Some(id))
        }
        None if opts.dry_run => Err(PushError::Safety(SafetyStop {
            reason,
            run_id: None,
            repeated: false,
            plan_id: None,
            failed: false,
        })),
        None => Err(over_threshold(store, first, hr, opts, reason).await?),
    }
}

/// A plan over a threshold and not approved: held or failed per
/// `[push] on_threshold`.
pub(super) async fn over_threshold(
    store: &Store,
    plan: &Plan,
    hr: &HrSource,
    opts: &PushOptions,
    reason: String,
) -> Result<PushError, PushError> {
    Ok(match opts.on_threshold {
        OnThreshold::Hold => hold(store, plan, hr, reason).await?,
        OnThreshold::Fail => fail_threshold(store, hr, reason).await,
    })
}

/// The mirror's push lock, held by the caller for the whole push, planning
/// included (a plan made while another push runs would re-send its
/// changes). Holding it, any push row still `running` is a dead process's
/// or, if its owner is alive, one of a version without the lock.
pub(crate) async fn take_push_lock(store: &Store) -> Result<PushLock, PushError> {
    let lock = match PushLock::try_acquire(store.path()) {
        Ok(lock) => lock,
        Err(PushLockError::Held(holder)) => return Err(PushError::Busy(holder.to_string())),
        Err(PushLockError::Io(e)) => return Err(e.into()),
    };
    // A push run of a process killed since we opened the mirror would keep
    // its unknown-outcome attempts from being reconciled.
    let abandoned = store.abandon_dead_runs(store.clock().now()).await?;
    if abandoned > 0 {
        tracing::warn!(
            runs = abandoned,
            "runs left unfinished by processes that have ended were marked failed"
        );
    }
    if let Some(run) = store.running_push().await? {
        return Err(PushError::Busy(format!(
            "run {run}, started by a live process"
        )));
    }
    Ok(lock)
}

/// The source size a push is compared with: the largest pushed in the
/// last [`SOURCE_BASELINE_WINDOW`] since the last forced push (a baseline
/// taken from the previous push alone creeps down: 100 → 85 → 73 → 62 → 53
/// passes a 20% check at every step). A mirror from before that history
/// falls back to the last pushed size.
pub(crate) async fn source_baseline(store: &Store) -> Result<Option<u64>, StoreError> {
    let since = store.clock().now() - SOURCE_BASELINE_WINDOW;
    if let Some(n) = store.push_source_baseline(since).await? {
        return Ok(Some(n));
    }
    Ok(store
        .state(SOURCE_RECORDS_KEY)
        .await?
        .and_then(|v| v.parse::<u64>().ok()))
}
