//! `/auth` (contract §2.2, plus refresh, logout everywhere, audit and user administration).
//! The auth service does the work; these handlers validate input, pass the caller's address
//! along for the audit, and shape the answers.

mod account;
mod audit;
mod tokens;
mod users;

use actix_web::web;
use gathering_proto::v1 as pb;
use serde::Serialize;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    tokens::login_form,
    tokens::login_json,
    account::register,
    tokens::refresh,
    account::me,
    tokens::verify,
    tokens::logout,
    tokens::logout_all,
    account::change_password,
    audit::blacklist_stats,
    audit::audit,
    users::list_users,
    users::get_user,
    users::update_user,
    users::admin_logout_all,
))]
pub(crate) struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/login", web::post().to(tokens::login_form))
        .route("/auth/login/json", web::post().to(tokens::login_json))
        .route("/auth/register", web::post().to(account::register))
        .route("/auth/refresh", web::post().to(tokens::refresh))
        .route("/auth/me", web::get().to(account::me))
        .route("/auth/verify", web::post().to(tokens::verify))
        .route("/auth/logout", web::post().to(tokens::logout))
        .route("/auth/logout-all", web::post().to(tokens::logout_all))
        .route(
            "/auth/change-password",
            web::post().to(account::change_password),
        )
        .route(
            "/auth/blacklist/stats",
            web::get().to(audit::blacklist_stats),
        )
        .route("/auth/audit", web::get().to(audit::audit))
        .route("/auth/users", web::get().to(users::list_users))
        .route("/auth/users/{user_id}", web::get().to(users::get_user))
        .route("/auth/users/{user_id}", web::patch().to(users::update_user))
        .route(
            "/auth/users/{user_id}/logout-all",
            web::post().to(users::admin_logout_all),
        );
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

/// The default page size of the administrators' listings (audit events, users).
fn default_limit() -> u32 {
    50
}
