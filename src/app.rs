//! Assembling the parts from the settings: mirror, quota scheduler, token
//! cache and client. Every command and the daemon start here.

use std::sync::Arc;

use anyhow::Context;

use crate::cliq::auth::{AuthConfig, TokenManager};
use crate::cliq::client::{ClientConfig, CliqClient};
use crate::cliq::dc::DataCenter;
use crate::cliq::quotas::QuotaScheduler;
use crate::cliq::token_file::TokenFile;
use crate::cliq::transport::{ReqwestTransport, Transport};
use crate::clock::Clock;
use crate::config::Settings;
use crate::mirror::Store;
use crate::sync::{PullOptions, TeamsMode};

/// The assembled program state.
#[derive(Clone)]
pub struct App {
    pub settings: Settings,
    pub store: Store,
    pub scheduler: QuotaScheduler,
    pub auth: Arc<TokenManager>,
    pub client: CliqClient,
}

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

/// Shows what the app talks to, never a secret (the token manager redacts
/// its own).
impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("settings", &self.settings)
            .field("mirror", &self.store.path())
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
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
        client_cfg.modified_after_format = settings
            .cliq
            .modified_after_format
            .parse()
            .map_err(|e: String| anyhow::anyhow!("cliq.modified_after_format: {e}"))?;
        client_cfg.update_body = settings
            .cliq
            .update_body
            .parse()
            .map_err(|e: String| anyhow::anyhow!("cliq.update_body: {e}"))?;
        let client = CliqClient::new(client_cfg, transport, auth.clone(), scheduler.clone());
        Ok(App {
            settings,
            store,
            scheduler,
            auth,
            client,
        })
    }

    pub fn pull_options(&self) -> PullOptions {
        let s = &self.settings.sync;
        PullOptions {
            overlap: s.overlap,
            window_margin: s.window_margin,
            teams: s.teams.parse().unwrap_or(TeamsMode::Changed),
            teams_per_run: s.teams_per_run,
            per_status: s.status_listing == "per_status",
            layouts: true,
            max_removals: s.max_removals,
            max_removal_fraction: s.max_removal_fraction,
            allow_removals: false,
        }
    }
}
