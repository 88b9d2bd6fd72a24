//! Talking to systemd (`Type=notify`) through the `sd-notify` crate:
//! `READY=1` once the mirror is open and the server listens, `STATUS=` with
//! what the daemon is doing, `RELOADING=1` … `READY=1` around a SIGHUP
//! reload, `STOPPING=1` on a stop, and `WATCHDOG=1` at half the unit's
//! `WatchdogSec=` for as long as the daemon's loop is being polled.
//!
//! Outside systemd (no `$NOTIFY_SOCKET`) every call is a no-op. Tests give
//! the daemon a recording [`Systemd`] instead of the socket.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sd_notify::NotifyState;

/// Where notifications go: `$NOTIFY_SOCKET`, or a test's recorder.
trait Sink: Send + Sync {
    fn send(&self, states: &[NotifyState]);
}

struct NotifySocket;

impl Sink for NotifySocket {
    fn send(&self, states: &[NotifyState]) {
        if let Err(e) = sd_notify::notify(states) {
            tracing::warn!(error = %e, "could not notify systemd");
        }
    }
}

/// The messages a test's [`Systemd`] received, one string per datagram
/// (`"READY=1\nSTATUS=…"`, the lines in the order sent).
#[derive(Default)]
pub struct Recorded(Mutex<Vec<String>>);

impl Recorded {
    pub fn messages(&self) -> Vec<String> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

impl Sink for Recorded {
    fn send(&self, states: &[NotifyState]) {
        let msg: Vec<String> = states.iter().map(ToString::to_string).collect();
        if let Ok(mut m) = self.0.lock() {
            m.push(msg.join("\n"));
        }
    }
}

/// A handle on the service manager; `Default` is the no-op one.
#[derive(Clone, Default)]
pub struct Systemd {
    sink: Option<Arc<dyn Sink>>,
    watchdog: Option<Duration>,
}

impl Systemd {
    /// The process's service manager, if it has one (`$NOTIFY_SOCKET`), and
    /// its watchdog timeout (`$WATCHDOG_USEC`, for this PID).
    pub(crate) fn from_env() -> Self {
        let Some(_) = std::env::var_os("NOTIFY_SOCKET") else {
            return Self::default();
        };
        Self {
            sink: Some(Arc::new(NotifySocket)),
            watchdog: sd_notify::watchdog_enabled(),
        }
    }

    /// A handle that records instead of sending, with `watchdog` as if the
    /// unit had `WatchdogSec=` set to it.
    pub fn recording(watchdog: Option<Duration>) -> (Self, Arc<Recorded>) {
        let rec = Arc::new(Recorded::default());
        let sink: Arc<dyn Sink> = rec.clone();
        (
            Self {
                sink: Some(sink),
                watchdog,
            },
            rec,
        )
    }

    fn send(&self, states: &[NotifyState]) {
        if let Some(sink) = &self.sink {
            sink.send(states);
        }
    }

    /// Started (or done reloading): systemd reports the unit active.
    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// What the daemon is doing now (`systemctl status` shows it).
    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    /// A reload begins; [`Systemd::ready`] ends it. MONOTONIC_USEC lets
    /// systemd tell this reload from an earlier one (systemd ≥ 253 wants it).
    pub fn reloading(&self, status: &str) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now, NotifyState::Status(status)]),
            Err(_) => self.send(&[NotifyState::Reloading, NotifyState::Status(status)]),
        }
    }

    pub(crate) fn stopping(&self) {
        self.send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }

    /// How often [`Systemd::supervise`] pings: half the watchdog timeout,
    /// so one late ping never trips it.
    pub(crate) fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2).filter(|i| !i.is_zero())
    }

    /// Poll `work` (the daemon's main loop) and send `WATCHDOG=1` at the
    /// watchdog interval from the same task: if the loop stops being polled
    /// (a blocked thread, a deadlock), the pings stop and systemd restarts
    /// the service.
    pub async fn supervise<F: Future>(&self, work: F) -> F::Output {
        let Some(every) = self.watchdog_interval() else {
            return work.await;
        };
        tokio::pin!(work);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = tick.tick() => self.send(&[NotifyState::Watchdog]),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pings(rec: &Recorded) -> usize {
        rec.messages().iter().filter(|m| *m == "WATCHDOG=1").count()
    }

    #[tokio::test(start_paused = true)]
    async fn supervise_pings_at_half_the_watchdog_timeout_while_the_loop_runs() {
        let (sd, rec) = Systemd::recording(Some(Duration::from_secs(20)));
        let out = sd
            .supervise(async {
                tokio::time::sleep(Duration::from_secs(65)).await;
                7
            })
            .await;
        assert_eq!(out, 7);
        // At 0, 10, …, 60 s; none after the loop ended.
        assert_eq!(pings(&rec), 7);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(pings(&rec), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_watchdog_nothing_is_sent() {
        let (sd, rec) = Systemd::recording(None);
        sd.supervise(tokio::time::sleep(Duration::from_secs(65)))
            .await;
        assert!(rec.messages().is_empty());
    }

    #[test]
    fn messages_are_the_sd_notify_lines() {
        let (sd, rec) = Systemd::recording(None);
        sd.ready("idle");
        sd.reloading("reloading the HR source");
        sd.stopping();
        let m = rec.messages();
        assert_eq!(m[0], "READY=1\nSTATUS=idle");
        assert!(m[1].starts_with("RELOADING=1\nMONOTONIC_USEC="), "{}", m[1]);
        assert!(m[1].ends_with("\nSTATUS=reloading the HR source"));
        assert_eq!(m[2], "STOPPING=1\nSTATUS=stopping");
    }
}
