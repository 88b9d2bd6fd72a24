//! Issue 12, point 1: held plans and approval. A push over a safety
//! threshold keeps its plan (`held_plans`); `approve` lists it (and held
//! full pulls); `approve ID` releases exactly that plan for the next push,
//! or refuses with the difference when the plan has changed since.

use std::time::Duration;

use cliq_sync::cliq::Endpoint;
use cliq_sync::config::OnThreshold;
use cliq_sync::sync::approve::{self, ApproveError};
use cliq_sync::sync::push::{PushError, PushOptions};

use crate::daemon::start;
use crate::held::daemon_app;
use crate::helpers::TestApp;
use crate::removals::scalar;
use crate::trust::{app, changes_csv, count, opts, run_push, write_hr};

fn writes(t: &TestApp) -> (u64, u64) {
    (count(t, Endpoint::UpdateUser), count(t, Endpoint::AddUsers))
}

fn over(max: u32) -> PushOptions {
    let mut o = opts();
    o.max_changes_per_run = max;
    o
}

/// `approve --json`'s document for the mirror as it is.
async fn listing(t: &TestApp) -> serde_json::Value {
    #[derive(serde::Serialize)]
    struct Listing {
        held: Vec<approve::HeldEntry>,
    }
    let held = approve::list(&t.app.store).await.unwrap();
    serde_json::from_str(&cliq_sync::json::document(&Listing { held }).unwrap()).unwrap()
}

async fn approve_id(
    t: &TestApp,
    hr: &cliq_sync::hr::HrSource,
    o: &PushOptions,
    id: &str,
) -> Result<approve::HeldEntry, ApproveError> {
    approve::approve(&t.app.store, t.app.scheduler.limits(), hr, o, id).await
}

fn held_id(e: PushError) -> String {
    match e {
        PushError::Safety(stop) => stop.plan_id.expect("a held plan ID"),
        e => panic!("{e:?}"),
    }
}

/// (1) The daemon's push over max_changes_per_run holds one plan, listed
/// with the fixed shape; later ticks add no plan and no request.
#[tokio::test(start_paused = true)]
async fn the_daemon_holds_one_plan_listed_by_approve_json_and_later_ticks_add_nothing() {
    let hr_dir = tempfile::tempdir().unwrap();
    let hr_path = hr_dir.path().join("hr.csv");
    let t = daemon_app(&hr_path, 4).await;
    std::fs::write(&hr_path, changes_csv(&t.sim.users(), 5, "Desk")).unwrap();
    let d = start(&t);
    tokio::time::sleep(Duration::from_secs(16 * 60)).await;
    let doc = listing(&t).await;
    assert_eq!(doc["schema_version"], 1, "{doc}");
    let held = doc["held"].as_array().unwrap();
    assert_eq!(held.len(), 1, "{doc}");
    let h = held[0].as_object().unwrap();
    let mut keys: Vec<&str> = h.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["changes", "held_at", "id", "kind", "reason", "run_id"],
        "{doc}"
    );
    assert_eq!(
        (h["kind"].as_str(), h["changes"].as_u64()),
        (Some("push"), Some(5))
    );
    let run_id = h["run_id"].as_i64().unwrap();
    assert_eq!(h["id"].as_str(), Some(format!("H{run_id}").as_str()));
    assert!(
        h["reason"]
            .as_str()
            .unwrap()
            .contains("max_changes_per_run = 4"),
        "{doc}"
    );

    let gets = count(&t, Endpoint::GetUser);
    // Three more push ticks (09:30, 09:45, 10:00).
    tokio::time::sleep(Duration::from_secs(45 * 60)).await;
    assert_eq!(scalar(&t, "SELECT count(*) FROM held_plans").await, 1);
    assert_eq!(listing(&t).await, doc, "the same plan, the same listing");
    assert_eq!(writes(&t), (0, 0));
    assert_eq!(count(&t, Endpoint::GetUser), gets);
    // status shows it, with what to run.
    let report = cliq_sync::status::collect(&t.app.store, &t.app.settings, t.clock.now())
        .await
        .unwrap();
    let text = report.to_text();
    assert!(text.contains(&format!("held plan H{run_id}")), "{text}");
    assert!(
        text.contains(&format!("cliq-sync approve H{run_id}")),
        "{text}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["held_plans"][0]["id"].as_str(),
        Some(format!("H{run_id}").as_str())
    );
    assert!(json["held_plans"][0]["approved_at"].is_null(), "{json}");
    let m = crate::held::metrics(&t, &d.state).await;
    assert!(m.contains("cliq_sync_held_plans 1\n"), "{m}");
    assert!(m.contains("cliq_sync_push_held 1\n"), "{m}");
    d.shutdown.cancel();
    d.task.await.unwrap();
}

/// (2) held → approve → push: the approval sends nothing, the next push
/// sends exactly the held plan (5 PUTs, 0 POSTs) and uses the approval once.
#[tokio::test(start_paused = true)]
async fn an_approved_plan_is_pushed_by_the_next_push_exactly_once() {
    let t = app(30).await;
    let dir = tempfile::tempdir().unwrap();
    let users = t.sim.users();
    let hr = write_hr(dir.path(), "hr.csv", &changes_csv(&users, 5, "Desk")).await;
    let o = over(4);
    let id = held_id(run_push(&t, &hr, &o).await.unwrap_err());
    assert_eq!(writes(&t), (0, 0), "held: nothing sent");

    let before = t.sim.requests().len();
    let approved = approve_id(&t, &hr, &o, &id.to_lowercase()).await.unwrap();
    assert_eq!((approved.id.as_str(), approved.changes), (id.as_str(), 5));
    assert_eq!(t.sim.requests().len(), before, "approve sends no request");
    // A dry run sees the approval too, and sends nothing.
    let mut dry = o.clone();
    dry.dry_run = true;
    assert_eq!(
        run_push(&t, &hr, &dry).await.unwrap().report.status,
        "dry_run"
    );
    assert_eq!(t.sim.requests().len(), before);

    let out = run_push(&t, &hr, &o).await.unwrap();
    assert_eq!(
        (out.report.status.as_str(), out.report.updates_applied),
        ("ok", 5)
    );
    assert_eq!(writes(&t), (5, 0), "exactly the held plan");
    let run = out.report.run_id.unwrap();
    let consumed = scalar(
        &t,
        &format!("SELECT consumed_by_run FROM held_plans WHERE id = '{id}'"),
    )
    .await;
    assert_eq!(consumed, run);
    assert!(listing(&t).await["held"].as_array().unwrap().is_empty());

    // The approval was used once: the next plan over the threshold is held.
    let next = write_hr(dir.path(), "next.csv", &changes_csv(&users, 5, "Room")).await;
    let again = held_id(run_push(&t, &next, &o).await.unwrap_err());
    assert_ne!(again, id);
    assert_eq!(writes(&t), (5, 0));
}

/// (3) The HR source changed after the hold: the approval is refused with
/// the difference, and the new plan is held in its turn.
#[tokio::test(start_paused = true)]
async fn a_plan_that_changed_since_the_hold_is_refused_with_the_difference() {
    let t = app(30).await;
    let dir = tempfile::tempdir().unwrap();
    let users = t.sim.users();
    let o = over(4);
    let hr = write_hr(dir.path(), "hr.csv", &changes_csv(&users, 5, "Desk")).await;
    let id = held_id(run_push(&t, &hr, &o).await.unwrap_err());
    // One person more, one with another value.
    let mut csv = changes_csv(&users, 6, "Desk");
    let second = users[1]["email_id"].as_str().unwrap().to_owned();
    csv = csv.replacen(&format!("{second},Desk"), &format!("{second},Attic"), 1);
    let changed = write_hr(dir.path(), "hr2.csv", &csv).await;
    let e = approve_id(&t, &changed, &o, &id).await.unwrap_err();
    let ApproveError::Changed { diff, new_plan, .. } = &e else {
        panic!("{e:?}")
    };
    let sixth = users[5]["email_id"].as_str().unwrap();
    assert_eq!(diff.len(), 2, "{diff:?}");
    assert!(
        diff.iter()
            .any(|l| l.starts_with(&format!("  ~ update {second} work_location: \"Desk"))),
        "{diff:?}"
    );
    assert!(
        diff.iter()
            .any(|l| l.starts_with(&format!("  + update {sixth} work_location"))),
        "{diff:?}"
    );
    let new_id = new_plan.clone().expect("the new plan is held");
    assert_ne!(new_id, id);
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("approval of {id} refused")) && msg.contains(&new_id),
        "{msg}"
    );
    let held = listing(&t).await;
    let ids: Vec<&str> = held["held"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [new_id.as_str()], "{held}");
    assert_eq!(held["held"][0]["changes"], 6);
    assert_eq!(writes(&t), (0, 0));
    // Unknown ID: the list of held IDs.
    let e = approve_id(&t, &changed, &o, "H999").await.unwrap_err();
    assert!(
        matches!(e, ApproveError::Unknown { .. }) && e.to_string().contains(&new_id),
        "{e}"
    );
}

/// A refused approval whose new plan passes the thresholds, then the HR
/// source back as it was: the old plan is held again (the same held run)
/// and waits again, unapproved.
#[tokio::test(start_paused = true)]
async fn a_plan_held_again_after_a_refusal_waits_again() {
    let t = app(30).await;
    let dir = tempfile::tempdir().unwrap();
    let users = t.sim.users();
    let o = over(4);
    let hr = write_hr(dir.path(), "hr.csv", &changes_csv(&users, 5, "Desk")).await;
    let id = held_id(run_push(&t, &hr, &o).await.unwrap_err());
    let small = write_hr(dir.path(), "small.csv", &changes_csv(&users, 3, "Desk")).await;
    let e = approve_id(&t, &small, &o, &id).await.unwrap_err();
    assert!(
        matches!(&e, ApproveError::Changed { new_plan: None, .. }),
        "{e:?}"
    );
    assert!(listing(&t).await["held"].as_array().unwrap().is_empty());
    assert_eq!(held_id(run_push(&t, &hr, &o).await.unwrap_err()), id);
    let doc = listing(&t).await;
    assert_eq!(doc["held"][0]["id"].as_str(), Some(id.as_str()), "{doc}");
    approve_id(&t, &hr, &o, &id).await.unwrap();
    assert_eq!(
        run_push(&t, &hr, &o).await.unwrap().report.updates_applied,
        5
    );
}

/// (4) `on_threshold = "fail"`: a failed run every time, no held plan.
#[tokio::test(start_paused = true)]
async fn on_threshold_fail_records_a_failed_run_every_time_and_holds_nothing() {
    let t = app(30).await;
    let dir = tempfile::tempdir().unwrap();
    let hr = write_hr(
        dir.path(),
        "hr.csv",
        &changes_csv(&t.sim.users(), 5, "Desk"),
    )
    .await;
    let mut o = over(4);
    o.on_threshold = OnThreshold::Fail;
    for _ in 0..2 {
        match run_push(&t, &hr, &o).await.unwrap_err() {
            PushError::Safety(stop) => assert!(stop.failed && stop.plan_id.is_none(), "{stop:?}"),
            e => panic!("{e:?}"),
        }
        tokio::time::advance(Duration::from_secs(600)).await;
    }
    let failed = scalar(
        &t,
        "SELECT count(*) FROM sync_runs WHERE kind = 'push' AND status = 'failed'",
    )
    .await;
    assert_eq!(failed, 2);
    assert_eq!(
        scalar(&t, "SELECT count(*) FROM sync_runs WHERE status = 'held'").await,
        0
    );
    assert_eq!(scalar(&t, "SELECT count(*) FROM held_plans").await, 0);
    assert_eq!(writes(&t), (0, 0));
}

/// (5) A full pull held by the removal breaker is listed too (kind full,
/// changes = the users it would have marked removed), and `approve` of it
/// says to confirm with `sync --full --allow-removals`.
#[tokio::test(start_paused = true)]
async fn a_held_full_pull_is_listed_by_approve() {
    let t = app(100).await;
    for u in t.sim.users().iter().rev().take(20) {
        assert!(t.sim.remove_user(u["id"].as_str().unwrap()));
    }
    tokio::time::advance(Duration::from_secs(60)).await;
    let r = cliq_sync::sync::pull(
        &t.app,
        cliq_sync::sync::PullKind::Full,
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(r.status.as_str(), "held", "{r:?}");
    let doc = listing(&t).await;
    let h = &doc["held"][0];
    assert_eq!(
        (h["kind"].as_str(), h["changes"].as_u64()),
        (Some("full"), Some(20)),
        "{doc}"
    );
    let id = h["id"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let hr = write_hr(
        dir.path(),
        "hr.csv",
        &changes_csv(&t.sim.users(), 1, "Desk"),
    )
    .await;
    let e = approve_id(&t, &hr, &opts(), &id).await.unwrap_err();
    assert!(matches!(e, ApproveError::FullPull { .. }), "{e:?}");
    assert!(
        e.to_string().contains("sync --full --allow-removals"),
        "{e}"
    );
}

// ------------------------------------------------------------ the real binary

/// held → approve → push through the real binary, with its exit codes and
/// the requests of each step; a changed plan is refused (exit 3), an
/// unknown ID is exit 2, and a misspelt on_threshold value names the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_approve_command_releases_a_held_plan_and_exits_2_or_3_otherwise() {
    let b = crate::held::PushBinary::start().await;
    let (ts, hr, config) = (&b.ts, &b.hr, &b.config);
    let run = |args: &[&str]| b.run(args);
    let users = ts.sim.users();
    let sent = |ep: Endpoint| {
        ts.sim
            .requests()
            .iter()
            .filter(|r| r.endpoint == Some(ep))
            .count()
    };
    let all = || ts.sim.requests().len();

    std::fs::write(hr, changes_csv(&users, 5, "Desk")).unwrap();
    let before = all();
    let out = run(&["push"]).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(stderr.contains("cliq-sync approve H"), "{stderr}");
    let held_requests = all() - before;
    assert_eq!(
        (sent(Endpoint::UpdateUser), sent(Endpoint::AddUsers)),
        (0, 0)
    );

    let out = run(&["approve", "--json"]).output().await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["schema_version"], 1);
    let id = doc["held"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(doc["held"][0]["changes"], 5, "{doc}");

    let out = run(&["approve", "H999"]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&id),
        "{out:?}"
    );

    let before = all();
    let out = run(&["approve", &id]).output().await.unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(all(), before, "approve sends nothing to Cliq");

    let before = all();
    let out = run(&["push"]).output().await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let push_requests = all() - before;
    assert_eq!(
        (sent(Endpoint::UpdateUser), sent(Endpoint::AddUsers)),
        (5, 0)
    );
    eprintln!(
        "held → approve → push: push exit 3 with {held_requests} requests (0 PUT, 0 POST); \
         approve {id} exit 0 with 0 requests; push exit 0 with {push_requests} requests (5 PUT, 0 POST)"
    );

    // A plan held, then the HR source changes: refused with the difference.
    std::fs::write(hr, changes_csv(&users, 6, "Room")).unwrap();
    assert_eq!(run(&["push"]).status().await.unwrap().code(), Some(3));
    let out = run(&["approve", "--json"]).output().await.unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let second = doc["held"][0]["id"].as_str().unwrap().to_owned();
    std::fs::write(hr, changes_csv(&users, 7, "Room")).unwrap();
    let out = run(&["approve", &second]).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        stderr.contains("refused") && stderr.contains("  + update "),
        "{stderr}"
    );
    let out = run(&["status"]).output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("held plan H") && !text.contains(&format!("held plan {second} ")),
        "{text}"
    );
    assert_eq!(sent(Endpoint::UpdateUser), 5, "nothing more sent");

    // A misspelt value names the key and the line.
    std::fs::write(
        &ts.config,
        config.replace(
            "enabled = true\n",
            "enabled = true\non_threshold = \"fial\"\n",
        ),
    )
    .unwrap();
    let out = run(&["check-config"]).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        stderr.contains("push.on_threshold") && stderr.contains("\"hold\" or \"fail\""),
        "{stderr}"
    );
    b.ts.shut().await;
}

// ------------------------------------------------------------ the daemon's messages

/// The daemon with `max_changes_per_run = 4` and `on_threshold` as given,
/// its notifications captured, run through the push ticks of 09:15, 09:30
/// and 09:45 with an HR file of 5 changes: the app, the running daemon
/// and the notifications it sent (the HR file's folder is kept alive).
async fn three_push_ticks(
    on_threshold: OnThreshold,
) -> (
    TestApp,
    crate::daemon::Running,
    Vec<cliq_sync::notify::Message>,
    tempfile::TempDir,
) {
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let hr_path = dir.path().join("hr.csv");
    let p = hr_path.clone();
    let t = crate::helpers::spawn_app(crate::helpers::Opts {
        settings: Box::new(move |s| {
            s.hr = Some(cliq_sync::config::HrSettings::new(&p));
            s.push.enabled = true;
            s.push.max_changes_per_run = 4;
            s.push.on_threshold = on_threshold;
            s.sync.teams = cliq_sync::config::TeamsMode::Off;
        }),
        ..Default::default()
    })
    .await;
    let (notifier, rx) = cliq_sync::notify::Notifier::capture(t.clock.clone());
    let state = Arc::new(cliq_sync::daemon::DaemonState::default());
    let daemon = cliq_sync::daemon::Daemon::new(t.app.clone(), state.clone())
        .unwrap()
        .with_notifier(notifier.clone());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(daemon.run(shutdown.clone(), Arc::new(tokio::sync::Notify::new())));
    let d = crate::daemon::Running {
        shutdown,
        state,
        task,
    };
    std::fs::write(&hr_path, changes_csv(&t.sim.users(), 5, "Desk")).unwrap();
    tokio::time::sleep(Duration::from_secs(46 * 60)).await;
    notifier.flush().await;
    let mut rx = rx;
    let got = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    (t, d, got, dir)
}

/// `push_held` names the plan ID and the approve command.
#[tokio::test(start_paused = true)]
async fn the_push_held_message_names_the_plan_and_the_approve_command() {
    let (_t, d, got, _dir) = three_push_ticks(OnThreshold::Hold).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let id = format!("H{}", got[0].run_id.unwrap());
    assert!(
        got[0].summary.contains(&format!("held plan {id}")),
        "{got:?}"
    );
    assert!(
        got[0]
            .summary
            .contains(&format!("`cliq-sync approve {id}`")),
        "{got:?}"
    );
    d.shutdown.cancel();
    d.task.await.unwrap();
}

/// The daemon under `on_threshold = "fail"`: a failed run on every push
/// tick and `push_failed`, no held run, no held plan.
#[tokio::test(start_paused = true)]
async fn the_daemon_under_on_threshold_fail_fails_every_tick() {
    let (t, d, got, _dir) = three_push_ticks(OnThreshold::Fail).await;
    assert!(
        !got.is_empty() && got.iter().all(|m| m.incident == "push_failed"),
        "{got:?}"
    );
    let failed = "SELECT count(*) FROM sync_runs WHERE kind = 'push' AND status = 'failed'";
    assert_eq!(scalar(&t, failed).await, 3);
    assert_eq!(
        scalar(&t, "SELECT count(*) FROM sync_runs WHERE status = 'held'").await,
        0
    );
    assert_eq!(scalar(&t, "SELECT count(*) FROM held_plans").await, 0);
    let m = crate::held::metrics(&t, &d.state).await;
    assert!(
        m.contains("cliq_sync_runs_total{kind=\"push\",status=\"failed\"} 3\n"),
        "{m}"
    );
    assert_eq!(writes(&t), (0, 0));
    d.shutdown.cancel();
    d.task.await.unwrap();
}
