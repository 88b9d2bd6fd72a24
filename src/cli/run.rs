//! `cliq-sync run`: the daemon, built and run by `crate::startup`.

use std::path::Path;

use super::{settings_logged, Failure};

pub(super) async fn command(config: Option<&Path>) -> Result<(), Failure> {
    let settings = settings_logged(config)?;
    crate::startup::Application::build(settings, config)
        .await?
        .run_until_stopped()
        .await
}
