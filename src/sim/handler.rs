//! The axum handler: reads the request, runs it against the state, applies latency and lost answers, dates the reply.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State as AxState};
use axum::response::Response;
use chrono::{DateTime, Utc};
use http::{header, StatusCode};

use super::dispatch::{route, LostAnswer, Processed, Route};
use super::{admin, RecordedRequest, Reply, Simulator, WRITE_HANG};
use crate::cliq::endpoint::Endpoint;

/// Largest request body accepted (profile pictures travel base64-encoded).
const MAX_BODY: usize = 16 * 1024 * 1024;

pub(super) async fn handle(AxState(sim): AxState<Simulator>, req: Request) -> Response {
    if admin::is_admin_path(req.uri().path()) {
        let resp = admin::handle(&sim, req).await;
        return with_date(resp, sim.inner.clock.now());
    }
    let (parts, body) = req.into_parts();
    let at = sim.inner.clock.now();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let route = route(&parts.method, &path);
    let endpoint = match &route {
        Route::Oauth => Some(Endpoint::OauthToken),
        Route::Api(ep, _) => Some(*ep),
        _ => None,
    };
    let (processed, body_text) = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => {
            let p =
                sim.state()
                    .process(route, &parts.method, &parts.headers, &parts.uri, &bytes, at);
            (p, String::from_utf8_lossy(&bytes).into_owned())
        }
        Err(_) => (
            Processed::plain(Reply::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The request body is too large.",
            )),
            String::new(),
        ),
    };
    if !processed.latency.is_zero() {
        tokio::time::sleep(processed.latency).await;
    }
    let mut reply = processed.reply;
    if processed.lost == Some(LostAnswer::Truncate) {
        reply.body = reply.body.slice(..reply.body.len() / 2);
    }
    sim.state().record(RecordedRequest {
        endpoint,
        method: parts.method.to_string(),
        path,
        query,
        body: body_text,
        at,
        status: reply.status.as_u16(),
    });
    match processed.lost {
        Some(LostAnswer::Reset) => reset_response(),
        Some(LostAnswer::Hang) => {
            tokio::time::sleep(WRITE_HANG).await;
            with_date(reply.into_response(), sim.inner.clock.now())
        }
        _ => with_date(reply.into_response(), sim.inner.clock.now()),
    }
}

/// Every answer carries a `Date` from the *simulator's* clock, as a real
/// server's does from its own: clients take Cliq's notion of time from it
/// (an explicit header also stops hyper adding one from the system clock).
fn with_date(mut resp: Response, now: DateTime<Utc>) -> Response {
    if let Ok(v) = header::HeaderValue::try_from(crate::clock::to_http_date(now)) {
        resp.headers_mut().insert(header::DATE, v);
    }
    resp
}

/// A response whose body fails before its first byte: in process the
/// transport sees a body error, over TCP hyper aborts the connection (the
/// client sees it closed or reset after sending).
fn reset_response() -> Response {
    let failing = futures::stream::once(async {
        Err::<Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by peer (simulated)",
        ))
    });
    Response::new(Body::from_stream(failing))
}
