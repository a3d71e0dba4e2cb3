//! `/usage`: what the LLM gateway recorded (`agent.llm_usage`), summarised by model, agent,
//! day, virtual key or team (issue 22: `group_by=key|team`; calls without a key, such as the
//! agents' and pipelines', are the `none` row), and the most recent calls (filtered by
//! `agent_id`, `key_id` or `team`; each says its key, team and whether the cache answered it). A day is a UTC calendar day; a range is `from`..`to`
//! inclusive, else the last `days` days (default 30, at most 366).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, FieldError};
use crate::state::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(paths(recent, summary))]
pub(crate) struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/usage", web::get().to(recent))
        .route("/usage/summary", web::get().to(summary));
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SummaryQuery {
    /// `model` (default), `agent`, `day`, `key` or `team`.
    group_by: Option<String>,
    /// First UTC day, `YYYY-MM-DD`.
    from: Option<String>,
    /// Last UTC day, `YYYY-MM-DD` (default today).
    to: Option<String>,
    /// Without `from`: the last `days` days, 1 to 366 (default 30).
    days: Option<i32>,
}

/// One group's figures.
#[derive(Serialize, ToSchema)]
struct SummaryRow {
    /// The model (`provider/model`), agent id, day, key id or team; `none` for calls without one.
    key: String,
    /// The agent's or key's name.
    label: Option<String>,
    requests: i64,
    errors: i64,
    input_tokens: i64,
    output_tokens: i64,
    cost_usd: f64,
    avg_latency_ms: f64,
    p95_latency_ms: f64,
}

#[derive(Serialize, ToSchema)]
struct SummaryTotals {
    requests: i64,
    errors: i64,
    input_tokens: i64,
    output_tokens: i64,
    cost_usd: f64,
}

#[derive(Serialize, ToSchema)]
struct Summary {
    group_by: String,
    from: String,
    to: String,
    rows: Vec<SummaryRow>,
    totals: SummaryTotals,
}

/// `YYYY-MM-DD` of a real calendar day from 1970 to 9999. The shape is checked first because
/// chrono's `%Y-%m-%d` also accepts signs, unpadded fields and spaces; chrono checks the
/// calendar (month lengths, leap years).
fn valid_date(s: &str) -> bool {
    use chrono::Datelike;
    let shape = s.len() == 10
        && s.bytes().enumerate().all(|(i, c)| match i {
            4 | 7 => c == b'-',
            _ => c.is_ascii_digit(),
        });
    shape
        && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .is_ok_and(|d| (1970..=9999).contains(&d.year()))
}

// The range, as UTC days: from/to when given, else the last `days` days ($1, $2, $3).
macro_rules! range_cte {
    () => {
        "WITH r AS (SELECT \
        COALESCE($1::text::date, COALESCE($2::text::date, (now() AT TIME ZONE 'UTC')::date) - ($3::int - 1)) AS d_from, \
        COALESCE($2::text::date, (now() AT TIME ZONE 'UTC')::date) AS d_to) "
    };
}

const RANGE: &str = concat!(range_cte!(), "SELECT d_from::text, d_to::text FROM r");

const BY_MODEL: &str = concat!(
    range_cte!(),
    "SELECT u.provider || '/' || u.model AS key, NULL::text AS label, count(*)::int8, \
        (count(*) FILTER (WHERE u.status <> 'ok'))::int8, COALESCE(sum(u.input_tokens), 0)::int8, \
        COALESCE(sum(u.output_tokens), 0)::int8, COALESCE(sum(u.cost_usd), 0)::float8, \
        COALESCE(avg(u.latency_ms), 0)::float8, \
        COALESCE(percentile_cont(0.95) WITHIN GROUP (ORDER BY u.latency_ms), 0)::float8 \
    FROM agent.llm_usage u, r \
    WHERE u.created_at >= (r.d_from::timestamp AT TIME ZONE 'UTC') \
      AND u.created_at < ((r.d_to + 1)::timestamp AT TIME ZONE 'UTC') \
    GROUP BY u.provider, u.model ORDER BY 7 DESC, 3 DESC LIMIT 1000"
);

const BY_AGENT: &str = concat!(
    range_cte!(),
    "SELECT COALESCE(u.agent_id::text, 'none') AS key, max(a.name) AS label, count(*)::int8, \
        (count(*) FILTER (WHERE u.status <> 'ok'))::int8, COALESCE(sum(u.input_tokens), 0)::int8, \
        COALESCE(sum(u.output_tokens), 0)::int8, COALESCE(sum(u.cost_usd), 0)::float8, \
        COALESCE(avg(u.latency_ms), 0)::float8, \
        COALESCE(percentile_cont(0.95) WITHIN GROUP (ORDER BY u.latency_ms), 0)::float8 \
    FROM agent.llm_usage u CROSS JOIN r LEFT JOIN agent.agents a ON a.id = u.agent_id \
    WHERE u.created_at >= (r.d_from::timestamp AT TIME ZONE 'UTC') \
      AND u.created_at < ((r.d_to + 1)::timestamp AT TIME ZONE 'UTC') \
    GROUP BY u.agent_id ORDER BY 7 DESC, 3 DESC LIMIT 1000"
);

const BY_DAY: &str = concat!(
    range_cte!(),
    "SELECT ((u.created_at AT TIME ZONE 'UTC')::date)::text AS key, NULL::text AS label, count(*)::int8, \
        (count(*) FILTER (WHERE u.status <> 'ok'))::int8, COALESCE(sum(u.input_tokens), 0)::int8, \
        COALESCE(sum(u.output_tokens), 0)::int8, COALESCE(sum(u.cost_usd), 0)::float8, \
        COALESCE(avg(u.latency_ms), 0)::float8, \
        COALESCE(percentile_cont(0.95) WITHIN GROUP (ORDER BY u.latency_ms), 0)::float8 \
    FROM agent.llm_usage u, r \
    WHERE u.created_at >= (r.d_from::timestamp AT TIME ZONE 'UTC') \
      AND u.created_at < ((r.d_to + 1)::timestamp AT TIME ZONE 'UTC') \
    GROUP BY 1 ORDER BY 1 LIMIT 1000"
);

const BY_KEY: &str = concat!(
    range_cte!(),
    "SELECT COALESCE(u.key_id::text, 'none') AS key, max(k.name) AS label, count(*)::int8, \
        (count(*) FILTER (WHERE u.status <> 'ok'))::int8, COALESCE(sum(u.input_tokens), 0)::int8, \
        COALESCE(sum(u.output_tokens), 0)::int8, COALESCE(sum(u.cost_usd), 0)::float8, \
        COALESCE(avg(u.latency_ms), 0)::float8, \
        COALESCE(percentile_cont(0.95) WITHIN GROUP (ORDER BY u.latency_ms), 0)::float8 \
    FROM agent.llm_usage u CROSS JOIN r LEFT JOIN agent.gateway_keys k ON k.id = u.key_id \
    WHERE u.created_at >= (r.d_from::timestamp AT TIME ZONE 'UTC') \
      AND u.created_at < ((r.d_to + 1)::timestamp AT TIME ZONE 'UTC') \
    GROUP BY u.key_id ORDER BY 7 DESC, 3 DESC LIMIT 1000"
);

const BY_TEAM: &str = concat!(
    range_cte!(),
    "SELECT COALESCE(u.team, 'none') AS key, NULL::text AS label, count(*)::int8, \
        (count(*) FILTER (WHERE u.status <> 'ok'))::int8, COALESCE(sum(u.input_tokens), 0)::int8, \
        COALESCE(sum(u.output_tokens), 0)::int8, COALESCE(sum(u.cost_usd), 0)::float8, \
        COALESCE(avg(u.latency_ms), 0)::float8, \
        COALESCE(percentile_cont(0.95) WITHIN GROUP (ORDER BY u.latency_ms), 0)::float8 \
    FROM agent.llm_usage u, r \
    WHERE u.created_at >= (r.d_from::timestamp AT TIME ZONE 'UTC') \
      AND u.created_at < ((r.d_to + 1)::timestamp AT TIME ZONE 'UTC') \
    GROUP BY u.team ORDER BY 7 DESC, 3 DESC LIMIT 1000"
);

/// LLM usage summarised by model, agent, day, virtual key or team over a range of UTC days.
#[utoipa::path(
    get,
    path = "/usage/summary",
    params(SummaryQuery),
    responses((status = 200, description = "The summary", body = Summary)),
)]
async fn summary(
    state: web::Data<AppState>,
    query: web::Query<SummaryQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let group_by = q.group_by.unwrap_or_else(|| "model".into());
    let sql = match group_by.as_str() {
        "model" => BY_MODEL,
        "agent" => BY_AGENT,
        "day" => BY_DAY,
        "key" => BY_KEY,
        "team" => BY_TEAM,
        _ => {
            return Err(ApiError::Validation(vec![query_error(
                "group_by",
                "must be model, agent, day, key or team",
            )]));
        }
    };
    let mut errors = Vec::new();
    for (field, value) in [("from", &q.from), ("to", &q.to)] {
        if value.as_deref().is_some_and(|v| !valid_date(v)) {
            errors.push(query_error(field, "must be a date YYYY-MM-DD"));
        }
    }
    let days = q.days.unwrap_or(30);
    if !(1..=366).contains(&days) {
        errors.push(query_error("days", "must be between 1 and 366"));
    }
    if let (Some(f), Some(t)) = (&q.from, &q.to)
        && errors.is_empty()
        && f > t
    {
        errors.push(query_error("from", "must not be after 'to'"));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let client = state.pool.get().await?;
    let range = client.query_one(RANGE, &[&q.from, &q.to, &days]).await?;
    let rows = client.query(sql, &[&q.from, &q.to, &days]).await?;
    let mut totals = (0i64, 0i64, 0i64, 0i64, 0f64);
    let mut out: Vec<SummaryRow> = Vec::with_capacity(rows.len());
    for r in &rows {
        let requests: i64 = r.try_get(2)?;
        let errors: i64 = r.try_get(3)?;
        let input: i64 = r.try_get(4)?;
        let output: i64 = r.try_get(5)?;
        let cost: f64 = r.try_get(6)?;
        totals.0 += requests;
        totals.1 += errors;
        totals.2 += input;
        totals.3 += output;
        totals.4 += cost;
        out.push(SummaryRow {
            key: r.try_get(0)?,
            label: r.try_get(1)?,
            requests,
            errors,
            input_tokens: input,
            output_tokens: output,
            cost_usd: cost,
            avg_latency_ms: r.try_get(7)?,
            p95_latency_ms: r.try_get(8)?,
        });
    }
    Ok(HttpResponse::Ok().json(Summary {
        group_by,
        from: range.try_get(0)?,
        to: range.try_get(1)?,
        rows: out,
        totals: SummaryTotals {
            requests: totals.0,
            errors: totals.1,
            input_tokens: totals.2,
            output_tokens: totals.3,
            cost_usd: totals.4,
        },
    }))
}

fn query_error(field: &str, msg: &str) -> FieldError {
    FieldError {
        loc: vec!["query".into(), field.into()],
        msg: msg.into(),
        kind: "value_error".into(),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RecentQuery {
    /// 1 to 500 (default 50).
    limit: Option<i64>,
    /// 0 to 1000000 (default 0).
    offset: Option<i64>,
    /// Only this agent's calls.
    agent_id: Option<i64>,
    /// Only the calls made with this virtual key.
    key_id: Option<i64>,
    /// Only this team's calls (1 to 64 characters).
    team: Option<String>,
}

/// One recorded LLM call.
#[derive(Serialize, ToSchema)]
struct UsageItem {
    id: i64,
    created_at: String,
    request_id: String,
    kind: String,
    provider: String,
    model: String,
    caller_service: Option<String>,
    agent_id: Option<i64>,
    user_id: Option<String>,
    status: String,
    error_kind: Option<String>,
    input_tokens: i32,
    output_tokens: i32,
    cost_usd: Option<f64>,
    latency_ms: f64,
    upstream_latency_ms: Option<f64>,
    attempts: i32,
    models_tried: i32,
    stream: bool,
    mock: bool,
    key_id: Option<i64>,
    team: Option<String>,
    cached: bool,
}

#[derive(Serialize, ToSchema)]
struct UsagePage {
    items: Vec<UsageItem>,
    limit: i64,
    offset: i64,
}

/// The most recent LLM calls, newest first.
#[utoipa::path(
    get,
    path = "/usage",
    params(RecentQuery),
    responses((status = 200, description = "A page of calls", body = UsagePage)),
)]
async fn recent(
    state: web::Data<AppState>,
    query: web::Query<RecentQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let limit = q.limit.unwrap_or(50);
    let offset = q.offset.unwrap_or(0);
    let mut errors = Vec::new();
    if !(1..=500).contains(&limit) {
        errors.push(query_error("limit", "must be between 1 and 500"));
    }
    if !(0..=1_000_000).contains(&offset) {
        errors.push(query_error("offset", "must be between 0 and 1000000"));
    }
    if q.team
        .as_ref()
        .is_some_and(|t| t.is_empty() || t.len() > 64)
    {
        errors.push(query_error("team", "must be 1-64 characters"));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let client = state.pool.get().await?;
    let rows = client
        .query(
            "SELECT id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), \
                    request_id, kind, provider, model, caller_service, agent_id, user_id, status, \
                    error_kind, input_tokens, output_tokens, cost_usd, latency_ms, \
                    upstream_latency_ms, attempts, models_tried, stream, mock, key_id, team, cached \
             FROM agent.llm_usage \
             WHERE ($1::int8 IS NULL OR agent_id = $1) AND ($4::int8 IS NULL OR key_id = $4) \
               AND ($5::text IS NULL OR team = $5) \
             ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
            &[&q.agent_id, &limit, &offset, &q.key_id, &q.team],
        )
        .await?;
    let items: Vec<UsageItem> = rows
        .iter()
        .map(|r| {
            Ok(UsageItem {
                id: r.try_get(0)?,
                created_at: r.try_get(1)?,
                request_id: r.try_get(2)?,
                kind: r.try_get(3)?,
                provider: r.try_get(4)?,
                model: r.try_get(5)?,
                caller_service: r.try_get(6)?,
                agent_id: r.try_get(7)?,
                user_id: r.try_get(8)?,
                status: r.try_get(9)?,
                error_kind: r.try_get(10)?,
                input_tokens: r.try_get(11)?,
                output_tokens: r.try_get(12)?,
                cost_usd: r.try_get(13)?,
                latency_ms: r.try_get(14)?,
                upstream_latency_ms: r.try_get(15)?,
                attempts: r.try_get(16)?,
                models_tried: r.try_get(17)?,
                stream: r.try_get(18)?,
                mock: r.try_get(19)?,
                key_id: r.try_get(20)?,
                team: r.try_get(21)?,
                cached: r.try_get(22)?,
            })
        })
        .collect::<Result<_, gathering_db::tokio_postgres::Error>>()?;
    Ok(HttpResponse::Ok().json(UsagePage {
        items,
        limit,
        offset,
    }))
}

#[cfg(test)]
mod tests {
    use super::valid_date;

    #[test]
    fn only_real_padded_days() {
        for ok in ["2024-02-29", "1970-01-01", "9999-12-31"] {
            assert!(valid_date(ok), "{ok}");
        }
        for bad in [
            "2023-02-29",
            "2024-04-31",
            "2024-13-01",
            "1969-12-31",
            "2024-1-011",
            " 2024-1-01",
            "+202-01-01",
            "2024/01/01",
            "2024-01-1",
            "",
        ] {
            assert!(!valid_date(bad), "{bad}");
        }
    }
}
