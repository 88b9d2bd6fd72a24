//! Several real processes on one mirror: a run belongs to a live owner, and
//! at most one push runs at a time (issue 9, point 1).

use std::time::Duration;

use cliq_sync::app::App;
use cliq_sync::cliq::transport::ReqwestTransport;
use cliq_sync::cliq::Endpoint;
use cliq_sync::clock::Clock;
use cliq_sync::config::Settings;
use cliq_sync::sim::Faults;

use crate::crash::{tcp_sim, TcpSim};
use crate::trust::changes_csv;

/// The program opened in this test process, as another command would.
async fn open_app(ts: &TcpSim) -> App {
    let mut s = Settings::load(Some(&ts.config)).unwrap();
    s.log.level = "warn".into();
    let transport = std::sync::Arc::new(ReqwestTransport::new().unwrap());
    App::open_with(s, Clock::system(), transport).await.unwrap()
}

async fn query_runs(ts: &TcpSim) -> Vec<(i64, String, String, Option<String>)> {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", ts.db.display()))
        .await
        .unwrap();
    let rows = sqlx::query_as("SELECT id, kind, status, error FROM sync_runs ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows
}

/// A push in progress in one process, a second `push` started beside it:
/// the second exits 1 naming the first, the first's run is never marked
/// failed and ends `ok`, and Cliq sees exactly one PUT per change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_push_beside_a_running_one_exits_1_naming_it() {
    let n = 60;
    let hr_dir = tempfile::tempdir().unwrap();
    let hr = hr_dir.path().join("hr.csv");
    let ts = tcp_sim(
        200,
        Duration::ZERO,
        &format!(
            "[sync]\nteams = \"off\"\n[hr]\nsource = \"{}\"\n\
             [push]\nenabled = true\nmax_changes_per_run = 1000\n",
            hr.display()
        ),
    )
    .await;
    assert!(ts
        .cli(&["sync", "--full"])
        .status()
        .await
        .unwrap()
        .success());
    std::fs::write(&hr, changes_csv(&ts.sim.users(), n, "Desk")).unwrap();
    // 100 ms per answer: the first push takes about 6 s.
    ts.sim.set_faults(Faults {
        latency: Duration::from_millis(100),
        ..Faults::default()
    });

    let first = ts.cli(&["push"]).spawn().unwrap();
    let first_pid = first.id().unwrap();
    ts.wait_for(Endpoint::UpdateUser, 5).await;
    let second = ts.cli(&["push"]).output().await.unwrap();
    let first = first.wait_with_output().await.unwrap();

    let puts = ts.requests(Endpoint::UpdateUser);
    let stderr = String::from_utf8_lossy(&second.stderr);
    let runs = query_runs(&ts).await;
    let pushes: Vec<_> = runs.iter().filter(|r| r.1 == "push").collect();
    assert_eq!(
        (second.status.code(), puts as usize),
        (Some(1), n),
        "second push: {:?}, PUTs for {n} changes: {puts}, runs: {runs:?}, stderr: {stderr}",
        second.status
    );
    assert!(first.status.success(), "{first:?}");
    assert!(
        stderr.contains(&format!(
            "another push is in progress on this mirror (pid {first_pid} on "
        )),
        "{stderr}"
    );
    assert_eq!(pushes.len(), 1, "{runs:?}");
    assert_eq!(
        (pushes[0].2.as_str(), &pushes[0].3),
        ("ok", &None),
        "{runs:?}"
    );
    assert!(
        stderr.contains(&format!("run {})", pushes[0].0)),
        "{stderr}"
    );
    ts.shut().await;
}

/// Opening the mirror beside a live process leaves its run alone; once that
/// process is SIGKILLed, the next opener marks the run failed, naming the
/// dead pid, and removes the dead owner's lock file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_dead_owners_run_is_marked_failed() {
    let ts = tcp_sim(4000, Duration::from_millis(40), "[sync]\nteams = \"off\"").await;
    let mut child = ts.cli(&["sync", "--full"]).spawn().unwrap();
    let pid = child.id().unwrap();
    ts.wait_for(Endpoint::ListUsers, 5).await;

    // Another process (this one) opens the mirror while the pull is running.
    open_app(&ts).await.store.close().await;
    let runs = query_runs(&ts).await;
    assert_eq!(
        runs.iter().map(|r| r.2.as_str()).collect::<Vec<_>>(),
        ["running"],
        "a live process's run: {runs:?}"
    );

    child.kill().await.unwrap(); // SIGKILL
    open_app(&ts).await.store.close().await;
    let runs = query_runs(&ts).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].2, "failed", "{runs:?}");
    let error = runs[0].3.clone().unwrap_or_default();
    assert!(error.contains(&format!("pid {pid}")), "{error}");
    let owners = ts.dir().join("mirror.db.owners");
    let left: Vec<_> = std::fs::read_dir(&owners)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "lock files of ended processes: {left:?}");
    ts.shut().await;
}
