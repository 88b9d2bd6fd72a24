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

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::mirror::runs::{RunKind, RunStatus};
use hr_watch::HrWatch;

mod alerts;
mod hr_watch;
mod jobs;
mod schedules;
mod state;
pub use schedules::Schedules;
pub use state::{DaemonState, RunCounts};

/// How long a stop waits for the run in flight before abandoning it.
pub const STOP_GRACE: Duration = Duration::from_secs(8);

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

/// The jobs whose next fire time (in `next`, ordered full, incremental,
/// push) has come by `now`.
fn due_jobs(next: &[Option<DateTime<Utc>>; 3], now: DateTime<Utc>) -> Vec<RunKind> {
    [RunKind::Full, RunKind::Incremental, RunKind::Push]
        .into_iter()
        .zip(next.iter())
        .filter(|(_, at)| at.is_some_and(|at| at <= now))
        .map(|(j, _)| j)
        .collect()
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
        self.log_first_pull_skips(started, clock.now());
        let mut next = [
            self.next_after(RunKind::Full, clock.now()),
            self.next_after(RunKind::Incremental, clock.now()),
            self.next_after(RunKind::Push, clock.now()),
        ];
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let due = due_jobs(&next, clock.now());
            if due.is_empty() {
                if self.idle(&next, &shutdown, &reload).await {
                    continue;
                }
                break;
            }
            self.run_due(&due, &shutdown).await;
            self.advance(&mut next, &due, clock.now());
        }
        locks.abort();
        // Last words: what is queued goes out before the process ends.
        self.alerts.notifier().flush().await;
        tracing::info!("daemon loop ended");
    }

    /// Ticks that fell during the first pull are skipped, not replayed.
    fn log_first_pull_skips(&self, started: DateTime<Utc>, now: DateTime<Utc>) {
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
    }

    /// Nothing due: wait for the soonest fire time, a reload (SIGHUP) or a
    /// stop. `false`: stopped, the loop ends.
    async fn idle(
        &mut self,
        next: &[Option<DateTime<Utc>>; 3],
        shutdown: &CancellationToken,
        reload: &Notify,
    ) -> bool {
        let clock = self.app.store.clock().clone();
        let Some(wake) = next.iter().flatten().min().copied() else {
            shutdown.cancelled().await;
            return false;
        };
        self.state.systemd.status(&idle_status(next));
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = reload.notified() => {
                self.state.systemd.reloading("reloading the HR source (SIGHUP)");
                self.reload_hr("SIGHUP", shutdown).await;
                self.state.systemd.ready("HR source reloaded");
                true
            }
            _ = clock.sleep_until(wake) => true,
        }
    }

    /// Run the jobs due, pulls first, one at a time.
    async fn run_due(&mut self, due: &[RunKind], shutdown: &CancellationToken) {
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
            self.run_job(*job, shutdown).await;
            if shutdown.is_cancelled() {
                break;
            }
        }
    }

    /// Next fire times from *now*: ticks missed while a run was busy
    /// coalesce into the one that just ran.
    fn advance(&self, next: &mut [Option<DateTime<Utc>>; 3], due: &[RunKind], now: DateTime<Utc>) {
        for (i, job) in [RunKind::Full, RunKind::Incremental, RunKind::Push]
            .into_iter()
            .enumerate()
        {
            if due.contains(&job) || (job == RunKind::Incremental && due.contains(&RunKind::Full)) {
                if let Some(was) = next[i] {
                    self.log_coalesced(job, was, now);
                }
                next[i] = self.next_after(job, now);
            }
        }
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
}
