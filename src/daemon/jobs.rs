//! The daemon's jobs: a pull, a push from the settled HR source, and what
//! each outcome counts, logs and raises.

use std::sync::atomic::Ordering;

use tokio_util::sync::CancellationToken;

use super::hr_watch::{HrWatch, Unusable};
use super::Daemon;
use crate::hr::HrSource;
use crate::mirror::runs::{RunKind, RunStatus};
use crate::sync::push::{push, PushError, PushOptions};
use crate::sync::{pull, PullKind};

impl Daemon {
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

    /// Whether the pull worked (for the token-failing notification).
    pub(super) async fn pull(&self, job: RunKind, cancel: &CancellationToken) -> bool {
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
    pub(super) async fn reload_hr(
        &mut self,
        why: &str,
        cancel: &CancellationToken,
    ) -> Option<&HrSource> {
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
    pub(super) async fn push(&mut self, cancel: &CancellationToken) -> Option<bool> {
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
