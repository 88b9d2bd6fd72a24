//! The demo's write-side safety steps: a push over `max_changes_per_run`
//! held, listed and approved as `cliq-sync approve` does it, and
//! `cliq-sync undo RUN` of the push, through the same library paths.

use anyhow::{bail, Context};

use super::hr_file::text;
use super::steps::{ensure_pushed, requests, Demo};
use super::{FieldBack, HeldSequence, StepRequests, UndoStep};
use crate::cliq::models::User;
use crate::cliq::Endpoint;
use crate::hr::HrSource;
use crate::sim::Simulator;
use crate::sync::approve;
use crate::sync::plan::Plan;
use crate::sync::push::{push_given, Given, PushError, PushOptions, PushReport};

impl StepRequests {
    /// The simulator's counts now.
    pub(super) fn of(sim: &Simulator) -> StepRequests {
        let c = sim.counters();
        StepRequests {
            total: c.requests.values().sum(),
            puts: requests(sim, Endpoint::UpdateUser),
            posts: requests(sim, Endpoint::AddUsers),
        }
    }

    /// What was asked since `before`.
    pub(super) fn since(sim: &Simulator, before: StepRequests) -> StepRequests {
        let now = StepRequests::of(sim);
        StepRequests {
            total: now.total - before.total,
            puts: now.puts - before.puts,
            posts: now.posts - before.posts,
        }
    }
}

impl Demo<'_> {
    /// The push of `plan` over a threshold set below it: held, approved,
    /// then pushed by the next push.
    pub(super) async fn held_then_pushed(
        &mut self,
        hr: &HrSource,
        opts: &mut PushOptions,
        plan: &Plan,
    ) -> anyhow::Result<(HeldSequence, PushReport)> {
        // Below this plan (its updates plus the two new hires), so its push
        // is held for approval; not below its undo (updates only: adds
        // cannot be undone), which passes the same threshold.
        opts.max_changes_per_run = u32::try_from(plan.summary.updates)?;
        let mut held = self.hold_and_approve(hr, opts).await?;
        let before = StepRequests::of(self.sim);
        let push = self.push(hr, opts, plan).await?;
        held.push_requests = StepRequests::since(self.sim, before);
        Ok((held, push))
    }

    /// The push trips `opts.max_changes_per_run` and is held (nothing
    /// sent); `approve` lists it, and `approve ID` releases it.
    async fn hold_and_approve(
        &mut self,
        hr: &HrSource,
        opts: &PushOptions,
    ) -> anyhow::Result<HeldSequence> {
        self.live.step("push over the threshold", String::new);
        let before = StepRequests::of(self.sim);
        let (store, client) = (&self.app.store, &self.app.client);
        let stop = match crate::sync::push::push(
            store,
            client,
            &self.limits,
            hr,
            opts,
            &self.cancel,
        )
        .await
        {
            Err(PushError::Safety(stop)) => stop,
            Err(e) => return Err(e.into()),
            Ok(o) => bail!(
                "the push was meant to be held, but it ended {}",
                o.report.status
            ),
        };
        let held_requests = StepRequests::since(self.sim, before);
        let plan_id = stop.plan_id.context("the held push kept no plan")?;
        let listed = approve::list(store).await?;
        self.live.done(format!(
            "push held as plan {plan_id} (over [push] max_changes_per_run = {}): {} requests",
            opts.max_changes_per_run, held_requests.total
        ));

        self.live.step("approve", String::new);
        let before = StepRequests::of(self.sim);
        approve::approve(store, &self.limits, hr, opts, &plan_id).await?;
        let approve_requests = StepRequests::since(self.sim, before);
        let approved = approve::list(store)
            .await?
            .into_iter()
            .find(|e| e.id == plan_id);
        self.live.done(format!(
            "cliq-sync approve {plan_id}: approved for the next push, {} requests",
            approve_requests.total
        ));
        Ok(HeldSequence {
            threshold: opts.max_changes_per_run,
            plan_id,
            listed,
            approved,
            held_requests,
            approve_requests,
            push_requests: StepRequests::default(),
        })
    }

    /// `undo RUN` of push run `run`: its inverse pushed, the refused parts
    /// reported, one undone field read back from Cliq.
    pub(super) async fn undo(&mut self, run: i64, opts: &PushOptions) -> anyhow::Result<UndoStep> {
        self.live.step("undo", String::new);
        let store = &self.app.store;
        let given = crate::sync::undo::given(store, run).await?;
        let before = StepRequests::of(self.sim);
        let client = &self.app.client;
        let outcome = push_given(store, client, &self.limits, &given, opts, &self.cancel).await?;
        let requests = StepRequests::since(self.sim, before);
        let report = outcome.report;
        ensure_pushed(&report)?;
        let example = field_back(self.sim, &given, &report.refused)?;
        self.live.done(format!(
            "cliq-sync undo {run}: {} updates sent back, {} refused, {} PUT requests",
            report.updates_applied,
            report.refused.len(),
            requests.puts
        ));
        Ok(UndoStep {
            report,
            requests,
            example,
        })
    }
}

/// The first undone plain-text field (not refused), as Cliq has it now.
fn field_back(
    sim: &Simulator,
    given: &Given,
    refused: &[crate::sync::push::Refused],
) -> anyhow::Result<Option<FieldBack>> {
    let is_refused = |email: &str, field: &str| {
        refused
            .iter()
            .any(|r| r.email == email && r.field.as_deref().is_none_or(|f| f == field))
    };
    for g in &given.updates {
        let u = &g.update;
        for c in &u.changes {
            let plain = matches!(c.cliq_key, "work_location" | "extension");
            if !plain || is_refused(&u.email, c.field) {
                continue;
            }
            let now = sim
                .user(&u.user_id)
                .context("an undone user is gone from the simulator")?;
            let now = User::from_value(now)?;
            let after_undo = match c.cliq_key {
                "work_location" => text(&now.work_location),
                _ => text(&now.extension),
            };
            return Ok(Some(FieldBack {
                email: u.email.clone(),
                field: c.field.to_owned(),
                before: c.desired.clone(),
                pushed: c.current.clone().unwrap_or_default(),
                after_undo,
            }));
        }
    }
    Ok(None)
}
