//! `/dashboard` (contract §2.7): the dashboard's read model, always from the database
//! (`demo_mode: false`; there is no demo data). Rows are those the earlier implementation's
//! database mode returned: agents from `public.agent_dashboard` / `agent.agents_full`,
//! providers and models with their counts and names, circles with member and task counts,
//! members with their agent, and circle tasks from `circle.tasks`. Each list is one query.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError};
use crate::openapi::Detail;
use crate::state::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    config, stats, agents, agent, providers, provider, models, model, circles, circle, members,
    tasks,
))]
pub(crate) struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/dashboard/config", web::get().to(config))
        .route("/dashboard/stats", web::get().to(stats))
        .route("/dashboard/agents", web::get().to(agents))
        .route("/dashboard/agents/{agent_id}", web::get().to(agent))
        .route("/dashboard/providers", web::get().to(providers))
        .route(
            "/dashboard/providers/{provider_id}",
            web::get().to(provider),
        )
        .route("/dashboard/models", web::get().to(models))
        .route("/dashboard/models/{model_id}", web::get().to(model))
        .route("/dashboard/circles", web::get().to(circles))
        .route("/dashboard/circles/{circle_id}", web::get().to(circle))
        .route(
            "/dashboard/circles/{circle_id}/members",
            web::get().to(members),
        )
        .route("/dashboard/circles/{circle_id}/tasks", web::get().to(tasks));
}

/// `circle.tasks.status` values (`public.task_status`).
const TASK_STATUSES: &[&str] = &[
    "pending",
    "claimed",
    "in_progress",
    "review",
    "changes_requested",
    "blocked",
    "completed",
    "cancelled",
];

const CIRCLE_SQL: &str = "SELECT to_jsonb(c) || jsonb_build_object( \
         'member_count', (SELECT count(*) FROM circle.members m WHERE m.circle_id = c.id AND m.is_active), \
         'task_count', (SELECT count(*) FROM circle.tasks t WHERE t.circle_id = c.id)) \
     FROM circle.circles c WHERE c.id = $1";

fn rows(rows: &[gathering_db::tokio_postgres::Row]) -> Result<Vec<Value>, ApiError> {
    rows.iter()
        .map(|r| r.try_get::<_, Value>(0).map_err(ApiError::from))
        .collect()
}

async fn one(state: &AppState, sql: &str, id: i64, missing: String) -> Result<Value, ApiError> {
    let client = state.pool.get().await?;
    let row = client
        .query_opt(sql, &[&id])
        .await?
        .ok_or(ApiError::NotFound(missing))?;
    Ok(row.try_get(0)?)
}

#[utoipa::path(
    get,
    path = "/dashboard/config",
    responses(
        (status = 200, description = "`{version:\"0.1.1\", features{agents, circles, conversations, memories}}`", body = Object),
    ),
)]
async fn config(_user: AuthUser) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "demo_mode": false,
        "version": "0.1.1",
        "features": {"agents": true, "circles": true, "conversations": true, "memories": true},
    }))
}

#[utoipa::path(
    get,
    path = "/dashboard/stats",
    responses(
        (status = 200, description = "`{agents{total, active, busy, idle}, providers{total}, models{total}, circles{total, active, total_tasks}, activity{tasks_completed, reviews_done}}`", body = Object),
    ),
)]
async fn stats(state: web::Data<AppState>, _user: AuthUser) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let r = client
        .query_one(
            "SELECT a.total, a.active, a.busy, a.tasks_completed, a.reviews_done, \
                    (SELECT count(*) FROM agent.providers) AS providers, \
                    (SELECT count(*) FROM agent.models WHERE NOT is_deprecated) AS models, \
                    (SELECT count(*) FROM circle.circles) AS circles, \
                    (SELECT count(*) FROM circle.circles WHERE status = 'running') AS running_circles, \
                    (SELECT count(*) FROM circle.tasks) AS circle_tasks \
             FROM (SELECT count(*) AS total, count(*) FILTER (WHERE is_active) AS active, \
                          count(*) FILTER (WHERE status = 'busy') AS busy, \
                          COALESCE(sum(tasks_completed), 0)::int8 AS tasks_completed, \
                          COALESCE(sum(reviews_done), 0)::int8 AS reviews_done \
                   FROM public.agent_dashboard) a",
            &[],
        )
        .await?;
    let n = |c: &str| r.try_get::<_, i64>(c);
    let (active, busy) = (n("active")?, n("busy")?);
    Ok(HttpResponse::Ok().json(json!({
        "agents": {"total": n("total")?, "active": active, "busy": busy, "idle": active - busy},
        "providers": {"total": n("providers")?},
        "models": {"total": n("models")?},
        "circles": {"total": n("circles")?, "active": n("running_circles")?, "total_tasks": n("circle_tasks")?},
        "activity": {"tasks_completed": n("tasks_completed")?, "reviews_done": n("reviews_done")?},
        "demo_mode": false,
    })))
}

#[utoipa::path(
    get,
    path = "/dashboard/agents",
    responses(
        (status = 200, description = "OK", body = Object),
    ),
)]
async fn agents(state: web::Data<AppState>, _user: AuthUser) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let agents = rows(
        &client
            .query(
                "SELECT to_jsonb(a) FROM public.agent_dashboard a ORDER BY a.id",
                &[],
            )
            .await?,
    )?;
    Ok(HttpResponse::Ok()
        .json(json!({"agents": agents, "total": agents.len(), "demo_mode": false})))
}

#[utoipa::path(
    get,
    path = "/dashboard/agents/{agent_id}",
    params(("agent_id" = i64, Path, description = "Agent id")),
    responses(
        (status = 200, description = "OK", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn agent(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let agent = one(
        &state,
        "SELECT to_jsonb(a) || jsonb_build_object( \
             'memory_count', (SELECT count(*) FROM memory.memories m WHERE m.agent_id = a.id AND m.is_active), \
             'message_count', (SELECT count(*) FROM communication.chat_history h WHERE h.agent_id = a.id), \
             'circle_count', (SELECT count(*) FROM circle.members cm WHERE cm.agent_id = a.id AND cm.is_active)) \
         FROM agent.agents_full a WHERE a.id = $1",
        id,
        format!("Agent {id} not found"),
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({"agent": agent, "demo_mode": false})))
}

#[utoipa::path(
    get,
    path = "/dashboard/providers",
    responses(
        (status = 200, description = "OK", body = Object),
    ),
)]
async fn providers(state: web::Data<AppState>, _user: AuthUser) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let providers = rows(
        &client
            .query(
                "SELECT to_jsonb(p) || jsonb_build_object('model_count', \
                     (SELECT count(*) FROM agent.models m WHERE m.provider_id = p.id)) \
                 FROM agent.providers p ORDER BY p.id",
                &[],
            )
            .await?,
    )?;
    Ok(HttpResponse::Ok()
        .json(json!({"providers": providers, "total": providers.len(), "demo_mode": false})))
}

#[utoipa::path(
    get,
    path = "/dashboard/providers/{provider_id}",
    params(("provider_id" = i64, Path, description = "Provider id")),
    responses(
        (status = 200, description = "OK", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn provider(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let provider = one(
        &state,
        "SELECT to_jsonb(p) FROM agent.providers p WHERE p.id = $1",
        id,
        format!("Provider {id} not found"),
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({"provider": provider, "demo_mode": false})))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ModelsQuery {
    provider_id: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/dashboard/models",
    params(ModelsQuery),
    responses(
        (status = 200, description = "OK", body = Object),
        (status = 400, description = "Refused", body = Detail),
    ),
)]
async fn models(
    state: web::Data<AppState>,
    _user: AuthUser,
    q: web::Query<ModelsQuery>,
) -> Result<HttpResponse, ApiError> {
    let provider_id = q.into_inner().provider_id;
    let client = state.pool.get().await?;
    let models = rows(
        &client
            .query(
                "SELECT to_jsonb(m) || jsonb_build_object('provider_name', p.name) \
                 FROM agent.models m JOIN agent.providers p ON p.id = m.provider_id \
                 WHERE ($1::int8 IS NULL OR m.provider_id = $1) AND NOT m.is_deprecated \
                 ORDER BY p.name, m.model_alias, m.id",
                &[&provider_id],
            )
            .await?,
    )?;
    Ok(HttpResponse::Ok().json(json!({
        "models": models, "total": models.len(), "provider_id": provider_id, "demo_mode": false,
    })))
}

#[utoipa::path(
    get,
    path = "/dashboard/models/{model_id}",
    params(("model_id" = i64, Path, description = "Model id")),
    responses(
        (status = 200, description = "OK", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn model(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let model = one(
        &state,
        "SELECT to_jsonb(m) || jsonb_build_object('provider_name', p.name) \
         FROM agent.models m JOIN agent.providers p ON p.id = m.provider_id WHERE m.id = $1",
        id,
        format!("Model {id} not found"),
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({"model": model, "demo_mode": false})))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CirclesQuery {
    is_active: Option<bool>,
}

#[utoipa::path(
    get,
    path = "/dashboard/circles",
    params(CirclesQuery),
    responses(
        (status = 200, description = "OK", body = Object),
        (status = 400, description = "Refused", body = Detail),
    ),
)]
async fn circles(
    state: web::Data<AppState>,
    _user: AuthUser,
    q: web::Query<CirclesQuery>,
) -> Result<HttpResponse, ApiError> {
    let is_active = q.into_inner().is_active;
    let client = state.pool.get().await?;
    let circles = rows(
        &client
            .query(
                "SELECT to_jsonb(c) || jsonb_build_object( \
                     'member_count', (SELECT count(*) FROM circle.members m WHERE m.circle_id = c.id AND m.is_active), \
                     'task_count', (SELECT count(*) FROM circle.tasks t WHERE t.circle_id = c.id)) \
                 FROM circle.circles c WHERE ($1::bool IS NULL OR c.is_active = $1) \
                 ORDER BY c.created_at DESC, c.id DESC",
                &[&is_active],
            )
            .await?,
    )?;
    Ok(HttpResponse::Ok()
        .json(json!({"circles": circles, "total": circles.len(), "demo_mode": false})))
}

async fn circle_row(state: &AppState, id: i64) -> Result<Value, ApiError> {
    one(state, CIRCLE_SQL, id, format!("Circle {id} not found")).await
}

#[utoipa::path(
    get,
    path = "/dashboard/circles/{circle_id}",
    params(("circle_id" = i64, Path, description = "Circle id")),
    responses(
        (status = 200, description = "OK", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn circle(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let circle = circle_row(&state, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({"circle": circle, "demo_mode": false})))
}

#[utoipa::path(
    get,
    path = "/dashboard/circles/{circle_id}/members",
    params(("circle_id" = i64, Path, description = "Circle id")),
    responses(
        (status = 200, description = "OK", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn members(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    circle_row(&state, id).await?;
    let client = state.pool.get().await?;
    let members = rows(
        &client
            .query(
                "SELECT to_jsonb(m) || jsonb_build_object('agent_name', a.name, 'agent_role', a.role) \
                 FROM circle.members m JOIN agent.agents a ON a.id = m.agent_id \
                 WHERE m.circle_id = $1 AND m.is_active ORDER BY m.joined_at, m.id",
                &[&id],
            )
            .await?,
    )?;
    Ok(HttpResponse::Ok().json(json!({
        "circle_id": id, "members": members, "total": members.len(), "demo_mode": false,
    })))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct TasksQuery {
    status: Option<String>,
}

#[utoipa::path(
    get,
    path = "/dashboard/circles/{circle_id}/tasks",
    params(("circle_id" = i64, Path, description = "Circle id"), TasksQuery),
    responses(
        (status = 200, description = "OK", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn tasks(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<i64>,
    q: web::Query<TasksQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let status = q.into_inner().status;
    if let Some(s) = &status
        && !TASK_STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::Validation(vec![FieldError::query(
            "status",
            "Input should be a task status",
        )]));
    }
    circle_row(&state, id).await?;
    let client = state.pool.get().await?;
    let tasks = rows(
        &client
            .query(
                "SELECT to_jsonb(t) || jsonb_build_object('assigned_agent_name', a.name) \
                 FROM circle.tasks t LEFT JOIN agent.agents a ON a.id = t.assigned_agent_id \
                 WHERE t.circle_id = $1 AND ($2::text IS NULL OR t.status::text = $2) \
                 ORDER BY t.priority DESC, t.created_at, t.id LIMIT 1000",
                &[&id, &status],
            )
            .await?,
    )?;
    Ok(HttpResponse::Ok().json(json!({
        "circle_id": id, "tasks": tasks, "total": tasks.len(), "status_filter": status, "demo_mode": false,
    })))
}
