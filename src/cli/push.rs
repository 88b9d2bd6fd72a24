//! `cliq-sync push [--dry-run] [--force] [--json] [--retry-failed]`, and
//! what every push command shares: running it under the signal watch with
//! the live bar ([`drive_push`]) and printing its result ([`print_push`]).

use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::{load_hr, settings_logged, Failure};
use crate::app::App;
use crate::sync::push::{PushError, PushOutcome, PushReport};

/// `push [--dry-run] [--force] [--json] [--retry-failed]`: exit 3 when a
/// safety threshold stops it, 130/143 when a signal does.
pub(super) async fn command(
    config: Option<&Path>,
    dry_run: bool,
    force: bool,
    retry_failed: bool,
    json: bool,
) -> Result<(), Failure> {
    use crate::sync::push::{push, PushOptions};
    let settings = settings_logged(config)?;
    let hr = load_hr(&settings).await?;
    let mut opts = PushOptions::from_settings(&settings, dry_run, force)
        .map_err(|m| Failure::config(anyhow::anyhow!("hr.managed_fields: {m}")))?;
    opts.plan.retry_failed = retry_failed;
    let app = App::open(settings).await.map_err(Failure::runtime)?;
    let limits = app.scheduler.limits().clone();
    let (store, client) = (&app.store, &app.client);
    let pushing = |cancel| async move { push(store, client, &limits, &hr, &opts, &cancel).await };
    let (out, caught) = drive_push(&app, json, pushing).await?;
    print_push(&out, json, caught)
}

/// Run a push (`run` gets its cancellation token) under the SIGINT/SIGTERM
/// watch, with the live bar on a terminal (never under --json). A safety
/// stop exits 3. Returns the outcome and the signal caught, if any.
pub(super) async fn drive_push<Fut>(
    app: &App,
    json: bool,
    run: impl FnOnce(CancellationToken) -> Fut,
) -> Result<(PushOutcome, Option<crate::exit::StopSignal>), Failure>
where
    Fut: std::future::Future<Output = Result<PushOutcome, PushError>>,
{
    let cancel = CancellationToken::new();
    let stopper = crate::exit::SignalWatch::spawn(cancel.clone(), |signal| {
        eprintln!(
            "{}: stopping: the request in flight ends, the rest is left for the next push",
            signal.name()
        );
    });
    let bar = crate::progress::LiveBar::attach(&app.store, json);
    let pushed = run(cancel).await;
    if let Some(bar) = bar {
        bar.finish();
    }
    match pushed {
        Ok(out) => Ok((out, stopper.caught())),
        Err(e @ PushError::Safety(_)) => Err(Failure {
            code: 3,
            error: e.into(),
        }),
        Err(e) => Err(Failure::runtime(e)),
    }
}

/// Print a push's plan and result (text or one JSON document) and turn
/// it into the exit code.
pub(super) fn print_push(
    out: &PushOutcome,
    json: bool,
    caught: Option<crate::exit::StopSignal>,
) -> Result<(), Failure> {
    let r = &out.report;
    if json {
        println!("{}", crate::json::document(&out).map_err(Failure::runtime)?);
    } else {
        print_plan(out);
    }
    if let Some(note) = crate::exit::nothing_sent(&r.status) {
        // JSON readers get the status; the sentence is for the person.
        if json {
            eprintln!("{note}");
        } else {
            println!("\n{note}");
        }
        return Ok(());
    }
    if !json {
        print_result(r);
    }
    crate::exit::push_result(r, caught)
}

/// The plan, and a given plan's parts not sent (changed since, gone,
/// impossible).
fn print_plan(out: &PushOutcome) {
    print!("{}", crate::sync::plan::render(&out.plan));
    for f in &out.report.refused {
        println!(
            "  refused {} {}{}: {}",
            f.action,
            crate::text::escape(&f.email),
            f.field
                .as_deref()
                .map(|x| format!(" {x}"))
                .unwrap_or_default(),
            crate::text::escape(&f.reason)
        );
    }
}

/// The push run's one-line result and its failures.
fn print_result(r: &PushReport) {
    println!(
        "\nPush run {}: {}; {} updated, {} added ({} already present), {} failed, {} skipped, {} reconciled; {} requests in {:.0}s.",
        r.run_id.unwrap_or_default(),
        r.status,
        r.updates_applied,
        r.adds_applied,
        r.adds_already_present,
        r.failed,
        r.skipped,
        r.reconciled,
        r.requests,
        r.elapsed_secs
    );
    for f in &r.failures {
        println!(
            "  failed {} {}: {}{}",
            f.action,
            crate::text::escape(&f.email),
            crate::text::escape(&f.message),
            if f.permanent {
                " (not retried until the HR values change or push.retry_failed_after has passed)"
            } else {
                ""
            }
        );
    }
}
