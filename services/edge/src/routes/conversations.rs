//! `/conversations` (contract §2.6). Conversations run on executors, message by message (the
//! earlier implementation ran them inside the HTTP request). `start`, `advance` and `quick`
//! keep the contract — they answer the conversation after its run — by waiting for the run
//! through the event log, at most `CONVERSATION_START_WAIT_SECONDS`; past that they answer
//! its current state (still `active`) and the run goes on. A run that ended with an error
//! answers 500, as the contract says.

use actix_web::{HttpResponse, web};
use gathering_circles::conversations::{self, NewConversation, view};
use gathering_circles::input;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError};
use crate::openapi::Detail;
use crate::routes::circles::circle_error;
use crate::state::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list, create, quick, get, delete, start, cancel, transcript, messages, advance,
))]
pub(crate) struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/conversations", web::get().to(list))
        .route("/conversations", web::post().to(create))
        .route("/conversations/quick", web::post().to(quick))
        .route("/conversations/{conv_id}", web::get().to(get))
        .route("/conversations/{conv_id}", web::delete().to(delete))
        .route("/conversations/{conv_id}/start", web::post().to(start))
        .route("/conversations/{conv_id}/cancel", web::post().to(cancel))
        .route(
            "/conversations/{conv_id}/transcript",
            web::get().to(transcript),
        )
        .route("/conversations/{conv_id}/messages", web::get().to(messages))
        .route("/conversations/{conv_id}/advance", web::post().to(advance));
}

/// Conversation ids in paths are numbers; anything else names no conversation.
fn conv_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
        ApiError::NotFound(format!(
            "Conversation '{}' not found",
            raw.chars().take(40).collect::<String>()
        ))
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/conversations",
    params(ListQuery),
    responses(
        (status = 200, description = "`{conversations[Conv], total}`", body = Object),
        (status = 400, description = "Refused", body = Detail),
    ),
)]
async fn list(
    state: web::Data<AppState>,
    _user: AuthUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::Validation(vec![FieldError::query(
            "limit",
            "Input should be between 1 and 500",
        )]));
    }
    let c = state.pool.get().await?;
    let conversations = view::list(&c, limit).await.map_err(circle_error)?;
    Ok(HttpResponse::Ok()
        .json(json!({"total": conversations.len(), "conversations": conversations})))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CircleQuery {
    circle_name: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct CreateBody {
    topic: String,
    agent_ids: Vec<i64>,
    max_turns: Option<i64>,
    #[serde(default)]
    initial_prompt: String,
    turn_strategy: Option<String>,
}

fn new_conversation(b: CreateBody, user: &AuthUser) -> Result<NewConversation, ApiError> {
    let max_turns = b.max_turns.unwrap_or(10);
    if !(1..=i64::from(input::MAX_TURNS)).contains(&max_turns) {
        return Err(ApiError::Validation(vec![FieldError::body(
            "max_turns",
            format!("Input should be between 1 and {}", input::MAX_TURNS),
        )]));
    }
    Ok(NewConversation {
        topic: b.topic,
        agent_ids: b.agent_ids,
        max_turns: max_turns as i32,
        initial_prompt: b.initial_prompt,
        strategy: b.turn_strategy.unwrap_or_else(|| "round_robin".into()),
        created_by: Some(user.0.sub.clone()),
    })
}

fn circle_name(q: &CircleQuery) -> Result<String, ApiError> {
    let name = q.circle_name.clone().unwrap_or_else(|| "default".into());
    if name.is_empty() || name.chars().count() > input::MAX_NAME {
        return Err(ApiError::NotFound(format!(
            "Circle '{}' not found",
            name.chars().take(100).collect::<String>()
        )));
    }
    Ok(name)
}

#[utoipa::path(
    post,
    path = "/conversations",
    params(CircleQuery),
    request_body = CreateBody,
    responses(
        (status = 201, description = "201 ConvDetail (pending)", body = Object),
        (status = 400, description = "Refused", body = Detail),
    ),
)]
async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<CircleQuery>,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let new = new_conversation(body.into_inner(), &user)?;
    let out = conversations::create(&state.circles, &circle_name(&q)?, &new)
        .await
        .map_err(circle_error)?;
    Ok(HttpResponse::Created().json(out))
}

#[utoipa::path(
    get,
    path = "/conversations/{conv_id}",
    params(("conv_id" = String, Path, description = "Conv id")),
    responses(
        (status = 200, description = "ConvDetail", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn get(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = conv_id(&path)?;
    let c = state.pool.get().await?;
    Ok(HttpResponse::Ok().json(view::detail(&c, id).await.map_err(circle_error)?))
}

/// Waits for the run (bounded), then answers the conversation; 500 when it failed.
async fn settled(state: &AppState, id: i64) -> Result<Value, ApiError> {
    conversations::wait_settled(
        &state.circles,
        &state.hub,
        id,
        state.circles.config.start_wait,
    )
    .await
    .map_err(circle_error)?;
    let c = state.pool.get().await?;
    let detail = view::detail(&c, id).await.map_err(circle_error)?;
    if detail["status"] == "cancelled" && detail["error"].is_string() {
        return Err(ApiError::Internal(format!(
            "conversation {id} failed: {}",
            detail["error"]
        )));
    }
    Ok(detail)
}

#[utoipa::path(
    post,
    path = "/conversations/{conv_id}/start",
    params(("conv_id" = String, Path, description = "Conv id")),
    responses(
        (status = 200, description = "ConvDetail, status completed", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn start(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = conv_id(&path)?;
    conversations::start(&state.circles, id)
        .await
        .map_err(circle_error)?;
    Ok(HttpResponse::Ok().json(settled(&state, id).await?))
}

#[utoipa::path(
    post,
    path = "/conversations/{conv_id}/cancel",
    params(("conv_id" = String, Path, description = "Conv id")),
    responses(
        (status = 200, description = "`{status: cancelled|already_finished}`", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn cancel(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = conv_id(&path)?;
    let status = conversations::cancel(&state.circles, id)
        .await
        .map_err(circle_error)?;
    Ok(HttpResponse::Ok().json(json!({"status": status})))
}

#[utoipa::path(
    delete,
    path = "/conversations/{conv_id}",
    params(("conv_id" = String, Path, description = "Conv id")),
    responses(
        (status = 204, description = "Done"),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn delete(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = conv_id(&path)?;
    conversations::delete(&state.circles, id)
        .await
        .map_err(circle_error)?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    get,
    path = "/conversations/{conv_id}/transcript",
    params(("conv_id" = String, Path, description = "Conv id")),
    responses(
        (status = 200, description = "`{conversation_id, topic, transcript}`", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn transcript(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = conv_id(&path)?;
    let c = state.pool.get().await?;
    let conv = view::conv(&c, id).await.map_err(circle_error)?;
    let messages = view::messages(&c, id).await.map_err(circle_error)?;
    Ok(HttpResponse::Ok().json(json!({
        "conversation_id": conv["id"],
        "topic": conv["topic"],
        "transcript": view::transcript(&messages),
    })))
}

#[utoipa::path(
    get,
    path = "/conversations/{conv_id}/messages",
    params(("conv_id" = String, Path, description = "Conv id")),
    responses(
        (status = 200, description = "`{messages[{agent_id, agent_name, content, timestamp}]}`", body = Object),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn messages(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = conv_id(&path)?;
    let c = state.pool.get().await?;
    view::conv(&c, id).await.map_err(circle_error)?;
    let messages = view::messages(&c, id).await.map_err(circle_error)?;
    Ok(HttpResponse::Ok().json(json!({"messages": messages})))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
struct AdvanceBody {
    prompt: Option<String>,
}

#[utoipa::path(
    post,
    path = "/conversations/{conv_id}/advance",
    params(("conv_id" = String, Path, description = "Conv id")),
    request_body = AdvanceBody,
    responses(
        (status = 200, description = "ConvDetail", body = Object),
        (status = 400, description = "Refused", body = Detail),
        (status = 404, description = "Not found", body = Detail),
    ),
)]
async fn advance(
    state: web::Data<AppState>,
    _user: AuthUser,
    path: web::Path<String>,
    body: Option<web::Json<AdvanceBody>>,
) -> Result<HttpResponse, ApiError> {
    let id = conv_id(&path)?;
    let prompt = body.and_then(|b| b.into_inner().prompt);
    conversations::advance(&state.circles, id, prompt.as_deref(), 5, false)
        .await
        .map_err(circle_error)?;
    Ok(HttpResponse::Ok().json(settled(&state, id).await?))
}

#[utoipa::path(
    post,
    path = "/conversations/quick",
    params(CircleQuery),
    request_body = CreateBody,
    responses(
        (status = 200, description = "**200** ConvDetail, already completed. Errors as for create", body = Object),
        (status = 400, description = "Refused", body = Detail),
    ),
)]
async fn quick(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<CircleQuery>,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let new = new_conversation(body.into_inner(), &user)?;
    let created = conversations::create(&state.circles, &circle_name(&q)?, &new)
        .await
        .map_err(circle_error)?;
    let id = created["conversation_id"].as_i64().unwrap_or_default();
    conversations::start(&state.circles, id)
        .await
        .map_err(circle_error)?;
    // 200, not 201: the contract keeps the earlier status.
    Ok(HttpResponse::Ok().json(settled(&state, id).await?))
}
