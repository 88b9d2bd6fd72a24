//! One recorded push run: its records, progress and end, the loop over
//! the plan, and the failures it records.

use std::sync::Arc;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::report::{FailureLine, PushOutcome, PushReport};
use super::{PushError, Work, SOURCE_RECORDS_KEY};
use crate::cliq::client::CliqClient;
use crate::cliq::error::CliqError;
use crate::cliq::quotas::Limits;
use crate::mirror::lease::PushLock;
use crate::mirror::progress::RunProgress;
use crate::mirror::pushes::{NewPush, PushFailure, PushStatus};
use crate::mirror::runs::{RunFigures, RunKind, RunStatus};
use crate::mirror::{Store, StoreError};
use crate::sync::plan::{self, Plan};
use crate::sync::progress::{self, Tracker};

/// Run `first` (the plan the thresholds passed) as a recorded push run,
/// the push lock held: records, progress, the run's end.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run_plan(
    store: &Store,
    client: &CliqClient,
    limits: &Limits,
    lock: &mut PushLock,
    first: Plan,
    work: Work<'_>,
    cancel: &CancellationToken,
    started: tokio::time::Instant,
) -> Result<PushOutcome, PushError> {
    let clock = store.clock().clone();
    let run_id = store.start_run(RunKind::Push, clock.now()).await?;
    lock.set_run(run_id);
    let requests_before = client.stats().total_requests();
    let tracker = track(store, client, limits, run_id, &first, requests_before).await;
    let mut run = Run {
        store,
        client,
        run_id,
        cancel,
        report: PushReport::new("running"),
        progress: &tracker,
        done: 0,
    };
    run.report.run_id = Some(run_id);
    record_work(store, run_id, &work, &mut run.report).await?;

    let result = run.execute(first, &work, limits).await;
    let (plan, status) = match result {
        Ok((plan, status)) => (plan, status),
        Err(e) => {
            run.report.error = Some(e.to_string());
            let figures = RunFigures {
                requests: client.stats().total_requests() - requests_before,
                error: run.report.error.clone(),
                ..Default::default()
            };
            let _ = store
                .finish_run(run_id, RunStatus::Failed, &figures, clock.now())
                .await;
            return Err(e.into());
        }
    };
    let mut report = run.report;
    tracker.finish(status).await;
    report.status = status.as_str().into();
    report.requests = client.stats().total_requests() - requests_before;
    report.elapsed_secs = started.elapsed().as_secs_f64();
    let figures = RunFigures {
        requests: report.requests,
        users_seen: work.users_seen(),
        users_changed: report.updates_applied + report.adds_applied,
        error: report.error.clone(),
    };
    store
        .finish_run(run_id, status, &figures, clock.now())
        .await?;
    log_finished(run_id, &report);
    Ok(PushOutcome { plan, report })
}

/// What the run works from, recorded at its start: for an HR push the
/// approval used and the source's size, for a given plan its link.
async fn record_work(
    store: &Store,
    run_id: i64,
    work: &Work<'_>,
    report: &mut PushReport,
) -> Result<(), StoreError> {
    let clock = store.clock();
    match work {
        Work::Hr { hr, opts, approval } => {
            if let Some(id) = approval {
                // Used once: the next plan over a threshold needs its own approval.
                store.consume_held_plan(id, run_id).await?;
            }
            store
                .set_state(SOURCE_RECORDS_KEY, &hr.len().to_string(), clock.now())
                .await?;
            store
                .record_push_source(run_id, hr.len() as u64, opts.force, clock.now())
                .await?;
        }
        Work::Given { given, .. } => {
            given.record_link(store, run_id).await?;
            report.undoes_run = given.undoes_run;
        }
    }
    Ok(())
}

fn log_finished(run_id: i64, report: &PushReport) {
    tracing::info!(
        run = run_id,
        kind = %RunKind::Push,
        status = %report.status,
        updates = report.updates_applied,
        adds = report.adds_applied,
        failed = report.failed,
        skipped = report.skipped,
        reconciled = report.reconciled,
        requests = report.requests,
        elapsed_ms = (report.elapsed_secs * 1000.0) as u64,
        "push finished"
    );
}

pub(super) struct Run<'a> {
    pub(super) store: &'a Store,
    pub(super) client: &'a CliqClient,
    pub(super) run_id: i64,
    pub(super) cancel: &'a CancellationToken,
    pub(super) report: PushReport,
    pub(super) progress: &'a Tracker,
    /// Planned users done so far (applied, failed or skipped in the loop).
    pub(super) done: u64,
}

/// Start tracking a push's progress: the planned users, at the update
/// endpoint's quota floor (one request per user).
pub(super) async fn track(
    store: &Store,
    client: &CliqClient,
    limits: &Limits,
    run_id: i64,
    plan: &Plan,
    requests_before: u64,
) -> Tracker {
    let floor = progress::floor_per_min(limits.get(crate::cliq::Endpoint::UpdateUser));
    let mut initial = RunProgress::new(run_id, RunKind::Push, floor);
    initial.expected_users = Some(planned_users(plan));
    let client = client.clone();
    let requests = Arc::new(move || client.stats().total_requests() - requests_before);
    Tracker::start(store, initial, requests).await
}

pub(super) fn planned_users(plan: &Plan) -> u64 {
    (plan.updates.len() + plan.adds.len()) as u64
}

/// How the loop over attempts ends early.
pub(super) enum Halt {
    Stopped,
    Failed(String),
}

/// Is this refusal about this person (remember it), or about us (stop)?
pub(super) fn per_person(e: &CliqError) -> bool {
    match e {
        CliqError::Permanent { status, .. } => !matches!(status, 401 | 403 | 405 | 406),
        CliqError::InvalidRequest { .. } => true,
        _ => false,
    }
}

/// The request certainly did not change anything in Cliq. For a write, a
/// transient error is a 5xx answer or a connection that never opened: the
/// client reports every other lost answer as [`CliqError::OutcomeUnknown`].
pub(super) fn not_sent(e: &CliqError) -> bool {
    matches!(
        e,
        CliqError::Throttled { .. }
            | CliqError::Transient { .. }
            | CliqError::TechnicalError { .. }
            | CliqError::Unauthorized { .. }
            | CliqError::Auth(_)
            | CliqError::Quota(_)
            | CliqError::Permanent { .. }
            | CliqError::InvalidRequest { .. }
    )
}

impl Run<'_> {
    /// Close an earlier attempt whose outcome is settled without sending.
    pub(super) async fn skip_attempt(&self, id: i64, code: &str) -> Result<(), StoreError> {
        self.store
            .set_push_status(id, PushStatus::Skipped, Some(code), self.now())
            .await
    }

    pub(super) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.store.clock().now()
    }

    pub(super) async fn execute(
        &mut self,
        first: Plan,
        work: &Work<'_>,
        limits: &Limits,
    ) -> Result<(Plan, RunStatus), StoreError> {
        // Attempts of unknown outcome first; then plan again from the
        // refreshed mirror, or check the given parts against it.
        let reconciled = match self.reconcile().await? {
            Err(halt) => return Ok((first, self.halt(halt))),
            Ok(n) => n,
        };
        let opts = work.opts();
        let plan = match work {
            Work::Hr { .. } if reconciled == 0 => first,
            Work::Hr { hr, opts, .. } => plan::plan(self.store, hr, &opts.plan, limits).await?,
            Work::Given { given, opts } => {
                let (plan, refused) = given.check(self.store, &opts.plan, limits).await?;
                self.record_refused(&refused).await?;
                self.report.refused = refused;
                plan
            }
        };
        self.progress.expect_users(planned_users(&plan));
        self.record_skipped(&plan).await?;
        for u in &plan.updates {
            if let Err(halt) = self.update(u).await? {
                return Ok((plan, self.halt(halt)));
            }
            self.advance(1);
        }
        for batch in plan.adds.chunks(opts.plan.add_batch_size.max(1)) {
            if let Err(halt) = self.add(batch).await? {
                return Ok((plan, self.halt(halt)));
            }
            self.advance(batch.len() as u64);
        }
        Ok((plan, RunStatus::Ok))
    }

    pub(super) fn advance(&mut self, users: u64) {
        self.done += users;
        self.progress.set(0, self.done);
    }

    pub(super) fn halt(&mut self, h: Halt) -> RunStatus {
        match h {
            Halt::Stopped => RunStatus::Stopped,
            Halt::Failed(msg) => {
                self.report.error = Some(msg);
                RunStatus::Failed
            }
        }
    }

    pub(super) async fn record_skipped(&mut self, plan: &Plan) -> Result<(), StoreError> {
        let rows: Vec<NewPush> = plan
            .blocked
            .iter()
            .map(|b| {
                let action = if b.user_id.is_some() { "update" } else { "add" };
                let (user_id, field) = (b.user_id.as_deref(), b.field);
                self.skipped_row(user_id, &b.email, action, field, b.kind, &b.reason)
            })
            .collect();
        self.report.skipped += rows.len() as u64;
        self.store.insert_pushes(&rows, self.now()).await
    }

    /// A `skipped` row: something the run did not do, and why.
    pub(super) fn skipped_row<'r>(
        &self,
        user_id: Option<&'r str>,
        email: &'r str,
        action: &'r str,
        field: Option<&str>,
        kind: &'r str,
        reason: &str,
    ) -> NewPush<'r> {
        NewPush {
            run_id: self.run_id,
            user_id,
            email,
            action,
            fields_json: json!({"field": field, "kind": kind, "reason": reason}).to_string(),
            status: PushStatus::Skipped,
            error_code: Some(kind),
        }
    }

    /// A failure that is not remembered: the next push plans it again.
    pub(super) async fn fail_retryable(
        &mut self,
        push_id: i64,
        email: &str,
        action: &'static str,
        code: &str,
        message: String,
    ) -> Result<(), StoreError> {
        tracing::warn!(email, action, code, %message, "push attempt failed; it is tried again at the next push");
        self.store
            .set_push_status(push_id, PushStatus::Failed, Some(code), self.now())
            .await?;
        self.report.failed += 1;
        self.report.failures.push(FailureLine {
            email: email.into(),
            action,
            code: Some(code.into()),
            message,
            permanent: false,
        });
        Ok(())
    }

    /// A failure that is not about this person: record it (when the request
    /// certainly changed nothing) and stop the run.
    pub(super) async fn stop_on(
        &mut self,
        rows: &[(i64, &str)],
        action: &'static str,
        e: CliqError,
    ) -> Result<Halt, StoreError> {
        if not_sent(&e) {
            let code = e.code().unwrap_or("error").to_owned();
            for (push_id, email) in rows {
                self.store
                    .set_push_status(*push_id, PushStatus::Failed, Some(&code), self.now())
                    .await?;
                self.report.failed += 1;
                self.report.failures.push(FailureLine {
                    email: (*email).into(),
                    action,
                    code: Some(code.clone()),
                    message: e.to_string(),
                    permanent: false,
                });
            }
        }
        let email = rows.first().map(|r| r.1).unwrap_or("");
        // Otherwise (transient after retries, unreadable answer) the outcome
        // is unknown: the row stays `planned` and the next run re-checks it.
        Ok(Halt::Failed(format!(
            "stopped at {email}: {e}; the rest is left for the next push"
        )))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn fail(
        &mut self,
        push_id: i64,
        email: &str,
        user_id: Option<&str>,
        action: &'static str,
        desired_hash: &str,
        fields_json: &str,
        code: Option<String>,
        message: String,
    ) -> Result<(), StoreError> {
        tracing::warn!(email, action, code = code.as_deref(), %message, "push refused by Cliq");
        self.store
            .record_push_failure(
                push_id,
                &PushFailure {
                    email_id: email.to_owned(),
                    action: action.to_owned(),
                    user_id: user_id.map(str::to_owned),
                    desired_hash: desired_hash.to_owned(),
                    fields_json: fields_json.to_owned(),
                    error_code: code.clone(),
                    message: Some(message.clone()),
                    run_id: Some(self.run_id),
                    at: String::new(),
                },
                self.now(),
            )
            .await?;
        self.report.failed += 1;
        self.report.failures.push(FailureLine {
            email: email.into(),
            action,
            code,
            message,
            permanent: true,
        });
        Ok(())
    }
}
