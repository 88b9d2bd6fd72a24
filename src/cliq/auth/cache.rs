//! The token shared across processes: adopting a fresh one from `<mirror>.token`, publishing a minted one.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::{Cached, TokenManager};
use crate::cliq::token_file::{fingerprint, CachedToken};

impl TokenManager {
    pub(super) fn fingerprint(&self) -> String {
        fingerprint(
            &self.cfg.client_id,
            &self.cfg.accounts_base,
            &self.cfg.refresh_token,
        )
    }

    /// The shared cache's token, if it is not due for refresh and is not
    /// the one Cliq refused.
    pub(super) fn adopt(&self) -> Option<Cached> {
        let file = self.file.as_ref()?;
        let t = file.read(&self.fingerprint())?;
        let refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        if refused
            .as_ref()
            .is_some_and(|r| r.expose_secret() == t.token.expose_secret())
        {
            return None;
        }
        drop(refused);
        let now_utc = file.clock().now();
        let ttl = (t.expires_at - t.minted_at).to_std().unwrap_or_default();
        let now = Instant::now();
        let expires_at = now + crate::clock::until(now_utc, t.expires_at);
        let refresh_at = expires_at.checked_sub(self.cfg.skew_for(ttl))?;
        (now < refresh_at).then(|| {
            tracing::debug!("using the access token cached beside the mirror");
            Cached {
                token: t.token,
                expires_at,
                refresh_at,
            }
        })
    }

    /// Share a freshly minted token (a failure only costs the sharing).
    pub(super) fn publish(&self, token: &SecretString, ttl: Duration) {
        let Some(file) = &self.file else { return };
        let minted_at = file.clock().now();
        let t = CachedToken {
            token: token.clone(),
            minted_at,
            expires_at: minted_at + chrono::Duration::from_std(ttl).unwrap_or_default(),
        };
        if let Err(e) = file.write(&self.fingerprint(), &t) {
            tracing::warn!(path = %file.path().display(), error = %e, "cannot write the access-token cache; other processes will mint their own");
        }
    }
}
