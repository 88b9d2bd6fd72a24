//! The daemon under systemd: the sd_notify messages it sends. In paused time
//! with a recording handle (what STATUS says, RELOADING around a SIGHUP), and
//! once through the real binary and a real `$NOTIFY_SOCKET` datagram socket.

use std::sync::Arc;
use std::time::Duration;

use cliq_sync::daemon::{Daemon, DaemonState};
use cliq_sync::systemd::Systemd;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::crash::tcp_sim;
use crate::helpers::{spawn_app, Opts};

#[tokio::test(start_paused = true)]
async fn status_says_what_the_daemon_does_and_a_sighup_is_a_reload() {
    let t = spawn_app(Opts::default()).await;
    let (systemd, rec) = Systemd::recording(Some(Duration::from_secs(60)));
    let state = Arc::new(DaemonState {
        systemd: systemd.clone(),
        ..DaemonState::default()
    });
    let daemon = Daemon::new(t.app.clone(), state).unwrap();
    let (shutdown, reload) = (CancellationToken::new(), Arc::new(Notify::new()));
    let task = tokio::spawn({
        let (shutdown, reload) = (shutdown.clone(), reload.clone());
        async move { systemd.supervise(daemon.run(shutdown, reload)).await }
    });
    tokio::time::sleep(Duration::from_secs(90)).await;
    reload.notify_one();
    tokio::time::sleep(Duration::from_secs(600)).await;
    shutdown.cancel();
    task.await.unwrap();

    let m = rec.messages();
    let statuses: Vec<&str> = m.iter().filter_map(|m| m.strip_prefix("STATUS=")).collect();
    assert!(
        statuses
            .iter()
            .any(|s| s.starts_with("incremental pull running since ")),
        "{m:#?}"
    );
    assert!(
        statuses
            .iter()
            .any(|s| s.starts_with("idle; next: incremental pull at ")),
        "{m:#?}"
    );
    let reloading = m
        .iter()
        .position(|m| m.starts_with("RELOADING=1\nMONOTONIC_USEC="));
    let reloading = reloading.unwrap_or_else(|| panic!("no RELOADING=1: {m:#?}"));
    assert!(
        m[reloading + 1..]
            .iter()
            .any(|m| m.starts_with("READY=1\n")),
        "no READY=1 after the reload: {m:#?}"
    );
    // 690 s at a 60 s watchdog: a ping every 30 s, runs or not.
    let pings = m.iter().filter(|m| *m == "WATCHDOG=1").count();
    assert!((23..=24).contains(&pings), "{pings} pings: {m:#?}");
}

/// Datagrams from the child, until `until` holds or `within` has passed.
async fn collect(
    sock: &tokio::net::UnixDatagram,
    got: &mut Vec<String>,
    within: Duration,
    until: impl Fn(&[String]) -> bool,
) {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = vec![0u8; 4096];
    while !until(got) {
        match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            Ok(Ok(n)) => got.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            _ => return,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_daemon_notifies_ready_status_watchdog_reloading_and_stopping() {
    let ts = tcp_sim(300, Duration::ZERO, "[server]\nlisten = \"127.0.0.1:0\"").await;
    let sock_path = ts._dir.path().join("notify.sock");
    let sock = tokio::net::UnixDatagram::bind(&sock_path).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_cliq-sync"))
        .args(["--config", ts.config.to_str().unwrap(), "run"])
        .env("RUST_LOG", "warn")
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap() as libc::pid_t;
    let mut got = Vec::new();
    let count = |got: &[String], p: &str| got.iter().filter(|m| m.starts_with(p)).count();
    collect(&sock, &mut got, Duration::from_secs(15), |g| {
        count(g, "WATCHDOG=1") >= 2 && g.iter().any(|m| m.contains("STATUS=idle"))
    })
    .await;
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    collect(&sock, &mut got, Duration::from_secs(5), |g| {
        g.iter()
            .rposition(|m| m.starts_with("RELOADING=1"))
            .is_some_and(|r| g[r..].iter().any(|m| m.starts_with("READY=1")))
    })
    .await;
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait()).await;
    collect(&sock, &mut got, Duration::from_millis(200), |_| false).await;
    ts.shut().await;

    let summary = format!("{got:#?}");
    assert!(got[0].starts_with("READY=1\n"), "{summary}");
    assert!(count(&got, "WATCHDOG=1") >= 2, "{summary}");
    assert!(
        got.iter().any(|m| m.contains("STATUS=idle; next: ")),
        "{summary}"
    );
    let r = got
        .iter()
        .position(|m| m.starts_with("RELOADING=1\nMONOTONIC_USEC="));
    let r = r.unwrap_or_else(|| panic!("no RELOADING=1 after SIGHUP: {summary}"));
    assert!(
        got[r..].iter().any(|m| m.starts_with("READY=1")),
        "{summary}"
    );
    assert!(got.iter().any(|m| m.starts_with("STOPPING=1")), "{summary}");
    assert!(status.unwrap().unwrap().success());
}
