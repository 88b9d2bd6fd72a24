//! `cliq-sync simulate`: the built-in Cliq simulator on a port, built from
//! the flags, with a banner saying how to point cliq-sync at it.

use std::time::Duration;

use super::{Failure, SimulateArgs};
use crate::clock::Clock;
use crate::sim::{SimConfig, Simulator};

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

pub(super) async fn command(args: SimulateArgs) -> Result<(), Failure> {
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
