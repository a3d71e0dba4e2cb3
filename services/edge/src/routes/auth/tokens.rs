//! Signing in and out: the token pairs the auth service issues (form and JSON login, refresh),
//! checking the caller's token, and revoking it (this session, or all of the caller's).

use actix_web::{HttpResponse, web};
use gathering_proto::v1 as pb;
use serde::Deserialize;
use serde_json::json;

use super::{TokenPair, token_body};
use crate::auth::client::with_user;
use crate::auth::{AuthUser, BearerUser};
use crate::error::ApiError;
use crate::middleware::ClientMeta;
use crate::openapi::Detail;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginForm {
    username: String,
    password: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginJson {
    email: String,
    password: String,
}

/// Both login forms end here: the auth service checks the password (and records the attempt
/// with the caller's address) and issues the pair.
async fn login(
    state: &AppState,
    meta: &ClientMeta,
    email: String,
    password: String,
) -> Result<HttpResponse, ApiError> {
    let reply = state
        .auth
        .clone()
        .login(pb::LoginRequest {
            email,
            password,
            client: Some(meta.to_proto()),
        })
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(token_body(reply)))
}

#[utoipa::path(
    post,
    path = "/auth/login",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The token pair (`token_type` is `bearer`)", body = TokenPair),
        (status = 400, description = "Refused", body = Detail),
    ),
)]
pub async fn login_form(
    state: web::Data<AppState>,
    meta: ClientMeta,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner();
    login(&state, &meta, form.username, form.password).await
}

#[utoipa::path(
    post,
    path = "/auth/login/json",
    request_body = LoginJson,
    responses(
        (status = 200, description = "The token pair", body = TokenPair),
        (status = 400, description = "Refused", body = Detail),
    ),
)]
pub async fn login_json(
    state: web::Data<AppState>,
    meta: ClientMeta,
    body: web::Json<LoginJson>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    login(&state, &meta, body.email, body.password).await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RefreshBody {
    refresh_token: String,
}

#[utoipa::path(
    post,
    path = "/auth/refresh",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "The token pair", body = TokenPair),
        (status = 400, description = "Refused", body = Detail),
    ),
)]
pub async fn refresh(
    state: web::Data<AppState>,
    meta: ClientMeta,
    body: web::Json<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    let reply = state
        .auth
        .clone()
        .refresh(pb::RefreshRequest {
            refresh_token: body.into_inner().refresh_token,
            client: Some(meta.to_proto()),
        })
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(token_body(reply)))
}

#[utoipa::path(
    post,
    path = "/auth/verify",
    responses(
        (status = 200, description = "`{valid:true, user_id, email, role, expires_at?}`", body = Object),
    ),
)]
pub async fn verify(user: BearerUser) -> HttpResponse {
    let c = user.claims;
    let expires_at = chrono::DateTime::from_timestamp(c.exp, 0).map(|t| t.to_rfc3339());
    HttpResponse::Ok().json(json!({
        "valid": true,
        "user_id": c.sub,
        "email": c.email,
        "role": c.role,
        "expires_at": expires_at,
    }))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct LogoutBody {
    #[serde(default)]
    refresh_token: Option<String>,
}

#[utoipa::path(
    post,
    path = "/auth/logout",
    request_body = LogoutBody,
    responses(
        (status = 200, description = "`{message:\"Successfully logged out\", user_id}`; blacklists the token", body = Object),
        (status = 400, description = "Refused", body = Detail),
    ),
)]
pub async fn logout(
    state: web::Data<AppState>,
    meta: ClientMeta,
    user: BearerUser,
    body: Option<web::Json<LogoutBody>>,
) -> Result<HttpResponse, ApiError> {
    let c = user.claims;
    let refresh_token = body
        .and_then(|b| b.into_inner().refresh_token)
        .unwrap_or_default();
    state
        .auth
        .clone()
        .logout(with_user(
            pb::LogoutRequest {
                jti: c.jti.clone(),
                user_id: c.sub.clone(),
                expires_at: c.exp,
                refresh_token,
                client: Some(meta.to_proto()),
            },
            Some(&user.token),
        ))
        .await?;
    // This instance refuses the token at once, without waiting for the notification.
    state.verifier.revocations.revoke_token(c.jti, c.exp);
    Ok(HttpResponse::Ok().json(json!({"message": "Successfully logged out", "user_id": c.sub})))
}

#[utoipa::path(
    post,
    path = "/auth/logout-all",
    responses(
        (status = 200, description = "`{message, user_id, revoked_refresh_tokens}`", body = Object),
    ),
)]
pub async fn logout_all(
    state: web::Data<AppState>,
    meta: ClientMeta,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let sub = user.0.sub.clone();
    let reply = state
        .auth
        .clone()
        .logout_all(with_user(
            pb::LogoutAllRequest {
                user_id: sub.clone(),
                client: Some(meta.to_proto()),
                actor_id: sub.clone(),
            },
            user.token(),
        ))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(json!({
        "message": "All sessions logged out",
        "user_id": sub,
        "revoked_refresh_tokens": reply.revoked_refresh_tokens,
    })))
}
