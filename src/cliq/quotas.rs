//! The quota scheduler: the heart of cliq-sync.
//!
//! Cliq punishes one request over a threshold with a lock of up to ten
//! minutes, and its windows may be aligned anywhere. So the scheduler
//! guarantees, per endpoint, **never more than N request starts in any window
//! of the configured length** (plus a small safety margin for network jitter),
//! whatever the number of concurrent callers.
//!
//! * The quota belongs to the Cliq user, not to the process: the starts are
//!   kept in a ledger beside the mirror (`request_ledger` in
//!   `<mirror path>.quota`, a file of its own so that a start never waits for
//!   the mirror's writer) and counted and recorded by one atomic statement
//!   before each request, so a second
//!   process on the same mirror (a manual `push` beside the daemon, two
//!   `sync` runs back to back) draws from the same budget.
//! * A throttle answer locks the endpoint for its full lock period; the lock is
//!   written to `endpoint_locks` and honoured by every process and after a
//!   restart.
//! * Waiting callers sleep (no polling) and are served in arrival order: each
//!   endpoint has a FIFO `tokio::sync::Mutex` held while the head caller sleeps.
//! * Waiting runs on tokio's clock (so tests run in paused time); persisted
//!   times are wall-clock UTC from the injectable [`Clock`].
//! * A start may be taken ahead of its request
//!   ([`QuotaScheduler::take_ahead`]: a listing's next page, while this
//!   page is read), only if one is free without waiting or overtaking a
//!   waiter. It is still recorded before the request leaves, sent within
//!   the same bound as any start (`MAX_RECORD_SKEW`), or given back by its
//!   row.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::cliq::{Endpoint, Quota};
use crate::clock::{to_db, Clock};
pub use crate::mirror::quotas::LockState;
use crate::mirror::quotas::{truncate_ms, LedgerAnswer, LedgerStart};
use crate::mirror::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error("quota ledger: {0}")]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for QuotaError {
    fn from(e: sqlx::Error) -> Self {
        QuotaError::Store(StoreError::Db(e))
    }
}

impl From<QuotaError> for StoreError {
    fn from(e: QuotaError) -> Self {
        match e {
            QuotaError::Store(e) => e,
        }
    }
}

/// The quota of every endpoint, plus the safety margin added to each window.
#[derive(Debug, Clone)]
pub struct Limits {
    quotas: HashMap<Endpoint, Quota>,
    /// Added to every window: a start recorded here reaches Cliq a little
    /// later, and by a varying amount; the margin absorbs that jitter.
    pub margin: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self::documented()
    }
}

impl Limits {
    /// The documented quotas (spec table) with a 500 ms margin.
    pub fn documented() -> Self {
        Self {
            quotas: Endpoint::ALL
                .into_iter()
                .map(|e| (e, e.documented_quota()))
                .collect(),
            margin: Duration::from_millis(500),
        }
    }

    pub fn get(&self, ep: Endpoint) -> Quota {
        self.quotas
            .get(&ep)
            .copied()
            .unwrap_or_else(|| ep.documented_quota())
    }

    pub fn set(&mut self, ep: Endpoint, quota: Quota) {
        self.quotas.insert(ep, quota);
    }

    /// Every window and lock multiplied by `factor` (the simulator's time scale).
    pub fn scaled(mut self, factor: f64) -> Self {
        for q in self.quotas.values_mut() {
            *q = q.scaled(factor);
        }
        self
    }

    /// The window the scheduler actually enforces for `ep`.
    pub fn effective_window(&self, ep: Endpoint) -> Duration {
        self.get(ep).per + self.margin
    }
}

/// Waits callers until an endpoint may be called, and records locks.
/// Cheap to clone; clones share queues.
#[derive(Clone)]
pub struct QuotaScheduler {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: Clock,
    limits: Limits,
    queues: HashMap<Endpoint, tokio::sync::Mutex<()>>,
    starts: AtomicU64,
    waits: AtomicU64,
}

enum Attempt {
    Started(LedgerStart),
    WaitUntil(DateTime<Utc>, WaitReason),
}

/// A request start recorded ahead of its request (see
/// [`QuotaScheduler::take_ahead`]): it is the holder's to send while
/// [`QuotaScheduler::is_fresh`], or to give back.
#[derive(Debug)]
pub struct AheadStart {
    pub(crate) ep: Endpoint,
    start: LedgerStart,
}

#[derive(Debug, Clone, Copy)]
enum WaitReason {
    Locked,
    WindowFull,
}

/// How far a recorded start may precede the moment `acquire` returns. Beyond
/// it (a stalled disk, or tokio's paused clock jumping while SQLite worked)
/// the recorded start is no longer a true upper bound of the real start, so
/// the slot is abandoned (conservatively left in the ledger) and a new one
/// taken.
const MAX_RECORD_SKEW: chrono::Duration = chrono::Duration::milliseconds(100);

impl QuotaScheduler {
    pub fn new(store: &Store, limits: Limits) -> Self {
        let clock = store.clock().clone();
        let queues = Endpoint::ALL
            .into_iter()
            .map(|e| (e, tokio::sync::Mutex::new(())))
            .collect();
        Self {
            inner: Arc::new(Inner {
                store: store.clone(),
                clock,
                limits,
                queues,
                starts: AtomicU64::new(0),
                waits: AtomicU64::new(0),
            }),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Request starts recorded by this process.
    pub fn starts(&self) -> u64 {
        self.inner.starts.load(Ordering::Relaxed)
    }

    /// Times a caller had to sleep (window full or endpoint locked).
    pub fn waits(&self) -> u64 {
        self.inner.waits.load(Ordering::Relaxed)
    }

    /// Wait (sleeping, in FIFO order) until `ep` is not locked and has room in
    /// its window, then record one request start. Call once per HTTP attempt,
    /// immediately before sending it.
    pub async fn acquire(&self, ep: Endpoint) -> Result<(), QuotaError> {
        let inner = &*self.inner;
        // FIFO: tokio's Mutex queues waiters fairly. The head of the queue
        // holds it while it sleeps, so nobody behind it can overtake.
        let asked = tokio::time::Instant::now();
        let _turn = inner.queues[&ep].lock().await;
        loop {
            match self.try_start(ep).await? {
                Attempt::Started(_) => {
                    inner.starts.fetch_add(1, Ordering::Relaxed);
                    tracing::trace!(endpoint = %ep, waited_us = asked.elapsed().as_micros() as u64, "quota slot taken");
                    return Ok(());
                }
                Attempt::WaitUntil(at, why) => {
                    inner.waits.fetch_add(1, Ordering::Relaxed);
                    let wait = (at - inner.clock.now()).to_std().unwrap_or_default();
                    log_wait(ep, why, wait, at);
                    inner.clock.sleep_until(at).await;
                }
            }
        }
    }

    /// Ask the ledger (one transaction in the mirror) for a start.
    async fn try_start(&self, ep: Endpoint) -> Result<Attempt, QuotaError> {
        let inner = &*self.inner;
        let quota = inner.limits.get(ep);
        let window = chrono::Duration::from_std(inner.limits.effective_window(ep))
            .unwrap_or(chrono::Duration::MAX);
        let clock = &inner.clock;
        let answer = inner
            .store
            .ledger_try_start(ep.name(), quota.requests, window, clock)
            .await?;
        let recorded = match answer {
            LedgerAnswer::Locked(until) => {
                return Ok(Attempt::WaitUntil(until, WaitReason::Locked))
            }
            LedgerAnswer::Full(at) => return Ok(Attempt::WaitUntil(at, WaitReason::WindowFull)),
            LedgerAnswer::Started(start) => start,
        };
        if clock.now() - recorded.at > MAX_RECORD_SKEW {
            tracing::debug!(endpoint = %ep, "recorded start went stale before sending; taking a new slot");
            return Ok(Attempt::WaitUntil(clock.now(), WaitReason::WindowFull));
        }
        Ok(Attempt::Started(recorded))
    }

    /// Record a start for `ep` now, ahead of a request its caller is
    /// still deciding on (a listing's next page, while this page is read:
    /// the start's round trip to the ledger then overlaps the reading), if
    /// one is free without waiting: never while another caller waits for
    /// `ep` (it would be overtaken) or while `ep` is locked or its window
    /// full (`None`; the request then asks [`QuotaScheduler::acquire`] in
    /// turn). The start is recorded before the request is sent, as every
    /// start is; the caller sends it while [`QuotaScheduler::is_fresh`] (the
    /// same bound as `acquire`'s) or gives it back.
    pub async fn take_ahead(&self, ep: Endpoint) -> Result<Option<AheadStart>, QuotaError> {
        let inner = &*self.inner;
        let Ok(_turn) = inner.queues[&ep].try_lock() else {
            return Ok(None);
        };
        match self.try_start(ep).await? {
            Attempt::Started(start) => {
                inner.starts.fetch_add(1, Ordering::Relaxed);
                Ok(Some(AheadStart { ep, start }))
            }
            Attempt::WaitUntil(..) => Ok(None),
        }
    }

    /// Whether a start taken ahead may still be sent now: recorded no
    /// more than `MAX_RECORD_SKEW` ago.
    pub fn is_fresh(&self, ahead: &AheadStart) -> bool {
        self.inner.clock.now() - ahead.start.at <= MAX_RECORD_SKEW
    }

    /// Give back a start taken ahead whose request was not sent (the
    /// listing ended, or it went stale): removed from the ledger by its
    /// row, so the budget is as if it was never taken.
    pub async fn give_back(&self, ahead: AheadStart) -> Result<(), QuotaError> {
        self.inner.store.ledger_give_back(ahead.start.id).await?;
        self.inner.starts.fetch_sub(1, Ordering::Relaxed);
        Ok(())
    }

    /// Give back the newest start of `ep`: its request provably never left
    /// (the connection could not be made), so the server never counted it,
    /// and a dead host must not eat a budget (the token endpoint's 10 per 10
    /// minutes) that Cliq never saw. Only for [`Endpoint::OauthToken`]'s
    /// callers, which mint under a cross-process lock, so the newest start
    /// is the caller's own.
    pub async fn refund(&self, ep: Endpoint) -> Result<(), QuotaError> {
        Ok(self.inner.store.ledger_refund(ep.name()).await?)
    }

    /// The server said "throttled" for `ep`: lock it for its full lock period
    /// (or `retry_after`, if longer) from now and persist the lock. An
    /// existing longer lock is kept. Later `acquire` calls sleep until it ends.
    pub async fn report_throttled(
        &self,
        ep: Endpoint,
        retry_after: Option<Duration>,
        reason: &str,
    ) -> Result<(), QuotaError> {
        let inner = &*self.inner;
        let lock = inner
            .limits
            .get(ep)
            .lock
            .max(retry_after.unwrap_or_default());
        let now = truncate_ms(inner.clock.now());
        let until = now + chrono::Duration::from_std(lock).unwrap_or(chrono::Duration::MAX);
        tracing::warn!(endpoint = %ep, until = %to_db(until), reason, "Cliq throttled the endpoint; locked");
        Ok(inner
            .store
            .lock_endpoint(ep.name(), until, reason, now)
            .await?)
    }

    /// Every persisted lock (past ones included: `locked_until` tells).
    pub async fn locks(&self) -> Result<Vec<LockState>, QuotaError> {
        Ok(self.inner.store.endpoint_locks().await?)
    }

    /// When `ep`'s current lock ends, if it is locked now.
    pub async fn locked_until(&self, ep: Endpoint) -> Result<Option<DateTime<Utc>>, QuotaError> {
        let until = self.inner.store.endpoint_locked_until(ep.name()).await?;
        Ok(until.filter(|u| *u > self.inner.clock.now()))
    }

    /// Request starts recorded (by any process) within `ep`'s window ending now.
    pub async fn used(&self, ep: Endpoint) -> Result<u32, QuotaError> {
        let window = chrono::Duration::from_std(self.inner.limits.effective_window(ep))
            .unwrap_or(chrono::Duration::MAX);
        let since = self.inner.clock.now() - window;
        Ok(self
            .inner
            .store
            .ledger_starts_since(ep.name(), since)
            .await?)
    }
}

/// Waits shorter than this are routine pacing between requests (debug);
/// longer ones are worth a line for whoever watches the log.
const NOTABLE_WAIT: Duration = Duration::from_secs(1);

/// What a wait is for, as logged in the `reason` field.
fn wait_reason(ep: Endpoint, why: WaitReason) -> &'static str {
    match (why, ep) {
        (WaitReason::Locked, _) => "lock",
        (WaitReason::WindowFull, Endpoint::OauthToken) => "token_mint",
        (WaitReason::WindowFull, _) => "quota",
    }
}

/// One line per sleep, saying what it waits for and how long: a command
/// that seems to hang is then explained by its last log line.
fn log_wait(ep: Endpoint, why: WaitReason, wait: Duration, until: DateTime<Utc>) {
    let reason = wait_reason(ep, why);
    let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
    let (secs, until) = (wait.as_secs_f64(), to_db(until));
    match reason {
        // Someone else spent the quota (or Cliq locked us): warn.
        "lock" => tracing::warn!(
            endpoint = %ep, wait_ms, reason, %until,
            "waiting {secs:.1}s for Cliq's lock on {ep} to end"
        ),
        _ if wait < NOTABLE_WAIT => tracing::debug!(
            endpoint = %ep, wait_ms, reason, %until,
            "waiting {secs:.1}s for a {ep} quota window"
        ),
        "token_mint" => tracing::info!(
            endpoint = %ep, wait_ms, reason, %until,
            "waiting {secs:.1}s for a token-mint window (Zoho allows few access tokens per window)"
        ),
        _ => tracing::info!(
            endpoint = %ep, wait_ms, reason, %until,
            "waiting {secs:.1}s for a {ep} quota window"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::from_db;

    fn base() -> DateTime<Utc> {
        from_db("2026-03-01T08:00:00.000Z").unwrap()
    }

    async fn store(dir: &tempfile::TempDir, clock: &Clock) -> Store {
        Store::open(&dir.path().join("mirror.db"), clock)
            .await
            .unwrap()
    }

    /// The most starts found in any window of `window` (windows anchored at
    /// each start are enough to find the maximum).
    fn max_in_window(starts: &[DateTime<Utc>], window: Duration) -> usize {
        let w = chrono::Duration::from_std(window).unwrap();
        let mut sorted = starts.to_vec();
        sorted.sort();
        (0..sorted.len())
            .map(|i| {
                sorted[i..]
                    .iter()
                    .take_while(|t| **t < sorted[i] + w)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_never_exceed_the_window_and_are_served_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::anchored(base());
        let store = store(&dir, &clock).await;
        let sched = QuotaScheduler::new(&store, Limits::documented());
        let starts = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..95 {
            let (sched, clock, starts) = (sched.clone(), clock.clone(), starts.clone());
            tasks.push(tokio::spawn(async move {
                sched.acquire(Endpoint::ListUsers).await.unwrap();
                starts.lock().unwrap().push((i, clock.now()));
            }));
            // Let each task queue before the next is spawned, so arrival order is i.
            tokio::task::yield_now().await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        let starts = starts.lock().unwrap().clone();
        let times: Vec<_> = starts.iter().map(|(_, t)| *t).collect();
        // Never more than 30 in any 60 s window (the server's view).
        assert_eq!(max_in_window(&times, Duration::from_secs(60)), 30);
        // 95 requests need three full windows of waiting: request k starts at
        // floor(k/30) windows (plus the margin), not before.
        let last = *times.iter().max().unwrap();
        let elapsed = (last - base()).to_std().unwrap();
        assert!(elapsed >= Duration::from_secs(180), "{elapsed:?}");
        assert!(elapsed <= Duration::from_secs(182), "{elapsed:?}");
        // FIFO: served in arrival order.
        let order: Vec<_> = starts.iter().map(|(i, _)| *i).collect();
        assert_eq!(order, (0..95).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lock_survives_a_restart_and_work_resumes_right_after() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::anchored(base());
        {
            let store = store(&dir, &clock).await;
            let sched = QuotaScheduler::new(&store, Limits::documented());
            sched.acquire(Endpoint::UpdateUser).await.unwrap();
            sched
                .report_throttled(Endpoint::UpdateUser, None, "429 from Cliq")
                .await
                .unwrap();
            store.close().await;
        }
        // A new process: new pool, new scheduler, same file.
        let store = store(&dir, &clock).await;
        let sched = QuotaScheduler::new(&store, Limits::documented());
        let until = sched
            .locked_until(Endpoint::UpdateUser)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(until, base() + chrono::Duration::minutes(10));
        // Other endpoints are not affected.
        sched.acquire(Endpoint::GetUser).await.unwrap();
        assert_eq!(clock.now(), base());
        sched.acquire(Endpoint::UpdateUser).await.unwrap();
        assert_eq!(clock.now(), until, "resumes exactly when the lock ends");
        let locks = sched.locks().await.unwrap();
        assert_eq!(locks.len(), 1);
        assert_eq!(locks[0].reason, "429 from Cliq");
    }

    #[tokio::test(start_paused = true)]
    async fn a_longer_retry_after_wins_and_a_shorter_lock_never_shortens() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::anchored(base());
        let store = store(&dir, &clock).await;
        let sched = QuotaScheduler::new(&store, Limits::documented());
        sched
            .report_throttled(
                Endpoint::AddUsers,
                Some(Duration::from_secs(3600)),
                "retry-after",
            )
            .await
            .unwrap();
        sched
            .report_throttled(Endpoint::AddUsers, None, "429")
            .await
            .unwrap();
        let until = sched
            .locked_until(Endpoint::AddUsers)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(until, base() + chrono::Duration::hours(1));
    }

    #[tokio::test(start_paused = true)]
    async fn two_processes_on_one_mirror_share_one_budget() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::anchored(base());
        // Two stores = two connection pools, as two processes would have.
        let a = QuotaScheduler::new(&store(&dir, &clock).await, Limits::documented());
        let b = QuotaScheduler::new(&store(&dir, &clock).await, Limits::documented());
        let starts = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..50 {
            let sched = if i % 2 == 0 { a.clone() } else { b.clone() };
            let (clock, starts) = (clock.clone(), starts.clone());
            tasks.push(tokio::spawn(async move {
                sched.acquire(Endpoint::UpdateUser).await.unwrap();
                starts.lock().unwrap().push(clock.now());
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let times = starts.lock().unwrap().clone();
        assert_eq!(times.len(), 50);
        assert!(max_in_window(&times, Duration::from_secs(60)) <= 20);
        assert_eq!(a.starts() + b.starts(), 50);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fresh_process_does_not_spend_budget_already_used() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::anchored(base());
        let first = QuotaScheduler::new(&store(&dir, &clock).await, Limits::documented());
        for _ in 0..10 {
            first.acquire(Endpoint::UserLayouts).await.unwrap();
        }
        tokio::time::sleep(Duration::from_secs(20)).await;
        let second = QuotaScheduler::new(&store(&dir, &clock).await, Limits::documented());
        assert_eq!(second.used(Endpoint::UserLayouts).await.unwrap(), 10);
        second.acquire(Endpoint::UserLayouts).await.unwrap();
        // The 11th start waits until the first has left the window (60 s + margin).
        assert_eq!(clock.now(), base() + chrono::Duration::milliseconds(60_500));
    }

    /// A start taken ahead is one start in the ledger, the holder's while
    /// fresh, and gone again when given back; it is taken only when free
    /// now: never by waiting, never past a caller already waiting.
    #[tokio::test(start_paused = true)]
    async fn a_start_is_taken_ahead_only_when_free_now_and_given_back_by_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::anchored(base());
        let store = store(&dir, &clock).await;
        let mut limits = Limits::documented();
        let quota = Quota {
            requests: 2,
            per: Duration::from_secs(60),
            lock: Duration::from_secs(600),
        };
        limits.set(Endpoint::ListUsers, quota);
        let sched = QuotaScheduler::new(&store, limits);
        let ep = Endpoint::ListUsers;

        let ahead = sched
            .take_ahead(ep)
            .await
            .unwrap()
            .expect("the window has room");
        assert_eq!(sched.used(ep).await.unwrap(), 1);
        assert!(sched.is_fresh(&ahead));
        // Another process (a second opener of the file: connections of its
        // own) starts after it: giving ours back removes ours,
        // not the newest.
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!sched.is_fresh(&ahead), "older than MAX_RECORD_SKEW");
        let other_opener = Store::open(&dir.path().join("mirror.db"), &clock)
            .await
            .unwrap();
        let other = QuotaScheduler::new(&other_opener, sched.limits().clone());
        other.acquire(ep).await.unwrap();
        sched.give_back(ahead).await.unwrap();
        assert_eq!(sched.used(ep).await.unwrap(), 1);
        let since = base() + chrono::Duration::milliseconds(100);
        let later = store.ledger_starts_since(ep.name(), since).await.unwrap();
        assert_eq!(later, 1, "the other process's start is kept");

        // The window full: none, at once, and nothing recorded.
        sched.acquire(ep).await.unwrap();
        let asked = tokio::time::Instant::now();
        assert!(sched.take_ahead(ep).await.unwrap().is_none());
        assert_eq!(asked.elapsed(), Duration::ZERO);
        assert_eq!(sched.used(ep).await.unwrap(), 2);

        // A caller waiting its turn (the head of the queue holds it while
        // it sleeps): none, though the window has room again.
        tokio::time::sleep(Duration::from_secs(61)).await;
        let turn = sched.inner.queues[&ep].lock().await;
        assert!(sched.take_ahead(ep).await.unwrap().is_none());
        assert_eq!(sched.used(ep).await.unwrap(), 0);
        drop(turn);
        let ahead = sched.take_ahead(ep).await.unwrap();
        assert!(ahead.is_some(), "its turn over, the slot is free");
    }
}
