//! `cliq-sync run`: the daemon.
//!
//! One loop, three cron schedules (`incremental`, `full`, `push`). Runs never
//! overlap: the loop runs one job at a time, so a pull and a push never write
//! at once and a due run waits for the running one. A tick missed while
//! another run was busy is not replayed tick by tick: each schedule's next
//! fire time is computed from "now" after every run, so missed ticks
//! coalesce into one run. A full pull due at the same time as an incremental
//! one supersedes it.
//!
//! Stopping (SIGTERM/SIGINT, or the token in tests) cancels the run in
//! flight: it ends after the request in flight, is recorded as `stopped`,
//! and the loop returns. The caller then closes the database.
//!
//! The daemon's own figures (consecutive failures, last durations, push
//! results) live in [`DaemonState`], read by `/readyz` and `/metrics`.
//!
//! The HR file is used only once it has settled (`hr_watch`): unchanged
//! for `[hr] settle`, read whole. A push tick without a settled, valid
//! source pushes nothing and logs why.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use cron::Schedule;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::hr::HrSource;
use hr_watch::{HrWatch, Unusable};

mod hr_watch;
use crate::sync::push::{push, PushError, PushOptions};
use crate::sync::{pull, PullKind};

/// How long a stop waits for the run in flight before abandoning it.
pub const STOP_GRACE: Duration = Duration::from_secs(8);

/// The three schedules, parsed, and the zone they are read in.
#[derive(Debug, Clone)]
pub struct Schedules {
    pub incremental: Schedule,
    pub full: Schedule,
    pub push: Schedule,
    /// `[schedule] timezone`: "30 2 * * *" is 02:30 there, DST included.
    pub timezone: chrono_tz::Tz,
}

impl Schedules {
    pub fn parse(s: &crate::config::ScheduleSettings) -> anyhow::Result<Self> {
        use crate::config::parse_cron;
        let parse = |key: &str, line: &str| {
            parse_cron(line).map_err(|m| anyhow::anyhow!("schedule.{key}: {m}"))
        };
        Ok(Self {
            incremental: parse("incremental", &s.incremental)?,
            full: parse("full", &s.full)?,
            push: parse("push", &s.push)?,
            timezone: crate::config::parse_timezone(&s.timezone)
                .map_err(|m| anyhow::anyhow!("schedule.timezone: {m}"))?,
        })
    }

    /// The first fire time of `schedule` after `now`, read in the zone.
    pub fn next_after(&self, schedule: &Schedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        schedule
            .after(&now.with_timezone(&self.timezone))
            .next()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// What the daemon knows about itself (read by `/readyz` and `/metrics`).
#[derive(Default)]
pub struct DaemonState {
    pub consecutive_pull_failures: AtomicU32,
    pub runs_ok: AtomicU64,
    pub runs_failed: AtomicU64,
    pub runs_stopped: AtomicU64,
    /// Runs held by a safety threshold (a full pull's removal breaker).
    pub runs_held: AtomicU64,
    pub pushes_applied: AtomicU64,
    pub pushes_failed: AtomicU64,
    pub pushes_skipped: AtomicU64,
    pub hr_reloads: AtomicU64,
    pub hr_errors: AtomicU64,
    /// Push ticks skipped because the HR file had not settled or could not be read whole.
    pub hr_unsettled: AtomicU64,
    /// Seconds the last run of each kind took: (full, incremental, push).
    pub last_duration: Mutex<[Option<f64>; 3]>,
    pub running: AtomicBool,
    /// systemd's view (STATUS=, RELOADING=1); a no-op outside systemd.
    pub systemd: crate::systemd::Systemd,
}

impl DaemonState {
    fn record_duration(&self, kind: usize, secs: f64) {
        if let Ok(mut d) = self.last_duration.lock() {
            d[kind] = Some(secs);
        }
    }

    fn record_status(&self, status: &str) {
        let c = match status {
            "ok" => &self.runs_ok,
            "stopped" => &self.runs_stopped,
            "held" => &self.runs_held,
            _ => &self.runs_failed,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Full,
    Incremental,
    Push,
}

impl Job {
    fn describe(self) -> &'static str {
        match self {
            Job::Full => "full pull",
            Job::Incremental => "incremental pull",
            Job::Push => "push",
        }
    }
}

/// systemd's STATUS= between runs: the next run due, e.g. "idle; next:
/// incremental pull at 2026-06-01T09:05:00Z".
fn idle_status(next: &[Option<DateTime<Utc>>; 3]) -> String {
    let soonest = [Job::Full, Job::Incremental, Job::Push]
        .into_iter()
        .zip(next.iter())
        .filter_map(|(job, at)| at.map(|at| (at, job)))
        .min_by_key(|(at, _)| *at);
    match soonest {
        Some((at, job)) => format!(
            "idle; next: {} at {}",
            job.describe(),
            at.format("%Y-%m-%dT%H:%M:%SZ")
        ),
        None => "idle; no run scheduled".to_owned(),
    }
}

pub struct Daemon {
    app: App,
    schedules: Schedules,
    state: Arc<DaemonState>,
    /// The HR file and its settled version (`None` without `[hr]`).
    hr: Option<HrWatch>,
}

impl Daemon {
    pub fn new(app: App, state: Arc<DaemonState>) -> anyhow::Result<Self> {
        let schedules = Schedules::parse(&app.settings.schedule)?;
        let hr = app
            .settings
            .hr
            .as_ref()
            .map(|h| HrWatch::new(h.source.clone(), h.settle));
        Ok(Self {
            app,
            schedules,
            state,
            hr,
        })
    }

    pub fn state(&self) -> Arc<DaemonState> {
        self.state.clone()
    }

    /// Run until `shutdown` is cancelled. `reload` (SIGHUP) re-reads the HR
    /// source before the next push.
    pub async fn run(mut self, shutdown: CancellationToken, reload: Arc<Notify>) {
        let clock = self.app.store.clock().clone();
        // A pull at once on start (it becomes a full one without a watermark).
        self.run_job(Job::Incremental, &shutdown).await;
        let mut next = [
            self.next_after(Job::Full, clock.now()),
            self.next_after(Job::Incremental, clock.now()),
            self.next_after(Job::Push, clock.now()),
        ];
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let now = clock.now();
            let due: Vec<Job> = [Job::Full, Job::Incremental, Job::Push]
                .into_iter()
                .zip(next.iter())
                .filter(|(_, at)| at.is_some_and(|at| at <= now))
                .map(|(j, _)| j)
                .collect();
            if due.is_empty() {
                let Some(wake) = next.iter().flatten().min().copied() else {
                    shutdown.cancelled().await;
                    break;
                };
                self.state.systemd.status(&idle_status(&next));
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = reload.notified() => {
                        self.state.systemd.reloading("reloading the HR source (SIGHUP)");
                        self.reload_hr("SIGHUP", &shutdown).await;
                        self.state.systemd.ready("HR source reloaded");
                        continue;
                    }
                    _ = clock.sleep_until(wake) => continue,
                }
            }
            // A full pull covers an incremental one due at the same time.
            let pulls: Vec<Job> = if due.contains(&Job::Full) {
                vec![Job::Full]
            } else if due.contains(&Job::Incremental) {
                vec![Job::Incremental]
            } else {
                vec![]
            };
            for job in pulls.iter().chain(due.iter().filter(|j| **j == Job::Push)) {
                self.run_job(*job, &shutdown).await;
                if shutdown.is_cancelled() {
                    break;
                }
            }
            // Next fire times from *now*: ticks missed while a run was busy
            // coalesce into the one that just ran.
            let now = clock.now();
            for (i, job) in [Job::Full, Job::Incremental, Job::Push]
                .into_iter()
                .enumerate()
            {
                if due.contains(&job) || (job == Job::Incremental && due.contains(&Job::Full)) {
                    next[i] = self.next_after(job, now);
                }
            }
        }
        tracing::info!("daemon loop ended");
    }

    fn next_after(&self, job: Job, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let s = match job {
            Job::Full => &self.schedules.full,
            Job::Incremental => &self.schedules.incremental,
            Job::Push => &self.schedules.push,
        };
        self.schedules.next_after(s, now)
    }

    async fn run_job(&mut self, job: Job, shutdown: &CancellationToken) {
        self.state.running.store(true, Ordering::Relaxed);
        let started = tokio::time::Instant::now();
        let started_at = self.app.store.clock().now();
        self.state.systemd.status(&format!(
            "{} running since {}",
            job.describe(),
            started_at.format("%Y-%m-%dT%H:%M:%SZ")
        ));
        let cancel = shutdown.child_token();
        // The run sees the stop at once; if it has not ended within the
        // grace period (a request hanging), it is abandoned and its row
        // marked stopped, so the process still exits in time.
        let finished = {
            let work = async {
                match job {
                    Job::Full | Job::Incremental => self.pull(job, &cancel).await,
                    Job::Push => self.push(&cancel).await,
                }
            };
            tokio::select! {
                _ = work => true,
                _ = async {
                    shutdown.cancelled().await;
                    tokio::time::sleep(STOP_GRACE).await;
                } => false,
            }
        };
        if !finished {
            tracing::warn!("the run did not stop within {STOP_GRACE:?}; abandoning it");
            let now = self.app.store.clock().now();
            if let Err(e) = self.app.store.stop_running_runs(started_at, now).await {
                tracing::error!(error = %e, "could not record the abandoned run as stopped");
            }
            self.state.runs_stopped.fetch_add(1, Ordering::Relaxed);
        }
        let kind = match job {
            Job::Full => 0,
            Job::Incremental => 1,
            Job::Push => 2,
        };
        self.state
            .record_duration(kind, started.elapsed().as_secs_f64());
        self.state.running.store(false, Ordering::Relaxed);
    }

    async fn pull(&self, job: Job, cancel: &CancellationToken) {
        let kind = if job == Job::Full {
            PullKind::Full
        } else {
            PullKind::Incremental
        };
        match pull(&self.app, kind, cancel).await {
            Ok(r) => {
                self.state.record_status(&r.status);
                match r.status.as_str() {
                    "ok" => self
                        .state
                        .consecutive_pull_failures
                        .store(0, Ordering::Relaxed),
                    "failed" => {
                        let n = self
                            .state
                            .consecutive_pull_failures
                            .fetch_add(1, Ordering::Relaxed)
                            + 1;
                        tracing::error!(
                            run = r.run_id,
                            consecutive_failures = n,
                            error = r.error.as_deref().unwrap_or(""),
                            "pull failed"
                        );
                    }
                    // The pull itself worked; the breaker already logged
                    // why at error level. Repeated until someone confirms.
                    "held" => tracing::error!(
                        run = r.run_id,
                        "full pull held: nobody was marked removed; check the org, then run \
                         `cliq-sync sync --full --allow-removals`"
                    ),
                    _ => {}
                }
            }
            Err(e) => {
                self.state.runs_failed.fetch_add(1, Ordering::Relaxed);
                self.state
                    .consecutive_pull_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "pull failed: the mirror could not be written");
            }
        }
    }

    /// The settled HR source, (re)loaded if the file changed; `None` (and
    /// a log line saying why) when there is none to push from.
    async fn reload_hr(&mut self, why: &str, cancel: &CancellationToken) -> Option<&HrSource> {
        let clock = self.app.store.clock().clone();
        let watch = self.hr.as_mut()?;
        match watch.settled(&clock, cancel).await {
            Ok((source, fresh)) => {
                if fresh {
                    tracing::info!(reason = why, path = %source.path.display(), records = source.records.len(), "HR source loaded");
                    self.state.hr_reloads.fetch_add(1, Ordering::Relaxed);
                }
                Some(source)
            }
            Err(Unusable::Stopped) => None,
            Err(e @ Unusable::Invalid(_)) => {
                self.state.hr_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(reason = why, error = %e, "the HR source is invalid; no push until it is fixed");
                None
            }
            Err(e) => {
                self.state.hr_unsettled.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(reason = why, error = %e, "no settled HR source; nothing pushed");
                None
            }
        }
    }

    async fn push(&mut self, cancel: &CancellationToken) {
        // No [hr]: the daemon only mirrors.
        if self.reload_hr("push", cancel).await.is_none() {
            return;
        }
        let Some(hr) = self.hr.as_ref().and_then(HrWatch::source) else {
            return;
        };
        let opts = match PushOptions::from_settings(&self.app.settings, false, false) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, "push options invalid");
                return;
            }
        };
        let limits = self.app.scheduler.limits().clone();
        match push(
            &self.app.store,
            &self.app.client,
            &limits,
            hr,
            &opts,
            cancel,
        )
        .await
        {
            Ok(out) => {
                let r = &out.report;
                self.state.record_status(&r.status);
                self.state
                    .pushes_applied
                    .fetch_add(r.updates_applied + r.adds_applied, Ordering::Relaxed);
                self.state
                    .pushes_failed
                    .fetch_add(r.failed, Ordering::Relaxed);
                self.state
                    .pushes_skipped
                    .fetch_add(r.skipped, Ordering::Relaxed);
                // A run logs its own line; say why there was none.
                if r.run_id.is_none() {
                    tracing::info!(status = %r.status, "push: nothing sent");
                }
            }
            Err(PushError::Safety(msg)) => {
                self.state.runs_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(reason = %msg, "push refused by a safety threshold; review with `cliq-sync plan`, then `cliq-sync push --force`");
            }
            Err(e) => {
                self.state.runs_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "push failed");
            }
        }
    }
}

#[cfg(test)]
mod schedule_tests {
    use chrono::{TimeZone, Utc};

    use super::Schedules;
    use crate::config::ScheduleSettings;

    /// Cron lines are read in `[schedule] timezone`: "30 2 * * *" in Berlin
    /// is 00:30 UTC in summer (CEST) and 01:30 UTC in winter (CET).
    #[test]
    fn cron_lines_fire_in_the_configured_zone() {
        let s = Schedules::parse(&ScheduleSettings {
            full: "30 2 * * *".into(),
            timezone: "Europe/Berlin".into(),
            ..ScheduleSettings::default()
        })
        .unwrap();
        let summer = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        let winter = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        assert_eq!(
            s.next_after(&s.full, summer),
            Some(Utc.with_ymd_and_hms(2026, 6, 1, 0, 30, 0).unwrap())
        );
        assert_eq!(
            s.next_after(&s.full, winter),
            Some(Utc.with_ymd_and_hms(2026, 12, 1, 1, 30, 0).unwrap())
        );
        // UTC by default.
        let utc = Schedules::parse(&ScheduleSettings::default()).unwrap();
        assert_eq!(
            utc.next_after(&utc.full, summer),
            Some(Utc.with_ymd_and_hms(2026, 6, 1, 2, 30, 0).unwrap())
        );
    }
}
