//! `cliq-sync plan [--json] [--out FILE]`: what a push would change.

use std::path::Path;

use super::{load_hr, settings_logged, Failure};
use crate::clock::Clock;

/// `plan [--json] [--out FILE]`: reads the mirror only; needs no Cliq credentials.
pub(super) async fn command(
    config: Option<&Path>,
    json: bool,
    out: Option<&Path>,
) -> Result<(), Failure> {
    use crate::sync::plan::{plan, render, PlanOptions};
    let settings = settings_logged(config)?;
    let hr = load_hr(&settings).await?;
    let opts = PlanOptions::from_settings(&settings)
        .map_err(|m| Failure::config(anyhow::anyhow!("hr.managed_fields: {m}")))?;
    let limits = settings.limits.to_limits().map_err(Failure::config)?;
    let store = crate::mirror::Store::open(&settings.mirror.path, &Clock::system())
        .await
        .map_err(Failure::runtime)?;
    let plan = plan(&store, &hr, &opts, &limits)
        .await
        .map_err(Failure::runtime)?;
    if json {
        println!(
            "{}",
            crate::json::document(&plan).map_err(Failure::runtime)?
        );
    } else {
        print!("{}", render(&plan));
    }
    if let Some(out) = out {
        crate::sync::reviewed::write(&store, &plan, out)
            .await
            .map_err(Failure::runtime)?;
        eprintln!(
            "plan written to {} ({} updates, {} adds): review it, then `cliq-sync push --plan {0}`",
            out.display(),
            plan.summary.updates,
            plan.summary.adds
        );
    }
    Ok(())
}
