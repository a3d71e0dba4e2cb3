//! The tool registry itself: every tool with its input schema, and counts by category and skill.

use actix_web::{HttpResponse, web};
use gathering_tools::Category;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::auth::extract::AuthUser;
use crate::error::{ApiError, FieldError};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ToolsQuery {
    /// Only the tools of this category (422 for an unknown one).
    category: Option<String>,
    /// Only the tools of this skill.
    skill: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ToolList {
    total: usize,
    /// Each tool: `name`, `description`, `skill`, `category`, `input_schema`, permissions…
    tools: Vec<Value>,
}

/// Every registered tool with its input schema.
#[utoipa::path(
    get,
    path = "/tools",
    params(ToolsQuery),
    responses((status = 200, description = "The tools", body = ToolList)),
)]
pub async fn list_tools(
    state: web::Data<AppState>,
    _user: AuthUser,
    q: web::Query<ToolsQuery>,
) -> Result<HttpResponse, ApiError> {
    let reg = state.tools.registry();
    let defs = match &q.category {
        Some(c) => {
            let cat = Category::parse(c).ok_or_else(|| {
                ApiError::Validation(vec![FieldError::query(
                    "category",
                    format!("unknown category '{c}'"),
                )])
            })?;
            reg.list_by_category(cat)
        }
        None => reg.list_all(),
    };
    let tools: Vec<Value> = defs
        .iter()
        .filter(|d| q.skill.as_ref().is_none_or(|s| *s == d.skill))
        .map(|d| d.to_json())
        .collect();
    Ok(HttpResponse::Ok().json(ToolList {
        total: tools.len(),
        tools,
    }))
}

/// Registry statistics (tool counts by category and skill).
#[utoipa::path(
    get,
    path = "/tools/stats",
    responses((status = 200, description = "Registry statistics", body = Object)),
)]
pub async fn stats(state: web::Data<AppState>, _user: AuthUser) -> HttpResponse {
    HttpResponse::Ok().json(state.tools.registry().get_stats())
}
