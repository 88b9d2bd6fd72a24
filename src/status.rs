//! `cliq-sync status`: last runs, watermark, endpoint locks and quota use,
//! mirror counts. Read-only: safe beside a running daemon.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::cliq::quotas::QuotaScheduler;
use crate::cliq::Endpoint;
use crate::clock::to_db;
use crate::config::Settings;
use crate::mirror::held::HeldPush;
use crate::mirror::leavers::HrMissing;
use crate::mirror::progress::RunInProgress;
use crate::mirror::runs::{RunKind, RunRow};
use crate::mirror::Store;
use crate::sync::pull::MODIFIED_AFTER_HORIZON;

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub mirror: String,
    pub now: String,
    pub watermark: Option<String>,
    pub watermark_age_seconds: Option<i64>,
    /// Seconds until the watermark falls out of Cliq's 7-day window.
    pub watermark_expires_in_seconds: Option<i64>,
    pub users: Vec<StatusCount>,
    pub endpoints: Vec<EndpointStatus>,
    pub teams_queue: i64,
    pub pushes: crate::sync::push::PushStatusSummary,
    pub runs: Vec<RunRow>,
    /// A push held by a safety threshold that still waits (until a push
    /// run ends ok); `null` when none.
    pub push_held: Option<HeldPush>,
    /// Held plans that wait for `cliq-sync approve ID` (or, approved, for
    /// the next push of exactly that plan).
    pub held_plans: Vec<crate::mirror::held_plans::HeldPlan>,
    /// Runs `running` in a live process, with their progress so far.
    pub in_progress: Vec<RunInProgress>,
    /// People in Cliq whom the last plan found missing from HR (leavers:
    /// never written, the Users API has no deactivation).
    pub hr_missing: HrMissing,
}

#[derive(Debug, Serialize)]
pub struct StatusCount {
    pub status: String,
    pub users: i64,
}

#[derive(Debug, Serialize)]
pub struct EndpointStatus {
    pub endpoint: String,
    pub quota: u32,
    pub window_seconds: u64,
    pub used_in_window: u32,
    pub locked: bool,
    pub locked_until: Option<String>,
    pub lock_reason: Option<String>,
}

pub async fn collect(
    store: &Store,
    settings: &Settings,
    now: DateTime<Utc>,
) -> anyhow::Result<StatusReport> {
    let limits = settings.limits.to_limits()?;
    let scheduler = QuotaScheduler::new(store, limits.clone());
    let locks = scheduler.locks().await?;
    let mut endpoints = Vec::new();
    for ep in Endpoint::ALL {
        let lock = locks.iter().find(|l| l.endpoint == ep.name());
        let locked = lock.is_some_and(|l| l.locked_until > now);
        endpoints.push(EndpointStatus {
            endpoint: ep.name().into(),
            quota: limits.get(ep).requests,
            window_seconds: limits.get(ep).per.as_secs(),
            used_in_window: scheduler.used(ep).await?,
            locked,
            locked_until: lock.filter(|_| locked).map(|l| to_db(l.locked_until)),
            lock_reason: lock.filter(|_| locked).map(|l| l.reason.clone()),
        });
    }
    let watermark = store.watermark().await?;
    Ok(StatusReport {
        mirror: store.path().display().to_string(),
        now: to_db(now),
        watermark: watermark.map(to_db),
        watermark_age_seconds: watermark.map(|w| (now - w).num_seconds()),
        watermark_expires_in_seconds: watermark
            .map(|w| (w + MODIFIED_AFTER_HORIZON - now).num_seconds()),
        users: store
            .user_counts()
            .await?
            .into_iter()
            .map(|(status, users)| StatusCount { status, users })
            .collect(),
        endpoints,
        teams_queue: store.teams_queue_len().await?,
        pushes: crate::sync::push::status_summary(store).await?,
        runs: store.recent_runs(10).await?,
        push_held: store.held_push().await?,
        held_plans: store.waiting_held_plans().await?,
        in_progress: store.runs_in_progress().await?,
        hr_missing: store.hr_missing(now).await?,
    })
}

/// `not in HR  3 people in Cliq …`: `None` when the last plan found nobody.
fn hr_missing_line(m: &HrMissing) -> Option<String> {
    if m.users == 0 {
        return None;
    }
    let longest = humantime::format_duration(std::time::Duration::from_secs(
        m.oldest_seconds.unwrap_or(0).max(0) as u64,
    ));
    Some(format!(
        "not in HR  {} {} in Cliq but not in the HR source (longest: {} since {}, {longest}); \
         nothing is written for them: deactivate leavers in Cliq's admin console\n",
        m.users,
        if m.users == 1 { "person" } else { "people" },
        m.oldest_email.as_deref().unwrap_or("(no email)"),
        m.oldest_since.as_deref().unwrap_or("-"),
    ))
}

impl StatusReport {
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.state_text(&mut out);
        self.pushes_text(&mut out);
        self.endpoints_text(&mut out);
        self.runs_text(&mut out);
        // Emails, run errors and Cliq messages: never raw to a terminal.
        crate::text::escape_lines(&out).into_owned()
    }

    /// The mirror, its watermark and counts, and what waits for a person.
    fn state_text(&self, out: &mut String) {
        out.push_str(&format!("mirror     {}\n", self.mirror));
        match (&self.watermark, self.watermark_age_seconds) {
            (Some(w), Some(age)) => out.push_str(&format!(
                "watermark  {w} ({} ago)\n",
                humantime::format_duration(std::time::Duration::from_secs(age.max(0) as u64))
            )),
            _ => out.push_str("watermark  none (the next pull is a full one)\n"),
        }
        let total: i64 = self.users.iter().map(|c| c.users).sum();
        out.push_str(&format!("users      {total}"));
        for c in &self.users {
            out.push_str(&format!("  {}={}", c.status, c.users));
        }
        out.push('\n');
        if let Some(h) = &self.push_held {
            out.push_str(&format!(
                "push held  run {}, since {} (last held {}): {}\n",
                h.run_id,
                h.held_at,
                h.last_held_at.as_deref().unwrap_or("-"),
                h.reason
            ));
        }
        for p in &self.held_plans {
            out.push_str(&held_plan_line(p));
        }
        if let Some(line) = hr_missing_line(&self.hr_missing) {
            out.push_str(&line);
        }
        if self.teams_queue > 0 {
            out.push_str(&format!("teams      {} users queued\n", self.teams_queue));
        }
    }

    /// Push attempts by status, and the remembered permanent failures.
    fn pushes_text(&self, out: &mut String) {
        if !self.pushes.attempts.is_empty() {
            out.push_str("pushes    ");
            for (status, n) in &self.pushes.attempts {
                out.push_str(&format!("  {status}={n}"));
            }
            out.push('\n');
        }
        if !self.pushes.failures.is_empty() {
            out.push_str(&format!(
                "\n{} push failures not retried until the HR values change or push.retry_failed_after has passed (or push --retry-failed):\n",
                self.pushes.failures.len()
            ));
            for f in self.pushes.failures.iter().take(20) {
                out.push_str(&format!(
                    "  {:<40} {:<6} {:<28} {}\n",
                    f.email_id,
                    f.action,
                    f.error_code.as_deref().unwrap_or("-"),
                    f.message.as_deref().unwrap_or("")
                ));
            }
            if self.pushes.failures.len() > 20 {
                out.push_str(&format!(
                    "  … and {} more (status --json)\n",
                    self.pushes.failures.len() - 20
                ));
            }
        }
    }

    /// Each endpoint's quota, use and lock, then the runs in progress.
    fn endpoints_text(&self, out: &mut String) {
        out.push_str("\nendpoint       quota        used  lock\n");
        for e in &self.endpoints {
            let lock = match (&e.locked_until, &e.lock_reason) {
                (Some(u), Some(r)) => format!("LOCKED until {u} ({r})"),
                _ => "-".into(),
            };
            out.push_str(&format!(
                "{:<14} {:>3}/{:<6}  {:>4}  {lock}\n",
                e.endpoint,
                e.quota,
                format!("{}s", e.window_seconds),
                e.used_in_window
            ));
        }
        for r in &self.in_progress {
            out.push_str(&in_progress_line(r, &self.now));
        }
    }

    /// The last runs.
    fn runs_text(&self, out: &mut String) {
        out.push_str("\nrun   kind         status   started                   requests  seen  changed  error\n");
        for r in &self.runs {
            out.push_str(&format!(
                "{:<5} {:<12} {:<8} {:<25} {:>8} {:>5} {:>8}  {}\n",
                r.id,
                r.kind,
                r.status,
                r.started_at,
                r.requests,
                r.users_seen,
                r.users_changed,
                r.error.as_deref().unwrap_or("")
            ));
        }
    }
}

/// A watermark older than this is "near 7 days": past it, a few missed
/// pulls (a long weekend) make the next incremental pull a full one, and
/// Cliq's `modified_after` stops seeing changes at 7 days.
pub(crate) const WATERMARK_WARN_AGE: chrono::Duration = chrono::Duration::days(5);

/// `status --check`: healthy, or the reasons it is not (for cron, Nagios,
/// monit: exit 0 or 1).
#[derive(Debug, Serialize)]
pub(crate) struct HealthCheck {
    pub healthy: bool,
    pub reasons: Vec<String>,
}

impl HealthCheck {
    pub fn to_text(&self) -> String {
        if self.healthy {
            return "healthy\n".into();
        }
        let mut out = format!("unhealthy ({} reason(s)):\n", self.reasons.len());
        for r in &self.reasons {
            out.push_str(&format!("  - {r}\n"));
        }
        crate::text::escape_lines(&out).into_owned()
    }
}

/// Judge the mirror: the last pull, the watermark, the endpoint locks, held
/// runs, and (when `[hr]` is configured) the HR source.
pub(crate) async fn check(
    store: &Store,
    settings: &Settings,
    report: &StatusReport,
) -> anyhow::Result<HealthCheck> {
    use crate::mirror::runs::{RunKind, RunStatus};
    let mut reasons = Vec::new();
    let pull = store
        .last_finished_run(&[RunKind::Full, RunKind::Incremental])
        .await?;
    if let Some(r) = pull.filter(|r| r.status == RunStatus::Failed) {
        reasons.push(format!(
            "the last pull failed (run {}, {}, {}): {}",
            r.id,
            r.kind,
            r.started_at,
            r.error.as_deref().unwrap_or("no error recorded")
        ));
    }
    if let Some(age) = report.watermark_age_seconds {
        if age > WATERMARK_WARN_AGE.num_seconds() {
            reasons.push(format!(
                "the watermark is {} days old, near 7 days (Cliq's modified_after window): \
                 check that pulls run and succeed (`cliq-sync sync`)",
                age / 86_400
            ));
        }
    }
    for e in report.endpoints.iter().filter(|e| e.locked) {
        reasons.push(format!(
            "the endpoint {} is locked by Cliq until {} ({})",
            e.endpoint,
            e.locked_until.as_deref().unwrap_or("?"),
            e.lock_reason.as_deref().unwrap_or("throttled")
        ));
    }
    held_reasons(store, &mut reasons).await?;
    if let Some(hr) = &settings.hr {
        let loaded = match hr.mapping() {
            Ok(m) => crate::hr::load_mapped(&hr.source, &m)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = loaded {
            reasons.push(format!("the HR source is invalid: {e}"));
        }
    }
    Ok(HealthCheck {
        healthy: reasons.is_empty(),
        reasons,
    })
}

/// A push or a full pull whose newest run is `held` waits for a person.
async fn held_reasons(store: &Store, reasons: &mut Vec<String>) -> anyhow::Result<()> {
    use crate::mirror::runs::{RunKind, RunStatus};
    for (kind, how) in [
        (
            RunKind::Push,
            "review the plan (`cliq-sync plan`), then `cliq-sync push --force`",
        ),
        (
            RunKind::Full,
            "check the org in Cliq, then `cliq-sync sync --full --allow-removals`",
        ),
    ] {
        if let Some(r) = store.last_finished_run(&[kind]).await? {
            if r.status == RunStatus::Held {
                reasons.push(format!(
                    "the last {} is held (run {}): {}; {how}",
                    kind.describe(),
                    r.id,
                    r.error
                        .as_deref()
                        .unwrap_or("a safety threshold stopped it")
                ));
            }
        }
    }
    Ok(())
}

/// "in progress: run 12, full pull since …: page 34/~150, 340/~1,500 users,
/// 34 requests, ETA … (in 3m)".
fn in_progress_line(r: &RunInProgress, now: &str) -> String {
    use crate::sync::progress::{short, thousands};
    let n = |v: i64| thousands(v.max(0) as u64);
    let total = |v: Option<i64>| v.map(|v| format!("/~{}", n(v))).unwrap_or_default();
    let what = if r.kind == RunKind::Push {
        format!("{}{} users", n(r.users_seen), total(r.expected_users))
    } else {
        format!(
            "page {}{}, {}{} users",
            n(r.pages),
            total(r.expected_pages),
            n(r.users_seen),
            total(r.expected_users)
        )
    };
    let mut line = format!(
        "in progress: run {}, {} since {}: {what}, {} requests",
        r.id,
        r.kind.describe(),
        r.started_at,
        n(r.requests)
    );
    if let Some(eta) = &r.eta_at {
        let left = match (crate::clock::from_db(eta), crate::clock::from_db(now)) {
            (Some(eta), Some(now)) => (eta - now).to_std().unwrap_or_default(),
            _ => std::time::Duration::ZERO,
        };
        line.push_str(&format!(", ETA {eta} (in {})", short(left)));
    }
    if let (Some(pid), Some(host)) = (r.owner_pid, &r.owner_host) {
        line.push_str(&format!(" [pid {pid} on {host}]"));
    }
    line.push('\n');
    line
}

/// One held plan in `status`: what it is and what to run.
fn held_plan_line(p: &crate::mirror::held_plans::HeldPlan) -> String {
    let state = match &p.approved_at {
        Some(at) => format!("approved {at}; the next push of exactly this plan sends it"),
        None => format!(
            "waiting: review with `cliq-sync plan`, release with `cliq-sync approve {}`",
            p.id
        ),
    };
    format!(
        "held plan {} (run {}), {} changes, held {}: {state}\n",
        p.id, p.run_id, p.changes, p.held_at
    )
}
