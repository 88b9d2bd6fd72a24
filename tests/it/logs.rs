//! Logs for machines and people (issue 11, point 3): colour only on a
//! terminal, flat JSON objects, one spelling of run kinds and durations,
//! the daemon's startup line, a line for every wait, and skipped or
//! coalesced ticks at debug.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cliq_sync::cliq::quotas::{Limits, QuotaScheduler};
use cliq_sync::cliq::Endpoint;
use cliq_sync::clock::Clock;
use cliq_sync::daemon::{Daemon, DaemonState};
use cliq_sync::mirror::Store;
use cliq_sync::sync::push::{push, PushOptions};
use cliq_sync::sync::{pull_with, PullKind, PullOptions, TeamsMode};
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::crash::tcp_sim;
use crate::helpers::{base_time, spawn_app, Opts};

/// Every event of this thread's tracing, as JSON objects (the in-process
/// tests run on tokio's current-thread runtime, so a thread default sees
/// every task).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

struct CapturedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = CapturedWriter;
    fn make_writer(&'a self) -> Self::Writer {
        CapturedWriter(self.0.clone())
    }
}

impl Captured {
    fn start() -> (Self, tracing::subscriber::DefaultGuard) {
        let c = Captured::default();
        let sub = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(c.clone())
            .finish();
        (c.clone(), crate::helpers::set_capture(sub))
    }

    fn events(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn with_message(&self, part: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["message"].as_str().unwrap_or("").contains(part))
            .collect()
    }
}

fn binary() -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_cliq-sync"));
    c.env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .env_remove("CLIQ_SYNC__LOG__FORMAT")
        .kill_on_drop(true);
    c
}

/// The journal (a pipe) gets no escape codes; a terminal gets colour
/// unless `NO_COLOR` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colour_only_on_a_terminal_and_no_color_is_honoured() {
    let ts = tcp_sim(300, Duration::ZERO, "[sync]\nteams = \"off\"").await;
    let out = binary()
        .arg("--config")
        .arg(&ts.config)
        .args(["sync", "--full"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let piped = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(piped.contains("pull finished"), "{piped}");
    let escapes = piped.bytes().filter(|b| *b == 0x1b).count();
    assert_eq!(escapes, 0, "ESC bytes in piped stderr: {piped:?}");

    // On a pty (script(1) gives the command a terminal): colour, unless NO_COLOR.
    let on_tty = |no_color: bool| {
        let cmd = format!(
            "{} --config {} sync --full",
            env!("CARGO_BIN_EXE_cliq-sync"),
            ts.config.display()
        );
        let mut c = tokio::process::Command::new("script");
        c.args(["-q", "-e", "-c", &cmd, "/dev/null"])
            .env_remove("NO_COLOR")
            .env_remove("RUST_LOG")
            .kill_on_drop(true);
        if no_color {
            c.env("NO_COLOR", "1");
        }
        c
    };
    let tty = on_tty(false).output().await.unwrap();
    assert!(tty.status.success(), "{tty:?}");
    let tty_text = String::from_utf8_lossy(&tty.stdout).into_owned();
    assert!(tty_text.contains("pull finished"), "{tty_text}");
    assert!(has_sgr(&tty_text), "no colour on a terminal: {tty_text:?}");
    let plain = on_tty(true).output().await.unwrap();
    let plain_text = String::from_utf8_lossy(&plain.stdout).into_owned();
    assert!(plain_text.contains("pull finished"), "{plain_text}");
    // The live bar still moves the cursor (ESC [1A, ESC [2K): NO_COLOR is
    // about colour, so only colour sequences (SGR, ESC [ … m) must be gone.
    assert!(!has_sgr(&plain_text), "NO_COLOR=1 ignored: {plain_text:?}");
    ts.shut().await;
}

/// `[log] format = "json"`: one flat object per line, fields at the top
/// level, no span lists; events inside the request span too (the retries
/// of answers the simulator fails).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_flat_object_per_line() {
    let ts = tcp_sim(1200, Duration::ZERO, "[sync]\nteams = \"off\"").await;
    ts.sim.set_faults(cliq_sync::sim::Faults {
        error_5xx_rate: 0.3,
        ..cliq_sync::sim::Faults::default()
    });
    let out = binary()
        .arg("--config")
        .arg(&ts.config)
        .args(["sync", "--full"])
        .env("CLIQ_SYNC__LOG__FORMAT", "json")
        .env("RUST_LOG", "info,cliq_sync=debug")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let mut events = Vec::new();
    for line in stderr.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line:?}"));
        let o = v
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {line}"));
        for key in ["timestamp", "level", "message", "target"] {
            assert!(o.contains_key(key), "no top-level {key:?}: {line}");
        }
        for nested in ["fields", "span", "spans"] {
            assert!(!o.contains_key(nested), "{nested:?} in {line}");
        }
        events.push(v);
    }
    let finished = events
        .iter()
        .find(|e| e["message"] == "pull finished")
        .unwrap_or_else(|| panic!("no pull finished: {stderr}"));
    assert_eq!(finished["kind"], "full", "{finished}");
    assert!(finished["elapsed_ms"].is_u64(), "{finished}");
    assert!(finished["seen"].is_u64(), "{finished}");
    // An event logged inside the `cliq_request` span is flat too.
    assert!(
        events
            .iter()
            .any(|e| e["message"] == "minted a Cliq access token" && e["expires_in_secs"].is_u64()),
        "no event from inside a request span: {stderr}"
    );
    ts.shut().await;
}

/// Run kinds are logged in their db spelling, and pull and push both log
/// `elapsed_ms`.
#[tokio::test(start_paused = true)]
async fn pull_and_push_log_kind_in_lowercase_and_elapsed_ms() {
    let (logs, _guard) = Captured::start();
    let t = spawn_app(Opts {
        users: 50,
        ..Opts::default()
    })
    .await;
    let o = PullOptions {
        teams: TeamsMode::Off,
        layouts: false,
        ..PullOptions::default()
    };
    let cancel = CancellationToken::new();
    pull_with(&t.app, PullKind::Full, &o, &cancel)
        .await
        .unwrap();
    pull_with(&t.app, PullKind::Incremental, &o, &cancel)
        .await
        .unwrap();
    let user = t.sim.users()[0]["email_id"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hr.csv");
    std::fs::write(&path, format!("email_id,employee_id\n{user},E-LOG-1\n")).unwrap();
    let hr = cliq_sync::hr::load(&path).await.unwrap();
    let mut po = PushOptions::from_settings(&t.app.settings, false, false).unwrap();
    po.enabled = true;
    let limits = t.app.scheduler.limits().clone();
    let out = push(&t.app.store, &t.app.client, &limits, &hr, &po, &cancel)
        .await
        .unwrap();
    assert_eq!(out.report.updates_applied, 1, "{:?}", out.report);

    let pulls = logs.with_message("pull finished");
    let kinds: Vec<&Value> = pulls.iter().map(|e| &e["kind"]).collect();
    assert_eq!(kinds, ["full", "incremental"], "{pulls:?}");
    assert!(pulls.iter().all(|e| e["elapsed_ms"].is_u64()), "{pulls:?}");
    let pushes = logs.with_message("push finished");
    assert_eq!(pushes.len(), 1, "{:?}", logs.events());
    assert_eq!(pushes[0]["kind"], "push", "{}", pushes[0]);
    assert!(pushes[0]["elapsed_ms"].is_u64(), "{}", pushes[0]);
    for e in logs.events() {
        let line = e.to_string();
        for debug_spelling in ["\"Full\"", "\"Incremental\"", "\"Push\""] {
            assert!(!line.contains(debug_spelling), "{line}");
        }
    }
}

/// Grep-style guard: no tracing field in the source logs a run kind with
/// `?` (its Debug spelling `Full`), and no duration field other than
/// `elapsed_ms` names a pull or push's elapsed time.
#[test]
fn no_log_field_uses_debug_spellings_of_run_kinds() {
    let mut offenders = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let l = line.replace(' ', "");
                let bad = ["kind=?", "job=?", "?kind,", "?job,", "elapsed_s="]
                    .iter()
                    .any(|p| l.contains(p));
                if bad {
                    offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}

/// The real daemon's first line says what it runs with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_logs_a_startup_line() {
    use tokio::io::AsyncBufReadExt;
    let ts = tcp_sim(100, Duration::ZERO, "[server]\nlisten = \"127.0.0.1:0\"").await;
    let mut child = binary()
        .arg("--config")
        .arg(&ts.config)
        .arg("run")
        .env("CLIQ_SYNC__LOG__FORMAT", "json")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push(line.clone());
            let v: Value = serde_json::from_str(&line).unwrap_or_default();
            if v["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("cliq-sync ")
            {
                return Some(v);
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    child.start_kill().unwrap();
    let _ = child.wait().await;
    let v = found.unwrap_or_else(|| panic!("no startup line in {seen:#?}"));
    let msg = v["message"].as_str().unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"), "{v}");
    assert_eq!(v["config_file"], ts.config.display().to_string(), "{v}");
    assert_eq!(v["mirror"], ts.db.display().to_string(), "{v}");
    assert_eq!(v["push_enabled"], false, "{v}");
    for key in ["next_incremental", "next_full", "next_push"] {
        let at = v[key].as_str().unwrap_or_else(|| panic!("no {key}: {v}"));
        assert!(at.ends_with('Z') && at.len() == 20, "{key} = {at}");
    }
    for part in [
        env!("CARGO_PKG_VERSION"),
        &ts.config.display().to_string(),
        &ts.db.display().to_string(),
        "incremental pull at ",
        "full pull at ",
        "push at ",
        "push disabled",
    ] {
        assert!(msg.contains(part), "{part:?} not in {msg:?}");
    }
    ts.shut().await;
}

/// A caller that waits for a quota window, a token-mint window or Cliq's
/// lock says so once, with what it waits for and how long.
#[tokio::test(start_paused = true)]
async fn every_wait_is_logged_with_its_reason_and_length() {
    let (logs, _guard) = Captured::start();
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::anchored(base_time());
    let store = Store::open(&dir.path().join("mirror.db"), &clock)
        .await
        .unwrap();
    let sched = QuotaScheduler::new(&store, Limits::documented());
    for _ in 0..31 {
        sched.acquire(Endpoint::ListUsers).await.unwrap();
    }
    for _ in 0..11 {
        sched.acquire(Endpoint::OauthToken).await.unwrap();
    }
    sched
        .report_throttled(Endpoint::GetUser, None, "test lock")
        .await
        .unwrap();
    sched.acquire(Endpoint::GetUser).await.unwrap();

    let waits = logs.with_message("waiting ");
    let by =
        |reason: &str| -> Vec<&Value> { waits.iter().filter(|e| e["reason"] == reason).collect() };
    let quota = by("quota");
    assert_eq!(quota.len(), 1, "{waits:#?}");
    assert_eq!(quota[0]["endpoint"], "list_users");
    assert_eq!(quota[0]["level"], "INFO");
    let ms = quota[0]["wait_ms"].as_u64().unwrap();
    assert!((59_000..=60_500).contains(&ms), "{}", quota[0]);
    let msg = quota[0]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("waiting ") && msg.ends_with("s for a list_users quota window"),
        "{msg}"
    );
    let mint = by("token_mint");
    assert_eq!(mint.len(), 1, "{waits:#?}");
    assert_eq!(mint[0]["endpoint"], "oauth_token");
    assert!(
        mint[0]["wait_ms"].as_u64().unwrap() >= 590_000,
        "{}",
        mint[0]
    );
    assert!(
        mint[0]["message"]
            .as_str()
            .unwrap()
            .contains("token-mint window"),
        "{}",
        mint[0]
    );
    let lock = by("lock");
    assert_eq!(lock.len(), 1, "{waits:#?}");
    assert_eq!(lock[0]["endpoint"], "get_user");
    assert_eq!(lock[0]["level"], "WARN");
    assert!(
        lock[0]["wait_ms"].as_u64().unwrap() >= 599_000,
        "{}",
        lock[0]
    );
    assert!(
        lock[0]["message"]
            .as_str()
            .unwrap()
            .contains("lock on get_user"),
        "{}",
        lock[0]
    );
    drop(sched);
    store.close().await;
}

/// A long run makes the daemon miss ticks: they are logged at debug, as
/// skipped (during the first pull) or coalesced (into the next run).
#[tokio::test(start_paused = true)]
async fn skipped_and_coalesced_ticks_are_logged_at_debug() {
    let (logs, _guard) = Captured::start();
    let t = spawn_app(Opts {
        // Three pages of 100: the first (full) pull spans two 5-minute waits.
        users: 250,
        settings: Box::new(|s| {
            s.sync.teams = cliq_sync::config::TeamsMode::Off;
            s.schedule.incremental = "0 * * * * *".into();
            // One listing per 5 minutes: every pull outlasts several ticks.
            s.limits.list_users = Some(cliq_sync::config::LimitOverride {
                requests: Some(1),
                per: Some(Duration::from_secs(300)),
                lock: None,
            });
        }),
        ..Opts::default()
    })
    .await;
    let state = Arc::new(DaemonState::default());
    let daemon = Daemon::new(t.app.clone(), state).unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(daemon.run(shutdown.clone(), Arc::new(Notify::new())));
    tokio::time::sleep(Duration::from_secs(30 * 60)).await;
    shutdown.cancel();
    task.await.unwrap();

    let missed: Vec<Value> = logs
        .events()
        .into_iter()
        .filter(|e| e["job"] == "incremental" && e["level"] == "DEBUG")
        .collect();
    let skipped: Vec<&Value> = missed
        .iter()
        .filter(|e| e["message"].as_str().unwrap().contains("skipped"))
        .collect();
    let coalesced: Vec<&Value> = missed
        .iter()
        .filter(|e| e["message"].as_str().unwrap().contains("coalesced"))
        .collect();
    assert!(!skipped.is_empty(), "{missed:#?}");
    assert!(!coalesced.is_empty(), "{missed:#?}");
    assert!(
        coalesced.iter().all(|e| e["ticks"].as_u64().unwrap() >= 2),
        "{coalesced:#?}"
    );
}

/// Whether `text` has an ANSI colour sequence (SGR: ESC [ digits and ; then m).
fn has_sgr(text: &str) -> bool {
    text.split('\u{1b}').skip(1).any(|rest| {
        rest.strip_prefix('[').is_some_and(|r| {
            let params = r.trim_start_matches(|c: char| c.is_ascii_digit() || c == ';');
            params.starts_with('m')
        })
    })
}
