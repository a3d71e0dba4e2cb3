//! Security monitoring for administrators: the audit log of authentication events and the
//! state of the token blacklist.

use actix_web::{HttpResponse, web};
use gathering_proto::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::client::with_user;
use crate::auth::{AuthUser, BearerUser};
use crate::error::{ApiError, FieldError};
use crate::openapi::Detail;
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/auth/blacklist/stats",
    responses(
        (status = 200, description = "`{cache_size, cache_max_size:10000, db_active_tokens}`", body = Object),
    ),
)]
pub async fn blacklist_stats(
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
pub struct AuditQuery {
    event_type: Option<String>,
    user_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
    #[serde(default = "super::default_limit")]
    limit: u32,
    #[serde(default)]
    offset: u32,
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
pub async fn audit(
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
