//! Routing a request to its handler: the path and method, fault injection, and how an answer gets lost.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{header, HeaderMap, Method, StatusCode};
use rand::Rng;

use super::reply::unauthorized;
use super::{required_scope, RecordedRequest, Reply, State, LOG_CAPACITY};
use crate::cliq::endpoint::Endpoint;

pub(super) enum Route {
    Oauth,
    Api(Endpoint, Option<String>),
    NotFound,
    MethodNotAllowed,
}

pub(super) fn route(method: &Method, path: &str) -> Route {
    if path == "/oauth/v2/token" {
        return if method == Method::POST {
            Route::Oauth
        } else {
            Route::MethodNotAllowed
        };
    }
    let Some(rest) = path.strip_prefix("/api/v2/users") else {
        return Route::NotFound;
    };
    let segs: Vec<&str> = if rest.is_empty() {
        Vec::new()
    } else if let Some(r) = rest.strip_prefix('/') {
        r.split('/').collect()
    } else {
        return Route::NotFound;
    };
    let (get, other) = match segs.as_slice() {
        [] => (
            Some(Endpoint::ListUsers),
            Some((Method::POST, Endpoint::AddUsers)),
        ),
        ["layout"] => (Some(Endpoint::UserLayouts), None),
        [id] if !id.is_empty() => (
            Some(Endpoint::GetUser),
            Some((Method::PUT, Endpoint::UpdateUser)),
        ),
        [id, "teams"] if !id.is_empty() => (Some(Endpoint::UserTeams), None),
        _ => return Route::NotFound,
    };
    let target = match segs.first() {
        Some(id) if *id != "layout" => Some(id.to_string()),
        _ => None,
    };
    if method == Method::GET {
        if let Some(ep) = get {
            return Route::Api(ep, target);
        }
    }
    match other {
        Some((m, ep)) if m == method => Route::Api(ep, target),
        _ => Route::MethodNotAllowed,
    }
}

/// The access token of an `Authorization: Zoho-oauthtoken <t>` or `Bearer <t>` header.
pub(super) fn access_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    let token = token.trim();
    ((scheme.eq_ignore_ascii_case("Zoho-oauthtoken") || scheme.eq_ignore_ascii_case("Bearer"))
        && !token.is_empty())
    .then_some(token)
}

/// How the answer to an applied write is lost (fault injection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LostAnswer {
    /// The body is cut in half.
    Truncate,
    /// The connection is reset before the answer.
    Reset,
    /// No answer for [`WRITE_HANG`].
    Hang,
}

/// Outcome of the synchronous part of handling a request.
pub(super) struct Processed {
    pub(super) reply: Reply,
    pub(super) latency: Duration,
    pub(super) lost: Option<LostAnswer>,
}

impl Processed {
    pub(super) fn plain(reply: Reply) -> Processed {
        Processed {
            reply,
            latency: Duration::ZERO,
            lost: None,
        }
    }
}

impl State {
    pub(super) fn process(
        &mut self,
        route: Route,
        method: &Method,
        headers: &HeaderMap,
        uri: &http::Uri,
        body: &Bytes,
        at: DateTime<Utc>,
    ) -> Processed {
        match route {
            Route::NotFound => Processed::plain(Reply::error(
                StatusCode::NOT_FOUND,
                "url_not_found",
                "The requested URL was not found on this server.",
            )),
            Route::MethodNotAllowed => Processed::plain(Reply::error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                &format!("The method {method} is not supported for this URL."),
            )),
            Route::Oauth => Processed::plain(self.oauth(headers, uri, body, at)),
            Route::Api(ep, target) => {
                // Latency applies to every API answer, refusals included.
                let mut p = self.api(ep, target, headers, uri, body, at);
                p.latency = self.faults.latency;
                p
            }
        }
    }

    fn api(
        &mut self,
        ep: Endpoint,
        target: Option<String>,
        headers: &HeaderMap,
        uri: &http::Uri,
        body: &Bytes,
        at: DateTime<Utc>,
    ) -> Processed {
        State::bump(&mut self.counters.requests, ep);
        let token = match self.admit(ep, headers, at) {
            Ok(t) => t,
            Err(reply) => return Processed::plain(reply),
        };
        // 3. faults
        self.api_seq += 1;
        if let Some(reply) = self.random_5xx() {
            return Processed::plain(reply);
        }
        let write = matches!(ep, Endpoint::AddUsers | Endpoint::UpdateUser);
        if let Some(p) = self.write_or_token_fault(write, token) {
            return p;
        }
        // 4./5. validation and handler
        let (query, target) = (uri.query().unwrap_or(""), target.unwrap_or_default());
        let reply = self.endpoint(ep, &target, query, (headers, body), at);
        if reply.status.is_server_error() {
            self.counters.server_errors += 1;
        }
        let lost = self.lost_answer(&reply, write);
        Processed {
            reply,
            latency: self.faults.latency,
            lost,
        }
    }

    /// Steps 1 and 2, auth then quota then scope: the request's access
    /// token, or the refusal.
    fn admit(
        &mut self,
        ep: Endpoint,
        headers: &HeaderMap,
        at: DateTime<Utc>,
    ) -> Result<Option<String>, Reply> {
        // 1. auth
        let token = access_token(headers).map(str::to_string);
        let (owner, scoped) = match token.as_deref().and_then(|t| self.tokens.get(t)) {
            Some(tok) if at < tok.expires_at => (
                tok.owner,
                tok.scopes.iter().any(|s| s == required_scope(ep)),
            ),
            _ => {
                self.counters.unauthorized += 1;
                return Err(unauthorized());
            }
        };
        // 2. quota (a request refused for its scope still counts: the
        // stricter reading)
        if let Some(reply) = self.check_quota(owner, ep, at) {
            return Err(reply);
        }
        if !scoped {
            self.counters.unauthorized += 1;
            return Err(Reply::error(
                StatusCode::UNAUTHORIZED,
                "oauth_scope_mismatch",
                "The OAuth access token does not have the scope this request needs.",
            ));
        }
        Ok(token)
    }

    /// The injected random server error, if this request draws one.
    fn random_5xx(&mut self) -> Option<Reply> {
        if !(self.faults.error_5xx_rate > 0.0
            && self.fault_rng.gen::<f64>() < self.faults.error_5xx_rate)
        {
            return None;
        }
        self.counters.server_errors += 1;
        Some(match self.fault_rng.gen_range(0..3) {
            0 => Reply::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "Sorry, we couldn't process your request due to a technical error.",
            ),
            // Gateways answer in HTML, not JSON.
            1 => Reply {
                status: StatusCode::BAD_GATEWAY,
                body: Bytes::from_static(b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
                content_type: "text/html",
            },
            _ => Reply {
                status: StatusCode::SERVICE_UNAVAILABLE,
                body: Bytes::from_static(
                    b"<html><body><h1>503 Service Unavailable</h1></body></html>",
                ),
                content_type: "text/html",
            },
        })
    }

    /// The injected write faults (500 before applying, a dropped write)
    /// and the forced token expiry, before the handler runs.
    fn write_or_token_fault(&mut self, write: bool, token: Option<String>) -> Option<Processed> {
        if write && self.faults.write_500_next > 0 {
            if self.faults.write_500_next != u32::MAX {
                self.faults.write_500_next -= 1;
            }
            self.counters.server_errors += 1;
            return Some(Processed::plain(Reply::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "Sorry, we couldn't process your request due to a technical error.",
            )));
        }
        let drop = self.faults.write_drop_rate;
        if write && drop > 0.0 && self.fault_rng.gen::<f64>() < drop {
            return Some(Processed {
                lost: Some(LostAnswer::Hang),
                ..Processed::plain(Reply::error(StatusCode::OK, "", ""))
            });
        }
        if let Some(n) = self.faults.expire_token_every {
            if n > 0 && self.api_seq % u64::from(n) == 0 {
                if let Some(t) = token {
                    self.tokens.remove(&t);
                }
                self.counters.unauthorized += 1;
                return Some(Processed::plain(unauthorized()));
            }
        }
        None
    }

    /// The endpoint's own validation and handler, for the user id `target`
    /// of the path ("" when none).
    fn endpoint(
        &mut self,
        ep: Endpoint,
        target: &str,
        query: &str,
        (headers, body): (&HeaderMap, &Bytes),
        at: DateTime<Utc>,
    ) -> Reply {
        match ep {
            Endpoint::ListUsers => self.list_users(query, at),
            Endpoint::AddUsers => self.add_users(headers, body),
            Endpoint::UpdateUser => self.update_user(target, headers, body, at),
            Endpoint::GetUser => self.get_user(target, query),
            Endpoint::UserTeams => self.user_teams(target, query),
            Endpoint::UserLayouts => self.user_layouts(query),
            Endpoint::OauthToken => unreachable!("OAuth is not an API route"),
        }
    }

    /// Whether (and how) the answer to a handled request is lost. The
    /// handler already ran: a write is applied whatever happens here.
    fn lost_answer(&mut self, reply: &Reply, write: bool) -> Option<LostAnswer> {
        let f = &self.faults;
        let (truncate, reset, hang) = (f.truncate_rate, f.write_reset_rate, f.write_hang_rate);
        let write_truncate = f.write_truncate_rate;
        let mut hit = |rate: f64| rate > 0.0 && self.fault_rng.gen::<f64>() < rate;
        if reply.status == StatusCode::OK && hit(truncate) {
            return Some(LostAnswer::Truncate);
        }
        if !(write && reply.status.is_success()) {
            return None;
        }
        if reply.status == StatusCode::OK && hit(write_truncate) {
            Some(LostAnswer::Truncate)
        } else if hit(reset) {
            Some(LostAnswer::Reset)
        } else if hit(hang) {
            Some(LostAnswer::Hang)
        } else {
            None
        }
    }

    pub(super) fn record(&mut self, r: RecordedRequest) {
        if self.log.len() >= LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(r);
    }
}
