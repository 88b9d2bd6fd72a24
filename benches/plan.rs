//! Plan benchmark. Run with `cargo bench --bench plan` (release build).
//! Prints figures beside the targets; asserts nothing about speed.
//!
//! For each size N it builds a temporary mirror of N users (in pages, as a
//! full pull would) and an N-record HR CSV in which about 10% of the people
//! have a changed work location and 5% a department given by name. Then a
//! child process (this binary again, so its peak RSS is the plan's alone)
//! loads the HR file and makes the plan on the default configuration, and
//! reports its wall time and peak RSS (`VmHWM` of /proc/self/status).
//!
//! `BENCH_SIZES=100000,1000000 cargo bench --bench plan` (the default is
//! 100000; 1,000,000 takes minutes to set up).

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use cliq_sync::clock::Clock;
use cliq_sync::hr;
use cliq_sync::mirror::runs::RunKind;
use cliq_sync::mirror::users::{ChangeSource, FlatUser};
use cliq_sync::mirror::Store;
use cliq_sync::sync::plan::{plan, PlanOptions};
use serde_json::json;

const DEPARTMENTS: [&str; 8] = [
    "Sales",
    "Engineering",
    "Support",
    "Finance",
    "Legal",
    "Marketing",
    "Operations",
    "People",
];

/// The targets of issue 10 point 8: (N, seconds, peak RSS MB).
const TARGETS: [(usize, f64, Option<f64>); 2] =
    [(100_000, 1.5, None), (1_000_000, 20.0, Some(128.0))];

/// Env var telling the child which files to plan.
const CHILD: &str = "CLIQ_SYNC_PLAN_BENCH_CHILD";

fn main() -> anyhow::Result<()> {
    if let Ok(dir) = std::env::var(CHILD) {
        return child(Path::new(&dir));
    }
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "100000".into())
        .split(',')
        .filter(|s| !s.trim().is_empty() && !s.starts_with("--"))
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()?;
    for n in sizes {
        let dir = tempfile::tempdir()?;
        let t = Instant::now();
        build(dir.path(), n)?;
        println!("N = {n}: mirror and HR file built in {:.2?}", t.elapsed());
        let out = Command::new(std::env::current_exe()?)
            .env(CHILD, dir.path())
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "plan child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        print!("{text}");
        let (secs, mb) = figures(&text);
        let target = TARGETS.iter().find(|t| t.0 == n);
        match target {
            Some((_, s, m)) => println!(
                "  {n} x {n}: plan {secs:.2} s (target <= {s} s), peak RSS {mb:.1} MB{}",
                m.map(|m| format!(" (target <= {m} MB)"))
                    .unwrap_or_default()
            ),
            None => println!(
                "  {n} x {n}: plan {secs:.2} s, peak RSS {mb:.1} MB (no target for this size)"
            ),
        }
    }
    Ok(())
}

/// `seconds=… peak_mb=…` from the child's last line.
fn figures(text: &str) -> (f64, f64) {
    let mut secs = f64::NAN;
    let mut mb = f64::NAN;
    for word in text.split_whitespace() {
        if let Some(v) = word.strip_prefix("seconds=") {
            secs = v.parse().unwrap_or(f64::NAN);
        }
        if let Some(v) = word.strip_prefix("peak_mb=") {
            mb = v.parse().unwrap_or(f64::NAN);
        }
    }
    (secs, mb)
}

#[tokio::main]
async fn build(dir: &Path, n: usize) -> anyhow::Result<()> {
    let clock = Clock::system();
    let store = Store::open(&dir.join("mirror.db"), &clock).await?;
    let run = store.start_run(RunKind::Full, clock.now()).await?;
    let mut page = Vec::with_capacity(1000);
    for i in 0..n {
        let d = i % DEPARTMENTS.len();
        let raw = json!({
            "id": (700_000_000 + i).to_string(),
            "email_id": format!("user{i}@zylker.example"),
            "first_name": "First", "last_name": format!("Last{i}"),
            "status": "active", "employee_id": i.to_string(),
            "extension": (1000 + i % 9000).to_string(),
            "work_location": "Building A",
            "timezone": "Europe/London", "language": "English", "country": "United Kingdom",
            "department": {"id": format!("19013180000{d:02}"), "name": DEPARTMENTS[d]},
            "designation": {"id": "1901318000099", "name": "Staff"},
            "reportingto": {"id": "700000000", "name": "First Last0"},
        });
        page.push(FlatUser::from_raw(&raw).expect("an id"));
        if page.len() == 1000 || i + 1 == n {
            store
                .write_users_page(&page, run, ChangeSource::Full, clock.now())
                .await?;
            page.clear();
        }
    }
    store.close().await;
    // Written as it is made: the parent's memory does not matter, but a
    // 1M-row CSV need not be a string first.
    let mut csv = std::io::BufWriter::new(std::fs::File::create(dir.join("hr.csv"))?);
    writeln!(
        csv,
        "email_id,work_location,department,extension,employee_id"
    )?;
    for i in 0..n {
        let wl = if i % 10 == 0 {
            "Building B"
        } else {
            "Building A"
        };
        let dept = if i % 20 == 0 {
            DEPARTMENTS[(i + 1) % DEPARTMENTS.len()]
        } else {
            ""
        };
        writeln!(
            csv,
            "User{i}@Zylker.example,{wl},{dept},{},{i}",
            1000 + i % 9000
        )?;
    }
    csv.flush()?;
    Ok(())
}

/// The measured part: load the HR file, plan against the mirror.
#[tokio::main]
async fn child(dir: &Path) -> anyhow::Result<()> {
    let clock = Clock::system();
    let store = Store::open(&dir.join("mirror.db"), &clock).await?;
    let base = peak_mb();
    let t = Instant::now();
    let source = hr::load(&dir.join("hr.csv"))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let load = t.elapsed();
    let load_peak = peak_mb();
    let staged = std::fs::metadata(source.stage().path()).map_or(0, |m| m.len());
    let opts = PlanOptions::default();
    let limits = cliq_sync::cliq::quotas::Limits::documented();
    let p = plan(&store, &source, &opts, &limits).await?;
    let total = t.elapsed();
    println!(
        "  plan: {} users to update ({} field changes), {} blocked, {} not in HR; HR load {load:.2?}, peak RSS after it {load_peak:.1} MB (staged on disk: {:.1} MB, {} B per record)",
        p.summary.updates,
        p.summary.field_changes,
        p.summary.blocked,
        p.summary.not_in_hr,
        staged as f64 / 1e6,
        staged / source.len().max(1) as u64
    );
    println!(
        "  seconds={:.3} peak_mb={:.1} (process baseline before loading {base:.1} MB)",
        total.as_secs_f64(),
        peak_mb()
    );
    store.close().await;
    Ok(())
}

/// Peak resident set of this process so far (VmHWM), MB.
fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
