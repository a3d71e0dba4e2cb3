//! The authentication middleware: every route except the public ones needs a valid access
//! token (contract §1, §3). On failure: 401 with `WWW-Authenticate: Bearer`, and an audit row
//! (a browser navigating to a page is sent to `/login` instead). Without an `Authorization`
//! header the browser's session cookie is accepted, under the CSRF rule of `csrf.rs`.

use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse, web};
use gathering_core::claims::AccessClaims;
use serde_json::json;

use super::audit_writer::Refusal;
use super::extract::{AuthUser, bearer_token};
use super::{csrf, session_cookie};
use crate::dashboard_files::{Access, Dashboard};
use crate::login::next_path;
use crate::middleware::ClientMeta;
use crate::state::AppState;

/// Routes anyone may call (with or without the `/api` prefix).
pub fn is_public(method: &Method, path: &str) -> bool {
    if *method == Method::OPTIONS {
        return true;
    }
    let p = path
        .strip_prefix("/api")
        .filter(|p| p.is_empty() || p.starts_with('/'))
        .unwrap_or(path);
    matches!(
        p,
        "" | "/" | "/health" | "/health/ready" | "/health/live" | "/metrics" | "/auth/login" | "/auth/login/json"
            | "/auth/register" | "/auth/refresh" | "/openapi.json"
    ) || p.starts_with("/docs")
        || p.starts_with("/redoc")
        // WebSockets check `?token=` themselves (close 1008), except `/ws/stats`.
        || ((p == "/ws" || p.starts_with("/ws/")) && p != "/ws/stats")
        // Cookie sessions and the login page check what they need themselves.
        || crate::routes::session::is_public(method, path)
        || crate::login::is_public(path)
}

/// The caller in no-auth development mode.
pub fn development_user() -> AccessClaims {
    AccessClaims {
        iss: "gathering".into(),
        aud: "gathering-api".into(),
        sub: "dev".into(),
        email: "dev@localhost".into(),
        role: "admin".into(),
        iat: 0,
        iat_ms: 0,
        exp: i64::MAX,
        jti: "development".into(),
    }
}

/// What a request is to a served dashboard (`None` without one, or when it is for the API).
fn browser_access(req: &ServiceRequest) -> Option<Access> {
    req.app_data::<web::Data<Dashboard>>()?
        .access(req.method(), req.path(), req.headers())
}

/// A refused request: a browser navigating to a page is sent to the login page (which brings
/// it back here), anything else gets the contract's 401.
fn refused(req: &ServiceRequest, detail: &str, login_error: Option<&str>) -> HttpResponse {
    if !crate::login::is_browser_navigation(req.method(), req.headers()) {
        return unauthorized(detail);
    }
    let wanted = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let next = next_path::or_root(Some(wanted));
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, next_path::login_url(next, login_error)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn unauthorized(detail: &str) -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header(("WWW-Authenticate", "Bearer"))
        .json(json!({ "detail": detail }))
}

pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(req
            .into_response(HttpResponse::InternalServerError().finish())
            .map_into_right_body());
    };
    if state.config.disable_auth {
        req.extensions_mut()
            .insert(AuthUser(development_user(), None));
        return Ok(next.call(req).await?.map_into_left_body());
    }
    // A served dashboard's files are public, its pages need a session (browser_access).
    let public = match browser_access(&req) {
        Some(Access::Asset) => true,
        Some(Access::Page) => false,
        None => is_public(req.method(), req.path()),
    };
    if public {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let refusal = |event: &'static str, message: String, req: &ServiceRequest| {
        let meta = ClientMeta::of(req, &state.config.trusted_proxies);
        state.audit.record(Refusal {
            event_type: event,
            message,
            ip: meta.ip,
            user_agent: meta.user_agent,
            request_id: meta.request_id,
        });
    };
    // A browser loading a page with an expired (or no) access cookie but a live refresh
    // cookie: the session resumes (the refresh token rotates) instead of a trip through the
    // login page, so a dashboard only has to reload on a 401.
    if let Some((claims, pair)) = session_cookie::resume_navigation(&req, &state).await {
        req.extensions_mut().insert(AuthUser(
            claims,
            Some(Arc::from(pair.access_token.as_str())),
        ));
        let mut res = next.call(req).await?;
        session_cookie::append(
            res.headers_mut(),
            &pair,
            state.config.browser.secure_cookies,
        );
        return Ok(res.map_into_left_body());
    }
    // Without an `Authorization` header, a browser's session cookie (auth/session_cookie.rs).
    let mut by_cookie = false;
    let token = match bearer_token(req.headers()) {
        None => match session_cookie::access_token(req.headers()) {
            Some(t) => {
                by_cookie = true;
                t.to_owned()
            }
            None => {
                refusal(
                    "auth_missing_token",
                    format!("Missing auth token for {}", req.path()),
                    &req,
                );
                let res = refused(&req, "Missing authentication token", None);
                return Ok(req.into_response(res).map_into_right_body());
            }
        },
        Some(Err(())) => {
            refusal(
                "auth_invalid_token",
                format!("Invalid authentication header for {}", req.path()),
                &req,
            );
            return Ok(req
                .into_response(unauthorized("Invalid authentication header format"))
                .map_into_right_body());
        }
        Some(Ok(token)) => token.to_owned(),
    };
    if by_cookie
        && !csrf::is_safe(req.method())
        && !csrf::origin_allowed(req.headers(), &state.config)
    {
        tracing::info!(path = %req.path(), "cookie request refused: origin not allowed");
        return Ok(req
            .into_response(
                HttpResponse::Forbidden()
                    .json(json!({"detail": "Cross-site request refused: Origin is not allowed"})),
            )
            .map_into_right_body());
    }
    match state.verifier.verify(&token).await {
        Ok(claims) => {
            req.extensions_mut()
                .insert(AuthUser(claims, Some(Arc::from(token))));
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(e) => {
            refusal(
                "auth_invalid_token",
                format!("Invalid or expired token for {} ({e})", req.path()),
                &req,
            );
            let res = refused(
                &req,
                "Invalid or expired token",
                by_cookie.then_some("expired"),
            );
            Ok(req.into_response(res).map_into_right_body())
        }
    }
}
