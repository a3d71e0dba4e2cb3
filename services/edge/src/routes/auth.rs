//! `/auth` (contract §2.2, plus refresh, logout everywhere, audit and user administration).
//! The auth service does the work; these handlers validate input, pass the caller's address
//! along for the audit, and shape the answers.

use actix_web::{HttpResponse, web};
use gathering_proto::v1 as pb;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::client::with_user;
use crate::auth::{AuthUser, BearerUser};
use crate::error::{ApiError, FieldError, Violations};
use crate::middleware::ClientMeta;
use crate::openapi::Detail;
use crate::state::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    login_form,
    login_json,
    register,
    refresh,
    me,
    verify,
    logout,
    logout_all,
    change_password,
    blacklist_stats,
    audit,
    list_users,
    get_user,
    update_user,
    admin_logout_all,
))]
pub(crate) struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/login", web::post().to(login_form))
        .route("/auth/login/json", web::post().to(login_json))
        .route("/auth/register", web::post().to(register))
        .route("/auth/refresh", web::post().to(refresh))
        .route("/auth/me", web::get().to(me))
        .route("/auth/verify", web::post().to(verify))
        .route("/auth/logout", web::post().to(logout))
        .route("/auth/logout-all", web::post().to(logout_all))
        .route("/auth/change-password", web::post().to(change_password))
        .route("/auth/blacklist/stats", web::get().to(blacklist_stats))
        .route("/auth/audit", web::get().to(audit))
        .route("/auth/users", web::get().to(list_users))
        .route("/auth/users/{user_id}", web::get().to(get_user))
        .route("/auth/users/{user_id}", web::patch().to(update_user))
        .route(
            "/auth/users/{user_id}/logout-all",
            web::post().to(admin_logout_all),
        );
}

#[derive(Deserialize, utoipa::ToSchema)]
struct LoginForm {
    username: String,
    password: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct LoginJson {
    email: String,
    password: String,
}

/// A token pair (contract §2.2). Fields in alphabetical order, as the `json!` maps they replace
/// serialised them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    access_token: String,
    /// Seconds until the access token expires.
    expires_in: i64,
    refresh_expires_in: i64,
    refresh_token: String,
    /// `bearer`
    token_type: String,
}

fn token_body(pair: pb::TokenPair) -> TokenPair {
    TokenPair {
        access_token: pair.access_token,
        expires_in: pair.expires_in,
        refresh_expires_in: pair.refresh_expires_in,
        refresh_token: pair.refresh_token,
        token_type: pair.token_type,
    }
}

/// A user account (contract §2.2).
#[derive(Serialize, utoipa::ToSchema)]
pub struct User {
    /// RFC 3339; null when unknown (the bootstrap admin).
    created_at: Option<String>,
    email: String,
    id: String,
    is_active: bool,
    name: String,
    /// `user` or `admin`
    role: String,
}

pub fn user_body(u: &pb::User) -> User {
    User {
        created_at: (!u.created_at.is_empty()).then(|| u.created_at.clone()),
        email: u.email.clone(),
        id: u.id.clone(),
        is_active: u.is_active,
        name: u.name.clone(),
        role: u.role.clone(),
    }
}

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

async fn login_form(
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

async fn login_json(
    state: web::Data<AppState>,
    meta: ClientMeta,
    body: web::Json<LoginJson>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    login(&state, &meta, body.email, body.password).await
}

#[derive(Deserialize, utoipa::ToSchema)]
struct RegisterBody {
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

async fn register(
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

#[derive(Deserialize, utoipa::ToSchema)]
struct RefreshBody {
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

async fn refresh(
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

    get,

    path = "/auth/me",

    responses(

        (status = 200, description = "The caller. The bootstrap admin is `{id:\"admin\", name:\"Administrator\", role:\"admin\", is_active:true, created_at:null}`", body = User),

    ),

)]

async fn me(state: web::Data<AppState>, user: BearerUser) -> Result<HttpResponse, ApiError> {
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

#[utoipa::path(

    post,

    path = "/auth/verify",

    responses(

        (status = 200, description = "`{valid:true, user_id, email, role, expires_at?}`", body = Object),

    ),

)]

async fn verify(user: BearerUser) -> HttpResponse {
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
struct LogoutBody {
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

async fn logout(
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

async fn logout_all(
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

#[derive(Deserialize, utoipa::ToSchema)]
struct ChangePasswordBody {
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

async fn change_password(
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

#[utoipa::path(

    get,

    path = "/auth/blacklist/stats",

    responses(

        (status = 200, description = "`{cache_size, cache_max_size:10000, db_active_tokens}`", body = Object),

    ),

)]

async fn blacklist_stats(
    state: web::Data<AppState>,
    user: BearerUser,
) -> Result<HttpResponse, ApiError> {
    if !user.claims.is_admin() {
        return Err(ApiError::Forbidden("Admin access required".into()));
    }
    let db = state
        .auth
        .clone()
        .blacklist_stats(with_user(pb::BlacklistStatsRequest {}, Some(&user.token)))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(json!({
        "cache_size": state.verifier.revocations.len(),
        "cache_max_size": Value::Null,
        "db_active_tokens": db.db_active_tokens,
    })))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    event_type: Option<String>,
    user_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
    #[serde(default = "default_limit")]
    limit: u32,
    #[serde(default)]
    offset: u32,
}

fn default_limit() -> u32 {
    50
}

#[utoipa::path(

    get,

    path = "/auth/audit",

    params(AuditQuery),

    responses(

        (status = 200, description = "`{events[{...}], total, limit, offset}`", body = Object),

        (status = 400, description = "Refused", body = Detail),

        (status = 403, description = "Admin access required", body = Detail),

    ),

)]

async fn audit(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let q = q.into_inner();
    if !(1..=500).contains(&q.limit) {
        return Err(ApiError::Validation(vec![FieldError::query(
            "limit",
            "Input should be between 1 and 500",
        )]));
    }
    let reply = state
        .auth
        .clone()
        .list_audit_events(with_user(
            pb::ListAuditEventsRequest {
                event_type: q.event_type.unwrap_or_default(),
                user_id: q.user_id.unwrap_or_default(),
                since: q.since.unwrap_or_default(),
                until: q.until.unwrap_or_default(),
                limit: q.limit,
                offset: q.offset,
            },
            user.token(),
        ))
        .await?
        .into_inner();
    let events: Vec<Value> = reply
        .events
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "event_type": e.event_type,
                "severity": e.severity,
                "user_id": (!e.user_id.is_empty()).then_some(&e.user_id),
                "ip_address": (!e.ip_address.is_empty()).then_some(&e.ip_address),
                "user_agent": (!e.user_agent.is_empty()).then_some(&e.user_agent),
                "message": e.message,
                "details": serde_json::from_str::<Value>(&e.details_json).unwrap_or(Value::Null),
                "request_id": (!e.request_id.is_empty()).then_some(&e.request_id),
                "created_at": e.created_at,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(
        json!({"events": events, "total": reply.total, "limit": q.limit, "offset": q.offset}),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Page {
    #[serde(default = "default_limit")]
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

async fn list_users(
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

async fn get_user(
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
struct UpdateUser {
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

async fn update_user(
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

async fn admin_logout_all(
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
