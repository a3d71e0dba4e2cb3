//! Extractors: who is calling.
//!
//! `AuthUser` is the caller the middleware verified (or the local admin in no-auth dev mode).
//! `BearerUser` verifies the `Authorization` header itself, as the contract's
//! `/auth/me|verify|logout|blacklist/stats` do even when auth is disabled ("Not authenticated",
//! "Could not validate credentials").

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use gathering_core::claims::AccessClaims;

use crate::error::ApiError;
use crate::state::AppState;

/// The verified caller, and the access token it presented (`None` in no-auth development
/// mode): calls to the auth service made for this user carry the token, so the auth service
/// checks the user itself rather than trusting the edge.
#[derive(Debug, Clone)]
pub struct AuthUser(pub AccessClaims, pub Option<Arc<str>>);

impl AuthUser {
    /// The access token, for requests the auth service checks on the user's behalf.
    pub fn token(&self) -> Option<&str> {
        self.1.as_deref()
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.0.is_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden("Admin access required".into()))
        }
    }
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            req.extensions()
                .get::<AuthUser>()
                .cloned()
                .ok_or_else(|| ApiError::Unauthorized("Missing authentication token".into())),
        )
    }
}

/// The claims and raw token of a verified `Authorization: Bearer` header.
#[derive(Debug, Clone)]
pub struct BearerUser {
    pub claims: AccessClaims,
    pub token: String,
}

impl FromRequest for BearerUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let header = bearer_token(req.headers()).map(|r| r.map(str::to_owned));
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
            let token = match header {
                Some(Ok(t)) => t,
                Some(Err(())) | None => {
                    return Err(ApiError::Unauthorized("Not authenticated".into()));
                }
            };
            let claims = state
                .verifier
                .verify(&token)
                .await
                .map_err(|_| ApiError::Unauthorized("Could not validate credentials".into()))?;
            Ok(BearerUser { claims, token })
        })
    }
}

/// The token of an `Authorization` header: `None` when absent, `Err` when not `Bearer <token>`.
pub fn bearer_token(headers: &actix_web::http::header::HeaderMap) -> Option<Result<&str, ()>> {
    let value = headers.get(actix_web::http::header::AUTHORIZATION)?;
    let value = match value.to_str() {
        Ok(v) => v,
        Err(_) => return Some(Err(())),
    };
    let mut parts = value.splitn(2, ' ');
    match (parts.next(), parts.next()) {
        (Some(scheme), Some(token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Some(Ok(token.trim()))
        }
        _ => Some(Err(())),
    }
}
