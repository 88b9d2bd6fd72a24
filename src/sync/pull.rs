//! Pulls: Cliq → mirror.
//!
//! * **Full**: every user with `fields=all`, page by page, each page written in
//!   its own transaction as it arrives (bounded memory whatever the org size).
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
use futures::StreamExt;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::cliq::client::{CliqClient, ListEvent};
use crate::cliq::error::CliqError;
use crate::cliq::models::{ListUsersParams, UserStatus};
use crate::cliq::quotas::QuotaScheduler;
use crate::cliq::Endpoint;
use crate::mirror::progress::RunProgress;
use crate::mirror::runs::{RunFigures, RunKind, RunStatus};
use crate::mirror::teams::TeamRow;
use crate::mirror::users::{ChangeSource, FlatUser};
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

impl Default for PullOptions {
    fn default() -> Self {
        Self {
            overlap: Duration::from_secs(300),
            window_margin: Duration::from_secs(6 * 3600),
            teams: TeamsMode::Changed,
            teams_per_run: 20,
            layouts: true,
            per_status: false,
            max_removals: 500,
            max_removal_fraction: 0.1,
            allow_removals: false,
        }
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

/// Decide the kind of pull: an incremental one needs a watermark recent
/// enough for `modified_after` to still see everything since.
pub fn effective_kind(
    requested: PullKind,
    watermark: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    opts: &PullOptions,
) -> (PullKind, Option<String>) {
    if requested == PullKind::Full {
        return (PullKind::Full, None);
    }
    let margin = chrono::Duration::from_std(opts.window_margin).unwrap_or_default();
    match watermark {
        None => (
            PullKind::Full,
            Some("no watermark yet: the first pull is a full one".into()),
        ),
        Some(w) if w < now - MODIFIED_AFTER_HORIZON + margin => (
            PullKind::Full,
            Some(format!(
                "the watermark ({}) is older than Cliq's 7-day modified_after window minus the margin",
                crate::clock::to_db(w)
            )),
        ),
        Some(_) => (PullKind::Incremental, None),
    }
}

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
    let clock = store.clock().clone();
    let started = tokio::time::Instant::now();
    let started_at = clock.now();
    let watermark = store.watermark().await?;
    let (kind, escalated) = effective_kind(requested, watermark, started_at, opts);
    if let Some(why) = &escalated {
        tracing::info!(reason = %why, "running a full pull instead of an incremental one");
    }
    let run_kind = RunKind::from(kind);
    let source: ChangeSource = run_kind;
    let run_id = store.start_run(run_kind, started_at).await?;
    let requests_before = client.stats().total_requests();
    let tracker = track(parts, run_id, run_kind, requests_before).await?;

    let mut params = ListUsersParams::all_fields();
    if kind == PullKind::Incremental {
        let overlap = chrono::Duration::from_std(opts.overlap).unwrap_or_default();
        params.modified_after = watermark.map(|w| w - overlap);
    }

    let mut report = PullReport {
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
    };

    let outcome = list_into_mirror(
        parts,
        opts,
        params,
        (run_id, source, &tracker),
        cancel,
        &mut report,
    )
    .await;
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
            let _ = finish(
                store,
                client,
                &mut report,
                RunStatus::Failed,
                requests_before,
            )
            .await;
            return Err(e.into());
        }
    };

    if status == RunStatus::Ok && kind == PullKind::Full {
        if let Some(reason) = removal_breaker(store, opts, started_at, report.users_seen).await? {
            // The pages are written; nobody is marked removed, and the run
            // is no successful full pull (the watermark stays).
            report.error = Some(reason);
            status = RunStatus::Held;
        }
    }
    if status == RunStatus::Ok {
        let now = clock.now();
        if kind == PullKind::Full {
            report.removed = store.mark_unseen_removed(started_at, run_id, now).await?;
            if opts.teams == TeamsMode::All {
                store.queue_all_teams(now).await?;
            }
            if opts.layouts {
                if let Err(e) = refresh_layouts(store, client, cancel).await {
                    tracing::warn!(error = %e, "layouts were not refreshed");
                }
            }
        }
        // The listing is complete: the mirror holds everything Cliq had
        // modified before its first answer.
        store
            .set_watermark(next_watermark(report.cliq_date, started_at), now)
            .await?;
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
    }
    tracker.finish(status).await;
    finish(store, client, &mut report, status, requests_before).await?;
    report.elapsed = started.elapsed();
    tracing::info!(
        run = run_id,
        kind = %run_kind,
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
    Ok(report)
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

/// The removal circuit breaker, after a full listing that looked
/// complete: `Some(why)` when marking the unseen users removed would cross
/// `max_removals` or `max_removal_fraction` of the present users (a listing
/// that ended early looks exactly like a mass removal), unless
/// `allow_removals` lifts it for this run.
async fn removal_breaker(
    store: &Store,
    opts: &PullOptions,
    started_at: DateTime<Utc>,
    seen: u64,
) -> Result<Option<String>, StoreError> {
    let (unseen, present) = store.unseen_since(started_at).await?;
    let share = if present == 0 {
        0.0
    } else {
        unseen as f64 / present as f64
    };
    let over_count = unseen > opts.max_removals;
    let over_share = share > opts.max_removal_fraction;
    if !(over_count || over_share) {
        return Ok(None);
    }
    tracing::warn!(
        seen,
        present,
        would_remove = unseen,
        "suspicious full listing: it is short against the mirror"
    );
    if opts.allow_removals {
        tracing::warn!(
            removed = unseen,
            "--allow-removals: marking them removed as confirmed"
        );
        return Ok(None);
    }
    let limit = if over_count {
        format!("more than [sync] max_removals = {}", opts.max_removals)
    } else {
        format!(
            "more than [sync] max_removal_fraction = {} of the {present} present",
            opts.max_removal_fraction
        )
    };
    let why = format!(
        "held: the full listing saw {seen} users and would mark {unseen} of {present} \
         removed ({:.1}%), {limit}; nobody was marked removed. A listing that ended early \
         looks like this: check the org in Cliq, then confirm with \
         `cliq-sync sync --full --allow-removals`",
        share * 100.0
    );
    tracing::error!(reason = %why, "full pull held by the removal circuit breaker");
    Ok(Some(why))
}

/// The watermark a complete listing earns: Cliq's `Date` of its first
/// answer. The header is already truncated to the second, so it never lies
/// after a modification the listing could have missed; `[sync] overlap` is
/// subtracted when it is used. Without the header: our clock at the start.
fn next_watermark(cliq_date: Option<DateTime<Utc>>, started_at: DateTime<Utc>) -> DateTime<Utc> {
    match cliq_date {
        Some(date) => date,
        None => {
            tracing::warn!(
                "Cliq's answer had no readable Date header: the watermark follows this host's \
                 clock, so a clock skew larger than [sync] overlap can hide changes until the \
                 next full pull; keep the host clock synchronised (NTP)"
            );
            started_at
        }
    }
}

/// Record Cliq's clock against ours from the first listing answer: the
/// report and `cliq_sync_clock_skew_seconds` get it, and a skew beyond
/// [`CLOCK_SKEW_WARN`] is a warning.
fn note_first_answer(
    client: &CliqClient,
    report: &mut PullReport,
    cliq_date: Option<DateTime<Utc>>,
    ours: DateTime<Utc>,
) {
    report.cliq_date = cliq_date;
    let Some(date) = cliq_date else { return };
    let skew = date - ours;
    report.clock_skew_ms = Some(skew.num_milliseconds());
    client.record_clock_skew(skew);
    if skew.abs() > CLOCK_SKEW_WARN {
        tracing::warn!(
            skew_seconds = skew.num_seconds(),
            cliq_date = %crate::clock::to_db(date),
            our_clock = %crate::clock::to_db(ours),
            "clock skew: Cliq's clock differs from this host's by more than {}s; the watermark \
             follows Cliq's clock, but check the host's time synchronisation (NTP)",
            CLOCK_SKEW_WARN.num_seconds()
        );
    }
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

enum Listing {
    Complete,
    Stopped,
}

/// What the listing producer hands over.
enum Fetched {
    /// A page being flattened (in order: the consumer awaits each in turn).
    Page(tokio::task::JoinHandle<Result<Vec<FlatUser>, CliqError>>),
    Restarted,
    /// Before the first page: its `Date` header and our clock on arrival.
    FirstAnswer(Option<DateTime<Utc>>, DateTime<Utc>),
    Failed(CliqError),
}

/// Aborts the task when dropped (a stopped or aborted pull stops fetching).
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl AbortOnDrop {
    async fn finish(mut self) -> Result<(), tokio::task::JoinError> {
        match self.0.take() {
            Some(handle) => handle.await,
            None => Ok(()),
        }
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.abort();
        }
    }
}

/// Flatten a page as received. A user without an id is skipped with a
/// warning; one that cannot be read fails the page (and so the listing:
/// skipping them would later mark them removed).
fn flatten(users: &[Box<serde_json::value::RawValue>]) -> Result<Vec<FlatUser>, CliqError> {
    let mut out = Vec::with_capacity(users.len());
    for (i, u) in users.iter().enumerate() {
        match FlatUser::from_raw_json(u.get()) {
            Ok(Some(flat)) => out.push(flat),
            Ok(None) => tracing::warn!("a listed user has no id; skipped"),
            Err(e) => {
                return Err(CliqError::Decode {
                    endpoint: Endpoint::ListUsers,
                    message: format!("list users: item {i}: {e}"),
                })
            }
        }
    }
    Ok(out)
}

enum ListFailure {
    Cliq(CliqError),
    Store(StoreError),
}

async fn list_into_mirror(
    parts: &PullParts<'_>,
    opts: &PullOptions,
    params: ListUsersParams,
    (run_id, source, tracker): (i64, ChangeSource, &Tracker),
    cancel: &CancellationToken,
    report: &mut PullReport,
) -> Result<Listing, ListFailure> {
    let (store, client) = (parts.store, parts.client);
    let queue_teams = opts.teams != TeamsMode::Off;
    // Three stages overlap: the producer task fetches page k+2 while page
    // k+1 is flattened (parsed and hashed, on the blocking pool) and page k
    // is written. The channel holds one page, so memory stays bounded.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Fetched>(1);
    let listings: Vec<ListUsersParams> = if opts.per_status {
        UserStatus::ALL
            .iter()
            .map(|status| ListUsersParams {
                status: Some(*status),
                ..params.clone()
            })
            .collect()
    } else {
        vec![params]
    };
    let producer = AbortOnDrop(Some(tokio::spawn({
        let client = client.clone();
        let clock = store.clock().clone();
        async move {
            let mut first = true;
            // One listing, or one per status (`[sync] status_listing`),
            // one after the other: together they are the complete listing.
            for params in listings {
                let mut stream = client.list_users_raw(params);
                while let Some(event) = stream.next().await {
                    if let (true, Ok(ListEvent::Page(page))) = (first, &event) {
                        // The earliest answer bounds what the whole run saw.
                        first = false;
                        let answer = Fetched::FirstAnswer(page.server_date, clock.now());
                        if tx.send(answer).await.is_err() {
                            return;
                        }
                    }
                    let fetched = match event {
                        Ok(ListEvent::Page(page)) => {
                            Ok(Fetched::Page(tokio::task::spawn_blocking(move || {
                                flatten(&page.users)
                            })))
                        }
                        Ok(ListEvent::Restarted) => Ok(Fetched::Restarted),
                        Err(e) => Err(e),
                    };
                    let failed = fetched.is_err();
                    if tx
                        .send(fetched.unwrap_or_else(Fetched::Failed))
                        .await
                        .is_err()
                        || failed
                    {
                        return;
                    }
                }
            }
        }
    })));
    loop {
        let event = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Ok(Listing::Stopped),
            event = rx.recv() => event,
        };
        match event {
            None => {
                // The channel closes when the listing ended; make sure it
                // ended normally (a panicked producer is not a complete listing).
                return match producer.finish().await {
                    Ok(()) => Ok(Listing::Complete),
                    Err(e) => Err(ListFailure::Cliq(CliqError::Decode {
                        endpoint: Endpoint::ListUsers,
                        message: format!("the listing task failed: {e}"),
                    })),
                };
            }
            Some(Fetched::Failed(e)) => return Err(ListFailure::Cliq(e)),
            Some(Fetched::Restarted) => report.restarts += 1,
            Some(Fetched::FirstAnswer(date, ours)) => note_first_answer(client, report, date, ours),
            Some(Fetched::Page(flattening)) => {
                let users = match flattening.await {
                    Ok(Ok(users)) => users,
                    Ok(Err(e)) => return Err(ListFailure::Cliq(e)),
                    Err(e) => {
                        return Err(ListFailure::Cliq(CliqError::Decode {
                            endpoint: Endpoint::ListUsers,
                            message: format!("reading a listed page failed: {e}"),
                        }))
                    }
                };
                let received = tokio::time::Instant::now();
                let now = store.clock().now();
                let out = store
                    .write_users_page(&users, run_id, source, now)
                    .await
                    .map_err(ListFailure::Store)?;
                tracing::debug!(
                    page = report.pages + 1,
                    users = out.seen,
                    changed = out.added + out.changed,
                    write_ms = received.elapsed().as_millis() as u64,
                    "page written"
                );
                report.pages += 1;
                report.users_seen += out.seen;
                report.added += out.added;
                report.changed += out.changed;
                tracker.set(report.pages, report.users_seen);
                if queue_teams {
                    store
                        .queue_teams(&out.touched_ids, now)
                        .await
                        .map_err(ListFailure::Store)?;
                }
            }
        }
    }
}

async fn refresh_layouts(
    store: &Store,
    client: &CliqClient,
    cancel: &CancellationToken,
) -> Result<(), CliqError> {
    for name in LAYOUT_NAMES {
        if cancel.is_cancelled() {
            return Ok(());
        }
        // A call may wait out a lock: a stop must not wait with it.
        let layouts = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Ok(()),
            r = client.user_layouts(name) => r?,
        };
        let raw: Vec<_> = layouts
            .iter()
            .map(|l| serde_json::Value::Object(l.raw.clone()))
            .collect();
        let text = serde_json::to_string(&raw).unwrap_or_default();
        if let Err(e) = store.write_layout(name, &text, store.clock().now()).await {
            tracing::warn!(error = %e, layout = name, "layout not stored");
        }
    }
    Ok(())
}

enum TeamsFailure {
    Stopped,
    Cliq(CliqError),
    Store(StoreError),
}

/// Fetch queued team memberships: at most `limit` this run, and only while
/// the endpoint has headroom in its current window. Teams never make a run
/// wait for quota: what is left stays queued for the next runs.
async fn fetch_teams(
    parts: &PullParts<'_>,
    limit: usize,
    cancel: &CancellationToken,
) -> Result<u64, TeamsFailure> {
    let (store, client) = (parts.store, parts.client);
    let quota = parts.scheduler.limits().get(Endpoint::UserTeams).requests;
    let ids = store
        .next_team_fetches(limit as i64)
        .await
        .map_err(TeamsFailure::Store)?;
    let mut fetched = 0;
    for id in ids {
        let used = parts
            .scheduler
            .used(Endpoint::UserTeams)
            .await
            .map_err(|e| TeamsFailure::Store(e.into()))?;
        let locked = parts
            .scheduler
            .locked_until(Endpoint::UserTeams)
            .await
            .map_err(|e| TeamsFailure::Store(e.into()))?;
        if used >= quota || locked.is_some() {
            break;
        }
        let teams = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(TeamsFailure::Stopped),
            r = client.user_teams(&id) => r,
        };
        let teams = match teams {
            Ok(t) => t,
            Err(CliqError::Permanent { status: 404, .. }) => {
                store
                    .dequeue_teams(&id)
                    .await
                    .map_err(TeamsFailure::Store)?;
                continue;
            }
            Err(e) => return Err(TeamsFailure::Cliq(e)),
        };
        let rows: Vec<TeamRow> = teams
            .iter()
            .filter_map(|t| {
                Some(TeamRow {
                    team_id: t.team_id.clone()?,
                    name: t.name.clone(),
                    organization_id: t.organization_id.clone(),
                    description: t.description.clone(),
                    is_active: t.is_active,
                    participant_count: t.participant_count,
                    creation_time: t.creation_time.clone(),
                    is_moderator: t.is_moderator,
                    joined: t.joined,
                    raw_json: serde_json::to_string(&t.raw).unwrap_or_default(),
                })
            })
            .collect();
        store
            .write_user_teams(&id, &rows, store.clock().now())
            .await
            .map_err(TeamsFailure::Store)?;
        fetched += 1;
    }
    Ok(fetched)
}
