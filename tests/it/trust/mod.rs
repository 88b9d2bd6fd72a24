//! Issue 9 "Trust": writes of unknown outcome are reconciled, transient 500s
//! are retried, remembered failures come back, safety baselines do not creep.

mod baseline;
mod server_errors;
mod unknown_outcome;

use std::path::Path;

use cliq_sync::cliq::Endpoint;
use cliq_sync::hr::{self, HrSource};
use cliq_sync::sync::plan::PlanOptions;
use cliq_sync::sync::push::{push, PushError, PushOptions, PushOutcome};
use cliq_sync::sync::{pull_with, PullKind, PullOptions, TeamsMode};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::helpers::{spawn_app, Opts, TestApp};

pub(crate) fn opts() -> PushOptions {
    PushOptions {
        plan: PlanOptions::default(),
        enabled: true,
        dry_run: false,
        force: false,
        max_changes_per_run: 10_000,
        max_source_drop: 0.2,
        on_threshold: Default::default(),
    }
}

pub(crate) async fn app(users: usize) -> TestApp {
    let t = spawn_app(Opts {
        users,
        ..Opts::default()
    })
    .await;
    full_pull(&t).await;
    t
}

pub(crate) async fn full_pull(t: &TestApp) {
    let o = PullOptions {
        teams: TeamsMode::Off,
        layouts: false,
        ..PullOptions::default()
    };
    let r = pull_with(&t.app, PullKind::Full, &o, &CancellationToken::new())
        .await
        .unwrap();
    assert!(r.ok(), "{r:?}");
}

pub(crate) async fn write_hr(dir: &Path, name: &str, text: &str) -> HrSource {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    hr::load(&path).await.unwrap()
}

pub(crate) async fn run_push(
    t: &TestApp,
    hr: &HrSource,
    o: &PushOptions,
) -> Result<PushOutcome, PushError> {
    push(
        &t.app.store,
        &t.app.client,
        t.app.scheduler.limits(),
        hr,
        o,
        &CancellationToken::new(),
    )
    .await
}

pub(crate) fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_owned()
}

/// Requests the simulator received for `ep`.
pub(crate) fn count(t: &TestApp, ep: Endpoint) -> u64 {
    t.sim.counters().requests.get(&ep).copied().unwrap_or(0)
}

/// `email_id,work_location` for the first `n` users, a new value each.
pub(crate) fn changes_csv(users: &[Value], n: usize, tag: &str) -> String {
    let mut csv = String::from("email_id,work_location\n");
    for u in users.iter().take(n) {
        csv.push_str(&format!("{},{tag} {}\n", s(u, "email_id"), s(u, "id")));
    }
    csv
}
