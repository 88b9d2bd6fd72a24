//! `cliq-sync status`: last runs, watermark, endpoint locks and quota use,
//! mirror counts. Read-only: safe beside a running daemon.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::cliq::quotas::QuotaScheduler;
use crate::cliq::Endpoint;
use crate::clock::to_db;
use crate::config::Settings;
use crate::mirror::held::HeldPush;
use crate::mirror::runs::RunRow;
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
    })
}

impl StatusReport {
    pub fn to_text(&self) -> String {
        let mut out = String::new();
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
        if self.teams_queue > 0 {
            out.push_str(&format!("teams      {} users queued\n", self.teams_queue));
        }
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
        // Emails, run errors and Cliq messages: never raw to a terminal.
        crate::text::escape_lines(&out).into_owned()
    }
}
