//! `spawn_app()`: the real program (mirror, scheduler, token cache, client,
//! built by `cliq_sync::startup` as every command builds it)
//! against the simulator, with a temp database, on one anchored clock.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cliq_sync::app::App;
use cliq_sync::cliq::transport::{RouterTransport, Transport, TransportFuture};
use cliq_sync::cliq::Endpoint;
use cliq_sync::clock::{from_db, Clock};
use cliq_sync::config::Settings;
use cliq_sync::sim::{SimConfig, Simulator};
use secrecy::SecretString;

pub fn base_time() -> DateTime<Utc> {
    from_db("2026-06-01T09:00:00.000Z").unwrap()
}

pub struct TestApp {
    pub sim: Simulator,
    pub app: App,
    pub clock: Clock,
    /// Keeps the temp mirror alive as long as the app.
    pub _dir: Arc<tempfile::TempDir>,
    pub transport: Arc<dyn Transport>,
}

pub struct Opts {
    pub users: usize,
    pub token_ttl: Duration,
    /// How far the simulator's clock runs behind ours (clock skew); a
    /// negative value puts it ahead.
    pub sim_behind: chrono::Duration,
    /// `false`: the simulator's answers reach the program without a `Date`
    /// header (a proxy that strips it), so the program falls back to its clock.
    pub date_header: bool,
    pub settings: Box<dyn Fn(&mut Settings)>,
}

impl Default for Opts {
    fn default() -> Self {
        Self {
            users: 200,
            token_ttl: Duration::from_secs(3600),
            sim_behind: chrono::Duration::zero(),
            date_header: true,
            settings: Box::new(|_| {}),
        }
    }
}

/// Settings pointing at the simulator's credentials, mirror in `dir`.
pub fn settings_for(sim_cfg: &SimConfig, dir: &std::path::Path) -> Settings {
    let mut s = Settings::default();
    s.cliq.base_url = Some("http://127.0.0.1:9".into());
    s.cliq.accounts_url = Some("http://127.0.0.1:9".into());
    s.cliq.client_id = sim_cfg.client_id.clone();
    s.cliq.client_secret = Some(SecretString::from(sim_cfg.client_secret.clone()));
    s.cliq.refresh_token = Some(SecretString::from(sim_cfg.refresh_token.clone()));
    s.mirror.path = dir.join("mirror.db");
    s
}

/// Start a simulator and the program against it. Call inside a paused test.
pub async fn spawn_app(opts: Opts) -> TestApp {
    let clock = Clock::anchored(base_time());
    let sim_cfg = SimConfig {
        users: opts.users,
        token_ttl: opts.token_ttl,
        ..SimConfig::default()
    };
    let sim_clock = if opts.sim_behind.is_zero() {
        clock.clone()
    } else {
        Clock::anchored(base_time() - opts.sim_behind)
    };
    let sim = Simulator::new(sim_cfg.clone(), sim_clock);
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut settings = settings_for(&sim_cfg, dir.path());
    (opts.settings)(&mut settings);
    let mut transport: Arc<dyn Transport> = Arc::new(RouterTransport::new(sim.router()));
    if !opts.date_header {
        transport = Arc::new(WithoutDate(transport));
    }
    let app = App::open_with(settings, clock.clone(), transport.clone())
        .await
        .unwrap();
    TestApp {
        sim,
        app,
        clock,
        _dir: dir,
        transport,
    }
}

/// Removes the `Date` header from every answer.
struct WithoutDate(Arc<dyn Transport>);

impl Transport for WithoutDate {
    fn send(&self, req: http::Request<bytes::Bytes>) -> TransportFuture<'_> {
        Box::pin(async move {
            let mut resp = self.0.send(req).await?;
            resp.headers_mut().remove(http::header::DATE);
            Ok(resp)
        })
    }
}

impl TestApp {
    /// A second program (a new process, as far as state goes) on the same
    /// mirror file and the same simulator. The first one's owner lease is
    /// released first, as if its process had ended: its `running` runs are
    /// a dead owner's.
    pub async fn restart(&self) -> App {
        self.app.store.lease().release();
        App::open_with(
            self.app.settings.clone(),
            self.clock.clone(),
            self.transport.clone(),
        )
        .await
        .unwrap()
    }

    /// The most requests the simulator saw in any window, per endpoint.
    pub fn max_in_window(&self, ep: Endpoint) -> u32 {
        self.sim
            .counters()
            .max_in_window
            .get(&ep)
            .copied()
            .unwrap_or(0)
    }

    pub fn throttled_total(&self) -> u64 {
        self.sim.counters().throttled.values().sum()
    }

    pub fn locks_total(&self) -> u64 {
        self.sim.counters().locks.values().sum()
    }
}

/// `tracing` output captured into a shared buffer (what an operator would
/// read), for tests that assert on log lines.
#[derive(Clone, Default)]
pub struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Make `subscriber` this thread's default while the guard lives, as every
/// capture in these tests does, after giving every thread of the test
/// binary a subscriber (a bare registry, which records nothing).
///
/// Why: tracing caches each callsite's interest once, process-wide, and
/// while one dispatcher is registered it asks the thread that first
/// reaches the callsite. A sibling test on a thread with no subscriber
/// then caches "never" for a line a capture on another thread is waiting
/// for, and the capture comes back empty (seen once in about eight runs:
/// group_commit's "pages written"; tokio-rs/tracing#3611). With a global
/// default no thread answers "never".
pub fn set_capture<S>(subscriber: S) -> tracing::subscriber::DefaultGuard
where
    S: tracing::Subscriber + Send + Sync + 'static,
{
    static EVERY_THREAD: std::sync::Once = std::sync::Once::new();
    EVERY_THREAD.call_once(|| {
        // Nothing else in this binary sets one; if something did, that
        // default serves the same purpose.
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    });
    tracing::subscriber::set_default(subscriber)
}

impl Logs {
    /// Capture this thread's events at `filter` (an `EnvFilter` directive)
    /// while the guard lives (paused tests run on one thread, so it sees
    /// every task).
    pub fn capture(&self, filter: &str) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(move || logs.clone())
            .with_ansi(false)
            .finish();
        set_capture(subscriber)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
