//! The command line (names fixed by the product contract). `main.rs` calls
//! [`main`]; every command returns an [`ExitCode`] per the contract:
//! 0 success, 1 runtime failure, 2 bad config / HR source / arguments,
//! 3 a safety threshold stopped the push.
//!
//! The clap definitions are in `args`; each command (or group) has its
//! handler, parse → build → call → report: `sync`, `status`, `plan`,
//! `push` (and what every push shares), `given` (`push --plan`, `undo`),
//! `approve`, `check_config`, `run`, `simulate`.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

use crate::config::Settings;
use crate::exit::{error_chain, Failure};
use crate::logging::init_logging;

mod approve;
mod args;
mod check_config;
mod given;
mod plan;
mod push;
mod run;
mod simulate;
mod status;
mod sync;

pub use args::{Cli, Command, SimulateArgs};
pub use simulate::build_simulator;
pub use sync::report_line;

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let no_file = cli.config.is_none();
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            // Errors quote HR values and Cliq's messages: escape them.
            eprintln!(
                "error: {}",
                crate::text::escape_lines(&error_chain(&f.error))
            );
            // A config refusal without a file is often a forgotten --config.
            if f.code == 2 && no_file {
                eprintln!(
                    "note: no config file was loaded (give one with --config FILE or \
                     CLIQ_SYNC_CONFIG): only the defaults and CLIQ_SYNC__ variables were read"
                );
            }
            ExitCode::from(f.code)
        }
    }
}

async fn dispatch(cli: Cli) -> Result<(), Failure> {
    let config = cli.config.as_deref();
    match cli.command {
        Command::Simulate(args) => {
            init_logging("info", &crate::config::LogFormat::Pretty);
            simulate::command(args).await
        }
        Command::CheckConfig { online } => check_config::command(config, online).await,
        Command::Sync {
            full,
            json,
            allow_removals,
        } => sync::command(config, full, allow_removals, json).await,
        Command::Status { json, check } => status::command(config, json, check).await,
        Command::Run => run::command(config).await,
        Command::Plan { json, out } => plan::command(config, json, out.as_deref()).await,
        Command::Push {
            dry_run,
            force,
            json,
            plan: Some(file),
            ..
        } => given::push_plan_file(config, &file, dry_run, force, json).await,
        Command::Push {
            dry_run,
            force,
            json,
            retry_failed,
            plan: None,
        } => push::command(config, dry_run, force, retry_failed, json).await,
        Command::Undo {
            run,
            dry_run,
            force,
            json,
        } => given::undo(config, run, dry_run, force, json).await,
        Command::Approve { json, id } => approve::command(config, json, id).await,
        Command::Demo => crate::demo::main().await,
    }
}

/// Load and validate the settings; errors exit with code 2.
pub fn load_settings(file: Option<&Path>) -> Result<Settings, Failure> {
    Settings::load(file).map_err(Failure::config)
}

/// Load the settings (errors exit with code 2) and start logging as they
/// say: the first step of every command that logs.
fn settings_logged(file: Option<&Path>) -> Result<Settings, Failure> {
    let settings = load_settings(file)?;
    init_logging(&settings.log.level, &settings.log.format);
    Ok(settings)
}

/// Load and validate the `[hr]` source; every problem exits with code 2.
pub async fn load_hr(settings: &Settings) -> Result<crate::hr::HrSource, Failure> {
    let hr = settings.hr.as_ref().ok_or_else(|| {
        Failure::config(anyhow::anyhow!(
            "no HR source configured: set [hr] source in the config file (or CLIQ_SYNC__HR__SOURCE)"
        ))
    })?;
    let mapping = hr.mapping().map_err(Failure::config)?;
    crate::hr::load_mapped(&hr.source, &mapping)
        .await
        .map_err(Failure::config)
}
