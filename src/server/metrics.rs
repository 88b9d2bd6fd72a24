//! `/metrics`: the Prometheus exposition, computed at scrape time from the
//! mirror and the in-process counters (see the parent module), one
//! `register_*` per group of series.

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{process, ServerState};
use crate::app::App;
use crate::cliq::client::ClientStatsSnapshot;
use crate::cliq::Endpoint;
use crate::daemon::DaemonState;
use crate::mirror::runs::RunKind;
use crate::status::StatusReport;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointStatusLabels {
    endpoint: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindStatusLabels {
    kind: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

type FGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// The Prometheus exposition of the current state.
pub async fn render(s: &ServerState) -> anyhow::Result<String> {
    let app = &s.app;
    let now = app.store.clock().now();
    let status = crate::status::collect(&app.store, &app.settings, now).await?;
    let stats = app.client.stats();
    // process_* names are standard, not ours: only the rest gets the prefix.
    let mut root = Registry::default();
    process::register(&mut root);
    let reg = root.sub_registry_with_prefix("cliq_sync");
    register_quota(reg, &status, &stats, now)?;
    let last_ok = app.store.last_successes().await?;
    register_mirror(reg, &status, &stats, last_ok);
    register_runs(reg, &s.daemon);
    // Read from the mirror, like the locks: a push held by a manual
    // `cliq-sync push` waits just as much as one held by the daemon.
    let held = app.store.held_push().await?.is_some();
    let waiting = app.store.waiting_held_plans().await?;
    let unapproved = waiting.iter().filter(|p| p.approved_at.is_none()).count();
    register_push(reg, &s.daemon, held, unapproved);
    register_client(reg, app, &status);
    register_progress(reg, &status.in_progress, now);
    register_hr_missing(reg, &status.hr_missing);

    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &root)?;
    Ok(out)
}

/// Requests, throttles, locks and headroom, by endpoint.
fn register_quota(
    reg: &mut Registry,
    status: &StatusReport,
    stats: &ClientStatsSnapshot,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let requests = Family::<EndpointStatusLabels, Counter>::default();
    for ((ep, outcome), n) in &stats.requests {
        requests
            .get_or_create(&EndpointStatusLabels {
                endpoint: ep.name().into(),
                status: outcome.clone(),
            })
            .inc_by(*n);
    }
    reg.register(
        "requests",
        "Requests sent to Cliq, by endpoint and HTTP status (or timeout/transport_error)",
        requests,
    );
    register_endpoints(reg, status, stats, now)
}

/// Throttles, locks and headroom, by endpoint.
fn register_endpoints(
    reg: &mut Registry,
    status: &StatusReport,
    stats: &ClientStatsSnapshot,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let throttled = Family::<EndpointLabel, Counter>::default();
    let locked = Family::<EndpointLabel, Gauge>::default();
    let unlock = Family::<EndpointLabel, FGauge>::default();
    let headroom = Family::<EndpointLabel, Gauge>::default();
    for e in &status.endpoints {
        let l = EndpointLabel {
            endpoint: e.endpoint.clone(),
        };
        let ep: Endpoint = e.endpoint.parse().map_err(anyhow::Error::msg)?;
        throttled
            .get_or_create(&l)
            .inc_by(stats.throttled.get(&ep).copied().unwrap_or(0));
        locked.get_or_create(&l).set(i64::from(e.locked));
        let left = e
            .locked_until
            .as_deref()
            .and_then(crate::clock::from_db)
            .map(|u| (u - now).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        unlock.get_or_create(&l).set(left);
        // A locked endpoint allows no request start, whatever the window says.
        let room = i64::from(e.quota) - i64::from(e.used_in_window);
        headroom
            .get_or_create(&l)
            .set(if e.locked { 0 } else { room });
    }
    reg.register(
        "throttle_responses",
        "Throttle answers from Cliq (429 or 400 request_limit_exceeded)",
        throttled,
    );
    reg.register(
        "endpoint_locked",
        "1 while Cliq has the endpoint locked",
        locked,
    );
    reg.register(
        "endpoint_unlock_seconds",
        "Seconds until the endpoint's lock ends (0 when unlocked)",
        unlock,
    );
    reg.register(
        "quota_headroom",
        "Request starts still allowed in the endpoint's current window",
        headroom,
    );
    Ok(())
}

/// What the mirror holds: users by status, last successes, the watermark
/// and Cliq's clock.
fn register_mirror(
    reg: &mut Registry,
    status: &StatusReport,
    stats: &ClientStatsSnapshot,
    last_successes: Vec<(RunKind, DateTime<Utc>)>,
) {
    let users = Family::<StatusLabel, Gauge>::default();
    for c in &status.users {
        users
            .get_or_create(&StatusLabel {
                status: c.status.clone(),
            })
            .set(c.users);
    }
    reg.register(
        "users",
        "Users in the mirror by Cliq status (removed: gone from Cliq)",
        users,
    );

    let last_ok = Family::<KindLabel, Gauge>::default();
    for (kind, at) in last_successes {
        last_ok
            .get_or_create(&KindLabel {
                kind: kind.to_string(),
            })
            .set(at.timestamp());
    }
    reg.register(
        "last_success_timestamp_seconds",
        "When the last successful run of each kind (full, incremental, push) finished",
        last_ok,
    );

    let watermark_age = FGauge::default();
    watermark_age.set(status.watermark_age_seconds.unwrap_or(-1) as f64);
    reg.register(
        "watermark_age_seconds",
        "Age of the incremental watermark (-1: none); Cliq's modified_after sees 7 days",
        watermark_age,
    );

    if let Some(ms) = stats.clock_skew_ms {
        let skew = FGauge::default();
        skew.set(ms as f64 / 1000.0);
        reg.register(
            "clock_skew_seconds",
            "Cliq's clock minus this host's at the last listing's first answer (Date header, 1 s resolution)",
            skew,
        );
    }
}

/// The daemon's runs: last durations, runs by kind and final status.
fn register_runs(reg: &mut Registry, daemon: &DaemonState) {
    let durations = Family::<KindLabel, FGauge>::default();
    if let Ok(d) = daemon.last_duration.lock() {
        for (kind, secs) in RunKind::ALL.iter().zip(d.iter()) {
            if let Some(secs) = secs {
                durations
                    .get_or_create(&KindLabel {
                        kind: kind.to_string(),
                    })
                    .set(*secs);
            }
        }
    }
    reg.register(
        "run_duration_seconds",
        "How long the last run of each kind took",
        durations,
    );

    let runs = Family::<KindStatusLabels, Counter>::default();
    for ((kind, status), n) in daemon.runs.snapshot() {
        runs.get_or_create(&KindStatusLabels {
            kind: kind.to_string(),
            status: status.to_string(),
        })
        .inc_by(n);
    }
    reg.register(
        "runs",
        "Runs by this process, by kind (full, incremental, push) and final status (ok, failed, stopped, held)",
        runs,
    );
}

/// Pushes: held runs and plans, the HR source, failures in a row, results.
fn register_push(reg: &mut Registry, daemon: &DaemonState, held_push: bool, unapproved: usize) {
    let held = Gauge::<i64>::default();
    held.set(i64::from(held_push));
    reg.register(
        "push_held",
        "Held push runs waiting: 1 while the newest held push run is newer than the last push run that ended ok",
        held,
    );
    let plans = Gauge::<i64>::default();
    plans.set(unapproved as i64);
    reg.register(
        "held_plans",
        "Held push plans waiting for `cliq-sync approve ID` (not yet approved)",
        plans,
    );

    // Absent without [hr] and before the daemon's first look at the file.
    if let Some(valid) = daemon.hr_source_valid() {
        let g = Gauge::<i64>::default();
        g.set(i64::from(valid));
        reg.register(
            "hr_source_valid",
            "1 if the daemon's last load of the HR source was valid, 0 if it was invalid or unreadable",
            g,
        );
    }

    let failures = Gauge::<i64>::default();
    failures.set(i64::from(
        daemon.consecutive_pull_failures.load(Ordering::Relaxed),
    ));
    reg.register(
        "pull_consecutive_failures",
        "Pulls failed in a row (0 after a success)",
        failures,
    );

    let pushes = Family::<ResultLabel, Counter>::default();
    for (name, c) in [
        ("applied", &daemon.pushes_applied),
        ("failed", &daemon.pushes_failed),
        ("skipped", &daemon.pushes_skipped),
    ] {
        pushes
            .get_or_create(&ResultLabel {
                result: name.into(),
            })
            .inc_by(c.load(Ordering::Relaxed));
    }
    reg.register(
        "push_results",
        "Users pushed by this process, by result",
        pushes,
    );
}

/// The client's side: tokens, request durations, the teams queue.
fn register_client(reg: &mut Registry, app: &App, status: &StatusReport) {
    let refreshes = Counter::<u64>::default();
    refreshes.inc_by(app.auth.refreshes());
    reg.register("token_refreshes", "OAuth access tokens minted", refreshes);

    let token_failures = Family::<ReasonLabel, Counter>::default();
    for reason in crate::cliq::auth::FAILURE_REASONS {
        let _ = token_failures.get_or_create(&ReasonLabel {
            reason: reason.into(),
        });
    }
    for (reason, n) in app.auth.refresh_failures() {
        token_failures
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc_by(n);
    }
    reg.register(
        "token_refresh_failures",
        "Failed access-token refreshes by reason (unreachable, invalid_client, invalid_code, access_denied, other)",
        token_failures,
    );
    reg.register(
        "request_duration_seconds",
        "How long requests to Cliq and to the OAuth host took, by endpoint",
        app.client.request_durations().family(),
    );

    let queue = Gauge::<i64>::default();
    queue.set(status.teams_queue);
    reg.register(
        "teams_queue",
        "Users waiting for a team-membership fetch",
        queue,
    );
}

/// Leavers, as the last plan saw them (read from the mirror: a manual
/// `cliq-sync plan` counts as much as the daemon's push). Always exported,
/// 0 when nobody is missing, so an alert can compare without `absent()`.
fn register_hr_missing(reg: &mut Registry, m: &crate::mirror::leavers::HrMissing) {
    let users = Gauge::<i64>::default();
    users.set(m.users);
    reg.register(
        "hr_missing_users",
        "People in Cliq (not removed) whom the last plan found missing from the HR source; never written (the Users API has no deactivation)",
        users,
    );
    let oldest = Gauge::<i64>::default();
    oldest.set(m.oldest_seconds.unwrap_or(0));
    reg.register(
        "hr_missing_oldest_seconds",
        "How long the longest-missing of them has been missing from HR (0: nobody)",
        oldest,
    );
}

/// Runs in progress (in any process on the mirror), by kind, and how far
/// they have got: read from their rows, which their process updates every
/// few seconds (`sync::progress::ROW_EVERY`).
fn register_progress(
    reg: &mut Registry,
    runs: &[crate::mirror::progress::RunInProgress],
    now: DateTime<Utc>,
) {
    register_in_progress(reg, runs);
    let users = Family::<KindLabel, Gauge>::default();
    let expected = Family::<KindLabel, Gauge>::default();
    let requests = Family::<KindLabel, Gauge>::default();
    let pages = Family::<KindLabel, Gauge>::default();
    let eta = Family::<KindLabel, FGauge>::default();
    for r in runs {
        let l = KindLabel {
            kind: r.kind.to_string(),
        };
        users.get_or_create(&l).set(r.users_seen);
        requests.get_or_create(&l).set(r.requests);
        pages.get_or_create(&l).set(r.pages);
        if let Some(n) = r.expected_users {
            expected.get_or_create(&l).set(n);
        }
        if let Some(at) = r.eta_at.as_deref().and_then(crate::clock::from_db) {
            let left = (at - now).num_milliseconds().max(0) as f64 / 1000.0;
            eta.get_or_create(&l).set(left);
        }
    }
    reg.register(
        "run_progress_users",
        "Users seen (pulls) or done (push) so far by the run in progress",
        users,
    );
    reg.register(
        "run_progress_requests",
        "Requests sent so far by the run in progress",
        requests,
    );
    reg.register(
        "run_progress_pages",
        "Listing pages written so far by the pull in progress",
        pages,
    );
    reg.register(
        "run_expected_users",
        "Users the run in progress expects: present users (full pull) or planned (push)",
        expected,
    );
    reg.register(
        "run_eta_seconds",
        "Seconds until the run in progress should end, from the quota floor",
        eta,
    );
}

/// `run_in_progress` of every kind: 0, or 1 while one is running.
fn register_in_progress(reg: &mut Registry, runs: &[crate::mirror::progress::RunInProgress]) {
    let in_progress = Family::<KindLabel, Gauge>::default();
    for kind in RunKind::ALL {
        let l = KindLabel {
            kind: kind.to_string(),
        };
        in_progress.get_or_create(&l).set(0);
    }
    for r in runs {
        let l = KindLabel {
            kind: r.kind.to_string(),
        };
        in_progress.get_or_create(&l).set(1);
    }
    reg.register(
        "run_in_progress",
        "1 while a run of this kind is running (in any live process on the mirror)",
        in_progress,
    );
}
