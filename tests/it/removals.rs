//! The removal circuit breaker (issue 9, point 7): a full listing that ends
//! early must not mark the rest of the org removed.

use std::time::Duration;

use cliq_sync::sim::Faults;
use cliq_sync::sync::{pull, pull_with, PullKind, PullOptions, PullReport};
use tokio_util::sync::CancellationToken;

use crate::crash::tcp_sim;
use crate::helpers::{spawn_app, Opts, TestApp};

async fn org(users: usize) -> TestApp {
    let t = spawn_app(Opts {
        users,
        settings: Box::new(|s| s.sync.teams = cliq_sync::config::TeamsMode::Off),
        ..Opts::default()
    })
    .await;
    let r = full(&t).await;
    assert!(r.ok(), "{r:?}");
    t
}

async fn full(t: &TestApp) -> PullReport {
    // A listing's start must come after the last one's, as in real life.
    tokio::time::advance(Duration::from_secs(60)).await;
    pull(&t.app, PullKind::Full, &CancellationToken::new())
        .await
        .unwrap()
}

pub(crate) async fn scalar(t: &TestApp, sql: &str) -> i64 {
    let _hold = t.app.store.hold();
    sqlx::query_scalar(sql)
        .fetch_one(t.app.store.pool())
        .await
        .unwrap()
}

async fn removed(t: &TestApp) -> i64 {
    scalar(t, "SELECT count(*) FROM users WHERE removed_at IS NOT NULL").await
}

async fn last_run(t: &TestApp) -> (String, Option<String>) {
    let _hold = t.app.store.hold();
    sqlx::query_as("SELECT status, error FROM sync_runs ORDER BY id DESC LIMIT 1")
        .fetch_one(t.app.store.pool())
        .await
        .unwrap()
}

/// 3,000 users, a listing that stops after page 6 (no `has_more`, no
/// `next_token`) or comes back empty at page 4: nobody is marked removed,
/// the run is `held` and says why, and the watermark does not move.
#[tokio::test(start_paused = true)]
async fn a_listing_that_ends_early_marks_nobody_removed() {
    let t = org(3000).await;
    let watermark = t.app.store.watermark().await.unwrap();
    for faults in [
        Faults {
            list_end_early_at_page: Some(6),
            ..Faults::default()
        },
        Faults {
            list_empty_page_at: Some(4),
            ..Faults::default()
        },
    ] {
        t.sim.set_faults(faults.clone());
        let r = full(&t).await;
        let (status, error) = last_run(&t).await;
        assert_eq!(
            (removed(&t).await, r.status.as_str(), status.as_str()),
            (0, "held", "held"),
            "{faults:?}: {r:?}"
        );
        let error = error.unwrap_or_default();
        assert!(
            error.contains("max_removals") && error.contains("--allow-removals"),
            "{error}"
        );
        assert_eq!(t.app.store.watermark().await.unwrap(), watermark);
    }
    // The next complete listing is fine again.
    t.sim.set_faults(Faults::default());
    let r = full(&t).await;
    assert!(r.ok() && r.removed == 0, "{r:?}");
}

/// The real command: `sync --full` on a short listing exits 3 and says how
/// to confirm; `sync --full --allow-removals` then applies the removals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_exits_3_when_held_and_allow_removals_confirms() {
    let ts = tcp_sim(1000, Duration::ZERO, "[sync]\nteams = \"off\"").await;
    let sync = |args: &[&str]| {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_cliq-sync"));
        c.arg("--config").arg(&ts.config).arg("sync").args(args);
        c.env("RUST_LOG", "warn").kill_on_drop(true);
        c
    };
    assert!(sync(&["--full"]).status().await.unwrap().success());
    ts.sim.set_faults(Faults {
        list_end_early_at_page: Some(3),
        ..Faults::default()
    });
    let out = sync(&["--full"]).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(stderr.contains("sync --full --allow-removals"), "{stderr}");
    let out = sync(&["--full", "--allow-removals"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", ts.db.display()))
        .await
        .unwrap();
    let removed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE removed_at IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(removed, 1000 - 300);
    pool.close().await;
    ts.shut().await;
}

/// Remove the last `n` users of the simulated org (as Cliq would).
fn remove_last(t: &TestApp, n: usize) {
    let users = t.sim.users();
    for u in users.iter().rev().take(n) {
        assert!(t.sim.remove_user(u["id"].as_str().unwrap()));
    }
}

async fn full_with(t: &TestApp, f: impl FnOnce(&mut PullOptions)) -> PullReport {
    tokio::time::advance(Duration::from_secs(60)).await;
    let mut o = t.app.pull_options();
    f(&mut o);
    pull_with(&t.app, PullKind::Full, &o, &CancellationToken::new())
        .await
        .unwrap()
}

/// The count threshold: 6 removals over max_removals = 5 are held (the
/// fraction lifted), 5 go through.
#[tokio::test(start_paused = true)]
async fn more_removals_than_max_removals_are_held() {
    let t = org(100).await;
    let limits = |o: &mut PullOptions| {
        o.max_removals = 5;
        o.max_removal_fraction = 1.0;
    };
    remove_last(&t, 6);
    let r = full_with(&t, limits).await;
    assert_eq!((r.status.as_str(), r.removed), ("held", 0), "{r:?}");
    let error = r.error.unwrap_or_default();
    assert!(error.contains("would mark 6 of 100 removed"), "{error}");
    assert!(error.contains("max_removals = 5"), "{error}");
    assert_eq!(removed(&t).await, 0);
    // Confirmed: the same removals happen.
    let r = full_with(&t, |o| {
        limits(o);
        o.allow_removals = true;
    })
    .await;
    assert_eq!((r.status.as_str(), r.removed), ("ok", 6), "{r:?}");

    remove_last(&t, 5);
    let r = full_with(&t, limits).await;
    assert_eq!((r.status.as_str(), r.removed), ("ok", 5), "{r:?}");
    assert_eq!(removed(&t).await, 11);
}

/// The fraction threshold: 11 of 100 present (over 0.1) are held with the
/// count lifted; 10 of 100 go through; and the defaults let a small
/// legitimate removal from a large org through.
#[tokio::test(start_paused = true)]
async fn more_than_max_removal_fraction_is_held_and_small_removals_pass() {
    let t = org(100).await;
    let limits = |o: &mut PullOptions| {
        o.max_removals = 10_000;
        o.max_removal_fraction = 0.1;
    };
    remove_last(&t, 11);
    let r = full_with(&t, limits).await;
    assert_eq!((r.status.as_str(), r.removed), ("held", 0), "{r:?}");
    let error = r.error.unwrap_or_default();
    assert!(error.contains("max_removal_fraction = 0.1"), "{error}");
    assert_eq!(last_run(&t).await.0, "held");

    let t = org(100).await;
    remove_last(&t, 10);
    let r = full_with(&t, limits).await;
    assert_eq!((r.status.as_str(), r.removed), ("ok", 10), "{r:?}");

    let t = org(3000).await;
    remove_last(&t, 3);
    let r = full(&t).await;
    assert_eq!((r.status.as_str(), r.removed), ("ok", 3), "{r:?}");
}
