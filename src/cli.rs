//! The command line (names fixed by the product contract). `main.rs` calls
//! [`main`]; every command returns an [`ExitCode`] per the contract:
//! 0 success, 1 runtime failure, 2 bad config / HR source / arguments,
//! 3 a safety threshold stopped the push.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::clock::Clock;
use crate::config::Settings;
use crate::exit::{error_chain, Failure};
use crate::logging::init_logging;
use crate::mirror::Store;
use crate::sim::{SimConfig, Simulator};
use crate::sync::{PullKind, PullReport};

mod approve;

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

mod given;

async fn dispatch(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Simulate(args) => {
            init_logging("info", &crate::config::LogFormat::Pretty);
            simulate(args).await
        }
        Command::CheckConfig { online } => {
            let settings = load_settings(cli.config.as_deref())?;
            // The secrets must be readable (and private) where this runs.
            settings.check_secrets().map_err(Failure::config)?;
            print!(
                "{}",
                crate::check_config::origin_comment(cli.config.as_deref())
            );
            print!("{}", settings.to_masked_toml());
            for key in settings.limits.above_documented() {
                println!(
                    "# {key} is above Cliq's documented quota (allowed by [limits] \
                     allow_above_documented = true): exceeding a real quota locks the endpoint"
                );
            }
            if settings.hr.is_some() {
                let hr = load_hr(&settings)?;
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
        Command::Sync {
            full,
            json,
            allow_removals,
        } => {
            let settings = load_settings(cli.config.as_deref())?;
            init_logging(&settings.log.level, &settings.log.format);
            sync_once(settings, full, allow_removals, json).await
        }
        Command::Status { json, check } => {
            let settings = load_settings(cli.config.as_deref())?;
            init_logging(&settings.log.level, &settings.log.format);
            status(settings, json, check).await
        }
        Command::Run => {
            let settings = load_settings(cli.config.as_deref())?;
            init_logging(&settings.log.level, &settings.log.format);
            crate::startup::Application::build(settings, cli.config.as_deref())
                .await?
                .run_until_stopped()
                .await
        }
        Command::Plan { json, out } => {
            plan_command(cli.config.as_deref(), json, out.as_deref()).await
        }
        Command::Push {
            dry_run,
            force,
            json,
            plan: Some(file),
            ..
        } => given::push_plan_file(cli.config.as_deref(), &file, dry_run, force, json).await,
        Command::Push {
            dry_run,
            force,
            json,
            retry_failed,
            plan: None,
        } => push_command(cli.config.as_deref(), dry_run, force, retry_failed, json).await,
        Command::Undo {
            run,
            dry_run,
            force,
            json,
        } => given::undo(cli.config.as_deref(), run, dry_run, force, json).await,
        Command::Approve { json, id } => approve::command(cli.config.as_deref(), json, id).await,
        Command::Demo => crate::demo::main().await,
    }
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

async fn status(settings: Settings, json: bool, check: bool) -> Result<(), Failure> {
    let clock = Clock::system();
    let path = &settings.mirror.path;
    // Read-only (a read-only mount, beside the daemon); a mirror that does
    // not exist yet is created as before, so status on a fresh install works.
    let store = if path.exists() {
        let (store, pending) = Store::open_read_only(path, &clock)
            .await
            .map_err(Failure::runtime)?;
        if let Some(first) = pending.first() {
            eprintln!(
                "note: the mirror predates this cliq-sync ({} migration(s) from {first} not \
                 applied), shown as it is; run any write command (e.g. cliq-sync sync) to migrate it.",
                pending.len()
            );
        }
        store
    } else {
        Store::open(path, &clock).await.map_err(Failure::runtime)?
    };
    let report = crate::status::collect(&store, &settings, clock.now())
        .await
        .map_err(Failure::runtime)?;
    if check {
        let health = crate::status::check(&store, &settings, &report).await;
        store.close().await;
        return crate::exit::health(&health.map_err(Failure::runtime)?, json);
    }
    if json {
        println!(
            "{}",
            crate::json::document(&report).map_err(Failure::runtime)?
        );
    } else {
        print!("{}", report.to_text());
    }
    store.close().await;
    Ok(())
}

/// Load and validate the settings; errors exit with code 2.
pub fn load_settings(file: Option<&std::path::Path>) -> Result<Settings, Failure> {
    Settings::load(file).map_err(Failure::config)
}

/// The simulator `simulate` serves, with its config (for the banner):
/// seeded org, fault knobs and clock offset from the flags. Needs a tokio
/// runtime (an offset clock follows tokio's clock from the real time now).
pub fn build_simulator(args: &SimulateArgs) -> Result<(Simulator, SimConfig), Failure> {
    if !(args.time_scale > 0.0 && args.time_scale.is_finite()) {
        return Err(Failure::config(anyhow::anyhow!(
            "--time-scale must be a positive number, got {}",
            args.time_scale
        )));
    }
    let mut cfg = SimConfig {
        users: args.users,
        seed: args.seed,
        time_scale: args.time_scale,
        update_body: args
            .update_body
            .parse()
            .map_err(|e: String| Failure::config(anyhow::anyhow!("--update-body: {e}")))?,
        ..SimConfig::default()
    };
    if let Some(v) = &args.client_id {
        cfg.client_id = v.clone();
    }
    if let Some(v) = &args.client_secret {
        cfg.client_secret = v.clone();
    }
    if let Some(v) = &args.refresh_token {
        cfg.refresh_token = v.clone();
    }
    if let Some(v) = &args.scopes {
        cfg.scopes = v.iter().map(|s| s.trim().to_owned()).collect();
    }
    if let Some(v) = args.token_ttl {
        cfg.token_ttl = Duration::from_secs(v);
    }
    if args.unlimited {
        for q in cfg.quotas.values_mut() {
            q.requests = u32::MAX / 2;
        }
        cfg.max_tokens_per_window = u32::MAX / 2;
    }
    let clock = match args.clock_offset {
        Some(offset) if !offset.is_zero() => Clock::anchored(chrono::Utc::now() + offset),
        _ => Clock::system(),
    };
    let sim = Simulator::new(cfg.clone(), clock);
    sim.set_faults(crate::sim::Faults {
        error_5xx_rate: args.fail_rate,
        truncate_rate: args.truncate_rate,
        latency: args.latency.unwrap_or_default(),
        ..crate::sim::Faults::default()
    });
    Ok((sim, cfg))
}

async fn simulate(args: SimulateArgs) -> Result<(), Failure> {
    let started = std::time::Instant::now();
    let (sim, cfg) = build_simulator(&args)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::runtime(anyhow::anyhow!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener.local_addr().map_err(Failure::runtime)?;
    println!(
        "Cliq simulator: {} users (seed {}) generated in {:.0?}, time scale {}{}",
        cfg.users,
        cfg.seed,
        started.elapsed(),
        cfg.time_scale,
        if args.unlimited {
            ", quotas LIFTED"
        } else {
            ""
        }
    );
    println!("  API and OAuth:  http://{addr}");
    println!("  client_id:      {}", cfg.client_id);
    println!("  client_secret:  {}", cfg.client_secret);
    println!("  refresh_token:  {}", cfg.refresh_token);
    println!("  token lifetime: {}s", cfg.token_ttl.as_secs());
    println!("  PUT body:       {}", args.update_body);
    println!("  scopes:         {}", cfg.scopes.join(","));
    if let Some(offset) = args.clock_offset.filter(|o| !o.is_zero()) {
        println!("  clock offset:   {}s", offset.num_seconds());
    }
    println!(
        "  faults:         {} (change them at run time, from loopback only:",
        serde_json::to_string(&sim.faults()).unwrap_or_default()
    );
    println!(
        "                  curl -X PUT -d '{{\"error_5xx_rate\": 0.1}}' http://{addr}{})",
        crate::sim::admin::FAULTS_PATH
    );
    println!("Point cliq-sync at it with:");
    println!(
        "  CLIQ_SYNC__CLIQ__BASE_URL=http://{addr} CLIQ_SYNC__CLIQ__ACCOUNTS_URL=http://{addr}"
    );
    println!("Stop with Ctrl-C.");
    sim.serve(listener, async {
        crate::exit::stop_signal().await;
    })
    .await
    .map_err(Failure::runtime)?;
    Ok(())
}

/// Load and validate the `[hr]` source; every problem exits with code 2.
pub fn load_hr(settings: &Settings) -> Result<crate::hr::HrSource, Failure> {
    let hr = settings.hr.as_ref().ok_or_else(|| {
        Failure::config(anyhow::anyhow!(
            "no HR source configured: set [hr] source in the config file (or CLIQ_SYNC__HR__SOURCE)"
        ))
    })?;
    let mapping = hr.mapping().map_err(Failure::config)?;
    crate::hr::load_mapped(&hr.source, &mapping).map_err(Failure::config)
}

/// `plan [--json] [--out FILE]`: reads the mirror only; needs no Cliq credentials.
async fn plan_command(
    config: Option<&std::path::Path>,
    json: bool,
    out: Option<&std::path::Path>,
) -> Result<(), Failure> {
    use crate::sync::plan::{plan, render, PlanOptions};
    let settings = load_settings(config)?;
    init_logging(&settings.log.level, &settings.log.format);
    let hr = load_hr(&settings)?;
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

/// `push [--dry-run] [--force] [--json] [--retry-failed]`: exit 3 when a
/// safety threshold stops it, 130/143 when a signal does.
async fn push_command(
    config: Option<&std::path::Path>,
    dry_run: bool,
    force: bool,
    retry_failed: bool,
    json: bool,
) -> Result<(), Failure> {
    use crate::sync::push::{push, PushOptions};
    let settings = load_settings(config)?;
    init_logging(&settings.log.level, &settings.log.format);
    let hr = load_hr(&settings)?;
    let mut opts = PushOptions::from_settings(&settings, dry_run, force)
        .map_err(|m| Failure::config(anyhow::anyhow!("hr.managed_fields: {m}")))?;
    opts.plan.retry_failed = retry_failed;
    let app = crate::app::App::open(settings)
        .await
        .map_err(Failure::runtime)?;
    let limits = app.scheduler.limits().clone();
    let (store, client) = (&app.store, &app.client);
    let pushing = |cancel| async move { push(store, client, &limits, &hr, &opts, &cancel).await };
    let (out, caught) = drive_push(&app, json, pushing).await?;
    print_push(&out, json, caught)
}

/// Run a push (`run` gets its cancellation token) under the SIGINT/SIGTERM
/// watch, with the live bar on a terminal (never under --json). A safety
/// stop exits 3. Returns the outcome and the signal caught, if any.
async fn drive_push<Fut>(
    app: &App,
    json: bool,
    run: impl FnOnce(CancellationToken) -> Fut,
) -> Result<
    (
        crate::sync::push::PushOutcome,
        Option<crate::exit::StopSignal>,
    ),
    Failure,
>
where
    Fut: std::future::Future<
        Output = Result<crate::sync::push::PushOutcome, crate::sync::push::PushError>,
    >,
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
        Err(e @ crate::sync::push::PushError::Safety(_)) => Err(Failure {
            code: 3,
            error: e.into(),
        }),
        Err(e) => Err(Failure::runtime(e)),
    }
}

/// Print a push's plan and result (text or one JSON document) and turn
/// it into the exit code.
fn print_push(
    out: &crate::sync::push::PushOutcome,
    json: bool,
    caught: Option<crate::exit::StopSignal>,
) -> Result<(), Failure> {
    let r = &out.report;
    if json {
        println!("{}", crate::json::document(&out).map_err(Failure::runtime)?);
    } else {
        print!("{}", crate::sync::plan::render(&out.plan));
        // A given plan's parts not sent (changed since, gone, impossible).
        for f in &r.refused {
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
    if let Some(note) = crate::exit::nothing_sent(&r.status) {
        // JSON readers get the status; the sentence is for the person.
        if json {
            eprintln!("{note}");
        } else {
            println!("\n{note}");
        }
        return Ok(());
    }
    if json {
        return crate::exit::push_result(r, caught);
    }
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
    crate::exit::push_result(r, caught)
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
