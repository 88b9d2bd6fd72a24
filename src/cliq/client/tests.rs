//! Client tests against tiny scripted axum routers (through `RouterTransport`,
//! so tokio's paused clock drives every backoff, timeout and lock).

use std::sync::atomic::AtomicUsize;

use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::{StreamExt, TryStreamExt};
use serde_json::json;

use std::sync::atomic::Ordering;
use std::sync::Mutex;

use secrecy::SecretString;
use serde_json::Value;
use tokio::time::Instant;

use super::users::encode_segment;
use super::*;
use crate::cliq::auth::tests::{cfg as auth_cfg, token_router};
use crate::cliq::auth::AuthConfig;
use crate::cliq::gate::RecordingGate;
use crate::cliq::models::UserField;
use crate::cliq::models::{BatchResult, Fields, ListUsersParams, UserFields};
use crate::cliq::transport::RouterTransport;

/// What the fake API saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    auth: String,
    accept: String,
    content_type: String,
    body: String,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
    fn query_has(&self, pair: &str) -> bool {
        self.query.split('&').any(|p| p == pair)
    }
}

/// A scripted answer.
struct Reply {
    status: u16,
    body: String,
    headers: Vec<(&'static str, String)>,
    delay: Duration,
}

fn reply(status: u16, body: impl Into<String>) -> Reply {
    Reply {
        status,
        body: body.into(),
        headers: Vec::new(),
        delay: Duration::ZERO,
    }
}

fn ok(body: Value) -> Reply {
    reply(200, body.to_string())
}

impl Reply {
    fn header(mut self, k: &'static str, v: &str) -> Self {
        self.headers.push((k, v.to_string()));
        self
    }
    fn delayed(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

type Script = Arc<dyn Fn(usize, &Seen) -> Reply + Send + Sync>;

struct Harness {
    client: CliqClient,
    gate: Arc<RecordingGate>,
    seen: Arc<Mutex<Vec<Seen>>>,
    token_calls: Arc<AtomicUsize>,
}

impl Harness {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    fn api_calls(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

const TOKEN_OK: &str = r#"{"access_token":"1000.access-{n}","expires_in":3600}"#;

fn harness_with(
    gate: RecordingGate,
    tweak: impl FnOnce(&mut ClientConfig),
    script: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static,
) -> Harness {
    let script: Script = Arc::new(script);
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let token_calls: Arc<AtomicUsize> = Arc::default();
    let seen2 = seen.clone();
    let router: Router = token_router(vec![TOKEN_OK], token_calls.clone()).fallback(
        move |req: axum::extract::Request| {
            let script = script.clone();
            let seen = seen2.clone();
            async move {
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                let h = |k: http::HeaderName| {
                    parts
                        .headers
                        .get(k)
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_default()
                };
                let s = Seen {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_string(),
                    query: parts.uri.query().unwrap_or_default().to_string(),
                    auth: h(http::header::AUTHORIZATION),
                    accept: h(http::header::ACCEPT),
                    content_type: h(http::header::CONTENT_TYPE),
                    body: String::from_utf8(body.to_vec()).unwrap(),
                };
                let n = {
                    let mut g = seen.lock().unwrap();
                    g.push(s.clone());
                    g.len() - 1
                };
                let r = script(n, &s);
                if !r.delay.is_zero() {
                    tokio::time::sleep(r.delay).await;
                }
                let mut resp: Response = (
                    http::StatusCode::from_u16(r.status).unwrap(),
                    [(http::header::CONTENT_TYPE, "application/json")],
                    r.body,
                )
                    .into_response();
                for (k, v) in r.headers {
                    resp.headers_mut().insert(k, v.parse().unwrap());
                }
                resp
            }
        },
    );
    let transport: Arc<dyn Transport> = Arc::new(RouterTransport::new(router));
    let gate = Arc::new(gate);
    let auth = Arc::new(TokenManager::with_gate(
        auth_cfg("http://cliq.test"),
        transport.clone(),
        gate.clone(),
    ));
    let mut cfg = ClientConfig::new("http://cliq.test");
    tweak(&mut cfg);
    let client = CliqClient::with_gate(cfg, transport, auth, gate.clone());
    Harness {
        client,
        gate,
        seen,
        token_calls,
    }
}

fn harness(script: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static) -> Harness {
    harness_with(RecordingGate::default(), |_| {}, script)
}

fn user_json(id: &str) -> Value {
    json!({"id": id, "email_id": format!("u{id}@x.com"), "display_name": format!("User {id}")})
}

#[test]
fn client_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let h = {
        // Building a harness needs a runtime only for sleeping; none here.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async { harness(|_, _| ok(json!({}))) })
    };
    let f = h.client.get_user("1", None);
    assert_send(&f);
    let fields = UserFields::new();
    let f2 = h.client.update_user("1", "a@x", &fields);
    assert_send(&f2);
    let s = h.client.list_users(ListUsersParams::default());
    assert_send(&s);
}

#[test]
fn api_root_and_segments() {
    assert_eq!(
        ClientConfig::new("https://cliq.zoho.eu/").api_root(),
        "https://cliq.zoho.eu/api/v2"
    );
    assert_eq!(
        ClientConfig::new("http://127.0.0.1:8080/api/v2").api_root(),
        "http://127.0.0.1:8080/api/v2"
    );
    assert_eq!(ClientConfig::default().api_base, "https://cliq.zoho.com");
    assert_eq!(encode_segment("a b/c@x.com"), "a%20b%2Fc@x.com");
}

#[tokio::test(start_paused = true)]
async fn get_user_sends_headers_and_parses() {
    let h = harness(|_, _| {
        ok(json!({"data": {"id": 631830849u64, "email_id": "s@x.com", "nick": "S"}}))
    });
    let u = h
        .client
        .get_user("631830849", Some(&Fields::All))
        .await
        .unwrap();
    assert_eq!(u.id.as_deref(), Some("631830849"));
    assert_eq!(u.raw["nick"], json!("S"));
    let s = &h.seen()[0];
    assert_eq!(s.method, "GET");
    assert_eq!(s.path, "/api/v2/users/631830849");
    assert_eq!(s.query, "fields=all");
    assert_eq!(s.auth, "Zoho-oauthtoken 1000.access-1");
    assert_eq!(s.accept, "application/json");
    assert_eq!(h.gate.acquired(Endpoint::GetUser), 1);
    assert_eq!(h.gate.acquired(Endpoint::OauthToken), 1);
    let st = h.client.stats();
    assert_eq!(st.count(Endpoint::GetUser, "200"), 1);
    assert_eq!(st.total_requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_to_success() {
    let h = harness(|n, _| {
        if n < 2 {
            reply(500, r#"{"message":"internal"}"#)
        } else {
            ok(json!({"data": user_json("7")}))
        }
    });
    let start = Instant::now();
    let u = h.client.get_user("7", None).await.unwrap();
    assert_eq!(u.email_id.as_deref(), Some("u7@x.com"));
    assert_eq!(h.api_calls(), 3);
    // Every attempt passed the scheduler first.
    assert_eq!(h.gate.acquired(Endpoint::GetUser), 3);
    // Backoff: ≥ 500 ms then ≥ 1 s (jitter only adds).
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
    let st = h.client.stats();
    assert_eq!(st.count(Endpoint::GetUser, "500"), 2);
    assert_eq!(st.retries.get(&Endpoint::GetUser), Some(&2));
    assert_eq!(h.token_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn transient_retries_are_bounded() {
    let h = harness_with(
        RecordingGate::default(),
        |c| c.max_transient_retries = 2,
        |_, _| reply(503, "<html>unavailable</html>"),
    );
    let e = h.client.get_user("7", None).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert!(e.to_string().contains("503"), "{e}");
    assert_eq!(h.api_calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn retry_after_on_a_transient_answer_is_honoured() {
    let h = harness(|n, _| {
        if n == 0 {
            reply(503, "{}").header("retry-after", "20")
        } else {
            ok(json!({"data": user_json("1")}))
        }
    });
    let start = Instant::now();
    h.client.get_user("1", None).await.unwrap();
    assert!(start.elapsed() >= Duration::from_secs(20));
}

#[tokio::test(start_paused = true)]
async fn timeouts_and_truncated_bodies_are_transient() {
    let h = harness_with(
        RecordingGate::default(),
        |c| c.request_timeout = Duration::from_secs(30),
        |n, _| match n {
            0 => ok(json!({"data": user_json("1")})).delayed(Duration::from_secs(60)),
            1 => reply(200, r#"{"data": {"id": "1", "email_"#),
            _ => ok(json!({"data": user_json("1")})),
        },
    );
    let u = h.client.get_user("1", None).await.unwrap();
    assert_eq!(u.id.as_deref(), Some("1"));
    assert_eq!(h.api_calls(), 3);
    let st = h.client.stats();
    assert_eq!(st.count(Endpoint::GetUser, "timeout"), 1);
    assert_eq!(st.count(Endpoint::GetUser, "200"), 2);
}

#[tokio::test(start_paused = true)]
async fn permanent_400_is_not_retried() {
    let h = harness(|_, _| {
        reply(
            400,
            r#"{"code":"extra_param_found","message":"'x' is an extra param"}"#,
        )
    });
    let e = h
        .client
        .list_users_page(&ListUsersParams::default(), None)
        .await
        .unwrap_err();
    match e {
        CliqError::Permanent {
            endpoint,
            status,
            code,
            message,
        } => {
            assert_eq!(endpoint, Endpoint::ListUsers);
            assert_eq!(status, 400);
            assert_eq!(code.as_deref(), Some("extra_param_found"));
            assert!(message.contains("extra param"));
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(h.api_calls(), 1);
    assert_eq!(h.gate.acquired(Endpoint::ListUsers), 1);
    assert!(h.gate.throttled().is_empty());
}

#[tokio::test(start_paused = true)]
async fn throttle_400_is_reported_and_waited_out() {
    // The gate locks for 10 minutes on a report; the client tries again after.
    let h = harness_with(
        RecordingGate::with_lock(Duration::from_secs(600)),
        |_| {},
        |n, _| {
            if n == 0 {
                reply(
                    400,
                    r#"{"code":"request_limit_exceeded","message":"You have exceeded the URL throttle limits"}"#,
                )
            } else {
                ok(json!({"data": [user_json("1")]}))
            }
        },
    );
    let start = Instant::now();
    let page = h
        .client
        .list_users_page(&ListUsersParams::default(), None)
        .await
        .unwrap();
    assert_eq!(page.users.len(), 1);
    let th = h.gate.throttled();
    assert_eq!(th.len(), 1);
    assert_eq!(th[0].0, Endpoint::ListUsers);
    assert_eq!(th[0].1, None);
    assert!(th[0].2.contains("throttle limits"), "{}", th[0].2);
    // The second attempt went through acquire, after the lock.
    assert_eq!(h.gate.acquired(Endpoint::ListUsers), 2);
    assert!(start.elapsed() >= Duration::from_secs(600));
    assert_eq!(
        h.client.stats().throttled.get(&Endpoint::ListUsers),
        Some(&1)
    );
}

#[tokio::test(start_paused = true)]
async fn throttle_retries_are_bounded_and_honour_retry_after() {
    let h = harness_with(
        RecordingGate::default(),
        |c| c.max_throttle_retries = 2,
        |_, _| reply(429, r#"{"message":"slow down"}"#).header("retry-after", "120"),
    );
    let e = h.client.user_teams("1").await.unwrap_err();
    assert!(
        matches!(
            e,
            CliqError::Throttled {
                endpoint: Endpoint::UserTeams,
                status: 429,
                retry_after: Some(d)
            } if d == Duration::from_secs(120)
        ),
        "{e:?}"
    );
    assert!(e.is_throttled() && !e.is_transient());
    assert_eq!(h.api_calls(), 3);
    let th = h.gate.throttled();
    assert_eq!(th.len(), 3);
    assert!(th
        .iter()
        .all(|t| t.0 == Endpoint::UserTeams && t.1 == Some(Duration::from_secs(120))));
    // RecordingGate honours retry_after as a lock: each retry waited.
    assert_eq!(h.gate.acquired(Endpoint::UserTeams), 3);
}

#[tokio::test(start_paused = true)]
async fn unauthorized_refreshes_once_and_resends() {
    let h = harness(|_, s| {
        if s.auth.ends_with("access-1") {
            reply(
                401,
                r#"{"code":"oauthtoken_invalid","message":"Invalid OAuth token"}"#,
            )
        } else {
            ok(json!({"data": user_json("1")}))
        }
    });
    h.client.get_user("1", None).await.unwrap();
    assert_eq!(h.api_calls(), 2);
    assert_eq!(h.seen()[1].auth, "Zoho-oauthtoken 1000.access-2");
    assert_eq!(h.token_calls.load(Ordering::SeqCst), 2);
    // The re-send is a request start too.
    assert_eq!(h.gate.acquired(Endpoint::GetUser), 2);
    assert_eq!(
        h.client.stats().unauthorized.get(&Endpoint::GetUser),
        Some(&1)
    );
}

#[tokio::test(start_paused = true)]
async fn twenty_concurrent_401s_cause_one_refresh() {
    let h = harness(|_, s| {
        if s.auth.ends_with("access-1") {
            reply(401, r#"{"code":"oauthtoken_invalid","message":"expired"}"#)
        } else {
            ok(json!({"data": user_json("1")}))
        }
    });
    let results = futures::future::join_all((0..20).map(|i| {
        let c = h.client.clone();
        tokio::spawn(async move { c.get_user(&i.to_string(), None).await })
    }))
    .await;
    for r in results {
        r.unwrap().unwrap();
    }
    // One initial mint, one refresh after the 401s.
    assert_eq!(h.token_calls.load(Ordering::SeqCst), 2);
    assert_eq!(h.client.auth().refreshes(), 2);
    assert_eq!(h.api_calls(), 40);
}

#[tokio::test(start_paused = true)]
async fn still_unauthorized_after_refresh_is_an_error() {
    let h = harness(|_, _| reply(401, r#"{"code":"invalid_oauthscope","message":"scope"}"#));
    let e = h.client.get_user("1", None).await.unwrap_err();
    assert!(matches!(e, CliqError::Unauthorized { .. }), "{e:?}");
    assert!(e.to_string().contains("invalid_oauthscope"));
    assert_eq!(h.api_calls(), 2);
    assert_eq!(h.token_calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn quota_failure_is_returned_without_sending() {
    let gate = RecordingGate::default();
    gate.fail_acquire.store(true, Ordering::SeqCst);
    let h = harness_with(gate, |_| {}, |_, _| ok(json!({})));
    let e = h.client.get_user("1", None).await.unwrap_err();
    // The token is fetched first (its refresh asks the gate too), so the
    // refusal may surface from either request; nothing reaches the API.
    assert!(
        matches!(e, CliqError::Quota(_) | CliqError::Auth(_)),
        "{e:?}"
    );
    assert_eq!(h.api_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn update_wrapped_body() {
    let h = harness(|_, _| ok(json!({"data": {"success_users": ["a@x.com"], "failed_users": {}}})));
    let mut f = UserFields::new();
    f.department_id = Some("19".into());
    f.work_location = Some("B-2".into());
    let r = h.client.update_user("42", "a@x.com", &f).await.unwrap();
    assert!(r.is_success("a@x.com"));
    let s = &h.seen()[0];
    assert_eq!(s.method, "PUT");
    assert_eq!(s.path, "/api/v2/users/42");
    assert_eq!(s.content_type, "application/json");
    assert_eq!(
        s.json(),
        json!({"users": [{"email_id": "a@x.com", "department_id": "19", "work_location": "B-2"}]})
    );
}

#[tokio::test(start_paused = true)]
async fn update_flat_body_and_bare_success() {
    let h = harness_with(
        RecordingGate::default(),
        |c| c.update_body = UpdateBodyShape::Flat,
        |_, _| ok(json!({"data": user_json("42")})),
    );
    let f = UserFields::new().with("extension", "3129").unwrap();
    let r = h.client.update_user("42", "a@x.com", &f).await.unwrap();
    assert_eq!(r.success_users, vec!["a@x.com"]);
    assert_eq!(h.seen()[0].json(), json!({"extension": "3129"}));
    // Nothing to update: refused locally, nothing sent.
    let e = h
        .client
        .update_user("42", "a@x.com", &UserFields::new())
        .await
        .unwrap_err();
    assert!(matches!(e, CliqError::InvalidRequest { .. }));
    assert_eq!(h.api_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn update_technical_error_is_retried_then_names_the_reference() {
    let h = harness(|_, _| {
        reply(
            500,
            r#"{"message":"Sorry, we couldn't process your request due to a technical error. Please try again later."}"#,
        )
    });
    let mut f = UserFields::new();
    f.designation_id = Some("404404".into());
    f.mobile = Some("1".into());
    let e = h.client.update_user("42", "a@x.com", &f).await.unwrap_err();
    assert!(matches!(e, CliqError::TechnicalError { .. }), "{e:?}");
    assert_eq!(e.sent_references(), vec![("designation_id", "404404")]);
    // Transient first: the first try and max_transient_retries more.
    assert_eq!(h.api_calls(), 1 + h.client.config().max_transient_retries);
}

#[tokio::test(start_paused = true)]
async fn a_write_whose_answer_is_lost_is_not_resent() {
    let h = harness_with(
        RecordingGate::default(),
        |c| c.request_timeout = Duration::from_secs(30),
        |n, _| match n {
            0 => {
                ok(json!({"data": {"success_users": ["a@x.com"]}})).delayed(Duration::from_secs(60))
            }
            1 => reply(200, r#"{"data": {"success_us"#),
            _ => ok(json!({"data": {"success_users": ["a@x.com"]}})),
        },
    );
    let f = UserFields::new().with("extension", "1").unwrap();
    let e = h.client.update_user("42", "a@x.com", &f).await.unwrap_err();
    assert!(matches!(e, CliqError::OutcomeUnknown { .. }), "{e:?}");
    assert_eq!(h.api_calls(), 1, "a timed-out PUT was re-sent");
    let e = h.client.update_user("42", "a@x.com", &f).await.unwrap_err();
    assert!(matches!(e, CliqError::OutcomeUnknown { .. }), "{e:?}");
    assert_eq!(h.api_calls(), 2, "a truncated answer to a PUT was re-sent");
    h.client.update_user("42", "a@x.com", &f).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn add_users_parses_both_failed_shapes() {
    let h = harness(|n, _| {
        if n == 0 {
            ok(json!({"data": {"success_users": ["a@x.com"],
                               "failed_users": {"b@x.com": "email.activeuser"}}}))
        } else {
            ok(json!({"data": {"success_users": [],
                               "failed_users": [{"email_id": "c@x.com", "code": "zohoaccount.conflict"}]}}))
        }
    });
    let users = vec![
        UserFields::for_email("a@x.com"),
        UserFields::for_email("b@x.com")
            .with("first_name", "B")
            .unwrap(),
    ];
    let r = h.client.add_users(&users).await.unwrap();
    assert_eq!(r.success_users, vec!["a@x.com"]);
    assert_eq!(r.failure_code("b@x.com"), Some("email.activeuser"));
    let s = &h.seen()[0];
    assert_eq!(
        (s.method.as_str(), s.path.as_str()),
        ("POST", "/api/v2/users")
    );
    assert_eq!(
        s.json(),
        json!({"users": [{"email_id": "a@x.com"}, {"email_id": "b@x.com", "first_name": "B"}]})
    );
    let r = h
        .client
        .add_users(&[UserFields::for_email("c@x.com")])
        .await
        .unwrap();
    assert_eq!(
        r.failed_users,
        vec![("c@x.com".to_string(), "zohoaccount.conflict".to_string())]
    );
    // Empty: no request; missing email: refused locally.
    assert_eq!(
        h.client.add_users(&[]).await.unwrap(),
        BatchResult::default()
    );
    assert!(h.client.add_users(&[UserFields::new()]).await.is_err());
    assert_eq!(h.api_calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn teams_and_layouts() {
    let h = harness(|_, s| {
        if s.path.ends_with("/teams") {
            ok(json!({"data": [{"name": "Ops", "team_id": "T1", "participant_count": 3}]}))
        } else {
            ok(json!({"data": [{"unique_name": "quick_view", "sections": []}]}))
        }
    });
    let teams = h.client.user_teams("42").await.unwrap();
    assert_eq!(teams[0].team_id.as_deref(), Some("T1"));
    let layouts = h.client.user_layouts("quick_view").await.unwrap();
    assert_eq!(layouts[0].unique_name.as_deref(), Some("quick_view"));
    let seen = h.seen();
    assert_eq!(seen[0].path, "/api/v2/users/42/teams");
    assert_eq!(seen[1].path, "/api/v2/users/layout");
    assert_eq!(seen[1].query, "unique_name=quick_view");
    assert_eq!(h.gate.acquired(Endpoint::UserTeams), 1);
    assert_eq!(h.gate.acquired(Endpoint::UserLayouts), 1);
}

fn paged(_: usize, s: &Seen) -> Reply {
    let tok = s
        .query
        .split('&')
        .find_map(|p| p.strip_prefix("next_token="))
        .unwrap_or("");
    match tok {
        "" => ok(
            json!({"next_token": "p2", "has_more": true, "data": [user_json("1"), user_json("2")]}),
        ),
        "p2" => ok(json!({"next_token": "p3", "has_more": true, "data": [user_json("3")]})),
        "p3" => ok(json!({"has_more": false, "data": [user_json("4")]})),
        other => reply(400, format!(r#"{{"message":"bad next_token {other}"}}"#)),
    }
}

#[tokio::test(start_paused = true)]
async fn listing_follows_cursors_to_the_last_page() {
    let h = harness(paged);
    let events: Vec<ListEvent> = h
        .client
        .list_users(ListUsersParams::all_fields())
        .try_collect()
        .await
        .unwrap();
    let ids: Vec<Vec<String>> = events
        .iter()
        .map(|e| match e {
            ListEvent::Page(p) => p.users.iter().map(|u| u.id.clone().unwrap()).collect(),
            ListEvent::Restarted => panic!("no restart expected"),
        })
        .collect();
    assert_eq!(ids, vec![vec!["1", "2"], vec!["3"], vec!["4"]]);
    let seen = h.seen();
    assert_eq!(seen.len(), 3);
    for s in &seen {
        assert!(
            s.query_has("fields=all") && s.query_has("limit=100"),
            "{}",
            s.query
        );
    }
    assert!(!seen[0].query.contains("next_token"));
    assert!(seen[1].query_has("next_token=p2"));
    assert!(seen[2].query_has("next_token=p3"));
    assert_eq!(h.gate.acquired(Endpoint::ListUsers), 3);
}

#[tokio::test(start_paused = true)]
async fn listing_params_and_page_size() {
    let t = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let h = harness_with(
        RecordingGate::default(),
        |c| {
            c.page_size = 25;
            c.modified_after_format = ModifiedAfterFormat::EpochMillis;
        },
        |_, _| ok(json!({"data": []})),
    );
    let p = ListUsersParams {
        fields: Some(Fields::List(vec![
            UserField::Department,
            UserField::Designation,
        ])),
        modified_after: Some(t),
        ..Default::default()
    };
    let page = h.client.list_users_page(&p, None).await.unwrap();
    assert!(page.is_last() && page.users.is_empty());
    let q = &h.seen()[0].query;
    assert!(q.contains("fields=department%2Cdesignation"), "{q}");
    assert!(q.contains("limit=25"), "{q}");
    assert!(
        q.contains(&format!("modified_after={}", t.timestamp_millis())),
        "{q}"
    );
}

#[tokio::test(start_paused = true)]
async fn expired_cursor_restarts_from_page_one() {
    let expired_once = Arc::new(AtomicUsize::new(0));
    let e2 = expired_once.clone();
    let h = harness(move |n, s| {
        if s.query_has("next_token=p3") && e2.fetch_add(1, Ordering::SeqCst) == 0 {
            return reply(
                400,
                r#"{"code":"invalid_next_token","message":"The next_token has expired"}"#,
            );
        }
        paged(n, s)
    });
    let events: Vec<ListEvent> = h
        .client
        .list_users(ListUsersParams::default())
        .try_collect()
        .await
        .unwrap();
    let kinds: Vec<String> = events
        .iter()
        .map(|e| match e {
            ListEvent::Page(p) => format!("page{}", p.users.len()),
            ListEvent::Restarted => "restart".into(),
        })
        .collect();
    assert_eq!(
        kinds,
        vec!["page2", "page1", "restart", "page2", "page1", "page1"]
    );
    // The expired cursor was not retried as transient: 2 + 1 + 3 requests.
    assert_eq!(h.api_calls(), 6);
}

#[tokio::test(start_paused = true)]
async fn listing_gives_up_after_repeated_restarts_and_stops_on_errors() {
    let h = harness(|n, s| {
        if s.query_has("next_token=p2") {
            return reply(400, r#"{"message":"Invalid next_token"}"#);
        }
        paged(n, s)
    });
    let events: Vec<Result<ListEvent, CliqError>> = h
        .client
        .list_users(ListUsersParams::default())
        .collect()
        .await;
    let restarts = events
        .iter()
        .filter(|e| matches!(e, Ok(ListEvent::Restarted)))
        .count();
    assert_eq!(restarts as u32, MAX_LIST_RESTARTS);
    assert!(matches!(
        events.last().unwrap(),
        Err(CliqError::ExpiredCursor { .. })
    ));

    // A permanent error ends the stream with that error.
    let h = harness(|_, _| reply(403, r#"{"code":"operation_not_allowed","message":"no"}"#));
    let events: Vec<Result<ListEvent, CliqError>> = h
        .client
        .list_users(ListUsersParams::default())
        .collect()
        .await;
    assert_eq!(events.len(), 1);
    assert!(matches!(
        events[0],
        Err(CliqError::Permanent { status: 403, .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_cursor_that_does_not_advance_is_an_error() {
    let h = harness(|_, _| ok(json!({"next_token": "same", "has_more": true, "data": []})));
    let events: Vec<Result<ListEvent, CliqError>> = h
        .client
        .list_users(ListUsersParams::default())
        .collect()
        .await;
    assert_eq!(events.len(), 2);
    assert!(matches!(events[1], Err(CliqError::Decode { .. })));
}

#[tokio::test(start_paused = true)]
async fn works_with_the_real_scheduler_type() {
    use crate::clock::Clock;
    let calls: Arc<AtomicUsize> = Arc::default();
    let router = token_router(vec![TOKEN_OK], calls.clone()).route(
        "/api/v2/users/{id}",
        axum::routing::get(|| async { axum::Json(json!({"data": {"id": "9"}})) }),
    );
    let transport: Arc<dyn Transport> = Arc::new(RouterTransport::new(router));
    let clock = Clock::anchored(chrono::Utc::now());
    let dir = tempfile::tempdir().unwrap();
    let store = crate::mirror::Store::open(&dir.path().join("m.db"), &clock)
        .await
        .unwrap();
    let sched = QuotaScheduler::new(&store, crate::cliq::quotas::Limits::documented());
    let auth = Arc::new(TokenManager::new(
        AuthConfig::new(
            "http://cliq.test",
            "1000.CLIENTID",
            SecretString::from("s"),
            SecretString::from("r"),
        ),
        transport.clone(),
        sched.clone(),
    ));
    let client = CliqClient::new(
        ClientConfig::new("http://cliq.test"),
        transport,
        auth,
        sched,
    );
    assert_eq!(
        client.get_user("9", None).await.unwrap().id.as_deref(),
        Some("9")
    );
    assert!(!format!("{client:?}").contains("1000.access"));
}
