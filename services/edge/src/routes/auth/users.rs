//! User administration (admins only): listing and reading accounts, changing a user's role
//! or activation, and signing a user out everywhere.

use actix_web::{HttpResponse, web};
use gathering_proto::v1 as pb;
use serde::Deserialize;
use serde_json::json;

use super::{User, user_body};
use crate::auth::AuthUser;
use crate::auth::client::with_user;
use crate::error::{ApiError, Violations};
use crate::middleware::ClientMeta;
use crate::openapi::Detail;
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    #[serde(default = "super::default_limit")]
    limit: u32,
    #[serde(default)]
    offset: u32,
}

#[utoipa::path(
    get,
    path = "/auth/users",
    params(Page),
    responses(
        (status = 200, description = "`{users[User], total}`", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 403, description = "Admin access required", body = Detail),
    ),
)]
pub async fn list_users(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<Page>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let reply = state
        .auth
        .clone()
        .list_users(with_user(
            pb::ListUsersRequest {
                limit: q.limit.clamp(1, 500),
                offset: q.offset,
            },
            user.token(),
        ))
        .await?
        .into_inner();
    let users: Vec<User> = reply.users.iter().map(user_body).collect();
    Ok(HttpResponse::Ok().json(json!({"users": users, "total": reply.total})))
}

#[utoipa::path(
    get,
    path = "/auth/users/{user_id}",
    params(("user_id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 403, description = "Admin access required", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn get_user(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let u = state
        .auth
        .clone()
        .get_user(with_user(
            pb::GetUserRequest {
                user_id: path.into_inner(),
            },
            user.token(),
        ))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(user_body(&u)))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct UpdateUser {
    role: Option<String>,
    is_active: Option<bool>,
}

#[utoipa::path(
    patch,
    path = "/auth/users/{user_id}",
    params(("user_id" = String, Path, description = "User id")),
    request_body = UpdateUser,
    responses(
        (status = 200, description = "The user", body = User),
        (status = 400, description = "Refused", body = Detail),
        (status = 403, description = "Admin access required", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn update_user(
    state: web::Data<AppState>,
    meta: ClientMeta,
    user: AuthUser,
    path: web::Path<String>,
    body: web::Json<UpdateUser>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let target = path.into_inner();
    let b = body.into_inner();
    if b.role.is_none() && b.is_active.is_none() {
        return Err(ApiError::BadRequest("No updates provided".into()));
    }
    if let Some(role) = &b.role {
        Violations::new()
            .check(
                role == "admin" || role == "user",
                "role",
                "Input should be 'admin' or 'user'",
            )
            .finish()?;
    }
    let mut auth = state.auth.clone();
    let mut latest = None;
    if let Some(role) = b.role {
        latest = Some(
            auth.set_role(with_user(
                pb::SetRoleRequest {
                    user_id: target.clone(),
                    role,
                    actor_id: user.0.sub.clone(),
                    client: Some(meta.to_proto()),
                },
                user.token(),
            ))
            .await?
            .into_inner(),
        );
    }
    if let Some(active) = b.is_active {
        latest = Some(
            auth.set_active(with_user(
                pb::SetActiveRequest {
                    user_id: target.clone(),
                    is_active: active,
                    actor_id: user.0.sub.clone(),
                    client: Some(meta.to_proto()),
                },
                user.token(),
            ))
            .await?
            .into_inner(),
        );
    }
    let u = latest.ok_or_else(|| ApiError::BadRequest("No updates provided".into()))?;
    Ok(HttpResponse::Ok().json(user_body(&u)))
}

#[utoipa::path(
    post,
    path = "/auth/users/{user_id}/logout-all",
    params(("user_id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "`{message, user_id, revoked_refresh_tokens}`", body = Object),
        (status = 403, description = "Admin access required", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
pub async fn admin_logout_all(
    state: web::Data<AppState>,
    meta: ClientMeta,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let target = path.into_inner();
    let reply = state
        .auth
        .clone()
        .logout_all(with_user(
            pb::LogoutAllRequest {
                user_id: target.clone(),
                client: Some(meta.to_proto()),
                actor_id: user.0.sub.clone(),
            },
            user.token(),
        ))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(json!({"message": "All sessions logged out", "user_id": target, "revoked_refresh_tokens": reply.revoked_refresh_tokens})))
}
