//! Issue 12, points 6 and 7: a reviewed plan file is pushed exactly as
//! written (`plan --out` / `push --plan`), and `undo` pushes the inverse of
//! a push run from its before-values. Both check each part's mirror values
//! right before sending and refuse what changed since.

use std::time::Duration;

use cliq_sync::cliq::Endpoint;
use cliq_sync::sync::push::{push_given, Given, PushOutcome};
use cliq_sync::sync::{reviewed, undo};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::crash::tcp_sim;
use crate::helpers::TestApp;
use crate::trust::{app, changes_csv, count, full_pull, opts, run_push, s, write_hr};

async fn given_push(t: &TestApp, given: &Given, dry_run: bool) -> PushOutcome {
    let mut o = opts();
    o.dry_run = dry_run;
    push_given(
        &t.app.store,
        &t.app.client,
        t.app.scheduler.limits(),
        given,
        &o,
        &CancellationToken::new(),
    )
    .await
    .unwrap()
}

fn work_location(t: &TestApp, id: &str) -> String {
    s(&t.sim.user(id).unwrap(), "work_location")
}

/// A plan file for `n` "Desk" changes, written with `plan --out`'s writer.
async fn plan_file(t: &TestApp, dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let hr = write_hr(dir, "hr.csv", &changes_csv(&t.sim.users(), n, "Desk")).await;
    let plan =
        cliq_sync::sync::plan::plan(&t.app.store, &hr, &opts().plan, t.app.scheduler.limits())
            .await
            .unwrap();
    let path = dir.join("reviewed.json");
    reviewed::write(&t.app.store, &plan, &path).await.unwrap();
    path
}

#[tokio::test(start_paused = true)]
async fn push_plan_applies_exactly_the_file_and_refuses_parts_changed_since() {
    let t = app(30).await;
    let dir = tempfile::tempdir().unwrap();
    let path = plan_file(&t, dir.path(), 5).await;
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let users = t.sim.users();
    // A hand edit in Cliq after the review, seen by a pull.
    let edited = s(&users[1], "id");
    assert!(t.sim.mutate_user(&edited, json!({"work_location": "Hand"})));
    full_pull(&t).await;

    let before = count(&t, Endpoint::UpdateUser);
    let given = reviewed::read(&path, t.app.store.path()).unwrap();
    let out = given_push(&t, &given, false).await;
    assert_eq!(
        count(&t, Endpoint::UpdateUser) - before,
        4,
        "{:?}",
        out.report
    );
    assert_eq!(out.report.updates_applied, 4);
    assert_eq!(out.report.refused.len(), 1, "{:?}", out.report.refused);
    assert_eq!(out.report.refused[0].email, s(&users[1], "email_id"));
    assert_eq!(work_location(&t, &edited), "Hand");
    for u in users.iter().take(5).filter(|u| s(u, "id") != edited) {
        let id = s(u, "id");
        assert_eq!(work_location(&t, &id), format!("Desk {id}"));
    }
}

/// A person gone from Cliq and an add whose email exists by now are
/// refused too; nothing is sent for them.
#[tokio::test(start_paused = true)]
async fn push_plan_refuses_a_person_gone_and_an_add_that_exists_by_now() {
    // 30 users: one removal stays under the removal circuit breaker.
    let t = app(30).await;
    let dir = tempfile::tempdir().unwrap();
    let users = t.sim.users();
    let mut csv = changes_csv(&users, 2, "Desk");
    csv.push_str("new.person@example.com,Desk new\n");
    let hr = write_hr(dir.path(), "hr.csv", &csv).await;
    let mut o = opts();
    o.plan.create_missing = true;
    let plan = cliq_sync::sync::plan::plan(&t.app.store, &hr, &o.plan, t.app.scheduler.limits())
        .await
        .unwrap();
    assert_eq!((plan.updates.len(), plan.adds.len()), (2, 1));
    let path = dir.path().join("reviewed.json");
    reviewed::write(&t.app.store, &plan, &path).await.unwrap();
    // Later (a pull marks removed who was not seen since it started).
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(t.sim.remove_user(&s(&users[0], "id")));
    t.sim
        .add_user(json!({"email_id": "new.person@example.com", "first_name": "New"}));
    full_pull(&t).await;

    let given = reviewed::read(&path, t.app.store.path()).unwrap();
    let out = given_push(&t, &given, false).await;
    let codes: Vec<(&str, &str)> = out
        .report
        .refused
        .iter()
        .map(|r| (r.email.as_str(), r.code))
        .collect();
    let gone = s(&users[0], "email_id");
    assert!(codes.contains(&(gone.as_str(), "gone")), "{codes:?}");
    assert!(
        codes.contains(&("new.person@example.com", "exists")),
        "{codes:?}"
    );
    // Whoever reported to the removed person lost their manager in Cliq:
    // their part changed since too. Every other part was pushed.
    let refused_updates = codes.iter().filter(|c| c.1 != "exists").count() as u64;
    assert_eq!(out.report.updates_applied + refused_updates, 2, "{codes:?}");
    assert_eq!(out.report.adds_applied, 0);
    assert_eq!(count(&t, Endpoint::AddUsers), 0);
}

#[tokio::test(start_paused = true)]
async fn a_truncated_or_foreign_plan_file_is_refused_before_any_request() {
    let t = app(10).await;
    let dir = tempfile::tempdir().unwrap();
    let path = plan_file(&t, dir.path(), 3).await;
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let e = reviewed::read(&path, t.app.store.path()).unwrap_err();
    assert!(e.to_string().contains("not a complete plan file"), "{e}");
    let other = dir.path().join("other.db");
    std::fs::write(&path, &text).unwrap();
    let e = reviewed::read(&path, &other).unwrap_err();
    assert!(e.to_string().contains("made for the mirror"), "{e}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut v2 = v.clone();
    v2["schema_version"] = json!(2);
    std::fs::write(&path, v2.to_string()).unwrap();
    let e = reviewed::read(&path, t.app.store.path()).unwrap_err();
    assert!(e.to_string().contains("schema_version 2"), "{e}");
    assert_eq!(count(&t, Endpoint::UpdateUser), 0);
}

#[tokio::test(start_paused = true)]
async fn undo_restores_the_before_values_skips_hand_edits_and_links_the_run() {
    let t = app(30).await;
    let dir = tempfile::tempdir().unwrap();
    let users = t.sim.users();
    let original: Vec<(String, String)> = users
        .iter()
        .take(5)
        .map(|u| (s(u, "id"), s(u, "work_location")))
        .collect();
    let hr = write_hr(dir.path(), "hr.csv", &changes_csv(&users, 5, "Desk")).await;
    let pushed = run_push(&t, &hr, &opts()).await.unwrap();
    let run = pushed.report.run_id.unwrap();
    assert_eq!(pushed.report.updates_applied, 5);
    // Someone edits one of them by hand in Cliq; a pull sees it.
    let edited = original[2].0.clone();
    assert!(t.sim.mutate_user(&edited, json!({"work_location": "Hand"})));
    full_pull(&t).await;

    let given = undo::given(&t.app.store, run).await.unwrap();
    let before = count(&t, Endpoint::UpdateUser);
    let before_all: u64 = t.sim.counters().requests.values().sum();
    let dry = given_push(&t, &given, true).await;
    assert_eq!(
        count(&t, Endpoint::UpdateUser),
        before,
        "a dry run sends nothing"
    );
    assert_eq!(dry.plan.updates.len(), 4);
    assert_eq!(dry.report.refused.len(), 1);

    let out = given_push(&t, &given, false).await;
    assert_eq!(
        count(&t, Endpoint::UpdateUser) - before,
        4,
        "{:?}",
        out.report
    );
    assert_eq!(out.report.refused.len(), 1);
    assert_eq!(
        out.report.refused[0].field.as_deref(),
        Some("work_location")
    );
    // The undo's whole cost: one PUT per restored user, nothing else.
    assert_eq!((out.report.requests, out.report.updates_applied), (4, 4));
    assert_eq!(
        t.sim.counters().requests.values().sum::<u64>() - before_all,
        4
    );
    for (id, was) in &original {
        let want = if *id == edited { "Hand" } else { was.as_str() };
        assert_eq!(work_location(&t, id), want);
    }
    let undo_run = out.report.run_id.unwrap();
    let runs = t.app.store.recent_runs(10).await.unwrap();
    let row = runs.iter().find(|r| r.id == undo_run).unwrap();
    assert_eq!((row.kind.as_str(), row.undoes_run), ("push", Some(run)));

    // An undo of the undo restores what the first push set.
    let again = given_push(
        &t,
        &undo::given(&t.app.store, undo_run).await.unwrap(),
        false,
    )
    .await;
    assert_eq!(again.report.updates_applied, 4);
    for (id, _) in original.iter().filter(|(id, _)| *id != edited) {
        assert_eq!(work_location(&t, id), format!("Desk {id}"));
    }
    let e = undo::given(&t.app.store, 9999).await.unwrap_err();
    assert!(e.to_string().contains("no run 9999"), "{e}");
}

async fn full_sync(ts: &crate::crash::TcpSim) {
    assert!(ts
        .cli(&["sync", "--full"])
        .status()
        .await
        .unwrap()
        .success());
}

/// Through the real binary: `plan --out`, `push --plan` (exit 0, 3 with a
/// part refused, 2 for a truncated file), `undo` and its exit codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_out_push_plan_and_undo_exit_codes() {
    let hr_dir = tempfile::tempdir().unwrap();
    let hr = hr_dir.path().join("hr.csv");
    let ts = tcp_sim(
        20,
        Duration::ZERO,
        &format!(
            "[sync]\nteams = \"off\"\n[hr]\nsource = \"{}\"\n[push]\nenabled = true\n",
            hr.display()
        ),
    )
    .await;
    let code = |o: &std::process::Output| o.status.code().unwrap_or(-1);
    full_sync(&ts).await;
    let users = ts.sim.users();
    std::fs::write(&hr, changes_csv(&users, 4, "Desk")).unwrap();
    let file = hr_dir.path().join("plan.json");
    let f = file.to_str().unwrap();
    let out = ts.cli(&["plan", "--out", f]).output().await.unwrap();
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    // The HR file changes after the review: push --plan ignores it.
    std::fs::write(&hr, changes_csv(&users, 10, "Other")).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, &text[..text.len() - 10]).unwrap();
    let out = ts.cli(&["push", "--plan", f]).output().await.unwrap();
    assert_eq!(code(&out), 2, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(ts.requests(Endpoint::UpdateUser), 0);
    std::fs::write(&file, &text).unwrap();
    ts.sim
        .mutate_user(&s(&users[0], "id"), json!({"work_location": "Hand"}));
    full_sync(&ts).await;
    let out = ts.cli(&["push", "--plan", f]).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(code(&out), 3, "{stdout}");
    assert!(stdout.contains(&s(&users[0], "email_id")), "{stdout}");
    assert_eq!(ts.requests(Endpoint::UpdateUser), 3);
    let out = ts.cli(&["status", "--json"]).output().await.unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let push_run = status["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "push" && r["status"] == "ok")
        .map(|r| r["id"].as_i64().unwrap())
        .unwrap_or_else(|| panic!("{status}"));
    let out = ts
        .cli(&["undo", &push_run.to_string(), "--json"])
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["report"]["undoes_run"], push_run);
    assert_eq!(ts.requests(Endpoint::UpdateUser), 6);
    let out = ts.cli(&["undo", "9999"]).output().await.unwrap();
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no run 9999"));
    ts.shut().await;
}
