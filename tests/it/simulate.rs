//! The simulator as others use it: strict about the PUT body, steerable
//! from outside (`simulate` flags, the loopback admin path `/_sim/faults`).
//! The socket tests run in real time on loopback and are small.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use cliq_sync::app::App;
use cliq_sync::cli::{build_simulator, Cli, Command};
use cliq_sync::cliq::models::UserFields;
use cliq_sync::cliq::transport::{RouterTransport, Transport};
use cliq_sync::clock::Clock;
use cliq_sync::sim::{SimConfig, Simulator, UpdateBody};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::helpers::{base_time, settings_for};

/// Serve `sim` on a loopback port until the token is cancelled.
async fn serve(sim: &Simulator) -> (String, CancellationToken, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let server = tokio::spawn({
        let (sim, stop) = (sim.clone(), stop.clone());
        async move { sim.serve(listener, stop.cancelled_owned()).await.unwrap() }
    });
    (base, stop, server)
}

fn http() -> reqwest::Client {
    cliq_sync::install_crypto_provider();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// An access token for the simulator's default credentials.
async fn token(base: &str) -> String {
    let cfg = SimConfig::default();
    let v: Value = http()
        .post(format!("{base}/oauth/v2/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", cfg.refresh_token.as_str()),
            ("client_id", cfg.client_id.as_str()),
            ("client_secret", cfg.client_secret.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

async fn list_status(base: &str, token: &str) -> u16 {
    http()
        .get(format!("{base}/api/v2/users?limit=5"))
        .header("authorization", format!("Zoho-oauthtoken {token}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn put_faults(base: &str, body: &str) -> (u16, Value) {
    let resp = http()
        .put(format!("{base}/_sim/faults"))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn fault_injection_is_steered_at_run_time_over_loopback_http() {
    let sim = Simulator::new(
        SimConfig {
            users: 20,
            ..SimConfig::default()
        },
        Clock::system(),
    );
    let (base, stop, server) = serve(&sim).await;
    let token = token(&base).await;
    assert_eq!(list_status(&base, &token).await, 200);

    let got: Value = http()
        .get(format!("{base}/_sim/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["error_5xx_rate"], 0.0, "{got}");
    assert_eq!(got["latency"], "0s", "{got}");

    let (s, v) = put_faults(&base, r#"{"error_5xx_rate": 1.0}"#).await;
    assert_eq!((s, &v["error_5xx_rate"]), (200, &json!(1.0)), "{v}");
    assert_eq!(sim.faults().error_5xx_rate, 1.0);
    assert!(list_status(&base, &token).await >= 500);

    // A PUT replaces every knob: what it leaves out is off.
    let (s, _) = put_faults(&base, "{}").await;
    assert_eq!(s, 200);
    assert_eq!(list_status(&base, &token).await, 200);

    // Nonsense changes nothing and says why.
    let (s, v) = put_faults(&base, r#"{"error_5xx_rate": 5}"#).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (400, Some("invalid_faults")),
        "{v}"
    );
    let (s, v) = put_faults(&base, r#"{"fail_rate": 0.5}"#).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("fail_rate"), "{v}");
    assert_eq!(sim.faults().error_5xx_rate, 0.0);

    // Outside the API: not counted, not logged, no quota spent.
    let c = sim.counters();
    let api: u64 = c.requests.values().sum();
    assert_eq!(api, 1 + 3, "one token mint and three listings: {c:?}");
    assert!(sim.requests().iter().all(|r| !r.path.starts_with("/_sim")));
    stop.cancel();
    server.await.unwrap();
}

fn simulate_args(flags: &[&str]) -> cliq_sync::cli::SimulateArgs {
    let argv = ["cliq-sync", "simulate"].iter().chain(flags);
    match Cli::try_parse_from(argv).unwrap().command {
        Command::Simulate(args) => args,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn simulate_flags_set_the_faults_the_clock_offset_and_the_body_shape() {
    let args = simulate_args(&[
        "--users",
        "10",
        "--fail-rate",
        "1",
        "--truncate-rate",
        "0.25",
        "--latency",
        "20ms",
        "--clock-offset",
        "-10m",
        "--update-body",
        "flat",
    ]);
    let (sim, cfg) = build_simulator(&args).unwrap();
    assert_eq!(cfg.update_body, UpdateBody::Flat);
    let f = sim.faults();
    assert_eq!(
        (f.error_5xx_rate, f.truncate_rate, f.latency),
        (1.0, 0.25, Duration::from_millis(20))
    );
    let (base, stop, server) = serve(&sim).await;
    let token = token(&base).await;
    let resp = http()
        .get(format!("{base}/api/v2/users"))
        .header("authorization", format!("Zoho-oauthtoken {token}"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_server_error(), "{}", resp.status());
    // The Date header on the socket is the simulator's clock, not hyper's.
    let date = resp.headers()["date"].to_str().unwrap().to_owned();
    let date = cliq_sync::clock::from_http_date(&date).unwrap();
    let skew = date - chrono::Utc::now();
    assert!(
        (skew + chrono::Duration::minutes(10)).abs() < chrono::Duration::seconds(5),
        "Date {date}, skew {skew}"
    );
    stop.cancel();
    server.await.unwrap();

    let ahead = simulate_args(&["--clock-offset", "10m"]);
    assert_eq!(ahead.clock_offset, Some(chrono::Duration::minutes(10)));
    for bad in [
        &["--fail-rate", "1.5"][..],
        &["--truncate-rate", "-0.1"],
        &["--latency", "soon"],
        &["--clock-offset", "-ten"],
        &["--update-body", "both"],
    ] {
        let argv = ["cliq-sync", "simulate"].iter().chain(bad);
        assert!(Cli::try_parse_from(argv).is_err(), "{bad:?}");
    }
    let help = Cli::try_parse_from(["cliq-sync", "simulate", "--help"])
        .unwrap_err()
        .to_string();
    for flag in [
        "--fail-rate",
        "--truncate-rate",
        "--latency",
        "--clock-offset",
        "--update-body",
    ] {
        assert!(help.contains(flag), "{flag} not in\n{help}");
    }
}

/// The client against simulators in each mode, in-process: the defaults
/// agree (wrapped, with `email_id`), and a mismatch is refused, not absorbed.
async fn put_against(client_body: &str, sim_body: UpdateBody) -> Result<(), String> {
    let clock = Clock::anchored(base_time());
    let sim_cfg = SimConfig {
        users: 20,
        update_body: sim_body,
        ..SimConfig::default()
    };
    let sim = Simulator::new(sim_cfg.clone(), clock.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings_for(&sim_cfg, dir.path());
    settings.cliq.update_body = client_body.parse().unwrap();
    let transport: Arc<dyn Transport> = Arc::new(RouterTransport::new(sim.router()));
    let app = App::open_with(settings, clock, transport).await.unwrap();
    let user = &sim.users()[4];
    let (id, email) = (
        user["id"].as_str().unwrap(),
        user["email_id"].as_str().unwrap(),
    );
    let fields = UserFields::new().with("extension", "6161").unwrap();
    let r = app.client.update_user(id, email, &fields).await;
    match r {
        Ok(b) if b.is_success(email) && sim.user(id).unwrap()["extension"] == "6161" => Ok(()),
        Ok(b) => Err(format!("{b:?}")),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test(start_paused = true)]
async fn client_and_simulator_agree_on_the_put_body_and_refuse_a_mismatch() {
    let defaults = cliq_sync::config::Settings::default().cliq.update_body;
    assert_eq!(defaults.as_str(), "wrapped");
    assert_eq!(SimConfig::default().update_body, UpdateBody::Wrapped);
    put_against(defaults.as_str(), UpdateBody::Wrapped)
        .await
        .unwrap();
    put_against("flat", UpdateBody::Flat).await.unwrap();
    let e = put_against("flat", UpdateBody::Wrapped).await.unwrap_err();
    assert!(e.contains("extra key"), "{e}");
    let e = put_against("wrapped", UpdateBody::Flat).await.unwrap_err();
    assert!(e.contains("extra key"), "{e}");
}
