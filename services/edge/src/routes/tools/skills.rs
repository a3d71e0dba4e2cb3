//! The skill catalogue (`agent.skills`): every skill with how many tools it has, and the
//! categories.

use actix_web::{HttpResponse, web};
use gathering_tools::enablement;
use serde_json::json;

use super::{CategoryQuery, check_category, db};
use crate::auth::extract::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;

/// The skill catalogue, each skill with its `tools_count`.
#[utoipa::path(
    get,
    path = "/tools/skills",
    params(CategoryQuery),
    responses((status = 200, description = "The skills", body = Vec<Object>)),
)]
pub async fn list_skills(
    state: web::Data<AppState>,
    _user: AuthUser,
    q: web::Query<CategoryQuery>,
) -> Result<HttpResponse, ApiError> {
    check_category(&q)?;
    let client = state.pool.get().await?;
    let counts = state.tools.registry().tools_per_skill();
    let mut skills = enablement::list_skills(&client, q.category.as_deref())
        .await
        .map_err(db)?;
    for s in &mut skills {
        let n = s["name"]
            .as_str()
            .and_then(|n| counts.get(n))
            .copied()
            .unwrap_or(0);
        s["tools_count"] = json!(n);
    }
    Ok(HttpResponse::Ok().json(skills))
}

/// Skill categories with how many enabled skills each has.
#[utoipa::path(
    get,
    path = "/tools/skills/categories",
    responses((status = 200, description = "The categories", body = Value)),
)]
pub async fn categories(
    state: web::Data<AppState>,
    _user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    Ok(HttpResponse::Ok().json(enablement::skill_categories(&client).await.map_err(db)?))
}
