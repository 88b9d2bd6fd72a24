//! `cliq-sync demo`: the whole loop against a loopback simulator, over real
//! HTTP and in real (scaled) time, in-process and as the real binary.

use std::collections::BTreeSet;

use cliq_sync::cliq::Endpoint;
use cliq_sync::demo::{run_in, DemoOptions, Output};

const HEADINGS: [&str; 9] = [
    "cliq-sync demo: what happened",
    "Users mirrored",
    "Plan from",
    "Held plan and approval",
    "Pushes",
    "Changes found",
    "Undo",
    "Requests per endpoint",
    "Wall time",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_mirrors_plans_pushes_and_finds_the_edits_without_a_throttle() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let users = 400;
    let r = run_in(
        &dir,
        DemoOptions {
            users,
            output: Output::Quiet,
            ..DemoOptions::default()
        },
    )
    .await
    .unwrap();

    // Mirrored: the whole org, then the two new hires the push added.
    assert_eq!(r.full_pull.users_seen, users as u64);
    assert_eq!(r.full_pull.added, users as u64);
    assert_eq!(r.push.adds_applied, 2, "{:?}", r.push);
    assert_eq!(
        r.users_mirrored(),
        users as i64 + 2,
        "{:?}",
        r.users_by_status
    );
    assert!(dir.join("mirror.db").exists());
    assert!(dir.join("hr.csv").exists());

    // The push applied exactly the plan.
    assert!(r.push.updates_applied > 0);
    assert_eq!(r.push.updates_applied, r.plan.updates as u64);
    assert_eq!(r.push.adds_applied, r.plan.adds as u64);
    assert_eq!(r.push.failed, 0, "{:?}", r.push.failures);
    assert_eq!(r.push.status, "ok");

    // The incremental pull found every tracked edit, and not the untracked one.
    let tracked: BTreeSet<String> = r
        .mutations
        .iter()
        .filter(|m| m.tracked)
        .map(|m| m.user_id.clone())
        .collect();
    let untracked: Vec<String> = r
        .mutations
        .iter()
        .filter(|m| !m.tracked)
        .map(|m| m.user_id.clone())
        .collect();
    assert_eq!(tracked.len(), 5);
    assert_eq!(untracked.len(), 1);
    let inc = r.incremental_changed_ids();
    assert!(tracked.is_subset(&inc), "{tracked:?} not all in {inc:?}");
    assert_eq!(r.incremental.changed, tracked.len() as u64);
    assert!(!inc.contains(&untracked[0]));
    for m in r.mutations.iter().filter(|m| m.tracked) {
        assert!(
            r.incremental_changes
                .iter()
                .any(|c| c.user_id == m.user_id && c.new_value.as_deref() == Some(m.to.as_str())),
            "the incremental pull did not record {m:?}"
        );
    }
    // The full pull saw it, and the new hires.
    let fin = r.final_changed_ids();
    assert!(fin.contains(&untracked[0]), "{fin:?}");
    assert_eq!(r.final_full.added, 2);
    assert_eq!(r.final_full.changed, 1);
    // The edits to HR-managed people are drift the next push would undo.
    let in_hr = r.mutations.iter().filter(|m| m.tracked && m.in_hr).count();
    assert_eq!(r.drift.updates, in_hr);
    assert_eq!(r.drift.adds, 0);

    // Within every quota: nothing throttled, no window over its quota.
    assert_eq!(r.throttled_total(), 0, "{:?}", r.endpoints);
    assert_eq!(r.locks_imposed, 0);
    for e in &r.endpoints {
        if let Some(most) = e.max_in_window {
            assert!(most <= e.quota, "{e:?}");
        }
    }
    let used = |ep: Endpoint| {
        r.endpoints
            .iter()
            .find(|e| e.endpoint == ep)
            .unwrap()
            .requests
    };
    assert_eq!(
        used(Endpoint::UpdateUser),
        r.push.updates_applied + r.undo.report.updates_applied
    );
    assert_eq!(used(Endpoint::AddUsers), 1);
    assert_eq!(r.tokens_minted, 1);

    assert_held_approved_pushed(&r);
    assert_undone(&r);

    let text = r.to_text();
    for h in HEADINGS {
        assert!(text.contains(h), "no {h:?} in\n{text}");
    }
    assert!(
        text.contains("scaled ×0.05: 30 listing requests per 3 s"),
        "{text}"
    );
    assert!(text.contains("sqlite3 "), "{text}");
}

/// The first push trips `max_changes_per_run`: held (nothing sent), listed
/// as `cliq-sync approve` lists it, approved (nothing sent), then pushed.
fn assert_held_approved_pushed(r: &cliq_sync::demo::DemoReport) {
    let h = &r.held;
    assert!(
        (h.threshold as usize) < r.plan.changes,
        "{} vs {}",
        h.threshold,
        r.plan.changes
    );
    assert!(h.plan_id.starts_with('H'), "{h:?}");
    assert_eq!(h.listed.len(), 1, "{h:?}");
    assert_eq!(h.listed[0].id, h.plan_id);
    assert_eq!(h.listed[0].kind, "push");
    assert_eq!(h.listed[0].changes, r.plan.changes as u64);
    assert!(h.listed[0].reason.contains("max_changes_per_run"), "{h:?}");
    assert_eq!(h.held_requests.total, 0, "held: nothing sent");
    assert_eq!(h.approve_requests.total, 0, "approve: nothing sent");
    assert!(h.approved.as_ref().is_some_and(|e| e.approved), "{h:?}");
    // The push after the approval sent the plan: one PUT per update, one
    // POST for the new hires.
    assert_eq!(h.push_requests.puts, r.push.updates_applied);
    assert_eq!(h.push_requests.posts, 1);
    assert!(r.push.updates_applied > 0);
}

/// `undo` of that push: the inverse pushed (one PUT per undone person),
/// the adds and the fields edited since refused, the value back in Cliq.
fn assert_undone(r: &cliq_sync::demo::DemoReport) {
    let u = &r.undo;
    assert_eq!(u.report.status, "ok", "{:?}", u.report);
    assert_eq!(u.report.undoes_run, r.push.run_id);
    assert!(u.report.updates_applied > 0, "{:?}", u.report);
    assert_eq!(u.requests.puts, u.report.updates_applied);
    assert_eq!(u.requests.posts, 0);
    assert!(
        u.report
            .refused
            .iter()
            .filter(|f| f.code == "cannot_undo")
            .count()
            == 2,
        "the two adds: {:?}",
        u.report.refused
    );
    let ex = u.example.as_ref().expect("an undone field to show");
    assert_ne!(ex.pushed, ex.before, "{ex:?}");
    assert_eq!(ex.after_undo, ex.before, "{ex:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_starts_afresh() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let opts = DemoOptions {
        users: 150,
        output: Output::Quiet,
        ..DemoOptions::default()
    };
    let first = run_in(&dir, opts.clone()).await.unwrap();
    let second = run_in(&dir, opts).await.unwrap();
    assert_eq!(second.full_pull.added, first.full_pull.added);
    assert_eq!(second.push.updates_applied, first.push.updates_applied);
    assert_eq!(second.full_pull.run_id, 1, "a fresh mirror");
}

#[test]
fn the_binary_runs_the_demo_in_the_working_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cliq-sync"))
        .arg("demo")
        .current_dir(tmp.path())
        .env_remove("RUST_LOG")
        // A proxy must not matter: the simulator is on loopback.
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("http_proxy", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(tmp.path().join("demo/mirror.db").exists());
    assert!(tmp.path().join("demo/hr.csv").exists());
    for h in HEADINGS {
        assert!(stdout.contains(h), "no {h:?} in\n{stdout}");
    }
    assert!(stdout.contains("sqlite3 demo/mirror.db"), "{stdout}");
    assert!(stdout.contains("[10/10]"), "{stdout}");
    // Not a terminal: plain lines, no cursor control.
    assert!(!stdout.contains('\r'), "{stdout:?}");
    assert!(
        stderr.trim().is_empty(),
        "quiet logs expected, got:\n{stderr}"
    );
    eprintln!("demo binary took {:.1?}", started.elapsed());
}

#[test]
fn the_scheduler_gets_the_simulators_scaled_quotas() {
    use std::time::Duration;
    let limits = cliq_sync::demo::scaled_limits(0.05).to_limits().unwrap();
    for ep in Endpoint::ALL {
        let d = ep.documented_quota();
        let q = limits.get(ep);
        assert_eq!(q.requests, d.requests, "{ep}");
        assert_eq!(q.per, d.per.mul_f64(0.05), "{ep}");
        assert_eq!(q.lock, d.lock.mul_f64(0.05), "{ep}");
    }
    assert_eq!(limits.get(Endpoint::ListUsers).per, Duration::from_secs(3));
    assert_eq!(limits.margin, Duration::from_millis(100));
}
