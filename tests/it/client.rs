//! The foundation: every endpoint through the typed client against the
//! simulator; OAuth; the quota scheduler against a strict server.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use cliq_sync::cliq::client::ListEvent;
use cliq_sync::cliq::error::CliqError;
use cliq_sync::cliq::models::{Fields, ListUsersParams, UserFields};
use cliq_sync::cliq::Endpoint;
use cliq_sync::sim::Faults;
use futures::StreamExt;
use serde_json::json;

use crate::helpers::{spawn_app, Opts};

/// Every id of a complete listing, and how often the listing restarted.
async fn list_all_counting_restarts(
    client: &cliq_sync::cliq::client::CliqClient,
) -> (Vec<String>, u32) {
    let mut ids = Vec::new();
    let mut restarts = 0;
    let mut stream = client.list_users(ListUsersParams::all_fields());
    while let Some(ev) = stream.next().await {
        match ev.unwrap() {
            ListEvent::Page(p) => ids.extend(p.users.into_iter().map(|u| u.id.unwrap())),
            ListEvent::Restarted => {
                restarts += 1;
                ids.clear();
            }
        }
    }
    (ids, restarts)
}

async fn list_all(client: &cliq_sync::cliq::client::CliqClient) -> Vec<String> {
    let (ids, restarts) = list_all_counting_restarts(client).await;
    assert_eq!(restarts, 0, "unexpected restart");
    ids
}

#[tokio::test(start_paused = true)]
async fn listing_1200_users_sees_each_exactly_once() {
    let t = spawn_app(Opts {
        users: 1200,
        ..Opts::default()
    })
    .await;
    let ids = list_all(&t.app.client).await;
    assert_eq!(ids.len(), 1200);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 1200);
    // 12 pages of 100, all within one window: no waiting, no throttling.
    assert_eq!(t.sim.counters().requests[&Endpoint::ListUsers], 12);
    assert_eq!(t.throttled_total(), 0);
}

#[tokio::test(start_paused = true)]
async fn every_endpoint_round_trips() {
    let t = spawn_app(Opts::default()).await;
    let c = &t.app.client;
    let any = t.sim.users()[5].clone();
    let id = any["id"].as_str().unwrap().to_owned();
    let email = any["email_id"].as_str().unwrap().to_owned();

    // GET /users/{id}, full form, unknown fields kept.
    let u = c.get_user(&id, Some(&Fields::All)).await.unwrap();
    assert_eq!(u.email_id.as_deref(), Some(email.as_str()));
    assert!(u.department.is_some());
    assert!(u.raw.contains_key("timeoffset"));

    // PUT /users/{id}: applied in the simulator's state.
    let fields = UserFields::for_email(&email)
        .with("work_location", "Dock 7")
        .unwrap();
    let r = c.update_user(&id, &email, &fields).await.unwrap();
    assert!(r.is_success(&email), "{r:?}");
    assert_eq!(t.sim.user(&id).unwrap()["work_location"], "Dock 7");

    // POST /users: one added, one already active.
    let new = UserFields::for_email("new.hire@zylker.example")
        .with("first_name", "New")
        .unwrap();
    let existing = UserFields::for_email(&email);
    let r = c.add_users(&[new, existing]).await.unwrap();
    assert!(r.is_success("new.hire@zylker.example"));
    assert_eq!(r.failure_code(&email), Some("email.activeuser"));
    assert!(t.sim.user_id_by_email("new.hire@zylker.example").is_some());

    // GET /users/{id}/teams and GET /users/layout.
    let teams = c.user_teams(&id).await.unwrap();
    assert!(teams.iter().all(|t| t.team_id.is_some()));
    for name in cliq_sync::sync::pull::LAYOUT_NAMES {
        let layouts = c.user_layouts(name).await.unwrap();
        assert!(!layouts.is_empty(), "{name}");
        assert!(!layouts[0].sections.is_empty(), "{name}");
    }

    // The request bodies were in the spec's shape.
    let put = t
        .sim
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&put.body).unwrap();
    assert_eq!(
        body,
        json!({"users": [{"email_id": email, "work_location": "Dock 7"}]})
    );
    assert_eq!(t.throttled_total(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_is_not_retried() {
    let t = spawn_app(Opts::default()).await;
    let e = t
        .app
        .client
        .update_user(
            "does-not-exist",
            "x@zylker.example",
            &UserFields::for_email("x@zylker.example"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, CliqError::Permanent { status: 400, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("operation_not_allowed"), "{e}");
    assert_eq!(t.sim.counters().requests[&Endpoint::UpdateUser], 1);
}

#[tokio::test(start_paused = true)]
async fn transient_faults_are_retried_to_success() {
    let t = spawn_app(Opts {
        users: 1500,
        ..Opts::default()
    })
    .await;
    t.sim.set_faults(Faults {
        error_5xx_rate: 0.10,
        ..Faults::default()
    });
    let ids = list_all(&t.app.client).await;
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 1500);
    let c = t.sim.counters();
    assert!(c.server_errors > 0, "the fault was injected: {c:?}");
    assert_eq!(c.requests[&Endpoint::ListUsers], 15 + c.server_errors);
    assert_eq!(t.throttled_total(), 0);
    assert!(t.max_in_window(Endpoint::ListUsers) <= 30);
}

#[tokio::test(start_paused = true)]
async fn token_refreshes_on_expiry_and_after_a_401() {
    let t = spawn_app(Opts {
        token_ttl: Duration::from_secs(600),
        ..Opts::default()
    })
    .await;
    let c = &t.app.client;
    let id = t.sim.users()[0]["id"].as_str().unwrap().to_owned();
    c.get_user(&id, None).await.unwrap();
    assert_eq!(t.sim.counters().tokens_minted, 1);
    c.get_user(&id, None).await.unwrap();
    assert_eq!(t.sim.counters().tokens_minted, 1, "cached");

    // Shortly before expiry the token is refreshed ahead of time.
    tokio::time::sleep(Duration::from_secs(590)).await;
    c.get_user(&id, None).await.unwrap();
    assert_eq!(t.sim.counters().tokens_minted, 2);
    assert_eq!(t.sim.counters().unauthorized, 0);

    // The server forgets every token: one 401, one refresh, one re-send.
    t.sim.expire_tokens();
    c.get_user(&id, None).await.unwrap();
    let counters = t.sim.counters();
    assert_eq!(counters.unauthorized, 1);
    assert_eq!(counters.tokens_minted, 3);
    assert_eq!(t.app.auth.refreshes(), 3);
}

#[tokio::test(start_paused = true)]
async fn twenty_concurrent_callers_cause_one_refresh() {
    let t = spawn_app(Opts::default()).await;
    let ids: Vec<String> = t.sim.users()[..20]
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    let calls = ids.iter().map(|id| t.app.client.get_user(id, None));
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    assert_eq!(t.sim.counters().tokens_minted, 1);

    // And 20 concurrent 401s (every token revoked) cause one refresh.
    t.sim.expire_tokens();
    tokio::time::sleep(Duration::from_secs(61)).await;
    let calls = ids.iter().map(|id| t.app.client.get_user(id, None));
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    assert_eq!(t.sim.counters().tokens_minted, 2);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_ignores_quotas_is_locked_by_the_simulator() {
    let t = spawn_app(Opts {
        settings: Box::new(|s| {
            // Lift the client's own limit: only the server stands in the way.
            s.limits.list_users = Some(cliq_sync::config::LimitOverride {
                requests: Some(10_000),
                per: None,
                lock: None,
            });
        }),
        ..Opts::default()
    })
    .await;
    let start = t.clock.now();
    // 31 first pages back to back: the client's own limit is lifted.
    for _ in 0..31 {
        let page = t
            .app
            .client
            .list_users_page(&ListUsersParams::all_fields(), None)
            .await
            .unwrap();
        assert_eq!(page.users.len(), 100);
    }
    let c = t.sim.counters();
    // The 31st request within a minute locked the listing for 10 minutes.
    assert_eq!(c.locks[&Endpoint::ListUsers], 1, "{c:?}");
    assert_eq!(c.throttled[&Endpoint::ListUsers], 1);
    assert_eq!(c.requests[&Endpoint::ListUsers], 32);
    // The client honoured the lock (persisted) and its retry came after it.
    assert!(t.clock.now() - start >= chrono::Duration::minutes(10));
}

#[tokio::test(start_paused = true)]
async fn fifty_concurrent_callers_never_exceed_any_quota() {
    let t = spawn_app(Opts {
        users: 300,
        ..Opts::default()
    })
    .await;
    let users = t.sim.users();
    let start = t.clock.now();
    let mut tasks = Vec::new();
    for (i, u) in users.iter().take(50).enumerate() {
        let client = t.app.client.clone();
        let u = u.clone();
        tasks.push(tokio::spawn(async move {
            let id = u["id"].as_str().unwrap().to_owned();
            let email = u["email_id"].as_str().unwrap().to_owned();
            // Each caller hits several endpoints, 4 requests per endpoint.
            for round in 0..4 {
                client.get_user(&id, None).await.unwrap();
                client.user_teams(&id).await.unwrap();
                let f = UserFields::for_email(&email)
                    .with("extension", format!("{i}{round}"))
                    .unwrap();
                client.update_user(&id, &email, &f).await.unwrap();
                let mut s = client.list_users(ListUsersParams {
                    limit: Some(10),
                    ..ListUsersParams::default()
                });
                // First page only.
                s.next().await.unwrap().unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let c = t.sim.counters();
    assert_eq!(t.throttled_total(), 0, "{c:?}");
    assert_eq!(t.locks_total(), 0);
    for ep in [
        Endpoint::GetUser,
        Endpoint::UserTeams,
        Endpoint::UpdateUser,
        Endpoint::ListUsers,
    ] {
        assert_eq!(c.requests[&ep], 200, "{ep}");
        assert!(
            t.max_in_window(ep) <= ep.documented_quota().requests,
            "{ep}"
        );
    }
    // The 20/min endpoints set the pace and are used to the full.
    for ep in [Endpoint::GetUser, Endpoint::UserTeams, Endpoint::UpdateUser] {
        assert_eq!(t.max_in_window(ep), 20, "{ep}");
    }
    // 200 requests at 20/min need 9 full windows of waiting, not more.
    let elapsed = (t.clock.now() - start).to_std().unwrap();
    assert!(elapsed >= Duration::from_secs(9 * 60), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(9 * 60 + 30), "{elapsed:?}");
}

#[tokio::test(start_paused = true)]
async fn a_throttle_locks_the_endpoint_across_a_restart() {
    let t = spawn_app(Opts::default()).await;
    let id = t.sim.users()[0]["id"].as_str().unwrap().to_owned();
    t.app.client.get_user(&id, None).await.unwrap();
    let start = t.clock.now();
    // The server locks GET /users/{id} (as if another tool had spent the quota).
    t.sim.lock_endpoint(Endpoint::GetUser);
    let get = {
        let client = t.app.client.clone();
        let id = id.clone();
        tokio::spawn(async move { client.get_user(&id, None).await })
    };
    // Let the request hit the lock, then "kill" the process.
    tokio::time::sleep(Duration::from_secs(1)).await;
    get.abort();
    let until = t
        .app
        .scheduler
        .locked_until(Endpoint::GetUser)
        .await
        .unwrap()
        .expect("the 429 was persisted as a lock");
    assert!(until >= start + chrono::Duration::minutes(10));
    let throttled_before = t.throttled_total();

    // A new process on the same mirror: waits for the lock, sends nothing
    // into it, and resumes right after.
    let app2 = t.restart().await;
    app2.client.get_user(&id, None).await.unwrap();
    assert_eq!(
        t.throttled_total(),
        throttled_before,
        "no request into the lock"
    );
    let resumed = t.clock.now();
    assert!(resumed >= until);
    assert!(
        resumed - until < chrono::Duration::seconds(2),
        "{resumed} vs {until}"
    );
}

#[tokio::test(start_paused = true)]
async fn throttling_as_400_request_limit_exceeded_also_locks() {
    let t = spawn_app(Opts::default()).await;
    let id = t.sim.users()[0]["id"].as_str().unwrap().to_owned();
    t.sim.set_faults(Faults {
        force_throttle: true,
        throttle_as_400: true,
        ..Faults::default()
    });
    let client = t.app.client.clone();
    let task = tokio::spawn(async move { client.get_user(&id, None).await });
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(t
        .app
        .scheduler
        .locked_until(Endpoint::GetUser)
        .await
        .unwrap()
        .is_some());
    assert_eq!(t.sim.counters().throttled[&Endpoint::GetUser], 1);
    // Lift the fault: the call completes once the lock has passed.
    t.sim.set_faults(Faults::default());
    task.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn two_instances_on_one_mirror_share_one_budget() {
    let t = spawn_app(Opts::default()).await;
    let other = t.restart().await;
    let users = t.sim.users();
    let mut tasks = Vec::new();
    for (i, u) in users.iter().take(60).enumerate() {
        let client = if i % 2 == 0 {
            t.app.client.clone()
        } else {
            other.client.clone()
        };
        let id = u["id"].as_str().unwrap().to_owned();
        tasks.push(tokio::spawn(
            async move { client.get_user(&id, None).await },
        ));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(t.sim.counters().requests[&Endpoint::GetUser], 60);
    assert_eq!(t.max_in_window(Endpoint::GetUser), 20);
    assert_eq!(t.throttled_total(), 0);
    assert!(t.app.scheduler.starts() > 0 && other.scheduler.starts() > 0);
}

/// The socket path: the simulator served on a loopback port, the client over
/// reqwest, in real time (small, so it is quick).
#[tokio::test]
async fn over_real_http() {
    use cliq_sync::app::App;
    use cliq_sync::cliq::transport::ReqwestTransport;
    use cliq_sync::clock::Clock;
    use cliq_sync::sim::{SimConfig, Simulator};

    let sim_cfg = SimConfig {
        users: 250,
        ..SimConfig::default()
    };
    let sim = Simulator::new(sim_cfg.clone(), Clock::system());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(sim.clone().serve(listener, stop.clone().cancelled_owned()));
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::settings_for(&sim_cfg, dir.path());
    settings.cliq.base_url = Some(format!("http://{addr}"));
    settings.cliq.accounts_url = Some(format!("http://{addr}"));
    let app = App::open_with(
        settings,
        Clock::system(),
        Arc::new(ReqwestTransport::new().unwrap()),
    )
    .await
    .unwrap();
    let ids = list_all(&app.client).await;
    assert_eq!(ids.len(), 250);
    let u = app
        .client
        .get_user(&ids[0], Some(&Fields::All))
        .await
        .unwrap();
    assert_eq!(u.id.as_deref(), Some(ids[0].as_str()));
    assert_eq!(sim.counters().tokens_minted, 1);
    stop.cancel();
    server.await.unwrap().unwrap();
}
