use std::time::Duration;

use super::*;

fn held(run: i64) -> Incident {
    Incident::new(
        Event::PushHeld,
        "push held: 120 changes > max_changes_per_run 100",
    )
    .with_run(Some(run))
}

/// The same incident raised on every tick is one message; clearing it is
/// one `recovered` message; clearing what is not open sends nothing.
#[tokio::test(start_paused = true)]
async fn one_message_per_incident_then_one_recovery() {
    let (n, mut rx) = Notifier::capture(Clock::system());
    for _ in 0..4 {
        n.raise(held(7));
    }
    n.clear("push_failed", "not open: nothing to say");
    n.clear("push_held", "the push went through");
    n.clear("push_held", "already cleared");
    n.flush().await;
    let got: Vec<Message> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    let events: Vec<_> = got.iter().map(|m| m.event).collect();
    assert_eq!(events, [Event::PushHeld, Event::Recovered], "{got:?}");
    assert_eq!(got[0].run_id, Some(7));
    assert_eq!(got[1].incident, "push_held");
    assert_eq!(got[1].summary, "the push went through");
    // Open again after recovery: a new incident.
    n.raise(held(8));
    n.flush().await;
    assert_eq!(rx.try_recv().unwrap().run_id, Some(8));
}

#[tokio::test(start_paused = true)]
async fn the_rate_limit_allows_ten_per_ten_minutes_per_target() {
    let (n, mut rx) = Notifier::capture(Clock::system());
    for i in 0..15 {
        n.raise(Incident::new(Event::EndpointLocked, "locked").with_key(format!("lock{i}")));
    }
    n.flush().await;
    assert_eq!(
        std::iter::from_fn(|| rx.try_recv().ok()).count(),
        RATE_LIMIT
    );
    tokio::time::sleep(RATE_WINDOW + Duration::from_secs(1)).await;
    n.raise(Incident::new(Event::EndpointLocked, "locked").with_key("later"));
    n.flush().await;
    assert_eq!(rx.try_recv().unwrap().incident, "later");
}

#[test]
fn the_limiter_slides() {
    tokio_time(|| {
        let mut l = RateLimiter::default();
        let t0 = tokio::time::Instant::now();
        assert!((0..RATE_LIMIT).all(|_| l.allow(t0)));
        assert!(!l.allow(t0 + Duration::from_secs(599)));
        assert!(l.allow(t0 + RATE_WINDOW));
    });
}

fn tokio_time(f: impl FnOnce()) {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(async { f() });
}

/// A disabled notifier is a no-op and never blocks.
#[tokio::test]
async fn a_disabled_notifier_does_nothing() {
    let n = Notifier::disabled();
    n.raise(held(1));
    n.flush().await;
    assert!(!n.is_enabled());
}

#[test]
fn bodies_webhook_full_chat_text() {
    let i = held(3);
    let at = chrono::DateTime::parse_from_rfc3339("2026-12-02T09:15:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let m = Message::new(&i, at);
    let full = target::body(&m, true);
    assert_eq!(full["event"], "push_held");
    assert_eq!(full["severity"], "warning");
    assert_eq!(full["at"], "2026-12-02T09:15:00Z");
    assert_eq!(full["run_id"], 3);
    assert!(full["summary"]
        .as_str()
        .unwrap()
        .contains("max_changes_per_run"));
    let chat = target::body(&m, false);
    assert_eq!(
        chat,
        serde_json::json!({"text": "[cliq-sync] WARNING push_held: push held: 120 changes > max_changes_per_run 100 (run 3)"})
    );
}
