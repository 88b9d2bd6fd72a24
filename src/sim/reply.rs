//! A computed answer of the simulator, and the small helpers every handler uses.

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{header, StatusCode};
use serde_json::json;

/// A computed answer.
pub(crate) struct Reply {
    pub(super) status: StatusCode,
    pub(super) body: Bytes,
    pub(super) content_type: &'static str,
}

impl Reply {
    pub(super) fn json(status: StatusCode, v: &impl serde::Serialize) -> Reply {
        Reply {
            status,
            body: Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
            content_type: "application/json;charset=UTF-8",
        }
    }

    pub(super) fn ok(v: &impl serde::Serialize) -> Reply {
        Reply::json(StatusCode::OK, v)
    }

    pub(super) fn error(status: StatusCode, code: &str, message: &str) -> Reply {
        Reply::json(status, &json!({"code": code, "message": message}))
    }

    pub(super) fn bad_request(code: &str, message: &str) -> Reply {
        Reply::error(StatusCode::BAD_REQUEST, code, message)
    }

    pub(super) fn into_response(self) -> Response {
        let mut resp = Response::new(Body::from(self.body));
        *resp.status_mut() = self.status;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(self.content_type),
        );
        resp
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

pub(super) fn unauthorized() -> Reply {
    Reply::error(
        StatusCode::UNAUTHORIZED,
        "oauthtoken_invalid",
        "Invalid OAuth access token.",
    )
}
