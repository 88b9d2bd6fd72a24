//! The clap definitions of the command line (names fixed by the product
//! contract): [`Cli`], its [`Command`]s and the `simulate` flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cliq-sync",
    version,
    about = "Mirror a Zoho Cliq organisation's users into SQLite and push HR changes, within Cliq's rate limits."
)]
pub struct Cli {
    /// Config file (TOML). Every key can be overridden by CLIQ_SYNC__SECTION__KEY.
    #[arg(long, global = true, env = "CLIQ_SYNC_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the `simulate` variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The daemon: cron schedules, health/metrics server, graceful stop on SIGTERM/SIGINT.
    Run,
    /// One pull now (incremental unless --full or the watermark is too old), then exit.
    Sync {
        /// A full pull (every user, removals marked) instead of an incremental one.
        #[arg(long)]
        full: bool,
        /// Print the pull's result as one JSON document.
        #[arg(long)]
        json: bool,
        /// Let this full pull mark more users removed than [sync]
        /// max_removals / max_removal_fraction allow (after a held full pull).
        #[arg(long)]
        allow_removals: bool,
    },
    /// What a push would change in Cliq, per user and field; writes nothing to Cliq.
    Plan {
        /// Print the plan as one JSON document.
        #[arg(long)]
        json: bool,
        /// Also write the plan, with the mirror values it was made against,
        /// to FILE (mode 0600) for review and `push --plan FILE`.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// One push now.
    Push {
        /// Plan and check as a push would, but send nothing to Cliq.
        #[arg(long)]
        dry_run: bool,
        /// Pass the safety thresholds.
        #[arg(long)]
        force: bool,
        /// Print the plan and the push's result as one JSON document.
        #[arg(long)]
        json: bool,
        /// Try remembered permanent failures again now (instead of after
        /// [push] retry_failed_after).
        #[arg(long)]
        retry_failed: bool,
        /// Push exactly the reviewed plan file FILE (from `plan --out`),
        /// nothing recomputed from HR; parts changed since are refused (exit 3).
        #[arg(long, value_name = "FILE")]
        plan: Option<PathBuf>,
    },
    /// Push the inverse of push run RUN from its before-values (fields
    /// changed since are skipped; adds cannot be undone).
    Undo {
        /// The push run to undo (`cliq-sync status` lists the runs).
        run: i64,
        /// Check and show what would be sent, send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Pass the safety thresholds.
        #[arg(long)]
        force: bool,
        /// Print the plan and the result as one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// No ID: list held plans and held full pulls; ID: release exactly that held plan.
    Approve {
        /// Print the list as one JSON document.
        #[arg(long)]
        json: bool,
        /// The held plan to release (from the list, e.g. H12).
        id: Option<String>,
    },
    /// Last runs, watermark, endpoint lock states, mirror counts.
    Status {
        /// Print the status as one JSON document.
        #[arg(long)]
        json: bool,
        /// Exit 0 when healthy, 1 otherwise, printing the reasons (last pull
        /// failed, watermark near 7 days, endpoint locked, push or full pull
        /// held, HR source invalid): for cron, Nagios, monit.
        #[arg(long)]
        check: bool,
    },
    /// Load and validate the config and HR source, print the effective config (secrets masked).
    CheckConfig {
        /// Also mint an access token and list one user (checks the
        /// credentials, the data centre and the scope ZohoCliq.Users.READ).
        #[arg(long)]
        online: bool,
    },
    /// Serve the built-in Cliq API simulator (API and OAuth on one port).
    Simulate(SimulateArgs),
    /// The embedded default: simulator on loopback, sync, plan, push, mutate, sync again.
    Demo,
}

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Address to serve the API and OAuth on (IP:PORT).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Users in the generated org.
    #[arg(long, default_value_t = 200)]
    pub users: usize,
    /// Seed of the generated org (the same seed, the same org).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Multiplies every quota window and lock period (0.1: 6 s windows, 1-minute locks).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// The OAuth client ID accepted (default printed at start).
    #[arg(long)]
    pub client_id: Option<String>,
    /// The OAuth client secret accepted (default printed at start).
    #[arg(long)]
    pub client_secret: Option<String>,
    /// The refresh token accepted (default printed at start).
    #[arg(long)]
    pub refresh_token: Option<String>,
    /// Access-token lifetime in seconds.
    #[arg(long)]
    pub token_ttl: Option<u64>,
    /// Lift every API quota (benchmarks of raw speed only; never like Cliq).
    #[arg(long)]
    pub unlimited: bool,
    /// Fraction (0..1) of API requests answered 500/502/503, after counting against the quota.
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    pub fail_rate: f64,
    /// Fraction (0..1) of 200 API answers whose body is cut in half.
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    pub truncate_rate: f64,
    /// Delay added to every API answer, e.g. 250ms or 2s.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub latency: Option<Duration>,
    /// The simulator's clock is the real clock plus this (signed): -10m runs ten
    /// minutes behind, 10m ten minutes ahead. It drives quotas, cursors,
    /// modification times and the Date header.
    #[arg(long, allow_hyphen_values = true, value_parser = parse_signed_duration)]
    pub clock_offset: Option<chrono::Duration>,
    /// OAuth scopes granted to the refresh token, comma-separated (default:
    /// ZohoCliq.Users.READ,ZohoCliq.Users.CREATE,ZohoCliq.Users.UPDATE); a
    /// call without its endpoint's scope is answered 401 oauth_scope_mismatch.
    #[arg(long, value_delimiter = ',')]
    pub scopes: Option<Vec<String>>,
    /// The one PUT body shape accepted: the documented `wrapped` ({"users":[{email_id,…}]},
    /// email_id required) or `flat` (match `[cliq] update_body`).
    #[arg(long, default_value = "wrapped", value_parser = ["wrapped", "flat"])]
    pub update_body: String,
}

/// A fraction from 0 to 1 (`--fail-rate`, `--truncate-rate`).
fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!(
            "expected a fraction from 0 to 1 (0.05 is 5%), not {s:?}"
        )),
    }
}

/// A humantime duration with an optional sign: `-10m`, `+90s`, `1h`.
fn parse_signed_duration(s: &str) -> Result<chrono::Duration, String> {
    let (negative, text) = match s.trim() {
        t if t.starts_with('-') => (true, &t[1..]),
        t => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e} (examples: -10m, 10m, +90s)"))?;
    let d = chrono::Duration::from_std(d).map_err(|e| e.to_string())?;
    Ok(if negative { -d } else { d })
}
#[cfg(test)]
mod retry_failed_tests {
    use clap::Parser;

    use super::{Cli, Command};

    #[test]
    fn push_takes_retry_failed() {
        let cli = Cli::try_parse_from(["cliq-sync", "push", "--retry-failed"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Push {
                retry_failed: true,
                force: false,
                dry_run: false,
                json: false,
                plan: None,
            }
        ));
    }

    #[test]
    fn push_takes_a_plan_file_and_undo_a_run() {
        let cli = Cli::try_parse_from(["cliq-sync", "push", "--plan", "p.json"]).unwrap();
        assert!(
            matches!(cli.command, Command::Push { plan: Some(p), .. } if p.as_os_str() == "p.json")
        );
        let cli = Cli::try_parse_from(["cliq-sync", "undo", "7", "--dry-run"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Undo {
                run: 7,
                dry_run: true,
                force: false,
                json: false
            }
        ));
        assert!(Cli::try_parse_from(["cliq-sync", "undo"]).is_err());
    }
}

#[cfg(test)]
mod help_tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every subcommand and every argument (flags and options, at every
    /// level) has a help text: `--help` describes every flag.
    #[test]
    fn every_subcommand_and_argument_has_a_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg
                    .get_help()
                    .is_none_or(|h| h.to_string().trim().is_empty())
                {
                    missing.push(format!("{path} --{id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                let name = format!("{path} {}", sub.get_name());
                if sub
                    .get_about()
                    .is_none_or(|h| h.to_string().trim().is_empty())
                {
                    missing.push(name.clone());
                }
                walk(sub, &name, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "cliq-sync", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }
}
