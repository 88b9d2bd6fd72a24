//! The daemon uses an HR file only once it has settled (issue 9, point 4):
//! unchanged for `[hr] settle` (10 s by default), read whole. In paused time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cliq_sync::daemon::{Daemon, DaemonState};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::helpers::{spawn_app, Opts, TestApp};

/// `[hr] source = path` with every other `[hr]` key at its default.
fn hr_settings(path: &Path) -> cliq_sync::config::HrSettings {
    serde_json::from_value(serde_json::json!({ "source": path })).unwrap()
}

async fn app_with_hr(path: PathBuf) -> TestApp {
    spawn_app(Opts {
        settings: Box::new(move |s| {
            s.hr = Some(hr_settings(&path));
            s.push.enabled = true;
            s.sync.teams = cliq_sync::config::TeamsMode::Off;
        }),
        ..Opts::default()
    })
    .await
}

/// The bodies of the PUTs the simulator received.
fn puts(t: &TestApp) -> Vec<String> {
    t.sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .map(|r| r.body)
        .collect()
}

fn start(t: &TestApp) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let state = Arc::new(DaemonState::default());
    let shutdown = CancellationToken::new();
    let daemon = Daemon::new(t.app.clone(), state).unwrap();
    let task = tokio::spawn(daemon.run(shutdown.clone(), Arc::new(Notify::new())));
    (shutdown, task)
}

#[tokio::test(start_paused = true)]
async fn a_half_written_hr_file_is_never_pushed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hr.csv");
    let t = app_with_hr(path.clone()).await;
    let u = t.sim.users()[20].clone();
    let (id, email) = (u["id"].as_str().unwrap(), u["email_id"].as_str().unwrap());
    // The exporter is halfway through the file when the 09:15 push comes,
    // and finishes it 4 s later.
    std::fs::write(&path, format!("email_id,extension\n{email},10")).unwrap();
    let full = format!("email_id,extension\n{email},1001\n");
    let writer = {
        let path = path.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(15 * 60 + 4)).await;
            std::fs::write(&path, full).unwrap();
        })
    };
    let (shutdown, task) = start(&t);
    tokio::time::sleep(Duration::from_secs(31 * 60)).await;
    writer.await.unwrap();
    let bodies = puts(&t);
    assert!(
        bodies.iter().all(|b| !b.contains("\"10\"")),
        "the truncated value was pushed: {bodies:?}"
    );
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(t.sim.user(id).unwrap()["extension"], "1001");
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_file_written_just_before_the_push_waits_for_the_settle_period() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hr.csv");
    let t = app_with_hr(path.clone()).await;
    let u = t.sim.users()[21].clone();
    let email = u["email_id"].as_str().unwrap().to_owned();
    let writer = {
        let path = path.clone();
        tokio::spawn(async move {
            // 09:14:58, two seconds before the push tick.
            tokio::time::sleep(Duration::from_secs(15 * 60 - 2)).await;
            std::fs::write(&path, format!("email_id,extension\n{email},2002\n")).unwrap();
        })
    };
    let (shutdown, task) = start(&t);
    // 09:15:05: the file is 7 s old, younger than the 10 s settle.
    tokio::time::sleep(Duration::from_secs(15 * 60 + 5)).await;
    writer.await.unwrap();
    assert_eq!(puts(&t).len(), 0, "pushed from a file 7 s old");
    // Still unchanged at 09:15:10 or so: used by the same tick.
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(puts(&t).len(), 1);
    shutdown.cancel();
    task.await.unwrap();
}
