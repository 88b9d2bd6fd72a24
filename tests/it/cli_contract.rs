//! The command-line contract through the real binary (issue 11, point 5):
//! exit codes on signals, `status --check`, `schema_version` in every JSON
//! document, the push messages, `check-config` (offline and `--online`),
//! and a help text on every flag.

use std::time::Duration;

use cliq_sync::cliq::Endpoint;
use cliq_sync::sim::Faults;
use tokio::process::Command;

use crate::crash::{tcp_sim, TcpSim};
use crate::trust::changes_csv;

async fn last_run(ts: &TcpSim) -> (String, String) {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", ts.db.display()))
        .await
        .unwrap();
    let row = sqlx::query_as("SELECT kind, status FROM sync_runs ORDER BY id DESC LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    row
}

/// Start `args`, wait until `ep` saw `after` requests, send `signal`, and
/// return the exit code.
async fn signalled(ts: &TcpSim, args: &[&str], ep: Endpoint, after: u64, signal: i32) -> i32 {
    let child = ts.cli(args).spawn().unwrap();
    ts.wait_for(ep, after).await;
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id().unwrap() as i32, signal) };
    let out = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .expect("exited within 15 s")
        .unwrap();
    out.status.code().unwrap_or(-1)
}

/// `sync` and `push` stopped by SIGINT exit 130, by SIGTERM 143 (the shell's
/// 128 + signal), and the run is recorded `stopped`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_and_push_stopped_by_a_signal_exit_130_or_143() {
    let hr_dir = tempfile::tempdir().unwrap();
    let hr = hr_dir.path().join("hr.csv");
    let ts = tcp_sim(
        3000,
        Duration::ZERO,
        &format!(
            "[sync]\nteams = \"off\"\n[hr]\nsource = \"{}\"\n\
             [push]\nenabled = true\nmax_changes_per_run = 10000\n",
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
    ts.sim.set_faults(Faults {
        latency: Duration::from_millis(100),
        ..Faults::default()
    });
    let mut seen = Vec::new();
    for (signal, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
        let lists = ts.requests(Endpoint::ListUsers);
        let code = signalled(
            &ts,
            &["sync", "--full"],
            Endpoint::ListUsers,
            lists + 3,
            signal,
        )
        .await;
        seen.push(("sync", name, code, last_run(&ts).await.1));
        std::fs::write(&hr, changes_csv(&ts.sim.users(), 300, name)).unwrap();
        let puts = ts.requests(Endpoint::UpdateUser);
        let code = signalled(&ts, &["push"], Endpoint::UpdateUser, puts + 3, signal).await;
        seen.push(("push", name, code, last_run(&ts).await.1));
    }
    let want: Vec<_> = [
        ("sync", "SIGINT", 130),
        ("push", "SIGINT", 130),
        ("sync", "SIGTERM", 143),
        ("push", "SIGTERM", 143),
    ]
    .into_iter()
    .map(|(c, s, code)| (c, s, code, "stopped".to_owned()))
    .collect();
    assert_eq!(seen, want);
    ts.shut().await;
}

/// One unhealthy condition for `status --check`, applied to a healthy mirror.
#[derive(Debug, Clone, Copy)]
enum Sick {
    None,
    LastPullFailed,
    WatermarkSixDaysOld,
    EndpointLocked,
    PushHeld,
    FullPullHeld,
    HrSourceInvalid,
}

/// A mirror as a real daemon leaves it (a full and an incremental pull ok,
/// watermark an hour old), then `sick` applied; and its config file.
async fn mirror_for_check(dir: &std::path::Path, sick: Sick) -> std::path::PathBuf {
    use cliq_sync::cliq::quotas::{Limits, QuotaScheduler};
    use cliq_sync::clock::Clock;
    use cliq_sync::mirror::runs::{RunFigures, RunKind, RunStatus};
    use cliq_sync::mirror::Store;

    let clock = Clock::system();
    let db = dir.join("mirror.db");
    let store = Store::open(&db, &clock).await.unwrap();
    let run = |kind, status, error: Option<&str>| {
        let store = &store;
        let clock = &clock;
        let error = error.map(str::to_owned);
        async move {
            let id = store.start_run(kind, clock.now()).await.unwrap();
            let figures = RunFigures {
                error,
                ..RunFigures::default()
            };
            store
                .finish_run(id, status, &figures, clock.now())
                .await
                .unwrap();
        }
    };
    run(RunKind::Full, RunStatus::Ok, None).await;
    run(RunKind::Incremental, RunStatus::Ok, None).await;
    run(RunKind::Push, RunStatus::Ok, None).await;
    let mut watermark = clock.now() - chrono::Duration::hours(1);
    match sick {
        Sick::LastPullFailed => run(RunKind::Incremental, RunStatus::Failed, Some("boom")).await,
        Sick::WatermarkSixDaysOld => watermark = clock.now() - chrono::Duration::days(6),
        Sick::EndpointLocked => QuotaScheduler::new(&store, Limits::documented())
            .report_throttled(Endpoint::ListUsers, None, "429 from Cliq")
            .await
            .unwrap(),
        Sick::PushHeld => run(RunKind::Push, RunStatus::Held, Some("too many changes")).await,
        Sick::FullPullHeld => run(RunKind::Full, RunStatus::Held, Some("900 removals")).await,
        Sick::None | Sick::HrSourceInvalid => {}
    }
    store.set_watermark(watermark, clock.now()).await.unwrap();
    store.close().await;
    let hr = dir.join("hr.csv");
    let csv = match sick {
        Sick::HrSourceInvalid => "email_id,departmnet\na@example.com,Sales\n",
        _ => "email_id,department\na@example.com,Sales\n",
    };
    std::fs::write(&hr, csv).unwrap();
    let config = dir.join("cliq-sync.toml");
    std::fs::write(
        &config,
        format!(
            "[mirror]\npath = \"{}\"\n[hr]\nsource = \"{}\"\n",
            db.display(),
            hr.display()
        ),
    )
    .unwrap();
    config
}

/// `status --check` exits 0 on a healthy mirror and 1 with the reason
/// printed for each unhealthy condition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_check_exits_1_naming_each_unhealthy_reason() {
    let table = [
        (Sick::None, 0, "healthy"),
        (Sick::LastPullFailed, 1, "the last pull failed"),
        (Sick::WatermarkSixDaysOld, 1, "near 7 days"),
        (Sick::EndpointLocked, 1, "list_users is locked"),
        (Sick::PushHeld, 1, "the last push is held"),
        (Sick::FullPullHeld, 1, "the last full pull is held"),
        (Sick::HrSourceInvalid, 1, "the HR source is invalid"),
    ];
    let mut wrong = Vec::new();
    for (sick, code, says) in table {
        let dir = tempfile::tempdir().unwrap();
        let config = mirror_for_check(dir.path(), sick).await;
        let out = Command::new(env!("CARGO_BIN_EXE_cliq-sync"))
            .arg("--config")
            .arg(&config)
            .args(["status", "--check"])
            .env("RUST_LOG", "warn")
            .output()
            .await
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.code() != Some(code) || !text.contains(says) {
            wrong.push(format!(
                "{sick:?}: exit {:?}, output: {text}",
                out.status.code()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n---\n"));
}

/// Every command that prints JSON prints one document with a top-level
/// `"schema_version": 1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_json_document_has_schema_version_1() {
    let hr_dir = tempfile::tempdir().unwrap();
    let hr = hr_dir.path().join("hr.csv");
    let ts = tcp_sim(
        50,
        Duration::ZERO,
        &format!(
            "[sync]\nteams = \"off\"\n[hr]\nsource = \"{}\"\n",
            hr.display()
        ),
    )
    .await;
    std::fs::write(&hr, changes_csv(&ts.sim.users(), 5, "Desk")).unwrap();
    let commands: [(&[&str], bool); 7] = [
        (&["sync", "--full", "--json"], false),
        (&["sync", "--json"], false),
        (&["plan", "--json"], false),
        (&["push", "--dry-run", "--json"], false),
        (&["push", "--json"], true),
        (&["status", "--json"], false),
        (&["status", "--check", "--json"], false),
    ];
    let mut wrong = Vec::new();
    for (args, enabled) in commands {
        let mut c = ts.cli(args);
        if enabled {
            c.env("CLIQ_SYNC__PUSH__ENABLED", "true");
        }
        let out = c.output().await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let doc: Result<serde_json::Value, _> = serde_json::from_str(&stdout);
        match doc {
            Ok(v) if v["schema_version"] == 1 && out.status.success() => {}
            other => wrong.push(format!(
                "{args:?}: exit {:?}, parsed {:?}, stdout: {stdout}, stderr: {}",
                out.status.code(),
                other.map(|v| v["schema_version"].clone()),
                String::from_utf8_lossy(&out.stderr)
            )),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n---\n"));
    assert_eq!(
        ts.requests(Endpoint::UpdateUser),
        5,
        "only `push --json` sends"
    );
    ts.shut().await;
}

/// `push --dry-run` and a push with `[push] enabled = false` say plainly
/// that nothing was sent, and the latter how to push once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_says_when_nothing_was_sent_and_how_to_push_once() {
    let hr_dir = tempfile::tempdir().unwrap();
    let hr = hr_dir.path().join("hr.csv");
    let ts = tcp_sim(
        50,
        Duration::ZERO,
        &format!(
            "[sync]\nteams = \"off\"\n[hr]\nsource = \"{}\"\n",
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
    std::fs::write(&hr, changes_csv(&ts.sim.users(), 5, "Desk")).unwrap();
    let stdout = |o: std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let mut dry = ts.cli(&["push", "--dry-run"]);
    dry.env("CLIQ_SYNC__PUSH__ENABLED", "true");
    let dry = stdout(dry.output().await.unwrap());
    let disabled = stdout(ts.cli(&["push"]).output().await.unwrap());
    assert_eq!(ts.requests(Endpoint::UpdateUser), 0);
    assert!(dry.contains("dry run: nothing was sent to Cliq"), "{dry}");
    assert!(
        disabled.contains("push is disabled ([push] enabled = false): this was a plan only")
            && disabled.contains("To push once: CLIQ_SYNC__PUSH__ENABLED=true cliq-sync push"),
        "{disabled}"
    );
    ts.shut().await;
}

fn check_config(ts: &TcpSim, extra: &[&str]) -> Command {
    let mut args = vec!["check-config"];
    args.extend_from_slice(extra);
    ts.cli(&args)
}

/// `check-config` prints valid TOML, secrets masked as "***", with the
/// effective quota of every endpoint under `[limits]`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_prints_valid_toml_with_masked_secrets_and_every_quota() {
    let ts = tcp_sim(10, Duration::ZERO, "").await;
    let out = check_config(&ts, &[]).output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = cliq_sync::sim::SimConfig::default();
    assert!(!text.contains(&cfg.client_secret) && !text.contains(&cfg.refresh_token));
    let doc: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(doc["cliq"]["client_secret"].as_str(), Some("***"), "{text}");
    assert_eq!(doc["cliq"]["refresh_token"].as_str(), Some("***"), "{text}");
    let limits = doc["limits"].as_table().expect("[limits]");
    for ep in Endpoint::ALL {
        let q = limits
            .get(ep.name())
            .and_then(|v| v.as_table())
            .unwrap_or_else(|| panic!("limits.{} missing:\n{text}", ep.name()));
        let effective = if ep == Endpoint::OauthToken {
            ep.documented_quota().requests
        } else {
            100_000
        };
        assert_eq!(
            q["requests"].as_integer(),
            Some(i64::from(effective)),
            "{}",
            ep.name()
        );
        assert!(
            q["per"].as_str().is_some() && q["lock"].as_str().is_some(),
            "{q:?}"
        );
    }
    ts.shut().await;
}

/// Without `--config`, `check-config` says that no file was loaded.
#[tokio::test]
async fn check_config_without_a_file_says_so() {
    let out = Command::new(env!("CARGO_BIN_EXE_cliq-sync"))
        .arg("check-config")
        .env_remove("CLIQ_SYNC_CONFIG")
        .env("CLIQ_SYNC__CLIQ__CLIENT_SECRET", "s3cr3t-value")
        .env("CLIQ_SYNC__CLIQ__REFRESH_TOKEN", "1000.r3fr3sh-value")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("no config file loaded (defaults and CLIQ_SYNC__ variables only)"),
        "{text}"
    );
    assert!(
        !text.contains("s3cr3t") && !text.contains("r3fr3sh"),
        "{text}"
    );
    toml::from_str::<toml::Table>(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));

    // Without a file and without the secrets, the refusal says too that no
    // file was read (the operator may have forgotten --config).
    let out = Command::new(env!("CARGO_BIN_EXE_cliq-sync"))
        .arg("check-config")
        .env_remove("CLIQ_SYNC_CONFIG")
        .env_remove("CLIQ_SYNC__CLIQ__CLIENT_SECRET")
        .env_remove("CLIQ_SYNC__CLIQ__REFRESH_TOKEN")
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no config file was loaded"), "{err}");
    assert!(err.contains("cliq.client_secret"), "{err}");
}

/// `check-config --online` mints a token and lists one user; with a token
/// that lacks `ZohoCliq.Users.READ` it says so plainly (exit 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_online_mints_a_token_lists_one_user_and_names_a_missing_scope() {
    let ts = tcp_sim(10, Duration::ZERO, "").await;
    let out = check_config(&ts, &["--online"]).output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("an access token was minted"), "{text}");
    assert!(text.contains("listed 1 user"), "{text}");
    let listings: Vec<_> = ts
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == Some(Endpoint::ListUsers))
        .collect();
    assert_eq!(listings.len(), 1, "{listings:?}");
    assert!(listings[0].query.contains("limit=1"), "{listings:?}");

    ts.sim
        .set_granted_scopes(&["ZohoCliq.Users.CREATE", "ZohoCliq.Users.UPDATE"]);
    // A grant with other scopes comes with a new refresh token, whose
    // fingerprint the shared token cache (`<mirror>.token`) would not
    // match; the simulator keeps the old refresh token, so drop the cache
    // as that mismatch would.
    let mut cache = ts.db.clone().into_os_string();
    cache.push(".token");
    std::fs::remove_file(&cache).unwrap();
    let out = check_config(&ts, &["--online"]).output().await.unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("the token lacks the scope ZohoCliq.Users.READ"),
        "{text}"
    );
    ts.shut().await;
}
