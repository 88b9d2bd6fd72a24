//! Issue 12 point 8, leavers: people in Cliq but no longer in HR are
//! reported (plan, `status`, `/metrics`) with how long they have been
//! missing, and nothing is ever written for them (the Users API has no
//! deactivation).

use std::time::Duration;

use cliq_sync::cliq::Endpoint;
use cliq_sync::clock::to_db;
use cliq_sync::status::collect;
use cliq_sync::sync::plan::{plan, render, Plan};
use serde_json::Value;

use crate::helpers::TestApp;
use crate::monitoring::scrape;
use crate::trust::{app, full_pull, opts, run_push, s, write_hr};

/// `email_id,work_location` for every simulator user but those at `skip`.
fn hr_csv(users: &[Value], skip: &[usize], tag: &str) -> String {
    let mut csv = String::from("email_id,work_location\n");
    for (i, u) in users.iter().enumerate().filter(|(i, _)| !skip.contains(i)) {
        csv.push_str(&format!("{},{tag} {i}\n", s(u, "email_id")));
    }
    csv
}

async fn plan_of(t: &TestApp, hr: &cliq_sync::hr::HrSource) -> Plan {
    plan(&t.app.store, hr, &opts().plan, t.app.scheduler.limits())
        .await
        .unwrap()
}

/// Requests the simulator received that name one of `ids` in their path.
fn writes_for(t: &TestApp, ids: &[String]) -> usize {
    t.sim
        .requests()
        .iter()
        .filter(|r| matches!(r.endpoint, Some(Endpoint::UpdateUser | Endpoint::AddUsers)))
        .filter(|r| ids.iter().any(|id| r.path.ends_with(id.as_str())))
        .count()
}

fn gauge(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} not exported:\n{metrics}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn leavers_are_reported_with_how_long_they_have_been_missing_and_never_written() {
    let t = app(50).await;
    let dir = tempfile::tempdir().unwrap();
    let users = t.sim.users();
    let everyone = write_hr(dir.path(), "hr.csv", &hr_csv(&users, &[], "HQ")).await;
    let out = run_push(&t, &everyone, &opts()).await.unwrap();
    assert_eq!(out.report.status, "ok", "{:?}", out.report);
    assert!(plan_of(&t, &everyone).await.not_in_hr.is_empty());

    // Three people leave HR; the first plan that sees it is "since".
    let leavers = [5usize, 6, 7];
    let leaver_ids: Vec<String> = leavers.iter().map(|&i| s(&users[i], "id")).collect();
    tokio::time::advance(Duration::from_secs(3600)).await;
    let since = to_db(t.clock.now());
    let hr = write_hr(dir.path(), "hr2.csv", &hr_csv(&users, &leavers, "Dock")).await;
    let p = plan_of(&t, &hr).await;
    assert_eq!(p.not_in_hr.len(), 3, "{:?}", p.not_in_hr);
    assert!(p
        .not_in_hr
        .iter()
        .all(|u| u.missing_since.as_deref() == Some(since.as_str())));

    // A push three hours later: the others change, the leavers get nothing.
    tokio::time::advance(Duration::from_secs(3 * 3600)).await;
    let before = writes_for(&t, &leaver_ids);
    let out = run_push(&t, &hr, &opts()).await.unwrap();
    assert_eq!(out.report.status, "ok", "{:?}", out.report);
    assert_eq!(out.plan.summary.updates, 47);
    assert_eq!(writes_for(&t, &leaver_ids) - before, 0);
    assert_eq!(
        out.plan.not_in_hr[0].missing_since.as_deref(),
        Some(since.as_str())
    );

    // The plan, human and JSON: same list, since when, for how long.
    let p = plan_of(&t, &hr).await;
    let j = serde_json::to_value(&p).unwrap();
    let nih = j["not_in_hr"].as_array().unwrap();
    assert_eq!(nih.len(), 3);
    for u in nih {
        assert_eq!(u["missing_since"], since.as_str(), "{u}");
        assert_eq!(u["missing_seconds"], 3 * 3600 + p_elapsed(&t, &since));
        assert!(leaver_ids.contains(&u["user_id"].as_str().unwrap().to_owned()));
    }
    let text = render(&p);
    assert!(text.contains("In Cliq but not in HR"), "{text}");
    for &i in &leavers {
        let line = text
            .lines()
            .find(|l| l.contains(&s(&users[i], "email_id")))
            .unwrap_or_else(|| panic!("{} not listed:\n{text}", s(&users[i], "email_id")));
        assert!(
            line.contains(&format!("missing from HR since {since}")) && line.contains("3h"),
            "{line}"
        );
    }

    // status, human and JSON; /metrics.
    let st = collect(&t.app.store, &t.app.settings, t.clock.now())
        .await
        .unwrap();
    let sj = serde_json::to_value(&st).unwrap();
    assert_eq!(sj["hr_missing"]["users"], 3, "{}", sj["hr_missing"]);
    assert_eq!(sj["hr_missing"]["oldest_since"], since.as_str());
    assert!(
        st.to_text().contains("not in HR  3 people"),
        "{}",
        st.to_text()
    );
    let (_, metrics) = scrape(&t, None).await;
    assert_eq!(gauge(&metrics, "cliq_sync_hr_missing_users"), 3.0);
    let missing_for = 3 * 3600 + p_elapsed(&t, &since);
    assert_eq!(
        gauge(&metrics, "cliq_sync_hr_missing_oldest_seconds"),
        missing_for as f64
    );

    // One comes back to HR, one is removed from Cliq: both are cleared.
    let back = write_hr(
        dir.path(),
        "hr3.csv",
        &hr_csv(&users, &leavers[1..], "Dock"),
    )
    .await;
    assert!(t.sim.remove_user(&leaver_ids[1]));
    full_pull(&t).await;
    let p = plan_of(&t, &back).await;
    let ids: Vec<&str> = p.not_in_hr.iter().map(|u| u.user_id.as_str()).collect();
    assert_eq!(ids, vec![leaver_ids[2].as_str()]);
    let (_, metrics) = scrape(&t, None).await;
    assert_eq!(gauge(&metrics, "cliq_sync_hr_missing_users"), 1.0);

    // Leaving again starts a new "since".
    tokio::time::advance(Duration::from_secs(60)).await;
    let again = to_db(t.clock.now());
    let p = plan_of(&t, &hr).await;
    let first = p
        .not_in_hr
        .iter()
        .find(|u| u.user_id == leaver_ids[0])
        .unwrap();
    assert_eq!(first.missing_since.as_deref(), Some(again.as_str()));
}

/// Seconds between `since` and now beyond the 3 hours the test advanced
/// (the push itself takes paused time under the quotas).
fn p_elapsed(t: &TestApp, since: &str) -> i64 {
    let since = cliq_sync::clock::from_db(since).unwrap();
    (t.clock.now() - since).num_seconds() - 3 * 3600
}
