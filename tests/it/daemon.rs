//! The daemon in paused time: schedules over a simulated day, coalescing,
//! locks, a clean stop mid-pull, readiness and metrics.

use std::sync::Arc;
use std::time::Duration;

use cliq_sync::cliq::Endpoint;
use cliq_sync::daemon::{Daemon, DaemonState};
use cliq_sync::mirror::runs::RunStatus;
use cliq_sync::server::{router, ServerState};
use cliq_sync::sim::Faults;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::helpers::{spawn_app, Opts, TestApp};

/// A daemon running on the test app, in the test's (paused) runtime.
pub(crate) struct Running {
    pub(crate) shutdown: CancellationToken,
    pub(crate) state: Arc<DaemonState>,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

pub(crate) fn start(t: &TestApp) -> Running {
    let state = Arc::new(DaemonState::default());
    let daemon = Daemon::new(t.app.clone(), state.clone()).unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(daemon.run(shutdown.clone(), Arc::new(Notify::new())));
    Running {
        shutdown,
        state,
        task,
    }
}

pub(crate) async fn runs(t: &TestApp) -> Vec<(String, String, String, String)> {
    let _hold = t.app.store.hold();
    sqlx::query_as(
        "SELECT kind, status, started_at, coalesce(finished_at, '') FROM sync_runs ORDER BY id",
    )
    .fetch_all(t.app.store.pool())
    .await
    .unwrap()
}

pub(crate) async fn get(t: &TestApp, state: &Arc<DaemonState>, path: &str) -> (u16, String) {
    let app = router(Arc::new(ServerState {
        app: t.app.clone(),
        daemon: state.clone(),
        max_pull_failures: 3,
    }));
    let resp = app
        .oneshot(
            http::Request::get(path)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test(start_paused = true)]
async fn a_simulated_day_runs_every_schedule_without_overlap_or_throttles() {
    // An HR file with three changes, pushed by the first scheduled push.
    let hr_dir = tempfile::tempdir().unwrap();
    let hr_path = hr_dir.path().join("hr.csv");
    let path_for_settings = hr_path.clone();
    let t = spawn_app(Opts {
        users: 500,
        settings: Box::new(move |s| {
            s.hr = Some(cliq_sync::config::HrSettings::new(&path_for_settings));
            s.push.enabled = true;
        }),
        ..Opts::default()
    })
    .await;
    let users = t.sim.users();
    let mut csv = String::from("email_id,work_location\n");
    for u in &users[10..13] {
        csv.push_str(&format!(
            "{},Daemon Wing\n",
            u["email_id"].as_str().unwrap()
        ));
    }
    std::fs::write(&hr_path, csv).unwrap();

    // 09:00 start. At 12:02 Cliq locks the listing for 10 minutes.
    let sim = t.sim.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3 * 3600 + 120)).await;
        sim.lock_endpoint(Endpoint::ListUsers);
    });
    let d = start(&t);
    // Run until 08:59 the next day.
    tokio::time::sleep(Duration::from_secs(24 * 3600 - 60)).await;
    d.shutdown.cancel();
    d.task.await.unwrap();

    let runs = runs(&t).await;
    let count = |kind: &str| runs.iter().filter(|r| r.0 == kind).count();
    // Fulls: the first pull (no watermark) and 02:30.
    assert_eq!(count("full"), 2);
    // Incrementals: ticks every 5 minutes from 09:05 to 08:55 = 287, minus
    // 02:30 (the full pull covers it), minus 12:10 and 12:15: the 12:05 run
    // met the lock, which we honour for the full 10 minutes from when we
    // saw it (until 12:15), so those ticks coalesced into it, not replayed.
    assert_eq!(count("incremental"), 284);
    let locked_run = runs
        .iter()
        .find(|r| r.2 == "2026-06-01T12:05:00.000Z")
        .unwrap();
    assert_eq!(locked_run.3, "2026-06-01T12:15:00.000Z");
    // Pushes: every 15 minutes from 09:15 to 08:45.
    assert_eq!(count("push"), 95);
    assert!(runs.iter().all(|r| r.1 == "ok"));
    // Never two at once.
    for pair in runs.windows(2) {
        assert!(pair[1].2 >= pair[0].3, "overlap: {pair:?}");
    }
    // The push applied the three changes once; later pushes had nothing to do.
    for u in &users[10..13] {
        let id = u["id"].as_str().unwrap();
        assert_eq!(t.sim.user(id).unwrap()["work_location"], "Daemon Wing");
    }
    let puts = t
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == "PUT")
        .count();
    assert_eq!(puts, 3);
    let c = t.sim.counters();
    assert_eq!(
        c.locks.get(&Endpoint::ListUsers).copied(),
        Some(1),
        "only the imposed lock"
    );
    assert_eq!(
        c.throttled.get(&Endpoint::ListUsers).copied(),
        Some(1),
        "one request met it"
    );
    let other_throttles: u64 = c
        .throttled
        .iter()
        .filter(|(ep, _)| **ep != Endpoint::ListUsers)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(other_throttles, 0);
    for ep in Endpoint::API {
        assert!(
            t.max_in_window(ep) <= ep.documented_quota().requests,
            "{ep}"
        );
    }
    assert_eq!(d.state.runs.total(RunStatus::Ok), 381);
}

#[tokio::test(start_paused = true)]
async fn a_stop_mid_pull_records_a_stopped_run_and_returns_promptly() {
    let t = spawn_app(Opts {
        users: 9000,
        ..Opts::default()
    })
    .await;
    let d = start(&t);
    // The first (full) pull needs 90 pages at 30/min: stop it after 70 s.
    tokio::time::sleep(Duration::from_secs(70)).await;
    let stop_at = tokio::time::Instant::now();
    d.shutdown.cancel();
    d.task.await.unwrap();
    assert!(
        stop_at.elapsed() < Duration::from_secs(10),
        "{:?}",
        stop_at.elapsed()
    );
    let runs = runs(&t).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].1, "stopped");
    let _hold = t.app.store.hold();
    let (users, removed): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(removed_at) FROM users")
            .fetch_one(t.app.store.pool())
            .await
            .unwrap();
    assert!(users > 0 && users < 9000, "{users}");
    assert_eq!(removed, 0);
}

#[tokio::test(start_paused = true)]
async fn a_stop_while_waiting_out_a_lock_is_prompt_too() {
    let t = spawn_app(Opts::default()).await;
    t.sim.lock_endpoint(Endpoint::ListUsers);
    // Persisted lock from an earlier process: the first pull waits on it.
    t.app
        .scheduler
        .report_throttled(Endpoint::ListUsers, None, "429 earlier")
        .await
        .unwrap();
    let d = start(&t);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let stop_at = tokio::time::Instant::now();
    d.shutdown.cancel();
    d.task.await.unwrap();
    assert!(stop_at.elapsed() < Duration::from_secs(10));
    assert_eq!(runs(&t).await[0].1, "stopped");
    assert_eq!(t.throttled_total(), 0, "nothing was sent into the lock");
}

#[tokio::test(start_paused = true)]
async fn readyz_flips_when_pulls_keep_failing_and_back_when_they_recover() {
    let t = spawn_app(Opts {
        settings: Box::new(|s| {
            s.schedule.incremental = "0 * * * * *".into();
            s.sync.teams = cliq_sync::config::TeamsMode::Off;
        }),
        ..Opts::default()
    })
    .await;
    let d = start(&t);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(get(&t, &d.state, "/readyz").await.0, 200);
    assert_eq!(get(&t, &d.state, "/healthz").await.0, 200);

    t.sim.set_faults(Faults {
        error_5xx_rate: 1.0,
        ..Faults::default()
    });
    // Each failing pull spends its retries (a few minutes of backoff).
    tokio::time::sleep(Duration::from_secs(20 * 60)).await;
    let (code, body) = get(&t, &d.state, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("pulls failed"), "{body}");
    assert_eq!(
        get(&t, &d.state, "/healthz").await.0,
        200,
        "alive all along"
    );

    t.sim.set_faults(Faults::default());
    tokio::time::sleep(Duration::from_secs(5 * 60)).await;
    assert_eq!(get(&t, &d.state, "/readyz").await.0, 200);
    d.shutdown.cancel();
    d.task.await.unwrap();
}

/// Every line of a Prometheus/OpenMetrics text exposition is a comment or
/// `name{labels} value`; returns the sample names.
fn parse_exposition(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            assert!(
                line.starts_with("# HELP ")
                    || line.starts_with("# TYPE ")
                    || line.starts_with("# UNIT ")
                    || line == "# EOF",
                "bad comment line: {line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect(line);
        assert!(
            value.parse::<f64>().is_ok() || ["NaN", "+Inf", "-Inf"].contains(&value),
            "bad value in {line}"
        );
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name in {line}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
            }
        }
        names.push(name.to_owned());
    }
    assert!(text.trim_end().ends_with("# EOF"));
    names
}

#[tokio::test(start_paused = true)]
async fn metrics_parse_and_carry_the_documented_series_without_personal_data() {
    let t = spawn_app(Opts::default()).await;
    let d = start(&t);
    tokio::time::sleep(Duration::from_secs(120)).await;
    t.app
        .scheduler
        .report_throttled(Endpoint::AddUsers, None, "test")
        .await
        .unwrap();
    let (code, text) = get(&t, &d.state, "/metrics").await;
    assert_eq!(code, 200);
    let names = parse_exposition(&text);
    for series in [
        "cliq_sync_requests_total",
        "cliq_sync_throttle_responses_total",
        "cliq_sync_endpoint_locked",
        "cliq_sync_endpoint_unlock_seconds",
        "cliq_sync_quota_headroom",
        "cliq_sync_users",
        "cliq_sync_last_success_timestamp_seconds",
        "cliq_sync_run_duration_seconds",
        "cliq_sync_push_results_total",
        "cliq_sync_token_refreshes_total",
        "cliq_sync_watermark_age_seconds",
        "cliq_sync_runs_total",
    ] {
        assert!(
            names.iter().any(|n| n == series),
            "{series} missing:\n{text}"
        );
    }
    assert!(
        text.contains("cliq_sync_endpoint_locked{endpoint=\"add_users\"} 1"),
        "{text}"
    );
    assert!(text.contains("cliq_sync_requests_total{endpoint=\"list_users\",status=\"200\"} 2"));
    assert!(text.contains("cliq_sync_users{status=\"active\"}"));
    // No personal data in labels: no email, no user id, no name.
    for u in t.sim.users() {
        assert!(!text.contains(u["email_id"].as_str().unwrap()));
        assert!(!text.contains(&format!("\"{}\"", u["id"].as_str().unwrap())));
    }
    d.shutdown.cancel();
    d.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_changed_hr_file_or_sighup_reloads_the_source_for_the_next_push() {
    let hr_dir = tempfile::tempdir().unwrap();
    let hr_path = hr_dir.path().join("hr.csv");
    let for_settings = hr_path.clone();
    let t = spawn_app(Opts {
        settings: Box::new(move |s| {
            s.hr = Some(cliq_sync::config::HrSettings::new(&for_settings));
            s.push.enabled = true;
            s.sync.teams = cliq_sync::config::TeamsMode::Off;
        }),
        ..Opts::default()
    })
    .await;
    let u = t.sim.users()[20].clone();
    let (id, email) = (u["id"].as_str().unwrap(), u["email_id"].as_str().unwrap());
    std::fs::write(&hr_path, format!("email_id,extension\n{email},1001\n")).unwrap();

    let state = Arc::new(DaemonState::default());
    let reload = Arc::new(Notify::new());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        Daemon::new(t.app.clone(), state.clone())
            .unwrap()
            .run(shutdown.clone(), reload.clone()),
    );
    // The push at 09:15 applies the file as it is.
    tokio::time::sleep(Duration::from_secs(16 * 60)).await;
    assert_eq!(t.sim.user(id).unwrap()["extension"], "1001");

    // The file changes: the 09:30 push sees it without being told.
    std::fs::write(&hr_path, format!("email_id,extension\n{email},1002\n")).unwrap();
    tokio::time::sleep(Duration::from_secs(15 * 60)).await;
    assert_eq!(t.sim.user(id).unwrap()["extension"], "1002");

    // An invalid file: nothing is pushed from it (nor from the old one).
    std::fs::write(&hr_path, "email_id,extensoin\nnot-an-email,1\n").unwrap();
    reload.notify_one(); // SIGHUP
    tokio::time::sleep(Duration::from_secs(15 * 60)).await;
    assert!(state.hr_errors.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    let puts = t
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == "PUT")
        .count();
    assert_eq!(puts, 2);

    // Fixed, and SIGHUP: reloaded as soon as it has settled (10 s), before
    // the next push.
    std::fs::write(&hr_path, format!("email_id,extension\n{email},1003\n")).unwrap();
    let reloads = state.hr_reloads.load(std::sync::atomic::Ordering::Relaxed);
    reload.notify_one();
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(
        state.hr_reloads.load(std::sync::atomic::Ordering::Relaxed),
        reloads + 1
    );
    tokio::time::sleep(Duration::from_secs(15 * 60)).await;
    assert_eq!(t.sim.user(id).unwrap()["extension"], "1003");
    shutdown.cancel();
    task.await.unwrap();
}
