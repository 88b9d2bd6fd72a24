//! `cliq-sync check-config [--online]`: the effective configuration as
//! valid TOML (secrets masked, the effective quota of every endpoint), and
//! with `--online` a token minted and one user listed, the cheapest proof
//! that the credentials, the data centre and the scopes are right.

use std::path::Path;

use crate::app::App;
use crate::cliq::error::CliqError;
use crate::cliq::models::ListUsersParams;
use crate::config::Settings;
use crate::exit::Failure;

/// The scope every mirror needs (listing users).
pub(crate) const READ_SCOPE: &str = "ZohoCliq.Users.READ";

/// The first lines of the output: where the settings came from (TOML
/// comments, so the whole output stays valid TOML).
pub(crate) fn origin_comment(file: Option<&Path>) -> String {
    match file {
        Some(p) => format!(
            "# config file {} (CLIQ_SYNC__ variables override it)\n",
            p.display()
        ),
        None => "# no config file loaded (defaults and CLIQ_SYNC__ variables only)\n".into(),
    }
}

/// `--online`: mint an access token, then list one user (`limit=1`), both
/// through the quota scheduler. The mirror is opened for its quota ledger
/// and locks, shared with the daemon.
pub async fn online(settings: Settings) -> Result<(), Failure> {
    let app = App::open(settings).await.map_err(Failure::config)?;
    let result = probe(&app).await;
    app.store.close().await;
    result
}

async fn probe(app: &App) -> Result<(), Failure> {
    let token_url = app.auth.config().token_url();
    app.auth.token().await.map_err(|e| {
        Failure::runtime(anyhow::anyhow!(
            "--online: no access token could be minted at {token_url}: {e}"
        ))
    })?;
    println!("# online: an access token was minted at {token_url}");
    let params = ListUsersParams {
        limit: Some(1),
        ..ListUsersParams::default()
    };
    let page = app
        .client
        .list_users_page(&params, None)
        .await
        .map_err(|e| Failure::runtime(anyhow::anyhow!("--online: {}", listing_problem(&e))))?;
    let who = page
        .users
        .first()
        .map(|u| crate::text::escape(u.email_id.as_deref().unwrap_or("(no email)")).into_owned())
        .unwrap_or_else(|| "the org has no users".into());
    println!(
        "# online: listed {} user with GET /users?limit=1 ({who}): the credentials and {READ_SCOPE} work",
        page.users.len()
    );
    Ok(())
}

/// A failed listing, said plainly when it is the scope: Cliq answers a
/// token without `ZohoCliq.Users.READ` 401 (even after a fresh token) or
/// 403 (scope errors may come as either).
pub(crate) fn listing_problem(e: &CliqError) -> String {
    let scope_code = |code: &Option<String>| {
        code.as_deref()
            .is_some_and(|c| c.to_ascii_lowercase().contains("scope"))
    };
    let scope = match e {
        // Still 401 with a fresh token: a scope problem when Cliq says so.
        CliqError::Unauthorized { message, .. } => message.to_ascii_lowercase().contains("scope"),
        CliqError::Permanent { status, code, .. } => *status == 403 || scope_code(code),
        _ => false,
    };
    if scope {
        format!(
            "the token lacks the scope {READ_SCOPE} (listing users was refused: {e}); mint a \
             new refresh token from a grant with the scopes \
             ZohoCliq.Users.READ,ZohoCliq.Users.CREATE,ZohoCliq.Users.UPDATE (README, \
             \"Configure against a real Cliq org\") and update refresh_token"
        )
    } else {
        format!("listing one user failed: {e}")
    }
}
