//! SIGKILL of a real `cliq-sync sync` process in the middle of a full pull.

use std::time::Duration;

use cliq_sync::app::App;
use cliq_sync::cliq::transport::ReqwestTransport;
use cliq_sync::cliq::{Endpoint, Quota};
use cliq_sync::clock::Clock;
use cliq_sync::config::Settings;
use cliq_sync::sim::{Faults, SimConfig, Simulator};
use cliq_sync::sync::{pull, PullKind};
use tokio_util::sync::CancellationToken;

/// A simulator served on a loopback port in real time, every quota
/// lifted (these tests are about processes, not quotas), each answer
/// delayed by `latency` so a run takes a while; and a config file for it
/// (`extra_config` is appended; the mirror's directory is `dir()`).
pub(crate) struct TcpSim {
    pub(crate) sim: Simulator,
    pub(crate) config: std::path::PathBuf,
    pub(crate) db: std::path::PathBuf,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    pub(crate) _dir: tempfile::TempDir,
}

/// The endpoints whose quotas [`tcp_sim`] lifts, by their `[limits]` key.
const LIFTED: [(Endpoint, &str); 6] = [
    (Endpoint::ListUsers, "list_users"),
    (Endpoint::AddUsers, "add_users"),
    (Endpoint::UpdateUser, "update_user"),
    (Endpoint::GetUser, "get_user"),
    (Endpoint::UserTeams, "user_teams"),
    (Endpoint::UserLayouts, "user_layouts"),
];

pub(crate) async fn tcp_sim(users: usize, latency: Duration, extra_config: &str) -> TcpSim {
    let mut sim_cfg = SimConfig {
        users,
        ..SimConfig::default()
    };
    let mut limits = String::new();
    for (ep, key) in LIFTED {
        sim_cfg.quotas.insert(
            ep,
            Quota {
                requests: 100_000,
                per: Duration::from_secs(60),
                lock: Duration::from_secs(600),
            },
        );
        limits.push_str(&format!("{key} = {{ requests = 100000 }}\n"));
    }
    let sim = Simulator::new(sim_cfg.clone(), Clock::system());
    sim.set_faults(Faults {
        latency,
        ..Faults::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let server = tokio::spawn(sim.clone().serve(listener, stop.clone().cancelled_owned()));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mirror.db");
    let config = dir.path().join("cliq-sync.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[cliq]
base_url = "http://{addr}"
accounts_url = "http://{addr}"
client_id = "{}"
client_secret = "{}"
refresh_token = "{}"

[mirror]
path = "{}"

[limits]
allow_above_documented = true
{limits}
{extra_config}
"#,
            sim_cfg.client_id,
            sim_cfg.client_secret,
            sim_cfg.refresh_token,
            db.display()
        ),
    )
    .unwrap();
    TcpSim {
        sim,
        config,
        db,
        stop,
        server,
        _dir: dir,
    }
}

impl TcpSim {
    /// The real binary on this simulator's config (warnings only).
    pub(crate) fn cli(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_cliq-sync"));
        c.arg("--config")
            .arg(&self.config)
            .args(args)
            .env("RUST_LOG", "warn")
            .kill_on_drop(true);
        c
    }

    /// Requests the simulator received on `ep`.
    pub(crate) fn requests(&self, ep: Endpoint) -> u64 {
        self.sim.counters().requests.get(&ep).copied().unwrap_or(0)
    }

    /// Wait (real time: these are real processes) until `ep` saw `n` requests.
    pub(crate) async fn wait_for(&self, ep: Endpoint, n: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.requests(ep) < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{ep:?} never reached {n} requests"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub(crate) async fn shut(self) {
        self.stop.cancel();
        self.server.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_pull_leaves_a_consistent_mirror_and_the_next_pull_converges() {
    // 40 ms per answer: a full pull of 8,000 users takes a few seconds.
    let ts = tcp_sim(8000, Duration::from_millis(40), "[sync]\nteams = \"off\"").await;
    let (sim, config) = (&ts.sim, &ts.config);

    // First a complete pull, so there is something to lose.
    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_cliq-sync"))
        .args(["--config", config.to_str().unwrap(), "sync", "--full"])
        .env("RUST_LOG", "warn")
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let gone = sim.users()[sim.users().len() - 1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.remove_user(&gone);

    // Then a full pull killed with SIGKILL halfway through.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_cliq-sync"))
        .args(["--config", config.to_str().unwrap(), "sync", "--full"])
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let before = sim.counters().requests[&Endpoint::ListUsers];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while sim.counters().requests[&Endpoint::ListUsers] < before + 30 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pull never got going"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().await.unwrap(); // SIGKILL
    let pages_at_kill = sim.counters().requests[&Endpoint::ListUsers] - before;
    assert!(pages_at_kill < 80, "the pull had finished: {pages_at_kill}");

    // What a reader sees now: intact, nobody removed, the run left `running`.
    let app = {
        let mut s = Settings::load(Some(config)).unwrap();
        s.log.level = "warn".into();
        App::open_with(
            s,
            Clock::system(),
            std::sync::Arc::new(ReqwestTransport::new().unwrap()),
        )
        .await
        .unwrap()
    };
    let pool = app.store.pool();
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
    let removed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE removed_at IS NOT NULL")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(removed, 0);
    // Opening the mirror marked the killed run failed.
    let failed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sync_runs WHERE status = 'failed' AND kind = 'full'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(failed, 1);

    // The next pull completes and converges.
    let r = pull(&app, PullKind::Full, &CancellationToken::new())
        .await
        .unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.removed, 1);
    let present: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE removed_at IS NULL")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(present, 7999);
    ts.shut().await;
}

/// The real daemon: `cliq-sync run` serves /healthz, and SIGTERM in the
/// middle of its first pull ends it with exit code 0 within 10 s, the run
/// recorded as `stopped`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_daemon_cleanly_mid_pull() {
    let metrics_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // Slow answers: the first full pull takes about 10 s.
    let ts = tcp_sim(
        5000,
        Duration::from_millis(200),
        &format!("[server]\nlisten = \"127.0.0.1:{metrics_port}\""),
    )
    .await;
    let (sim, config, db) = (&ts.sim, &ts.config, &ts.db);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_cliq-sync"))
        .args(["--config", config.to_str().unwrap(), "run"])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Wait until it answers /healthz and the pull is under way.
    cliq_sync::install_crypto_provider();
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never became healthy"
        );
        let ok = http
            .get(format!("http://127.0.0.1:{metrics_port}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok
            && sim
                .counters()
                .requests
                .get(&Endpoint::ListUsers)
                .copied()
                .unwrap_or(0)
                >= 5
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ready = http
        .get(format!("http://127.0.0.1:{metrics_port}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);

    let sent = std::time::Instant::now();
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGTERM) };
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exited within 10 s")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let took = sent.elapsed();

    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", db.display()))
        .await
        .unwrap();
    let (status, removed): (String, i64) = sqlx::query_as(
        "SELECT status, (SELECT count(removed_at) FROM users) FROM sync_runs ORDER BY id LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(status, "stopped", "stopped after {took:?}");
    assert_eq!(removed, 0);
    ts.shut().await;
}
