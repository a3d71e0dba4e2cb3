//! `/settings/gateway-keys` and `/settings/gateway-teams`: virtual keys of the LLM gateway's
//! OpenAI-compatible HTTP API (models, expiry, budget, per-minute limits) and team budgets.
//! Administrators only, reading included (the list says who may spend what).
//!
//! The gateway owns the tables and generates the keys: these routes validate the input and call
//! its gRPC API. A key is shown once, in the answer that created or rotated it; the gateway
//! keeps only its SHA-256. Revocation and rotation apply on every gateway within milliseconds.
//! See docs/gateway.md.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use gathering_proto::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError, Violations};
use crate::openapi::Detail;

/// 200 description of a key.
const KEY: &str = "The key: `id`, `name`, `owner`, `team`, `key_hint`, `models`, `expires_at`, `budget` {amount, period, spent, remaining}, `limits` {rpm, tpm}, `spend` {today_usd, month_usd}, `status`, `created_by`, `created_at`, `rotated_at`, `revoked_at`";
/// 200 description of a key with its secret.
const SECRET: &str = "The key and, in `key`, its secret (shown only this once)";
/// 200 description of a team.
const TEAM: &str = "The team: `team`, `budget` {amount, period, spent, remaining}, `spend` {today_usd, month_usd}, `keys`";
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
pub(super) struct BudgetIn {
    /// USD, more than 0 and at most 1000000000.
    amount: f64,
    /// `daily` or `monthly`.
    period: String,
}

#[derive(Deserialize, ToSchema)]
pub(super) struct LimitsIn {
    /// Requests per minute, 1 to 2147483647.
    rpm: Option<i64>,
    /// Tokens per minute, 1 to 2147483647.
    tpm: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
pub(super) struct NewKey {
    /// 1 to 100 characters.
    name: String,
    /// At most 200 characters.
    owner: Option<String>,
    /// 1 to 64 letters, digits, `.`, `_` or `-`, starting with a letter or digit.
    team: Option<String>,
    /// 1 to 64 model patterns such as `openai/*` (default every model).
    models: Option<Vec<String>>,
    /// An RFC 3339 time in the future.
    expires_at: Option<String>,
    budget: Option<BudgetIn>,
    /// At least one of rpm and tpm.
    limits: Option<LimitsIn>,
}

#[derive(Deserialize, ToSchema)]
pub(super) struct TeamIn {
    /// The team's budget; absent or null for none.
    budget: Option<BudgetIn>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// List revoked keys too (default false).
    include_revoked: Option<bool>,
}

/// `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`.
fn valid_team(team: &str) -> bool {
    let b = team.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

fn check_budget(v: &mut Violations, field: &str, b: &BudgetIn) -> Option<pb::Budget> {
    let amount_ok = b.amount.is_finite() && b.amount > 0.0 && b.amount <= 1e9;
    let period_ok = matches!(b.period.as_str(), "daily" | "monthly");
    v.check(
        amount_ok,
        &format!("{field}.amount"),
        "must be more than 0 and at most 1000000000 (USD)",
    );
    v.check(
        period_ok,
        &format!("{field}.period"),
        "must be daily or monthly",
    );
    (amount_ok && period_ok).then(|| pb::Budget {
        amount_usd: b.amount,
        period: b.period.clone(),
    })
}

fn text_ok(s: &str, max: usize) -> bool {
    let n = s.chars().count();
    (1..=max).contains(&n) && !s.chars().any(char::is_control)
}

/// The gateway's request for `body`, or the contract's 422 listing every problem.
fn validate(body: NewKey, created_by: &str) -> Result<pb::CreateGatewayKeyRequest, ApiError> {
    let mut v = Violations::new();
    let name = body.name.trim().to_owned();
    v.check(text_ok(&name, 100), "name", "must be 1-100 characters");
    let owner = body.owner.unwrap_or_default();
    v.check(
        owner.is_empty() || text_ok(&owner, 200),
        "owner",
        "must be at most 200 characters",
    );
    let team = body.team.unwrap_or_default();
    v.check(
        team.is_empty() || valid_team(&team),
        "team",
        "must be 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit",
    );
    let models = body.models.unwrap_or_else(|| vec!["*".to_owned()]);
    v.check(
        (1..=64).contains(&models.len()),
        "models",
        "must list 1-64 patterns such as \"openai/*\" (omit it for every model)",
    );
    v.check(
        models
            .iter()
            .all(|m| text_ok(m, 200) && !m.chars().any(char::is_whitespace)),
        "models",
        "each pattern must be 1-200 characters without spaces",
    );
    let mut expires_at_ms = 0;
    if let Some(raw) = &body.expires_at {
        match DateTime::parse_from_rfc3339(raw) {
            Ok(t) if t.with_timezone(&Utc) > Utc::now() => {
                expires_at_ms = t.timestamp_millis();
            }
            Ok(_) => {
                v.push(FieldError::body("expires_at", "must be in the future"));
            }
            Err(_) => {
                v.push(FieldError::body(
                    "expires_at",
                    "must be an RFC 3339 time such as 2030-01-31T00:00:00Z",
                ));
            }
        }
    }
    let budget = body
        .budget
        .as_ref()
        .and_then(|b| check_budget(&mut v, "budget", b));
    let mut limits = None;
    if let Some(l) = &body.limits {
        let ok = |n: Option<i64>| n.is_none_or(|n| (1..=i64::from(i32::MAX)).contains(&n));
        v.check(ok(l.rpm), "limits.rpm", "must be between 1 and 2147483647");
        v.check(ok(l.tpm), "limits.tpm", "must be between 1 and 2147483647");
        v.check(
            l.rpm.is_some() || l.tpm.is_some(),
            "limits",
            "must set rpm, tpm or both (omit it for no limits)",
        );
        let n = |x: Option<i64>| x.and_then(|x| u32::try_from(x).ok()).unwrap_or(0);
        limits = Some(pb::KeyLimits {
            rpm: n(l.rpm),
            tpm: n(l.tpm),
        });
    }
    v.finish()?;
    Ok(pb::CreateGatewayKeyRequest {
        name,
        owner,
        team,
        models,
        expires_at_ms,
        budget,
        limits,
        created_by: created_by.chars().take(200).collect(),
    })
}

fn time(ms: i64) -> Value {
    if ms == 0 {
        return Value::Null;
    }
    DateTime::<Utc>::from_timestamp_millis(ms).map_or(Value::Null, |t| {
        json!(t.to_rfc3339_opts(SecondsFormat::Millis, true))
    })
}

fn nonempty(s: &str) -> Value {
    if s.is_empty() { Value::Null } else { json!(s) }
}

fn budget_json(b: Option<&pb::Budget>, today: f64, month: f64) -> Value {
    b.map_or(Value::Null, |b| {
        let spent = if b.period == "daily" { today } else { month };
        json!({
            "amount": b.amount_usd,
            "period": b.period,
            "spent": spent,
            "remaining": (b.amount_usd - spent).max(0.0),
        })
    })
}

fn key_json(k: &pb::GatewayKey) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "owner": nonempty(&k.owner),
        "team": nonempty(&k.team),
        "key_hint": k.key_hint,
        "models": k.models,
        "expires_at": time(k.expires_at_ms),
        "budget": budget_json(k.budget.as_ref(), k.spent_today_usd, k.spent_month_usd),
        "limits": k.limits.as_ref().map_or(Value::Null, |l| json!({
            "rpm": (l.rpm > 0).then_some(l.rpm),
            "tpm": (l.tpm > 0).then_some(l.tpm),
        })),
        "spend": {"today_usd": k.spent_today_usd, "month_usd": k.spent_month_usd},
        "status": k.status,
        "created_by": nonempty(&k.created_by),
        "created_at": time(k.created_at_ms),
        "rotated_at": time(k.rotated_at_ms),
        "revoked_at": time(k.revoked_at_ms),
    })
}

fn secret_json(s: pb::GatewayKeySecret) -> Result<Value, ApiError> {
    let key = s
        .key
        .ok_or_else(|| ApiError::internal("gateway answered without the key"))?;
    let mut v = key_json(&key);
    v["key"] = json!(s.secret);
    Ok(v)
}

fn team_json(t: &pb::GatewayTeam) -> Value {
    json!({
        "team": t.team,
        "budget": budget_json(t.budget.as_ref(), t.spent_today_usd, t.spent_month_usd),
        "spend": {"today_usd": t.spent_today_usd, "month_usd": t.spent_month_usd},
        "keys": t.keys,
    })
}

fn key_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::Validation(vec![FieldError::at("path", "id", "must be a key id")]))
}

/// Creates a virtual key of the gateway's HTTP API (administrators): 201 with the secret.
#[utoipa::path(
    post,
    path = "/settings/gateway-keys",
    request_body = NewKey,
    responses(
        (status = 201, description = SECRET, body = Object),
        (status = 400, description = "Refused by the gateway", body = Detail),
        (status = 403, description = "Administrators only", body = Detail),
        (status = 503, description = "The LLM gateway is unavailable", body = Detail),
    ),
)]
pub(super) async fn create_key(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<NewKey>,
) -> Result<HttpResponse, ApiError> {
    // Keys spend the providers' money: an administrator's to hand out.
    user.require_admin()?;
    let req = validate(body.into_inner(), &user.0.email)?;
    let created = state.llm.grpc().create_gateway_key(req).await?.into_inner();
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(secret_json(created)?))
}

/// The virtual keys (administrators), secrets never included.
#[utoipa::path(
    get,
    path = "/settings/gateway-keys",
    params(ListQuery),
    responses(
        (status = 200, description = "`{keys, total}`, each key as `POST /settings/gateway-keys/{id}/rotate` shows it without `key`", body = Object),
        (status = 403, description = "Administrators only", body = Detail),
        (status = 503, description = "The LLM gateway is unavailable", body = Detail),
    ),
)]
pub(super) async fn list_keys(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let list = state
        .llm
        .grpc()
        .list_gateway_keys(pb::ListGatewayKeysRequest {
            include_revoked: query.include_revoked.unwrap_or(false),
        })
        .await?
        .into_inner();
    let keys: Vec<Value> = list.keys.iter().map(key_json).collect();
    Ok(HttpResponse::Ok().json(json!({"keys": keys, "total": keys.len()})))
}

/// Replaces a key's secret (administrators); the old one stops working at once.
#[utoipa::path(
    post,
    path = "/settings/gateway-keys/{id}/rotate",
    params(("id" = String, Path, description = "Key id (a positive integer)")),
    responses(
        (status = 200, description = SECRET, body = Object),
        (status = 400, description = "The key is revoked", body = Detail),
        (status = 403, description = "Administrators only", body = Detail),
        (status = 404, description = "No such key", body = Detail),
        (status = 503, description = "The LLM gateway is unavailable", body = Detail),
    ),
)]
pub(super) async fn rotate_key(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let id = key_id(&path)?;
    let rotated = state
        .llm
        .grpc()
        .rotate_gateway_key(pb::GatewayKeyId { id })
        .await?
        .into_inner();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(secret_json(rotated)?))
}

/// Revokes a key (administrators).
#[utoipa::path(
    delete,
    path = "/settings/gateway-keys/{id}",
    params(("id" = String, Path, description = "Key id (a positive integer)")),
    responses(
        (status = 200, description = KEY, body = Object),
        (status = 403, description = "Administrators only", body = Detail),
        (status = 404, description = "No such key", body = Detail),
        (status = 503, description = "The LLM gateway is unavailable", body = Detail),
    ),
)]
pub(super) async fn revoke_key(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let id = key_id(&path)?;
    let revoked = state
        .llm
        .grpc()
        .revoke_gateway_key(pb::GatewayKeyId { id })
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(key_json(&revoked)))
}

/// Sets a team's budget (administrators).
#[utoipa::path(
    put,
    path = "/settings/gateway-teams/{team}",
    params(("team" = String, Path, description = "Team name: 1 to 64 letters, digits, `.`, `_` or `-`")),
    request_body = TeamIn,
    responses(
        (status = 200, description = TEAM, body = Object),
        (status = 403, description = "Administrators only", body = Detail),
        (status = 503, description = "The LLM gateway is unavailable", body = Detail),
    ),
)]
pub(super) async fn put_team(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: web::Json<TeamIn>,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let team = path.into_inner();
    let mut v = Violations::new();
    if !valid_team(&team) {
        v.push(FieldError::at(
            "path",
            "team",
            "must be 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit",
        ));
    }
    let budget = body
        .budget
        .as_ref()
        .and_then(|b| check_budget(&mut v, "budget", b));
    v.finish()?;
    let saved = state
        .llm
        .grpc()
        .set_gateway_team(pb::SetGatewayTeamRequest { team, budget })
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(team_json(&saved)))
}

/// The teams with their budgets and spend (administrators).
#[utoipa::path(
    get,
    path = "/settings/gateway-teams",
    responses(
        (status = 200, description = "`{teams}`, each as `PUT /settings/gateway-teams/{team}` answers it", body = Object),
        (status = 403, description = "Administrators only", body = Detail),
        (status = 503, description = "The LLM gateway is unavailable", body = Detail),
    ),
)]
pub(super) async fn list_teams(
    state: web::Data<AppState>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    user.require_admin()?;
    let list = state
        .llm
        .grpc()
        .list_gateway_teams(pb::ListGatewayTeamsRequest {})
        .await?
        .into_inner();
    let teams: Vec<Value> = list.teams.iter().map(team_json).collect();
    Ok(HttpResponse::Ok().json(json!({"teams": teams})))
}
