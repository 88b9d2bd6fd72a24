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
    let mut s = Settings::default();
    s.notify = targets;
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
    assert!(hook["summary"].as_str().unwrap().contains("max_changes_per_run"));
    let at = hook["at"].as_str().unwrap();
    chrono::DateTime::parse_from_rfc3339(at).unwrap_or_else(|e| panic!("{at}: {e}"));
    for (path, chat) in &got[1..] {
        let text = chat["text"].as_str().unwrap_or_else(|| panic!("{path}: {chat}"));
        assert!(text.contains("push_held") && text.contains("run 42"), "{text}");
        assert_eq!(chat.as_object().unwrap().len(), 1, "{path}: only text: {chat}");
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
    assert!(started.elapsed() < Duration::from_millis(50), "raise waited");
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
    assert!(started.elapsed() < Duration::from_millis(200), "raise waited on a silent target");
    assert!(logs.text().contains("notification dropped"), "{}", logs.text());
    drop(silent);
}
