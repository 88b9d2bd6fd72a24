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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::cliq::transport::{ReqwestTransport, Transport};
use crate::cliq::Endpoint;
use crate::clock::Clock;
use crate::config::{HrSettings, LimitOverride, LimitsSettings, Settings};
use crate::exit::Failure;
use crate::sim::{SimConfig, Simulator};
use crate::sync::plan::{Plan, PlanSummary};
use crate::sync::push::{PushOptions, PushReport};
use crate::sync::{pull, PullKind, PullReport};

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
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mirror = dir.join("mirror.db");
    let hr_file = dir.join("hr.csv");
    for f in [
        mirror.clone(),
        dir.join("mirror.db-wal"),
        dir.join("mirror.db-shm"),
        hr_file.clone(),
    ] {
        match std::fs::remove_file(&f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", f.display())),
        }
    }
    let mut live = Live::new(opts.output, 7);

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

    let result = demo_steps(
        &sim, &sim_cfg, &sim_url, dir, &mirror, &hr_file, &opts, &mut live,
    )
    .await;
    let _ = stop_tx.send(());
    let _ = server.await;
    live.finish();
    let mut report = result?;
    report.steps = std::mem::take(&mut live.steps);
    report.wall = wall.elapsed();
    Ok(report)
}

/// The settings of the demo: the simulator's credentials, the scaled quotas.
fn demo_settings(
    sim_cfg: &SimConfig,
    sim_url: &str,
    mirror: &Path,
    hr_file: &Path,
    time_scale: f64,
) -> anyhow::Result<Settings> {
    let mut s = Settings::default();
    s.cliq.base_url = Some(sim_url.to_owned());
    s.cliq.accounts_url = Some(sim_url.to_owned());
    s.cliq.client_id = sim_cfg.client_id.clone();
    s.cliq.client_secret = Some(SecretString::from(sim_cfg.client_secret.clone()));
    s.cliq.refresh_token = Some(SecretString::from(sim_cfg.refresh_token.clone()));
    s.cliq.request_timeout = Duration::from_secs(10);
    s.mirror.path = mirror.to_owned();
    s.hr = Some(HrSettings::new(hr_file));
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

#[allow(clippy::too_many_arguments)]
async fn demo_steps(
    sim: &Simulator,
    sim_cfg: &SimConfig,
    sim_url: &str,
    dir: &Path,
    mirror: &Path,
    hr_file: &Path,
    opts: &DemoOptions,
    live: &mut Live,
) -> anyhow::Result<DemoReport> {
    let settings = demo_settings(sim_cfg, sim_url, mirror, hr_file, opts.time_scale)?;
    let safety_margin = settings.limits.to_limits()?.margin;
    let page_size = u64::from(settings.cliq.page_size);
    // Real HTTP over loopback; a configured proxy could not reach it.
    let transport: Arc<dyn Transport> =
        Arc::new(ReqwestTransport::without_proxy().context("cannot build the HTTP client")?);
    let app = App::open_with(settings.clone(), Clock::system(), transport).await?;
    let cancel = CancellationToken::new();
    let org = opts.users as u64;

    // 2. Full pull.
    live.step("full pull", {
        let sim = sim.clone();
        let base = list_requests(&sim);
        move || {
            let listed = ((list_requests(&sim) - base) * page_size).min(org);
            format!("{listed}/{org} users")
        }
    });
    let full_pull = pull(&app, PullKind::Full, &cancel).await?;
    ensure_ok(&full_pull)?;
    live.done(format!(
        "full pull: {} users mirrored, {} requests",
        full_pull.users_seen, full_pull.requests
    ));

    // 3. The HR file and the plan.
    live.step("plan", String::new);
    let hr_people = write_hr_file(sim, hr_file)?;
    let hr = crate::hr::load(hr_file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let push_opts = PushOptions::from_settings(&settings, false, false)
        .map_err(|m| anyhow::anyhow!("hr.managed_fields: {m}"))?;
    let limits = app.scheduler.limits().clone();
    let plan = crate::sync::plan::plan(&app.store, &hr, &push_opts.plan, &limits).await?;
    let plan_text = render_plan(&plan, PLAN_ROWS);
    live.done(format!(
        "plan from {}: {} HR records, {} updates ({} fields), {} adds",
        hr_file.display(),
        hr.len(),
        plan.summary.updates,
        plan.summary.field_changes,
        plan.summary.adds
    ));

    // 4. Push.
    let planned = plan.summary.updates as u64;
    let per_window = u64::from(limits.get(Endpoint::UpdateUser).requests);
    live.step("push", {
        let sim = sim.clone();
        let base = requests(&sim, Endpoint::UpdateUser);
        move || {
            let sent = requests(&sim, Endpoint::UpdateUser) - base;
            if sent > 0 && sent < planned && sent % per_window == 0 {
                format!("{sent}/{planned} updates sent; {per_window} per window used, waiting for the next")
            } else {
                format!("{sent}/{planned} updates sent")
            }
        }
    });
    let outcome =
        crate::sync::push::push(&app.store, &app.client, &limits, &hr, &push_opts, &cancel).await?;
    let push = outcome.report;
    if !push.ok() {
        bail!(
            "the push {}: {}",
            push.status,
            push.error.as_deref().unwrap_or("see the pushes table")
        );
    }
    live.done(format!(
        "push: {} updated, {} added, {} failed, {} requests in {:.1} s",
        push.updates_applied, push.adds_applied, push.failed, push.requests, push.elapsed_secs
    ));

    let real = crate::cliq::quotas::Limits::documented();
    let push_at_real_quotas =
        crate::sync::plan::min_duration(&real, Endpoint::UpdateUser, plan.summary.update_requests)
            + crate::sync::plan::min_duration(&real, Endpoint::AddUsers, plan.summary.add_requests);

    // 5. An admin edits the org in the Cliq console.
    live.step("editing the simulated org", String::new);
    let mutations = mutate_org(sim, &hr_people)?;
    live.done(format!(
        "an admin edited {} users in Cliq: {} tracked fields, {} untracked",
        mutations
            .iter()
            .map(|m| &m.user_id)
            .collect::<BTreeSet<_>>()
            .len(),
        mutations.iter().filter(|m| m.tracked).count(),
        mutations.iter().filter(|m| !m.tracked).count()
    ));

    // 6. Incremental pull.
    live.step("incremental pull", {
        let sim = sim.clone();
        let base = list_requests(&sim);
        move || format!("{} pages", list_requests(&sim) - base)
    });
    let incremental = pull(&app, PullKind::Incremental, &cancel).await?;
    ensure_ok(&incremental)?;
    let incremental_changes = app.store.changes_of_run(incremental.run_id).await?;
    live.done(format!(
        "incremental pull: {} users listed, {} changed, {} requests",
        incremental.users_seen, incremental.changed, incremental.requests
    ));

    // 7. Full pull again: it sees what `modified_after` cannot.
    live.step("full pull", {
        let sim = sim.clone();
        let base = list_requests(&sim);
        let org = org + 2;
        move || {
            let listed = ((list_requests(&sim) - base) * page_size).min(org);
            format!("{listed}/{org} users")
        }
    });
    let final_full = pull(&app, PullKind::Full, &cancel).await?;
    ensure_ok(&final_full)?;
    let final_changes = app.store.changes_of_run(final_full.run_id).await?;
    live.done(format!(
        "full pull: {} users, {} added, {} changed, {} requests",
        final_full.users_seen, final_full.added, final_full.changed, final_full.requests
    ));

    let drift = crate::sync::plan::plan(&app.store, &hr, &push_opts.plan, &limits)
        .await?
        .summary;
    let users_by_status = app.store.user_counts().await?;
    let counters = sim.counters();
    let endpoints = Endpoint::ALL
        .into_iter()
        .map(|ep| {
            let q = limits.get(ep);
            EndpointUse {
                endpoint: ep,
                requests: counters.requests.get(&ep).copied().unwrap_or(0),
                quota: q.requests,
                window: q.per,
                max_in_window: (ep != Endpoint::OauthToken)
                    .then(|| counters.max_in_window.get(&ep).copied().unwrap_or(0)),
                throttled: counters.throttled.get(&ep).copied().unwrap_or(0),
            }
        })
        .collect();
    let scheduler_waits = app.scheduler.waits();
    app.store.close().await;

    Ok(DemoReport {
        dir: dir.to_owned(),
        mirror: mirror.to_owned(),
        hr_file: hr_file.to_owned(),
        sim_url: sim_url.to_owned(),
        org_users: opts.users,
        seed: opts.seed,
        time_scale: opts.time_scale,
        safety_margin,
        hr_records: hr.len(),
        users_by_status,
        full_pull,
        plan: plan.summary,
        plan_text,
        push,
        push_at_real_quotas,
        mutations,
        incremental,
        incremental_changes,
        final_full,
        final_changes,
        drift,
        endpoints,
        tokens_minted: counters.tokens_minted,
        locks_imposed: counters.locks.values().sum(),
        scheduler_waits,
        steps: Vec::new(),
        wall: Duration::ZERO,
    })
}

fn ensure_ok(r: &PullReport) -> anyhow::Result<()> {
    if r.ok() {
        Ok(())
    } else {
        bail!(
            "the {} pull {}: {}",
            r.kind,
            r.status,
            r.error.as_deref().unwrap_or("unknown error")
        )
    }
}

fn requests(sim: &Simulator, ep: Endpoint) -> u64 {
    sim.counters().requests.get(&ep).copied().unwrap_or(0)
}

fn list_requests(sim: &Simulator) -> u64 {
    requests(sim, Endpoint::ListUsers)
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

fn name_of(v: &Value, key: &str) -> String {
    v[key]["name"].as_str().unwrap_or_default().to_owned()
}

/// The next value of `options` after `current` (wrapping), never `current`.
fn other<'a>(options: &'a [String], current: &str, salt: usize) -> Option<&'a str> {
    let candidates: Vec<&String> = options.iter().filter(|o| *o != current).collect();
    (!candidates.is_empty()).then(|| candidates[salt % candidates.len()].as_str())
}

/// A person of the generated HR file (for choosing the admin's edits).
#[derive(Debug, Clone)]
struct HrPerson {
    id: String,
    changed: bool,
}

/// Write the demo's HR file from the seeded org: up to [`HR_PEOPLE`] active
/// users spread evenly over the org, every [`CHANGE_EVERY`]th with new values
/// (work location, department or designation by name, extension), the rest
/// exactly as Cliq has them, plus two new hires.
fn write_hr_file(sim: &Simulator, path: &Path) -> anyhow::Result<Vec<HrPerson>> {
    let users = sim.users();
    let owner = sim.owner_id();
    let active: Vec<&Value> = users
        .iter()
        .filter(|u| text(u, "status") == "active" && text(u, "id") != owner)
        .filter(|u| !text(u, "email_id").is_empty())
        .collect();
    if active.len() < 4 * CHANGE_EVERY {
        bail!(
            "the simulated org is too small for the demo ({} active users)",
            active.len()
        );
    }
    // Values that exist in the org (names resolve through the mirror).
    let distinct = |f: &dyn Fn(&Value) -> String| -> Vec<String> {
        let set: BTreeSet<String> = active
            .iter()
            .map(|u| f(u))
            .filter(|s| !s.is_empty())
            .collect();
        set.into_iter().collect()
    };
    let locations = distinct(&|u| text(u, "work_location"));
    let departments = distinct(&|u| name_of(u, "department"));
    let designations = distinct(&|u| name_of(u, "designation"));

    // Every other active user at most: the admin's edits need people the
    // HR file does not manage too.
    let step = (active.len() / HR_PEOPLE).max(2);
    let mut people = Vec::new();
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    w.write_record([
        "email_id",
        "first_name",
        "last_name",
        "employee_id",
        "extension",
        "work_location",
        "department",
        "designation",
    ])?;
    for (i, u) in active.iter().step_by(step).take(HR_PEOPLE).enumerate() {
        let mut rec = [
            text(u, "email_id"),
            text(u, "first_name"),
            text(u, "last_name"),
            text(u, "employee_id"),
            text(u, "extension"),
            text(u, "work_location"),
            name_of(u, "department"),
            name_of(u, "designation"),
        ];
        let changed = i % CHANGE_EVERY == 3;
        if changed {
            let n = i / CHANGE_EVERY;
            match n % 4 {
                0 => {
                    if let Some(v) = other(&locations, &rec[5], n) {
                        rec[5] = v.to_owned();
                    }
                }
                1 => {
                    if let Some(v) = other(&departments, &rec[6], n) {
                        rec[6] = v.to_owned();
                    }
                }
                2 => rec[4] = format!("{}", 7000 + i),
                _ => {
                    if let Some(v) = other(&designations, &rec[7], n) {
                        rec[7] = v.to_owned();
                    }
                    if let Some(v) = other(&locations, &rec[5], n + 1) {
                        rec[5] = v.to_owned();
                    }
                }
            }
        }
        w.write_record(&rec)?;
        people.push(HrPerson {
            id: text(u, "id"),
            changed,
        });
    }
    // Two new hires: `create_missing` adds them.
    let dept = departments.first().cloned().unwrap_or_default();
    let desig = designations.last().cloned().unwrap_or_default();
    for (n, (first, last)) in [("Ada", "Lovelace"), ("Alan", "Turing")]
        .into_iter()
        .enumerate()
    {
        let email = format!(
            "{}.{}.newhire@zylker.example",
            first.to_lowercase(),
            last.to_lowercase()
        );
        if sim.user_id_by_email(&email).is_some() {
            bail!("the seeded org already has {email}");
        }
        w.write_record([
            email.as_str(),
            first,
            last,
            &format!("NH-{:04}", n + 1),
            &format!("{}", 9001 + n),
            "Remote",
            &dept,
            &desig,
        ])?;
    }
    w.flush()?;
    Ok(people)
}

/// An admin edits the org in the Cliq console: tracked fields of
/// [`TRACKED_EDITS`] users (some the HR file manages), and the display name
/// of one more (a field `modified_after` does not see).
fn mutate_org(sim: &Simulator, hr_people: &[HrPerson]) -> anyhow::Result<Vec<Mutation>> {
    let users = sim.users();
    let owner = sim.owner_id();
    let in_hr: BTreeSet<&str> = hr_people.iter().map(|p| p.id.as_str()).collect();
    let by_id: BTreeMap<String, &Value> = users.iter().map(|u| (text(u, "id"), u)).collect();
    let departments = sim.departments();
    let locations: Vec<String> = {
        let set: BTreeSet<String> = users
            .iter()
            .map(|u| text(u, "work_location"))
            .filter(|s| !s.is_empty())
            .collect();
        set.into_iter().collect()
    };
    let hr_targets = hr_people
        .iter()
        .filter(|p| p.changed)
        .map(|p| p.id.clone())
        .take(TRACKED_EDITS_IN_HR);
    let others: Vec<String> = users
        .iter()
        .rev()
        .filter(|u| text(u, "status") == "active")
        .map(|u| text(u, "id"))
        .filter(|id| *id != owner && !in_hr.contains(id.as_str()))
        .take(TRACKED_EDITS + 1)
        .collect();
    let targets: Vec<String> = hr_targets
        .chain(others.iter().cloned())
        .take(TRACKED_EDITS)
        .collect();
    let mut out = Vec::new();
    for (n, id) in targets.iter().enumerate() {
        let u = by_id.get(id).context("an edited user vanished")?;
        let (field, from, to, body) = if n % 2 == 0 {
            let from = text(u, "work_location");
            let to = other(&locations, &from, n + 5)
                .context("the org has one work location only")?
                .to_owned();
            (
                "work_location",
                from,
                to.clone(),
                json!({ "work_location": to }),
            )
        } else {
            let from_id = u["department"]["id"].as_str().unwrap_or_default();
            let candidates: Vec<&(String, String)> =
                departments.iter().filter(|(id, _)| id != from_id).collect();
            let (to_id, to_name) = candidates
                .get(n % candidates.len().max(1))
                .map(|d| (*d).clone())
                .context("the org has one department only")?;
            (
                "department",
                name_of(u, "department"),
                to_name,
                json!({ "department_id": to_id }),
            )
        };
        if !sim.mutate_user(id, body) {
            bail!("the simulator refused to edit user {id}");
        }
        out.push(Mutation {
            user_id: id.clone(),
            email: text(u, "email_id"),
            field,
            from,
            to,
            tracked: true,
            in_hr: in_hr.contains(id.as_str()),
        });
    }
    // The untracked edit: someone not edited above.
    let id = others
        .iter()
        .find(|id| !targets.contains(id))
        .context("no user left for the display-name edit")?;
    let u = by_id.get(id).context("an edited user vanished")?;
    let from = text(u, "display_name");
    let to = format!("{} (they/them)", text(u, "first_name"));
    if !sim.mutate_user(id, json!({ "display_name": to })) {
        bail!("the simulator refused to edit user {id}");
    }
    out.push(Mutation {
        user_id: id.clone(),
        email: text(u, "email_id"),
        field: "display_name",
        from,
        to,
        tracked: false,
        in_hr: false,
    });
    Ok(out)
}

/// The plan as `cliq-sync plan` shows it, with at most `rows` change lines.
fn render_plan(plan: &Plan, rows: usize) -> String {
    let s = &plan.summary;
    let mut out = String::new();
    // Names rather than ids: the reader knows departments by name.
    let show = |v: &Option<String>, name: &Option<String>| -> String {
        name.clone()
            .or_else(|| v.clone())
            .unwrap_or_else(|| "(empty)".into())
    };
    let _ = writeln!(
        out,
        "  {} HR records, {} matched in the mirror; {} users to update ({} fields), {} to add:",
        s.hr_records, s.matched, s.updates, s.field_changes, s.adds
    );
    let _ = writeln!(
        out,
        "  {:<38} {:<14} {:<24} -> desired",
        "email", "field", "current"
    );
    let lines: Vec<String> = plan
        .updates
        .iter()
        .flat_map(|u| {
            u.changes.iter().map(move |c| {
                format!(
                    "  {:<38} {:<14} {:<24} -> {}",
                    u.email,
                    c.field,
                    show(&c.current, &c.current_name),
                    show(&Some(c.desired.clone()), &c.desired_name)
                )
            })
        })
        .chain(plan.adds.iter().map(|a| {
            format!(
                "  {:<38} {:<14} {:<24} -> {} fields",
                a.email,
                "(new person)",
                "",
                a.fields.len()
            )
        }))
        .collect();
    for l in lines.iter().take(rows) {
        let _ = writeln!(out, "{}", l.trim_end());
    }
    if lines.len() > rows {
        let _ = writeln!(
            out,
            "  … and {} more (all of them: cliq-sync plan, or the pushes table)",
            lines.len() - rows
        );
    }
    if s.blocked > 0 {
        let _ = writeln!(out, "  {} blocked (see cliq-sync plan)", s.blocked);
    }
    out
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn window_text(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

impl DemoReport {
    /// The human report.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let list = Endpoint::ListUsers
            .documented_quota()
            .scaled(self.time_scale);
        let _ = writeln!(o, "\ncliq-sync demo: what happened");
        let _ = writeln!(o, "============================\n");
        let _ = writeln!(
            o,
            "Simulated Cliq org: {} users (seed {}) on {} (loopback; no network, no config).",
            self.org_users, self.seed, self.sim_url
        );
        let _ = writeln!(
            o,
            "Quotas as documented, windows and locks scaled ×{}: {} listing requests per {}, \
             a {} lock if exceeded (real Cliq: per {}, {} lock).",
            self.time_scale,
            list.requests,
            window_text(list.per),
            window_text(list.lock),
            window_text(Endpoint::ListUsers.documented_quota().per),
            window_text(Endpoint::ListUsers.documented_quota().lock),
        );
        let _ = writeln!(
            o,
            "The scheduler uses the same scaled quotas, with a {} ms safety margin per window.",
            self.safety_margin.as_millis()
        );

        let _ = writeln!(o, "\nUsers mirrored");
        let total = self.users_mirrored();
        let by: Vec<String> = self
            .users_by_status
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        let _ = writeln!(
            o,
            "  {total} users in {} ({} seeded + {} added by the push): {}",
            self.mirror.display(),
            self.org_users,
            self.push.adds_applied,
            by.join(", ")
        );
        let _ = writeln!(
            o,
            "  first full pull: {} users in {} pages, {} requests, {}",
            self.full_pull.users_seen,
            self.full_pull.pages,
            self.full_pull.requests,
            secs(self.full_pull.elapsed)
        );

        let _ = writeln!(o, "\nPlan from {}", self.hr_file.display());
        o.push_str(&self.plan_text);

        let _ = writeln!(o, "\nPushes");
        let p = &self.push;
        let _ = writeln!(
            o,
            "  {} updates applied, {} people added, {} failed, {} skipped: {} requests in {:.1} s",
            p.updates_applied, p.adds_applied, p.failed, p.skipped, p.requests, p.elapsed_secs
        );
        for f in &p.failures {
            let _ = writeln!(o, "  failed {} {}: {}", f.action, f.email, f.message);
        }

        let _ = writeln!(o, "\nChanges found");
        let _ = writeln!(o, "  An admin then edited the org in Cliq:");
        for m in &self.mutations {
            let _ = writeln!(
                o,
                "    {:<38} {:<14} {:?} -> {:?}{}",
                m.email,
                m.field,
                m.from,
                m.to,
                match (m.tracked, m.in_hr) {
                    (false, _) => "  (not seen by modified_after)",
                    (true, true) => "  (an HR-managed person)",
                    (true, false) => "",
                }
            );
        }
        let tracked: BTreeSet<&str> = self
            .mutations
            .iter()
            .filter(|m| m.tracked)
            .map(|m| m.user_id.as_str())
            .collect();
        let inc_ids = self.incremental_changed_ids();
        let found = tracked.iter().filter(|id| inc_ids.contains(**id)).count();
        let _ = writeln!(
            o,
            "  incremental pull: listed {} users modified since the last pull (pushed or edited), \
             {} changed in the mirror ({} of the {} tracked edits), {} requests, {}",
            self.incremental.users_seen,
            self.incremental.changed,
            found,
            tracked.len(),
            self.incremental.requests,
            secs(self.incremental.elapsed)
        );
        let untracked: Vec<&Mutation> = self.mutations.iter().filter(|m| !m.tracked).collect();
        let fin_ids = self.final_changed_ids();
        let _ = writeln!(
            o,
            "  full pull:        {} users, {} added (the new hires), {} changed ({}), {} requests, {}",
            self.final_full.users_seen,
            self.final_full.added,
            self.final_full.changed,
            if untracked.iter().all(|m| fin_ids.contains(&m.user_id)) {
                "the display-name edit only a full pull sees"
            } else {
                "the display-name edit was NOT seen"
            },
            self.final_full.requests,
            secs(self.final_full.elapsed)
        );
        let _ =
            writeln!(
            o,
            "  plan now: {} update{} ({} field{}): the edits to HR-managed people; the next push \
             sets them back",
            self.drift.updates,
            if self.drift.updates == 1 { "" } else { "s" },
            self.drift.field_changes,
            if self.drift.field_changes == 1 { "" } else { "s" },
        );

        let _ = writeln!(o, "\nRequests per endpoint (counted by the simulator)");
        let _ = writeln!(
            o,
            "  {:<14} {:>8}  {:>14}  {:>13}  {:>9}",
            "endpoint", "requests", "quota", "most in window", "throttled"
        );
        for e in &self.endpoints {
            let most = match e.max_in_window {
                Some(n) => n.to_string(),
                None => format!("{} minted", self.tokens_minted),
            };
            let _ = writeln!(
                o,
                "  {:<14} {:>8}  {:>14}  {:>13}  {:>9}",
                e.endpoint.name(),
                e.requests,
                format!("{} / {}", e.quota, window_text(e.window)),
                most,
                e.throttled
            );
        }
        let _ = writeln!(
            o,
            "  {} throttle responses, {} locks: the scheduler waited {} for room in a window instead.",
            self.throttled_total(),
            self.locks_imposed,
            match self.scheduler_waits {
                1 => "once".to_owned(),
                n => format!("{n} times"),
            }
        );

        let _ = writeln!(o, "\nWall time");
        let steps: Vec<String> = self
            .steps
            .iter()
            .map(|(s, d)| format!("{s} {}", secs(*d)))
            .collect();
        let _ = writeln!(o, "  {} in all: {}", secs(self.wall), steps.join(", "));
        let _ = writeln!(
            o,
            "  At Cliq's real quotas the push alone ({} PUT at {} per minute) needs at least {}.",
            self.plan.update_requests,
            Endpoint::UpdateUser.documented_quota().requests,
            humantime::format_duration(Duration::from_secs(self.push_at_real_quotas.as_secs()))
        );

        let db = shell_quote(&self.mirror.display().to_string());
        let _ = writeln!(o, "\nExplore the mirror");
        let _ = writeln!(
            o,
            "  sqlite3 {db} \"SELECT status, count(*) FROM users GROUP BY status\""
        );
        let _ = writeln!(
            o,
            "  sqlite3 -header -column {db} \"SELECT c.observed_at, c.source, u.email_id, c.field, \
             c.old_value, c.new_value FROM user_changes c JOIN users u ON u.id = c.user_id \
             WHERE c.field <> 'user' ORDER BY c.id DESC LIMIT 20\""
        );
        let _ = writeln!(
            o,
            "  sqlite3 -header -column {db} \"SELECT email_id, action, status, \
             json_extract(fields_json, '$.fields') AS sent FROM pushes ORDER BY id LIMIT 10\""
        );
        let _ = writeln!(
            o,
            "  sqlite3 -header -column {db} \"SELECT id, kind, status, requests, users_seen, \
             users_changed FROM sync_runs\""
        );
        let _ = writeln!(
            o,
            "The HR file is {}; the demo starts afresh each run.",
            self.hr_file.display()
        );
        o
    }
}

/// Quote a path for a POSIX shell only if it needs it.
fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

type Detail = Box<dyn Fn() -> String + Send>;

struct LiveState {
    index: usize,
    label: String,
    started: Instant,
    detail: Option<Detail>,
}

/// The progress display: a line redrawn in place on a terminal (a ticker
/// task polls the step's detail), one line per finished step otherwise.
struct Live {
    tty: bool,
    quiet: bool,
    total: usize,
    state: Arc<Mutex<LiveState>>,
    ticker: Option<tokio::task::JoinHandle<()>>,
    steps: Vec<(String, Duration)>,
}

impl Live {
    fn new(output: Output, total: usize) -> Self {
        let tty = output == Output::Auto && std::io::stdout().is_terminal();
        let state = Arc::new(Mutex::new(LiveState {
            index: 0,
            label: String::new(),
            started: Instant::now(),
            detail: None,
        }));
        let ticker = tty.then(|| {
            let state = state.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(120));
                loop {
                    tick.tick().await;
                    let line = {
                        let st = state.lock().unwrap_or_else(|p| p.into_inner());
                        let Some(detail) = st.detail.as_ref().map(|d| d()) else {
                            continue;
                        };
                        format!(
                            "[{}/{total}] {}{}{} … {:.1} s",
                            st.index,
                            st.label,
                            if detail.is_empty() { "" } else { ": " },
                            detail,
                            st.started.elapsed().as_secs_f64()
                        )
                    };
                    let mut out = std::io::stdout().lock();
                    let _ = write!(out, "\r\x1b[K{line}");
                    let _ = out.flush();
                }
            })
        });
        Self {
            tty,
            quiet: output == Output::Quiet,
            total,
            state,
            ticker,
            steps: Vec::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LiveState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn step(&mut self, label: &str, detail: impl Fn() -> String + Send + 'static) {
        let mut st = self.lock();
        st.index += 1;
        st.label = label.to_owned();
        st.started = Instant::now();
        st.detail = Some(Box::new(detail));
    }

    fn done(&mut self, summary: String) {
        let (index, label, took) = {
            let mut st = self.lock();
            st.detail = None;
            (st.index, st.label.clone(), st.started.elapsed())
        };
        self.steps.push((label, took));
        if self.quiet {
            return;
        }
        let mut out = std::io::stdout().lock();
        if self.tty {
            let _ = write!(out, "\r\x1b[K");
        }
        let _ = writeln!(out, "[{index}/{}] {summary} ({})", self.total, secs(took));
        let _ = out.flush();
    }

    fn finish(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        if self.tty {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[K");
            let _ = out.flush();
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
    }
}
