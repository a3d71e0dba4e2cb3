//! The authentication middleware: every route except the public ones needs a valid access
//! token (contract §1, §3). On failure: 401 with `WWW-Authenticate: Bearer`, and an audit row.

use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse, web};
use gathering_core::claims::AccessClaims;
use serde_json::json;

use super::audit_writer::Refusal;
use super::extract::{AuthUser, bearer_token};
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
    if is_public(req.method(), req.path()) {
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
    let token = match bearer_token(req.headers()) {
        None => {
            refusal(
                "auth_missing_token",
                format!("Missing auth token for {}", req.path()),
                &req,
            );
            return Ok(req
                .into_response(unauthorized("Missing authentication token"))
                .map_into_right_body());
        }
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
            Ok(req
                .into_response(unauthorized("Invalid or expired token"))
                .map_into_right_body())
        }
    }
}
