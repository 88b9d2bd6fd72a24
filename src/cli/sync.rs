//! `cliq-sync sync [--full] [--json] [--allow-removals]`: one pull, then
//! exit, with its one-line (or JSON) report and its exit code.

use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::{settings_logged, Failure};
use crate::app::App;
use crate::config::Settings;
use crate::sync::{PullKind, PullReport};

/// `sync`: load the settings, pull once.
pub(super) async fn command(
    config: Option<&Path>,
    full: bool,
    allow_removals: bool,
    json: bool,
) -> Result<(), Failure> {
    let settings = settings_logged(config)?;
    sync_once(settings, full, allow_removals, json).await
}

/// `cliq-sync sync [--full] [--json] [--allow-removals]`: one pull, then
/// exit. SIGINT/SIGTERM stop it cleanly (the run is recorded as `stopped`,
/// nobody is marked removed) and it exits 130/143. A full pull held by the
/// removal circuit breaker exits 3.
async fn sync_once(
    settings: Settings,
    full: bool,
    allow_removals: bool,
    json: bool,
) -> Result<(), Failure> {
    let app = App::open(settings).await.map_err(Failure::config)?;
    let cancel = CancellationToken::new();
    let stopper = crate::exit::SignalWatch::spawn(cancel.clone(), |signal| {
        tracing::info!(
            signal = signal.name(),
            "stop requested; ending the pull after the page in flight"
        );
    });
    let kind = if full {
        PullKind::Full
    } else {
        PullKind::Incremental
    };
    let mut opts = app.pull_options();
    opts.allow_removals = allow_removals;
    // A live bar on a terminal only, never under --json.
    let bar = crate::progress::LiveBar::attach(&app.store, json);
    let report = crate::sync::pull_with(&app, kind, &opts, &cancel).await;
    if let Some(bar) = bar {
        bar.finish();
    }
    let report = report.map_err(Failure::runtime)?;
    let signal = stopper.caught();
    drop(stopper);
    app.store.close().await;
    if json {
        println!(
            "{}",
            crate::json::document(&report).map_err(Failure::runtime)?
        );
    } else {
        println!("{}", report_line(&report));
    }
    match report.status.as_str() {
        "stopped" => crate::exit::stopped("pull", signal),
        "ok" => Ok(()),
        "held" => Err(Failure {
            code: 3,
            error: anyhow::anyhow!(
                "the full pull was {}",
                report
                    .error
                    .as_deref()
                    .unwrap_or("held by a safety threshold")
            ),
        }),
        _ => Err(Failure::runtime(anyhow::anyhow!(
            "the pull failed: {}",
            report.error.as_deref().unwrap_or("unknown error")
        ))),
    }
}

/// One human line about a pull.
pub fn report_line(r: &PullReport) -> String {
    let mut line = format!(
        "{} pull #{} {}: {} users seen, {} added, {} changed, {} removed, {} requests, {:.1?}",
        r.kind,
        r.run_id,
        r.status,
        r.users_seen,
        r.added,
        r.changed,
        r.removed,
        r.requests,
        r.elapsed
    );
    if let Some(why) = &r.escalated {
        line.push_str(&format!(" ({why})"));
    }
    line
}
