//! Plan-time figures: 100,000 HR records against a 100,000-user mirror.
//!
//! ```text
//! cargo run --release --example plan_bench            # 100000 users
//! cargo run --release --example plan_bench -- 20000   # another size
//! ```
//!
//! Builds a temporary mirror of N users (in pages, as a full pull would),
//! writes an N-record HR CSV in which about 10% of the people have a changed
//! work location and 5% a department given by name, then prints the HR load
//! time, the plan time (mirror snapshot + join) and the plan's totals.

use std::time::Instant;

use cliq_sync::clock::Clock;
use cliq_sync::hr;
use cliq_sync::mirror::runs::RunKind;
use cliq_sync::mirror::users::{ChangeSource, FlatUser};
use cliq_sync::mirror::Store;
use cliq_sync::sync::plan::{compute, plan, PlanOptions};
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    let clock = Clock::system();
    let store = Store::open(&dir.path().join("mirror.db"), &clock).await?;

    let t = Instant::now();
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
    println!("mirror of {n} users built in {:.2?}", t.elapsed());

    let mut csv = String::from("email_id,work_location,department,extension,employee_id\n");
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
        csv.push_str(&format!(
            "User{i}@Zylker.example,{wl},{dept},{},{i}\n",
            1000 + i % 9000
        ));
    }
    let path = dir.path().join("hr.csv");
    std::fs::write(&path, &csv)?;

    let t = Instant::now();
    let source = hr::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let load = t.elapsed();
    println!(
        "HR load: {} CSV records ({:.1} MB) in {load:.2?}",
        source.len(),
        csv.len() as f64 / 1e6
    );

    let opts = PlanOptions::default();
    let limits = cliq_sync::cliq::quotas::Limits::documented();
    let t = Instant::now();
    let users = store.plan_snapshot().await?;
    let snapshot = t.elapsed();
    let t = Instant::now();
    let p = compute(&source, &users, &[], &[], &opts, &limits);
    let join = t.elapsed();
    let t = Instant::now();
    let p2 = plan(&store, &source, &opts, &limits).await?;
    let total = t.elapsed();
    assert_eq!(p.summary, p2.summary);
    println!(
        "plan: mirror snapshot {snapshot:.2?} + join {join:.2?}; plan() end to end {total:.2?}"
    );
    println!(
        "plan: {} users to update ({} field changes), {} blocked, {} not in HR; {} PUTs, at least {:.0} s under the quotas",
        p.summary.updates,
        p.summary.field_changes,
        p.summary.blocked,
        p.summary.not_in_hr,
        p.summary.update_requests,
        p.summary.min_duration_secs
    );
    let t = Instant::now();
    let text = serde_json::to_string(&p)?;
    println!(
        "plan --json: {:.1} MB serialised in {:.2?}",
        text.len() as f64 / 1e6,
        t.elapsed()
    );
    store.close().await;
    Ok(())
}
