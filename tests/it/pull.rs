//! The mirror: full and incremental pulls, history, removals, the 7-day
//! window, and what survives a crash.

use std::time::Duration;

use cliq_sync::cliq::Endpoint;
use cliq_sync::sim::Faults;
use cliq_sync::sync::{pull, PullKind, PullReport};
use serde_json::json;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::helpers::{spawn_app, Logs, Opts, TestApp};

async fn run(t: &TestApp, kind: PullKind) -> PullReport {
    pull(&t.app, kind, &CancellationToken::new()).await.unwrap()
}

async fn scalar(t: &TestApp, sql: &str) -> i64 {
    let _hold = t.app.store.hold();
    sqlx::query_scalar(sql)
        .fetch_one(t.app.store.pool())
        .await
        .unwrap()
}

async fn column(t: &TestApp, id: &str, col: &str) -> Option<String> {
    let _hold = t.app.store.hold();
    sqlx::query(&format!("SELECT {col} FROM users WHERE id = ?"))
        .bind(id)
        .fetch_one(t.app.store.pool())
        .await
        .unwrap()
        .get(0)
}

fn no_teams(s: &mut cliq_sync::config::Settings) {
    s.sync.teams = cliq_sync::config::TeamsMode::Off;
}

fn list_requests(t: &TestApp) -> u64 {
    t.sim
        .counters()
        .requests
        .get(&Endpoint::ListUsers)
        .copied()
        .unwrap_or(0)
}

#[tokio::test(start_paused = true)]
async fn a_full_pull_mirrors_everyone_and_a_second_one_writes_no_history() {
    let t = spawn_app(Opts {
        users: 750,
        ..Opts::default()
    })
    .await;
    let first = run(&t, PullKind::Incremental).await;
    assert!(first.ok());
    assert_eq!(first.kind, PullKind::Full, "no watermark: escalated");
    assert!(first.escalated.is_some());
    assert_eq!((first.users_seen, first.added), (750, 750));
    assert_eq!(scalar(&t, "SELECT count(*) FROM users").await, 750);
    assert_eq!(scalar(&t, "SELECT count(*) FROM layouts").await, 4);
    // Every status came through one listing.
    assert!(scalar(&t, "SELECT count(DISTINCT status) FROM users").await >= 3);
    let sim_user = &t.sim.users()[10];
    let id = sim_user["id"].as_str().unwrap();
    assert_eq!(
        column(&t, id, "department_name").await.as_deref(),
        sim_user["department"]["name"].as_str()
    );
    let changes = scalar(&t, "SELECT count(*) FROM user_changes").await;
    assert_eq!(changes, 750, "one 'added' row per user");

    let second = run(&t, PullKind::Full).await;
    assert!(second.ok());
    assert_eq!((second.added, second.changed, second.removed), (0, 0, 0));
    assert_eq!(
        scalar(&t, "SELECT count(*) FROM user_changes").await,
        changes
    );
    assert_eq!(
        scalar(&t, "SELECT count(*) FROM sync_runs WHERE status = 'ok'").await,
        2
    );
}

/// Each page's start is taken while the page before it is read (when the
/// window has room): every listing request still has exactly one start in
/// the ledger, and no start is left behind for a page after the last.
#[tokio::test(start_paused = true)]
async fn every_listing_request_has_one_start_and_none_is_left_after_the_last_page() {
    let t = spawn_app(Opts {
        users: 750,
        settings: Box::new(no_teams),
        ..Opts::default()
    })
    .await;
    let logs = Logs::default();
    let guard = logs.capture("cliq_sync::cliq::quotas=trace");
    for kind in [PullKind::Full, PullKind::Full, PullKind::Incremental] {
        let before = list_requests(&t);
        assert!(run(&t, kind).await.ok());
        assert!(list_requests(&t) - before >= 1);
    }
    drop(guard);
    let starts = t.app.scheduler.used(Endpoint::ListUsers).await.unwrap();
    assert_eq!(u64::from(starts), list_requests(&t));
    assert_eq!(list_requests(&t), 8 + 8 + 1, "750 users are 8 pages");
    // Only each listing's first page waited in the queue for its start.
    let queued = logs
        .text()
        .matches("quota slot taken endpoint=list_users")
        .count();
    assert_eq!(queued, 3, "{}", logs.text());
}

/// Users nobody reports to: changing a manager's name or removing them
/// changes their reports' `reportingto` too.
fn leaves(users: &[serde_json::Value]) -> Vec<String> {
    let managers: std::collections::HashSet<&str> = users
        .iter()
        .filter_map(|u| u["reportingto"]["id"].as_str())
        .collect();
    users
        .iter()
        .rev()
        .map(|u| u["id"].as_str().unwrap())
        .filter(|id| !managers.contains(id))
        .map(str::to_owned)
        .collect()
}

fn leaf(users: &[serde_json::Value]) -> String {
    leaves(users).remove(0)
}

#[tokio::test(start_paused = true)]
async fn tracked_changes_arrive_incrementally_untracked_ones_with_the_next_full_pull() {
    let t = spawn_app(Opts {
        settings: Box::new(no_teams),
        ..Opts::default()
    })
    .await;
    run(&t, PullKind::Full).await;
    let users = t.sim.users();
    let a = users[3]["id"].as_str().unwrap().to_owned();
    let b = leaves(&users)[1].clone();
    let gone = leaf(&users);
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(t.sim.mutate_user(&a, json!({"work_location": "Annex 2"})));
    assert!(t.sim.mutate_user(
        &b,
        json!({"display_name": "Bee", "mobile": "+1 555 0100", "status": "inactive"})
    ));
    assert!(t.sim.remove_user(&gone));

    let before = list_requests(&t);
    let inc = run(&t, PullKind::Incremental).await;
    assert_eq!(inc.kind, PullKind::Incremental);
    assert!(inc.ok());
    assert_eq!(list_requests(&t) - before, 1, "one page of changes");
    assert_eq!(
        column(&t, &a, "work_location").await.as_deref(),
        Some("Annex 2")
    );
    // modified_after cannot see these, nor removals.
    assert_ne!(column(&t, &b, "display_name").await.as_deref(), Some("Bee"));
    assert_eq!(column(&t, &gone, "removed_at").await, None);
    let changes = scalar(
        &t,
        "SELECT count(*) FROM user_changes WHERE source = 'incremental' AND field = 'work_location'",
    )
    .await;
    assert_eq!(changes, 1);

    let full = run(&t, PullKind::Full).await;
    assert_eq!((full.changed, full.removed), (1, 1));
    assert_eq!(column(&t, &b, "display_name").await.as_deref(), Some("Bee"));
    assert_eq!(
        column(&t, &b, "mobile").await.as_deref(),
        Some("+1 555 0100")
    );
    assert_eq!(column(&t, &b, "status").await.as_deref(), Some("inactive"));
    assert!(column(&t, &gone, "removed_at").await.is_some());
    let _hold = t.app.store.hold();
    let history: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT field, old_value, new_value FROM user_changes
         WHERE user_id = ? AND source = 'full' AND field <> 'user' ORDER BY field",
    )
    .bind(&b)
    .fetch_all(t.app.store.pool())
    .await
    .unwrap();
    let fields: Vec<&str> = history.iter().map(|h| h.0.as_str()).collect();
    assert_eq!(fields, ["display_name", "mobile", "status"]);
    assert_eq!(history[2].2.as_deref(), Some("inactive"));
}

#[tokio::test(start_paused = true)]
async fn an_incremental_pull_that_finds_nothing_costs_one_request() {
    let t = spawn_app(Opts {
        settings: Box::new(no_teams),
        ..Opts::default()
    })
    .await;
    run(&t, PullKind::Full).await;
    tokio::time::sleep(Duration::from_secs(300)).await;
    let before: u64 = t.sim.counters().requests.values().sum();
    let r = run(&t, PullKind::Incremental).await;
    assert_eq!(
        (r.kind, r.users_seen, r.requests),
        (PullKind::Incremental, 0, 1)
    );
    let after: u64 = t.sim.counters().requests.values().sum();
    assert_eq!(after - before, 1);
}

#[tokio::test(start_paused = true)]
async fn a_watermark_eight_days_old_forces_a_full_pull() {
    let t = spawn_app(Opts {
        settings: Box::new(no_teams),
        ..Opts::default()
    })
    .await;
    run(&t, PullKind::Full).await;
    let old = t.clock.now() - chrono::Duration::days(8);
    t.app.store.set_watermark(old, t.clock.now()).await.unwrap();
    let r = run(&t, PullKind::Incremental).await;
    assert_eq!(r.kind, PullKind::Full);
    assert!(r.escalated.unwrap().contains("7-day"));
    // 6 days 12 hours is still inside the window (the margin is 6 hours).
    let recent = t.clock.now() - chrono::Duration::hours(6 * 24 + 12);
    t.app
        .store
        .set_watermark(recent, t.clock.now())
        .await
        .unwrap();
    assert_eq!(
        run(&t, PullKind::Incremental).await.kind,
        PullKind::Incremental
    );
}

/// The server's clock runs two minutes behind ours: a change made right
/// after our pull carries a timestamp *before* our clock's time. With
/// `date_header` the watermark follows Cliq's clock; without it, ours.
async fn skewed_change_is_seen(overlap: &'static str, date_header: bool) -> bool {
    let t = spawn_app(Opts {
        sim_behind: chrono::Duration::minutes(2),
        date_header,
        settings: Box::new(move |s| {
            s.sync.teams = cliq_sync::config::TeamsMode::Off;
            s.sync.overlap = humantime::parse_duration(overlap).unwrap();
        }),
        ..Opts::default()
    })
    .await;
    run(&t, PullKind::Full).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let id = t.sim.users()[7]["id"].as_str().unwrap().to_owned();
    assert!(t.sim.mutate_user(&id, json!({"extension": "4242"})));
    tokio::time::sleep(Duration::from_secs(30)).await;
    run(&t, PullKind::Incremental).await;
    column(&t, &id, "extension").await.as_deref() == Some("4242")
}

#[tokio::test(start_paused = true)]
async fn the_overlap_catches_a_change_stamped_before_the_watermark() {
    // Without Cliq's Date the watermark is our clock: only the overlap
    // helps, and the operator is told.
    let logs = Logs::default();
    let guard = logs.capture("cliq_sync=info");
    assert!(skewed_change_is_seen("5m", false).await, "default overlap");
    drop(guard);
    assert!(
        logs.text().contains("no readable Date header"),
        "{}",
        logs.text()
    );
    assert!(
        !skewed_change_is_seen("0s", false).await,
        "without overlap (and without Cliq's Date) it is missed"
    );
    // With it, the watermark is on Cliq's clock and the skew does not matter.
    assert!(skewed_change_is_seen("5m", true).await);
    assert!(skewed_change_is_seen("0s", true).await);
}

#[tokio::test(start_paused = true)]
async fn a_pull_aborted_between_pages_marks_nobody_removed_and_the_next_converges() {
    let t = spawn_app(Opts {
        users: 6000,
        settings: Box::new(no_teams),
        ..Opts::default()
    })
    .await;
    run(&t, PullKind::Full).await;
    // Someone leaves; then a full pull dies after a few pages.
    let gone = leaf(&t.sim.users());
    t.sim.remove_user(&gone);
    let task = {
        let app = t.app.clone();
        tokio::spawn(async move { pull(&app, PullKind::Full, &CancellationToken::new()).await })
    };
    // 60 pages at 30/min: after 70 s about 35 pages are in.
    tokio::time::sleep(Duration::from_secs(70)).await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(
        scalar(
            &t,
            "SELECT count(*) FROM users WHERE removed_at IS NOT NULL"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            &t,
            "SELECT count(*) FROM sync_runs WHERE status = 'running'"
        )
        .await,
        1
    );
    let _hold = t.app.store.hold();
    let ok: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(t.app.store.pool())
        .await
        .unwrap();
    assert_eq!(ok, "ok");
    drop(_hold);

    // A restart marks the dead run failed; the next full pull converges.
    let app = t.restart().await;
    assert_eq!(
        scalar(
            &t,
            "SELECT count(*) FROM sync_runs WHERE status = 'running'"
        )
        .await,
        0
    );
    let r = pull(&app, PullKind::Full, &CancellationToken::new())
        .await
        .unwrap();
    assert!(r.ok());
    assert_eq!(r.removed, 1);
    assert_eq!(
        scalar(&t, "SELECT count(*) FROM users WHERE removed_at IS NULL").await,
        5999
    );
    assert_eq!(t.throttled_total(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_stopped_pull_is_recorded_and_marks_nobody_removed() {
    let t = spawn_app(Opts {
        users: 9000,
        settings: Box::new(no_teams),
        ..Opts::default()
    })
    .await;
    run(&t, PullKind::Full).await;
    t.sim.remove_user(&leaf(&t.sim.users()));
    let cancel = CancellationToken::new();
    let task = {
        let (app, cancel) = (t.app.clone(), cancel.clone());
        tokio::spawn(async move { pull(&app, PullKind::Full, &cancel).await })
    };
    tokio::time::sleep(Duration::from_secs(61)).await;
    cancel.cancel();
    let r = task.await.unwrap().unwrap();
    assert_eq!(r.status.as_str(), "stopped");
    assert!(r.users_seen > 0 && r.users_seen < 9000, "{r:?}");
    assert_eq!(r.removed, 0);
    assert_eq!(
        scalar(
            &t,
            "SELECT count(*) FROM users WHERE removed_at IS NOT NULL"
        )
        .await,
        0
    );
    let _hold = t.app.store.hold();
    let status: String = sqlx::query_scalar("SELECT status FROM sync_runs WHERE id = ?")
        .bind(r.run_id)
        .fetch_one(t.app.store.pool())
        .await
        .unwrap();
    assert_eq!(status, "stopped");
}

#[tokio::test(start_paused = true)]
async fn a_pull_completes_through_faults_expiring_tokens_and_a_lock_that_survives_a_restart() {
    let t = spawn_app(Opts {
        users: 4000,
        token_ttl: Duration::from_secs(3600),
        settings: Box::new(no_teams),
        ..Opts::default()
    })
    .await;
    t.sim.set_faults(Faults {
        error_5xx_rate: 0.10,
        expire_token_every: Some(7),
        ..Faults::default()
    });
    // A lock imposed mid-listing (someone else spent the quota).
    let sim = t.sim.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(45)).await;
        sim.lock_endpoint(Endpoint::ListUsers);
    });
    let start = t.clock.now();
    let task = {
        let app = t.app.clone();
        tokio::spawn(async move { pull(&app, PullKind::Full, &CancellationToken::new()).await })
    };
    tokio::time::sleep(Duration::from_secs(75)).await;
    // The lock was seen and persisted: a new process honours it.
    let until = t
        .restart()
        .await
        .scheduler
        .locked_until(Endpoint::ListUsers)
        .await
        .unwrap()
        .expect("lock persisted");
    assert!(until > t.clock.now());
    let r = task.await.unwrap().unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!(
        scalar(&t, "SELECT count(*) FROM users WHERE removed_at IS NULL").await,
        4000
    );
    let c = t.sim.counters();
    assert!(c.server_errors > 0 && c.unauthorized > 0, "{c:?}");
    assert!(t.max_in_window(Endpoint::ListUsers) <= 30);
    assert_eq!(
        c.locks.get(&Endpoint::ListUsers).copied(),
        Some(1),
        "only the imposed one"
    );
    assert!(t.clock.now() - start >= chrono::Duration::minutes(10));
}

#[tokio::test(start_paused = true)]
async fn status_reports_runs_watermark_locks_and_counts() {
    let t = spawn_app(Opts {
        settings: Box::new(no_teams),
        ..Opts::default()
    })
    .await;
    let before = cliq_sync::status::collect(&t.app.store, &t.app.settings, t.clock.now())
        .await
        .unwrap();
    assert!(before.watermark.is_none());
    assert!(before.to_text().contains("watermark  none"));
    run(&t, PullKind::Full).await;
    t.app
        .scheduler
        .report_throttled(Endpoint::UpdateUser, None, "429 from Cliq")
        .await
        .unwrap();
    let s = cliq_sync::status::collect(&t.app.store, &t.app.settings, t.clock.now())
        .await
        .unwrap();
    assert_eq!(s.runs.len(), 1);
    assert_eq!(s.runs[0].status.as_str(), "ok");
    assert!(s.watermark.is_some());
    assert_eq!(s.users.iter().map(|c| c.users).sum::<i64>(), 200);
    let update = s
        .endpoints
        .iter()
        .find(|e| e.endpoint == "update_user")
        .unwrap();
    assert!(update.locked);
    let list = s
        .endpoints
        .iter()
        .find(|e| e.endpoint == "list_users")
        .unwrap();
    assert_eq!(list.used_in_window, 2);
    let text = s.to_text();
    assert!(text.contains("LOCKED until"), "{text}");
    assert!(text.contains("429 from Cliq"));
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["runs"][0]["kind"], "full");
}

#[tokio::test(start_paused = true)]
async fn a_per_status_full_pull_lists_each_status_and_still_sees_everyone() {
    let t = spawn_app(Opts {
        users: 450,
        settings: Box::new(|s| {
            s.sync.teams = cliq_sync::config::TeamsMode::Off;
            s.sync.status_listing = cliq_sync::config::StatusListing::PerStatus;
        }),
        ..Opts::default()
    })
    .await;
    let r = run(&t, PullKind::Full).await;
    assert!(r.ok());
    assert_eq!(r.users_seen, 450);
    assert_eq!(scalar(&t, "SELECT count(*) FROM users").await, 450);
    let queries: Vec<String> = t
        .sim
        .requests()
        .into_iter()
        .filter(|q| q.endpoint == Some(Endpoint::ListUsers))
        .map(|q| q.query)
        .collect();
    for status in [
        "active",
        "inactive",
        "pending",
        "imported_active",
        "imported_inactive",
    ] {
        assert!(
            queries
                .iter()
                .any(|q| q.contains(&format!("status={status}"))),
            "{status}: {queries:?}"
        );
    }
    assert!(queries.iter().all(|q| q.contains("status=")));
    // A second one removes nobody: the five listings together are complete.
    assert_eq!(run(&t, PullKind::Full).await.removed, 0);
}

/// The three example queries in the README run against a real mirror and
/// answer what they say (their `'now'` is the test clock's time).
#[tokio::test(start_paused = true)]
async fn the_readme_queries_answer_what_they_say() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## Reading the mirror")
        .nth(1)
        .and_then(|s| s.split("```sh").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("README: a sh block under 'Reading the mirror'");
    // Each example: a `# question` line, then sqlite3 ... "QUERY".
    let queries: Vec<String> = section
        .split("mirror.db \"")
        .skip(1)
        .map(|q| q.split('"').next().unwrap().trim().to_owned())
        .collect();
    assert_eq!(queries.len(), 3, "{section}");

    let t = spawn_app(Opts {
        settings: Box::new(no_teams),
        ..Opts::default()
    })
    .await;
    run(&t, PullKind::Full).await;
    let users = t.sim.users();
    let moved = users[3]["id"].as_str().unwrap().to_owned();
    let gone = leaf(&users);
    let gone_email = users
        .iter()
        .find(|u| u["id"] == gone.as_str())
        .and_then(|u| u["email_id"].as_str())
        .unwrap()
        .to_lowercase();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(t
        .sim
        .mutate_user(&moved, json!({"work_location": "Annex 9"})));
    assert!(t.sim.remove_user(&gone));
    assert!(run(&t, PullKind::Full).await.ok());

    let now = cliq_sync::clock::to_db(t.clock.now());
    let _hold = t.app.store.hold();
    let rows = |sql: &str| {
        let sql = sql.replace("'now'", &format!("'{now}'"));
        let pool = t.app.store.pool().clone();
        async move {
            sqlx::query(&sql)
                .fetch_all(&pool)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        }
    };

    // What changed in the last 24 hours: the move and the removal, and the
    // 200 additions of the first pull an hour ago.
    let changes = rows(&queries[0]).await;
    let described: Vec<(String, Option<String>)> = changes
        .iter()
        .map(|r| (r.get::<String, _>("field"), r.get("new_value")))
        .collect();
    assert!(described.contains(&("work_location".into(), Some("Annex 9".into()))));
    assert!(described.contains(&("user".into(), Some("removed".into()))));
    assert_eq!(changes.len(), 50, "LIMIT 50 of 202 changes");

    // Users per department: every present user counted once.
    let per_department = rows(&queries[1]).await;
    let total: i64 = per_department
        .iter()
        .map(|r| r.get::<i64, _>("users"))
        .sum();
    assert_eq!(total, 199);
    assert!(per_department.len() > 1);

    // Removed this week: exactly the one who left.
    let removed = rows(&queries[2]).await;
    let emails: Vec<String> = removed.iter().map(|r| r.get("email_id")).collect();
    assert_eq!(emails, vec![gone_email]);
}

/// The value of an unlabelled series in `/metrics`.
async fn metric(t: &TestApp, name: &str) -> Option<f64> {
    let state = cliq_sync::server::ServerState {
        app: t.app.clone(),
        daemon: std::sync::Arc::new(cliq_sync::daemon::DaemonState::default()),
        max_pull_failures: 3,
    };
    let text = cliq_sync::server::render(&state).await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map(|v| v.trim().parse().unwrap())
}

/// 28 tracked changes made in Cliq between two incremental pulls, with
/// Cliq's clock `sim_behind` ours (negative: ahead): how many arrive.
async fn changes_caught_under_skew(
    sim_behind: chrono::Duration,
    overlap: Duration,
    pause_before_changes: Duration,
) -> (usize, TestApp) {
    let t = spawn_app(Opts {
        sim_behind,
        settings: Box::new(move |s| {
            s.sync.teams = cliq_sync::config::TeamsMode::Off;
            s.sync.overlap = overlap;
        }),
        ..Opts::default()
    })
    .await;
    assert!(run(&t, PullKind::Full).await.ok());
    tokio::time::sleep(Duration::from_secs(300)).await;
    let first = run(&t, PullKind::Incremental).await;
    assert!(
        first.ok() && first.kind == PullKind::Incremental,
        "{first:?}"
    );
    tokio::time::sleep(pause_before_changes).await;
    let ids: Vec<String> = t.sim.users()[..28]
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    for (i, id) in ids.iter().enumerate() {
        assert!(t
            .sim
            .mutate_user(id, json!({"extension": format!("7{i:03}")})));
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    let second = run(&t, PullKind::Incremental).await;
    assert!(
        second.ok() && second.kind == PullKind::Incremental,
        "{second:?}"
    );
    let mut caught = 0;
    for (i, id) in ids.iter().enumerate() {
        if column(&t, id, "extension").await == Some(format!("7{i:03}")) {
            caught += 1;
        }
    }
    (caught, t)
}

#[tokio::test(start_paused = true)]
async fn cliq_ten_minutes_behind_or_ahead_loses_no_change_and_the_skew_is_reported() {
    let default_overlap = cliq_sync::sync::PullOptions::default().overlap;
    for (label, behind, expected_skew) in [
        ("behind", chrono::Duration::minutes(10), -600.0),
        ("ahead", chrono::Duration::minutes(-10), 600.0),
    ] {
        let logs = Logs::default();
        let guard = logs.capture("cliq_sync=info");
        let (caught, t) =
            changes_caught_under_skew(behind, default_overlap, Duration::from_secs(30)).await;
        drop(guard);
        assert_eq!(
            caught, 28,
            "Cliq's clock 10 minutes {label}: {caught}/28 caught"
        );
        let skew = metric(&t, "cliq_sync_clock_skew_seconds").await;
        // The Date header has one-second resolution.
        assert!(
            skew.is_some_and(|s| (s - expected_skew).abs() <= 1.0),
            "{label}: skew {skew:?}"
        );
        let text = logs.text();
        assert!(
            text.lines()
                .any(|l| l.contains("WARN") && l.contains("clock") && l.contains("skew")),
            "{label}: no skew warning in\n{text}"
        );
    }
}

/// The `Date` header has one-second resolution: the watermark is that second
/// (floored), so a change made a fraction of a second after the previous
/// listing's answer, in the same second, is still caught without any overlap.
#[tokio::test(start_paused = true)]
async fn a_change_in_the_same_second_as_the_listing_answer_is_caught_without_overlap() {
    // Cliq 10 min 0.3 s behind: its Date reads x.700 floored to x.000; the
    // change lands at x.900, before the next second.
    let behind = chrono::Duration::minutes(10) + chrono::Duration::milliseconds(300);
    let (caught, _t) =
        changes_caught_under_skew(behind, Duration::ZERO, Duration::from_millis(200)).await;
    assert_eq!(caught, 28, "{caught}/28 caught");
}

/// Whether the mirror has its e-mail index (a first pull builds it at its
/// end instead of row by row).
async fn has_email_index(t: &TestApp) -> bool {
    scalar(
        t,
        "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'users_email'",
    )
    .await
        == 1
}

#[tokio::test(start_paused = true)]
async fn a_first_pull_stopped_or_killed_midway_leaves_the_email_index_in_place() {
    let t = spawn_app(Opts {
        users: 9000,
        settings: Box::new(no_teams),
        ..Opts::default()
    })
    .await;
    // Stopped: the pull itself builds the index it deferred.
    let cancel = CancellationToken::new();
    let task = {
        let (app, cancel) = (t.app.clone(), cancel.clone());
        tokio::spawn(async move { pull(&app, PullKind::Full, &cancel).await })
    };
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert!(
        !has_email_index(&t).await,
        "deferred while the first pull lists"
    );
    cancel.cancel();
    let r = task.await.unwrap().unwrap();
    assert_eq!(r.status.as_str(), "stopped");
    assert!(r.users_seen > 0 && r.users_seen < 9000, "{r:?}");
    assert!(has_email_index(&t).await, "built when the listing stopped");

    // Killed: a pull that never reaches its end (the mirror still looks
    // empty to the next full pull only if it has no users, which it has
    // now, so empty it again) leaves it to the next open.
    let _hold = t.app.store.hold();
    sqlx::raw_sql("DELETE FROM user_rows; DELETE FROM user_state; DELETE FROM user_changes")
        .execute(t.app.store.pool())
        .await
        .unwrap();
    drop(_hold);
    let task = {
        let app = t.app.clone();
        tokio::spawn(async move { pull(&app, PullKind::Full, &CancellationToken::new()).await })
    };
    tokio::time::sleep(Duration::from_secs(61)).await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert!(!has_email_index(&t).await);
    let app = t.restart().await;
    assert!(
        has_email_index(&t).await,
        "built when the mirror is opened again"
    );
    let r = pull(&app, PullKind::Full, &CancellationToken::new())
        .await
        .unwrap();
    assert!(r.ok(), "{r:?}");
    assert!(has_email_index(&t).await);
}
