//! `/_sim/faults`: the simulator's fault injection, read and replaced at run
//! time from outside (`GET` and `PUT` with the JSON of [`Faults`]), so people
//! can test their own scripts and dashboards against a misbehaving "Cliq".
//!
//! It sits outside the API namespace (`/api/v2`) on purpose: it is never
//! counted against a quota, never in [`Simulator::requests`], and it answers
//! only peers on loopback — anyone who can reach the port from elsewhere
//! must not be able to switch faults on.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use http::{header, Method, StatusCode};
use serde_json::json;

use super::{Faults, Simulator};

/// Where the fault knobs are served.
pub const FAULTS_PATH: &str = "/_sim/faults";
/// Largest admin body accepted (the JSON of a few knobs).
const MAX_ADMIN_BODY: usize = 64 * 1024;

/// True for the admin namespace (`/_sim/…`), which [`handle`] answers.
pub(super) fn is_admin_path(path: &str) -> bool {
    path == "/_sim" || path.starts_with("/_sim/")
}

/// Answer an admin request.
pub(super) async fn handle(sim: &Simulator, req: Request) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    if !peer.is_some_and(|p| p.ip().is_loopback()) {
        // In-process callers (no socket) have Simulator::set_faults instead.
        return reply(
            StatusCode::FORBIDDEN,
            &json!({"code": "forbidden", "message": "The simulator's admin path only answers loopback peers."}),
        );
    }
    if req.uri().path() != FAULTS_PATH {
        return reply(
            StatusCode::NOT_FOUND,
            &json!({"code": "url_not_found", "message": format!("The simulator's admin path is {FAULTS_PATH}.")}),
        );
    }
    match *req.method() {
        Method::GET => reply(StatusCode::OK, &sim.faults()),
        Method::PUT => put_faults(sim, req.into_body()).await,
        _ => reply(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"code": "method_not_allowed", "message": format!("{FAULTS_PATH} takes GET or PUT.")}),
        ),
    }
}

/// Replace every knob (a missing field is off) and answer the new set.
async fn put_faults(sim: &Simulator, body: Body) -> Response {
    let invalid = |message: String| {
        reply(
            StatusCode::BAD_REQUEST,
            &json!({"code": "invalid_faults", "message": message}),
        )
    };
    let bytes = match axum::body::to_bytes(body, MAX_ADMIN_BODY).await {
        Ok(b) => b,
        Err(e) => return invalid(format!("cannot read the body: {e}")),
    };
    let faults: Faults = match serde_json::from_slice(&bytes) {
        Ok(f) => f,
        Err(e) => return invalid(format!("not the JSON of the fault knobs: {e}")),
    };
    if let Err(m) = faults.validate() {
        return invalid(m);
    }
    tracing::info!(
        ?faults,
        "sim: fault injection changed through {FAULTS_PATH}"
    );
    sim.set_faults(faults);
    reply(StatusCode::OK, &sim.faults())
}

fn reply(status: StatusCode, v: &impl serde::Serialize) -> Response {
    let mut resp = Response::new(Body::from(serde_json::to_vec(v).unwrap_or_default()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}
