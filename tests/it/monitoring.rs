//! The installable monitoring (`deploy/monitoring/`) against the metrics the
//! daemon really exports: every series the Grafana dashboard and the alert
//! rules query must exist, the PrometheusRule must carry the same alerts as
//! `alerts.yml`, and every alert has its annotations and a promtool test.
//! Plus the exposition itself: build info, process metrics, headroom under a
//! lock, and the Prometheus text format when a scraper asks for it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cliq_sync::cliq::Endpoint;
use cliq_sync::daemon::DaemonState;
use cliq_sync::server::{router, ServerState};
use cliq_sync::sync::{pull, PullKind};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::helpers::{spawn_app, Opts, TestApp};

/// What Prometheus sends by default (it prefers OpenMetrics).
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0;q=0.5,\
    application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

fn monitoring_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/monitoring")
}

fn read(rel: &str) -> String {
    let path = monitoring_dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(rel: &str) -> serde_json::Value {
    serde_norway::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// GET /metrics with an optional Accept header: (content type, body).
pub(crate) async fn scrape(t: &TestApp, accept: Option<&str>) -> (String, String) {
    // As after a run of each kind: the daemon then exports their durations;
    // and after a look at its HR file (`cliq_sync_hr_source_valid`).
    let daemon = DaemonState::default();
    *daemon.last_duration.lock().unwrap() = [Some(60.0), Some(2.0), Some(5.0)];
    daemon
        .hr_source_valid
        .store(1, std::sync::atomic::Ordering::Relaxed);
    let app = router(Arc::new(ServerState {
        app: t.app.clone(),
        daemon: Arc::new(daemon),
        max_pull_failures: 3,
    }));
    let mut req = http::Request::get("/metrics");
    if let Some(a) = accept {
        req = req.header(http::header::ACCEPT, a);
    }
    let resp = app
        .oneshot(req.body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ctype = resp.headers()[http::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    (ctype, String::from_utf8(body.to_vec()).unwrap())
}

/// Every sample name a query may use, from the exposition's TYPE lines and
/// samples (a counter family `x` is queried as `x_total`, a histogram as
/// `x_bucket`, `x_sum`, `x_count`).
fn exported_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            let base = name.strip_suffix("_total").unwrap_or(name);
            match kind {
                "counter" => names.extend([format!("{base}_total")]),
                "histogram" => {
                    names.extend(["_bucket", "_sum", "_count"].map(|s| format!("{base}{s}")))
                }
                "info" => names.extend([format!("{base}_info")]),
                _ => names.extend([base.to_owned()]),
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

/// `cliq_sync_*` and `process_*` identifiers in a PromQL expression.
fn metric_identifiers(expr: &str, out: &mut BTreeSet<String>) {
    let bytes = expr.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    for prefix in ["cliq_sync_", "process_"] {
        let mut from = 0;
        while let Some(i) = expr[from..].find(prefix).map(|i| i + from) {
            let end = expr[i..]
                .bytes()
                .position(|b| !ident(b))
                .map_or(expr.len(), |n| i + n);
            if i == 0 || !ident(bytes[i - 1]) {
                out.insert(expr[i..end].to_owned());
            }
            from = end;
        }
    }
}

/// Every string in a JSON document (queries, template variables, …).
fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(o) => o.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

fn alert_rules() -> Vec<serde_json::Value> {
    let doc = yaml("alerts.yml");
    doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .collect()
}

/// The series of a daemon that has pulled once (a family without samples,
/// e.g. requests before the first request, is not in the exposition).
async fn exported() -> BTreeSet<String> {
    let t = spawn_app(Opts::default()).await;
    let report = pull(&t.app, PullKind::Full, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.status.as_str(), "ok");
    let (_, text) = scrape(&t, None).await;
    exported_names(&text)
}

#[tokio::test(start_paused = true)]
async fn every_metric_the_dashboard_queries_is_exported() {
    let exported = exported().await;
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("grafana-dashboard.json")).unwrap();
    let mut all = Vec::new();
    strings(&dashboard, &mut all);
    let mut used = BTreeSet::new();
    all.iter().for_each(|s| metric_identifiers(s, &mut used));
    assert!(used.len() >= 15, "the dashboard queries only {used:?}");
    let missing: Vec<_> = used.difference(&exported).collect();
    assert!(missing.is_empty(), "the dashboard queries metrics the daemon does not export: {missing:?}\nexported: {exported:?}");
}

#[tokio::test(start_paused = true)]
async fn every_metric_the_alerts_use_is_exported() {
    let exported = exported().await;
    let mut used = BTreeSet::new();
    for rule in alert_rules() {
        metric_identifiers(rule["expr"].as_str().unwrap(), &mut used);
    }
    let missing: Vec<_> = used.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "the alert rules use metrics the daemon does not export: {missing:?}\nexported: {exported:?}"
    );
}

#[test]
fn the_prometheus_rule_carries_exactly_the_alerts_of_alerts_yml() {
    let rule = yaml("kubernetes/prometheusrule.yaml");
    assert_eq!(rule["kind"], "PrometheusRule");
    assert_eq!(
        rule["spec"]["groups"],
        yaml("alerts.yml")["groups"],
        "kubernetes/prometheusrule.yaml spec.groups differ from alerts.yml: copy them over"
    );
    let component = yaml("kubernetes/kustomization.yaml");
    assert_eq!(component["kind"], "Component");
    let resources = component["resources"].as_array().unwrap();
    for file in ["servicemonitor.yaml", "prometheusrule.yaml"] {
        assert!(
            resources.iter().any(|r| r == file),
            "{file} not in the component"
        );
    }
}

#[test]
fn every_alert_has_severity_summary_runbook_and_a_firing_promtool_test() {
    let tests = yaml("alerts.test.yml");
    assert_eq!(tests["rule_files"][0], "alerts.yml");
    let mut tested = BTreeSet::new();
    for t in tests["tests"].as_array().unwrap() {
        for case in t["alert_rule_test"].as_array().unwrap() {
            let fires = case["exp_alerts"].as_array().is_some_and(|a| !a.is_empty());
            if fires {
                tested.insert(case["alertname"].as_str().unwrap().to_owned());
            }
        }
    }
    let runbook = read("runbook.md").to_lowercase();
    let rules = alert_rules();
    assert!(rules.len() >= 10, "{} alerts", rules.len());
    for rule in &rules {
        let name = rule["alert"].as_str().unwrap();
        let sev = rule["labels"]["severity"].as_str().unwrap_or("");
        assert!(
            ["critical", "warning", "info"].contains(&sev),
            "{name}: severity {sev:?}"
        );
        for key in ["summary", "description", "runbook_url"] {
            assert!(
                rule["annotations"][key].is_string(),
                "{name}: no {key} annotation"
            );
        }
        let url = rule["annotations"]["runbook_url"].as_str().unwrap();
        let anchor = name.to_lowercase();
        assert!(
            url.ends_with(&format!("runbook.md#{anchor}")),
            "{name}: runbook_url {url}"
        );
        assert!(
            runbook.contains(&format!("## {anchor}\n")),
            "runbook.md has no section {name}"
        );
        assert!(
            tested.contains(name),
            "{name} has no promtool test in which it fires"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn build_info_and_process_metrics_are_exported() {
    let t = spawn_app(Opts::default()).await;
    let (_, text) = scrape(&t, None).await;
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        text.contains(&format!(
            "cliq_sync_build_info{{version=\"{version}\"}} 1\n"
        )),
        "no build info:\n{text}"
    );
    if cfg!(target_os = "linux") {
        let value = |name: &str| -> f64 {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{name} missing:\n{text}"));
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        assert!(value("process_resident_memory_bytes") > 1e6);
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_max_fds") >= value("process_open_fds"));
        assert!(value("process_cpu_seconds_total") > 0.0);
        let started = value("process_start_time_seconds");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            started > now - 86400.0 && started <= now + 1.0,
            "start {started}, now {now}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn quota_headroom_reads_zero_while_an_endpoint_is_locked() {
    let t = spawn_app(Opts::default()).await;
    t.app
        .scheduler
        .report_throttled(Endpoint::ListUsers, None, "test")
        .await
        .unwrap();
    let (_, text) = scrape(&t, None).await;
    assert!(
        text.contains("cliq_sync_endpoint_locked{endpoint=\"list_users\"} 1"),
        "{text}"
    );
    let headroom = |ep: &str| {
        let prefix = format!("cliq_sync_quota_headroom{{endpoint=\"{ep}\"}} ");
        let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap();
        line[prefix.len()..].to_owned()
    };
    assert_eq!(
        headroom("list_users"),
        "0",
        "a locked endpoint allows no request start"
    );
    assert_eq!(
        headroom("get_user"),
        "20",
        "an unlocked endpoint keeps its quota"
    );
}

#[tokio::test(start_paused = true)]
async fn metrics_answer_in_prometheus_text_format_when_asked_and_openmetrics_otherwise() {
    let t = spawn_app(Opts::default()).await;
    let (ctype, om) = scrape(&t, Some(PROMETHEUS_ACCEPT)).await;
    assert!(
        ctype.starts_with("application/openmetrics-text; version=1.0.0"),
        "{ctype}"
    );
    assert!(om.ends_with("# EOF\n"));

    let (ctype, text) = scrape(&t, Some("text/plain;version=0.0.4;q=1,*/*;q=0.1")).await;
    assert_eq!(ctype, "text/plain; version=0.0.4; charset=utf-8");
    assert!(
        !text.contains("# EOF") && !text.contains("# UNIT"),
        "{text}"
    );
    // In the text format a counter's TYPE line names its samples (`x_total`).
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut parts = line[7..].split_whitespace();
        let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
        assert!(
            ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
            "{line}"
        );
        if kind == "counter" {
            assert!(name.ends_with("_total"), "{line}");
        }
        let samples = text.lines().filter(|l| !l.starts_with('#'));
        assert!(
            samples
                .clone()
                .all(|l| !l.starts_with(&format!("{name}_total"))),
            "{name}: samples named {name}_total under TYPE {name}"
        );
    }
    assert_eq!(
        exported_names(&text),
        exported_names(&om),
        "the two formats carry different series"
    );
    promtool_check_metrics(&text);
}

/// `promtool check metrics` (Prometheus's own parser and linter) when it is
/// installed; the structural checks above run regardless.
fn promtool_check_metrics(text: &str) {
    use std::io::Write;
    let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool not installed: skipping `promtool check metrics`");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
