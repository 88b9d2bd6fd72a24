//! The client's view of the quota scheduler (beside it, not inside the
//! client: the token manager asks the same gate, and neither may need the
//! other to do so).
//!
//! [`CliqClient`](crate::cliq::client::CliqClient) and [`TokenManager`](crate::cliq::auth::TokenManager)
//! only ever need two things from the scheduler: "may I start a request on
//! this endpoint now?" and "the server said throttled". [`QuotaGate`] names
//! exactly that, is implemented by [`QuotaScheduler`], and lets tests inject
//! a recording gate to prove that every attempt asks first.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use crate::cliq::quotas::AheadStart;
use crate::cliq::quotas::{QuotaError, QuotaScheduler};
use crate::cliq::Endpoint;

pub type GateFuture<'a, T = ()> = Pin<Box<dyn Future<Output = Result<T, QuotaError>> + Send + 'a>>;

/// Admission control for request starts (see [`QuotaScheduler`]).
pub trait QuotaGate: Send + Sync + 'static {
    /// Wait until `ep` may be called, then record one request start.
    fn acquire(&self, ep: Endpoint) -> GateFuture<'_>;
    /// The server said "throttled" for `ep`: lock it.
    fn report_throttled<'a>(
        &'a self,
        ep: Endpoint,
        retry_after: Option<Duration>,
        reason: &'a str,
    ) -> GateFuture<'a>;
    /// The start just recorded for `ep` never reached the server (the
    /// connection could not be made): give it back.
    fn refund(&self, ep: Endpoint) -> GateFuture<'_>;
    /// A start for `ep` recorded now, ahead of a request still to be
    /// decided on, if one is free without waiting (see
    /// [`QuotaScheduler::take_ahead`]). A gate that takes none ahead says
    /// `None`, and every request asks [`QuotaGate::acquire`].
    fn take_ahead(&self, _ep: Endpoint) -> GateFuture<'_, Option<AheadStart>> {
        Box::pin(async { Ok(None) })
    }
    /// Whether a start taken ahead may still be sent now.
    fn is_fresh(&self, _ahead: &AheadStart) -> bool {
        false
    }
    /// Give back a start taken ahead whose request was not sent.
    fn give_back(&self, _ahead: AheadStart) -> GateFuture<'_> {
        Box::pin(async { Ok(()) })
    }
}

impl QuotaGate for QuotaScheduler {
    fn acquire(&self, ep: Endpoint) -> GateFuture<'_> {
        Box::pin(QuotaScheduler::acquire(self, ep))
    }

    fn report_throttled<'a>(
        &'a self,
        ep: Endpoint,
        retry_after: Option<Duration>,
        reason: &'a str,
    ) -> GateFuture<'a> {
        Box::pin(QuotaScheduler::report_throttled(
            self,
            ep,
            retry_after,
            reason,
        ))
    }

    fn refund(&self, ep: Endpoint) -> GateFuture<'_> {
        Box::pin(QuotaScheduler::refund(self, ep))
    }

    fn take_ahead(&self, ep: Endpoint) -> GateFuture<'_, Option<AheadStart>> {
        Box::pin(QuotaScheduler::take_ahead(self, ep))
    }

    fn is_fresh(&self, ahead: &AheadStart) -> bool {
        QuotaScheduler::is_fresh(self, ahead)
    }

    fn give_back(&self, ahead: AheadStart) -> GateFuture<'_> {
        Box::pin(QuotaScheduler::give_back(self, ahead))
    }
}

/// Test double: records every call; `report_throttled` optionally "locks"
/// the endpoint so the next `acquire` sleeps (on tokio's clock) until it ends.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct RecordingGate {
    pub acquires: std::sync::Mutex<Vec<(Endpoint, tokio::time::Instant)>>,
    pub throttles: std::sync::Mutex<Vec<(Endpoint, Option<Duration>, String)>>,
    /// Lock length applied by `report_throttled` (zero: no lock).
    pub lock_for: Duration,
    locked_until: std::sync::Mutex<std::collections::HashMap<Endpoint, tokio::time::Instant>>,
    pub fail_acquire: std::sync::atomic::AtomicBool,
    pub refunds: std::sync::Mutex<Vec<Endpoint>>,
}

#[cfg(test)]
impl RecordingGate {
    pub fn with_lock(lock_for: Duration) -> Self {
        RecordingGate {
            lock_for,
            ..Default::default()
        }
    }

    pub fn acquired(&self, ep: Endpoint) -> usize {
        self.acquires
            .lock()
            .unwrap()
            .iter()
            .filter(|(e, _)| *e == ep)
            .count()
    }

    pub fn throttled(&self) -> Vec<(Endpoint, Option<Duration>, String)> {
        self.throttles.lock().unwrap().clone()
    }
}

#[cfg(test)]
impl QuotaGate for RecordingGate {
    fn acquire(&self, ep: Endpoint) -> GateFuture<'_> {
        Box::pin(async move {
            if self.fail_acquire.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(QuotaError::from(sqlx::Error::Protocol(
                    "ledger unavailable".into(),
                )));
            }
            let until = self.locked_until.lock().unwrap().get(&ep).copied();
            if let Some(until) = until {
                tokio::time::sleep_until(until).await;
            }
            self.acquires
                .lock()
                .unwrap()
                .push((ep, tokio::time::Instant::now()));
            Ok(())
        })
    }

    fn report_throttled<'a>(
        &'a self,
        ep: Endpoint,
        retry_after: Option<Duration>,
        reason: &'a str,
    ) -> GateFuture<'a> {
        Box::pin(async move {
            self.throttles
                .lock()
                .unwrap()
                .push((ep, retry_after, reason.to_string()));
            let lock = retry_after.unwrap_or_default().max(self.lock_for);
            if !lock.is_zero() {
                self.locked_until
                    .lock()
                    .unwrap()
                    .insert(ep, tokio::time::Instant::now() + lock);
            }
            Ok(())
        })
    }

    fn refund(&self, ep: Endpoint) -> GateFuture<'_> {
        self.refunds.lock().unwrap().push(ep);
        Box::pin(async { Ok(()) })
    }
}
