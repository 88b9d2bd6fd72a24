//! Progress on long work (issue 11 point 1): the run's row moves during a
//! run, a progress log line at a steady cadence, `status` and `/metrics`
//! show the run in progress.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cliq_sync::daemon::DaemonState;
use cliq_sync::mirror::Store;
use cliq_sync::server::ServerState;
use cliq_sync::sync::{pull, PullKind, PullReport};
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::helpers::{spawn_app, Opts, TestApp};

/// 1,500 users at 10 per page: 150 listing requests, five minutes at the
/// documented 30 per minute (paused time, so a few real seconds).
async fn org() -> TestApp {
    spawn_app(Opts {
        users: 1_500,
        settings: Box::new(|s| {
            s.sync.teams = cliq_sync::config::TeamsMode::Off;
            s.cliq.page_size = 10;
        }),
        ..Opts::default()
    })
    .await
}

/// The org, mirrored once (so a full pull knows what to expect), and a
/// quota window later (so the next pull starts at once).
async fn mirrored_org() -> TestApp {
    let t = org().await;
    assert!(start_pull(&t).await.unwrap().ok());
    tokio::time::sleep(Duration::from_secs(60)).await;
    t
}

fn start_pull(t: &TestApp) -> tokio::task::JoinHandle<PullReport> {
    let app = t.app.clone();
    tokio::spawn(async move {
        pull(&app, PullKind::Full, &CancellationToken::new())
            .await
            .unwrap()
    })
}

/// One sample of the running run's row, read by another opener.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    status: String,
    pages: i64,
    users_seen: i64,
    requests: i64,
    expected_pages: Option<i64>,
    eta_at: Option<String>,
}

async fn sample(reader: &Store, run: i64) -> Sample {
    let _hold = reader.hold();
    let r = sqlx::query(
        "SELECT status, pages, users_seen, requests, expected_pages, eta_at
         FROM sync_runs WHERE id = ?",
    )
    .bind(run)
    .fetch_one(reader.pool())
    .await
    .unwrap();
    Sample {
        status: r.get("status"),
        pages: r.get("pages"),
        users_seen: r.get("users_seen"),
        requests: r.get("requests"),
        expected_pages: r.get("expected_pages"),
        eta_at: r.get("eta_at"),
    }
}

async fn last_run(reader: &Store) -> i64 {
    let _hold = reader.hold();
    sqlx::query_scalar("SELECT max(id) FROM sync_runs")
        .fetch_one(reader.pool())
        .await
        .unwrap()
}

/// Sample the newest run 30 s into the pull, then every 60 s until it ends:
/// mid-window, as the listing quota lets 30 pages through at each minute.
async fn watch_run(t: &TestApp, pull: tokio::task::JoinHandle<PullReport>) -> Vec<Sample> {
    let (reader, _) = Store::open_read_only(&t.app.settings.mirror.path, &t.clock)
        .await
        .unwrap();
    let mut samples = Vec::new();
    tokio::time::sleep(Duration::from_secs(30)).await;
    while !pull.is_finished() {
        let s = sample(&reader, last_run(&reader).await).await;
        if s.status == "running" {
            samples.push(s);
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    pull.await.unwrap();
    samples.push(sample(&reader, last_run(&reader).await).await);
    reader.close().await;
    samples
}

#[tokio::test(start_paused = true)]
async fn progress_rows_seen_moving_during_a_run() {
    // The mirror is filled first: the second pull knows what to expect.
    let t = mirrored_org().await;
    let samples = watch_run(&t, start_pull(&t)).await;
    let (running, last) = samples.split_at(samples.len() - 1);
    assert!(running.len() >= 4, "samples while running: {samples:#?}");
    for pair in running.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            b.pages > a.pages && b.users_seen > a.users_seen && b.requests > a.requests,
            "the row did not move between samples: {a:?} -> {b:?}"
        );
    }
    for s in running {
        assert_eq!(s.expected_pages, Some(150), "{s:?}");
        assert!(s.eta_at.is_some(), "no ETA while running: {s:?}");
    }
    let last = &last[0];
    assert_eq!(
        (last.status.as_str(), last.pages, last.users_seen),
        ("ok", 150, 1_500),
        "{last:?}"
    );
    assert!(last.requests >= 150, "{last:?}");
    assert_eq!(last.eta_at, None, "a finished run has no ETA: {last:?}");
}

/// Tracing output captured into a buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn field(line: &str, name: &str) -> Option<u64> {
    let rest = line.split(&format!("{name}=")).nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[tokio::test(start_paused = true)]
async fn a_progress_line_at_start_every_30_seconds_and_at_the_end() {
    let t = mirrored_org().await;
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    let report = {
        let _default = crate::helpers::set_capture(subscriber);
        pull(&t.app, PullKind::Full, &CancellationToken::new())
            .await
            .unwrap()
    };
    let text = out.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("full pull: page"))
        .collect();
    let elapsed = report.elapsed.as_millis() as u64;
    // Start, one per 30 s of a ~5-minute pull, and the end.
    let expected = 2 + elapsed / 30_000;
    assert!(
        (expected - 1..=expected + 1).contains(&(lines.len() as u64)),
        "{} progress lines for {elapsed} ms:\n{text}",
        lines.len()
    );
    let first = lines[0];
    assert!(first.contains("page 0/~150"), "{first}");
    assert!(first.contains("kind=full"), "{first}");
    let middle = lines[lines.len() / 2];
    assert!(middle.contains(" users"), "{middle}");
    assert!(middle.contains("ETA "), "{middle}");
    assert!(middle.contains("at 30 requests/min"), "{middle}");
    let last = lines[lines.len() - 1];
    assert!(last.contains("page 150/~150, 1,500 users"), "{last}");
    // A steady cadence: 30 s of tokio time between the periodic lines.
    let times: Vec<u64> = lines
        .iter()
        .filter_map(|l| field(l, "elapsed_ms"))
        .collect();
    assert_eq!(
        times.len(),
        lines.len(),
        "elapsed_ms on every line:\n{text}"
    );
    for pair in times[..times.len() - 1].windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            (29_000..=31_000).contains(&gap),
            "gap {gap} ms between progress lines:\n{text}"
        );
    }
}

async fn scrape(t: &TestApp) -> String {
    let state = ServerState {
        app: t.app.clone(),
        daemon: Arc::new(DaemonState::default()),
        max_pull_failures: 3,
    };
    cliq_sync::server::render(&state).await.unwrap()
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(start_paused = true)]
async fn metrics_show_the_run_in_progress_and_how_far_it_got() {
    let t = mirrored_org().await;
    let idle = scrape(&t).await;
    assert_eq!(
        metric(&idle, "cliq_sync_run_in_progress{kind=\"full\"}"),
        Some(0.0),
        "{idle}"
    );
    let running = start_pull(&t);
    tokio::time::sleep(Duration::from_secs(90)).await;
    let during = scrape(&t).await;
    assert_eq!(
        metric(&during, "cliq_sync_run_in_progress{kind=\"full\"}"),
        Some(1.0),
        "{during}"
    );
    assert_eq!(
        metric(&during, "cliq_sync_run_in_progress{kind=\"push\"}"),
        Some(0.0),
        "{during}"
    );
    let users = metric(&during, "cliq_sync_run_progress_users{kind=\"full\"}").unwrap_or(0.0);
    let requests = metric(&during, "cliq_sync_run_progress_requests{kind=\"full\"}").unwrap_or(0.0);
    let expected = metric(&during, "cliq_sync_run_expected_users{kind=\"full\"}");
    // 90 s in: two windows' worth (60 pages) and some of the third.
    assert!((600.0..1_500.0).contains(&users), "{during}");
    assert!((60.0..150.0).contains(&requests), "{during}");
    assert_eq!(expected, Some(1_500.0), "{during}");
    assert!(running.await.unwrap().ok());
    let after = scrape(&t).await;
    assert_eq!(
        metric(&after, "cliq_sync_run_in_progress{kind=\"full\"}"),
        Some(0.0),
        "{after}"
    );
}

#[tokio::test(start_paused = true)]
async fn status_shows_the_running_run_and_its_progress() {
    let t = mirrored_org().await;
    let running = start_pull(&t);
    tokio::time::sleep(Duration::from_secs(90)).await;
    let now = t.clock.now();
    let report = cliq_sync::status::collect(&t.app.store, &t.app.settings, now)
        .await
        .unwrap();
    let json = serde_json::to_value(&report).unwrap();
    let live = &json["in_progress"][0];
    assert_eq!(live["kind"], "full", "{json:#}");
    assert_eq!(live["expected_pages"], 150, "{json:#}");
    let pages = live["pages"].as_i64().unwrap();
    assert!((60..150).contains(&pages), "{json:#}");
    assert!(live["users_seen"].as_i64().unwrap() >= 600, "{json:#}");
    assert!(live["eta_at"].is_string(), "{json:#}");
    let text = report.to_text();
    let line = text
        .lines()
        .find(|l| l.contains("in progress"))
        .unwrap_or_else(|| panic!("no run in progress in:\n{text}"));
    assert!(line.contains("full pull"), "{line}");
    assert!(line.contains(&format!("page {pages}/~150")), "{line}");
    assert!(line.contains("ETA"), "{line}");
    assert!(running.await.unwrap().ok());
    let done = cliq_sync::status::collect(&t.app.store, &t.app.settings, t.clock.now())
        .await
        .unwrap();
    assert!(!done.to_text().contains("in progress"));
}

#[tokio::test(start_paused = true)]
async fn a_push_shows_its_progress_in_its_row() {
    use cliq_sync::sync::plan::PlanOptions;
    use cliq_sync::sync::push::{push, PushOptions};
    let t = mirrored_org().await;
    let emails: Vec<String> = {
        let _hold = t.app.store.hold();
        sqlx::query_scalar("SELECT email_id FROM users ORDER BY id LIMIT 60")
            .fetch_all(t.app.store.pool())
            .await
            .unwrap()
    };
    let mut csv = String::from("email_id,work_location\n");
    for e in &emails {
        csv.push_str(&format!("{e},Pier 42\n"));
    }
    let path = t._dir.path().join("hr.csv");
    std::fs::write(&path, csv).unwrap();
    let hr = cliq_sync::hr::load(&path).await.unwrap();
    let opts = PushOptions {
        plan: PlanOptions::default(),
        enabled: true,
        dry_run: false,
        force: false,
        max_changes_per_run: 10_000,
        max_source_drop: 0.2,
        on_threshold: Default::default(),
    };
    let (store, client) = (t.app.store.clone(), t.app.client.clone());
    let limits = t.app.scheduler.limits().clone();
    let pushing = tokio::spawn(async move {
        let cancel = CancellationToken::new();
        push(&store, &client, &limits, &hr, &opts, &cancel)
            .await
            .unwrap()
    });
    let (reader, _) = Store::open_read_only(&t.app.settings.mirror.path, &t.clock)
        .await
        .unwrap();
    // 60 updates at 20 a minute: three windows.
    let mut seen = Vec::new();
    tokio::time::sleep(Duration::from_secs(30)).await;
    while !pushing.is_finished() {
        let _hold = reader.hold();
        let row: (String, i64, Option<i64>, i64, Option<String>) = sqlx::query_as(
            "SELECT status, users_seen, expected_users, requests, eta_at FROM sync_runs
             WHERE kind = 'push'",
        )
        .fetch_one(reader.pool())
        .await
        .unwrap();
        drop(_hold);
        if row.0 == "running" {
            seen.push(row);
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    let out = pushing.await.unwrap();
    assert_eq!(
        (out.report.status.as_str(), out.report.updates_applied),
        ("ok", 60)
    );
    assert!(seen.len() >= 2, "{seen:?}");
    for pair in seen.windows(2) {
        assert!(pair[1].1 > pair[0].1 && pair[1].3 > pair[0].3, "{seen:?}");
    }
    for row in &seen {
        assert_eq!(row.2, Some(60), "{seen:?}");
        assert!(row.4.is_some() && row.1 < 60, "{seen:?}");
    }
    reader.close().await;
}

/// A terminal that records what is drawn on it.
#[derive(Debug, Clone, Default)]
struct Screen(Arc<Mutex<String>>);

impl indicatif::TermLike for Screen {
    fn width(&self) -> u16 {
        160
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.write_str(&format!("{s}\n"))
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.0.lock().unwrap().push_str(s);
        Ok(())
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn the_bar_follows_a_pull_on_a_terminal_and_is_off_elsewhere() {
    use cliq_sync::progress::LiveBar;
    let t = mirrored_org().await;
    // Under `cargo test` stderr is captured, never a terminal: no bar, and
    // never one under --json.
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        assert!(LiveBar::attach(&t.app.store, false).is_none());
    }
    assert!(LiveBar::attach(&t.app.store, true).is_none());
    let screen = Screen::default();
    let target = indicatif::ProgressDrawTarget::term_like_with_hz(Box::new(screen.clone()), 20);
    let bar = LiveBar::attach_to(&t.app.store, target);
    let running = start_pull(&t);
    tokio::time::sleep(Duration::from_secs(90)).await;
    let drawn = screen.0.lock().unwrap().clone();
    assert!(running.await.unwrap().ok());
    bar.finish();
    assert!(drawn.contains("full pull: page "), "{drawn}");
    assert!(drawn.contains("/~150, "), "{drawn}");
    assert!(
        drawn.contains('█') || drawn.contains('░'),
        "no bar drawn: {drawn}"
    );
}

/// Not a check, a measurement (run with `--ignored --nocapture`): the
/// real time of 10,000-user full pulls in paused time, to compare with and
/// without progress tracking (the page path must stay cheap).
#[tokio::test(start_paused = true)]
#[ignore]
async fn measure_a_10k_pull_in_paused_time() {
    let t = spawn_app(Opts {
        users: 10_000,
        settings: Box::new(|s| s.sync.teams = cliq_sync::config::TeamsMode::Off),
        ..Opts::default()
    })
    .await;
    for round in 0..4 {
        let real = std::time::Instant::now();
        let r = pull(&t.app, PullKind::Full, &CancellationToken::new())
            .await
            .unwrap();
        assert!(r.ok());
        println!("round {round}: {} ms real", real.elapsed().as_millis());
    }
}
