//! The push: HR source → Cliq, one `PUT /users/{id}` per changed user
//! carrying only the changed fields, adds batched through `POST /users`.
//! Every request goes through the quota scheduler (inside the client), so a
//! 500-update push simply takes its ~25 minutes at 20/min.
//!
//! ## Records
//! Each attempt is a `pushes` row: `planned` *before* the request is sent,
//! then `applied` or `failed` (with `error_code`); blocked and suppressed
//! items get `skipped` rows. A success updates the mirror row at once (the
//! changed columns, and the same values patched into `raw_json`) with
//! `user_changes` rows of source `push`. A permanent refusal is remembered in
//! `push_failures` with a hash of the values sent: the plan suppresses the
//! same change until the HR values change.
//!
//! ## Resuming, and never sending a change twice
//! The plan is recomputed from the mirror at every run, and the mirror is
//! updated at each success, so a push stopped halfway (cancelled, killed,
//! Cliq failing) continues next time with exactly what is left. The one
//! gap is an attempt whose outcome was never recorded: the request may have
//! reached Cliq just before the process died, or timed out after reaching
//! it. Such attempts are the `planned` rows of runs that ended. Before
//! planning, each one is **reconciled**: for an update, `GET /users/{id}`
//! (quota: 20/min, its own endpoint) refreshes the mirror row; if Cliq already
//! has the desired values the row becomes `applied` (`error_code`
//! `reconciled`) and nothing is re-sent, otherwise `skipped` (`not_applied`)
//! and the recomputed plan sends it once. The same re-check runs *within*
//! a run when a write's answer is lost after sending (the client's
//! `OutcomeUnknown`): an update is re-checked with `GET /users/{id}`, an
//! add batch with one `GET /users?status=pending` listing, and only what
//! Cliq does not have is sent again, once. An add left `planned` by a run
//! that ended is re-sent; Cliq then answers
//! `email.activeuser` / `email.pendinguser`, which the push counts as
//! "already there" (`applied`, with that code), never as a failure. An add
//! that succeeded is not re-planned while the mirror has not seen the person
//! yet (until the next complete full pull).
//!
//! ## Safety
//! `push.enabled = false`: plan only. More planned changes (updates + adds)
//! than `max_changes_per_run`, or an HR source with fewer records than
//! (1 − `max_source_drop`) × the largest source pushed in the last 7 days
//! (since the last forced push), stop the push (exit 3) unless forced. Only one push runs at a time per mirror.
//! A stopped push (not a dry run) is a `held` run whose `error` gives the
//! reason and the plan's size; the same plan held again by the next push
//! is the same incident and updates that row's `finished_at` instead of
//! adding one (so a daemon ticking every 15 minutes records it once).
//! Under `[push] on_threshold = "hold"` (the default) its plan is kept for
//! `cliq-sync approve` (see [`crate::sync::approve`]): a plan approved there
//! passes the thresholds once, when a push plans exactly it; under
//! `"fail"` a push over a threshold is a `failed` run every time.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use serde::Serialize;
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use crate::cliq::client::{CliqClient, ListEvent};
use crate::cliq::error::CliqError;
use crate::cliq::models::{BatchResult, Fields, ListUsersParams, UserFields, UserStatus};
use crate::cliq::quotas::Limits;
use crate::config::{OnConflict, OnThreshold};
use crate::hr::{Attr, HrSource};
use crate::mirror::lease::{LeaseError, PushLock, PushLockError};
use crate::mirror::progress::RunProgress;
use crate::mirror::pushes::{NewPush, PushFailure, PushStatus};
use crate::mirror::runs::{RunFigures, RunKind, RunStatus};
use crate::mirror::users::{ChangeSource, FlatUser};
use crate::mirror::{Store, StoreError};
use crate::sync::plan::{self, Plan, PlanOptions, PlannedAdd, PlannedUpdate};
use crate::sync::progress::{self, Tracker};

mod given;
pub use given::{push_given, Given, GivenUpdate, Refused};

/// `sync_state` key: record count of the last pushed source.
pub const SOURCE_RECORDS_KEY: &str = "push.source_records";

/// How far back the source-drop baseline looks: the largest source pushed
/// in this window (since the last forced push) is the reference.
pub const SOURCE_BASELINE_WINDOW: chrono::Duration = chrono::Duration::days(7);

/// Add answers that mean "this person is already in the org".
pub const ALREADY_THERE: [&str; 2] = ["email.activeuser", "email.pendinguser"];

#[derive(Debug, Clone)]
pub struct PushOptions {
    pub plan: PlanOptions,
    /// `[push] enabled`.
    pub enabled: bool,
    /// Plan and check the thresholds, send nothing, record nothing.
    pub dry_run: bool,
    /// Pass the safety thresholds.
    pub force: bool,
    pub max_changes_per_run: u32,
    pub max_source_drop: f64,
    /// `[push] on_threshold`: hold a plan over a threshold, or fail.
    pub on_threshold: OnThreshold,
}

impl PushOptions {
    pub fn from_settings(
        s: &crate::config::Settings,
        dry_run: bool,
        force: bool,
    ) -> Result<Self, String> {
        Ok(Self {
            plan: PlanOptions::from_settings(s)?,
            enabled: s.push.enabled,
            dry_run,
            force,
            max_changes_per_run: s.push.max_changes_per_run,
            max_source_drop: s.push.max_source_drop,
            on_threshold: s.push.on_threshold,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// A safety threshold stopped the push (exit code 3); unless it was a
    /// dry run, it is recorded as a `held` push run.
    #[error("push stopped by a safety threshold{}: {}", .0.held_as(), .0.reason)]
    Safety(SafetyStop),
    /// Another push holds the mirror's push lock (its holder named: pid,
    /// host and run). The second push does not wait: exit 1.
    #[error("another push is in progress on this mirror ({0}); try again when it has ended")]
    Busy(String),
    #[error(transparent)]
    Lock(#[from] LeaseError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One failure of a run.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FailureLine {
    pub email: String,
    pub action: &'static str,
    pub code: Option<String>,
    pub message: String,
    /// Remembered: not retried until the HR values change.
    pub permanent: bool,
}

/// What a push did.
#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    pub run_id: Option<i64>,
    /// `disabled`, `dry_run`, `ok`, `stopped` or `failed`.
    pub status: String,
    pub updates_applied: u64,
    pub adds_applied: u64,
    /// Adds answered `email.activeuser` / `email.pendinguser`.
    pub adds_already_present: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Attempts of unknown outcome found applied by a re-check.
    pub reconciled: u64,
    /// Writes of unknown outcome that a re-check found not applied, sent
    /// again (once each, in the same run).
    pub resent: u64,
    pub requests: u64,
    pub elapsed_secs: f64,
    pub error: Option<String>,
    pub failures: Vec<FailureLine>,
    /// Parts of a given plan (`push --plan`, `undo`) not sent because their
    /// mirror values changed since (or, for an undo, an add).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<Refused>,
    /// An undo: the push run it undoes (`sync_runs.undoes_run`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undoes_run: Option<i64>,
}

impl PushReport {
    fn new(status: &str) -> Self {
        PushReport {
            run_id: None,
            status: status.into(),
            updates_applied: 0,
            adds_applied: 0,
            adds_already_present: 0,
            failed: 0,
            skipped: 0,
            reconciled: 0,
            resent: 0,
            requests: 0,
            elapsed_secs: 0.0,
            error: None,
            failures: Vec::new(),
            refused: Vec::new(),
            undoes_run: None,
        }
    }

    pub fn ok(&self) -> bool {
        matches!(self.status.as_str(), "ok" | "disabled" | "dry_run")
    }
}

/// The plan the push worked from (after reconciliation) and what it did.
#[derive(Debug, Clone, Serialize)]
pub struct PushOutcome {
    pub plan: Plan,
    pub report: PushReport,
}

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
    fn held_as(&self) -> String {
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
fn plan_size(plan: &Plan) -> String {
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
fn check_conflicts(plan: &Plan, opts: &PushOptions) -> Result<(), String> {
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
fn held_plan_hash(plan: &Plan, reason: &str) -> String {
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
async fn fail_threshold(store: &Store, hr: &HrSource, reason: String) -> PushError {
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
async fn thresholds(
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
async fn over_threshold(
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

/// Run one push. At most one runs at a time per mirror, across processes
/// ([`PushError::Busy`] otherwise).
pub async fn push(
    store: &Store,
    client: &CliqClient,
    limits: &Limits,
    hr: &HrSource,
    opts: &PushOptions,
    cancel: &CancellationToken,
) -> Result<PushOutcome, PushError> {
    let started = tokio::time::Instant::now();
    let mut lock = take_push_lock(store).await?;
    let first = plan::plan(store, hr, &opts.plan, limits).await?;
    if !opts.enabled {
        return Ok(PushOutcome {
            plan: first,
            report: PushReport::new("disabled"),
        });
    }
    let approval = thresholds(store, &first, hr, opts).await?;
    if opts.dry_run {
        return Ok(PushOutcome {
            plan: first,
            report: PushReport::new("dry_run"),
        });
    }

    let work = Work::Hr { hr, opts, approval };
    run_plan(
        store, client, limits, &mut lock, first, work, cancel, started,
    )
    .await
}

/// What a run sends once the attempts of unknown outcome are settled.
enum Work<'a> {
    /// Plan again from the HR source when reconciling changed the mirror.
    Hr {
        hr: &'a HrSource,
        opts: &'a PushOptions,
        /// The held plan whose approval let this plan pass the thresholds.
        approval: Option<String>,
    },
    /// A given plan, its parts checked against the mirror right before.
    Given {
        given: &'a Given,
        opts: &'a PushOptions,
    },
}

impl Work<'_> {
    fn opts(&self) -> &PushOptions {
        match self {
            Work::Hr { opts, .. } | Work::Given { opts, .. } => opts,
        }
    }

    /// `sync_runs.users_seen` of the run: the HR records, or the parts given.
    fn users_seen(&self) -> u64 {
        match self {
            Work::Hr { hr, .. } => hr.len() as u64,
            Work::Given { given, .. } => given.parts() as u64,
        }
    }
}

/// Run `first` (the plan the thresholds passed) as a recorded push run,
/// the push lock held: records, progress, the run's end.
#[allow(clippy::too_many_arguments)]
async fn run_plan(
    store: &Store,
    client: &CliqClient,
    limits: &Limits,
    lock: &mut PushLock,
    first: Plan,
    work: Work<'_>,
    cancel: &CancellationToken,
    started: tokio::time::Instant,
) -> Result<PushOutcome, PushError> {
    let clock = store.clock().clone();
    let run_id = store.start_run(RunKind::Push, clock.now()).await?;
    lock.set_run(run_id);
    let requests_before = client.stats().total_requests();
    let tracker = track(store, client, limits, run_id, &first, requests_before).await;
    let mut run = Run {
        store,
        client,
        run_id,
        cancel,
        report: PushReport::new("running"),
        progress: &tracker,
        done: 0,
    };
    run.report.run_id = Some(run_id);
    match &work {
        Work::Hr { hr, opts, approval } => {
            if let Some(id) = approval {
                // Used once: the next plan over a threshold needs its own approval.
                store.consume_held_plan(id, run_id).await?;
            }
            store
                .set_state(SOURCE_RECORDS_KEY, &hr.len().to_string(), clock.now())
                .await?;
            store
                .record_push_source(run_id, hr.len() as u64, opts.force, clock.now())
                .await?;
        }
        Work::Given { given, .. } => {
            given.record_link(store, run_id).await?;
            run.report.undoes_run = given.undoes_run;
        }
    }

    let result = run.execute(first, &work, limits).await;
    let (plan, status) = match result {
        Ok((plan, status)) => (plan, status),
        Err(e) => {
            run.report.error = Some(e.to_string());
            let figures = RunFigures {
                requests: client.stats().total_requests() - requests_before,
                error: run.report.error.clone(),
                ..Default::default()
            };
            let _ = store
                .finish_run(run_id, RunStatus::Failed, &figures, clock.now())
                .await;
            return Err(e.into());
        }
    };
    let mut report = run.report;
    tracker.finish(status).await;
    report.status = status.as_str().into();
    report.requests = client.stats().total_requests() - requests_before;
    report.elapsed_secs = started.elapsed().as_secs_f64();
    let figures = RunFigures {
        requests: report.requests,
        users_seen: work.users_seen(),
        users_changed: report.updates_applied + report.adds_applied,
        error: report.error.clone(),
    };
    store
        .finish_run(run_id, status, &figures, clock.now())
        .await?;
    tracing::info!(
        run = run_id,
        kind = %RunKind::Push,
        status = %report.status,
        updates = report.updates_applied,
        adds = report.adds_applied,
        failed = report.failed,
        skipped = report.skipped,
        reconciled = report.reconciled,
        requests = report.requests,
        elapsed_ms = (report.elapsed_secs * 1000.0) as u64,
        "push finished"
    );
    Ok(PushOutcome { plan, report })
}

struct Run<'a> {
    store: &'a Store,
    client: &'a CliqClient,
    run_id: i64,
    cancel: &'a CancellationToken,
    report: PushReport,
    progress: &'a Tracker,
    /// Planned users done so far (applied, failed or skipped in the loop).
    done: u64,
}

/// Start tracking a push's progress: the planned users, at the update
/// endpoint's quota floor (one request per user).
async fn track(
    store: &Store,
    client: &CliqClient,
    limits: &Limits,
    run_id: i64,
    plan: &Plan,
    requests_before: u64,
) -> Tracker {
    let floor = progress::floor_per_min(limits.get(crate::cliq::Endpoint::UpdateUser));
    let mut initial = RunProgress::new(run_id, RunKind::Push, floor);
    initial.expected_users = Some(planned_users(plan));
    let client = client.clone();
    let requests = Arc::new(move || client.stats().total_requests() - requests_before);
    Tracker::start(store, initial, requests).await
}

fn planned_users(plan: &Plan) -> u64 {
    (plan.updates.len() + plan.adds.len()) as u64
}

/// How the loop over attempts ends early.
enum Halt {
    Stopped,
    Failed(String),
}

/// Is this refusal about this person (remember it), or about us (stop)?
fn per_person(e: &CliqError) -> bool {
    match e {
        CliqError::Permanent { status, .. } => !matches!(status, 401 | 403 | 405 | 406),
        CliqError::InvalidRequest { .. } => true,
        _ => false,
    }
}

/// The request certainly did not change anything in Cliq. For a write, a
/// transient error is a 5xx answer or a connection that never opened: the
/// client reports every other lost answer as [`CliqError::OutcomeUnknown`].
fn not_sent(e: &CliqError) -> bool {
    matches!(
        e,
        CliqError::Throttled { .. }
            | CliqError::Transient { .. }
            | CliqError::TechnicalError { .. }
            | CliqError::Unauthorized { .. }
            | CliqError::Auth(_)
            | CliqError::Quota(_)
            | CliqError::Permanent { .. }
            | CliqError::InvalidRequest { .. }
    )
}

fn attr_of_cliq_key(key: &str) -> Option<Attr> {
    Attr::ALL.into_iter().find(|a| a.cliq_key() == key)
}

impl Run<'_> {
    /// Close an earlier attempt whose outcome is settled without sending.
    async fn skip_attempt(&self, id: i64, code: &str) -> Result<(), StoreError> {
        self.store
            .set_push_status(id, PushStatus::Skipped, Some(code), self.now())
            .await
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.store.clock().now()
    }

    async fn execute(
        &mut self,
        first: Plan,
        work: &Work<'_>,
        limits: &Limits,
    ) -> Result<(Plan, RunStatus), StoreError> {
        // Attempts of unknown outcome first; then plan again from the
        // refreshed mirror, or check the given parts against it.
        let reconciled = match self.reconcile().await? {
            Err(halt) => return Ok((first, self.halt(halt))),
            Ok(n) => n,
        };
        let opts = work.opts();
        let plan = match work {
            Work::Hr { .. } if reconciled == 0 => first,
            Work::Hr { hr, opts, .. } => plan::plan(self.store, hr, &opts.plan, limits).await?,
            Work::Given { given, opts } => {
                let (plan, refused) = given.check(self.store, &opts.plan, limits).await?;
                self.record_refused(&refused).await?;
                self.report.refused = refused;
                plan
            }
        };
        self.progress.expect_users(planned_users(&plan));
        self.record_skipped(&plan).await?;
        for u in &plan.updates {
            if let Err(halt) = self.update(u).await? {
                return Ok((plan, self.halt(halt)));
            }
            self.advance(1);
        }
        for batch in plan.adds.chunks(opts.plan.add_batch_size.max(1)) {
            if let Err(halt) = self.add(batch).await? {
                return Ok((plan, self.halt(halt)));
            }
            self.advance(batch.len() as u64);
        }
        Ok((plan, RunStatus::Ok))
    }

    fn advance(&mut self, users: u64) {
        self.done += users;
        self.progress.set(0, self.done);
    }

    fn halt(&mut self, h: Halt) -> RunStatus {
        match h {
            Halt::Stopped => RunStatus::Stopped,
            Halt::Failed(msg) => {
                self.report.error = Some(msg);
                RunStatus::Failed
            }
        }
    }

    async fn record_skipped(&mut self, plan: &Plan) -> Result<(), StoreError> {
        let rows: Vec<NewPush> = plan
            .blocked
            .iter()
            .map(|b| {
                let action = if b.user_id.is_some() { "update" } else { "add" };
                let (user_id, field) = (b.user_id.as_deref(), b.field);
                self.skipped_row(user_id, &b.email, action, field, b.kind, &b.reason)
            })
            .collect();
        self.report.skipped += rows.len() as u64;
        self.store.insert_pushes(&rows, self.now()).await
    }

    /// A `skipped` row: something the run did not do, and why.
    fn skipped_row<'r>(
        &self,
        user_id: Option<&'r str>,
        email: &'r str,
        action: &'r str,
        field: Option<&str>,
        kind: &'r str,
        reason: &str,
    ) -> NewPush<'r> {
        NewPush {
            run_id: self.run_id,
            user_id,
            email,
            action,
            fields_json: json!({"field": field, "kind": kind, "reason": reason}).to_string(),
            status: PushStatus::Skipped,
            error_code: Some(kind),
        }
    }

    /// Re-check the attempts whose outcome was never recorded. Returns how
    /// many were resolved.
    async fn reconcile(&mut self) -> Result<Result<usize, Halt>, StoreError> {
        let dangling = self.store.dangling_pushes().await?;
        let mut done = 0;
        for d in dangling {
            if self.cancel.is_cancelled() {
                return Ok(Err(Halt::Stopped));
            }
            let (Some(user_id), "update") = (d.user_id.as_deref(), d.action.as_str()) else {
                // An add: re-planned and re-sent; "already in the org" then
                // counts as applied.
                self.skip_attempt(d.id, "unknown_outcome").await?;
                done += 1;
                continue;
            };
            let wanted: BTreeMap<String, String> = serde_json::from_str::<Value>(&d.fields_json)
                .ok()
                .and_then(|v| serde_json::from_value(v.get("fields")?.clone()).ok())
                .unwrap_or_default();
            let (status, code) = match self.recheck_update(user_id, &d.email, &wanted).await? {
                Recheck::Applied => {
                    self.report.reconciled += 1;
                    (PushStatus::Applied, "reconciled")
                }
                Recheck::NotApplied => (PushStatus::Skipped, "not_applied"),
                Recheck::Unknown => (PushStatus::Skipped, "reconcile_failed"),
                Recheck::Halt(h) => return Ok(Err(h)),
            };
            self.store
                .set_push_status(d.id, status, Some(code), self.now())
                .await?;
            done += 1;
        }
        Ok(Ok(done))
    }

    /// `GET /users/{id}`: does Cliq have the `wanted` values (Cliq key →
    /// value)? The mirror row is refreshed from the answer either way.
    async fn recheck_update(
        &mut self,
        user_id: &str,
        email: &str,
        wanted: &BTreeMap<String, String>,
    ) -> Result<Recheck, StoreError> {
        let got = tokio::select! {
            biased;
            _ = self.cancel.cancelled() => return Ok(Recheck::Halt(Halt::Stopped)),
            r = self.client.get_user(user_id, Some(&Fields::All)) => r,
        };
        let user = match got {
            Ok(user) => user,
            Err(e) if per_person(&e) => return Ok(Recheck::Unknown),
            Err(e) => {
                return Ok(Recheck::Halt(Halt::Failed(format!(
                    "cannot re-check a write of unknown outcome for {email}: {e}"
                ))))
            }
        };
        let Some(flat) = FlatUser::from_map(&user.raw) else {
            return Ok(Recheck::Unknown);
        };
        let applied = wanted.iter().all(|(k, v)| {
            attr_of_cliq_key(k).is_some_and(|a| flat.get(a.mirror_column()) == Some(v.as_str()))
        });
        self.store
            .write_users_page(&[flat], self.run_id, ChangeSource::Push, self.now())
            .await?;
        Ok(if applied {
            Recheck::Applied
        } else {
            Recheck::NotApplied
        })
    }

    /// Which of `emails` Cliq has as pending invitations (what an add
    /// creates): one complete `GET /users?status=pending` listing. A
    /// listing that does not complete proves nothing and stops the run.
    async fn lookup_added(
        &mut self,
        emails: &[&str],
    ) -> Result<Result<HashSet<String>, Halt>, CliqError> {
        let wanted: HashSet<String> = emails.iter().map(|e| e.to_lowercase()).collect();
        let params = ListUsersParams {
            status: Some(UserStatus::Pending),
            ..Default::default()
        };
        let mut pages = self.client.list_users(params);
        let mut found = HashSet::new();
        loop {
            let next = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return Ok(Err(Halt::Stopped)),
                n = pages.next() => n,
            };
            match next {
                None => return Ok(Ok(found)),
                Some(Ok(ListEvent::Restarted)) => found.clear(),
                Some(Ok(ListEvent::Page(page))) => found.extend(
                    page.users
                        .iter()
                        .filter_map(|u| u.email_id.as_deref().map(str::to_lowercase))
                        .filter(|e| wanted.contains(e)),
                ),
                Some(Err(e)) => return Err(e),
            }
        }
    }

    async fn update(&mut self, u: &PlannedUpdate) -> Result<Result<(), Halt>, StoreError> {
        if self.cancel.is_cancelled() {
            return Ok(Err(Halt::Stopped));
        }
        let fields: BTreeMap<&str, &str> = u
            .changes
            .iter()
            .map(|c| (c.cliq_key, c.desired.as_str()))
            .collect();
        let current: BTreeMap<&str, Option<&str>> = u
            .changes
            .iter()
            .map(|c| (c.cliq_key, c.current.as_deref()))
            .collect();
        let fields_json =
            json!({"fields": fields, "current": current, "desired_hash": u.desired_hash})
                .to_string();
        let push_id = self
            .store
            .insert_push(
                &NewPush {
                    run_id: self.run_id,
                    user_id: Some(&u.user_id),
                    email: &u.email,
                    action: "update",
                    fields_json: fields_json.clone(),
                    status: PushStatus::Planned,
                    error_code: None,
                },
                self.now(),
            )
            .await?;
        let mut body = UserFields::new();
        for c in &u.changes {
            body.set(c.cliq_key, c.desired.clone())
                .expect("plan keys are Cliq keys");
        }
        let wanted: BTreeMap<String, String> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut resent = false;
        loop {
            // Cancelled while waiting for the quota or in flight: the row
            // stays `planned` and the next run re-checks it.
            let res = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return Ok(Err(Halt::Stopped)),
                r = self.client.update_user(&u.user_id, &u.email, &body) => r,
            };
            let Err(CliqError::OutcomeUnknown { reason, .. }) = res else {
                return self.settle_update(u, push_id, &fields_json, res).await;
            };
            tracing::warn!(email = %u.email, %reason, "update of unknown outcome; re-checking it in Cliq");
            let code = match self.recheck_update(&u.user_id, &u.email, &wanted).await? {
                Recheck::Applied => {
                    self.report.updates_applied += 1;
                    self.report.reconciled += 1;
                    "reconciled"
                }
                Recheck::NotApplied if !resent => {
                    resent = true;
                    self.report.resent += 1;
                    continue;
                }
                Recheck::NotApplied => "not_applied",
                Recheck::Unknown => "reconcile_failed",
                Recheck::Halt(h) => return Ok(Err(h)),
            };
            if code == "reconciled" {
                self.store
                    .set_push_status(push_id, PushStatus::Applied, Some(code), self.now())
                    .await?;
            } else {
                let msg = format!(
                    "the update's outcome was lost twice ({reason}); left for the next push"
                );
                self.fail_retryable(push_id, &u.email, "update", code, msg)
                    .await?;
            }
            return Ok(Ok(()));
        }
    }

    /// The outcome of an update that got an answer.
    async fn settle_update(
        &mut self,
        u: &PlannedUpdate,
        push_id: i64,
        fields_json: &str,
        res: Result<BatchResult, CliqError>,
    ) -> Result<Result<(), Halt>, StoreError> {
        match res {
            Ok(batch) => match batch.failure_code(&u.email) {
                None => {
                    self.apply_update(u).await?;
                    self.store
                        .set_push_status(push_id, PushStatus::Applied, None, self.now())
                        .await?;
                    self.report.updates_applied += 1;
                }
                Some(code) => {
                    let code = code.to_owned();
                    let msg = format!("Cliq refused the update: {code}");
                    self.fail_update(push_id, u, fields_json, Some(code), msg)
                        .await?;
                }
            },
            Err(e @ CliqError::TechnicalError { .. }) => {
                self.technical_error(u, push_id, fields_json, e).await?;
            }
            Err(e) if per_person(&e) => {
                let code = e.code().map(str::to_owned);
                self.fail_update(push_id, u, fields_json, code, e.to_string())
                    .await?;
            }
            Err(e) => {
                return Ok(Err(self
                    .stop_on(&[(push_id, u.email.as_str())], "update", e)
                    .await?))
            }
        }
        Ok(Ok(()))
    }

    /// A 500 "technical error" that persisted through the retries. Only when
    /// it names a reference the mirror does not know is it about the HR
    /// value (`reference_rejected`, remembered); otherwise it is Cliq's
    /// trouble: `failed` with `technical_error`, tried again next run.
    async fn technical_error(
        &mut self,
        u: &PlannedUpdate,
        push_id: i64,
        fields_json: &str,
        e: CliqError,
    ) -> Result<(), StoreError> {
        let mut unknown = Vec::new();
        for (k, v) in e.sent_references() {
            if !self.store.reference_known(k, v).await? {
                unknown.push(format!("{k}={v}"));
            }
        }
        if unknown.is_empty() {
            let msg = format!("{e}; every reference sent is known to the mirror, so this is taken as Cliq's trouble and tried again at the next push");
            return self
                .fail_retryable(push_id, &u.email, "update", "technical_error", msg)
                .await;
        }
        let msg = format!(
            "Cliq rejected a reference the mirror does not know: {} ({e}); fix the HR value",
            unknown.join(", ")
        );
        let code = Some("reference_rejected".to_owned());
        self.fail_update(push_id, u, fields_json, code, msg).await
    }

    /// A failure that is not remembered: the next push plans it again.
    async fn fail_retryable(
        &mut self,
        push_id: i64,
        email: &str,
        action: &'static str,
        code: &str,
        message: String,
    ) -> Result<(), StoreError> {
        tracing::warn!(email, action, code, %message, "push attempt failed; it is tried again at the next push");
        self.store
            .set_push_status(push_id, PushStatus::Failed, Some(code), self.now())
            .await?;
        self.report.failed += 1;
        self.report.failures.push(FailureLine {
            email: email.into(),
            action,
            code: Some(code.into()),
            message,
            permanent: false,
        });
        Ok(())
    }

    /// A failure that is not about this person: record it (when the request
    /// certainly changed nothing) and stop the run.
    async fn stop_on(
        &mut self,
        rows: &[(i64, &str)],
        action: &'static str,
        e: CliqError,
    ) -> Result<Halt, StoreError> {
        if not_sent(&e) {
            let code = e.code().unwrap_or("error").to_owned();
            for (push_id, email) in rows {
                self.store
                    .set_push_status(*push_id, PushStatus::Failed, Some(&code), self.now())
                    .await?;
                self.report.failed += 1;
                self.report.failures.push(FailureLine {
                    email: (*email).into(),
                    action,
                    code: Some(code.clone()),
                    message: e.to_string(),
                    permanent: false,
                });
            }
        }
        let email = rows.first().map(|r| r.1).unwrap_or("");
        // Otherwise (transient after retries, unreadable answer) the outcome
        // is unknown: the row stays `planned` and the next run re-checks it.
        Ok(Halt::Failed(format!(
            "stopped at {email}: {e}; the rest is left for the next push"
        )))
    }

    /// [`Run::fail`] for an update.
    async fn fail_update(
        &mut self,
        push_id: i64,
        u: &PlannedUpdate,
        fields_json: &str,
        code: Option<String>,
        message: String,
    ) -> Result<(), StoreError> {
        let (email, id, hash) = (&u.email, Some(u.user_id.as_str()), &u.desired_hash);
        self.fail(
            push_id,
            email,
            id,
            "update",
            hash,
            fields_json,
            code,
            message,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn fail(
        &mut self,
        push_id: i64,
        email: &str,
        user_id: Option<&str>,
        action: &'static str,
        desired_hash: &str,
        fields_json: &str,
        code: Option<String>,
        message: String,
    ) -> Result<(), StoreError> {
        tracing::warn!(email, action, code = code.as_deref(), %message, "push refused by Cliq");
        self.store
            .record_push_failure(
                push_id,
                &PushFailure {
                    email_id: email.to_owned(),
                    action: action.to_owned(),
                    user_id: user_id.map(str::to_owned),
                    desired_hash: desired_hash.to_owned(),
                    fields_json: fields_json.to_owned(),
                    error_code: code.clone(),
                    message: Some(message.clone()),
                    run_id: Some(self.run_id),
                    at: String::new(),
                },
                self.now(),
            )
            .await?;
        self.report.failed += 1;
        self.report.failures.push(FailureLine {
            email: email.into(),
            action,
            code,
            message,
            permanent: true,
        });
        Ok(())
    }

    /// The mirror row after a successful update: the changed columns, the
    /// same values patched into `raw_json`, `user_changes` of source `push`.
    async fn apply_update(&mut self, u: &PlannedUpdate) -> Result<(), StoreError> {
        let raw = self.store.user_raw_json(&u.user_id).await?;
        let mut obj: Map<String, Value> = raw
            .and_then(|r| serde_json::from_str(&r).ok())
            .unwrap_or_default();
        if !obj.contains_key("id") {
            obj.insert("id".into(), Value::String(u.user_id.clone()));
        }
        for c in &u.changes {
            let Some(attr) = Attr::from_name(c.field) else {
                continue;
            };
            let nested = match attr {
                Attr::Department => Some(("department", &["department_id"][..])),
                Attr::Designation => Some(("designation", &["designation_id"][..])),
                Attr::ReportingTo => {
                    Some(("reportingto", &["reporting_to", "reporting_to_zuid"][..]))
                }
                _ => None,
            };
            match nested {
                Some((key, flat_keys)) => {
                    let mut r = Map::new();
                    r.insert("id".into(), Value::String(c.desired.clone()));
                    if let Some(n) = &c.desired_name {
                        r.insert("name".into(), Value::String(n.clone()));
                    }
                    for k in flat_keys {
                        obj.remove(*k);
                    }
                    obj.insert(key.into(), Value::Object(r));
                }
                None => {
                    obj.insert(c.cliq_key.into(), Value::String(c.desired.clone()));
                }
            }
        }
        if let Some(flat) = FlatUser::from_map(&obj) {
            self.store
                .write_users_page(&[flat], self.run_id, ChangeSource::Push, self.now())
                .await?;
        }
        Ok(())
    }

    async fn add(&mut self, batch: &[PlannedAdd]) -> Result<Result<(), Halt>, StoreError> {
        if self.cancel.is_cancelled() {
            return Ok(Err(Halt::Stopped));
        }
        let mut ids = Vec::with_capacity(batch.len());
        let mut bodies = Vec::with_capacity(batch.len());
        let mut jsons = Vec::with_capacity(batch.len());
        for a in batch {
            let fields_json =
                json!({"fields": a.fields, "desired_hash": a.desired_hash}).to_string();
            let id = self
                .store
                .insert_push(
                    &NewPush {
                        run_id: self.run_id,
                        user_id: None,
                        email: &a.email,
                        action: "add",
                        fields_json: fields_json.clone(),
                        status: PushStatus::Planned,
                        error_code: None,
                    },
                    self.now(),
                )
                .await?;
            ids.push(id);
            jsons.push(fields_json);
            let mut f = UserFields::for_email(a.email.clone());
            for (k, v) in &a.fields {
                f.set(k, v.clone()).expect("plan keys are Cliq keys");
            }
            bodies.push(f);
        }
        let rows = AddRows {
            batch,
            ids: &ids,
            jsons: &jsons,
        };
        // Indices into the batch still to send.
        let mut left: Vec<usize> = (0..batch.len()).collect();
        let mut resent = false;
        loop {
            let send: Vec<UserFields> = left.iter().map(|&i| bodies[i].clone()).collect();
            let res = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return Ok(Err(Halt::Stopped)),
                r = self.client.add_users(&send) => r,
            };
            let Err(CliqError::OutcomeUnknown { reason, .. }) = res else {
                return self.settle_adds(&rows, &left, res).await;
            };
            tracing::warn!(%reason, people = left.len(), "add of unknown outcome; looking the emails up in Cliq");
            let emails: Vec<&str> = left.iter().map(|&i| batch[i].email.as_str()).collect();
            let found = match self.lookup_added(&emails).await {
                Ok(Ok(found)) => found,
                Ok(Err(halt)) => return Ok(Err(halt)),
                // The rows stay `planned`: the next run deals with them.
                Err(e) => {
                    return Ok(Err(Halt::Failed(format!(
                        "cannot look up an add of unknown outcome ({}): {e}",
                        emails.join(", ")
                    ))))
                }
            };
            let mut missing = Vec::new();
            for i in left {
                if found.contains(&batch[i].email.to_lowercase()) {
                    self.store
                        .set_push_status(
                            ids[i],
                            PushStatus::Applied,
                            Some("reconciled"),
                            self.now(),
                        )
                        .await?;
                    self.report.adds_applied += 1;
                    self.report.reconciled += 1;
                } else {
                    missing.push(i);
                }
            }
            if missing.is_empty() {
                return Ok(Ok(()));
            }
            if resent {
                for i in missing {
                    let msg = format!(
                        "the add's outcome was lost twice ({reason}); left for the next push"
                    );
                    self.fail_retryable(ids[i], &batch[i].email, "add", "not_applied", msg)
                        .await?;
                }
                return Ok(Ok(()));
            }
            resent = true;
            self.report.resent += missing.len() as u64;
            left = missing;
        }
    }

    /// The outcome of an add request (for the people at `left`) that got an answer.
    async fn settle_adds(
        &mut self,
        rows: &AddRows<'_>,
        left: &[usize],
        res: Result<BatchResult, CliqError>,
    ) -> Result<Result<(), Halt>, StoreError> {
        match res {
            Ok(result) => {
                for &i in left {
                    self.settle_add(rows, i, &result).await?;
                }
            }
            Err(e) if per_person(&e) => {
                for &i in left {
                    let (a, id, fields_json) = (&rows.batch[i], rows.ids[i], &rows.jsons[i]);
                    let code = e.code().map(str::to_owned);
                    self.fail(
                        id,
                        &a.email,
                        None,
                        "add",
                        &a.desired_hash,
                        fields_json,
                        code,
                        e.to_string(),
                    )
                    .await?;
                }
            }
            Err(e) => {
                let stop: Vec<(i64, &str)> = left
                    .iter()
                    .map(|&i| (rows.ids[i], rows.batch[i].email.as_str()))
                    .collect();
                return Ok(Err(self.stop_on(&stop, "add", e).await?));
            }
        }
        Ok(Ok(()))
    }

    /// One person of an answered add request.
    async fn settle_add(
        &mut self,
        rows: &AddRows<'_>,
        i: usize,
        result: &BatchResult,
    ) -> Result<(), StoreError> {
        let (a, id, fields_json) = (&rows.batch[i], rows.ids[i], &rows.jsons[i]);
        if result.is_success(&a.email) {
            self.store
                .set_push_status(id, PushStatus::Applied, None, self.now())
                .await?;
            self.report.adds_applied += 1;
            return Ok(());
        }
        // Not mentioned at all: outcome unknown, the row stays `planned`
        // and the next run deals with it.
        let Some(code) = result.failure_code(&a.email) else {
            return Ok(());
        };
        let code = code.to_owned();
        if ALREADY_THERE.contains(&code.as_str()) {
            // Already in the org (e.g. an earlier attempt got there first).
            self.store
                .set_push_status(id, PushStatus::Applied, Some(&code), self.now())
                .await?;
            self.report.adds_already_present += 1;
        } else {
            let message = format!("Cliq refused to add {}: {code}", a.email);
            let hash = &a.desired_hash;
            self.fail(
                id,
                &a.email,
                None,
                "add",
                hash,
                fields_json,
                Some(code),
                message,
            )
            .await?;
        }
        Ok(())
    }
}

/// The `pushes` rows of one add batch, by index into the batch.
struct AddRows<'a> {
    batch: &'a [PlannedAdd],
    ids: &'a [i64],
    jsons: &'a [String],
}

/// What a re-check of an update of unknown outcome found.
enum Recheck {
    /// Cliq has the values.
    Applied,
    /// Cliq does not have them: the update may be sent (once more).
    NotApplied,
    /// The user could not be fetched or read: nothing can be said.
    Unknown,
    Halt(Halt),
}

/// The push side of `cliq-sync status`: attempts per status and the
/// remembered permanent failures (not retried until the HR values change).
#[derive(Debug, Clone, Serialize)]
pub struct PushStatusSummary {
    pub attempts: BTreeMap<String, i64>,
    pub failures: Vec<PushFailure>,
    pub last_source_records: Option<u64>,
}

pub async fn status_summary(store: &Store) -> Result<PushStatusSummary, StoreError> {
    Ok(PushStatusSummary {
        attempts: store.push_counts().await?.into_iter().collect(),
        failures: store.push_failures().await?,
        last_source_records: store
            .state(SOURCE_RECORDS_KEY)
            .await?
            .and_then(|v| v.parse().ok()),
    })
}
