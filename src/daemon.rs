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

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use cron::Schedule;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::hr::HrSource;
use crate::mirror::runs::{RunKind, RunStatus};
use hr_watch::{HrWatch, Unusable};

mod alerts;
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
    /// Runs by kind and final status (`cliq_sync_runs_total`).
    pub runs: RunCounts,
    /// The last HR load/validation result: 1 valid, 0 invalid or
    /// unreadable, -1 not tried yet (`cliq_sync_hr_source_valid`).
    pub hr_source_valid: AtomicU8,
    pub pushes_applied: AtomicU64,
    pub pushes_failed: AtomicU64,
    pub pushes_skipped: AtomicU64,
    pub hr_reloads: AtomicU64,
    pub hr_errors: AtomicU64,
    /// Push ticks skipped because the HR file had not settled or could not be read whole.
    pub hr_unsettled: AtomicU64,
    /// Seconds the last run of each kind took, in the order of
    /// [`RunKind::ALL`] (full, incremental, push).
    pub last_duration: Mutex<[Option<f64>; 3]>,
    pub running: AtomicBool,
    /// systemd's view (STATUS=, RELOADING=1); a no-op outside systemd.
    pub systemd: crate::systemd::Systemd,
}

impl DaemonState {
    fn record_duration(&self, kind: RunKind, secs: f64) {
        let i = RunKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        if let Ok(mut d) = self.last_duration.lock() {
            d[i] = Some(secs);
        }
    }

    /// `cliq_sync_hr_source_valid`: `None` before the first load.
    pub fn hr_source_valid(&self) -> Option<bool> {
        match self.hr_source_valid.load(Ordering::Relaxed) {
            0 => None,
            v => Some(v == 1),
        }
    }
}

/// Runs of this process by kind and final status ([`RunStatus::FINAL`]; a
/// run reported still `running` counts as `failed`: it did not end well).
#[derive(Default)]
pub struct RunCounts(Mutex<BTreeMap<(RunKind, RunStatus), u64>>);

impl RunCounts {
    pub fn add(&self, kind: RunKind, status: RunStatus) {
        let status = match status {
            RunStatus::Running => RunStatus::Failed,
            s => s,
        };
        if let Ok(mut m) = self.0.lock() {
            *m.entry((kind, status)).or_default() += 1;
        }
    }

    /// Runs of any kind that ended with `status`.
    pub fn total(&self, status: RunStatus) -> u64 {
        self.snapshot()
            .into_iter()
            .filter(|((_, s), _)| *s == status)
            .map(|(_, n)| n)
            .sum()
    }

    /// `((kind, status), runs)` for every kind and final status, zeros
    /// included: a series that exists from the start lets `increase()`
    /// see the first run of its kind.
    pub fn snapshot(&self) -> Vec<((RunKind, RunStatus), u64)> {
        let m = self.0.lock().map(|m| m.clone()).unwrap_or_default();
        RunKind::ALL
            .iter()
            .flat_map(|k| RunStatus::FINAL.map(|s| (*k, s)))
            .map(|key| (key, m.get(&key).copied().unwrap_or(0)))
            .collect()
    }
}

/// systemd's STATUS= between runs: the next run due, e.g. "idle; next:
/// incremental pull at 2026-06-01T09:05:00Z".
fn idle_status(next: &[Option<DateTime<Utc>>; 3]) -> String {
    let soonest = [RunKind::Full, RunKind::Incremental, RunKind::Push]
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
    /// The config file loaded, for the startup line (`None`: defaults and
    /// environment only).
    config_file: Option<std::path::PathBuf>,
    /// `[[notify]]`: incidents raised and cleared as jobs end.
    alerts: alerts::Alerts,
}

impl Daemon {
    pub fn new(app: App, state: Arc<DaemonState>) -> anyhow::Result<Self> {
        let schedules = Schedules::parse(&app.settings.schedule)?;
        let app_pull_threshold = app.settings.server.ready_max_pull_failures;
        let hr = app
            .settings
            .hr
            .as_ref()
            .map(|h| {
                anyhow::Ok(HrWatch::new(h.source.clone(), h.settle).with_mapping(h.mapping()?))
            })
            .transpose()?;
        Ok(Self {
            app,
            schedules,
            state,
            hr,
            config_file: None,
            alerts: alerts::Alerts::new(crate::notify::Notifier::disabled(), app_pull_threshold),
        })
    }

    /// Name the config file in the startup line.
    pub fn with_config_file(mut self, path: Option<&std::path::Path>) -> Self {
        self.config_file = path.map(std::path::Path::to_path_buf);
        self
    }

    /// Tell `notifier` about incidents (default: nobody).
    pub fn with_notifier(mut self, notifier: crate::notify::Notifier) -> Self {
        let threshold = self.app.settings.server.ready_max_pull_failures;
        self.alerts = alerts::Alerts::new(notifier, threshold);
        self
    }

    /// The startup line: what runs, with what, and when.
    fn log_startup(&self, now: DateTime<Utc>) {
        let at = |job| {
            self.next_after(job, now)
                .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_else(|| "never".into())
        };
        let (inc, full, push) = (
            at(RunKind::Incremental),
            at(RunKind::Full),
            at(RunKind::Push),
        );
        let config = self.config_file.as_ref().map(|p| p.display().to_string());
        let mirror = self.app.settings.mirror.path.display().to_string();
        let push_enabled = self.app.settings.push.enabled;
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            config_file = config.as_deref().unwrap_or(""),
            %mirror,
            push_enabled,
            next_incremental = %inc,
            next_full = %full,
            next_push = %push,
            "cliq-sync {} starting: config {}, mirror {mirror}, push {}; next: incremental pull at {inc}, \
             full pull at {full}, push at {push} (a first pull runs now)",
            env!("CARGO_PKG_VERSION"),
            config.as_deref().unwrap_or("(no config file)"),
            if push_enabled { "enabled" } else { "disabled" },
        );
    }

    /// Ticks of `job`'s schedule in `(after, until]`: the ones a long run
    /// made the loop miss. Bounded: a far `until` (a suspended host) must
    /// not make the daemon count forever.
    fn ticks_between(&self, job: RunKind, after: DateTime<Utc>, until: DateTime<Utc>) -> usize {
        let s = match job {
            RunKind::Full => &self.schedules.full,
            RunKind::Incremental => &self.schedules.incremental,
            RunKind::Push => &self.schedules.push,
        };
        s.after(&after)
            .take_while(|t| *t <= until)
            .take(10_000)
            .count()
    }

    pub fn state(&self) -> Arc<DaemonState> {
        self.state.clone()
    }

    /// Run until `shutdown` is cancelled. `reload` (SIGHUP) re-reads the HR
    /// source before the next push.
    pub async fn run(mut self, shutdown: CancellationToken, reload: Arc<Notify>) {
        let clock = self.app.store.clock().clone();
        let started = clock.now();
        self.log_startup(started);
        let locks = tokio::spawn(alerts::watch_locks(
            self.app.clone(),
            self.alerts.notifier().clone(),
            shutdown.clone(),
        ));
        // A pull at once on start (it becomes a full one without a watermark).
        self.run_job(RunKind::Incremental, &shutdown).await;
        let now = clock.now();
        for job in [RunKind::Full, RunKind::Incremental, RunKind::Push] {
            let ticks = self.ticks_between(job, started, now);
            if ticks > 0 {
                tracing::debug!(
                    job = %job,
                    ticks,
                    "{ticks} {} tick(s) skipped: they fell during the first pull",
                    job.describe()
                );
            }
        }
        let mut next = [
            self.next_after(RunKind::Full, clock.now()),
            self.next_after(RunKind::Incremental, clock.now()),
            self.next_after(RunKind::Push, clock.now()),
        ];
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let now = clock.now();
            let due: Vec<RunKind> = [RunKind::Full, RunKind::Incremental, RunKind::Push]
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
            if due.contains(&RunKind::Full) && due.contains(&RunKind::Incremental) {
                tracing::debug!(
                    job = %RunKind::Incremental,
                    ticks = 1,
                    "incremental pull tick skipped: the full pull due with it covers it"
                );
            }
            // A full pull covers an incremental one due at the same time.
            let pulls: Vec<RunKind> = if due.contains(&RunKind::Full) {
                vec![RunKind::Full]
            } else if due.contains(&RunKind::Incremental) {
                vec![RunKind::Incremental]
            } else {
                vec![]
            };
            for job in pulls
                .iter()
                .chain(due.iter().filter(|j| **j == RunKind::Push))
            {
                self.run_job(*job, &shutdown).await;
                if shutdown.is_cancelled() {
                    break;
                }
            }
            // Next fire times from *now*: ticks missed while a run was busy
            // coalesce into the one that just ran.
            let now = clock.now();
            for (i, job) in [RunKind::Full, RunKind::Incremental, RunKind::Push]
                .into_iter()
                .enumerate()
            {
                if due.contains(&job)
                    || (job == RunKind::Incremental && due.contains(&RunKind::Full))
                {
                    if let Some(was) = next[i] {
                        self.log_coalesced(job, was, now);
                    }
                    next[i] = self.next_after(job, now);
                }
            }
        }
        locks.abort();
        // Last words: what is queued goes out before the process ends.
        self.alerts.notifier().flush().await;
        tracing::info!("daemon loop ended");
    }

    /// The tick at `was` ran (or was covered); ticks after it up to `now`
    /// fell while a run was busy and coalesce into that run.
    fn log_coalesced(&self, job: RunKind, was: DateTime<Utc>, now: DateTime<Utc>) {
        let missed = self.ticks_between(job, was, now);
        if missed > 0 {
            tracing::debug!(
                job = %job,
                ticks = missed + 1,
                since = %was.format("%Y-%m-%dT%H:%M:%SZ"),
                "{} {} ticks coalesced into one run: a run was busy",
                missed + 1,
                job.describe()
            );
        }
    }

    /// A push held by a threshold: counted and logged at error level once
    /// per incident; the same plan held again on a later tick is the same
    /// run (see `mirror::held`), logged at warn and not counted again.
    fn held(&self, stop: &crate::sync::push::SafetyStop) {
        let run = stop.run_id.unwrap_or_default();
        if stop.failed {
            // `[push] on_threshold = "fail"`: a failed run, every tick.
            self.state.runs.add(RunKind::Push, RunStatus::Failed);
            tracing::error!(run, reason = %stop.reason, "push failed: over a safety threshold; nothing sent");
            self.alerts.push_failed(
                stop.run_id,
                &format!(
                    "push over a safety threshold, nothing sent: {}",
                    stop.reason
                ),
            );
            return;
        }
        if stop.repeated {
            tracing::warn!(
                run,
                "push still held: the same plan as at the last push; nothing sent"
            );
            return;
        }
        self.state.runs.add(RunKind::Push, RunStatus::Held);
        tracing::error!(run, reason = %stop.reason, "push held by a safety threshold; nothing sent");
        self.alerts.push_held(stop);
    }

    fn next_after(&self, job: RunKind, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let s = match job {
            RunKind::Full => &self.schedules.full,
            RunKind::Incremental => &self.schedules.incremental,
            RunKind::Push => &self.schedules.push,
        };
        self.schedules.next_after(s, now)
    }

    async fn run_job(&mut self, job: RunKind, shutdown: &CancellationToken) {
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
        let (finished, job_ok) = {
            let work = async {
                match job {
                    RunKind::Full | RunKind::Incremental => Some(self.pull(job, &cancel).await),
                    RunKind::Push => self.push(&cancel).await,
                }
            };
            tokio::select! {
                ok = work => (true, ok),
                _ = async {
                    shutdown.cancelled().await;
                    tokio::time::sleep(STOP_GRACE).await;
                } => (false, None),
            }
        };
        if finished {
            self.alerts.after_job(&self.app, job_ok);
        }
        if !finished {
            tracing::warn!("the run did not stop within {STOP_GRACE:?}; abandoning it");
            let now = self.app.store.clock().now();
            if let Err(e) = self.app.store.stop_running_runs(started_at, now).await {
                tracing::error!(error = %e, "could not record the abandoned run as stopped");
            }
            self.state.runs.add(job, RunStatus::Stopped);
        }
        self.state
            .record_duration(job, started.elapsed().as_secs_f64());
        self.state.running.store(false, Ordering::Relaxed);
    }

    /// Whether the pull worked (for the token-failing notification).
    async fn pull(&self, job: RunKind, cancel: &CancellationToken) -> bool {
        let kind = if job == RunKind::Full {
            PullKind::Full
        } else {
            PullKind::Incremental
        };
        match pull(&self.app, kind, cancel).await {
            Ok(r) => {
                self.state.runs.add(r.kind.into(), r.status);
                match r.status {
                    RunStatus::Ok => {
                        self.state
                            .consecutive_pull_failures
                            .store(0, Ordering::Relaxed);
                        self.alerts.pull_done(0, Some(r.run_id), None);
                    }
                    RunStatus::Failed => {
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
                        self.alerts.pull_done(n, Some(r.run_id), r.error.as_deref());
                    }
                    // The pull itself worked; the breaker already logged
                    // why at error level. Repeated until someone confirms.
                    RunStatus::Held => tracing::error!(
                        run = r.run_id,
                        "full pull held: nobody was marked removed; check the org, then run \
                         `cliq-sync sync --full --allow-removals`"
                    ),
                    _ => {}
                }
                r.ok()
            }
            Err(e) => {
                self.state.runs.add(kind.into(), RunStatus::Failed);
                let n = self
                    .state
                    .consecutive_pull_failures
                    .fetch_add(1, Ordering::Relaxed)
                    + 1;
                tracing::error!(error = %e, "pull failed: the mirror could not be written");
                let why = format!("the mirror could not be written: {e}");
                self.alerts.pull_done(n, None, Some(&why));
                false
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
                self.state.hr_source_valid.store(1, Ordering::Relaxed);
                self.alerts.hr_valid();
                if fresh {
                    tracing::info!(reason = why, path = %source.path.display(), records = source.len(), "HR source loaded");
                    self.state.hr_reloads.fetch_add(1, Ordering::Relaxed);
                }
                Some(source)
            }
            Err(Unusable::Stopped) => None,
            Err(e @ (Unusable::Invalid(_) | Unusable::Unreadable { .. })) => {
                // Someone must act: the export is broken or gone. (A file
                // still being written is transient: the value stays.)
                self.state.hr_source_valid.store(2, Ordering::Relaxed);
                self.state.hr_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(reason = why, error = %e, "the HR source is invalid; no push until it is fixed");
                self.alerts.hr_invalid(&e.to_string());
                None
            }
            Err(e) => {
                self.state.hr_unsettled.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(reason = why, error = %e, "no settled HR source; nothing pushed");
                None
            }
        }
    }

    /// Whether the push's requests worked (for the token-failing
    /// notification); `None`: it sent none (no HR source, held, nothing to do).
    async fn push(&mut self, cancel: &CancellationToken) -> Option<bool> {
        // No [hr]: the daemon only mirrors.
        self.reload_hr("push", cancel).await?;
        let hr = self.hr.as_ref().and_then(HrWatch::source)?;
        let opts = match PushOptions::from_settings(&self.app.settings, false, false) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, "push options invalid");
                self.alerts
                    .push_failed(None, &format!("push options invalid: {e}"));
                return None;
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
                if r.run_id.is_some() {
                    // With a run, a push report's status is its run's
                    // (`disabled`, `dry_run` come without one).
                    let status = r.status.parse().unwrap_or(RunStatus::Failed);
                    self.state.runs.add(RunKind::Push, status);
                }
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
                self.alerts.push_done(r);
                (r.requests > 0).then(|| r.ok())
            }
            Err(PushError::Safety(stop)) => {
                self.held(&stop);
                None
            }
            Err(e) => {
                self.state.runs.add(RunKind::Push, RunStatus::Failed);
                tracing::error!(error = %e, "push failed");
                self.alerts.push_failed(None, &format!("push failed: {e}"));
                Some(false)
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
