//! Progress of a long run, as it goes: a full pull of 100k users takes
//! about 33 minutes at Cliq's quotas, and a push of a big plan minutes too.
//!
//! A [`Tracker`] publishes the run's progress to the store's hub on every
//! page or user (cheap: a `watch` store), and a task beside the run
//! * writes it into the run's `sync_runs` row every [`ROW_EVERY`] (never per
//!   page: the page path stays one transaction per page), and
//! * logs a progress line at the start, every [`LOG_EVERY`] and at the end.
//!
//! Times are tokio's (paused in tests) and the project's [`crate::clock::Clock`].

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::{interval_at, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::cliq::Quota;
use crate::mirror::progress::RunProgress;
use crate::mirror::runs::{RunKind, RunStatus};
use crate::mirror::Store;

/// How often the run's row is updated while it runs.
pub(crate) const ROW_EVERY: Duration = Duration::from_secs(5);
/// How often a progress line is logged (plus one at the start and the end).
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(30);

/// Requests the run has sent so far.
pub(crate) type RequestCount = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The quota floor of `quota`, in requests per minute.
pub(crate) fn floor_per_min(quota: Quota) -> f64 {
    let secs = quota.per.as_secs_f64();
    if secs <= 0.0 {
        return f64::INFINITY;
    }
    f64::from(quota.requests) * 60.0 / secs
}

/// When the run should end: the work left at the slower of the quota floor
/// and the pace so far (the first window's burst is faster than the floor;
/// a slow Cliq is slower). `None` without an estimate of the total.
pub(crate) fn estimate_end(
    p: &RunProgress,
    elapsed: Duration,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let (done, total) = p.units();
    let left = total?.saturating_sub(done);
    let floor = p.rate_per_min / 60.0;
    let pace = match elapsed.as_secs_f64() {
        s if s > 0.0 && done > 0 => done as f64 / s,
        _ => f64::INFINITY,
    };
    let rate = floor.min(pace);
    if rate.is_nan() || rate <= 0.0 {
        return None;
    }
    let secs = (left as f64 / rate).min(365.0 * 86_400.0);
    Some(now + chrono::Duration::milliseconds((secs * 1000.0) as i64))
}

/// Publishes a run's progress and keeps its row and the log informed.
/// Dropping it (an error path) stops the task; [`Tracker::finish`] also
/// writes the final figures and logs the end.
pub(crate) struct Tracker {
    store: Store,
    started: Instant,
    requests: RequestCount,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Tracker {
    /// Publish `initial`, write it into the row, log the start line and
    /// start the task.
    pub async fn start(store: &Store, initial: RunProgress, requests: RequestCount) -> Tracker {
        store.progress().publish(Some(initial));
        let mut tracker = Tracker {
            store: store.clone(),
            started: Instant::now(),
            requests,
            stop: CancellationToken::new(),
            task: None,
        };
        tracker.write_row().await;
        tracker.log(None);
        let task = Ticker {
            store: store.clone(),
            started: tracker.started,
            requests: tracker.requests.clone(),
        }
        .spawn(tracker.stop.clone());
        tracker.task = Some(task);
        tracker
    }

    /// Record `pages` written and `users` seen (pulls) or users done (push).
    pub fn set(&self, pages: u64, users: u64) {
        self.store.progress().modify(|p| {
            p.pages = pages;
            p.users = users;
        });
    }

    /// A new estimate of the total (a push that planned again).
    pub(crate) fn expect_users(&self, users: u64) {
        self.store
            .progress()
            .modify(|p| p.expected_users = Some(users));
    }

    /// Stop the task, write the final figures (no ETA) and log the end.
    pub async fn finish(mut self, status: RunStatus) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let requests = (self.requests)();
        self.store.progress().modify(|p| {
            p.requests = requests;
            p.eta_at = None;
        });
        // Not `self.write_row()`: that would estimate an end again.
        write_row(&self.store).await;
        self.log(Some(status));
        self.store.progress().publish(None);
    }

    async fn write_row(&self) {
        refresh(&self.store, self.started, &self.requests);
        write_row(&self.store).await;
    }

    fn log(&self, end: Option<RunStatus>) {
        if let Some(p) = self.store.progress().current() {
            log_line(&p, self.started.elapsed(), self.store.clock().now(), end);
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.stop.cancel();
        if self.task.is_some() {
            // Dropped without finish (an error path): no run in progress.
            self.store.progress().publish(None);
        }
    }
}

/// The task beside the run.
struct Ticker {
    store: Store,
    started: Instant,
    requests: RequestCount,
}

impl Ticker {
    fn spawn(self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut row = interval_at(self.started + ROW_EVERY, ROW_EVERY);
            let mut log = interval_at(self.started + LOG_EVERY, LOG_EVERY);
            // A run that waited out a lock gets one line, not a burst.
            row.set_missed_tick_behavior(MissedTickBehavior::Delay);
            log.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => return,
                    _ = row.tick() => {
                        refresh(&self.store, self.started, &self.requests);
                        write_row(&self.store).await;
                    }
                    _ = log.tick() => {
                        refresh(&self.store, self.started, &self.requests);
                        if let Some(p) = self.store.progress().current() {
                            log_line(&p, self.started.elapsed(), self.store.clock().now(), None);
                        }
                    }
                }
            }
        })
    }
}

/// Bring the requests and the ETA of the current progress up to date.
fn refresh(store: &Store, started: Instant, requests: &RequestCount) {
    let requests = requests();
    let now = store.clock().now();
    let elapsed = started.elapsed();
    store.progress().modify(|p| {
        p.requests = requests;
        p.eta_at = estimate_end(p, elapsed, now);
    });
}

async fn write_row(store: &Store) {
    let Some(p) = store.progress().current() else {
        return;
    };
    // Progress is informative: a failed write must not fail the run.
    if let Err(e) = store.record_progress(&p, store.clock().now()).await {
        tracing::warn!(run = p.run_id, error = %e, "the run's progress was not recorded");
    }
}

fn log_line(p: &RunProgress, elapsed: Duration, now: DateTime<Utc>, end: Option<RunStatus>) {
    let eta_s = p.eta_at.map(|at| (at - now).num_seconds().max(0));
    let line = describe(p, eta_s, end.map(|s| (s, elapsed)));
    tracing::info!(
        kind = %p.kind.as_str(),
        run = p.run_id,
        pages = p.pages,
        expected_pages = p.expected_pages,
        users = p.users,
        expected_users = p.expected_users,
        requests = p.requests,
        eta_s,
        elapsed_ms = elapsed.as_millis() as u64,
        "{line}"
    );
}

/// "full pull: page 340/~1000, 34,000 users, 340 requests, ETA 22m at 30
/// requests/min"; at the end "…, ok after 33m 10s".
pub(crate) fn describe(
    p: &RunProgress,
    eta_s: Option<i64>,
    end: Option<(RunStatus, Duration)>,
) -> String {
    let total = |n: Option<u64>| n.map(|n| format!("/~{}", thousands(n))).unwrap_or_default();
    let mut line = match p.kind {
        RunKind::Push => format!(
            "push: {}{} users",
            thousands(p.users),
            total(p.expected_users)
        ),
        kind => format!(
            "{} pull: page {}{}, {} users",
            kind.as_str(),
            thousands(p.pages),
            total(p.expected_pages),
            thousands(p.users)
        ),
    };
    line.push_str(&format!(", {} requests", thousands(p.requests)));
    match (end, eta_s) {
        (Some((status, elapsed)), _) => {
            line.push_str(&format!(", {} after {}", status.as_str(), short(elapsed)));
        }
        (None, Some(eta)) => line.push_str(&format!(
            ", ETA {} at {} requests/min",
            short(Duration::from_secs(eta as u64)),
            p.rate_per_min.round()
        )),
        (None, None) => {}
    }
    line
}

/// 34000 -> "34,000".
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "1h 5m", "22m", "40s": minutes are enough for an ETA.
pub fn short(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 3600 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s if s >= 600 => format!("{}m", (s + 30) / 60),
        s if s >= 60 => format!("{}m {}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(pages: u64, expected: Option<u64>) -> RunProgress {
        RunProgress {
            pages,
            expected_pages: expected,
            users: pages * 100,
            expected_users: expected.map(|e| e * 100),
            requests: pages,
            ..RunProgress::new(7, RunKind::Full, 30.0)
        }
    }

    #[test]
    fn the_line_reads_like_the_issue_asks() {
        let p = progress(340, Some(1000));
        assert_eq!(
            describe(&p, Some(22 * 60), None),
            "full pull: page 340/~1,000, 34,000 users, 340 requests, ETA 22m at 30 requests/min"
        );
        let done = describe(&p, None, Some((RunStatus::Ok, Duration::from_secs(125))));
        assert_eq!(
            done,
            "full pull: page 340/~1,000, 34,000 users, 340 requests, ok after 2m 5s"
        );
        let incremental = RunProgress {
            kind: RunKind::Incremental,
            ..progress(3, None)
        };
        assert_eq!(
            describe(&incremental, None, None),
            "incremental pull: page 3, 300 users, 3 requests"
        );
    }

    #[test]
    fn the_eta_follows_the_quota_floor_and_never_beats_it() {
        let now = Utc::now();
        // 340 pages in one second (a burst): the floor rules, 660 at 30/min.
        let p = progress(340, Some(1000));
        let eta = estimate_end(&p, Duration::from_secs(1), now).unwrap();
        assert_eq!((eta - now).num_seconds(), 22 * 60);
        // Slower than the floor (10/min so far): the pace rules.
        let eta = estimate_end(&progress(10, Some(20)), Duration::from_secs(60), now).unwrap();
        assert_eq!((eta - now).num_seconds(), 60);
        assert_eq!(estimate_end(&progress(3, None), Duration::ZERO, now), None);
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }
}
