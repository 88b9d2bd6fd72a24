//! Issue 12, point 2: notifications, caught by local receivers. An axum
//! receiver on a loopback port records every POST (in real time, as
//! `client::over_real_http`: sockets and paused time do not mix); the
//! daemon's events are checked in paused time through a capturing target
//! (`daemon_events` below).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use cliq_sync::clock::Clock;
use cliq_sync::config::{NotifySettings, Settings};
use cliq_sync::notify::{Event, Incident, Notifier};
use secrecy::SecretString;

use crate::helpers::Logs;

/// What the receiver got: (path, JSON body), and the status it answers.
#[derive(Clone)]
struct Receiver {
    got: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
    status: u16,
}

async fn record(
    State(r): State<Receiver>,
    uri: http::Uri,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> http::StatusCode {
    r.got.lock().unwrap().push((uri.path().to_owned(), body));
    http::StatusCode::from_u16(r.status).unwrap()
}

/// A receiver on 127.0.0.1 answering `status`; its base URL.
async fn receiver(status: u16) -> (Receiver, String) {
    let r = Receiver {
        got: Arc::default(),
        status,
    };
    let app = axum::Router::new()
        .route("/{*path}", post(record))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, url)
}

fn target(kind: &str, url: String) -> NotifySettings {
    NotifySettings {
        kind: kind.into(),
        url: Some(SecretString::from(url)),
        ..NotifySettings::default()
    }
}

fn notifier(targets: Vec<NotifySettings>) -> Notifier {
    let s = Settings {
        notify: targets,
        ..Settings::default()
    };
    Notifier::from_settings(&s, Clock::system()).unwrap()
}

fn held() -> Incident {
    Incident::new(
        Event::PushHeld,
        "push held: 120 changes exceed [push] max_changes_per_run (100); run `cliq-sync approve`",
    )
    .with_run(Some(42))
}

impl Receiver {
    fn bodies(&self) -> Vec<(String, serde_json::Value)> {
        self.got.lock().unwrap().clone()
    }
}

/// A held push: one POST per target with the fields; the same incident
/// again: nothing; the push going through: one `recovered` POST.
#[tokio::test]
async fn a_held_push_is_one_post_then_one_recovery() {
    let (r, base) = receiver(200).await;
    let n = notifier(vec![
        target("webhook", format!("{base}/hook")),
        target("slack", format!("{base}/slack")),
        target("cliq", format!("{base}/cliq")),
    ]);
    n.raise(held());
    n.flush().await;
    let got = r.bodies();
    assert_eq!(got.len(), 3, "{got:?}");
    let (path, hook) = &got[0];
    assert_eq!(path, "/hook");
    assert_eq!(hook["event"], "push_held");
    assert_eq!(hook["severity"], "warning");
    assert_eq!(hook["run_id"], 42);
    assert!(hook["summary"]
        .as_str()
        .unwrap()
        .contains("max_changes_per_run"));
    let at = hook["at"].as_str().unwrap();
    chrono::DateTime::parse_from_rfc3339(at).unwrap_or_else(|e| panic!("{at}: {e}"));
    for (path, chat) in &got[1..] {
        let text = chat["text"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: {chat}"));
        assert!(
            text.contains("push_held") && text.contains("run 42"),
            "{text}"
        );
        assert_eq!(
            chat.as_object().unwrap().len(),
            1,
            "{path}: only text: {chat}"
        );
    }
    // The next push tick holds the same plan: the same incident.
    n.raise(held());
    n.raise(held());
    n.flush().await;
    assert_eq!(r.bodies().len(), 3, "a repeated incident is not sent again");
    n.clear("push_held", "the push went through: 120 changes applied");
    n.flush().await;
    let got = r.bodies();
    assert_eq!(got.len(), 6, "{got:?}");
    assert_eq!(got[3].1["event"], "recovered");
    assert_eq!(got[3].1["incident"], "push_held");
    assert!(got[4].1["text"].as_str().unwrap().contains("recovered"));
}

/// A receiver that answers 500, one that is down and one that never
/// answers: each is logged (without the URL), raising never waits, and
/// the working target still gets its message.
#[tokio::test]
async fn a_failing_receiver_is_logged_and_blocks_nothing() {
    let logs = Logs::default();
    let _guard = logs.capture("cliq_sync=info");
    let (bad, bad_url) = receiver(500).await;
    let (good, good_url) = receiver(200).await;
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook?token=SECRETTOKEN", l.local_addr().unwrap())
    };
    // Accepts and then says nothing: the send times out (10s).
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}/hook", silent.local_addr().unwrap());
    let n = notifier(vec![
        target("webhook", format!("{bad_url}/hook")),
        target("webhook", down),
        target("webhook", format!("{good_url}/hook")),
    ]);
    let started = Instant::now();
    n.raise(held());
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "raise waited"
    );
    n.flush().await;
    assert_eq!(bad.bodies().len(), 1, "the 500 receiver was tried");
    assert_eq!(good.bodies().len(), 1, "the working receiver still got it");
    let text = logs.text();
    assert!(text.contains("HTTP 500"), "{text}");
    assert!(text.contains("notify[1] (webhook)"), "{text}");
    assert!(!text.contains("SECRETTOKEN"), "the URL is a secret: {text}");
    // A silent target: raising still returns at once, many times over
    // (the queue drops, never waits).
    let slow = notifier(vec![target("webhook", silent_url)]);
    let started = Instant::now();
    for i in 0..200 {
        slow.raise(held().with_key(format!("k{i}")));
    }
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "raise waited on a silent target"
    );
    assert!(
        logs.text().contains("notification dropped"),
        "{}",
        logs.text()
    );
    drop(silent);
}

/// One SMTP session as the peer saw it: the commands and the message.
#[derive(Debug, Default, Clone)]
struct Mail {
    commands: Vec<String>,
    data: String,
}

/// A minimal SMTP peer on 127.0.0.1 (plain, no TLS): 220, EHLO → 250,
/// MAIL/RCPT → 250, DATA → 354 … `.` → 250, QUIT → 221. Its port and
/// what it received.
async fn smtp_peer() -> (u16, Arc<Mutex<Vec<Mail>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got: Arc<Mutex<Vec<Mail>>> = Arc::default();
    let sessions = got.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let (r, mut w) = sock.into_split();
            let mut lines = BufReader::new(r).lines();
            let mut mail = Mail::default();
            w.write_all(b"220 peer.test ESMTP\r\n").await.unwrap();
            while let Ok(Some(line)) = lines.next_line().await {
                let verb = line.split(' ').next().unwrap_or("").to_uppercase();
                mail.commands.push(line.clone());
                let answer: &[u8] = match verb.as_str() {
                    "EHLO" | "HELO" => b"250 peer.test\r\n",
                    "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
                    "DATA" => {
                        w.write_all(b"354 go ahead\r\n").await.unwrap();
                        while let Ok(Some(l)) = lines.next_line().await {
                            if l == "." {
                                break;
                            }
                            mail.data.push_str(&l);
                            mail.data.push('\n');
                        }
                        b"250 queued\r\n"
                    }
                    "QUIT" => {
                        w.write_all(b"221 bye\r\n").await.unwrap();
                        break;
                    }
                    _ => b"502 not implemented\r\n",
                };
                w.write_all(answer).await.unwrap();
            }
            sessions.lock().unwrap().push(mail);
        }
    });
    (port, got)
}

fn email_target(port: u16) -> NotifySettings {
    NotifySettings {
        kind: "email".into(),
        smtp_url: Some(format!("smtp://127.0.0.1:{port}")),
        from: Some("cliq-sync <cliq-sync@example.com>".into()),
        to: Some(vec!["ops@example.com".into(), "hr-it@example.com".into()]),
        ..NotifySettings::default()
    }
}

/// A held push: one e-mail to both recipients with the incident in its
/// subject and body; the same incident again: none; recovery: one more.
#[tokio::test]
async fn a_held_push_is_one_email_then_one_recovery() {
    let (port, got) = smtp_peer().await;
    let n = notifier(vec![email_target(port)]);
    n.raise(held());
    n.raise(held());
    n.flush().await;
    let mails = got.lock().unwrap().clone();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let m = &mails[0];
    let rcpts: Vec<_> = m
        .commands
        .iter()
        .filter(|c| c.starts_with("RCPT"))
        .collect();
    assert_eq!(rcpts.len(), 2, "{m:?}");
    assert!(
        m.commands
            .iter()
            .any(|c| c.starts_with("MAIL FROM:<cliq-sync@example.com>")),
        "{m:?}"
    );
    assert!(
        m.data.contains("Subject: [cliq-sync] WARNING push_held"),
        "{}",
        m.data
    );
    assert!(
        m.data.contains("max_changes_per_run") && m.data.contains("run_id:   42"),
        "{}",
        m.data
    );
    n.clear("push_held", "the push went through");
    n.flush().await;
    let mails = got.lock().unwrap().clone();
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(mails[1].data.contains("recovered"), "{}", mails[1].data);
}

/// No SMTP server: logged, the next target still served.
#[tokio::test]
async fn an_unreachable_smtp_server_is_logged() {
    let logs = Logs::default();
    let _guard = logs.capture("cliq_sync=info");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (r, base) = receiver(200).await;
    let n = notifier(vec![
        email_target(port),
        target("webhook", format!("{base}/hook")),
    ]);
    n.raise(held());
    n.flush().await;
    assert_eq!(r.bodies().len(), 1);
    let text = logs.text();
    assert!(
        text.contains("notify[0] (email)") && text.contains("e-mail:"),
        "{text}"
    );
}

/// `smtp_url`: smtp:// (STARTTLS, plain only to loopback) or smtps://,
/// never with credentials in it.
#[test]
fn smtp_urls_are_checked() {
    use cliq_sync::config::check_smtp_url;
    assert!(check_smtp_url("smtp://mail.example.com:587").is_ok());
    assert!(check_smtp_url("smtps://mail.example.com").is_ok());
    assert!(check_smtp_url("smtp://user:pw@mail.example.com").is_err());
    assert!(check_smtp_url("http://mail.example.com").is_err());
}

/// The daemon's events, in paused time, through a capturing target.
mod daemon_events {
    use std::sync::Arc;
    use std::time::Duration;

    use cliq_sync::cliq::Endpoint;
    use cliq_sync::daemon::{Daemon, DaemonState};
    use cliq_sync::notify::{Event, Message, Notifier};
    use cliq_sync::sim::Faults;
    use tokio::sync::mpsc::UnboundedReceiver;
    use tokio::sync::Notify;
    use tokio_util::sync::CancellationToken;

    use crate::held::daemon_app;
    use crate::helpers::{spawn_app, Opts, TestApp};
    use crate::trust::{changes_csv, s};

    struct Running {
        shutdown: CancellationToken,
        notifier: Notifier,
        rx: UnboundedReceiver<Message>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Running {
        /// Every message sent so far: (event, incident key, run_id).
        async fn drain(&mut self) -> Vec<(Event, String, Option<i64>)> {
            self.notifier.flush().await;
            std::iter::from_fn(|| self.rx.try_recv().ok())
                .map(|m| (m.event, m.incident, m.run_id))
                .collect()
        }

        async fn stop(self) {
            self.shutdown.cancel();
            self.task.await.unwrap();
        }
    }

    fn start(t: &TestApp) -> Running {
        let (notifier, rx) = Notifier::capture(t.clock.clone());
        let daemon = Daemon::new(t.app.clone(), Arc::new(DaemonState::default()))
            .unwrap()
            .with_notifier(notifier.clone());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(daemon.run(shutdown.clone(), Arc::new(Notify::new())));
        Running {
            shutdown,
            notifier,
            rx,
            task,
        }
    }

    const MIN: Duration = Duration::from_secs(60);

    /// Four push ticks hold the same plan: one `push_held` with its run;
    /// a smaller plan goes through: one `recovered`.
    #[tokio::test(start_paused = true)]
    async fn a_held_push_is_notified_once_then_its_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let hr = dir.path().join("hr.csv");
        let t = daemon_app(&hr, 4).await;
        let users = t.sim.users();
        std::fs::write(&hr, changes_csv(&users, 5, "Desk")).unwrap();
        let mut d = start(&t);
        tokio::time::sleep(61 * MIN).await;
        let got = d.drain().await;
        assert_eq!(got.len(), 1, "one message for four held ticks: {got:?}");
        assert_eq!(got[0].0, Event::PushHeld);
        assert!(got[0].2.is_some(), "the held run is named: {got:?}");
        // The same five people, three of them changed: under the threshold.
        let mut csv = String::from("email_id,work_location\n");
        for (i, u) in users.iter().take(5).enumerate() {
            let loc = if i < 3 {
                format!("Desk {}", s(u, "id"))
            } else {
                s(u, "work_location")
            };
            // Quoted: a location may hold a comma ("Chennai, India").
            csv.push_str(&format!("{},\"{loc}\"\n", s(u, "email_id")));
        }
        std::fs::write(&hr, csv).unwrap();
        tokio::time::sleep(16 * MIN).await;
        let got = d.drain().await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(
            (got[0].0, got[0].1.as_str()),
            (Event::Recovered, "push_held")
        );
        d.stop().await;
    }

    /// An invalid HR file: one `hr_source_invalid` however many ticks;
    /// fixed: one `recovered`.
    #[tokio::test(start_paused = true)]
    async fn an_invalid_hr_source_is_notified_once_then_its_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let hr = dir.path().join("hr.csv");
        let t = daemon_app(&hr, 100).await;
        std::fs::write(&hr, "email_id,work_location\nnot-an-address,Desk\n").unwrap();
        let mut d = start(&t);
        tokio::time::sleep(46 * MIN).await;
        let got = d.drain().await;
        let events: Vec<_> = got.iter().map(|g| g.0).collect();
        assert_eq!(events, [Event::HrSourceInvalid], "{got:?}");
        std::fs::write(&hr, changes_csv(&t.sim.users(), 2, "Desk")).unwrap();
        tokio::time::sleep(16 * MIN).await;
        let got = d.drain().await;
        let events: Vec<_> = got.iter().map(|g| (g.0, g.1.clone())).collect();
        assert_eq!(
            events,
            [(Event::Recovered, "hr_source_invalid".into())],
            "{got:?}"
        );
        d.stop().await;
    }

    /// Pulls failing: nothing until `ready_max_pull_failures` (3) in a row,
    /// then one `pull_failing`; a pull that works: one `recovered`.
    #[tokio::test(start_paused = true)]
    async fn pulls_failing_three_times_in_a_row_are_one_message_then_recovery() {
        let t = spawn_app(Opts {
            settings: Box::new(|s| s.sync.teams = cliq_sync::config::TeamsMode::Off),
            ..Opts::default()
        })
        .await;
        t.sim.set_faults(Faults {
            error_5xx_rate: 1.0,
            ..Faults::default()
        });
        let mut d = start(&t);
        // The pull at start and at :05 fail: two in a row, not yet.
        tokio::time::sleep(7 * MIN).await;
        assert_eq!(d.drain().await, [], "under the threshold");
        tokio::time::sleep(20 * MIN).await;
        let got = d.drain().await;
        let events: Vec<_> = got.iter().map(|g| g.0).collect();
        assert_eq!(events, [Event::PullFailing], "{got:?}");
        t.sim.set_faults(Faults::default());
        tokio::time::sleep(6 * MIN).await;
        let got = d.drain().await;
        let events: Vec<_> = got.iter().map(|g| (g.0, g.1.clone())).collect();
        assert_eq!(
            events,
            [(Event::Recovered, "pull_failing".into())],
            "{got:?}"
        );
        d.stop().await;
    }

    /// Cliq locks the listing: one `endpoint_locked` naming it; once the
    /// lock has passed and a job ran, one `recovered`.
    #[tokio::test(start_paused = true)]
    async fn an_endpoint_lock_is_notified_then_its_end() {
        let t = spawn_app(Opts {
            settings: Box::new(|s| s.sync.teams = cliq_sync::config::TeamsMode::Off),
            ..Opts::default()
        })
        .await;
        t.sim.lock_endpoint(Endpoint::ListUsers);
        let mut d = start(&t);
        tokio::time::sleep(MIN).await;
        let got = d.drain().await;
        let keys: Vec<_> = got.iter().map(|g| (g.0, g.1.clone())).collect();
        assert_eq!(
            keys,
            [(Event::EndpointLocked, "endpoint_locked:list_users".into())],
            "{got:?}"
        );
        tokio::time::sleep(30 * MIN).await;
        let got = d.drain().await;
        let keys: Vec<_> = got.iter().map(|g| (g.0, g.1.clone())).collect();
        assert!(
            keys.contains(&(Event::Recovered, "endpoint_locked:list_users".into())),
            "{got:?}"
        );
        d.stop().await;
    }

    /// A refresh token Zoho refuses: the pulls fail on the token, one
    /// `token_failing` (and, after three, one `pull_failing`).
    #[tokio::test(start_paused = true)]
    async fn a_refused_refresh_token_is_token_failing_once() {
        let t = spawn_app(Opts {
            settings: Box::new(|s| {
                s.sync.teams = cliq_sync::config::TeamsMode::Off;
                s.cliq.refresh_token = Some("1000.revoked".to_owned().into());
            }),
            ..Opts::default()
        })
        .await;
        let mut d = start(&t);
        tokio::time::sleep(21 * MIN).await;
        let got = d.drain().await;
        let events: Vec<_> = got.iter().map(|g| g.0).collect();
        assert_eq!(events, [Event::TokenFailing, Event::PullFailing], "{got:?}");
        d.stop().await;
    }

    /// Cliq answers every write 500: one `push_failed` naming the run,
    /// however many ticks; the writes working again: one `recovered`.
    #[tokio::test(start_paused = true)]
    async fn failing_pushes_are_one_message_then_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let hr = dir.path().join("hr.csv");
        let t = daemon_app(&hr, 100).await;
        std::fs::write(&hr, changes_csv(&t.sim.users(), 3, "Desk")).unwrap();
        t.sim.set_faults(Faults {
            write_500_next: u32::MAX,
            ..Faults::default()
        });
        let mut d = start(&t);
        tokio::time::sleep(46 * MIN).await;
        let got = d.drain().await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, Event::PushFailed);
        assert!(got[0].2.is_some(), "the failed run is named: {got:?}");
        t.sim.set_faults(Faults::default());
        tokio::time::sleep(16 * MIN).await;
        let got = d.drain().await;
        let events: Vec<_> = got.iter().map(|g| (g.0, g.1.clone())).collect();
        assert!(
            events.contains(&(Event::Recovered, "push_failed".into())),
            "{got:?}"
        );
        d.stop().await;
    }
}
