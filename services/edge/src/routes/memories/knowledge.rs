//! The knowledge base (`memory.knowledge_base`, contract §2.8): entries with embeddings from
//! the LLM gateway (`{title}\n\n{content}`, as upstream) when it can embed, searched by vector
//! similarity then and by text (substring and full-text indexes) otherwise; the search says
//! which it used.

mod query;
mod store;

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError, Violations};
use crate::openapi::Detail;
use crate::routes::catalogue::input::{line_ok, opt_line_ok, opt_list_ok, text_ok};
use crate::state::AppState;

pub use store::{Common, NewEntry, embed, insert};

pub const CATEGORIES: &[&str] = &["docs", "best_practice", "decision", "faq"];
/// Longest entry content (characters) through `POST /memories/knowledge`.
pub const CONTENT_MAX: usize = 1_000_000;
pub const TITLE_MAX: usize = 500;
pub const TAGS_MAX: usize = 50;
pub const TAG_LEN: usize = 100;

/// Checks shared by the create body and the upload form.
pub fn check_entry_fields(
    v: &mut Violations,
    category: &Option<String>,
    tags: &Option<Vec<String>>,
    source_url: &Option<String>,
) {
    v.check(
        category.as_deref().is_none_or(|c| CATEGORIES.contains(&c)),
        "category",
        "category must be one of docs, best_practice, decision, faq",
    )
    .check(
        opt_list_ok(tags, TAGS_MAX, TAG_LEN),
        "tags",
        "at most 50 tags of 1 to 100 characters",
    )
    .check(
        opt_line_ok(source_url, 2048),
        "source_url",
        "source_url is at most 2048 characters",
    );
}

/// `K`: a knowledge entry as the contract shows it.
fn entry(id: i64, title: &str, content: &str, category: &Option<String>, tags: &[String]) -> Value {
    json!({
        "id": id, "title": title, "content": content, "category": category,
        "similarity": null, "tags": tags,
    })
}

fn entry_row(
    r: &gathering_db::tokio_postgres::Row,
    with_similarity: bool,
) -> Result<Value, gathering_db::tokio_postgres::Error> {
    Ok(json!({
        "id": r.try_get::<_, i64>("id")?,
        "title": r.try_get::<_, String>("title")?,
        "content": r.try_get::<_, String>("content")?,
        "category": r.try_get::<_, Option<String>>("category")?,
        "similarity": if with_similarity { json!(r.try_get::<_, f64>("similarity")?) } else { Value::Null },
        "tags": r.try_get::<_, Vec<String>>("tags")?,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuthorQuery {
    author_agent_id: Option<i64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateBody {
    title: String,
    content: String,
    category: Option<String>,
    project_id: Option<i64>,
    circle_id: Option<i64>,
    #[serde(default)]
    is_global: bool,
    tags: Option<Vec<String>>,
    source_url: Option<String>,
}

#[utoipa::path(
    post,
    path = "/memories/knowledge",
    params(AuthorQuery),
    request_body = CreateBody,
    responses(
        (status = 200, description = "K", body = Object),
        (status = 400, description = "Refused", body = Detail),
    ),
)]
pub async fn create(
    state: web::Data<AppState>,
    _user: AuthUser,
    q: web::Query<AuthorQuery>,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let mut v = Violations::new();
    v.check(
        line_ok(&b.title, 1, TITLE_MAX),
        "title",
        "title must be 1 to 500 characters",
    )
    .check(
        !b.content.trim().is_empty() && text_ok(&b.content, CONTENT_MAX),
        "content",
        "content must be 1 to 1000000 characters",
    );
    check_entry_fields(&mut v, &b.category, &b.tags, &b.source_url);
    v.finish()?;
    let tags = b.tags.unwrap_or_default();
    let vectors = embed(
        &state.agents.llm,
        &[format!("{}\n\n{}", b.title, b.content)],
    )
    .await;
    let common = Common {
        category: b.category.clone(),
        project_id: b.project_id,
        circle_id: b.circle_id,
        is_global: b.is_global,
        author_agent_id: q.author_agent_id,
        parent_id: None,
    };
    let client = state.pool.get().await?;
    let ids = insert(
        &client,
        &common,
        &[NewEntry {
            title: b.title.clone(),
            content: b.content.clone(),
            tags: tags.clone(),
            source_url: b.source_url.clone(),
            chunk_index: None,
        }],
        &vectors,
    )
    .await?;
    let id = ids
        .first()
        .copied()
        .ok_or_else(|| ApiError::internal("knowledge entry not stored"))?;
    Ok(HttpResponse::Ok().json(entry(id, &b.title, &b.content, &b.category, &tags)))
}

fn ten() -> i64 {
    10
}

fn seven_tenths() -> f64 {
    0.7
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SearchBody {
    query: String,
    project_id: Option<i64>,
    circle_id: Option<i64>,
    category: Option<String>,
    #[serde(default = "yes")]
    include_global: bool,
    #[serde(default = "ten")]
    limit: i64,
    #[serde(default = "seven_tenths")]
    threshold: f64,
}

#[utoipa::path(
    post,
    path = "/memories/knowledge/search",
    request_body = SearchBody,
    responses(
        (status = 200, description = "`{query, results[K], total}`", body = Object),
        (status = 400, description = "Refused", body = Detail),
    ),
)]
pub async fn search(
    state: web::Data<AppState>,
    _user: AuthUser,
    body: web::Json<SearchBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    Violations::new()
        .check(
            !b.query.trim().is_empty() && text_ok(&b.query, 10_000),
            "query",
            "query must be 1 to 10000 characters",
        )
        .check(
            (1..=50).contains(&b.limit),
            "limit",
            "limit must be 1 to 50",
        )
        .check(
            b.threshold.is_finite() && (0.0..=1.0).contains(&b.threshold),
            "threshold",
            "threshold must be between 0 and 1",
        )
        .check(
            b.category.as_deref().is_none_or(|c| line_ok(c, 1, 100)),
            "category",
            "category must be 1 to 100 characters",
        )
        .finish()?;
    let vector = embed(&state.agents.llm, std::slice::from_ref(&b.query))
        .await
        .pop()
        .flatten();
    let client = state.pool.get().await?;
    let mut found = None;
    if let Some(v) = vector {
        found = query::by_vector(&client, &v, &b)
            .await?
            .map(|hits| ("vector", hits));
    }
    let (method, results) = match found {
        Some(f) => f,
        None => ("text", query::by_text(&client, &b).await?),
    };
    Ok(HttpResponse::Ok().json(json!({
        "query": b.query, "results": results, "total": results.len(), "method": method,
    })))
}

fn one() -> i64 {
    1
}

fn twenty() -> i64 {
    20
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    category: Option<String>,
    #[serde(default = "one")]
    page: i64,
    #[serde(default = "twenty")]
    page_size: i64,
}

const LIST_SQL: &str = "
SELECT id, title, content, category, tags, count(*) OVER () AS total
FROM memory.knowledge_base
WHERE is_active AND ($1::text IS NULL OR category = $1)
ORDER BY created_at DESC, id DESC
LIMIT $2 OFFSET $3";

const COUNT_SQL: &str = "
SELECT count(*) FROM memory.knowledge_base WHERE is_active AND ($1::text IS NULL OR category = $1)";

/// Pages past this are refused: deep offsets scan everything before them.
const MAX_PAGE: i64 = 100_000;

#[utoipa::path(
    get,
    path = "/memories/knowledge",
    params(ListQuery),
    responses(
        (status = 200, description = "`{entries[K], total, page, page_size}`", body = Object),
        (status = 400, description = "Refused", body = Detail),
    ),
)]
pub async fn list(
    state: web::Data<AppState>,
    _user: AuthUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    if !(1..=MAX_PAGE).contains(&q.page) {
        errors.push(FieldError::query("page", "page must be 1 to 100000"));
    }
    if !(1..=100).contains(&q.page_size) {
        errors.push(FieldError::query("page_size", "page_size must be 1 to 100"));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let client = state.pool.get().await?;
    let stmt = client.prepare_cached(LIST_SQL).await?;
    let rows = client
        .query(
            &stmt,
            &[&q.category, &q.page_size, &((q.page - 1) * q.page_size)],
        )
        .await?;
    let total: i64 = match rows.first() {
        Some(r) => r.try_get("total")?,
        None => client
            .query_one(COUNT_SQL, &[&q.category])
            .await?
            .try_get(0)?,
    };
    let entries = rows
        .iter()
        .map(|r| entry_row(r, false))
        .collect::<Result<Vec<Value>, _>>()?;
    Ok(HttpResponse::Ok().json(json!({
        "entries": entries, "total": total, "page": q.page, "page_size": q.page_size,
    })))
}

/// How many recent entries the stats show.
const RECENT: i64 = 5;

const STATS_SQL: &str = "
SELECT (SELECT count(*) FROM memory.knowledge_base WHERE is_active) AS total,
       COALESCE((SELECT jsonb_object_agg(cat, n) FROM (
                    SELECT COALESCE(category, 'uncategorized') AS cat, count(*) AS n
                    FROM memory.knowledge_base WHERE is_active GROUP BY 1) c), '{}'::jsonb) AS by_category,
       COALESCE((SELECT jsonb_agg(jsonb_build_object('id', id, 'title', title, 'content', content,
                                                     'category', category, 'similarity', NULL,
                                                     'tags', tags) ORDER BY created_at DESC, id DESC)
                 FROM (SELECT * FROM memory.knowledge_base WHERE is_active
                       ORDER BY created_at DESC, id DESC LIMIT $1) r), '[]'::jsonb) AS recent";

#[utoipa::path(
    get,
    path = "/memories/knowledge/stats",
    responses(
        (status = 200, description = "`{total_entries, by_category{} (\"uncategorized\" for null), recent_entries[K]}`", body = Object),
    ),
)]
pub async fn stats(state: web::Data<AppState>, _user: AuthUser) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let row = client.query_one(STATS_SQL, &[&RECENT]).await?;
    Ok(HttpResponse::Ok().json(json!({
        "total_entries": row.try_get::<_, i64>("total")?,
        "by_category": row.try_get::<_, Value>("by_category")?,
        "recent_entries": row.try_get::<_, Value>("recent")?,
    })))
}
