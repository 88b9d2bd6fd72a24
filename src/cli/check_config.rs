//! `cliq-sync check-config [--online]`: load and validate the config and the
//! HR source, print the effective config (secrets masked); `--online` also
//! tries the credentials (see `crate::check_config`).

use std::path::Path;

use super::{load_hr, load_settings, Failure};
use crate::logging::init_logging;

pub(super) async fn command(config: Option<&Path>, online: bool) -> Result<(), Failure> {
    let settings = load_settings(config)?;
    // The secrets must be readable (and private) where this runs.
    settings.check_secrets().map_err(Failure::config)?;
    print!("{}", crate::check_config::origin_comment(config));
    print!("{}", settings.to_masked_toml());
    for key in settings.limits.above_documented() {
        println!(
            "# {key} is above Cliq's documented quota (allowed by [limits] \
             allow_above_documented = true): exceeding a real quota locks the endpoint"
        );
    }
    if settings.hr.is_some() {
        let hr = load_hr(&settings).await?;
        println!(
            "# HR source {}: {} records, valid",
            hr.path.display(),
            hr.len()
        );
    }
    if online {
        init_logging(&settings.log.level, &settings.log.format);
        crate::check_config::online(settings).await?;
    }
    Ok(())
}
