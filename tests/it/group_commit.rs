//! Group commit in the pull (issue 10, point 9): pages already fetched when
//! the writer gets to them are written in one transaction, pages that
//! arrive slowly each in their own, and the mirror ends the same either way.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use cliq_sync::app::App;
use cliq_sync::cliq::transport::{RouterTransport, Transport, TransportFuture};
use cliq_sync::config::LimitOverride;
use cliq_sync::mirror::Store;
use cliq_sync::sim::{SimConfig, Simulator};
use cliq_sync::sync::{pull, PullKind, PullReport};
use serde_json::json;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::helpers::{base_time, settings_for, Logs};

const USERS: usize = 1_500;
/// Small pages, so that a listing has many of them.
const PAGE_SIZE: u32 = 10;

struct Side {
    sim: Simulator,
    app: App,
    _dir: tempfile::TempDir,
}

/// A Cliq slower than the writer: a listing page is answered only once
/// the run wrote every page answered before it.
struct Paced {
    inner: RouterTransport,
    store: Arc<OnceLock<Store>>,
    /// (the run, the listing pages answered in it)
    answered: Mutex<(Option<i64>, u64)>,
}

impl Paced {
    fn may_answer(&self, run: Option<i64>, written: u64) -> bool {
        let mut answered = self.answered.lock().unwrap();
        if answered.0 != run {
            *answered = (run, 0);
        }
        let ok = written >= answered.1;
        answered.1 += u64::from(ok);
        ok
    }

    async fn wait_for_writer(&self) {
        let store = self.store.get().expect("the app is open");
        loop {
            let progress = store.progress().current();
            let (run, written) = (
                progress.as_ref().map(|p| p.run_id),
                progress.map_or(0, |p| p.pages),
            );
            if self.may_answer(run, written) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Transport for Paced {
    fn send(&self, req: http::Request<bytes::Bytes>) -> TransportFuture<'_> {
        Box::pin(async move {
            if req.method() == http::Method::GET && req.uri().path().ends_with("/users") {
                self.wait_for_writer().await;
            }
            self.inner.send(req).await
        })
    }
}

/// A simulator and the program against it. `fast`: quotas lifted on both
/// sides, so the listing outruns the writer; otherwise each page waits
/// for the writer (see [`Paced`]), as real Cliq's pages arrive slower than
/// the mirror writes them.
async fn side(fast: bool) -> Side {
    let clock = cliq_sync::clock::Clock::anchored(base_time());
    let mut cfg = SimConfig {
        users: USERS,
        ..SimConfig::default()
    };
    if fast {
        for q in cfg.quotas.values_mut() {
            q.requests = u32::MAX / 2;
        }
    }
    let sim = Simulator::new(cfg.clone(), clock.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings_for(&cfg, dir.path());
    s.cliq.page_size = PAGE_SIZE;
    if fast {
        s.limits.allow_above_documented = true;
        s.limits.list_users = Some(LimitOverride {
            requests: Some(1_000_000),
            per: None,
            lock: None,
        });
    }
    let router = RouterTransport::new(sim.router());
    let store = Arc::new(OnceLock::new());
    let transport: Arc<dyn Transport> = if fast {
        Arc::new(router)
    } else {
        Arc::new(Paced {
            inner: router,
            store: store.clone(),
            answered: Mutex::new((None, 0)),
        })
    };
    let app = App::open_with(s, clock, transport).await.unwrap();
    let _ = store.set(app.store.clone());
    Side {
        sim,
        app,
        _dir: dir,
    }
}

/// The `pages` of every "pages written" event, in order.
fn batches(logs: &Logs) -> Vec<u64> {
    logs.text()
        .lines()
        .filter(|l| l.contains("pages written") || l.contains("page written"))
        .map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("pages="))
                .map_or(1, |n| n.parse().unwrap())
        })
        .collect()
}

async fn full_pull(side: &Side, logs: &Logs) -> (PullReport, Vec<u64>) {
    let before = batches(logs).len();
    let report = pull(&side.app, PullKind::Full, &CancellationToken::new())
        .await
        .unwrap();
    assert!(report.ok(), "{report:?}");
    (report, batches(logs)[before..].to_vec())
}

/// The mirror's users, their state and their history, without the times
/// (the two sides' clocks need not agree to the millisecond).
async fn rows(side: &Side) -> Vec<String> {
    let store = &side.app.store;
    let _hold = store.hold();
    let mut out = Vec::new();
    for sql in [
        "SELECT id, email_id, display_name, status, department_name, work_location, raw_json
         FROM user_rows ORDER BY id",
        "SELECT id, content_hash, CASE WHEN removed_at IS NULL THEN 'present' ELSE 'removed' END
         FROM user_state ORDER BY id",
        "SELECT user_id, field, old_value, new_value, source FROM user_changes ORDER BY rowid",
        // Which of them the run's team fetches took first depends on when
        // each was queued; how many were queued does not.
        "SELECT CAST(count(*) AS TEXT) FROM teams_queue",
    ] {
        for row in sqlx::query(sql).fetch_all(store.pool()).await.unwrap() {
            let cols: Vec<String> = (0..row.len())
                .map(|i| format!("{:?}", row.try_get::<Option<String>, _>(i).ok().flatten()))
                .collect();
            out.push(cols.join("|"));
        }
    }
    out
}

/// The same edits on both sides, between pulls.
fn edit(side: &Side) {
    let users = side.sim.users();
    for (i, u) in users.iter().step_by(97).enumerate() {
        let id = u["id"].as_str().unwrap();
        let place = format!("Room {i}");
        assert!(side.sim.mutate_user(id, json!({"work_location": place})));
    }
}

#[tokio::test(start_paused = true)]
async fn pages_ready_ahead_of_the_writer_are_written_together_with_the_same_rows() {
    let logs = Logs::default();
    let _guard = logs.capture("cliq_sync::sync::pull=debug");
    let (fast, slow) = (side(true).await, side(false).await);
    let pages = USERS.div_ceil(PAGE_SIZE as usize) as u64;
    for round in 0..2 {
        let (f, f_batches) = full_pull(&fast, &logs).await;
        let (s, s_batches) = full_pull(&slow, &logs).await;
        // Page counts, progress and figures are the listing's, batched or not.
        assert_eq!((f.pages, s.pages), (pages, pages));
        assert_eq!(f_batches.iter().sum::<u64>(), pages);
        assert_eq!(s_batches.iter().sum::<u64>(), pages);
        assert_eq!(
            (f.users_seen, f.added, f.changed, f.removed),
            (s.users_seen, s.added, s.changed, s.removed)
        );
        assert!(
            (f_batches.len() as u64) < pages,
            "round {round}: {pages} pages fetched ahead of the writer took {} transactions",
            f_batches.len()
        );
        // A listing paced by the quota: each page written as it arrives.
        assert_eq!(s_batches, vec![1; pages as usize], "round {round}");
        assert_eq!(rows(&fast).await, rows(&slow).await, "round {round}");
        edit(&fast);
        edit(&slow);
    }
}
