//! `cliq-sync demo`: the embedded default a newcomer runs first.
//!
//! With no config and no network it starts the built-in simulator on a
//! loopback port (a seeded org, quotas as documented with every window and
//! lock scaled down), writes a fresh mirror under `./demo/`, and walks the
//! product's whole loop over real HTTP: full pull → plan from an HR file →
//! push → an admin edits the simulated org → incremental pull → full pull.
//! Then it prints a short report: users mirrored, changes found, pushes
//! applied, requests used against each quota (and the most the simulator saw
//! in any window: the proof that nothing was throttled), wall time, and the
//! `sqlite3` commands to explore the mirror.
//!
//! The HR file is generated from the seeded org at run time (the org is the
//! simulator's, so only it knows which emails exist): a few hundred people,
//! most of them already matching Cliq, some with new values and two new
//! hires. It is written to `demo/hr.csv` for the reader to open.
//!
//! [`run_in`] is the whole demo minus printing the report, so tests run it
//! in a temp directory with a smaller org.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use secrecy::SecretString;

use crate::cliq::Endpoint;
use crate::clock::Clock;
use crate::config::{HrSettings, LimitOverride, LimitsSettings, Settings};
use crate::exit::Failure;
use crate::sim::{SimConfig, Simulator};
use crate::sync::approve::HeldEntry;
use crate::sync::plan::PlanSummary;
use crate::sync::push::PushReport;
use crate::sync::PullReport;

mod hr_file;
mod live;
mod org_edits;
mod report;
mod steps;
mod write_side;

use live::Live;
use steps::{demo_steps, Paths};

/// People in the generated HR file (at most; fewer in a small org).
const HR_PEOPLE: usize = 200;
/// One HR person in this many gets new values.
const CHANGE_EVERY: usize = 8;
/// Plan rows shown before "… and N more".
const PLAN_ROWS: usize = 12;
/// Users an admin edits in tracked fields after the push.
const TRACKED_EDITS: usize = 5;
/// Of those, how many are people the HR file manages (their edits show up
/// as drift in the plan afterwards).
const TRACKED_EDITS_IN_HR: usize = 2;

/// How the demo shows progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// A live line on a terminal, plain lines otherwise.
    Auto,
    /// One line per finished step.
    Lines,
    /// Nothing (tests).
    Quiet,
}

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Size of the simulated org.
    pub users: usize,
    pub seed: u64,
    /// Multiplies every quota window and lock period (simulator and scheduler alike).
    pub time_scale: f64,
    pub output: Output,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            users: 2000,
            seed: 42,
            time_scale: 0.05,
            output: Output::Auto,
        }
    }
}

/// One admin edit made in the simulated org after the push.
#[derive(Debug, Clone)]
pub struct Mutation {
    pub user_id: String,
    pub email: String,
    pub field: &'static str,
    pub from: String,
    pub to: String,
    /// Whether Cliq's `modified_after` sees this field (so an incremental pull does).
    pub tracked: bool,
    /// Whether the HR file manages this person.
    pub in_hr: bool,
}

pub use crate::mirror::history::ChangeRow;

/// What one endpoint was asked, against its (scaled) quota.
#[derive(Debug, Clone)]
pub struct EndpointUse {
    pub endpoint: Endpoint,
    /// Requests the simulator received.
    pub requests: u64,
    pub quota: u32,
    pub window: Duration,
    /// Most arrivals the simulator counted in any sliding window (`None` for
    /// OAuth, which it counts as minted tokens instead).
    pub max_in_window: Option<u32>,
    pub throttled: u64,
}

/// Requests the simulator received during one step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepRequests {
    /// Every endpoint, OAuth included.
    pub total: u64,
    /// `PUT /users/{id}` (updates).
    pub puts: u64,
    /// `POST /users` (adds).
    pub posts: u64,
}

/// The push over a safety threshold: held, listed, approved, then pushed.
#[derive(Debug, Clone, Default)]
pub struct HeldSequence {
    /// The `[push] max_changes_per_run` the demo ran with.
    pub threshold: u32,
    /// The held plan's ID (`cliq-sync approve ID`).
    pub plan_id: String,
    /// What `cliq-sync approve` lists once the push is held.
    pub listed: Vec<HeldEntry>,
    /// The held plan as listed after its approval.
    pub approved: Option<HeldEntry>,
    pub held_requests: StepRequests,
    pub approve_requests: StepRequests,
    /// The push that sent the approved plan.
    pub push_requests: StepRequests,
}

/// One person's field through the push and its undo (read from Cliq).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldBack {
    pub email: String,
    pub field: String,
    /// Before the push.
    pub before: String,
    /// What the push set.
    pub pushed: String,
    /// In Cliq after the undo.
    pub after_undo: String,
}

/// `cliq-sync undo RUN` of the push.
#[derive(Debug, Clone)]
pub struct UndoStep {
    pub report: PushReport,
    pub requests: StepRequests,
    pub example: Option<FieldBack>,
}

/// Everything the demo did.
#[derive(Debug, Clone)]
pub struct DemoReport {
    pub dir: PathBuf,
    pub mirror: PathBuf,
    pub hr_file: PathBuf,
    pub sim_url: String,
    pub org_users: usize,
    pub seed: u64,
    pub time_scale: f64,
    pub safety_margin: Duration,
    pub hr_records: usize,
    /// Users per status in the mirror at the end (`removed` included).
    pub users_by_status: Vec<(String, i64)>,
    pub full_pull: PullReport,
    pub plan: PlanSummary,
    /// The plan table, truncated.
    pub plan_text: String,
    pub held: HeldSequence,
    pub push: PushReport,
    /// The least time the same push needs at Cliq's real (unscaled) quotas.
    pub push_at_real_quotas: Duration,
    pub mutations: Vec<Mutation>,
    pub incremental: PullReport,
    pub incremental_changes: Vec<ChangeRow>,
    pub final_full: PullReport,
    pub final_changes: Vec<ChangeRow>,
    /// The plan after everything: the admins' edits to HR-managed fields.
    pub drift: PlanSummary,
    pub undo: UndoStep,
    pub endpoints: Vec<EndpointUse>,
    pub tokens_minted: u64,
    pub locks_imposed: u64,
    /// Times the quota scheduler made a request wait for room in its window.
    pub scheduler_waits: u64,
    /// (step, duration)
    pub steps: Vec<(String, Duration)>,
    pub wall: Duration,
}

impl DemoReport {
    /// Users in the mirror that are not marked removed.
    pub fn users_mirrored(&self) -> i64 {
        self.users_by_status
            .iter()
            .filter(|(s, _)| s != "removed")
            .map(|(_, n)| n)
            .sum()
    }

    pub fn throttled_total(&self) -> u64 {
        self.endpoints.iter().map(|e| e.throttled).sum()
    }

    /// Distinct users with a `user_changes` row in the incremental pull.
    pub fn incremental_changed_ids(&self) -> BTreeSet<String> {
        self.incremental_changes
            .iter()
            .map(|c| c.user_id.clone())
            .collect()
    }

    pub fn final_changed_ids(&self) -> BTreeSet<String> {
        self.final_changes
            .iter()
            .map(|c| c.user_id.clone())
            .collect()
    }
}

/// `cliq-sync demo`: run in `./demo`, print the report.
pub async fn main() -> Result<(), Failure> {
    crate::logging::init_logging("warn", &crate::config::LogFormat::Pretty);
    let report = run_in(Path::new("demo"), DemoOptions::default())
        .await
        .map_err(Failure::runtime)?;
    print!("{}", report.to_text());
    Ok(())
}

/// The whole demo in `dir` (created if needed; earlier demo files there are
/// replaced). Prints progress per `opts.output`, returns the report.
pub async fn run_in(dir: &Path, opts: DemoOptions) -> anyhow::Result<DemoReport> {
    if !(opts.time_scale > 0.0 && opts.time_scale.is_finite()) {
        bail!(
            "time_scale must be a positive number, got {}",
            opts.time_scale
        );
    }
    let wall = Instant::now();
    let (mirror, hr_file) = fresh_files(dir)?;
    let mut live = Live::new(opts.output, 10);

    // 1. The simulator on a loopback port.
    live.step("starting the simulator", String::new);
    let sim_cfg = SimConfig {
        users: opts.users,
        seed: opts.seed,
        time_scale: opts.time_scale,
        ..SimConfig::default()
    };
    let sim = Simulator::new(sim_cfg.clone(), Clock::system());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("cannot listen on a loopback port")?;
    let addr = listener.local_addr()?;
    let sim_url = format!("http://{addr}");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sim.clone().serve(listener, async {
        let _ = stop_rx.await;
    }));
    live.done(format!(
        "simulator: {} users (seed {}) on {sim_url}",
        opts.users, opts.seed
    ));

    let paths = Paths {
        dir,
        mirror: &mirror,
        hr_file: &hr_file,
    };
    let result = demo_steps(&sim, &sim_cfg, &sim_url, &paths, &opts, &mut live).await;
    let _ = stop_tx.send(());
    let _ = server.await;
    live.finish();
    let mut report = result?;
    report.steps = std::mem::take(&mut live.steps);
    report.wall = wall.elapsed();
    Ok(report)
}

/// `dir` (created if needed) without earlier demo files: the paths of the
/// mirror and the HR file.
fn fresh_files(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mirror = dir.join("mirror.db");
    let hr_file = dir.join("hr.csv");
    for f in [
        mirror.clone(),
        dir.join("mirror.db-wal"),
        dir.join("mirror.db-shm"),
        // The quota ledger of the last run's simulated org.
        dir.join("mirror.db.quota"),
        dir.join("mirror.db.quota-wal"),
        dir.join("mirror.db.quota-shm"),
        hr_file.clone(),
    ] {
        match std::fs::remove_file(&f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", f.display())),
        }
    }
    Ok((mirror, hr_file))
}

/// The settings of the demo: the simulator's credentials, the scaled quotas.
fn demo_settings(
    sim_cfg: &SimConfig,
    sim_url: &str,
    paths: &Paths,
    time_scale: f64,
) -> anyhow::Result<Settings> {
    let mut s = Settings::default();
    s.cliq.base_url = Some(sim_url.to_owned());
    s.cliq.accounts_url = Some(sim_url.to_owned());
    s.cliq.client_id = sim_cfg.client_id.clone();
    s.cliq.client_secret = Some(SecretString::from(sim_cfg.client_secret.clone()));
    s.cliq.refresh_token = Some(SecretString::from(sim_cfg.refresh_token.clone()));
    s.cliq.request_timeout = Duration::from_secs(10);
    s.mirror.path = paths.mirror.to_owned();
    s.hr = Some(HrSettings::new(paths.hr_file));
    s.push.enabled = true;
    s.push.create_missing = true;
    s.push.max_changes_per_run = 100;
    s.limits = scaled_limits(time_scale);
    s.log.level = "warn".into();
    s.validate().context("the demo's settings")?;
    Ok(s)
}

/// Every endpoint's documented quota with its window and lock scaled like
/// the simulator's, and a scaled-down safety margin.
// `..default()` keeps this compiling when `[limits]` gains keys.
#[allow(clippy::needless_update)]
pub fn scaled_limits(time_scale: f64) -> LimitsSettings {
    let o = |ep: Endpoint| {
        let q = ep.documented_quota().scaled(time_scale);
        Some(LimitOverride {
            requests: Some(q.requests),
            per: Some(q.per),
            lock: Some(q.lock),
        })
    };
    LimitsSettings {
        add_users: o(Endpoint::AddUsers),
        list_users: o(Endpoint::ListUsers),
        update_user: o(Endpoint::UpdateUser),
        get_user: o(Endpoint::GetUser),
        user_teams: o(Endpoint::UserTeams),
        user_layouts: o(Endpoint::UserLayouts),
        oauth_token: o(Endpoint::OauthToken),
        safety_margin: Some(safety_margin(time_scale)),
        // The simulator's windows are scaled down with it: shorter than
        // Cliq's documented ones, on purpose.
        allow_above_documented: true,
        ..LimitsSettings::default()
    }
}

/// The scheduler's 500 ms margin scaled, but never under 100 ms: on a busy
/// two-core machine loopback jitter alone can reach tens of milliseconds.
fn safety_margin(time_scale: f64) -> Duration {
    Duration::from_millis(500)
        .mul_f64(time_scale.min(1.0))
        .max(Duration::from_millis(100))
}
