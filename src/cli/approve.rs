//! `cliq-sync approve [--json] [ID]`: list the held plans and held full
//! pulls, or release exactly one held plan (see `crate::sync::approve`).
//! Reads the mirror and the HR source only; sends nothing to Cliq.

use super::{load_hr, settings_logged, Failure};
use crate::clock::Clock;
use crate::sync::approve::{self, ApproveError, HeldEntry};
use crate::sync::push::PushOptions;

/// The `approve --json` document (shape fixed by the product contract).
#[derive(serde::Serialize)]
struct Listing<'a> {
    held: &'a [HeldEntry],
}

pub(super) async fn command(
    config: Option<&std::path::Path>,
    json: bool,
    id: Option<String>,
) -> Result<(), Failure> {
    let settings = settings_logged(config)?;
    let store = crate::mirror::Store::open(&settings.mirror.path, &Clock::system())
        .await
        .map_err(Failure::runtime)?;
    let Some(id) = id else {
        let held = approve::list(&store).await.map_err(Failure::runtime)?;
        if json {
            let doc = crate::json::document(&Listing { held: &held }).map_err(Failure::runtime)?;
            println!("{doc}");
        } else {
            print!("{}", render(&held));
        }
        return Ok(());
    };
    let hr = load_hr(&settings).await?;
    let opts = PushOptions::from_settings(&settings, false, false)
        .map_err(|m| Failure::config(anyhow::anyhow!("hr.managed_fields: {m}")))?;
    let limits = settings.limits.to_limits().map_err(Failure::config)?;
    match approve::approve(&store, &limits, &hr, &opts, &id).await {
        Ok(p) => {
            println!(
                "Approved {} ({} changes): the next push whose plan is exactly this one \
                 passes the safety thresholds once (the daemon's next push tick, or `cliq-sync push`).",
                p.id, p.changes
            );
            Ok(())
        }
        Err(e @ (ApproveError::Unknown { .. } | ApproveError::FullPull { .. })) => {
            Err(Failure::config(e))
        }
        Err(e @ ApproveError::Changed { .. }) => Err(Failure {
            code: 3,
            error: e.into(),
        }),
        Err(e) => Err(Failure::runtime(e)),
    }
}

/// The human listing: one block per held plan or pull, with what to run.
fn render(held: &[HeldEntry]) -> String {
    if held.is_empty() {
        return "Nothing is held.\n".to_owned();
    }
    let mut out = String::new();
    for h in held {
        let next = match (h.kind, h.approved) {
            ("full", _) => "confirm with `cliq-sync sync --full --allow-removals`".to_owned(),
            (_, true) => "approved: the next push of exactly this plan sends it".to_owned(),
            _ => format!(
                "review with `cliq-sync plan`, then `cliq-sync approve {}`",
                h.id
            ),
        };
        out.push_str(&format!(
            "{}  {} run {}, {} changes, held {}\n    {}\n    {next}\n",
            h.id,
            h.kind,
            h.run_id,
            h.changes,
            h.held_at,
            crate::text::escape(&h.reason)
        ));
    }
    out
}
