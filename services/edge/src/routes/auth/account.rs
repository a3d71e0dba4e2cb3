//! The caller's own account: signing up, reading who they are, changing their password.

use actix_web::{HttpResponse, web};
use gathering_proto::v1 as pb;
use serde::Deserialize;
use serde_json::json;

use super::{User, user_body};
use crate::auth::client::with_user;
use crate::auth::{AuthUser, BearerUser};
use crate::error::{ApiError, Violations};
use crate::middleware::ClientMeta;
use crate::openapi::Detail;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RegisterBody {
    email: String,
    password: String,
    name: String,
}

#[utoipa::path(
    post,
    path = "/auth/register",
    request_body = RegisterBody,
    responses(
        (status = 201, description = "The new user (`role` is `user`)", body = User),
        (status = 400, description = "Refused", body = Detail),
    ),
)]
pub async fn register(
    state: web::Data<AppState>,
    meta: ClientMeta,
    body: web::Json<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let plen = b.password.chars().count();
    let nlen = b.name.trim().chars().count();
    Violations::new()
        .check(
            gathering_core::email::is_valid(b.email.trim()),
            "email",
            "value is not a valid email address",
        )
        .check(
            (8..=128).contains(&plen),
            "password",
            "String should have at least 8 and at most 128 characters",
        )
        .check(
            (1..=100).contains(&nlen),
            "name",
            "String should have at least 1 and at most 100 characters",
        )
        .finish()?;
    let user = state
        .auth
        .clone()
        .register(pb::RegisterRequest {
            email: b.email,
            password: b.password,
            name: b.name,
            client: Some(meta.to_proto()),
        })
        .await?
        .into_inner();
    Ok(HttpResponse::Created().json(user_body(&user)))
}

#[utoipa::path(
    get,
    path = "/auth/me",
    responses(
        (status = 200, description = "The caller. The bootstrap admin is `{id:\"admin\", name:\"Administrator\", role:\"admin\", is_active:true, created_at:null}`", body = User),
    ),
)]
pub async fn me(state: web::Data<AppState>, user: BearerUser) -> Result<HttpResponse, ApiError> {
    let u = state
        .auth
        .clone()
        .get_user(with_user(
            pb::GetUserRequest {
                user_id: user.claims.sub.clone(),
            },
            Some(&user.token),
        ))
        .await
        .map_err(|s| match s.code() {
            tonic::Code::NotFound | tonic::Code::Unauthenticated => {
                ApiError::Unauthorized("User is inactive or does not exist".into())
            }
            _ => ApiError::from(s),
        })?
        .into_inner();
    if !u.is_active {
        return Err(ApiError::Unauthorized(
            "User is inactive or does not exist".into(),
        ));
    }
    Ok(HttpResponse::Ok().json(user_body(&u)))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ChangePasswordBody {
    current_password: String,
    new_password: String,
}

#[utoipa::path(
    post,
    path = "/auth/change-password",
    request_body = ChangePasswordBody,
    responses(
        (status = 200, description = "`{message, user_id}`", body = Object),
        (status = 400, description = "Refused", body = Detail),
    ),
)]
pub async fn change_password(
    state: web::Data<AppState>,
    meta: ClientMeta,
    user: AuthUser,
    body: web::Json<ChangePasswordBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    Violations::new()
        .check(
            (8..=128).contains(&b.new_password.chars().count()),
            "new_password",
            "String should have at least 8 and at most 128 characters",
        )
        .finish()?;
    state
        .auth
        .clone()
        .change_password(with_user(
            pb::ChangePasswordRequest {
                user_id: user.0.sub.clone(),
                current_password: b.current_password,
                new_password: b.new_password,
                client: Some(meta.to_proto()),
            },
            user.token(),
        ))
        .await?;
    Ok(HttpResponse::Ok()
        .json(json!({"message": "Password changed; please log in again", "user_id": user.0.sub})))
}
