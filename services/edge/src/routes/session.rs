//! `/auth/session`: cookie sessions for browsers (docs/security.md, "Browser sessions").
//! `POST` logs in like `POST /auth/login/json` (same auth-service call, so the same tokens,
//! throttling and audit) and puts the tokens in `HttpOnly` cookies instead of the body; a form
//! post (the `/login` page) is answered with a redirect to its `next` path. `GET` answers the
//! signed-in user. `POST /auth/session/refresh` rotates the refresh token like
//! `POST /auth/refresh`. `DELETE` revokes the access and refresh tokens like `POST
//! /auth/logout` and clears the cookies.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use gathering_core::claims::AccessClaims;
use gathering_proto::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::client::with_user;
use crate::auth::session_cookie::{self, ACCESS_COOKIE, REFRESH_COOKIE};
use crate::auth::{AuthUser, csrf};
use crate::error::ApiError;
use crate::login::next_path;
use crate::middleware::ClientMeta;
use crate::openapi::Detail;
use crate::routes::auth::user_body;
use crate::state::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(paths(create, current, end, refresh))]
pub(crate) struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/session", web::post().to(create))
        .route("/auth/session", web::get().to(current))
        .route("/auth/session", web::delete().to(end))
        .route("/auth/session/refresh", web::post().to(refresh));
}

/// Paths the authentication middleware lets through: they read the cookies themselves (a login
/// has none yet; refresh and logout must work with an expired access token).
pub fn is_public(method: &actix_web::http::Method, path: &str) -> bool {
    use actix_web::http::Method;
    let p = path.strip_prefix("/api").unwrap_or(path);
    (p == "/auth/session" && (*method == Method::POST || *method == Method::DELETE))
        || (p == "/auth/session/refresh" && *method == Method::POST)
}

#[derive(Deserialize, utoipa::ToSchema)]
struct Credentials {
    email: String,
    password: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct FormCredentials {
    email: String,
    password: String,
    next: Option<String>,
}

fn forbidden_origin() -> ApiError {
    ApiError::Forbidden("Cross-site request refused: Origin is not allowed".into())
}

/// The response with the session cookies of `pair` set.
fn with_cookies(mut res: HttpResponse, pair: &pb::TokenPair, secure: bool) -> HttpResponse {
    session_cookie::append(res.headers_mut(), pair, secure);
    res
}

fn with_cleared_cookies(mut res: HttpResponse, secure: bool) -> HttpResponse {
    for name in [ACCESS_COOKIE, REFRESH_COOKIE] {
        res.headers_mut()
            .append(header::SET_COOKIE, session_cookie::clear(name, secure));
    }
    res
}

/// The user of `claims`: the auth service's record when it has one (the built-in admin has
/// none), else what the token says.
async fn user_of(state: &AppState, claims: &AccessClaims, token: Option<&str>) -> Value {
    let found = state
        .auth
        .clone()
        .get_user(with_user(
            pb::GetUserRequest {
                user_id: claims.sub.clone(),
            },
            token,
        ))
        .await;
    match found {
        Ok(u) => json!(user_body(&u.into_inner())),
        Err(_) => json!({
            "id": claims.sub,
            "email": claims.email,
            "name": Value::Null,
            "role": claims.role,
            "is_active": true,
            "created_at": Value::Null,
        }),
    }
}

/// The body of a successful login or refresh: the user and the lifetimes, never the tokens
/// (scripts of the page have no use for them, and an XSS could not steal them from here).
async fn session_body(state: &AppState, pair: &pb::TokenPair) -> Result<Value, ApiError> {
    let claims = state
        .verifier
        .verify(&pair.access_token)
        .await
        .map_err(|e| ApiError::internal(format!("fresh token refused: {e}")))?;
    Ok(json!({
        "user": user_of(state, &claims, Some(&pair.access_token)).await,
        "expires_in": pair.expires_in,
        "refresh_expires_in": pair.refresh_expires_in,
    }))
}

async fn login(
    state: &AppState,
    meta: &ClientMeta,
    email: String,
    password: String,
) -> Result<pb::TokenPair, ApiError> {
    Ok(state
        .auth
        .clone()
        .login(pb::LoginRequest {
            email,
            password,
            client: Some(meta.to_proto()),
        })
        .await?
        .into_inner())
}

/// Signs in and sets the session cookies (`gathering_access`, `gathering_refresh`: HttpOnly,
/// SameSite=Strict, Secure outside development). JSON answers `{user, expires_in,
/// refresh_expires_in}` (no token in the body); the login page's form is answered with a 303
/// to its `next` path, or back to `/login?error=…`. A present `Origin` must be allowed (login
/// CSRF).
#[utoipa::path(post, path = "/auth/session",
    request_body(content(
        (Credentials = "application/json"),
        (FormCredentials = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "`{user, expires_in, refresh_expires_in}`; the cookies are set", body = Value),
        (status = 303, description = "Form login: to `next`, or back to `/login?error=…`"),
        (status = 401, description = "Incorrect email or password", body = Detail),
        (status = 403, description = "Cross-site request refused: Origin is not allowed", body = Detail),
    ))]
async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: ClientMeta,
    body: web::Either<web::Json<Credentials>, web::Form<FormCredentials>>,
) -> Result<HttpResponse, ApiError> {
    let secure = state.config.browser.secure_cookies;
    let origin_ok = csrf::login_origin_allowed(req.headers(), &state.config);
    match body {
        web::Either::Left(json) => {
            if !origin_ok {
                return Err(forbidden_origin());
            }
            let c = json.into_inner();
            let pair = login(&state, &meta, c.email, c.password).await?;
            let body = session_body(&state, &pair).await?;
            Ok(with_cookies(HttpResponse::Ok().json(body), &pair, secure))
        }
        // The login page's form: every outcome is a page, so answers are redirects (303: the
        // browser follows with a GET).
        web::Either::Right(form) => {
            let f = form.into_inner();
            let next = next_path::or_root(f.next.as_deref()).to_owned();
            let back = |code: &str| {
                HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, next_path::login_url(&next, Some(code))))
                    .finish()
            };
            if !origin_ok {
                return Ok(back("origin"));
            }
            match login(&state, &meta, f.email, f.password).await {
                Ok(pair) => Ok(with_cookies(
                    HttpResponse::SeeOther()
                        .insert_header((header::LOCATION, next.as_str()))
                        .finish(),
                    &pair,
                    secure,
                )),
                Err(ApiError::Unauthorized(_) | ApiError::BadRequest(_)) => Ok(back("credentials")),
                Err(ApiError::Locked { .. } | ApiError::TooManyRequests(_)) => Ok(back("locked")),
                Err(e) => {
                    tracing::warn!(error = %e, "cookie login failed");
                    Ok(back("unavailable"))
                }
            }
        }
    }
}

/// The signed-in user (by session cookie or bearer token).
#[utoipa::path(get, path = "/auth/session", responses(
    (status = 200, description = "`{user}`", body = Value),
))]
async fn current(state: web::Data<AppState>, user: AuthUser) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "user": user_of(&state, &user.0, user.token()).await }))
}

/// Rotates the session's refresh token (the `gathering_refresh` cookie) and sets new cookies.
/// Needs an allowed `Origin` or `Sec-Fetch-Site: same-origin` (CSRF rule).
#[utoipa::path(post, path = "/auth/session/refresh", responses(
    (status = 200, description = "`{user, expires_in, refresh_expires_in}`; new cookies set", body = Value),
    (status = 401, description = "No session, or the refresh token is expired, revoked or reused (the cookies are cleared)", body = Detail),
    (status = 403, description = "Cross-site request refused: Origin is not allowed", body = Detail),
))]
async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: ClientMeta,
) -> Result<HttpResponse, ApiError> {
    let secure = state.config.browser.secure_cookies;
    if !csrf::origin_allowed(req.headers(), &state.config) {
        return Err(forbidden_origin());
    }
    let Some(token) = session_cookie::refresh_token(req.headers()) else {
        return Err(ApiError::Unauthorized("No session".into()));
    };
    let rotated = state
        .auth
        .clone()
        .refresh(pb::RefreshRequest {
            refresh_token: token.to_owned(),
            client: Some(meta.to_proto()),
        })
        .await;
    match rotated {
        Ok(pair) => {
            let pair = pair.into_inner();
            let body = session_body(&state, &pair).await?;
            Ok(with_cookies(HttpResponse::Ok().json(body), &pair, secure))
        }
        // A refused refresh token (expired, revoked, reused) ends the browser's session.
        Err(s) if s.code() == tonic::Code::Unauthenticated => Ok(with_cleared_cookies(
            ApiError::from(s).error_response(),
            secure,
        )),
        Err(s) => Err(ApiError::from(s)),
    }
}

/// Revokes the session's tokens (the access token's `jti` and the refresh token, as `POST
/// /auth/logout` does). With an expired access token, the refresh token is first exchanged for
/// a fresh pair so the logout has a token to act with; both are then revoked.
async fn revoke(
    state: &AppState,
    meta: &ClientMeta,
    access: Option<&str>,
    refresh: Option<&str>,
) -> Result<(), ApiError> {
    let mut access = access.map(str::to_owned);
    let mut refresh = refresh.map(str::to_owned);
    let mut claims = match &access {
        Some(t) => state.verifier.verify(t).await.ok(),
        None => None,
    };
    if claims.is_none() {
        let Some(r) = refresh.take() else {
            return Ok(()); // nothing valid left to revoke
        };
        let pair = match state
            .auth
            .clone()
            .refresh(pb::RefreshRequest {
                refresh_token: r,
                client: Some(meta.to_proto()),
            })
            .await
        {
            Ok(p) => p.into_inner(),
            Err(s) if s.code() == tonic::Code::Unauthenticated => return Ok(()),
            Err(s) => return Err(s.into()),
        };
        claims = Some(
            state
                .verifier
                .verify(&pair.access_token)
                .await
                .map_err(|e| ApiError::internal(format!("fresh token refused: {e}")))?,
        );
        access = Some(pair.access_token);
        refresh = Some(pair.refresh_token);
    }
    let (Some(c), Some(token)) = (claims, access) else {
        return Ok(());
    };
    state
        .auth
        .clone()
        .logout(with_user(
            pb::LogoutRequest {
                jti: c.jti.clone(),
                user_id: c.sub.clone(),
                expires_at: c.exp,
                refresh_token: refresh.unwrap_or_default(),
                client: Some(meta.to_proto()),
            },
            Some(&token),
        ))
        .await?;
    // This instance refuses the token at once, without waiting for the notification.
    state.verifier.revocations.revoke_token(c.jti, c.exp);
    Ok(())
}

/// Signs out: revokes the session's access and refresh tokens and clears the cookies. With
/// session cookies, needs an allowed `Origin` or `Sec-Fetch-Site: same-origin` (CSRF rule).
#[utoipa::path(delete, path = "/auth/session", responses(
    (status = 200, description = "`{message}`; the cookies are cleared", body = Value),
    (status = 403, description = "Cross-site request refused: Origin is not allowed", body = Detail),
))]
async fn end(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: ClientMeta,
) -> Result<HttpResponse, ApiError> {
    let secure = state.config.browser.secure_cookies;
    let headers = req.headers();
    if session_cookie::present(headers) && !csrf::origin_allowed(headers, &state.config) {
        return Err(forbidden_origin());
    }
    let result = revoke(
        &state,
        &meta,
        session_cookie::access_token(headers),
        session_cookie::refresh_token(headers),
    )
    .await;
    // The cookies go whatever happened: the browser is signed out either way; a failed
    // revocation is still reported.
    let res = match result {
        Ok(()) => HttpResponse::Ok().json(json!({ "message": "Successfully logged out" })),
        Err(e) => e.error_response(),
    };
    let mut res = with_cleared_cookies(res, secure);
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}
