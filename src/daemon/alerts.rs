//! What the daemon tells `[[notify]]` (see `crate::notify`): it raises an
//! incident when a condition starts and clears it when the condition is
//! gone; the notifier sends each incident once and then one `recovered`.

use std::collections::BTreeSet;

use crate::app::App;
use crate::notify::{Event, Incident, Notifier};
use crate::sync::push::{PushReport, SafetyStop};

pub(super) struct Alerts {
    notifier: Notifier,
    /// `[server] ready_max_pull_failures`: this many failed pulls in a row
    /// is `pull_failing` (the same count that turns `/readyz` 503).
    pull_threshold: u32,
    /// Token POST failures seen so far (the token manager's counter).
    token_failures: u64,
}

impl Alerts {
    pub fn new(notifier: Notifier, pull_threshold: u32) -> Self {
        Self {
            notifier,
            pull_threshold: pull_threshold.max(1),
            token_failures: 0,
        }
    }

    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    pub fn push_held(&self, stop: &SafetyStop) {
        let approve = match &stop.plan_id {
            Some(id) => format!("held plan {id}; release it with `cliq-sync approve {id}`"),
            None => "review it with `cliq-sync approve`".to_owned(),
        };
        let summary = format!(
            "push held by a safety threshold, nothing sent: {}; {approve}",
            stop.reason
        );
        self.notifier
            .raise(Incident::new(Event::PushHeld, summary).with_run(stop.run_id));
    }

    /// A push run ended (or had nothing to send). Any outcome that is not
    /// held ends `push_held`; `push_failed` ends only with a run in which
    /// nothing failed (a tick with nothing to send proves nothing).
    pub fn push_done(&self, r: &PushReport) {
        let applied = r.updates_applied + r.adds_applied;
        if r.ok() {
            self.notifier
                .clear("push_held", format!("push {}: {applied} applied", r.status));
        }
        if r.ok() && r.failed == 0 {
            if r.run_id.is_some() {
                self.notifier.clear(
                    "push_failed",
                    format!("push {}: {applied} applied, none failed", r.status),
                );
            }
            return;
        }
        let why = match (&r.error, r.failed) {
            (Some(e), _) => e.clone(),
            (None, n) => format!(
                "{n} change(s) could not be written ({applied} applied); they are tried again \
                 at a later push; see `cliq-sync status`"
            ),
        };
        self.push_failed(r.run_id, &format!("push {}: {why}", r.status));
    }

    pub fn push_failed(&self, run_id: Option<i64>, why: &str) {
        self.notifier
            .raise(Incident::new(Event::PushFailed, why.to_owned()).with_run(run_id));
    }

    /// After a pull: `failures` in a row so far (0: it worked).
    pub fn pull_done(&self, failures: u32, run_id: Option<i64>, error: Option<&str>) {
        if failures == 0 {
            self.notifier
                .clear("pull_failing", "a pull succeeded again");
        } else if failures >= self.pull_threshold {
            let summary = format!(
                "{failures} pulls in a row failed; the mirror is getting stale: {}",
                error.unwrap_or("see the logs")
            );
            self.notifier
                .raise(Incident::new(Event::PullFailing, summary).with_run(run_id));
        }
    }

    pub fn hr_invalid(&self, error: &str) {
        self.notifier.raise(Incident::new(
            Event::HrSourceInvalid,
            format!("the HR source is invalid; nothing is pushed until it is fixed: {error}"),
        ));
    }

    pub fn hr_valid(&self) {
        self.notifier
            .clear("hr_source_invalid", "the HR source is valid again");
    }

    /// After every job: the token refresh. A refresh that failed in a job
    /// whose requests failed is `token_failing`; a job whose requests
    /// worked clears it. `job_ok` is `None` for a job that sent nothing
    /// (a push without a settled HR source proves nothing about the token).
    pub fn after_job(&mut self, app: &App, job_ok: Option<bool>) {
        let failures: u64 = app.auth.refresh_failures().values().sum();
        let new_failures = failures > self.token_failures;
        self.token_failures = failures;
        let Some(job_ok) = job_ok else { return };
        if new_failures && !job_ok {
            self.notifier.raise(Incident::new(
                Event::TokenFailing,
                "the OAuth access token could not be refreshed; check the client and refresh \
                 token (`cliq-sync check-config --online`)",
            ));
        } else if job_ok {
            self.notifier
                .clear("token_failing", "the access token was refreshed again");
        }
    }
}

/// How often the lock watcher looks at the quota scheduler's locks.
const LOCK_POLL: std::time::Duration = std::time::Duration::from_secs(30);

/// Cliq's locks, watched on their own: a job waits out a lock inside
/// itself, so only a look while it runs sees the lock in force. Runs until
/// `stop`; a no-op without notification targets.
pub(super) async fn watch_locks(
    app: App,
    notifier: Notifier,
    stop: tokio_util::sync::CancellationToken,
) {
    if !notifier.is_enabled() {
        return;
    }
    let mut locked = BTreeSet::new();
    let mut tick = tokio::time::interval(LOCK_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => check_locks(&app, &notifier, &mut locked).await,
        }
    }
}

async fn check_locks(app: &App, notifier: &Notifier, locked: &mut BTreeSet<String>) {
    let now = app.store.clock().now();
    let locks = match app.scheduler.locks().await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the endpoint locks for notifications");
            return;
        }
    };
    let current: BTreeSet<String> = locks
        .iter()
        .filter(|l| l.locked_until > now)
        .map(|l| l.endpoint.clone())
        .collect();
    for l in locks.iter().filter(|l| current.contains(&l.endpoint)) {
        if locked.insert(l.endpoint.clone()) {
            let summary = format!(
                "Cliq locked {} until {} ({}); requests to it wait until then",
                l.endpoint,
                l.locked_until.format("%Y-%m-%dT%H:%M:%SZ"),
                l.reason
            );
            notifier.raise(
                Incident::new(Event::EndpointLocked, summary)
                    .with_key(format!("endpoint_locked:{}", l.endpoint)),
            );
        }
    }
    let gone: Vec<String> = locked.difference(&current).cloned().collect();
    for ep in gone {
        locked.remove(&ep);
        notifier.clear(
            &format!("endpoint_locked:{ep}"),
            format!("the lock on {ep} has ended"),
        );
    }
}
