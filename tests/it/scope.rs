//! Issue 12 point 4: `[push] include`, `exclude` and `exclude_departments`.
//! Excluded people are never written (no PUT, no POST), the plan lists
//! them with the rule that matched, and they do not count toward
//! `max_changes_per_run`.

use std::collections::HashSet;
use std::time::Duration;

use cliq_sync::cliq::Endpoint;
use cliq_sync::hr::HrSource;
use cliq_sync::sync::plan::scope::Scope;
use cliq_sync::sync::plan::{plan, render};
use cliq_sync::sync::push::{PushError, PushOptions};
use serde_json::{json, Value};

use crate::crash::tcp_sim;
use crate::helpers::TestApp;
use crate::trust::{count, full_pull, opts, run_push, write_hr};

/// The example scope.
fn scope() -> Scope {
    let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    Scope::new(
        &v(&["*@eng.example"]),
        &v(&["ceo@example.com", "svc-*@example.com"]),
        &v(&["Board"]),
    )
    .unwrap()
}

fn scoped(max_changes_per_run: u32) -> PushOptions {
    let mut o = opts();
    o.plan.scope = scope();
    o.plan.create_missing = true;
    o.max_changes_per_run = max_changes_per_run;
    o
}

/// Who is expected out of scope, and by which rule.
const EXCLUDED: [(&str, &str); 7] = [
    ("bob@eng.example", "exclude_departments \"Board\""),
    ("carol@eng.example", "exclude_departments \"Board\""),
    ("ceo@example.com", "exclude \"ceo@example.com\""),
    ("dave@example.com", "not in include"),
    ("frank@eng.example", "exclude_departments \"Board\""),
    ("svc-build@example.com", "exclude \"svc-*@example.com\""),
    ("svc-new@example.com", "exclude \"svc-*@example.com\""),
];

/// An org with a Board, people in and out of scope, and an HR file that
/// changes every one of them (and adds three people not in Cliq).
async fn org_and_hr(dir: &std::path::Path) -> (TestApp, HrSource) {
    let t = crate::trust::app(30).await;
    let board = t.sim.add_department("Board");
    let eng = t
        .sim
        .departments()
        .into_iter()
        .find(|(_, n)| n == "Engineering")
        .unwrap()
        .0;
    for (email, dept) in [
        ("alice@eng.example", &eng),
        ("bob@eng.example", &board),
        ("carol@eng.example", &eng),
        ("ceo@example.com", &eng),
        ("svc-build@example.com", &eng),
        ("dave@example.com", &eng),
    ] {
        t.sim
            .add_user(json!({"email_id": email, "department_id": dept}));
    }
    full_pull(&t).await;
    // carol moves into the Board (by name, in other case); frank joins it;
    // the CEO's email is written in capitals.
    let csv = "email_id,department,work_location\n\
               alice@eng.example,,Dock 1\n\
               bob@eng.example,,Dock 2\n\
               carol@eng.example,board,Dock 3\n\
               CEO@Example.com,,Dock 4\n\
               svc-build@example.com,,Dock 5\n\
               dave@example.com,,Dock 6\n\
               erin@eng.example,,Dock 7\n\
               svc-new@example.com,,Dock 8\n\
               frank@eng.example,Board,Dock 9\n";
    let hr = write_hr(dir, "hr.csv", csv).await;
    t.sim.reset_counters();
    (t, hr)
}

/// Emails the simulator received a write for (PUT by id, POST by body).
fn written(t: &TestApp) -> HashSet<String> {
    let mut out = HashSet::new();
    for r in t.sim.requests() {
        match r.endpoint {
            Some(Endpoint::UpdateUser) => {
                let id = r.path.rsplit('/').next().unwrap();
                let u = t.sim.user(id).unwrap();
                out.insert(u["email_id"].as_str().unwrap().to_owned());
            }
            Some(Endpoint::AddUsers) => {
                let body: Value = serde_json::from_str(&r.body).unwrap();
                let text = body.to_string();
                for (e, _) in EXCLUDED.iter().chain([("erin@eng.example", "")].iter()) {
                    if text.contains(e) {
                        out.insert(e.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[tokio::test(start_paused = true)]
async fn excluded_people_get_no_writes_and_the_plan_names_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let (t, hr) = org_and_hr(dir.path()).await;
    let o = scoped(10_000);
    let p = plan(&t.app.store, &hr, &o.plan, t.app.scheduler.limits())
        .await
        .unwrap();
    let v = serde_json::to_value(&p).unwrap();
    let listed: Vec<(String, String)> = v["excluded"]
        .as_array()
        .unwrap_or_else(|| panic!("no \"excluded\" in the plan: {v:#}"))
        .iter()
        .map(|x| {
            (
                x["email"].as_str().unwrap().into(),
                x["rule"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = EXCLUDED
        .iter()
        .map(|(e, r)| (e.to_string(), r.to_string()))
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(v["summary"]["excluded"], 7);
    let text = render(&p);
    assert!(
        text.contains("Excluded")
            && text.contains("exclude \"svc-*@example.com\"")
            && text.contains("not in include"),
        "{text}"
    );
    let doc: Value = serde_json::from_str(&cliq_sync::json::document(&p).unwrap()).unwrap();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["excluded"].as_array().map(Vec::len), Some(7));

    run_push(&t, &hr, &o).await.unwrap();
    let w = written(&t);
    let mut wrong: Vec<&str> = EXCLUDED
        .iter()
        .map(|(e, _)| *e)
        .filter(|e| w.contains(*e))
        .collect();
    wrong.sort();
    let puts = count(&t, Endpoint::UpdateUser);
    let posts = count(&t, Endpoint::AddUsers);
    assert!(
        wrong.is_empty(),
        "excluded people written: {wrong:?} ({puts} PUT, {posts} POST)"
    );
    // alice updated, erin added: nothing else.
    assert_eq!((puts, posts), (1, 1));
    assert_eq!(
        w,
        HashSet::from(["alice@eng.example".into(), "erin@eng.example".into()])
    );
}

#[tokio::test(start_paused = true)]
async fn excluded_people_do_not_count_toward_max_changes_per_run() {
    let dir = tempfile::tempdir().unwrap();
    let (t, hr) = org_and_hr(dir.path()).await;
    // Two changes in scope (alice's update, erin's add), seven out of it.
    match run_push(&t, &hr, &scoped(2)).await {
        Ok(_) => {}
        Err(PushError::Safety(m)) => panic!("stopped by the threshold: {m:?}"),
        Err(e) => panic!("{e}"),
    }
    assert_eq!(count(&t, Endpoint::UpdateUser), 1);
}

/// Through the binary: `plan --json` of a config with the scope keys, and
/// a bad glob refused at load with exit 2 naming the entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_command_lists_the_excluded_and_a_bad_glob_exits_2() {
    let ts = tcp_sim(5, Duration::ZERO, "").await;
    let hr = ts.dir().join("hr.csv");
    std::fs::write(&hr, "email_id,work_location\nsvc-x@example.com,Dock 1\n").unwrap();
    let cfg = std::fs::read_to_string(&ts.config).unwrap();
    let scoped = format!(
        "{cfg}\n[hr]\nsource = \"{}\"\n\n[push]\ninclude = [\"*@eng.example\"]\n\
         exclude = [\"ceo@example.com\", \"svc-*@example.com\"]\nexclude_departments = [\"Board\"]\n",
        hr.display()
    );
    std::fs::write(&ts.config, &scoped).unwrap();
    let out = ts.cli(&["plan", "--json"]).output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["excluded"][0]["email"], "svc-x@example.com", "{v:#}");
    assert_eq!(v["excluded"][0]["rule"], "exclude \"svc-*@example.com\"");

    std::fs::write(
        &ts.config,
        scoped.replace("\"svc-*@example.com\"]", "\"svc-[*@example.com\"]"),
    )
    .unwrap();
    let out = ts.cli(&["plan"]).output().await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("push.exclude[1]"), "{err}");
    ts.shut().await;
}
