//! Issue 11, point 2: a push stopped by a safety threshold leaves a trace.
//! It is a `sync_runs` row (`kind = push`, `status = held`) whose `error`
//! says why and how big the plan was; `status` shows it; `/metrics` counts
//! it (`cliq_sync_runs_total{kind, status}`) and says it waits
//! (`cliq_sync_push_held`); and the daemon records one held run per
//! incident, not one per tick. Plus the daemon's HR validity gauge.

use std::sync::Arc;
use std::time::Duration;

use cliq_sync::cliq::Endpoint;
use cliq_sync::daemon::DaemonState;
use cliq_sync::server::{router, ServerState};
use cliq_sync::sync::push::PushError;
use tower::ServiceExt;

use crate::daemon::start;
use crate::helpers::{spawn_app, Opts, TestApp};
use crate::trust::{app, changes_csv, count, opts, run_push, s, write_hr};

/// (kind, status, users_changed, requests, error) of every run, oldest first.
async fn runs(t: &TestApp) -> Vec<(String, String, i64, i64, Option<String>)> {
    let _hold = t.app.store.hold();
    sqlx::query_as("SELECT kind, status, users_changed, requests, error FROM sync_runs ORDER BY id")
        .fetch_all(t.app.store.pool())
        .await
        .unwrap()
}

async fn push_runs(t: &TestApp) -> Vec<(String, String, i64, i64, Option<String>)> {
    runs(t)
        .await
        .into_iter()
        .filter(|r| r.0 == "push")
        .collect()
}

pub(crate) async fn metrics(t: &TestApp, state: &Arc<DaemonState>) -> String {
    let resp = router(Arc::new(ServerState {
        app: t.app.clone(),
        daemon: state.clone(),
        max_pull_failures: 3,
    }))
    .oneshot(
        http::Request::get("/metrics")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

fn writes(t: &TestApp) -> u64 {
    count(t, Endpoint::UpdateUser) + count(t, Endpoint::AddUsers)
}

/// What `status` and `status --json` say about the held push.
async fn status_of(t: &TestApp) -> (String, serde_json::Value) {
    let report = cliq_sync::status::collect(&t.app.store, &t.app.settings, t.clock.now())
        .await
        .unwrap();
    (report.to_text(), serde_json::to_value(&report).unwrap())
}

#[tokio::test(start_paused = true)]
async fn a_push_over_max_changes_per_run_is_a_held_run_with_its_reason_and_size() {
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

    let held = push_runs(&t).await;
    assert_eq!(held.len(), 1, "{held:?}");
    let (_, status, changed, requests, error) = &held[0];
    assert_eq!((status.as_str(), *changed, *requests), ("held", 0, 0));
    let error = error.clone().unwrap_or_default();
    assert!(
        error.starts_with(
            "held: 5 planned changes (5 updates, 0 adds), more than [push] max_changes_per_run = 4"
        ),
        "{error}"
    );
    assert!(error.contains("cliq-sync push --force"), "{error}");
    assert_eq!(writes(&t), 0, "nothing was sent");

    let (text, json) = status_of(&t).await;
    assert!(text.contains("push held"), "{text}");
    assert!(text.contains("max_changes_per_run = 4"), "{text}");
    assert_eq!(json["push_held"]["reason"].as_str(), Some(error.as_str()));
    let m = metrics(&t, &Arc::new(DaemonState::default())).await;
    assert!(m.contains("cliq_sync_push_held 1\n"), "{m}");

    // The same plan held again is the same incident: no second row.
    tokio::time::advance(Duration::from_secs(600)).await;
    run_push(&t, &hr, &o).await.unwrap_err();
    assert_eq!(push_runs(&t).await.len(), 1);

    // Forced, it goes through, and nothing is held any more.
    o.force = true;
    let out = run_push(&t, &hr, &o).await.unwrap();
    assert_eq!(out.report.updates_applied, 5);
    let m = metrics(&t, &Arc::new(DaemonState::default())).await;
    assert!(m.contains("cliq_sync_push_held 0\n"), "{m}");
    assert!(status_of(&t).await.1["push_held"].is_null());
}

#[tokio::test(start_paused = true)]
async fn a_push_from_a_shrunken_source_is_a_held_run_with_its_reason_and_size() {
    let t = app(30).await;
    let dir = tempfile::tempdir().unwrap();
    let users = t.sim.users();
    let full = write_hr(dir.path(), "full.csv", &changes_csv(&users, 20, "Desk")).await;
    run_push(&t, &full, &opts()).await.unwrap();
    let before = writes(&t);
    let short = write_hr(dir.path(), "short.csv", &changes_csv(&users, 15, "Room")).await;
    let e = run_push(&t, &short, &opts()).await.unwrap_err();
    assert!(matches!(e, PushError::Safety(_)), "{e:?}");

    let pushes = push_runs(&t).await;
    assert_eq!(pushes.len(), 2, "{pushes:?}");
    let (_, status, changed, requests, error) = &pushes[1];
    assert_eq!((status.as_str(), *changed, *requests), ("held", 0, 0));
    let error = error.clone().unwrap_or_default();
    assert!(error.starts_with("held: "), "{error}");
    assert!(error.contains("15 records"), "{error}");
    assert!(error.contains("max_source_drop"), "{error}");
    assert!(
        error.contains("15 planned changes (15 updates, 0 adds)"),
        "{error}"
    );
    assert_eq!(writes(&t), before, "nothing was sent");
    let (text, _) = status_of(&t).await;
    assert!(text.contains("push held"), "{text}");
    let m = metrics(&t, &Arc::new(DaemonState::default())).await;
    assert!(m.contains("cliq_sync_push_held 1\n"), "{m}");
}

/// --dry-run checks the thresholds but records nothing.
#[tokio::test(start_paused = true)]
async fn a_dry_run_over_a_threshold_records_no_run() {
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
    o.dry_run = true;
    run_push(&t, &hr, &o).await.unwrap_err();
    assert!(push_runs(&t).await.is_empty());
}

// ------------------------------------------------------------ the daemon

pub(crate) async fn daemon_app(hr_path: &std::path::Path, max_changes: u32) -> TestApp {
    let p = hr_path.to_owned();
    spawn_app(Opts {
        settings: Box::new(move |s| {
            s.hr = Some(cliq_sync::config::HrSettings::new(&p));
            s.push.enabled = true;
            s.push.max_changes_per_run = max_changes;
            s.sync.teams = cliq_sync::config::TeamsMode::Off;
        }),
        ..Opts::default()
    })
    .await
}

/// Push ticks every 15 minutes with a plan over the threshold: one held
/// run for the whole hour, not one per tick; a different plan is a new
/// incident; the metrics say so with kind and status labels.
#[tokio::test(start_paused = true)]
async fn the_daemon_records_a_held_push_once_not_on_every_tick() {
    let hr_dir = tempfile::tempdir().unwrap();
    let hr_path = hr_dir.path().join("hr.csv");
    let t = daemon_app(&hr_path, 4).await;
    std::fs::write(&hr_path, changes_csv(&t.sim.users(), 5, "Desk")).unwrap();
    let d = start(&t);
    // Pushes at 09:15, 09:30, 09:45, 10:00.
    tokio::time::sleep(Duration::from_secs(61 * 60)).await;
    let held: Vec<_> = push_runs(&t).await;
    assert_eq!(held.len(), 1, "one held run for four ticks: {held:?}");
    assert_eq!(held[0].1, "held");
    assert_eq!(writes(&t), 0);
    let m = metrics(&t, &d.state).await;
    assert!(
        m.contains("cliq_sync_runs_total{kind=\"push\",status=\"held\"} 1\n"),
        "{m}"
    );
    assert!(m.contains("cliq_sync_push_held 1\n"), "{m}");
    assert!(
        m.contains("cliq_sync_runs_total{kind=\"full\",status=\"ok\"} 1\n"),
        "{m}"
    );

    // Another plan over the threshold: a new incident, a new held run.
    std::fs::write(&hr_path, changes_csv(&t.sim.users(), 6, "Room")).unwrap();
    tokio::time::sleep(Duration::from_secs(15 * 60)).await;
    let held = push_runs(&t).await;
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(held[1]
        .4
        .as_deref()
        .unwrap_or("")
        .contains("6 planned changes"));
    let m = metrics(&t, &d.state).await;
    assert!(
        m.contains("cliq_sync_runs_total{kind=\"push\",status=\"held\"} 2\n"),
        "{m}"
    );
    assert_eq!(writes(&t), 0);
    d.shutdown.cancel();
    d.task.await.unwrap();
}

/// `cliq_sync_hr_source_valid`: 0 while the daemon's HR file is invalid,
/// 1 once it is fixed.
#[tokio::test(start_paused = true)]
async fn the_hr_validity_gauge_follows_the_daemons_hr_file() {
    let hr_dir = tempfile::tempdir().unwrap();
    let hr_path = hr_dir.path().join("hr.csv");
    let t = daemon_app(&hr_path, 100).await;
    std::fs::write(&hr_path, "email_id,extensoin\nnot-an-email,1\n").unwrap();
    let d = start(&t);
    tokio::time::sleep(Duration::from_secs(16 * 60)).await;
    let m = metrics(&t, &d.state).await;
    assert!(m.contains("cliq_sync_hr_source_valid 0\n"), "{m}");

    let email = s(&t.sim.users()[3], "email_id");
    std::fs::write(&hr_path, format!("email_id,extension\n{email},1001\n")).unwrap();
    tokio::time::sleep(Duration::from_secs(15 * 60)).await;
    let m = metrics(&t, &d.state).await;
    assert!(m.contains("cliq_sync_hr_source_valid 1\n"), "{m}");
    d.shutdown.cancel();
    d.task.await.unwrap();
}

/// Without `[hr]` there is no HR source to be valid or not: no series.
#[tokio::test(start_paused = true)]
async fn without_hr_the_validity_gauge_is_absent() {
    let t = spawn_app(Opts::default()).await;
    let m = metrics(&t, &Arc::new(DaemonState::default())).await;
    assert!(!m.contains("cliq_sync_hr_source_valid"), "{m}");
    assert!(m.contains("cliq_sync_push_held 0\n"), "{m}");
    assert!(
        m.contains("cliq_sync_token_refresh_failures_total{reason=\"unreachable\"} 0\n"),
        "{m}"
    );
}

// ------------------------------------------------------------ the real binary

/// The real binary against a TCP simulator of 50 users, with `[hr]` at
/// `hr.csv`, push enabled and `max_changes_per_run = 4`, after a full pull.
pub(crate) struct PushBinary {
    pub(crate) ts: crate::crash::TcpSim,
    pub(crate) hr: std::path::PathBuf,
    /// The config file's text.
    pub(crate) config: String,
}

impl PushBinary {
    pub(crate) async fn start() -> Self {
        let ts = crate::crash::tcp_sim(50, Duration::ZERO, "").await;
        let hr = ts.dir().join("hr.csv");
        let config = std::fs::read_to_string(&ts.config).unwrap().replace(
            "[limits]",
            &format!(
                "[sync]\nteams = \"off\"\n[hr]\nsource = \"{}\"\n[push]\nenabled = true\n\
                 max_changes_per_run = 4\n[limits]",
                hr.display()
            ),
        );
        std::fs::write(&ts.config, &config).unwrap();
        let b = PushBinary { ts, hr, config };
        assert!(b.run(&["sync", "--full"]).status().await.unwrap().success());
        b
    }

    pub(crate) fn run(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_cliq-sync"));
        c.arg("--config").arg(&self.ts.config).args(args);
        c.env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .kill_on_drop(true);
        c
    }
}

/// `cliq-sync push` over each threshold: exit 3, a held run in the mirror,
/// nothing sent, and `status` / `status --json` show it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_command_exits_3_and_records_a_held_run_for_each_threshold() {
    let b = PushBinary::start().await;
    let (ts, hr) = (&b.ts, b.hr.clone());
    let run = |args: &[&str]| b.run(args);
    let users = ts.sim.users();
    let writes = || {
        ts.sim
            .requests()
            .iter()
            .filter(|r| matches!(r.endpoint, Some(Endpoint::UpdateUser | Endpoint::AddUsers)))
            .count()
    };

    // Over max_changes_per_run = 4.
    std::fs::write(&hr, changes_csv(&users, 5, "Desk")).unwrap();
    let out = run(&["push"]).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(stderr.contains("push --force"), "{stderr}");
    assert_eq!(writes(), 0);
    let out = run(&["status"]).output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("push held"), "{text}");
    assert!(text.contains("5 planned changes"), "{text}");
    let out = run(&["status", "--json"]).output().await.unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reason = json["push_held"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("max_changes_per_run = 4"), "{json}");

    // A plan of 4 passes (its 4 records become the reference), then a
    // truncated export of 3 records is over max_source_drop (3 < 0.8 × 4).
    std::fs::write(&hr, changes_csv(&users, 4, "Desk")).unwrap();
    let out = run(&["push"]).output().await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let pushed = writes();
    std::fs::write(&hr, changes_csv(&users, 3, "Room")).unwrap();
    let out = run(&["push"]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(writes(), pushed, "nothing sent");
    let out = run(&["status", "--json"]).output().await.unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reason = json["push_held"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("max_source_drop"), "{json}");

    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", ts.db.display()))
        .await
        .unwrap();
    let pushes: Vec<(String, i64, i64, Option<String>)> = sqlx::query_as(
        "SELECT status, users_changed, requests, error FROM sync_runs WHERE kind = 'push' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    let statuses: Vec<&str> = pushes.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(statuses, ["held", "ok", "held"], "{pushes:?}");
    for p in [&pushes[0], &pushes[2]] {
        assert_eq!((p.1, p.2), (0, 0), "{p:?}");
        assert!(p.3.as_deref().unwrap_or("").starts_with("held: "), "{p:?}");
    }
    b.ts.shut().await;
}
