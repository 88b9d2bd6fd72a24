//! Issue 12, point 5: hand edits in Cliq. A field HR manages that an admin
//! changed in Cliq since our last push of it (the mirror's history: a
//! `user_changes` row of a pull after our `push` row) is a conflict. The
//! plan marks it; `[push] on_conflict` decides: `overwrite` (the default)
//! pushes it anyway, `skip` leaves Cliq's value alone, `hold` holds the push.

use std::time::Duration;

use cliq_sync::cliq::Endpoint;
use cliq_sync::config::Settings;
use cliq_sync::hr::HrSource;
use cliq_sync::sync::plan::{self, Plan, PlanOptions};
use cliq_sync::sync::push::{PushError, PushOptions};
use cliq_sync::sync::{pull_with, PullKind, PullOptions, TeamsMode};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::helpers::TestApp;
use crate::trust::{app, count, opts, run_push, s, write_hr};

/// Push options with `[push] on_conflict = VALUE`, read the way the
/// program reads it: from a config file.
fn push_opts(on_conflict: &str) -> PushOptions {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cliq-sync.toml");
    std::fs::write(&path, format!("[push]\non_conflict = \"{on_conflict}\"\n")).unwrap();
    let settings = Settings::load_with_env(Some(&path), Vec::new()).unwrap();
    PushOptions {
        plan: PlanOptions::from_settings(&settings).unwrap(),
        ..opts()
    }
}

async fn pull(t: &TestApp, kind: PullKind) {
    let o = PullOptions {
        teams: TeamsMode::Off,
        layouts: false,
        ..PullOptions::default()
    };
    let r = pull_with(&t.app, kind, &o, &CancellationToken::new())
        .await
        .unwrap();
    assert!(r.ok(), "{r:?}");
}

/// Four people: `a` was pushed, then edited by an admin in Cliq (the
/// conflict); `b` was pushed and nobody touched it since (HR changed it
/// again); `c` was never pushed by us (HR simply differs); `d` was pushed,
/// edited in Cliq and edited back to our value (nothing to overwrite).
struct Scene {
    t: TestApp,
    _dir: tempfile::TempDir,
    emails: [String; 4],
    a_id: String,
    /// The HR source after the edits: `a` still has the value we pushed.
    hr: HrSource,
}

async fn scene(observed_by: PullKind) -> Scene {
    let t = app(30).await;
    let dir = tempfile::tempdir().unwrap();
    let users = t.sim.users();
    let emails: [String; 4] = std::array::from_fn(|i| s(&users[i], "email_id"));
    let ids: Vec<String> = users.iter().take(4).map(|u| s(u, "id")).collect();
    let [a, b, c, d] = &emails;
    let first = format!("email_id,work_location\n{a},Desk A\n{b},Desk B\n{d},Desk D\n");
    let out = run_push(
        &t,
        &write_hr(dir.path(), "first.csv", &first).await,
        &opts(),
    )
    .await
    .unwrap();
    assert_eq!(out.report.updates_applied, 3);

    tokio::time::advance(Duration::from_secs(3600)).await;
    assert!(t
        .sim
        .mutate_user(&ids[0], json!({"work_location": "Room 7"})));
    assert!(t
        .sim
        .mutate_user(&ids[3], json!({"work_location": "Elsewhere"})));
    tokio::time::advance(Duration::from_secs(60)).await;
    pull(&t, observed_by).await;
    assert!(t
        .sim
        .mutate_user(&ids[3], json!({"work_location": "Desk D"})));
    tokio::time::advance(Duration::from_secs(60)).await;
    pull(&t, observed_by).await;

    let now = format!("email_id,work_location\n{a},Desk A\n{b},Desk B2\n{c},Desk C\n{d},Desk D2\n");
    let hr = write_hr(dir.path(), "hr.csv", &now).await;
    Scene {
        t,
        _dir: dir,
        a_id: ids[0].clone(),
        emails,
        hr,
    }
}

async fn plan_of(sc: &Scene, o: &PushOptions) -> (Plan, Value) {
    let p = plan::plan(
        &sc.t.app.store,
        &sc.hr,
        &o.plan,
        sc.t.app.scheduler.limits(),
    )
    .await
    .unwrap();
    let json = serde_json::to_value(&p).unwrap();
    (p, json)
}

/// The planned `work_location` change of `email`, as JSON.
fn change_of<'a>(plan: &'a Value, email: &str) -> Option<&'a Value> {
    plan["updates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == email)
        .map(|u| &u["changes"][0])
}

fn work_location(sc: &Scene) -> String {
    s(&sc.t.sim.user(&sc.a_id).unwrap(), "work_location")
}

fn puts(sc: &Scene) -> u64 {
    count(&sc.t, Endpoint::UpdateUser)
}

#[tokio::test(start_paused = true)]
async fn overwrite_plans_a_hand_edit_and_says_it_overwrites_a_change_made_in_cliq() {
    let sc = scene(PullKind::Full).await;
    let [a, b, c, d] = &sc.emails;
    for o in [opts(), push_opts("overwrite")] {
        let (p, json) = plan_of(&sc, &o).await;
        let ca = change_of(&json, a).expect("a's change is planned");
        assert_eq!(ca["desired"], "Desk A");
        let conflict = &ca["conflict"];
        assert!(
            conflict["changed_at"]
                .as_str()
                .is_some_and(|d| d.starts_with("2026-06-01T10:01")),
            "{ca}"
        );
        assert_eq!(conflict["cliq_value"], "Room 7", "{ca}");
        assert_eq!(conflict["pushed_value"], "Desk A", "{ca}");
        assert_eq!(conflict["observed_by"], "full", "{ca}");
        for other in [b, c, d] {
            let ch = change_of(&json, other).expect("planned");
            assert!(ch.get("conflict").is_none(), "{other}: {ch}");
        }
        assert_eq!(json["summary"]["conflicts"], 1, "{}", json["summary"]);
        let text = plan::render(&p);
        assert!(
            text.contains("overwrites a change made in Cliq on 2026-06-01"),
            "{text}"
        );
        assert_eq!(text.matches("overwrites a change").count(), 1, "{text}");
    }

    // Today's behaviour: the push sends all four, the hand edit included.
    let before = puts(&sc);
    let out = run_push(&sc.t, &sc.hr, &push_opts("overwrite"))
        .await
        .unwrap();
    assert_eq!(out.report.updates_applied, 4);
    assert_eq!(puts(&sc) - before, 4);
    assert_eq!(work_location(&sc), "Desk A");
    // Now our push is the last word: no conflict, nothing left to do.
    let (p, _) = plan_of(&sc, &push_opts("overwrite")).await;
    assert!(p.is_empty(), "{}", plan::render(&p));
}

#[tokio::test(start_paused = true)]
async fn skip_leaves_a_hand_edit_alone_and_lists_it() {
    let sc = scene(PullKind::Incremental).await;
    let [a, b, c, d] = &sc.emails;
    let o = push_opts("skip");
    let (p, json) = plan_of(&sc, &o).await;
    assert!(change_of(&json, a).is_none(), "{}", json["updates"]);
    for other in [b, c, d] {
        assert!(change_of(&json, other).is_some(), "{other} is planned");
    }
    let skipped = json["skipped_conflicts"].as_array().expect("listed");
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0]["email"], a.as_str());
    assert_eq!(skipped[0]["field"], "work_location");
    assert_eq!(skipped[0]["desired"], "Desk A");
    assert_eq!(skipped[0]["conflict"]["cliq_value"], "Room 7");
    assert_eq!(skipped[0]["conflict"]["observed_by"], "incremental");
    assert_eq!(json["summary"]["skipped_conflicts"], 1);
    assert_eq!(json["summary"]["updates"], 3);
    assert_eq!(json["summary"]["update_requests"], 3);
    let text = plan::render(&p);
    assert!(text.contains("on_conflict = \"skip\""), "{text}");
    assert!(text.contains("changed in Cliq on 2026-06-01"), "{text}");

    let before = puts(&sc);
    let out = run_push(&sc.t, &sc.hr, &o).await.unwrap();
    assert_eq!(out.report.updates_applied, 3);
    assert_eq!(puts(&sc) - before, 3, "a's field was not sent");
    assert_eq!(work_location(&sc), "Room 7", "Cliq's value stays");
}

/// (status, error) of every push run, oldest first.
async fn push_runs(t: &TestApp) -> Vec<(String, Option<String>)> {
    let _hold = t.app.store.hold();
    sqlx::query_as("SELECT status, error FROM sync_runs WHERE kind = 'push' ORDER BY id")
        .fetch_all(t.app.store.pool())
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn hold_holds_the_push_once_per_incident_naming_the_conflicts() {
    let sc = scene(PullKind::Full).await;
    let a = &sc.emails[0];
    let o = push_opts("hold");
    let before = puts(&sc);
    let runs_before = push_runs(&sc.t).await.len();
    let e = run_push(&sc.t, &sc.hr, &o).await.unwrap_err();
    let PushError::Safety(stop) = &e else {
        panic!("{e:?}")
    };
    assert!(stop.run_id.is_some() && !stop.repeated, "{stop:?}");
    for part in [
        a.as_str(),
        "work_location",
        "2026-06-01",
        "on_conflict = \"hold\"",
    ] {
        assert!(stop.reason.contains(part), "{part}: {}", stop.reason);
    }
    assert_eq!(puts(&sc), before, "nothing was sent");
    let runs = push_runs(&sc.t).await;
    assert_eq!(runs.len(), runs_before + 1);
    let (status, error) = runs.last().unwrap();
    assert_eq!(status, "held");
    assert!(
        error.as_deref().unwrap_or("").contains(a.as_str()),
        "{error:?}"
    );

    // The daemon's next tick: the same plan is the same incident.
    tokio::time::advance(Duration::from_secs(900)).await;
    let again = run_push(&sc.t, &sc.hr, &o).await.unwrap_err();
    assert!(
        matches!(&again, PushError::Safety(s) if s.repeated && s.run_id == stop.run_id),
        "{again:?}"
    );
    assert_eq!(push_runs(&sc.t).await.len(), runs_before + 1);

    // Reviewed and forced: it overwrites.
    let forced = PushOptions { force: true, ..o };
    let out = run_push(&sc.t, &sc.hr, &forced).await.unwrap();
    assert_eq!(out.report.updates_applied, 4);
    assert_eq!(work_location(&sc), "Desk A");
}

#[tokio::test(start_paused = true)]
async fn a_pushed_field_nobody_changed_since_does_not_hold_the_push() {
    let t = app(30).await;
    let dir = tempfile::tempdir().unwrap();
    let users = t.sim.users();
    let a = s(&users[0], "email_id");
    let hr = write_hr(
        dir.path(),
        "a.csv",
        &format!("email_id,work_location\n{a},Desk A\n"),
    )
    .await;
    run_push(&t, &hr, &push_opts("hold")).await.unwrap();
    tokio::time::advance(Duration::from_secs(3600)).await;
    pull(&t, PullKind::Full).await;
    let hr = write_hr(
        dir.path(),
        "b.csv",
        &format!("email_id,work_location\n{a},Desk B\n"),
    )
    .await;
    let out = run_push(&t, &hr, &push_opts("hold")).await.unwrap();
    assert_eq!(out.report.updates_applied, 1);
}

/// Through the real binary: `hold` is exit 3 with the conflict named, the
/// same plan held twice is one held run, `plan --json` carries the
/// `conflict` object, and a bad `on_conflict` is exit 2 naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exits_3_on_hold_once_per_incident_and_2_on_a_bad_value() {
    let hr_dir = tempfile::tempdir().unwrap();
    let hr = hr_dir.path().join("hr.csv");
    let config = format!(
        "[sync]\nteams = \"off\"\n[hr]\nsource = \"{}\"\n[push]\nenabled = true\n",
        hr.display()
    );
    let ts = crate::crash::tcp_sim(10, Duration::ZERO, &config).await;
    let run = |args: &[&str], on_conflict: &str| {
        let mut c = ts.cli(args);
        c.env("CLIQ_SYNC__PUSH__ON_CONFLICT", on_conflict);
        c
    };
    let code = |o: &std::process::Output| o.status.code().unwrap_or(-1);
    assert_eq!(
        code(
            &run(&["sync", "--full"], "overwrite")
                .output()
                .await
                .unwrap()
        ),
        0
    );
    let user = ts.sim.users()[0].clone();
    let (email, id) = (s(&user, "email_id"), s(&user, "id"));
    std::fs::write(&hr, format!("email_id,work_location\n{email},Desk A\n")).unwrap();
    assert_eq!(code(&run(&["push"], "hold").output().await.unwrap()), 0);
    assert!(ts.sim.mutate_user(&id, json!({"work_location": "Room 7"})));
    assert_eq!(
        code(&run(&["sync", "--full"], "hold").output().await.unwrap()),
        0
    );

    for _ in 0..2 {
        let out = run(&["push"], "hold").output().await.unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 3, "{err}");
        assert!(
            err.contains("on_conflict = \"hold\"") && err.contains(&email),
            "{err}"
        );
    }
    assert_eq!(s(&ts.sim.user(&id).unwrap(), "work_location"), "Room 7");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", ts.db.display()))
        .await
        .unwrap();
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_runs WHERE status = 'held'")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(held, 1, "the same plan held twice is one incident");

    let out = run(&["plan", "--json"], "hold").output().await.unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["schema_version"], 1);
    let conflict = &doc["updates"][0]["changes"][0]["conflict"];
    assert_eq!(conflict["cliq_value"], "Room 7", "{doc}");
    assert!(conflict["changed_at"].as_str().is_some(), "{doc}");

    let out = run(&["check-config"], "ask").output().await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 2, "{err}");
    assert!(err.contains("push.on_conflict"), "{err}");
    ts.shut().await;
}
