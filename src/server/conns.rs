//! Serving connections by hand, because `axum::serve` has no header-read
//! timeout, no idle timeout and no connection cap: 300 slow clients stayed
//! connected for 70 s, and 1,100 idle ones used up the open-file limit so
//! `/healthz` timed out and the pod would have been restarted.
//!
//! * a request head must arrive within `header_read_timeout` (hyper's
//!   timer; it also bounds the keep-alive wait between requests);
//! * a connection that reads and writes nothing for `idle_timeout` while no
//!   request is being handled is closed (a client that stopped reading);
//! * at most `max_connections` are served at once. At the cap a new
//!   connection takes the place of the oldest one that has no request in
//!   progress (an idle or half-sent one): a probe that sends its request at
//!   once is answered however many idle sockets are open. When every
//!   connection is busy the new one is closed at once, so nothing piles up
//!   in the listener's backlog.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ServeOptions;

/// One served connection, as the cap sees it.
struct Slot {
    id: u64,
    /// Requests being handled on it now.
    busy: AtomicUsize,
    /// Cancelled to make room for a newer connection.
    evict: CancellationToken,
}

/// The open connections, oldest first, and the permits that cap them.
pub(super) struct Connections {
    permits: Arc<Semaphore>,
    open: Mutex<VecDeque<Arc<Slot>>>,
    next_id: AtomicU64,
}

/// A connection's place: released (permit returned, slot forgotten) on drop.
pub(super) struct Admitted {
    conns: Arc<Connections>,
    slot: Arc<Slot>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.conns.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|s| s.id != self.slot.id);
    }
}

impl Connections {
    pub(super) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(max.max(1))),
            open: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(0),
        })
    }

    /// A place for a new connection, evicting the oldest idle one at the
    /// cap; `None`: every connection is busy, close the new one.
    pub(super) async fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if !self.evict_oldest_idle() {
                    return None;
                }
                // The evicted task drops its connection and permit promptly.
                let wait = self.permits.clone().acquire_owned();
                tokio::time::timeout(Duration::from_secs(1), wait)
                    .await
                    .ok()?
                    .ok()?
            }
        };
        let slot = Arc::new(Slot {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            busy: AtomicUsize::new(0),
            evict: CancellationToken::new(),
        });
        self.lock().push_back(slot.clone());
        Some(Admitted {
            conns: self.clone(),
            slot,
            _permit: permit,
        })
    }

    fn evict_oldest_idle(&self) -> bool {
        let mut open = self.lock();
        let Some(i) = open
            .iter()
            .position(|s| s.busy.load(Ordering::Relaxed) == 0)
        else {
            return false;
        };
        if let Some(slot) = open.remove(i) {
            slot.evict.cancel();
        }
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Slot>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Counts a request as in progress on its connection while it lives.
struct Busy(Arc<Slot>);

impl Busy {
    fn new(slot: Arc<Slot>) -> Self {
        slot.busy.fetch_add(1, Ordering::Relaxed);
        Self(slot)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serve one connection until it ends, is evicted, idles out or the
/// server stops (then in-flight requests get a few seconds to finish).
pub(super) async fn serve_connection(
    stream: TcpStream,
    app: Router,
    opts: ServeOptions,
    admitted: Admitted,
    stop: CancellationToken,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
    });
    let slot = admitted.slot.clone();
    let service = hyper::service::service_fn(move |req| {
        let busy = Busy::new(slot.clone());
        let app = app.clone();
        async move {
            let _busy = busy;
            tower::ServiceExt::oneshot(app, req).await
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let idle = idle_out(&activity, &admitted.slot, opts.idle_timeout);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "health server connection ended");
            }
        }
        _ = admitted.slot.evict.cancelled() => {
            tracing::debug!("health server connection closed to make room (connection cap)");
        }
        _ = idle => tracing::debug!("health server connection closed: idle"),
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}

/// Resolves once nothing was read or written for `timeout` while no
/// request was being handled (a slow handler is not an idle client).
async fn idle_out(activity: &Activity, slot: &Slot, timeout: Duration) {
    loop {
        let quiet = activity.quiet_for();
        if quiet >= timeout && slot.busy.load(Ordering::Relaxed) == 0 {
            return;
        }
        tokio::time::sleep(timeout.saturating_sub(quiet).max(Duration::from_millis(10))).await;
    }
}

/// When the connection last moved a byte.
struct Activity {
    base: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.base.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn quiet_for(&self) -> Duration {
        let now = self.base.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// A stream that records its reads and writes in an [`Activity`].
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
