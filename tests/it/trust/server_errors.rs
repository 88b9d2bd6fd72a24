//! Point 3: a 500 to a PUT is retried first; only a persistent 500 naming a
//! reference the mirror does not know is `reference_rejected`; remembered
//! failures come back after `[push] retry_failed_after` or with
//! `--retry-failed`.

use std::time::Duration;

use cliq_sync::cliq::Endpoint;
use cliq_sync::hr::HrSource;
use cliq_sync::sim::Faults;
use cliq_sync::sync::plan::{plan, render};
use cliq_sync::sync::push::{status_summary, PushOptions};

use super::{app, count, opts, run_push, s, write_hr};
use crate::helpers::TestApp;

/// One HR record for user #4: a department id and a work location.
async fn hr_for(t: &TestApp, dir: &std::path::Path, name: &str, dept: &str) -> HrSource {
    let u = &t.sim.users()[4];
    let csv = format!(
        "email_id,department_id,work_location\n{},{dept},Desk {name}\n",
        s(u, "email_id")
    );
    write_hr(dir, name, &csv).await
}

/// A department id the mirror knows, other than user #4's.
fn known_department(t: &TestApp) -> String {
    let users = t.sim.users();
    let mine = s(&users[4]["department"], "id");
    users
        .iter()
        .map(|u| s(&u["department"], "id"))
        .find(|d| !d.is_empty() && *d != mine)
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_transient_500_to_an_update_applies_in_the_same_run() {
    let t = app(30).await;
    let dir = tempfile::tempdir().unwrap();
    let dept = known_department(&t);
    let hr = hr_for(&t, dir.path(), "a.csv", &dept).await;
    t.sim.set_faults(Faults {
        write_500_next: 1,
        ..Faults::default()
    });
    t.sim.reset_counters();
    let out = run_push(&t, &hr, &opts()).await.unwrap();
    let r = &out.report;
    assert_eq!((r.updates_applied, r.failed), (1, 0), "{r:?}");
    assert_eq!(count(&t, Endpoint::UpdateUser), 2);
    let now = t.sim.user(&s(&t.sim.users()[4], "id")).unwrap();
    assert_eq!(s(&now["department"], "id"), dept);
    assert!(status_summary(&t.app.store)
        .await
        .unwrap()
        .failures
        .is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_persistent_500_naming_an_unknown_department_is_reference_rejected() {
    let t = app(30).await;
    let dir = tempfile::tempdir().unwrap();
    let hr = hr_for(&t, dir.path(), "a.csv", "999999").await;
    let out = run_push(&t, &hr, &opts()).await.unwrap();
    let r = &out.report;
    assert_eq!(r.failed, 1, "{r:?}");
    let f = &r.failures[0];
    assert_eq!(f.code.as_deref(), Some("reference_rejected"), "{f:?}");
    assert!(f.permanent);
    assert!(f.message.contains("department_id=999999"), "{}", f.message);
    let remembered = status_summary(&t.app.store).await.unwrap().failures;
    assert_eq!(remembered.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_persistent_500_with_known_references_is_failed_and_retried_next_push() {
    let t = app(30).await;
    let dir = tempfile::tempdir().unwrap();
    let dept = known_department(&t);
    let hr = hr_for(&t, dir.path(), "a.csv", &dept).await;
    t.sim.set_faults(Faults {
        write_500_next: u32::MAX,
        ..Faults::default()
    });
    let out = run_push(&t, &hr, &opts()).await.unwrap();
    let r = &out.report;
    assert_eq!((r.updates_applied, r.failed), (0, 1), "{r:?}");
    let f = &r.failures[0];
    assert_eq!(f.code.as_deref(), Some("technical_error"), "{f:?}");
    assert!(!f.permanent, "{f:?}");
    assert!(status_summary(&t.app.store)
        .await
        .unwrap()
        .failures
        .is_empty());
    // Cliq recovers: the next push sends it again and it applies.
    t.sim.set_faults(Faults::default());
    let out = run_push(&t, &hr, &opts()).await.unwrap();
    assert_eq!(out.report.updates_applied, 1, "{:?}", out.report);
}

#[tokio::test(start_paused = true)]
async fn remembered_failures_are_tried_again_after_retry_failed_after() {
    let t = app(30).await;
    let dir = tempfile::tempdir().unwrap();
    let hr = hr_for(&t, dir.path(), "a.csv", "999999").await;
    run_push(&t, &hr, &opts()).await.unwrap();
    let planned = |o: PushOptions| {
        let (t, hr) = (&t, &hr);
        async move {
            plan(&t.app.store, hr, &o.plan, t.app.scheduler.limits())
                .await
                .unwrap()
        }
    };
    // Remembered: blocked, and the plan does not claim Cliq matches HR.
    let p = planned(opts()).await;
    assert!(p.updates.is_empty());
    assert_eq!(p.blocked.len(), 1);
    let text = render(&p);
    assert!(!text.contains("Nothing to push"), "{text}");
    // --retry-failed: planned at once.
    let mut o = opts();
    o.plan.retry_failed = true;
    assert_eq!(planned(o).await.updates.len(), 1);
    // The default retry_failed_after is 24h.
    tokio::time::advance(Duration::from_secs(23 * 3600)).await;
    assert!(planned(opts()).await.updates.is_empty());
    tokio::time::advance(Duration::from_secs(3600 + 1)).await;
    assert_eq!(planned(opts()).await.updates.len(), 1);
}
