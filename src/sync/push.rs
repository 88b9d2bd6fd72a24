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

use tokio_util::sync::CancellationToken;

use crate::cliq::client::CliqClient;
use crate::cliq::quotas::Limits;
use crate::config::OnThreshold;
use crate::hr::HrSource;
use crate::mirror::lease::LeaseError;
use crate::mirror::{Store, StoreError};
use crate::sync::plan::{self, PlanOptions};

mod add;
mod given;
mod reconcile;
mod report;
mod run;
mod safety;
mod update;
pub use given::{push_given, Given, GivenUpdate, Refused};
pub use report::{status_summary, FailureLine, PushOutcome, PushReport, PushStatusSummary};
use run::{run_plan, Run};
use safety::thresholds;
pub use safety::{check_safety, SafetyStop};
pub(crate) use safety::{hold, source_baseline, take_push_lock};

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
