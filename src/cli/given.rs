//! `push --plan FILE` and `undo RUN`: pushes of a given plan (see
//! `sync::push::given`). Exit codes: 2 for a plan file that cannot be used
//! or a RUN that cannot be undone, 3 when a safety threshold stopped it or
//! any part was refused (listed), 130/143 on a signal, 1 otherwise failed.

use std::path::Path;

use super::push::{drive_push, print_push};
use super::{settings_logged, Failure};
use crate::config::Settings;
use crate::sync::push::{push_given, Given, PushOptions};
use crate::sync::undo::UndoError;

/// `push --plan FILE [--dry-run] [--force] [--json]`.
pub(super) async fn push_plan_file(
    config: Option<&Path>,
    file: &Path,
    dry_run: bool,
    force: bool,
    json: bool,
) -> Result<(), Failure> {
    let settings = settings_logged(config)?;
    // Checked whole before anything opens a connection.
    let given =
        crate::sync::reviewed::read(file, &settings.mirror.path).map_err(Failure::config)?;
    let app = crate::app::App::open(settings.clone())
        .await
        .map_err(Failure::runtime)?;
    run(&settings, &app, &given, dry_run, force, json).await
}

/// `undo RUN [--dry-run] [--force] [--json]`.
pub(super) async fn undo(
    config: Option<&Path>,
    run_id: i64,
    dry_run: bool,
    force: bool,
    json: bool,
) -> Result<(), Failure> {
    let settings = settings_logged(config)?;
    let app = crate::app::App::open(settings.clone())
        .await
        .map_err(Failure::runtime)?;
    let given = match crate::sync::undo::given(&app.store, run_id).await {
        Ok(given) => given,
        Err(e @ (UndoError::Store(_) | UndoError::Running(_))) => return Err(Failure::runtime(e)),
        Err(e) => return Err(Failure::config(e)),
    };
    run(&settings, &app, &given, dry_run, force, json).await
}

async fn run(
    settings: &Settings,
    app: &crate::app::App,
    given: &Given,
    dry_run: bool,
    force: bool,
    json: bool,
) -> Result<(), Failure> {
    let opts = PushOptions::from_settings(settings, dry_run, force)
        .map_err(|m| Failure::config(anyhow::anyhow!("hr.managed_fields: {m}")))?;
    let limits = app.scheduler.limits().clone();
    let (store, client) = (&app.store, &app.client);
    let pushing =
        |cancel| async move { push_given(store, client, &limits, given, &opts, &cancel).await };
    let (out, caught) = drive_push(app, json, pushing).await?;
    print_push(&out, json, caught)?;
    let refused = out.report.refused.len();
    if refused == 0 {
        return Ok(());
    }
    Err(Failure {
        code: 3,
        error: anyhow::anyhow!(
            "{refused} part(s) of {} were refused (listed above: changed since, gone, or \
             impossible); the rest was {}",
            given.source,
            if dry_run {
                "checked, nothing sent"
            } else {
                "pushed"
            }
        ),
    })
}
