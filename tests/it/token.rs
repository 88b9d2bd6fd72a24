//! One access token per mirror (issue 11, point 4): the token is cached in
//! `<mirror>.token` (0600) and shared by every process on the mirror, a
//! refresh is single-flight across processes, an unreachable accounts host
//! fails a command within a bound without spending the mint budget, and a
//! wait for the mint budget is logged.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cliq_sync::app::App;
use cliq_sync::cliq::transport::{RouterTransport, Transport};
use cliq_sync::cliq::Endpoint;
use cliq_sync::clock::Clock;
use cliq_sync::config::Settings;
use cliq_sync::sim::{SimConfig, Simulator};
use cliq_sync::sync::{pull, PullKind};
use tokio_util::sync::CancellationToken;

use crate::crash::tcp_sim;
use crate::helpers::{base_time, settings_for, Logs};

/// `<mirror>.token`.
fn token_file(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap().to_owned();
    name.push(".token");
    db.with_file_name(name)
}

fn cli(config: &Path, args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_cliq-sync"));
    c.arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "info");
    c.kill_on_drop(true);
    c
}

/// The token file holds the access token, but never the refresh token or
/// the client secret, and only its owner may read it.
fn assert_private_token_file(db: &Path, sim: &SimConfig) {
    let path = token_file(db);
    let mode = std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(&sim.refresh_token), "{text}");
    assert!(!text.contains(&sim.client_secret), "{text}");
    assert!(text.contains("1000."), "the access token is cached: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_back_to_back_commands_on_one_mirror_mint_one_token() {
    let ts = tcp_sim(50, Duration::ZERO, "[sync]\nteams = \"off\"").await;
    for args in [
        &["sync", "--full"][..],
        &["sync"],
        &["sync"],
        &["sync", "--full"],
        &["sync"],
    ] {
        let out = cli(&ts.config, args).output().await.unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(ts.sim.counters().tokens_minted, 1);
    assert_private_token_file(&ts.db, &SimConfig::default());
    ts.shut().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_started_at_once_with_an_empty_cache_mint_one_token() {
    // Slow answers, so both processes are minting or listing at once.
    let ts = tcp_sim(50, Duration::from_millis(300), "[sync]\nteams = \"off\"").await;
    // Create and migrate the mirror first (no request, so no token).
    let mut s = Settings::load(Some(&ts.config)).unwrap();
    s.log.level = "warn".into();
    let app = App::open(s).await.unwrap();
    app.store.close().await;
    drop(app);

    let a = cli(&ts.config, &["sync", "--full"]).output();
    let b = cli(&ts.config, &["sync", "--full"]).output();
    let (a, b) = tokio::join!(a, b);
    for out in [a.unwrap(), b.unwrap()] {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(ts.sim.counters().tokens_minted, 1);
    assert_private_token_file(&ts.db, &SimConfig::default());
    ts.shut().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_accounts_host_fails_sync_within_the_bound_without_spending_the_budget() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let ts = tcp_sim(20, Duration::ZERO, "").await;
    let text = std::fs::read_to_string(&ts.config).unwrap();
    let accounts = format!("http://127.0.0.1:{closed}");
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("accounts_url") {
                format!("accounts_url = \"{accounts}\"\ntoken_timeout = \"4s\"")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&ts.config, text).unwrap();

    let started = std::time::Instant::now();
    let out = cli(&ts.config, &["sync", "--full"]).output().await.unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_secs(20), "took {took:?}: {stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot reach the Zoho accounts server at {accounts}"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("[cliq] accounts_url"), "{stderr}");
    // The failed attempts are logged as they happen (never silent).
    assert!(stderr.contains("retrying"), "{stderr}");

    // Connection failures left nothing in the token-mint ledger.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}.quota", ts.db.display()))
        .await
        .unwrap();
    let spent: i64 =
        sqlx::query_scalar("SELECT count(*) FROM request_ledger WHERE endpoint = 'oauth_token'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(spent, 0);
    assert_eq!(ts.sim.counters().tokens_minted, 0);
    pool.close().await;
    ts.shut().await;
}

/// Programs (processes, as far as state goes) on one mirror, in paused time.
struct Mirror {
    sim: Simulator,
    clock: Clock,
    settings: Settings,
    transport: Arc<dyn Transport>,
    _dir: tempfile::TempDir,
}

impl Mirror {
    fn new() -> Mirror {
        let clock = Clock::anchored(base_time());
        let sim_cfg = SimConfig {
            users: 30,
            ..SimConfig::default()
        };
        let sim = Simulator::new(sim_cfg.clone(), clock.clone());
        let dir = tempfile::tempdir().unwrap();
        let mut settings = settings_for(&sim_cfg, dir.path());
        settings.sync.teams = cliq_sync::config::TeamsMode::Off;
        let transport: Arc<dyn Transport> = Arc::new(RouterTransport::new(sim.router()));
        Mirror {
            sim,
            clock,
            settings,
            transport,
            _dir: dir,
        }
    }

    async fn open(&self) -> App {
        App::open_with(
            self.settings.clone(),
            self.clock.clone(),
            self.transport.clone(),
        )
        .await
        .unwrap()
    }
}

#[tokio::test(start_paused = true)]
async fn the_eleventh_command_within_ten_minutes_reuses_the_cached_token() {
    let m = Mirror::new();
    let start = tokio::time::Instant::now();
    // The first pull is a full one (no watermark), the others incremental.
    for _ in 0..11 {
        let app = m.open().await;
        let r = pull(&app, PullKind::Incremental, &CancellationToken::new())
            .await
            .unwrap();
        assert!(r.ok(), "{r:?}");
        app.store.close().await;
    }
    assert_eq!(m.sim.counters().tokens_minted, 1);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(60), "11 commands took {took:?}");
}

#[tokio::test(start_paused = true)]
async fn a_refused_cached_token_is_refreshed_once_for_every_process() {
    let m = Mirror::new();
    let apps = [m.open().await, m.open().await, m.open().await];
    for app in &apps {
        pull(app, PullKind::Full, &CancellationToken::new())
            .await
            .unwrap();
    }
    assert_eq!(m.sim.counters().tokens_minted, 1);
    // Cliq revokes the shared token: every process gets a 401.
    m.sim.expire_tokens();
    let runs = apps
        .iter()
        .map(|app| async move { pull(app, PullKind::Full, &CancellationToken::new()).await });
    for r in futures::future::join_all(runs).await {
        assert!(r.unwrap().ok());
    }
    assert_eq!(m.sim.counters().tokens_minted, 2);
}

#[tokio::test(start_paused = true)]
async fn a_wait_for_the_token_mint_budget_is_logged() {
    let logs = Logs::default();
    let _guard = logs.capture("info");

    let m = Mirror::new();
    let app = m.open().await;
    // Someone else (another credential on this mirror) spent the budget.
    for _ in 0..10 {
        app.scheduler.acquire(Endpoint::OauthToken).await.unwrap();
    }
    let start = tokio::time::Instant::now();
    app.auth.token().await.unwrap();
    assert!(start.elapsed() >= Duration::from_secs(590));
    let logs = logs.text();
    let line = logs
        .lines()
        .find(|l| l.contains("token-mint budget"))
        .unwrap_or_else(|| panic!("no wait logged:\n{logs}"));
    assert!(line.contains("INFO") || line.contains("WARN"), "{line}");
}

/// Refuses the connection (nothing sent) to the token endpoint `n` times.
struct RefuseTokens(Arc<dyn Transport>, std::sync::atomic::AtomicUsize);

impl Transport for RefuseTokens {
    fn send(
        &self,
        req: http::Request<bytes::Bytes>,
    ) -> cliq_sync::cliq::transport::TransportFuture<'_> {
        Box::pin(async move {
            let left = &self.1;
            if req.uri().path() == "/oauth/v2/token"
                && left
                    .fetch_update(
                        std::sync::atomic::Ordering::SeqCst,
                        std::sync::atomic::Ordering::SeqCst,
                        |n| n.checked_sub(1),
                    )
                    .is_ok()
            {
                return Err(cliq_sync::cliq::transport::TransportError::Connect(
                    "tcp connect error: Connection refused (os error 111)".into(),
                ));
            }
            self.0.send(req).await
        })
    }
}

#[tokio::test(start_paused = true)]
async fn metrics_show_token_refresh_failures_and_request_durations() {
    let mut m = Mirror::new();
    m.transport = Arc::new(RefuseTokens(m.transport.clone(), 2.into()));
    let app = m.open().await;
    let r = pull(&app, PullKind::Full, &CancellationToken::new())
        .await
        .unwrap();
    assert!(r.ok(), "{r:?}");
    let state = cliq_sync::server::ServerState {
        app: app.clone(),
        daemon: Arc::new(cliq_sync::daemon::DaemonState::default()),
        max_pull_failures: 3,
    };
    let text = cliq_sync::server::render(&state).await.unwrap();
    let has = |prefix: &str| text.lines().any(|l| l.starts_with(prefix));
    assert!(
        has("cliq_sync_token_refresh_failures_total{reason=\"unreachable\"} 2"),
        "{text}"
    );
    assert!(
        has("cliq_sync_request_duration_seconds_bucket{le=\"0.01\",endpoint=\"list_users\"}")
            || has(
                "cliq_sync_request_duration_seconds_bucket{endpoint=\"list_users\",le=\"0.01\"}"
            ),
        "{text}"
    );
    assert!(
        // Every attempt, refused connections included.
        has("cliq_sync_request_duration_seconds_count{endpoint=\"oauth_token\"} 3"),
        "{text}"
    );
    assert!(text.contains("# TYPE cliq_sync_request_duration_seconds histogram"));
}
