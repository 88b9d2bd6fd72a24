//! Tests of the simulator, in-process through its router on paused tokio time.

use std::collections::HashSet;
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use http::header;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::*;
use crate::cliq::transport::{RouterTransport, Transport};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

struct Harness {
    sim: Simulator,
    router: Router,
    token: String,
}

async fn raw(
    router: &Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Bytes) {
    let mut req = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = router
        .clone()
        .oneshot(req.body(axum::body::Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, bytes)
}

fn parse(bytes: &Bytes) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|_| panic!("not JSON: {bytes:?}"))
}

async fn oauth(router: &Router, form: &str) -> Value {
    let (status, body) = raw(
        router,
        "POST",
        "/oauth/v2/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        form,
    )
    .await;
    assert_eq!(status, 200, "OAuth answers 200 even on failure");
    parse(&body)
}

const GOOD_FORM: &str = "grant_type=refresh_token&refresh_token=1000.sim-refresh-token&client_id=1000.SIMCLIENT&client_secret=sim-secret";

async fn mint(router: &Router) -> String {
    let v = oauth(router, GOOD_FORM).await;
    v["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {v}"))
        .to_string()
}

async fn harness(cfg: SimConfig) -> Harness {
    let sim = Simulator::new(cfg, Clock::anchored(t0()));
    let router = sim.router();
    let token = mint(&router).await;
    Harness { sim, router, token }
}

fn users(n: usize) -> SimConfig {
    SimConfig {
        users: n,
        ..SimConfig::default()
    }
}

impl Harness {
    fn auth(&self) -> String {
        format!("Zoho-oauthtoken {}", self.token)
    }

    async fn get(&self, uri: &str) -> (u16, Bytes) {
        let auth = self.auth();
        raw(&self.router, "GET", uri, &[("authorization", &auth)], "").await
    }

    async fn get_json(&self, uri: &str) -> (u16, Value) {
        let (s, b) = self.get(uri).await;
        (s, parse(&b))
    }

    async fn send_json(&self, method: &str, uri: &str, body: Value) -> (u16, Value) {
        let auth = self.auth();
        let (s, b) = raw(
            &self.router,
            method,
            uri,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            &body.to_string(),
        )
        .await;
        (s, parse(&b))
    }

    /// Every id of a complete listing with `params`, asserting page shapes.
    async fn list_all(&self, params: &str) -> Vec<String> {
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let uri = match &token {
                None => format!("/api/v2/users?{params}"),
                Some(t) => format!("/api/v2/users?{params}&next_token={t}"),
            };
            let (s, v) = self.get_json(&uri).await;
            assert_eq!(s, 200, "{v}");
            for u in v["data"].as_array().unwrap() {
                ids.push(u["id"].as_str().unwrap().to_string());
            }
            if v["has_more"] == json!(true) {
                token = Some(v["next_token"].as_str().unwrap().to_string());
            } else {
                assert!(v.get("next_token").is_none(), "last page has no next_token");
                return ids;
            }
        }
    }
}

fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("")
}

async fn advance(d: Duration) {
    tokio::time::advance(d).await;
}

// ---------------------------------------------------------------- quotas

#[tokio::test(start_paused = true)]
async fn listing_31st_request_in_a_minute_locks_for_ten_minutes() {
    let h = harness(users(20)).await;
    for i in 0..30 {
        let (s, _) = h.get("/api/v2/users?limit=1").await;
        assert_eq!(s, 200, "request {i}");
        advance(Duration::from_secs(1)).await;
    }
    // 30 arrivals at 0..29 s; the 31st at 30 s exceeds the threshold.
    let (s, v) = h.get_json("/api/v2/users?limit=1").await;
    assert_eq!(s, 429);
    assert_eq!(code(&v), "request_limit_exceeded");
    assert_eq!(v["message"], "You have exceeded the URL throttle limits");
    let locked_at = h.sim.inner.clock.now();

    // Refused throughout the lock, which neither ends early nor is extended.
    advance(Duration::from_secs(5 * 60)).await;
    assert_eq!(h.get("/api/v2/users?limit=1").await.0, 429);
    advance(Duration::from_secs(5 * 60) - Duration::from_millis(1)).await;
    assert_eq!(h.get("/api/v2/users?limit=1").await.0, 429);
    advance(Duration::from_millis(1)).await;
    assert_eq!(
        h.sim.inner.clock.now() - locked_at,
        chrono::Duration::minutes(10)
    );
    assert_eq!(h.get("/api/v2/users?limit=1").await.0, 200);

    let c = h.sim.counters();
    assert_eq!(c.locks[&Endpoint::ListUsers], 1);
    assert_eq!(c.throttled[&Endpoint::ListUsers], 3);
    assert_eq!(c.requests[&Endpoint::ListUsers], 34);
    assert_eq!(c.max_in_window[&Endpoint::ListUsers], 31);
    // Other endpoints are not affected.
    let id = h.sim.owner_id();
    assert_eq!(h.get(&format!("/api/v2/users/{id}")).await.0, 200);
}

#[tokio::test(start_paused = true)]
async fn the_window_slides() {
    // 30 requests at once, then one more 60 s later: the first 30 left the window.
    let h = harness(users(5)).await;
    for _ in 0..30 {
        assert_eq!(h.get("/api/v2/users").await.0, 200);
    }
    advance(Duration::from_secs(60)).await;
    assert_eq!(h.get("/api/v2/users").await.0, 200);

    // 30 more spread over the next minute; the boundary is exact.
    let h = harness(users(5)).await;
    for _ in 0..30 {
        assert_eq!(h.get("/api/v2/users").await.0, 200);
    }
    advance(Duration::from_millis(59_999)).await;
    assert_eq!(h.get("/api/v2/users").await.0, 429);
}

#[tokio::test(start_paused = true)]
async fn add_users_threshold_is_five_with_a_five_minute_lock() {
    let h = harness(users(5)).await;
    for i in 0..5 {
        let (s, _) = h
            .send_json(
                "POST",
                "/api/v2/users",
                json!({"users": [{"email_id": format!("n{i}@new.example")}]}),
            )
            .await;
        assert_eq!(s, 200);
    }
    let (s, _) = h
        .send_json(
            "POST",
            "/api/v2/users",
            json!({"users": [{"email_id": "x@new.example"}]}),
        )
        .await;
    assert_eq!(s, 429);
    advance(Duration::from_secs(5 * 60 - 1)).await;
    let (s, _) = h
        .send_json(
            "POST",
            "/api/v2/users",
            json!({"users": [{"email_id": "x@new.example"}]}),
        )
        .await;
    assert_eq!(s, 429);
    advance(Duration::from_secs(1)).await;
    let (s, _) = h
        .send_json(
            "POST",
            "/api/v2/users",
            json!({"users": [{"email_id": "x@new.example"}]}),
        )
        .await;
    assert_eq!(s, 200);
}

#[tokio::test(start_paused = true)]
async fn time_scale_shrinks_windows_and_locks() {
    let h = harness(SimConfig {
        users: 5,
        time_scale: 0.1,
        ..SimConfig::default()
    })
    .await;
    for _ in 0..30 {
        assert_eq!(h.get("/api/v2/users").await.0, 200);
    }
    // Window 6 s: after 6 s there is room again.
    advance(Duration::from_secs(6)).await;
    for _ in 0..30 {
        assert_eq!(h.get("/api/v2/users").await.0, 200);
    }
    assert_eq!(h.get("/api/v2/users").await.0, 429);
    // Lock 60 s.
    advance(Duration::from_secs(59)).await;
    assert_eq!(h.get("/api/v2/users").await.0, 429);
    advance(Duration::from_secs(1)).await;
    assert_eq!(h.get("/api/v2/users").await.0, 200);
}

#[tokio::test(start_paused = true)]
async fn lock_endpoint_hook_and_custom_quotas() {
    let mut cfg = users(5);
    cfg.quotas.insert(
        Endpoint::GetUser,
        Quota {
            requests: 2,
            per: Duration::from_secs(10),
            lock: Duration::from_secs(30),
        },
    );
    let h = harness(cfg).await;
    let id = h.sim.owner_id();
    let uri = format!("/api/v2/users/{id}");
    assert_eq!(h.get(&uri).await.0, 200);
    assert_eq!(h.get(&uri).await.0, 200);
    assert_eq!(h.get(&uri).await.0, 429);
    advance(Duration::from_secs(30)).await;
    assert_eq!(h.get(&uri).await.0, 200);

    h.sim.lock_endpoint(Endpoint::UserLayouts);
    let (s, _) = h.get("/api/v2/users/layout?unique_name=quick_view").await;
    assert_eq!(s, 429);
    advance(Duration::from_secs(600)).await;
    let (s, _) = h.get("/api/v2/users/layout?unique_name=quick_view").await;
    assert_eq!(s, 200);
}

#[tokio::test(start_paused = true)]
async fn unauthenticated_requests_do_not_count() {
    let h = harness(users(5)).await;
    for _ in 0..40 {
        let (s, b) = raw(&h.router, "GET", "/api/v2/users", &[], "").await;
        assert_eq!(s, 401);
        assert_eq!(code(&parse(&b)), "oauthtoken_invalid");
    }
    for _ in 0..30 {
        assert_eq!(h.get("/api/v2/users").await.0, 200);
    }
    let c = h.sim.counters();
    assert_eq!(c.unauthorized, 40);
    assert_eq!(c.requests[&Endpoint::ListUsers], 70);
    assert_eq!(c.max_in_window[&Endpoint::ListUsers], 30);
}

// ---------------------------------------------------------------- OAuth

#[tokio::test(start_paused = true)]
async fn oauth_errors_are_http_200() {
    let sim = Simulator::new(users(5), Clock::anchored(t0()));
    let r = sim.router();
    let v = oauth(&r, "grant_type=authorization_code&refresh_token=1000.sim-refresh-token&client_id=1000.SIMCLIENT&client_secret=sim-secret").await;
    assert_eq!(v, json!({"error": "unsupported_grant_type"}));
    let v = oauth(&r, "grant_type=refresh_token&refresh_token=1000.sim-refresh-token&client_id=1000.SIMCLIENT&client_secret=nope").await;
    assert_eq!(v, json!({"error": "invalid_client"}));
    let v = oauth(&r, "grant_type=refresh_token&refresh_token=bad&client_id=1000.SIMCLIENT&client_secret=sim-secret").await;
    assert_eq!(v, json!({"error": "invalid_code"}));

    let v = oauth(&r, GOOD_FORM).await;
    assert!(v["access_token"].as_str().unwrap().starts_with("1000."));
    assert_eq!(v["expires_in"], 3600);
    assert_eq!(v["token_type"], "Bearer");
    assert!(v["api_domain"].as_str().unwrap().starts_with("http"));

    // Parameters in the query string work too.
    let (s, b) = raw(&r, "POST", &format!("/oauth/v2/token?{GOOD_FORM}"), &[], "").await;
    assert_eq!(s, 200);
    assert!(parse(&b)["access_token"].is_string());
    assert_eq!(raw(&r, "GET", "/oauth/v2/token", &[], "").await.0, 405);
}

#[tokio::test(start_paused = true)]
async fn too_many_tokens_are_denied_until_the_window_slides() {
    let sim = Simulator::new(users(5), Clock::anchored(t0()));
    let r = sim.router();
    for _ in 0..10 {
        mint(&r).await;
        advance(Duration::from_secs(1)).await;
    }
    let v = oauth(&r, GOOD_FORM).await;
    assert_eq!(v["error"], "Access Denied");
    assert!(v["error_description"]
        .as_str()
        .unwrap()
        .contains("too many requests"));
    // The first mint was at 0 s; 600 s later it leaves the window.
    advance(Duration::from_secs(600 - 10)).await;
    mint(&r).await;
    let v = oauth(&r, GOOD_FORM).await;
    assert_eq!(v["error"], "Access Denied");
    let c = sim.counters();
    assert_eq!(c.tokens_minted, 11);
    assert_eq!(c.token_refusals, 2);
    assert_eq!(c.requests[&Endpoint::OauthToken], 13);
}

#[tokio::test(start_paused = true)]
async fn tokens_expire_and_both_schemes_work() {
    let h = harness(SimConfig {
        users: 5,
        token_ttl: Duration::from_secs(60),
        ..SimConfig::default()
    })
    .await;
    let bearer = format!("Bearer {}", h.token);
    assert_eq!(
        raw(
            &h.router,
            "GET",
            "/api/v2/users",
            &[("authorization", &bearer)],
            ""
        )
        .await
        .0,
        200
    );
    assert_eq!(h.get("/api/v2/users").await.0, 200);
    advance(Duration::from_secs(60)).await;
    let (s, v) = h.get_json("/api/v2/users").await;
    assert_eq!((s, code(&v)), (401, "oauthtoken_invalid"));

    let h2 = harness(users(5)).await;
    assert_eq!(h2.get("/api/v2/users").await.0, 200);
    h2.sim.expire_tokens();
    assert_eq!(h2.get("/api/v2/users").await.0, 401);
    let bad = "Zoho-oauthtoken 1000.nope";
    assert_eq!(
        raw(
            &h2.router,
            "GET",
            "/api/v2/users",
            &[("authorization", bad)],
            ""
        )
        .await
        .0,
        401
    );
}

// ---------------------------------------------------------------- listing

#[tokio::test(start_paused = true)]
async fn pagination_over_1000_users_sees_each_exactly_once() {
    let h = harness(users(1000)).await;
    let ids = h.list_all("limit=100").await;
    assert_eq!(ids.len(), 1000);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 1000);
    let all: Vec<String> = h
        .sim
        .users()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, all, "id order, every status");

    let by_usage = h.list_all("limit=100&sort_by=usage").await;
    assert_eq!(by_usage.len(), 1000);
    assert_eq!(by_usage.iter().collect::<HashSet<_>>().len(), 1000);
    assert_ne!(by_usage, ids);

    // Default limit 50 and the minimal form.
    let (s, v) = h.get_json("/api/v2/users").await;
    assert_eq!(s, 200);
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 50);
    let mut keys: Vec<&str> = data[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "display_name",
            "email_id",
            "id",
            "name",
            "organization_id",
            "zoid",
            "zuid"
        ]
    );
}

/// A listing page is written from borrowed views, not `Value`s; its keys
/// must come out in the order `serde_json::Map` writes them (sorted), or
/// the simulator's bytes would differ from a `Value` of the same user.
#[test]
fn user_views_serialise_like_values() {
    let org = org::Org::seed(300, 7, chrono::Utc::now());
    let fields = [
        org::Fields::ALL,
        org::Fields::default(),
        org::Fields {
            mobile: true,
            department: true,
            ..org::Fields::default()
        },
    ];
    let mut checked = 0;
    for u in org.users.values() {
        for f in fields {
            let view = serde_json::to_string(&org.view(u, f)).unwrap();
            let value = serde_json::to_value(org.view(u, f)).unwrap();
            assert_eq!(view, value.to_string());
            checked += 1;
        }
    }
    assert_eq!(checked, 900);
    // A full view of someone with a manager has every key.
    let full = org
        .users
        .values()
        .map(|u| org.render(u, org::Fields::ALL))
        .find(|v| v.get("reportingto").is_some())
        .unwrap();
    assert_eq!(full.as_object().unwrap().len(), 25);
}

#[tokio::test(start_paused = true)]
async fn listing_filters_and_fields() {
    let h = harness(users(300)).await;
    let active = h.list_all("status=active&limit=100").await;
    let all = h.sim.users();
    let expected: Vec<&str> = all
        .iter()
        .filter(|u| u["status"] == "active")
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(active, expected);
    assert!(active.len() < 300 && active.len() > 200);

    let free = h.list_all("plan_type=free&limit=100").await;
    assert!(free
        .iter()
        .all(|id| h.sim.user(id).unwrap()["user_type"] == "free"));

    let (_, v) = h
        .get_json("/api/v2/users?fields=mobile,department&limit=3")
        .await;
    let u = &v["data"][0];
    assert!(u["mobile"].is_string());
    assert!(u["department"]["id"].is_string() && u["department"]["name"].is_string());
    assert!(u.get("designation").is_none() && u.get("status").is_none());

    let (_, v) = h.get_json("/api/v2/users?fields=all&limit=3").await;
    let u = &v["data"][0];
    for k in [
        "id",
        "email_id",
        "first_name",
        "last_name",
        "full_name",
        "display_name",
        "name",
        "employee_id",
        "mobile",
        "phone",
        "extension",
        "work_location",
        "status",
        "timezone",
        "timeoffset",
        "language",
        "country",
        "zoid",
        "zuid",
        "organization_id",
        "department",
        "designation",
        "user_type",
        "custom_attributes",
    ] {
        assert!(u.get(k).is_some(), "missing {k} in {u}");
    }
}

#[tokio::test(start_paused = true)]
async fn listing_rejects_unknown_and_bad_params() {
    let h = harness(users(5)).await;
    let (s, v) = h.get_json("/api/v2/users?limit=10&foo=1").await;
    assert_eq!((s, code(&v)), (400, "extra_param_found"));
    assert_eq!(v["message"], "'foo' is an extra parameter.");
    for q in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "status=gone",
        "plan_type=gold",
        "fields=email",
        "sort_by=name",
        "modified_after=yesterday",
        "limit=5&limit=6",
    ] {
        let (s, v) = h.get_json(&format!("/api/v2/users?{q}")).await;
        assert_eq!((s, code(&v)), (400, "invalid_param"), "{q}");
    }
    let id = h.sim.owner_id();
    let (s, v) = h.get_json(&format!("/api/v2/users/{id}?limit=1")).await;
    assert_eq!((s, code(&v)), (400, "extra_param_found"));
}

#[tokio::test(start_paused = true)]
async fn users_added_or_removed_mid_listing() {
    let h = harness(users(250)).await;
    let (_, v) = h.get_json("/api/v2/users?limit=100").await;
    let token = v["next_token"].as_str().unwrap().to_string();
    let all = h.sim.users();
    let gone = all[150]["id"].as_str().unwrap().to_string();
    assert!(h.sim.remove_user(&gone));
    let added = h
        .sim
        .add_user(json!({"email_id": "late.joiner@zylker.example"}));
    let mut ids: Vec<String> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect();
    let mut next = Some(token);
    while let Some(t) = next {
        let (s, v) = h
            .get_json(&format!("/api/v2/users?limit=100&next_token={t}"))
            .await;
        assert_eq!(s, 200);
        ids.extend(
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["id"].as_str().unwrap().to_string()),
        );
        next = v["next_token"].as_str().map(str::to_string);
    }
    assert_eq!(ids.len(), 250);
    assert!(!ids.contains(&gone));
    assert_eq!(ids.last(), Some(&added));
    assert!(h.sim.user(&gone).is_none());
    assert_eq!(h.get(&format!("/api/v2/users/{gone}")).await.0, 404);
}

#[tokio::test(start_paused = true)]
async fn cursors_expire_and_are_bound_to_their_filter() {
    let h = harness(users(30)).await;
    let (_, v) = h.get_json("/api/v2/users?limit=10").await;
    let t = v["next_token"].as_str().unwrap().to_string();

    // Different filter.
    let (s, v) = h
        .get_json(&format!(
            "/api/v2/users?limit=10&status=active&next_token={t}"
        ))
        .await;
    assert_eq!((s, code(&v)), (400, "invalid_next_token"));
    // Tampered.
    let mut bad = t.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == '0' { '1' } else { '0' });
    let (s, v) = h
        .get_json(&format!("/api/v2/users?limit=10&next_token={bad}"))
        .await;
    assert_eq!((s, code(&v)), (400, "invalid_next_token"));
    assert!(v["message"].as_str().unwrap().contains("next_token"));
    // Fine 9 minutes later, with a different page size.
    advance(Duration::from_secs(9 * 60)).await;
    let (s, _) = h
        .get_json(&format!("/api/v2/users?limit=5&next_token={t}"))
        .await;
    assert_eq!(s, 200);
    // Expired after 10 minutes.
    advance(Duration::from_secs(60)).await;
    let (s, v) = h
        .get_json(&format!("/api/v2/users?limit=10&next_token={t}"))
        .await;
    assert_eq!((s, code(&v)), (400, "invalid_next_token"));
    assert!(v["message"].as_str().unwrap().contains("expired"));

    // Scaled: 60 s at time_scale 0.1.
    let h = harness(SimConfig {
        users: 30,
        time_scale: 0.1,
        ..SimConfig::default()
    })
    .await;
    let (_, v) = h.get_json("/api/v2/users?limit=10").await;
    let t = v["next_token"].as_str().unwrap().to_string();
    advance(Duration::from_secs(60)).await;
    let (s, _) = h
        .get_json(&format!("/api/v2/users?limit=10&next_token={t}"))
        .await;
    assert_eq!(s, 400);
}

#[tokio::test(start_paused = true)]
async fn modified_after_sees_only_tracked_fields_within_seven_days() {
    let mut h = harness(users(100)).await;
    let ids: Vec<String> = h
        .sim
        .users()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect();
    let since = "2025-12-31T00:00:00Z";
    // Seeded modifications are all older than 7 days.
    assert!(h
        .list_all(&format!("modified_after={since}"))
        .await
        .is_empty());
    assert!(h.list_all("modified_after=0").await.is_empty());

    advance(Duration::from_secs(1800)).await;
    assert!(h.sim.mutate_user(
        &ids[1],
        json!({"mobile": "+1 555 000 0000", "first_name": "Zed"})
    ));
    assert!(h
        .sim
        .mutate_user(&ids[2], json!({"work_location": "Moon base"})));
    let (dept, _) = h.sim.departments()[5].clone();
    let email = h.sim.user(&ids[3]).unwrap()["email_id"].clone();
    let (s, _) = h
        .send_json(
            "PUT",
            &format!("/api/v2/users/{}", ids[3]),
            json!({"users": [{"email_id": email, "department_id": dept}]}),
        )
        .await;
    assert_eq!(s, 200);
    // Setting a tracked field to its current value is not a modification.
    let ext = h.sim.user(&ids[4]).unwrap()["extension"].clone();
    assert!(h.sim.mutate_user(&ids[4], json!({"extension": ext})));

    let seen = h.list_all(&format!("modified_after={since}")).await;
    assert_eq!(seen, vec![ids[2].clone(), ids[3].clone()]);
    let millis = t0().timestamp_millis();
    assert_eq!(h.list_all(&format!("modified_after={millis}")).await, seen);
    let later = (t0() + chrono::Duration::hours(2)).to_rfc3339();
    assert!(h
        .list_all(&format!("modified_after={}", later.replace('+', "%2B")))
        .await
        .is_empty());

    // Eight days later the modifications fall off the 7-day horizon, even
    // with an old modified_after (clamped to now - 7 days).
    advance(Duration::from_secs(8 * 86_400)).await;
    h.token = mint(&h.router).await;
    assert!(h
        .list_all("modified_after=2025-01-01T00:00:00Z")
        .await
        .is_empty());
}

// ---------------------------------------------------------------- PUT / POST

#[tokio::test(start_paused = true)]
async fn put_validation_and_application() {
    let h = harness(users(50)).await;
    let all = h.sim.users();
    let id = all[7]["id"].as_str().unwrap().to_string();
    let email = all[7]["email_id"].as_str().unwrap().to_string();
    let uri = format!("/api/v2/users/{id}");

    let (s, v) = h
        .send_json("PUT", &uri, json!({"users": [{"colour": "blue"}]}))
        .await;
    assert_eq!((s, code(&v)), (400, "extra_key_found"));
    assert_eq!(v["message"], "'colour' is an extra key in the JSON Object.");
    let (s, v) = h
        .send_json(
            "PUT",
            &uri,
            json!({"users": [{"email_id": email, "department_id": "999"}]}),
        )
        .await;
    assert_eq!((s, code(&v)), (500, "internal_error"));
    assert!(v["message"].as_str().unwrap().contains("technical error"));
    let (s, _) = h
        .send_json(
            "PUT",
            &uri,
            json!({"users": [{"email_id": email, "reporting_to_zuid": "1"}]}),
        )
        .await;
    assert_eq!(s, 500);
    let (s, v) = h
        .send_json(
            "PUT",
            "/api/v2/users/12345",
            json!({"users": [{"email_id": "nobody@zylker.example", "mobile": "1"}]}),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "operation_not_allowed"));
    let (s, _) = h
        .send_json(
            "PUT",
            &uri,
            json!({"users": [{"email_id": "someone@else.example", "mobile": "1"}]}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, v) = h
        .send_json(
            "PUT",
            &uri,
            json!({"users": [{"email_id": email, "mobile": 5}]}),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "invalid_value"));
    let (s, _) = h
        .send_json("PUT", &uri, json!({"users": [{"email_id": email}]}))
        .await;
    assert_eq!(s, 400, "nothing to update");
    // Not JSON, and JSON without the content type.
    let auth = h.auth();
    let (s, b) = raw(
        &h.router,
        "PUT",
        &uri,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        "{nope",
    )
    .await;
    assert_eq!((s, code(&parse(&b))), (400, "invalid_json"));
    let (s, _) = raw(&h.router, "PUT", &uri, &[("authorization", &auth)], "{}").await;
    assert_eq!(s, 400);
    let (s, _) = h.get(&uri).await;
    assert_eq!(s, 200);

    // The documented wrapped form...
    let (dept_id, dept_name) = h.sim.departments()[3].clone();
    let (s, v) = h
        .send_json(
            "PUT",
            &uri,
            json!({"users": [{"email_id": email, "department_id": dept_id, "work_location": "Lab"}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"data": {"success_users": [email], "failed_users": {}}})
    );
    let u = h.sim.user(&id).unwrap();
    assert_eq!(u["department"], json!({"id": dept_id, "name": dept_name}));
    assert_eq!(u["work_location"], "Lab");
    assert_eq!(h.sim.counters().server_errors, 2);
    // ...and the flat one, in the simulator's flat mode (same seeded org).
    let flat = harness(SimConfig {
        update_body: UpdateBody::Flat,
        ..users(50)
    })
    .await;
    let boss = all[0]["id"].as_str().unwrap();
    let (s, _) = flat
        .send_json(
            "PUT",
            &uri,
            json!({"reporting_to_zuid": boss, "extension": "4242"}),
        )
        .await;
    assert_eq!(s, 200);
    let u = flat.sim.user(&id).unwrap();
    assert_eq!(u["reportingto"]["id"], boss);
    assert_eq!(u["extension"], "4242");
}

#[tokio::test(start_paused = true)]
async fn post_reports_per_email_outcomes() {
    let h = harness(users(50)).await;
    let all = h.sim.users();
    let active = all.iter().find(|u| u["status"] == "active").unwrap()["email_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (dept, _) = h.sim.departments()[2].clone();
    let (s, v) = h
        .send_json(
            "POST",
            "/api/v2/users",
            json!({"users": [
                {"email_id": "new.person@acme.example", "first_name": "New", "department_id": dept},
                {"email_id": active},
                {"email_id": "NEW.person@acme.example"},
                {"email_id": "someone@elsewhere.example"},
                {"email_id": "blocked.guy@acme.example"},
                {"email_id": "bad.ref@acme.example", "designation_id": "nope"},
            ]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["data"]["success_users"],
        json!(["new.person@acme.example"])
    );
    assert_eq!(
        v["data"]["failed_users"],
        json!({
            active.as_str(): "email.activeuser",
            "NEW.person@acme.example": "email.pendinguser",
            "someone@elsewhere.example": "zohoaccount.conflict",
            "blocked.guy@acme.example": "email.invitation.blocked",
            "bad.ref@acme.example": "operation_failed",
        })
    );
    let id = h.sim.user_id_by_email("new.person@acme.example").unwrap();
    let u = h.sim.user(&id).unwrap();
    assert_eq!(u["status"], "pending");
    assert_eq!(u["first_name"], "New");
    assert_eq!(u["department"]["id"], dept);

    let (s, v) = h
        .send_json(
            "POST",
            "/api/v2/users",
            json!({"users": [{"email_id": "a@b.example", "nick": "x"}]}),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "extra_key_found"));
    let (s, _) = h
        .send_json(
            "POST",
            "/api/v2/users",
            json!({"users": [{"first_name": "NoMail"}]}),
        )
        .await;
    assert_eq!(s, 400);
    assert!(h.sim.user_id_by_email("a@b.example").is_none());
}

// ---------------------------------------------------------------- other endpoints

#[tokio::test(start_paused = true)]
async fn get_user_teams_layouts_and_routing() {
    let h = harness(users(50)).await;
    let id = h.sim.owner_id();
    let (s, v) = h.get_json(&format!("/api/v2/users/{id}?fields=all")).await;
    assert_eq!(s, 200);
    assert_eq!(v["data"], h.sim.user(&id).unwrap());
    assert!(v["data"].get("reportingto").is_none(), "top of the chain");
    let (_, v) = h.get_json(&format!("/api/v2/users/{id}")).await;
    assert_eq!(v["data"].as_object().unwrap().len(), 7);
    let (s, v) = h.get_json("/api/v2/users/42").await;
    assert_eq!((s, code(&v)), (404, "user_not_found"));

    // Every user's manager is a real user; teams have the documented keys.
    let mut team_entries = 0;
    for u in h.sim.users().iter().skip(1) {
        let mgr = u["reportingto"]["id"].as_str().unwrap();
        assert!(h.sim.user(mgr).is_some());
    }
    for u in h.sim.users().iter().take(15) {
        let (s, v) = h
            .get_json(&format!(
                "/api/v2/users/{}/teams",
                u["id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(s, 200);
        for t in v["data"].as_array().unwrap() {
            team_entries += 1;
            for k in [
                "name",
                "team_id",
                "organization_id",
                "creation_time",
                "description",
                "is_active",
                "is_moderator",
                "joined",
                "participant_count",
            ] {
                assert!(t.get(k).is_some(), "{k}");
            }
        }
    }
    assert!(team_entries > 0);

    for name in LAYOUT_NAMES_FOR_TEST {
        let (s, v) = h
            .get_json(&format!("/api/v2/users/layout?unique_name={name}"))
            .await;
        assert_eq!(s, 200);
        assert_eq!(v["data"][0]["unique_name"], name);
        let f = &v["data"][0]["sections"][0]["fields"][0];
        for k in [
            "label",
            "unique_name",
            "status",
            "sequence_number",
            "system_defined",
            "id",
        ] {
            assert!(f.get(k).is_some());
        }
    }
    assert_eq!(h.get("/api/v2/users/layout").await.0, 400);
    assert_eq!(
        h.get("/api/v2/users/layout?unique_name=desktop").await.0,
        400
    );

    let (s, v) = h.get_json("/api/v2/channels").await;
    assert_eq!((s, code(&v)), (404, "url_not_found"));
    assert_eq!(h.get("/api/v2/users/1/2/3").await.0, 404);
    let auth = h.auth();
    let (s, _) = raw(
        &h.router,
        "DELETE",
        "/api/v2/users",
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(s, 405);
    let (s, _) = raw(
        &h.router,
        "PUT",
        "/api/v2/users/layout",
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(s, 405);

    let log = h.sim.requests();
    assert_eq!(log[0].endpoint, Some(Endpoint::OauthToken));
    let last = log.last().unwrap();
    assert_eq!(
        (last.method.as_str(), last.status, last.endpoint),
        ("PUT", 405, None)
    );
    assert!(log
        .iter()
        .any(|r| r.endpoint == Some(Endpoint::UserLayouts) && r.query == "unique_name=desktop"));
}

const LAYOUT_NAMES_FOR_TEST: [&str; 4] = [
    "quick_view",
    "profile_details_android",
    "profile_details_ios",
    "profile_details_web",
];

// ---------------------------------------------------------------- faults

#[tokio::test(start_paused = true)]
async fn fault_injection_knobs() {
    let h = harness(users(20)).await;
    let id = h.sim.owner_id();
    let uri = format!("/api/v2/users/{id}");

    h.set_and_check(Faults {
        force_throttle: true,
        ..Faults::default()
    });
    let (s, v) = h.get_json(&uri).await;
    assert_eq!((s, code(&v)), (429, "request_limit_exceeded"));
    h.sim.set_faults(Faults {
        force_throttle: true,
        throttle_as_400: true,
        ..Faults::default()
    });
    let (s, v) = h.get_json(&uri).await;
    assert_eq!((s, code(&v)), (400, "request_limit_exceeded"));

    h.sim.set_faults(Faults {
        error_5xx_rate: 1.0,
        ..Faults::default()
    });
    for _ in 0..5 {
        let (s, _) = h.get(&uri).await;
        assert!([500, 502, 503].contains(&s), "{s}");
    }
    let c = h.sim.counters();
    assert_eq!(c.server_errors, 5);
    assert_eq!(
        c.max_in_window[&Endpoint::GetUser],
        7,
        "5xx still count against quota"
    );

    h.sim.set_faults(Faults {
        truncate_rate: 1.0,
        ..Faults::default()
    });
    let (s, b) = h.get(&uri).await;
    assert_eq!(s, 200);
    assert!(serde_json::from_slice::<Value>(&b).is_err());

    h.sim.set_faults(Faults {
        latency: Duration::from_secs(5),
        ..Faults::default()
    });
    let start = tokio::time::Instant::now();
    assert_eq!(h.get(&uri).await.0, 200);
    assert!(start.elapsed() >= Duration::from_secs(5));
    let start = tokio::time::Instant::now();
    assert_eq!(raw(&h.router, "GET", &uri, &[], "").await.0, 401);
    assert!(
        start.elapsed() >= Duration::from_secs(5),
        "refusals are slow too"
    );

    h.sim.set_faults(Faults {
        expire_token_every: Some(2),
        ..Faults::default()
    });
    advance(Duration::from_secs(60)).await;
    let mut results = Vec::new();
    for _ in 0..3 {
        results.push(h.get(&uri).await.0);
    }
    // The 2nd request finds its token expired, and it stays expired.
    assert_eq!(results, [200, 401, 401]);
    let mut h = h;
    h.token = mint(&h.router).await;
    assert_eq!(h.get(&uri).await.0, 200);
    assert_eq!(h.get(&uri).await.0, 401);
    assert_eq!(h.sim.faults().expire_token_every, Some(2));
}

impl Harness {
    fn set_and_check(&self, f: Faults) {
        self.sim.set_faults(f.clone());
        assert_eq!(self.sim.faults().force_throttle, f.force_throttle);
    }
}

// ---------------------------------------------------------------- seeding, transport

#[tokio::test(start_paused = true)]
async fn seeding_is_deterministic_and_scales() {
    let a = Simulator::new(users(300), Clock::anchored(t0()));
    let b = Simulator::new(users(300), Clock::anchored(t0()));
    let c = Simulator::new(
        SimConfig {
            users: 300,
            seed: 7,
            ..SimConfig::default()
        },
        Clock::anchored(t0()),
    );
    assert_eq!(a.users(), b.users());
    assert_ne!(a.users(), c.users());
    assert!(a.departments().len() >= 10 && a.designations().len() >= 12);
    let statuses: HashSet<String> = a
        .users()
        .iter()
        .map(|u| u["status"].as_str().unwrap().to_string())
        .collect();
    assert!(statuses.contains("active") && statuses.contains("inactive"));

    let started = std::time::Instant::now();
    let big = Simulator::new(users(100_000), Clock::anchored(t0()));
    let elapsed = started.elapsed();
    let st = big.state();
    assert_eq!(st.org.users.len(), 100_000);
    assert_eq!(st.org.by_email.len(), 100_000);
    assert_eq!(st.org.by_usage.len(), 100_000);
    // Generous for unoptimised test builds; release seeds 100k in well under a second.
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[tokio::test(start_paused = true)]
async fn works_through_router_transport() {
    let sim = Simulator::new(users(10), Clock::anchored(t0()));
    let transport = RouterTransport::new(sim.router());
    let req = http::Request::builder()
        .method("POST")
        .uri("http://sim.local/oauth/v2/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Bytes::from_static(GOOD_FORM.as_bytes()))
        .unwrap();
    let resp = transport.send(req).await.unwrap();
    let v: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(v["api_domain"], "http://sim.local");
    let token = v["access_token"].as_str().unwrap();
    let req = http::Request::builder()
        .uri("http://sim.local/api/v2/users?limit=5")
        .header("authorization", format!("Zoho-oauthtoken {token}"))
        .body(Bytes::new())
        .unwrap();
    let resp = transport.send(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 5);
    assert_eq!(v["has_more"], true);
}

#[tokio::test]
async fn serves_over_tcp() {
    let sim = Simulator::new(users(5), Clock::system());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sim.clone().serve(listener, async {
        let _ = rx.await;
    }));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /api/v2/users HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 401"), "{out}");
    let _ = tx.send(());
    server.await.unwrap().unwrap();
}

/// The listing faults end a listing early: page n has neither `has_more`
/// nor `next_token` (with its users, or empty); the pages before it are
/// normal, and every listing is cut at the same page.
#[tokio::test(start_paused = true)]
async fn listing_faults_end_a_listing_early() {
    let h = harness(users(50)).await;
    h.sim.set_faults(Faults {
        list_end_early_at_page: Some(3),
        ..Faults::default()
    });
    for _ in 0..2 {
        assert_eq!(h.list_all("limit=10").await.len(), 30);
    }
    // A listing shorter than the cut is not touched.
    let (_, v) = h.get_json("/api/v2/users?limit=100").await;
    assert_eq!(v["has_more"], json!(false), "{v}");
    h.sim.set_faults(Faults {
        list_empty_page_at: Some(2),
        ..Faults::default()
    });
    assert_eq!(h.list_all("limit=10").await.len(), 10);
    h.sim.set_faults(Faults::default());
    assert_eq!(h.list_all("limit=10").await.len(), h.sim.users().len());
}

// ------------------------------------------- strictness and outside steering

#[tokio::test(start_paused = true)]
async fn a_wrapped_put_without_email_id_is_refused_as_cliq_does() {
    let h = harness(users(20)).await;
    let id = h.sim.users()[3]["id"].as_str().unwrap().to_string();
    let uri = format!("/api/v2/users/{id}");
    let (s, v) = h
        .send_json("PUT", &uri, json!({"users": [{"extension": "4242"}]}))
        .await;
    assert_eq!((s, code(&v)), (400, "missing_key"), "{v}");
    assert_eq!(v["message"], "'email_id' is missing in the JSON Object.");
    assert_ne!(h.sim.user(&id).unwrap()["extension"], "4242");
}

#[tokio::test(start_paused = true)]
async fn the_flat_put_body_is_refused_unless_the_simulator_is_in_flat_mode() {
    let h = harness(users(20)).await;
    let u = &h.sim.users()[3];
    let (id, email) = (u["id"].as_str().unwrap(), u["email_id"].as_str().unwrap());
    let uri = format!("/api/v2/users/{id}");
    let (s, v) = h.send_json("PUT", &uri, json!({"extension": "4242"})).await;
    assert_eq!((s, code(&v)), (400, "extra_key_found"), "{v}");
    assert_ne!(h.sim.user(id).unwrap()["extension"], "4242");

    let flat = harness(SimConfig {
        update_body: UpdateBody::Flat,
        ..users(20)
    })
    .await;
    let (s, v) = flat
        .send_json("PUT", &uri, json!({"extension": "4242"}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(flat.sim.user(id).unwrap()["extension"], "4242");
    // Flat mode is not "both": the wrapped shape is then the stranger.
    let (s, v) = flat
        .send_json(
            "PUT",
            &uri,
            json!({"users": [{"email_id": email, "extension": "1"}]}),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "extra_key_found"), "{v}");
}

#[tokio::test(start_paused = true)]
async fn every_answer_carries_a_date_from_the_simulator_clock() {
    let behind = Clock::anchored(t0() - chrono::Duration::minutes(10));
    let sim = Simulator::new(users(5), behind);
    let resp = sim
        .router()
        .oneshot(
            http::Request::get("/api/v2/users")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let date = resp.headers()[header::DATE].to_str().unwrap();
    assert_eq!(date, "Wed, 31 Dec 2025 23:50:00 GMT");
}

#[test]
fn faults_travel_as_json_and_missing_fields_mean_off() {
    let f: Faults =
        serde_json::from_str(r#"{"error_5xx_rate": 0.25, "latency": "150ms"}"#).unwrap();
    assert_eq!(f.error_5xx_rate, 0.25);
    assert_eq!(f.latency, Duration::from_millis(150));
    assert!(!f.force_throttle && f.truncate_rate == 0.0);
    let back: Faults = serde_json::from_value(serde_json::to_value(&f).unwrap()).unwrap();
    assert_eq!(
        serde_json::to_value(&back).unwrap(),
        serde_json::to_value(&f).unwrap()
    );
    let off: Faults = serde_json::from_str("{}").unwrap();
    assert_eq!(
        serde_json::to_value(off).unwrap(),
        serde_json::to_value(Faults::default()).unwrap()
    );
    assert!(
        serde_json::from_str::<Faults>(r#"{"fail_rat": 1}"#).is_err(),
        "a typo is an error"
    );
}

#[tokio::test(start_paused = true)]
async fn the_fault_admin_path_refuses_peers_that_are_not_loopback() {
    let sim = Simulator::new(users(5), Clock::anchored(t0()));
    for peer in [None, Some("10.1.2.3:5555")] {
        let mut req = http::Request::get("/_sim/faults")
            .body(axum::body::Body::empty())
            .unwrap();
        if let Some(p) = peer {
            req.extensions_mut().insert(axum::extract::ConnectInfo(
                p.parse::<std::net::SocketAddr>().unwrap(),
            ));
        }
        let resp = sim.router().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), 403, "{peer:?}");
    }
    let mut req = http::Request::get("/_sim/faults")
        .body(axum::body::Body::empty())
        .unwrap();
    req.extensions_mut().insert(axum::extract::ConnectInfo(
        "127.0.0.1:5555".parse::<std::net::SocketAddr>().unwrap(),
    ));
    let resp = sim.router().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(sim.requests().is_empty(), "not in the API request log");
    assert!(sim.counters().requests.is_empty(), "not counted");
}

/// A token minted from a grant without `ZohoCliq.Users.READ` may still
/// write (its other scopes) but every read is 401 `oauth_scope_mismatch`,
/// and counts against the quota.
#[tokio::test(start_paused = true)]
async fn a_token_without_the_read_scope_cannot_list_or_get() {
    let h = harness(SimConfig {
        scopes: vec!["ZohoCliq.Users.UPDATE".into()],
        ..users(3)
    })
    .await;
    let (s, v) = h.get_json("/api/v2/users?limit=1").await;
    assert_eq!(s, 401, "{v}");
    assert_eq!(v["code"], "oauth_scope_mismatch", "{v}");
    assert_eq!(h.sim.counters().requests[&Endpoint::ListUsers], 1);
    let full = harness(users(3)).await;
    assert_eq!(full.get_json("/api/v2/users?limit=1").await.0, 200);
}

/// The simulator's quota table ([`quotas::documented`], its defaults, and
/// what it falls back to for an endpoint left out of `SimConfig::quotas`)
/// agrees with the client's, threshold for threshold and lock for lock. The two are written
/// separately from the documentation, so a wrong number on either side is a
/// disagreement here instead of moving the client and its test peer together.
#[test]
fn the_simulator_and_the_client_agree_on_every_documented_quota() {
    let cfg = SimConfig::default();
    let sim = Simulator::new(
        SimConfig {
            quotas: HashMap::new(),
            ..cfg.clone()
        },
        Clock::anchored(t0()),
    );
    for ep in Endpoint::ALL {
        let client = ep.documented_quota();
        assert_eq!(
            quotas::documented(ep),
            client,
            "{ep}: simulator's table vs client"
        );
        if ep == Endpoint::OauthToken {
            continue;
        }
        assert_eq!(cfg.quotas[&ep], client, "{ep}: SimConfig default vs client");
        assert_eq!(sim.state().quota(ep), client, "{ep}: simulator vs client");
    }
    let oauth = Endpoint::OauthToken.documented_quota();
    assert_eq!(
        (cfg.max_tokens_per_window, TOKEN_WINDOW),
        (oauth.requests, oauth.per),
        "token minting: simulator vs client"
    );
}
