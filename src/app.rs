//! The assembled parts every command and the daemon share: settings,
//! mirror, quota scheduler, token cache and client. [`crate::startup`]
//! builds them; the layers below take the parts they need (a pull takes
//! [`PullParts`], not the whole app), so nothing under this module reaches
//! up to it.

use std::sync::Arc;

use crate::cliq::auth::TokenManager;
use crate::cliq::client::CliqClient;
use crate::cliq::quotas::QuotaScheduler;
use crate::config::Settings;
use crate::mirror::Store;
use crate::sync::{PullOptions, PullParts};

/// The assembled program state.
#[derive(Clone)]
pub struct App {
    pub settings: Settings,
    pub store: Store,
    pub scheduler: QuotaScheduler,
    pub auth: Arc<TokenManager>,
    pub client: CliqClient,
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
    pub fn pull_options(&self) -> PullOptions {
        PullOptions::from(&self.settings.sync)
    }
}

/// A pull of this app: its store and client, the configured options.
impl<'a> From<&'a App> for PullParts<'a> {
    fn from(app: &'a App) -> Self {
        PullParts {
            store: &app.store,
            client: &app.client,
            scheduler: &app.scheduler,
            page_size: app.settings.cliq.page_size,
            options: app.pull_options(),
        }
    }
}
