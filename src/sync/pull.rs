//! Pulls: Cliq → mirror.
//!
//! * **Full**: every user with `fields=all`, page by page, each page written
//!   as it is taken, in a transaction of its own or, when the writer fell
//!   behind, with the pages already fetched behind it (group commit, see
//!   `pipeline`; bounded memory whatever the org size).
//!   Only a listing that *completed* marks unseen users removed; one that
//!   failed, was throttled beyond its budget or was stopped marks nobody.
//! * **Incremental**: `modified_after` = watermark − overlap. Cliq only sees
//!   six fields there and only for 7 days, so a missing or too-old watermark
//!   turns the run into a full pull, and the daemon also runs full pulls on
//!   their own schedule.
//!
//! The watermark is *Cliq's* time at the start of the last successful pull:
//! the `Date` header of the run's first listing answer (whole seconds,
//! truncated), advanced only when a run succeeds. Cliq stamps modifications
//! with its own clock, so a watermark from ours would lose every change made
//! within the skew whenever Cliq runs behind by more than the overlap. Only
//! when that header is missing or unreadable is our clock used, with a warning.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::cliq::client::CliqClient;
use crate::cliq::models::ListUsersParams;
use crate::cliq::quotas::QuotaScheduler;
use crate::cliq::Endpoint;
use crate::mirror::progress::RunProgress;
use crate::mirror::runs::{RunFigures, RunKind, RunStatus};
use crate::mirror::users::{ChangeSource, FirstLoad};
use crate::mirror::{Store, StoreError};
use crate::sync::progress::{self, Tracker};

/// How far back Cliq's `modified_after` can see.
pub const MODIFIED_AFTER_HORIZON: chrono::Duration = chrono::Duration::days(7);

/// Clock skew (Cliq's `Date` against our clock) beyond this is logged as a
/// warning on every pull: Cliq's clock is the one the watermark follows, but
/// a skewed host clock also shifts cron schedules and the mirror's timestamps.
pub const CLOCK_SKEW_WARN: chrono::Duration = chrono::Duration::seconds(60);

/// The four layouts Cliq documents.
pub const LAYOUT_NAMES: [&str; 4] = [
    "quick_view",
    "profile_details_android",
    "profile_details_ios",
    "profile_details_web",
];

pub use crate::mirror::runs::PullKind;

/// `[sync] teams`, read by the settings as this type.
pub use crate::config::TeamsMode;

#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Subtracted from the watermark for clock skew.
    pub overlap: Duration,
    /// A watermark older than 7 days minus this margin forces a full pull.
    pub window_margin: Duration,
    pub teams: TeamsMode,
    /// Team fetches per run (one request each): one window's worth by default.
    pub teams_per_run: usize,
    /// Refresh layouts on full pulls.
    pub layouts: bool,
    /// List each status separately (`[sync] status_listing = "per_status"`)
    /// instead of one listing without a status filter. The documentation
    /// does not say whether an unfiltered listing returns every status.
    pub per_status: bool,
    /// The removal circuit breaker: a full pull that would mark more users
    /// removed than this …
    pub max_removals: u64,
    /// … or more than this fraction of the users present marks nobody and
    /// is `held`.
    pub max_removal_fraction: f64,
    /// Lift the breaker for this run (`sync --full --allow-removals`).
    pub allow_removals: bool,
}

/// The options `[sync]` configures (layouts refreshed, the breaker on).
impl From<&crate::config::SyncSettings> for PullOptions {
    fn from(s: &crate::config::SyncSettings) -> Self {
        Self {
            overlap: s.overlap,
            window_margin: s.window_margin,
            teams: s.teams,
            teams_per_run: s.teams_per_run,
            layouts: true,
            per_status: s.status_listing == crate::config::StatusListing::PerStatus,
            max_removals: s.max_removals,
            max_removal_fraction: s.max_removal_fraction,
            allow_removals: false,
        }
    }
}

/// The defaults are `[sync]`'s: one place says what they are.
impl Default for PullOptions {
    fn default() -> Self {
        Self::from(&crate::config::SyncSettings::default())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a pull did (also recorded in `sync_runs`).
#[derive(Debug, Clone, Serialize)]
pub struct PullReport {
    pub run_id: i64,
    pub kind: PullKind,
    /// Why an incremental request became a full pull.
    pub escalated: Option<String>,
    pub status: RunStatus,
    pub requests: u64,
    pub pages: u64,
    pub users_seen: u64,
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
    pub restarts: u64,
    pub teams_fetched: u64,
    pub teams_pending: i64,
    pub started_at: DateTime<Utc>,
    /// `Date` of the first listing answer (Cliq's clock): the next watermark.
    pub cliq_date: Option<DateTime<Utc>>,
    /// Cliq's clock minus ours at that answer, in milliseconds.
    pub clock_skew_ms: Option<i64>,
    pub elapsed: Duration,
    pub error: Option<String>,
}

impl PullReport {
    pub fn ok(&self) -> bool {
        self.status == RunStatus::Ok
    }
}

mod full;
mod page;
mod pipeline;
mod teams;
mod watermark;

use full::{complete_full, removal_breaker};
use pipeline::{list_into_mirror, ListFailure, Listing};
use teams::{fetch_teams, TeamsFailure};
pub use watermark::effective_kind;
use watermark::next_watermark;

/// What a pull works with: the mirror, the client and the scheduler it
/// queues behind, the listing's page size and the configured options. The
/// assembled app converts into it (`pull(&app, …)`), so the pull knows its
/// parts and nothing above them.
#[derive(Clone)]
pub struct PullParts<'a> {
    pub store: &'a Store,
    pub client: &'a CliqClient,
    pub scheduler: &'a QuotaScheduler,
    /// `[cliq] page_size`: sizes the progress estimate of a full pull.
    pub page_size: u32,
    pub options: PullOptions,
}

/// Run one pull. Errors from Cliq end the run as `failed` (reported, not
/// returned); only a mirror that cannot be written is an `Err`.
pub async fn pull<'a>(
    parts: impl Into<PullParts<'a>>,
    requested: PullKind,
    cancel: &CancellationToken,
) -> Result<PullReport, PullError> {
    let parts = parts.into();
    pull_with(parts.clone(), requested, &parts.options, cancel).await
}

/// [`pull`] with explicit options instead of the configured ones.
pub async fn pull_with<'a>(
    parts: impl Into<PullParts<'a>>,
    requested: PullKind,
    opts: &PullOptions,
    cancel: &CancellationToken,
) -> Result<PullReport, PullError> {
    let parts = &parts.into();
    let (store, client) = (parts.store, parts.client);
    let started = tokio::time::Instant::now();
    let started_at = store.clock().now();
    let watermark = store.watermark().await?;
    let (kind, escalated) = effective_kind(requested, watermark, started_at, opts);
    if let Some(why) = &escalated {
        tracing::info!(reason = %why, "running a full pull instead of an incremental one");
    }
    let run_kind = RunKind::from(kind);
    let source: ChangeSource = run_kind;
    // Before the run is recorded: a mirror that cannot take it has no run
    // left `running` behind.
    let load = store.begin_first_load(kind == PullKind::Full).await?;
    let run_id = store.start_run(run_kind, started_at).await?;
    let requests_before = client.stats().total_requests();
    let tracker = track(parts, run_id, run_kind, requests_before).await?;

    let mut params = ListUsersParams::all_fields();
    if kind == PullKind::Incremental {
        let overlap = chrono::Duration::from_std(opts.overlap).unwrap_or_default();
        params.modified_after = watermark.map(|w| w - overlap);
    }
    let mut report = new_report(run_id, kind, escalated, started_at);
    let run = (run_id, source, &tracker);
    let outcome = list_into_mirror(parts, opts, params, run, cancel, &mut report).await;
    let outcome = finish_first_load(store, load, outcome).await;
    let mut status = match outcome {
        Ok(Listing::Complete) => RunStatus::Ok,
        Ok(Listing::Stopped) => RunStatus::Stopped,
        Err(ListFailure::Cliq(e)) => {
            report.error = Some(e.to_string());
            RunStatus::Failed
        }
        Err(ListFailure::Store(e)) => {
            // Record what we can, then surface the store error.
            report.error = Some(e.to_string());
            let failed = RunStatus::Failed;
            let _ = finish(store, client, &mut report, failed, requests_before).await;
            return Err(e.into());
        }
    };
    if status == RunStatus::Ok {
        status = complete(parts, opts, &mut report, cancel).await?;
    }
    tracker.finish(status).await;
    finish(store, client, &mut report, status, requests_before).await?;
    report.elapsed = started.elapsed();
    log_finished(&report);
    Ok(report)
}

/// Build what the listing's first load deferred, however the listing
/// ended, before anything reads the mirror whole; a listing that ended
/// well fails if that cannot be done.
async fn finish_first_load(
    store: &Store,
    load: FirstLoad,
    outcome: Result<Listing, ListFailure>,
) -> Result<Listing, ListFailure> {
    let built = store.end_first_load(load).await;
    match (outcome, built) {
        (Ok(_), Err(e)) => Err(ListFailure::Store(e)),
        (outcome, _) => outcome,
    }
}

/// The run's closing log line.
fn log_finished(report: &PullReport) {
    tracing::info!(
        run = report.run_id,
        kind = %RunKind::from(report.kind),
        status = %report.status,
        requests = report.requests,
        pages = report.pages,
        seen = report.users_seen,
        added = report.added,
        changed = report.changed,
        removed = report.removed,
        elapsed_ms = report.elapsed.as_millis() as u64,
        "pull finished"
    );
}

/// A run's report before its listing.
fn new_report(
    run_id: i64,
    kind: PullKind,
    escalated: Option<String>,
    started_at: DateTime<Utc>,
) -> PullReport {
    PullReport {
        run_id,
        kind,
        escalated,
        status: RunStatus::Running,
        requests: 0,
        pages: 0,
        users_seen: 0,
        added: 0,
        changed: 0,
        removed: 0,
        restarts: 0,
        teams_fetched: 0,
        teams_pending: 0,
        started_at,
        cliq_date: None,
        clock_skew_ms: None,
        elapsed: Duration::ZERO,
        error: None,
    }
}

/// After a listing that completed: the removal breaker and the removals
/// (full pulls), the watermark, then team memberships. The run's status.
async fn complete(
    parts: &PullParts<'_>,
    opts: &PullOptions,
    report: &mut PullReport,
    cancel: &CancellationToken,
) -> Result<RunStatus, PullError> {
    let store = parts.store;
    let started_at = report.started_at;
    if report.kind == PullKind::Full {
        if let Some(reason) = removal_breaker(store, opts, started_at, report.users_seen).await? {
            // The pages are written; nobody is marked removed, and the run
            // is no successful full pull (the watermark stays).
            report.error = Some(reason);
            return Ok(RunStatus::Held);
        }
    }
    let now = store.clock().now();
    if report.kind == PullKind::Full {
        complete_full(parts, opts, report, now, cancel).await?;
    }
    // The listing is complete: the mirror holds everything Cliq had
    // modified before its first answer.
    let next = next_watermark(report.cliq_date, started_at);
    store.set_watermark(next, now).await?;
    let mut status = RunStatus::Ok;
    if opts.teams != TeamsMode::Off {
        match fetch_teams(parts, opts.teams_per_run, cancel).await {
            Ok(n) => report.teams_fetched = n,
            Err(TeamsFailure::Stopped) => status = RunStatus::Stopped,
            Err(TeamsFailure::Cliq(e)) => {
                tracing::warn!(error = %e, "team memberships not fetched; they stay queued")
            }
            Err(TeamsFailure::Store(e)) => return Err(e.into()),
        }
    }
    report.teams_pending = store.teams_queue_len().await?;
    Ok(status)
}

/// Start tracking the run's progress. A full pull expects the users
/// present in the mirror, a page of `page_size` per listing request, at
/// the listing quota's floor.
async fn track(
    parts: &PullParts<'_>,
    run_id: i64,
    kind: RunKind,
    requests_before: u64,
) -> Result<Tracker, StoreError> {
    let quota = parts.scheduler.limits().get(Endpoint::ListUsers);
    let mut initial = RunProgress::new(run_id, kind, progress::floor_per_min(quota));
    if kind == RunKind::Full {
        let present = parts.store.present_users().await?;
        if present > 0 {
            let page = u64::from(parts.page_size.max(1));
            initial.expected_users = Some(present);
            initial.expected_pages = Some(present.div_ceil(page));
        }
    }
    let client = parts.client.clone();
    let requests = Arc::new(move || client.stats().total_requests() - requests_before);
    Ok(Tracker::start(parts.store, initial, requests).await)
}

async fn finish(
    store: &Store,
    client: &CliqClient,
    report: &mut PullReport,
    status: RunStatus,
    requests_before: u64,
) -> Result<(), StoreError> {
    report.requests = client.stats().total_requests() - requests_before;
    report.status = status;
    let figures = RunFigures {
        requests: report.requests,
        users_seen: report.users_seen,
        users_changed: report.added + report.changed + report.removed,
        error: report.error.clone(),
    };
    store
        .finish_run(report.run_id, status, &figures, store.clock().now())
        .await
}
