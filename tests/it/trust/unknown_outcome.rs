//! Point 2: a write whose reply is lost after it reached Cliq (truncated
//! body, connection reset, no answer until the client times out) is
//! reconciled in the same run, never re-sent blind.

use std::sync::Arc;
use std::time::Duration;

use cliq_sync::cliq::Endpoint;
use cliq_sync::sim::Faults;

use super::{app, changes_csv, count, opts, run_push, s, write_hr};
use crate::helpers::TestApp;

/// 60 work-location changes pushed under `faults`; returns the PUTs sent.
async fn push_60_changes(faults: Faults) -> (TestApp, u64) {
    let t = app(200).await;
    let dir = tempfile::tempdir().unwrap();
    let users = t.sim.users();
    let hr = write_hr(dir.path(), "hr.csv", &changes_csv(&users, 60, "Desk")).await;
    t.sim.set_faults(faults);
    t.sim.reset_counters();
    let out = run_push(&t, &hr, &opts()).await.unwrap();
    let r = &out.report;
    let puts = count(&t, Endpoint::UpdateUser);
    eprintln!(
        "PUTs for 60 changes: {puts} (GET /users/{{id}}: {}); report {r:?}",
        count(&t, Endpoint::GetUser)
    );
    assert_eq!(r.status, "ok", "{r:?}");
    assert_eq!(r.updates_applied, 60, "{r:?}");
    for u in users.iter().take(60) {
        let now = t.sim.user(&s(u, "id")).unwrap();
        assert_eq!(s(&now, "work_location"), format!("Desk {}", s(u, "id")));
    }
    (t, puts)
}

#[tokio::test(start_paused = true)]
async fn puts_for_60_changes_under_25pct_truncated_replies() {
    let (t, puts) = push_60_changes(Faults {
        truncate_rate: 0.25,
        ..Faults::default()
    })
    .await;
    assert_eq!(puts, 60, "a truncated reply to a PUT was re-sent blind");
    assert!(count(&t, Endpoint::GetUser) > 0, "nothing was reconciled");
}

#[tokio::test(start_paused = true)]
async fn puts_for_60_changes_under_25pct_resets_after_sending() {
    let (t, puts) = push_60_changes(Faults {
        write_reset_rate: 0.25,
        ..Faults::default()
    })
    .await;
    assert_eq!(puts, 60, "a reset after sending was re-sent blind");
    assert!(count(&t, Endpoint::GetUser) > 0, "nothing was reconciled");
}

#[tokio::test(start_paused = true)]
async fn puts_for_60_changes_under_25pct_timeouts_after_sending() {
    let (t, puts) = push_60_changes(Faults {
        write_hang_rate: 0.25,
        ..Faults::default()
    })
    .await;
    assert_eq!(puts, 60, "a timed-out PUT was re-sent blind");
    assert!(count(&t, Endpoint::GetUser) > 0, "nothing was reconciled");
}

/// Three new hires in one batch; the reply to the POST is cut short.
#[tokio::test(start_paused = true)]
async fn posts_of_an_add_batch_under_a_truncated_reply() {
    let t = app(30).await;
    let dir = tempfile::tempdir().unwrap();
    let hr = write_hr(
        dir.path(),
        "hr.csv",
        "email_id,first_name\n\
         ann.new@zylker.example,Ann\n\
         bob.new@zylker.example,Bob\n\
         cy.new@zylker.example,Cy\n",
    )
    .await;
    let mut o = opts();
    o.plan.create_missing = true;
    t.sim.set_faults(Faults {
        write_truncate_rate: 1.0,
        ..Faults::default()
    });
    t.sim.reset_counters();
    let out = run_push(&t, &hr, &o).await.unwrap();
    let r = &out.report;
    let posts = count(&t, Endpoint::AddUsers);
    eprintln!("POSTs of an add batch under a truncated reply: {posts}; report {r:?}");
    assert_eq!(posts, 1, "the add batch was re-POSTed blind");
    assert_eq!(r.status, "ok", "{r:?}");
    assert_eq!(r.adds_applied, 3, "{r:?}");
    for e in ["ann.new", "bob.new", "cy.new"] {
        assert!(t
            .sim
            .user_id_by_email(&format!("{e}@zylker.example"))
            .is_some());
    }
    // Nothing is left of unknown outcome, and the next plan adds nobody.
    t.sim.set_faults(Faults::default());
    let again = run_push(&t, &hr, &o).await.unwrap();
    assert!(again.plan.adds.is_empty(), "{:?}", again.plan.adds);
    assert_eq!(count(&t, Endpoint::AddUsers), 1);
}

/// The socket path: a PUT applied and then reset, and a PUT applied and then
/// left unanswered past the client's timeout, over real loopback HTTP.
#[tokio::test]
async fn lost_replies_over_real_http_are_reconciled() {
    use cliq_sync::app::App;
    use cliq_sync::cliq::transport::ReqwestTransport;
    use cliq_sync::clock::Clock;
    use cliq_sync::sim::{SimConfig, Simulator};

    let sim_cfg = SimConfig {
        users: 20,
        ..SimConfig::default()
    };
    let sim = Simulator::new(sim_cfg.clone(), Clock::system());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Aborted at the end: a hung handler would hold a graceful shutdown.
    let server = tokio::spawn(sim.clone().serve(listener, std::future::pending()));
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::settings_for(&sim_cfg, dir.path());
    settings.cliq.base_url = Some(format!("http://{addr}"));
    settings.cliq.accounts_url = Some(format!("http://{addr}"));
    settings.cliq.request_timeout = Duration::from_millis(500);
    let app = App::open_with(
        settings,
        Clock::system(),
        Arc::new(ReqwestTransport::without_proxy().unwrap()),
    )
    .await
    .unwrap();
    let pulled = cliq_sync::sync::pull_with(
        &app,
        cliq_sync::sync::PullKind::Full,
        &cliq_sync::sync::PullOptions {
            teams: cliq_sync::sync::TeamsMode::Off,
            layouts: false,
            ..Default::default()
        },
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(pulled.ok(), "{pulled:?}");
    let hr_dir = tempfile::tempdir().unwrap();
    for (i, faults) in [
        Faults {
            write_reset_rate: 1.0,
            ..Faults::default()
        },
        Faults {
            write_hang_rate: 1.0,
            ..Faults::default()
        },
    ]
    .into_iter()
    .enumerate()
    {
        let users = sim.users();
        let hr = write_hr(
            hr_dir.path(),
            &format!("hr{i}.csv"),
            &changes_csv(&users[i..], 1, &format!("Dock {i}")),
        )
        .await;
        sim.set_faults(faults.clone());
        sim.reset_counters();
        let out = cliq_sync::sync::push::push(
            &app.store,
            &app.client,
            app.scheduler.limits(),
            &hr,
            &opts(),
            &tokio_util::sync::CancellationToken::new(),
        )
        .await
        .unwrap();
        let puts = sim.counters().requests[&Endpoint::UpdateUser];
        eprintln!("{faults:?}: PUTs {puts}; report {:?}", out.report);
        assert_eq!(puts, 1, "{faults:?}: re-sent blind");
        assert_eq!(out.report.updates_applied, 1, "{:?}", out.report);
    }
    server.abort();
}

/// A PUT lost before Cliq applied it: the re-check says "not applied", it
/// is sent once more in the same run, and never a third time.
#[tokio::test(start_paused = true)]
async fn an_update_lost_before_it_applied_is_sent_again_once() {
    let t = app(30).await;
    let dir = tempfile::tempdir().unwrap();
    let users = t.sim.users();
    let hr = write_hr(dir.path(), "hr.csv", &changes_csv(&users, 1, "Desk")).await;
    t.sim.set_faults(Faults {
        write_drop_rate: 1.0,
        ..Faults::default()
    });
    t.sim.reset_counters();
    let out = run_push(&t, &hr, &opts()).await.unwrap();
    let r = &out.report;
    assert_eq!(count(&t, Endpoint::UpdateUser), 2, "{r:?}");
    assert_eq!((r.resent, r.failed, r.updates_applied), (1, 1, 0), "{r:?}");
    assert_eq!(r.failures[0].code.as_deref(), Some("not_applied"));
    assert!(!r.failures[0].permanent, "{r:?}");
    // Not remembered: the next push sends it, and it applies.
    t.sim.set_faults(Faults::default());
    let out = run_push(&t, &hr, &opts()).await.unwrap();
    assert_eq!(out.report.updates_applied, 1, "{:?}", out.report);
    assert_eq!(count(&t, Endpoint::UpdateUser), 3);
}
