//! Startup: building the program from its settings and running it, like
//! zero-to-production's `Application::build` / `run_until_stopped`.
//!
//! * [`App::open`] / [`App::open_with`] assemble the parts every command
//!   shares (mirror, quota scheduler, token cache, client): the CLI's
//!   commands, the daemon and the integration tests' `spawn_app` all start
//!   here, so they run the same program.
//! * [`Application`] adds the daemon's long-running parts (health and
//!   metrics server, schedules, notifier, signals, systemd) for
//!   `cliq-sync run`.
//!
//! This is the one module that knows every layer; nothing below uses it.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::cliq::auth::{AuthConfig, TokenManager};
use crate::cliq::client::{ClientConfig, CliqClient};
use crate::cliq::dc::DataCenter;
use crate::cliq::quotas::QuotaScheduler;
use crate::cliq::token_file::TokenFile;
use crate::cliq::transport::{ReqwestTransport, Transport};
use crate::clock::Clock;
use crate::config::Settings;
use crate::daemon::{Daemon, DaemonState};
use crate::exit::Failure;
use crate::mirror::Store;
use crate::server::{router, serve, ServeOptions, ServerState};
use crate::systemd::Systemd;

/// The API and accounts base URLs: the overrides, else the data centre's.
/// Either must be `https://` unless its host is loopback (checked here too,
/// not only when a config file is loaded: settings built in code get the
/// same rule, and the OAuth tokens never travel in clear text).
pub fn endpoints(settings: &Settings) -> anyhow::Result<(String, String)> {
    let dc: DataCenter = settings
        .cliq
        .data_center
        .parse()
        .map_err(|e| anyhow::anyhow!("cliq.data_center: {e}"))?;
    let api = settings
        .cliq
        .base_url
        .clone()
        .unwrap_or_else(|| dc.api_base().to_owned());
    let accounts = settings
        .cliq
        .accounts_url
        .clone()
        .unwrap_or_else(|| dc.accounts_base().to_owned());
    for (key, url) in [("cliq.base_url", &api), ("cliq.accounts_url", &accounts)] {
        crate::config::check_url(url).map_err(|m| anyhow::anyhow!("{key}: {m}"))?;
    }
    Ok((api, accounts))
}

impl App {
    /// Open the mirror and build the client, talking HTTPS.
    pub async fn open(settings: Settings) -> anyhow::Result<App> {
        let transport: Arc<dyn Transport> =
            Arc::new(ReqwestTransport::new().context("cannot build the HTTPS client")?);
        Self::open_with(settings, Clock::system(), transport).await
    }

    /// Open with an explicit clock and transport (tests, the demo).
    pub async fn open_with(
        settings: Settings,
        clock: Clock,
        transport: Arc<dyn Transport>,
    ) -> anyhow::Result<App> {
        // URLs and secrets first: a refused URL or an unreadable or open
        // secret file stops us before the mirror is created or touched.
        let (api, accounts) = endpoints(&settings)?;
        let client_secret = settings.client_secret()?;
        let refresh_token = settings.refresh_token()?;
        let store = Store::open(&settings.mirror.path, &clock).await?;
        let abandoned = store.abandon_dead_runs(clock.now()).await?;
        if abandoned > 0 {
            tracing::warn!(
                runs = abandoned,
                "runs left unfinished by processes that have ended were marked failed"
            );
        }
        let limits = settings.limits.to_limits()?;
        let scheduler = QuotaScheduler::new(&store, limits);
        let mut auth_cfg = AuthConfig::new(
            accounts,
            settings.cliq.client_id.clone(),
            client_secret,
            refresh_token,
        );
        auth_cfg.request_timeout = settings.cliq.request_timeout;
        auth_cfg.token_timeout = settings.cliq.token_timeout;
        // One token per mirror: every process on it shares `<mirror>.token`.
        let token_file = TokenFile::beside(&settings.mirror.path, clock.clone());
        let auth = Arc::new(
            TokenManager::new(auth_cfg, transport.clone(), scheduler.clone()).with_file(token_file),
        );
        let mut client_cfg = ClientConfig::new(api);
        client_cfg.request_timeout = settings.cliq.request_timeout;
        client_cfg.page_size = settings.cliq.page_size;
        client_cfg.modified_after_format = settings.cliq.modified_after_format;
        client_cfg.update_body = settings.cliq.update_body;
        let client = CliqClient::new(client_cfg, transport, auth.clone(), scheduler.clone());
        Ok(App {
            settings,
            store,
            scheduler,
            auth,
            client,
        })
    }
}

/// The daemon, built and ready to run: `cliq-sync run`.
pub(crate) struct Application {
    app: App,
    daemon: Daemon,
    state: Arc<DaemonState>,
    systemd: Systemd,
    listener: TcpListener,
    serve_options: ServeOptions,
    max_pull_failures: u32,
}

impl Application {
    /// Check the schedules, open the app, bind `[server] listen` and build
    /// the daemon and its notifier. Every refusal here happens before the
    /// first request to Cliq.
    pub async fn build(settings: Settings, config: Option<&Path>) -> Result<Self, Failure> {
        crate::daemon::Schedules::parse(&settings.schedule).map_err(Failure::config)?;
        let listen = settings.server.listen.clone();
        let max_pull_failures = settings.server.ready_max_pull_failures;
        let serve_options = ServeOptions {
            max_connections: settings.server.max_connections,
            ..ServeOptions::default()
        };
        let app = App::open(settings).await.map_err(Failure::config)?;
        let listener = TcpListener::bind(&listen).await.map_err(|e| {
            Failure::runtime(anyhow::anyhow!(
                "cannot listen on {listen} ([server] listen): {e}"
            ))
        })?;
        let systemd = Systemd::from_env();
        let state = Arc::new(DaemonState {
            systemd: systemd.clone(),
            ..DaemonState::default()
        });
        // An unreadable webhook URL file stops the start: alarms that cannot
        // go out must not be found missing on the day they are needed.
        let notifier =
            crate::notify::Notifier::from_settings(&app.settings, app.store.clock().clone())
                .map_err(Failure::config)?;
        let daemon = Daemon::new(app.clone(), state.clone())
            .map_err(Failure::config)?
            .with_config_file(config)
            .with_notifier(notifier);
        Ok(Self {
            app,
            daemon,
            state,
            systemd,
            listener,
            serve_options,
            max_pull_failures,
        })
    }

    /// Serve health and metrics, run the schedules until SIGTERM/SIGINT
    /// (SIGHUP reloads the HR source), then stop cleanly.
    pub(crate) async fn run_until_stopped(self) -> Result<(), Failure> {
        let app = self.app;
        let listener = self.listener;
        let listen = listener.local_addr().map_err(Failure::runtime)?;
        let shutdown = CancellationToken::new();
        let server = {
            let router = router(Arc::new(ServerState {
                app: app.clone(),
                daemon: self.state,
                max_pull_failures: self.max_pull_failures,
            }));
            let stop = shutdown.clone();
            tokio::spawn(serve(
                listener,
                router,
                self.serve_options,
                stop.cancelled_owned(),
            ))
        };
        tracing::info!(%listen, "health and metrics server listening (/healthz, /readyz, /metrics)");
        let reload = Arc::new(Notify::new());
        let signals = {
            let (shutdown, reload) = (shutdown.clone(), reload.clone());
            tokio::spawn(async move { forward_signals(shutdown, reload).await })
        };
        let systemd = self.systemd;
        systemd.ready("started; first pull");
        // STOPPING=1 as soon as a stop is asked for, not after the run in flight.
        let stopping = {
            let (systemd, shutdown) = (systemd.clone(), shutdown.clone());
            tokio::spawn(async move {
                shutdown.cancelled().await;
                systemd.stopping();
            })
        };
        // WATCHDOG=1 from the daemon's own task, while its loop is polled.
        systemd
            .supervise(self.daemon.run(shutdown.clone(), reload))
            .await;
        shutdown.cancel();
        let _ = stopping.await;
        signals.abort();
        if let Ok(Err(e)) = server.await {
            tracing::warn!(error = %e, "the health server ended with an error");
        }
        app.store.close().await;
        tracing::info!("stopped cleanly");
        Ok(())
    }
}

/// SIGTERM/SIGINT cancel `shutdown`; SIGHUP wakes `reload`.
async fn forward_signals(shutdown: CancellationToken, reload: Arc<Notify>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(_) => {
                crate::exit::stop_signal().await;
                shutdown.cancel();
                return;
            }
        };
        loop {
            tokio::select! {
                _ = crate::exit::stop_signal() => {
                    tracing::info!("stop requested: finishing the request in flight");
                    shutdown.cancel();
                    return;
                }
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: the HR source will be reloaded");
                    reload.notify_one();
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = reload;
        crate::exit::stop_signal().await;
        shutdown.cancel();
    }
}
