//! The demo's steps against the simulator: pulls, plan, push, the admin's
//! edits, each timed and shown by [`Live`], through the library paths the
//! CLI uses.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio_util::sync::CancellationToken;

use super::hr_file::{write_hr_file, HrPerson};
use super::live::Live;
use super::org_edits::mutate_org;
use super::report::render_plan;
use super::{demo_settings, DemoOptions, DemoReport, EndpointUse, Mutation, PLAN_ROWS};
use crate::app::App;
use crate::cliq::quotas::Limits;
use crate::cliq::transport::{ReqwestTransport, Transport};
use crate::cliq::Endpoint;
use crate::clock::Clock;
use crate::config::Settings;
use crate::hr::HrSource;
use crate::sim::{SimConfig, Simulator};
use crate::sync::plan::Plan;
use crate::sync::push::{PushOptions, PushReport};
use crate::sync::{pull, PullKind, PullReport};

/// What every step uses.
pub(super) struct Demo<'a> {
    pub(super) sim: &'a Simulator,
    pub(super) app: App,
    pub(super) limits: Limits,
    pub(super) cancel: CancellationToken,
    pub(super) live: &'a mut Live,
    page_size: u64,
}

/// Where the demo's files are and how it runs.
pub(super) struct Paths<'a> {
    pub(super) dir: &'a Path,
    pub(super) mirror: &'a Path,
    pub(super) hr_file: &'a Path,
}

/// Steps 2 to the end, against the running simulator at `sim_url`.
pub(super) async fn demo_steps(
    sim: &Simulator,
    sim_cfg: &SimConfig,
    sim_url: &str,
    paths: &Paths<'_>,
    opts: &DemoOptions,
    live: &mut Live,
) -> anyhow::Result<DemoReport> {
    let settings = demo_settings(sim_cfg, sim_url, paths, opts.time_scale)?;
    let mut d = Demo::open(sim, &settings, live).await?;
    let mut push_opts = PushOptions::from_settings(&settings, false, false)
        .map_err(|m| anyhow::anyhow!("hr.managed_fields: {m}"))?;

    let full_pull = d.full_pull(opts.users as u64, true).await?;
    let (hr, hr_people, plan) = d.plan(paths.hr_file, &push_opts).await?;
    let (held, push) = d.held_then_pushed(&hr, &mut push_opts, &plan).await?;
    let push_at_real_quotas = at_real_quotas(&plan);

    let mutations = d.edit_org(&hr_people)?;
    let incremental = d.incremental().await?;
    let incremental_changes = d.app.store.changes_of_run(incremental.run_id).await?;
    let final_full = d.full_pull(opts.users as u64 + 2, false).await?;
    let final_changes = d.app.store.changes_of_run(final_full.run_id).await?;
    let drift = d.drift(&hr, &push_opts).await?;
    let push_run = push.run_id.context("the push recorded no run")?;
    let undo = d.undo(push_run, &push_opts).await?;

    let tally = d.tally().await?;
    Ok(DemoReport {
        dir: paths.dir.to_owned(),
        mirror: paths.mirror.to_owned(),
        hr_file: paths.hr_file.to_owned(),
        sim_url: sim_url.to_owned(),
        org_users: opts.users,
        seed: opts.seed,
        time_scale: opts.time_scale,
        safety_margin: tally.safety_margin,
        hr_records: hr.len(),
        users_by_status: tally.users_by_status,
        full_pull,
        plan_text: render_plan(&plan, PLAN_ROWS),
        plan: plan.summary,
        held,
        undo,
        push,
        push_at_real_quotas,
        mutations,
        incremental,
        incremental_changes,
        final_full,
        final_changes,
        drift,
        endpoints: tally.endpoints,
        tokens_minted: tally.tokens_minted,
        locks_imposed: tally.locks_imposed,
        scheduler_waits: tally.scheduler_waits,
        steps: Vec::new(),
        wall: Duration::ZERO,
    })
}

/// What the mirror, the simulator and the scheduler counted by the end,
/// and the scheduler's safety margin.
struct Tally {
    safety_margin: Duration,
    users_by_status: Vec<(String, i64)>,
    endpoints: Vec<EndpointUse>,
    tokens_minted: u64,
    locks_imposed: u64,
    scheduler_waits: u64,
}

/// The least time `plan`'s push needs at Cliq's real (unscaled) quotas.
fn at_real_quotas(plan: &Plan) -> Duration {
    let real = Limits::documented();
    crate::sync::plan::min_duration(&real, Endpoint::UpdateUser, plan.summary.update_requests)
        + crate::sync::plan::min_duration(&real, Endpoint::AddUsers, plan.summary.add_requests)
}

impl<'a> Demo<'a> {
    /// The app on the demo's settings, talking to the simulator.
    async fn open(
        sim: &'a Simulator,
        settings: &Settings,
        live: &'a mut Live,
    ) -> anyhow::Result<Demo<'a>> {
        // Real HTTP over loopback; a configured proxy could not reach it.
        let transport: Arc<dyn Transport> =
            Arc::new(ReqwestTransport::without_proxy().context("cannot build the HTTP client")?);
        let app = App::open_with(settings.clone(), Clock::system(), transport).await?;
        Ok(Demo {
            sim,
            limits: app.scheduler.limits().clone(),
            app,
            cancel: CancellationToken::new(),
            live,
            page_size: u64::from(settings.cliq.page_size),
        })
    }
}

impl Demo<'_> {
    /// A full pull of an org of `org` users (`first`: into the empty mirror).
    async fn full_pull(&mut self, org: u64, first: bool) -> anyhow::Result<PullReport> {
        self.live.step("full pull", {
            let sim = self.sim.clone();
            let base = list_requests(&sim);
            let page_size = self.page_size;
            move || {
                let listed = ((list_requests(&sim) - base) * page_size).min(org);
                format!("{listed}/{org} users")
            }
        });
        let r = pull(&self.app, PullKind::Full, &self.cancel).await?;
        ensure_ok(&r)?;
        let summary = if first {
            format!(
                "full pull: {} users mirrored, {} requests",
                r.users_seen, r.requests
            )
        } else {
            format!(
                "full pull: {} users, {} added, {} changed, {} requests",
                r.users_seen, r.added, r.changed, r.requests
            )
        };
        self.live.done(summary);
        Ok(r)
    }

    /// The HR file and the plan from it.
    async fn plan(
        &mut self,
        hr_file: &Path,
        opts: &PushOptions,
    ) -> anyhow::Result<(HrSource, Vec<HrPerson>, Plan)> {
        self.live.step("plan", String::new);
        let hr_people = write_hr_file(self.sim, hr_file)?;
        // Staging the file waits on SQLite's thread: the clock must not
        // jump meanwhile (the demo runs in paused time).
        let hold = self.app.store.hold();
        let hr = crate::hr::load(hr_file)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        drop(hold);
        let plan = crate::sync::plan::plan(&self.app.store, &hr, &opts.plan, &self.limits).await?;
        self.live.done(format!(
            "plan from {}: {} HR records, {} updates ({} fields), {} adds",
            hr_file.display(),
            hr.len(),
            plan.summary.updates,
            plan.summary.field_changes,
            plan.summary.adds
        ));
        Ok((hr, hr_people, plan))
    }

    /// The push of the HR file's plan.
    pub(super) async fn push(
        &mut self,
        hr: &HrSource,
        opts: &PushOptions,
        plan: &Plan,
    ) -> anyhow::Result<PushReport> {
        let planned = plan.summary.updates as u64;
        let per_window = u64::from(self.limits.get(Endpoint::UpdateUser).requests);
        self.live.step("push", {
            let sim = self.sim.clone();
            let base = requests(&sim, Endpoint::UpdateUser);
            move || {
                let sent = requests(&sim, Endpoint::UpdateUser) - base;
                if sent > 0 && sent < planned && sent % per_window == 0 {
                    format!("{sent}/{planned} updates sent; {per_window} per window used, waiting for the next")
                } else {
                    format!("{sent}/{planned} updates sent")
                }
            }
        });
        let (store, client) = (&self.app.store, &self.app.client);
        let outcome =
            crate::sync::push::push(store, client, &self.limits, hr, opts, &self.cancel).await?;
        let push = outcome.report;
        ensure_pushed(&push)?;
        self.live.done(format!(
            "push: {} updated, {} added, {} failed, {} requests in {:.1} s",
            push.updates_applied, push.adds_applied, push.failed, push.requests, push.elapsed_secs
        ));
        Ok(push)
    }

    /// An admin edits the org in the Cliq console.
    fn edit_org(&mut self, hr_people: &[HrPerson]) -> anyhow::Result<Vec<Mutation>> {
        self.live.step("editing the simulated org", String::new);
        let mutations = mutate_org(self.sim, hr_people)?;
        let users: BTreeSet<&String> = mutations.iter().map(|m| &m.user_id).collect();
        self.live.done(format!(
            "an admin edited {} users in Cliq: {} tracked fields, {} untracked",
            users.len(),
            mutations.iter().filter(|m| m.tracked).count(),
            mutations.iter().filter(|m| !m.tracked).count()
        ));
        Ok(mutations)
    }

    async fn incremental(&mut self) -> anyhow::Result<PullReport> {
        self.live.step("incremental pull", {
            let sim = self.sim.clone();
            let base = list_requests(&sim);
            move || format!("{} pages", list_requests(&sim) - base)
        });
        let r = pull(&self.app, PullKind::Incremental, &self.cancel).await?;
        ensure_ok(&r)?;
        self.live.done(format!(
            "incremental pull: {} users listed, {} changed, {} requests",
            r.users_seen, r.changed, r.requests
        ));
        Ok(r)
    }

    /// The plan after everything: the admins' edits to HR-managed fields.
    async fn drift(
        &self,
        hr: &HrSource,
        opts: &PushOptions,
    ) -> anyhow::Result<crate::sync::plan::PlanSummary> {
        Ok(
            crate::sync::plan::plan(&self.app.store, hr, &opts.plan, &self.limits)
                .await?
                .summary,
        )
    }

    /// The counts at the end of the demo; the mirror is closed after.
    async fn tally(self) -> anyhow::Result<Tally> {
        let users_by_status = self.app.store.user_counts().await?;
        let counters = self.sim.counters();
        let endpoints = self.endpoint_uses();
        let scheduler_waits = self.app.scheduler.waits();
        self.app.store.close().await;
        Ok(Tally {
            safety_margin: self.limits.margin,
            users_by_status,
            endpoints,
            tokens_minted: counters.tokens_minted,
            locks_imposed: counters.locks.values().sum(),
            scheduler_waits,
        })
    }

    /// What each endpoint was asked, against its (scaled) quota.
    fn endpoint_uses(&self) -> Vec<EndpointUse> {
        let counters = self.sim.counters();
        Endpoint::ALL
            .into_iter()
            .map(|ep| {
                let q = self.limits.get(ep);
                EndpointUse {
                    endpoint: ep,
                    requests: counters.requests.get(&ep).copied().unwrap_or(0),
                    quota: q.requests,
                    window: q.per,
                    max_in_window: (ep != Endpoint::OauthToken)
                        .then(|| counters.max_in_window.get(&ep).copied().unwrap_or(0)),
                    throttled: counters.throttled.get(&ep).copied().unwrap_or(0),
                }
            })
            .collect()
    }
}

pub(super) fn ensure_pushed(push: &PushReport) -> anyhow::Result<()> {
    if !push.ok() {
        bail!(
            "the push {}: {}",
            push.status,
            push.error.as_deref().unwrap_or("see the pushes table")
        );
    }
    Ok(())
}

fn ensure_ok(r: &PullReport) -> anyhow::Result<()> {
    if r.ok() {
        Ok(())
    } else {
        bail!(
            "the {} pull {}: {}",
            r.kind,
            r.status,
            r.error.as_deref().unwrap_or("unknown error")
        )
    }
}

pub(super) fn requests(sim: &Simulator, ep: Endpoint) -> u64 {
    sim.counters().requests.get(&ep).copied().unwrap_or(0)
}

fn list_requests(sim: &Simulator) -> u64 {
    requests(sim, Endpoint::ListUsers)
}
