//! Point 10: the source-drop baseline does not creep down push after push:
//! it is the largest source pushed in the last 7 days, or the last forced
//! (approved) one.

use std::time::Duration;

use cliq_sync::sync::push::PushError;

use super::{app, opts, run_push, s, write_hr};

const DAY: Duration = Duration::from_secs(86_400);

#[tokio::test(start_paused = true)]
async fn a_slow_shrink_of_the_source_is_stopped() {
    let t = app(100).await;
    let dir = tempfile::tempdir().unwrap();
    let users = t.sim.users();
    let source = async |n: usize| {
        let mut csv = String::from("email_id\n");
        for u in users.iter().take(n) {
            csv.push_str(&format!("{}\n", s(u, "email_id")));
        }
        write_hr(dir.path(), &format!("hr{n}.csv"), &csv).await
    };
    // Daily pushes, each source 15% smaller than the one before: every
    // step passes a 20% check against the previous push.
    let mut stopped = Vec::new();
    for n in [100, 85, 73, 62, 53] {
        match run_push(&t, &source(n).await, &opts()).await {
            Ok(out) => assert!(out.report.ok(), "{:?}", out.report),
            Err(PushError::Safety(m)) => stopped.push((n, m.reason)),
            Err(e) => panic!("{e}"),
        }
        tokio::time::advance(DAY).await;
    }
    let at: Vec<usize> = stopped.iter().map(|(n, _)| *n).collect();
    eprintln!("slow shrink 100 → 85 → 73 → 62 → 53: stopped at {at:?}");
    // 73 is 27% below the 7-day largest (100): stopped, and so is every
    // later, smaller source.
    assert_eq!(at, vec![73, 62, 53], "{stopped:?}");
    assert!(stopped[0].1.contains("100"), "{}", stopped[0].1);

    // An operator approves 73 (--force): the baseline is 73 from then on.
    let mut forced = opts();
    forced.force = true;
    run_push(&t, &source(73).await, &forced).await.unwrap();
    tokio::time::advance(DAY).await;
    run_push(&t, &source(62).await, &opts()).await.unwrap();
    tokio::time::advance(DAY).await;
    let e = run_push(&t, &source(53).await, &opts()).await.unwrap_err();
    assert!(matches!(e, PushError::Safety(_)), "{e}");
    // Older than 7 days the largest size no longer counts: 8 days later the
    // baseline is 62 (the only push inside the window), and 53 passes.
    tokio::time::advance(DAY * 7).await;
    run_push(&t, &source(62).await, &opts()).await.unwrap();
    tokio::time::advance(DAY).await;
    run_push(&t, &source(53).await, &opts()).await.unwrap();
}
