//! Assembling the parts from the settings: mirror, quota scheduler, token
//! cache and client. Every command and the daemon start here.

use std::sync::Arc;

use anyhow::Context;

use crate::cliq::auth::{AuthConfig, TokenManager};
use crate::cliq::client::{ClientConfig, CliqClient};
use crate::cliq::dc::DataCenter;
use crate::cliq::quotas::QuotaScheduler;
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
        let store = Store::open(&settings.mirror.path, &clock).await?;
        let abandoned = store.abandon_running_runs(clock.now()).await?;
        if abandoned > 0 {
            tracing::warn!(
                runs = abandoned,
                "runs left unfinished by an earlier process were marked failed"
            );
        }
        let limits = settings.limits.to_limits()?;
        let scheduler = QuotaScheduler::new(&store, limits);
        let (api, accounts) = endpoints(&settings)?;
        let mut auth_cfg = AuthConfig::new(
            accounts,
            settings.cliq.client_id.clone(),
            settings.client_secret()?,
            settings.refresh_token()?,
        );
        auth_cfg.request_timeout = settings.cliq.request_timeout;
        let auth = Arc::new(TokenManager::new(
            auth_cfg,
            transport.clone(),
            scheduler.clone(),
        ));
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
            layouts: true,
        }
    }
}
