//! One run vocabulary: a run's kind and status are spelled the same way
//! (`full`, `incremental`, `push`; `ok`, `failed`, …) in `sync_runs`, in
//! `status --json`, in a pull's JSON and human line, in log fields and in
//! the `cliq_sync_runs_total` labels — never the Debug `Full`.

use std::time::Duration;

use cliq_sync::sync::{pull, PullKind};
use tokio_util::sync::CancellationToken;

use crate::daemon::start;
use crate::helpers::{spawn_app, Logs, Opts};

const KINDS: [&str; 3] = ["full", "incremental", "push"];
const STATUSES: [&str; 5] = ["running", "ok", "failed", "stopped", "held"];

/// Every `key=value` / `key="value"` field named `key` in the log text.
fn log_fields<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    let needle = format!(" {key}=");
    text.match_indices(&needle)
        .map(|(i, _)| {
            let rest = &text[i + needle.len()..];
            let end = rest.find([' ', '\n']).unwrap_or(rest.len());
            rest[..end].trim_matches('"')
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_run_kind_and_status_are_spelled_alike_in_db_json_text_logs_and_metrics() {
    let logs = Logs::default();
    let _guard = logs.capture("info");
    let t = spawn_app(Opts::default()).await;
    let cancel = CancellationToken::new();
    let report = pull(&t.app, PullKind::Full, &cancel).await.unwrap();

    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        (json["kind"].as_str(), json["status"].as_str()),
        (Some("full"), Some("ok"))
    );
    let line = cliq_sync::cli::report_line(&report);
    assert!(line.starts_with("full pull #"), "{line}");

    let d = start(&t);
    tokio::time::sleep(Duration::from_secs(120)).await;
    let (_, metrics) = crate::daemon::get(&t, &d.state, "/metrics").await;
    d.shutdown.cancel();
    d.task.await.unwrap();

    let rows = crate::daemon::runs(&t).await;
    assert!(rows.len() >= 2, "{rows:?}");
    let status = cliq_sync::status::collect(&t.app.store, &t.app.settings, t.clock.now())
        .await
        .unwrap();
    let status = serde_json::to_value(&status).unwrap();
    let json_runs: Vec<(String, String)> = status["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().into(),
                r["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    for (kind, st, _, _) in &rows {
        assert!(
            KINDS.contains(&kind.as_str()) && STATUSES.contains(&st.as_str()),
            "{kind} {st}"
        );
        assert!(
            json_runs.contains(&(kind.clone(), st.clone())),
            "{json_runs:?}"
        );
    }
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("cliq_sync_runs_total{"))
    {
        let kind = line
            .split("kind=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let st = line
            .split("status=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(KINDS.contains(&kind) && STATUSES.contains(&st), "{line}");
    }
    // The daemon's own pull (kind "incremental" or "full") is counted
    // under the word the database has.
    let (kind, st, _, _) = rows.last().unwrap();
    let counted = format!("cliq_sync_runs_total{{kind=\"{kind}\",status=\"{st}\"}} 1");
    assert!(metrics.contains(&counted), "{counted} missing:\n{metrics}");

    let text = logs.text();
    let kinds = log_fields(&text, "kind");
    assert!(!kinds.is_empty(), "no kind= field logged:\n{text}");
    for k in kinds {
        assert!(KINDS.contains(&k), "log field kind={k}:\n{text}");
    }
    for s in log_fields(&text, "status") {
        assert!(STATUSES.contains(&s), "log field status={s}:\n{text}");
    }
}
