//! Notifications (`[[notify]]`): telling someone that the daemon needs a
//! person, once per incident, and again when it has recovered.
//!
//! The daemon raises an [`Incident`] (a held push, a pull failing N times in
//! a row, …) and clears it by key when the condition is gone. A
//! [`Notifier`] hands both to a dispatcher task through a bounded channel
//! with `try_send`: a sync never waits for a notification, and when the
//! channel is full the signal is dropped and logged. The dispatcher keeps
//! the open incidents, so the same incident raised on every tick is sent
//! once; clearing an open incident sends one `recovered` message. Each
//! target is rate-limited ([`RATE_LIMIT`] messages per [`RATE_WINDOW`]),
//! and a target that fails (a 500, a refused connection, a timeout) is
//! logged and never retried into the next sync.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;

mod email;
mod target;

pub use target::{NotifyError, Target};

/// At most this many messages per target in [`RATE_WINDOW`]: a flapping
/// condition must not flood a channel or a mailbox.
pub(crate) const RATE_LIMIT: usize = 10;
pub(crate) const RATE_WINDOW: Duration = Duration::from_secs(600);
/// Signals waiting for the dispatcher; beyond this they are dropped.
const QUEUE: usize = 64;

/// What happened (the `events = [...]` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    PushHeld,
    PushFailed,
    PullFailing,
    EndpointLocked,
    HrSourceInvalid,
    TokenFailing,
    Recovered,
}

impl Event {
    pub fn name(self) -> &'static str {
        match self {
            Event::PushHeld => "push_held",
            Event::PushFailed => "push_failed",
            Event::PullFailing => "pull_failing",
            Event::EndpointLocked => "endpoint_locked",
            Event::HrSourceInvalid => "hr_source_invalid",
            Event::TokenFailing => "token_failing",
            Event::Recovered => "recovered",
        }
    }

    /// A held push waits for a person but harms nothing; a lock passes by
    /// itself; the others stop the mirror or the push until someone acts.
    pub fn severity(self) -> Severity {
        match self {
            Event::PushHeld | Event::EndpointLocked => Severity::Warning,
            Event::Recovered => Severity::Info,
            _ => Severity::Critical,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// One condition that needs a person. `key` identifies the incident: the
/// same key raised again while open is the same incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub event: Event,
    pub key: String,
    pub severity: Severity,
    pub summary: String,
    pub run_id: Option<i64>,
}

impl Incident {
    /// An incident keyed by its event name (one of each kind at a time).
    pub fn new(event: Event, summary: impl Into<String>) -> Self {
        Self {
            event,
            key: event.name().to_owned(),
            severity: event.severity(),
            summary: summary.into(),
            run_id: None,
        }
    }

    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    pub fn with_run(mut self, run_id: Option<i64>) -> Self {
        self.run_id = run_id;
        self
    }
}

/// What a target is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub event: Event,
    pub severity: Severity,
    pub summary: String,
    /// RFC 3339.
    pub at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    /// The incident's key (for a `recovered` message, the one that cleared).
    pub incident: String,
}

impl Message {
    fn new(i: &Incident, at: DateTime<Utc>) -> Self {
        Self {
            event: i.event,
            severity: i.severity,
            summary: i.summary.clone(),
            at: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            run_id: i.run_id,
            incident: i.key.clone(),
        }
    }

    /// One line for chat and the e-mail subject.
    pub fn text(&self) -> String {
        let what = match self.severity {
            Severity::Info => "",
            Severity::Warning => " WARNING",
            Severity::Critical => " CRITICAL",
        };
        let run = self
            .run_id
            .map(|r| format!(" (run {r})"))
            .unwrap_or_default();
        format!(
            "[cliq-sync]{what} {}: {}{run}",
            self.event.name(),
            self.summary
        )
    }
}

enum Signal {
    Raise(Incident),
    Clear { key: String, summary: String },
    Flush(oneshot::Sender<()>),
}

/// The sending side; cheap to clone. [`Notifier::disabled`] does nothing.
#[derive(Clone, Default)]
pub struct Notifier {
    tx: Option<mpsc::Sender<Signal>>,
}

impl Notifier {
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Spawn the dispatcher for `targets` (none: a disabled notifier).
    pub fn start(targets: Vec<Target>, clock: Clock) -> Self {
        if targets.is_empty() {
            return Self::disabled();
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(Dispatcher::new(targets, clock).run(rx));
        Self { tx: Some(tx) }
    }

    /// The targets of `[[notify]]`, started. An unreadable URL file is an
    /// error (the daemon refuses to start without its alarms).
    pub fn from_settings(
        settings: &crate::config::Settings,
        clock: Clock,
    ) -> Result<Self, NotifyError> {
        let targets = settings
            .notify
            .iter()
            .enumerate()
            .map(|(i, n)| Target::from_settings(i, n))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::start(targets, clock))
    }

    /// A notifier whose one target is a channel: every message it would
    /// send, for tests and embedders.
    pub fn capture(clock: Clock) -> (Self, mpsc::UnboundedReceiver<Message>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self::start(vec![Target::capture(tx)], clock), rx)
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Report `incident` (sent unless the same key is already open).
    pub fn raise(&self, incident: Incident) {
        self.signal(Signal::Raise(incident));
    }

    /// The condition `key` is gone: a `recovered` message if it was open.
    pub fn clear(&self, key: &str, summary: impl Into<String>) {
        self.signal(Signal::Clear {
            key: key.to_owned(),
            summary: summary.into(),
        });
    }

    /// Wait until every signal sent before has been handled (tests, and
    /// the daemon's last words before it exits).
    pub async fn flush(&self) {
        let Some(tx) = &self.tx else { return };
        let (done, wait) = oneshot::channel();
        if tx.send(Signal::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    fn signal(&self, s: Signal) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(s) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => tracing::warn!(
                "notification dropped: {QUEUE} are already waiting to be sent (a slow or \
                 unreachable target?)"
            ),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::warn!("notification dropped: the notifier has stopped")
            }
        }
    }
}

/// Messages sent per target in the last [`RATE_WINDOW`].
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    sent: VecDeque<tokio::time::Instant>,
}

impl RateLimiter {
    /// Whether one more message may go now (and count it if so).
    pub fn allow(&mut self, now: tokio::time::Instant) -> bool {
        while self
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= RATE_WINDOW)
        {
            self.sent.pop_front();
        }
        if self.sent.len() >= RATE_LIMIT {
            return false;
        }
        self.sent.push_back(now);
        true
    }
}

struct Dispatcher {
    targets: Vec<(Target, RateLimiter)>,
    clock: Clock,
    /// Open incidents by key.
    open: BTreeMap<String, Incident>,
}

impl Dispatcher {
    fn new(targets: Vec<Target>, clock: Clock) -> Self {
        Self {
            targets: targets
                .into_iter()
                .map(|t| (t, RateLimiter::default()))
                .collect(),
            clock,
            open: BTreeMap::new(),
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Signal>) {
        while let Some(s) = rx.recv().await {
            match s {
                Signal::Raise(i) => {
                    if self.open.contains_key(&i.key) {
                        tracing::debug!(incident = %i.key, "still open; not notified again");
                        continue;
                    }
                    let msg = Message::new(&i, self.clock.now());
                    self.open.insert(i.key.clone(), i);
                    self.deliver(&msg).await;
                }
                Signal::Clear { key, summary } => {
                    let Some(was) = self.open.remove(&key) else {
                        continue;
                    };
                    let back = Incident::new(Event::Recovered, summary)
                        .with_key(was.key)
                        .with_run(was.run_id);
                    self.deliver(&Message::new(&back, self.clock.now())).await;
                }
                Signal::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    /// Send to every target that wants it; failures are logged, never
    /// returned: a notification never stops a sync.
    async fn deliver(&mut self, msg: &Message) {
        let now = tokio::time::Instant::now();
        for (t, limit) in &mut self.targets {
            if !t.wants(msg.event) {
                continue;
            }
            if !limit.allow(now) {
                tracing::warn!(
                    target_name = %t.name(),
                    event = msg.event.name(),
                    "notification not sent: more than {RATE_LIMIT} to this target in {}",
                    humantime::format_duration(RATE_WINDOW)
                );
                continue;
            }
            match t.send(msg).await {
                Ok(()) => {
                    tracing::info!(target_name = %t.name(), event = msg.event.name(), "notification sent")
                }
                Err(e) => tracing::warn!(
                    target_name = %t.name(),
                    event = msg.event.name(),
                    error = %e,
                    "notification could not be sent; the sync goes on (check the target)"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests;
