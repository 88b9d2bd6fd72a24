//! The write side: HR source → plan → push, against the simulator in paused time.

use std::collections::HashMap;
use std::time::Duration;

use cliq_sync::cliq::Endpoint;
use cliq_sync::config::HrSettings;
use cliq_sync::hr::HrSource;
use cliq_sync::sim::Faults;
use cliq_sync::sync::plan::{plan, Plan};
use cliq_sync::sync::push::{push, PushError, PushOptions, PushOutcome};
use serde_json::Value;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::helpers::TestApp;
use crate::trust::{app, changes_csv, full_pull, opts, write_hr};

async fn plan_of(t: &TestApp, hr: &HrSource, o: &PushOptions) -> Plan {
    plan(&t.app.store, hr, &o.plan, t.app.scheduler.limits())
        .await
        .unwrap()
}

async fn run_push(t: &TestApp, hr: &HrSource, o: &PushOptions) -> Result<PushOutcome, PushError> {
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

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_owned()
}

/// PUT bodies per user id, as the simulator received them.
fn puts(t: &TestApp) -> HashMap<String, Vec<Value>> {
    let mut m: HashMap<String, Vec<Value>> = HashMap::new();
    for r in t.sim.requests() {
        if r.endpoint == Some(Endpoint::UpdateUser) {
            let id = r.path.rsplit('/').next().unwrap().to_owned();
            m.entry(id)
                .or_default()
                .push(serde_json::from_str(&r.body).unwrap());
        }
    }
    m
}

fn count(t: &TestApp, ep: Endpoint) -> u64 {
    t.sim.counters().requests.get(&ep).copied().unwrap_or(0)
}

async fn pushes_by_status(t: &TestApp) -> HashMap<String, i64> {
    let _h = t.app.store.hold();
    sqlx::query("SELECT status, count(*) AS n FROM pushes GROUP BY status")
        .fetch_all(t.app.store.pool())
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.get("status"), r.get("n")))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn names_resolve_and_the_push_applies_exactly_the_plan() {
    let t = app(200).await;
    let dir = tempfile::tempdir().unwrap();
    let users = t.sim.users();
    let (a, b, boss) = (&users[10], &users[11], &users[3]);
    // A department and a designation other than a's, with members in the mirror.
    let plan0 = plan_of(
        &t,
        &write_hr(dir.path(), "x.csv", "email_id\n").await,
        &opts(),
    )
    .await;
    assert!(plan0.is_empty());
    let dept = users
        .iter()
        .map(|u| (s(&u["department"], "id"), s(&u["department"], "name")))
        .find(|(id, _)| !id.is_empty() && *id != s(&a["department"], "id"))
        .unwrap();
    let desig = users
        .iter()
        .map(|u| (s(&u["designation"], "id"), s(&u["designation"], "name")))
        .find(|(id, _)| !id.is_empty() && *id != s(&a["designation"], "id"))
        .unwrap();
    let csv = format!(
        "email_id,department,designation,reporting_to_email,work_location,extension,mobile\n\
         {},{},{},{},Dock 7,,\n\
         {},No Such Department,,,\"{}\",,\"{}\"\n",
        s(a, "email_id").to_uppercase(),
        dept.1.to_lowercase(),
        desig.1,
        s(boss, "email_id"),
        s(b, "email_id"),
        s(b, "work_location"),
        s(b, "mobile"),
    );
    let hr = write_hr(dir.path(), "hr.csv", &csv).await;
    let o = opts();
    let p = plan_of(&t, &hr, &o).await;

    // a: four fields, names resolved to ids; b: nothing but a blocked department.
    assert_eq!(p.updates.len(), 1, "{p:#?}");
    let u = &p.updates[0];
    assert_eq!(u.user_id, s(a, "id"));
    let by: HashMap<&str, &str> = u
        .changes
        .iter()
        .map(|c| (c.cliq_key, c.desired.as_str()))
        .collect();
    let mut expected = HashMap::from([
        ("department_id", dept.0.as_str()),
        ("designation_id", desig.0.as_str()),
        ("work_location", "Dock 7"),
    ]);
    let boss_id = s(boss, "id");
    if s(&a["reportingto"], "id") != boss_id {
        expected.insert("reporting_to_zuid", boss_id.as_str());
    }
    assert_eq!(by, expected);
    assert_eq!(p.blocked.len(), 1);
    assert_eq!(p.blocked[0].field, Some("department"));
    assert_eq!(p.blocked[0].kind, "unresolved");
    assert_eq!(p.summary.not_in_hr, 198);
    assert_eq!(p.summary.update_requests, 1);
    // The plan wrote nothing to Cliq.
    assert_eq!(count(&t, Endpoint::UpdateUser), 0);
    // JSON is stable and complete.
    let j = serde_json::to_value(&p).unwrap();
    assert_eq!(
        j["updates"][0]["changes"].as_array().unwrap().len(),
        expected.len()
    );
    assert_eq!(j["summary"]["changes"], 1);

    let out = run_push(&t, &hr, &o).await.unwrap();
    assert_eq!(out.report.status, "ok", "{:?}", out.report);
    assert_eq!(out.report.updates_applied, 1);
    assert_eq!(out.report.skipped, 1);

    // Exactly one PUT, for a, in the documented shape with only the changed fields.
    let bodies = puts(&t);
    assert_eq!(bodies.len(), 1);
    let body = &bodies[&s(a, "id")][0];
    let list = body["users"].as_array().unwrap();
    assert_eq!(body.as_object().unwrap().len(), 1);
    assert_eq!(list.len(), 1);
    let sent = list[0].as_object().unwrap();
    assert_eq!(sent["email_id"].as_str().unwrap(), s(a, "email_id"));
    assert_eq!(sent.len(), expected.len() + 1);
    for (k, v) in &expected {
        assert_eq!(sent[*k].as_str().unwrap(), *v, "{k}");
    }
    // Applied in the simulator.
    let now = t.sim.user(&s(a, "id")).unwrap();
    assert_eq!(s(&now["department"], "id"), dept.0);
    assert_eq!(s(&now["designation"], "id"), desig.0);
    assert_eq!(s(&now, "work_location"), "Dock 7");
    assert_eq!(s(&now["reportingto"], "id"), boss_id);

    // The mirror follows at once, with history of source push.
    let _h = t.app.store.hold();
    let row =
        sqlx::query("SELECT work_location, department_id, department_name FROM users WHERE id = ?")
            .bind(s(a, "id"))
            .fetch_one(t.app.store.pool())
            .await
            .unwrap();
    assert_eq!(row.get::<String, _>("work_location"), "Dock 7");
    assert_eq!(row.get::<String, _>("department_id"), dept.0);
    assert_eq!(row.get::<String, _>("department_name"), dept.1);
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM user_changes WHERE source = 'push' AND user_id = ? AND field = 'work_location'",
    )
    .bind(s(a, "id"))
    .fetch_one(t.app.store.pool())
    .await
    .unwrap();
    assert_eq!(n, 1);
    drop(_h);
    let st = pushes_by_status(&t).await;
    assert_eq!(st.get("applied"), Some(&1));
    assert_eq!(st.get("skipped"), Some(&1));
    assert_eq!(st.get("planned"), None);

    // Idempotent: the next plan is empty (before and after a pull).
    assert!(plan_of(&t, &hr, &o).await.is_empty());
    full_pull(&t).await;
    assert!(plan_of(&t, &hr, &o).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn every_format_plans_the_same() {
    let t = app(50).await;
    let dir = tempfile::tempdir().unwrap();
    let users = t.sim.users();
    let (a, b) = (s(&users[5], "email_id"), s(&users[6], "email_id"));
    let csv = format!("email_id,work_location,extension\n{a},Pier 42,77\n{b},,78\n");
    let json = format!(
        r#"[{{"email_id":"{a}","work_location":"Pier 42","extension":77}},{{"email_id":"{b}","extension":"78"}}]"#
    );
    let yaml = format!("users:\n  - email_id: {a}\n    work_location: Pier 42\n    extension: 77\n  - email_id: {b}\n    extension: 78\n");
    let toml = format!("[[users]]\nemail_id = \"{a}\"\nwork_location = \"Pier 42\"\nextension = 77\n\n[[users]]\nemail_id = \"{b}\"\nextension = \"78\"\n");
    let mut plans = Vec::new();
    for (name, text) in [
        ("hr.csv", csv),
        ("hr.json", json),
        ("hr.yaml", yaml),
        ("hr.toml", toml),
    ] {
        let mut p = plan_of(&t, &write_hr(dir.path(), name, &text).await, &opts()).await;
        p.source = String::new();
        plans.push(p);
    }
    assert_eq!(plans[0].summary.field_changes, 3, "{:#?}", plans[0].updates);
    for p in &plans[1..] {
        assert_eq!(p, &plans[0]);
    }
}

#[tokio::test(start_paused = true)]
async fn a_bad_source_is_exit_2_naming_file_line_and_field_and_pushes_nothing() {
    let t = app(20).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hr.csv");
    std::fs::write(
        &path,
        "email_id,work_locaton\nok@zylker.example,A\nnot-an-email,B\nOK@zylker.example,C\n",
    )
    .unwrap();
    let mut settings = t.app.settings.clone();
    settings.hr = Some(HrSettings::new(&path));
    let f = cliq_sync::cli::load_hr(&settings).await.unwrap_err();
    assert_eq!(f.code, 2);
    let msg = format!("{:#}", f.error);
    let file = path.display().to_string();
    assert!(
        msg.contains(&format!(
            "{file}: line 1: field `work_locaton`: unknown column; did you mean 'work_location'?"
        )),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("{file}: line 3: field `email_id`")),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("{file}: line 4: field `email_id`: duplicate")),
        "{msg}"
    );
    // Nothing was planned or sent.
    assert_eq!(
        count(&t, Endpoint::UpdateUser) + count(&t, Endpoint::AddUsers),
        0
    );
    // Bad managed_fields are a config error too.
    settings.hr.as_mut().unwrap().managed_fields = Some(vec!["departmnet".into()]);
    let e = settings.validate().unwrap_err().to_string();
    assert!(e.contains("did you mean 'department'"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn too_many_changes_stop_unless_forced() {
    let t = app(30).await;
    let dir = tempfile::tempdir().unwrap();
    let hr = write_hr(
        dir.path(),
        "hr.csv",
        &changes_csv(&t.sim.users(), 5, "Desk"),
    )
    .await;
    let mut o = opts();
    o.max_changes_per_run = 4;
    let e = run_push(&t, &hr, &o).await.unwrap_err();
    assert!(matches!(e, PushError::Safety(_)), "{e:?}");
    assert!(e.to_string().contains("max_changes_per_run = 4"), "{e}");
    assert_eq!(count(&t, Endpoint::UpdateUser), 0);
    // --dry-run checks the thresholds too and sends nothing.
    o.dry_run = true;
    assert!(matches!(
        run_push(&t, &hr, &o).await,
        Err(PushError::Safety(_))
    ));
    o.force = true;
    let out = run_push(&t, &hr, &o).await.unwrap();
    assert_eq!(out.report.status, "dry_run");
    assert_eq!(count(&t, Endpoint::UpdateUser), 0);
    o.dry_run = false;
    let out = run_push(&t, &hr, &o).await.unwrap();
    assert_eq!(out.report.updates_applied, 5);
    // Disabled: plan only.
    let hr2 = write_hr(
        dir.path(),
        "hr2.csv",
        &changes_csv(&t.sim.users(), 5, "Room"),
    )
    .await;
    let mut off = opts();
    off.enabled = false;
    let out = run_push(&t, &hr2, &off).await.unwrap();
    assert_eq!(out.report.status, "disabled");
    assert_eq!(out.plan.summary.updates, 5);
    assert_eq!(count(&t, Endpoint::UpdateUser), 5);
}

#[tokio::test(start_paused = true)]
async fn a_shrunken_source_is_refused_unless_forced() {
    let t = app(30).await;
    let dir = tempfile::tempdir().unwrap();
    let users = t.sim.users();
    let full = write_hr(dir.path(), "full.csv", &changes_csv(&users, 20, "Desk")).await;
    run_push(&t, &full, &opts()).await.unwrap();
    // 15 of 20 records: fewer than (1 - 0.2) × 20 = 16.
    let short = write_hr(dir.path(), "short.csv", &changes_csv(&users, 15, "Room")).await;
    let e = run_push(&t, &short, &opts()).await.unwrap_err();
    assert!(matches!(e, PushError::Safety(_)), "{e:?}");
    assert!(e.to_string().contains("fewer than"), "{e}");
    let before = count(&t, Endpoint::UpdateUser);
    // 16 records pass.
    let ok = write_hr(dir.path(), "ok.csv", &changes_csv(&users, 16, "Room")).await;
    let out = run_push(&t, &ok, &opts()).await.unwrap();
    assert_eq!(out.report.updates_applied, 16);
    // Forced, a smaller one passes too (and becomes the new reference).
    let mut o = opts();
    o.force = true;
    let tiny = write_hr(dir.path(), "tiny.csv", &changes_csv(&users, 3, "Hall")).await;
    let out = run_push(&t, &tiny, &o).await.unwrap();
    assert_eq!(out.report.updates_applied, 3);
    assert_eq!(count(&t, Endpoint::UpdateUser), before + 19);
}

#[tokio::test(start_paused = true)]
async fn refusals_are_recorded_and_not_retried_until_hr_changes() {
    let t = app(30).await;
    let dir = tempfile::tempdir().unwrap();
    let users = t.sim.users();
    let (a, b) = (&users[4], &users[5]);
    let csv = |dept: &str| {
        format!(
            "email_id,department_id,work_location,first_name\n\
             {},{dept},,\n\
             {},,Desk 9,\n\
             new.hire@zylker.example,,,New\n\
             someone@elsewhere.example,,,Else\n\
             blocked.person@zylker.example,,,Blocked\n",
            s(a, "email_id"),
            s(b, "email_id"),
        )
    };
    let hr = write_hr(dir.path(), "hr.csv", &csv("999999")).await;
    let mut o = opts();
    o.plan.create_missing = true;
    let out = run_push(&t, &hr, &o).await.unwrap();
    let r = &out.report;
    assert_eq!(r.status, "ok", "{r:?}");
    assert_eq!(r.updates_applied, 1);
    assert_eq!(r.adds_applied, 1);
    assert_eq!(r.failed, 3, "{r:?}");
    let codes: HashMap<&str, Option<&str>> = r
        .failures
        .iter()
        .map(|f| (f.email.as_str(), f.code.as_deref()))
        .collect();
    assert_eq!(codes[s(a, "email_id").as_str()], Some("reference_rejected"));
    assert_eq!(
        codes["someone@elsewhere.example"],
        Some("zohoaccount.conflict")
    );
    assert_eq!(
        codes["blocked.person@zylker.example"],
        Some("email.invitation.blocked")
    );
    assert!(t.sim.user_id_by_email("new.hire@zylker.example").is_some());
    let (puts0, adds0) = (
        count(&t, Endpoint::UpdateUser),
        count(&t, Endpoint::AddUsers),
    );
    // The unknown department's 500 is retried first (1 + 5 transient
    // retries), then recorded as reference_rejected.
    assert_eq!((puts0, adds0), (7, 1));
    let st = pushes_by_status(&t).await;
    assert_eq!(st.get("failed"), Some(&3));
    assert_eq!(st.get("applied"), Some(&2));
    let status = cliq_sync::sync::push::status_summary(&t.app.store)
        .await
        .unwrap();
    assert_eq!(status.failures.len(), 3);
    assert_eq!(status.attempts.get("failed"), Some(&3));
    assert_eq!(status.last_source_records, Some(5));

    // Next run: nothing is sent again (the new hire waits for a pull).
    let p = plan_of(&t, &hr, &o).await;
    assert!(p.is_empty(), "{p:#?}");
    assert_eq!(p.pending_adds, vec!["new.hire@zylker.example".to_string()]);
    assert_eq!(
        p.blocked
            .iter()
            .filter(|b| b.kind == "failed_before")
            .count(),
        3
    );
    let out = run_push(&t, &hr, &o).await.unwrap();
    assert_eq!(out.report.skipped, 3);
    assert_eq!(count(&t, Endpoint::UpdateUser), puts0);
    assert_eq!(count(&t, Endpoint::AddUsers), adds0);
    // After a pull the new hire is a plain Cliq user: still nothing to do.
    full_pull(&t).await;
    let p = plan_of(&t, &hr, &o).await;
    assert!(p.is_empty(), "{p:#?}");

    // A new HR value for a is planned again, and applies.
    let dept = t.sim.departments()[2].0.clone();
    let hr2 = write_hr(dir.path(), "hr2.csv", &csv(&dept)).await;
    let p = plan_of(&t, &hr2, &o).await;
    assert_eq!(p.updates.len(), 1);
    let out = run_push(&t, &hr2, &o).await.unwrap();
    assert_eq!(out.report.updates_applied, 1);
    assert_eq!(
        s(&t.sim.user(&s(a, "id")).unwrap()["department"], "id"),
        dept
    );
    assert_eq!(t.app.store.push_failures().await.unwrap().len(), 2);
}

/// Start a push of `n` changes, stop it after `after` of paused time (by
/// cancelling or aborting), restart the program and push again.
async fn interrupted(abort: bool, after: Duration, latency: Duration, expect_reconciled: u64) {
    let t = app(120).await;
    t.sim.set_faults(Faults {
        latency,
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let users = t.sim.users();
    let n = 60;
    let hr = write_hr(dir.path(), "hr.csv", &changes_csv(&users, n, "Desk")).await;
    let cancel = CancellationToken::new();
    let task = {
        let (app, hr, cancel) = (t.app.clone(), hr.clone(), cancel.clone());
        tokio::spawn(async move {
            push(
                &app.store,
                &app.client,
                app.scheduler.limits(),
                &hr,
                &opts(),
                &cancel,
            )
            .await
        })
    };
    tokio::time::sleep(after).await;
    let first = if abort {
        task.abort();
        let _ = task.await;
        None
    } else {
        cancel.cancel();
        Some(task.await.unwrap().unwrap())
    };
    if let Some(out) = &first {
        assert_eq!(out.report.status, "stopped");
    }
    let sent_before = puts(&t).values().map(Vec::len).sum::<usize>();
    assert!(sent_before > 0 && sent_before < n, "{sent_before}");

    // A new process on the same mirror continues with what is left.
    let app2 = t.restart().await;
    let out = push(
        &app2.store,
        &app2.client,
        app2.scheduler.limits(),
        &hr,
        &opts(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(out.report.status, "ok", "{:?}", out.report);
    let bodies = puts(&t);
    // A PUT that Cliq applied while its sender died is not re-sent: the
    // re-check finds it applied. (The simulator records a request when it
    // answers, so that one is not among the recorded bodies.)
    assert_eq!(
        bodies.len() + out.report.reconciled as usize,
        n,
        "every user updated once"
    );
    assert_eq!(out.report.reconciled, expect_reconciled);
    for (id, b) in &bodies {
        assert_eq!(b.len(), 1, "user {id} got {} PUTs", b.len());
    }
    for u in users.iter().take(n) {
        let now = t.sim.user(&s(u, "id")).unwrap();
        assert_eq!(s(&now, "work_location"), format!("Desk {}", s(u, "id")));
    }
    assert!(
        plan(&app2.store, &hr, &opts().plan, app2.scheduler.limits())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(t.throttled_total(), 0);
    let st = {
        let _h = app2.store.hold();
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pushes WHERE status = 'planned'")
            .fetch_one(app2.store.pool())
            .await
            .unwrap()
    };
    assert_eq!(st, 0, "every attempt has an outcome");
    eprintln!(
        "interrupted push (abort={abort}): {sent_before} sent before, reconciled {} after",
        out.report.reconciled
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_push_resumes_without_duplicates() {
    // Stopped while waiting for the second quota window.
    interrupted(false, Duration::from_secs(75), Duration::ZERO, 0).await;
}

#[tokio::test(start_paused = true)]
async fn an_aborted_push_resumes_without_duplicates() {
    // Killed while waiting for the quota.
    interrupted(true, Duration::from_secs(75), Duration::ZERO, 0).await;
}

#[tokio::test(start_paused = true)]
async fn a_push_killed_between_send_and_record_is_reconciled() {
    // Every answer takes 5 s: at 12 s the third PUT has been applied by Cliq
    // but its answer is still on the way when the task dies.
    interrupted(true, Duration::from_secs(12), Duration::from_secs(5), 1).await;
}

#[tokio::test(start_paused = true)]
async fn five_hundred_updates_keep_the_quota_at_the_floor() {
    let t = app(520).await;
    let dir = tempfile::tempdir().unwrap();
    let hr = write_hr(
        dir.path(),
        "hr.csv",
        &changes_csv(&t.sim.users(), 500, "Desk"),
    )
    .await;
    let o = opts();
    let p = plan_of(&t, &hr, &o).await;
    assert_eq!(p.summary.update_requests, 500);
    let started = tokio::time::Instant::now();
    let out = run_push(&t, &hr, &o).await.unwrap();
    let took = started.elapsed().as_secs_f64();
    assert_eq!(out.report.updates_applied, 500);
    // 500 at 20/min: the 500th request starts after floor(499/20) = 24 windows.
    let floor = 24.0 * 60.0;
    eprintln!(
        "500-update push: {took:.1} s of paused time; floor {floor} s (+{:.2}%); plan said {:.1} s",
        (took / floor - 1.0) * 100.0,
        p.summary.min_duration_secs
    );
    assert!(took >= floor, "{took}");
    assert!(
        took <= floor * 1.02,
        "{took} s is more than 2% over the floor"
    );
    assert_eq!(t.throttled_total(), 0);
    assert!(t.max_in_window(Endpoint::UpdateUser) <= 20);
    assert_eq!(count(&t, Endpoint::UpdateUser), 500);
    assert!(plan_of(&t, &hr, &o).await.is_empty());
}
