//! The knowledge search's two ways: by vector similarity when the gateway embedded the query,
//! by text (substring and full-text indexes) otherwise or when no embedded entry is in scope.

use gathering_db::GenericClient;
use serde_json::Value;

use super::{SearchBody, entry_row};
use crate::error::ApiError;

/// Scope: with a project (circle) filter, entries of that project (circle) and, when
/// `include_global`, global ones; without `include_global`, global entries only when they
/// belong to the project or circle asked for.
macro_rules! scope {
    () => {
        " kb.is_active
          AND ($2::int8 IS NULL OR kb.project_id = $2 OR ($5 AND kb.is_global))
          AND ($3::int8 IS NULL OR kb.circle_id = $3 OR ($5 AND kb.is_global))
          AND ($4::text IS NULL OR kb.category = $4)
          AND ($5 OR NOT kb.is_global OR kb.project_id = $2 OR kb.circle_id = $3) "
    };
}

const VECTOR_SQL: &str = concat!(
    "SELECT kb.id, kb.title, kb.content, kb.category, kb.tags,
            1 - (kb.embedding <=> $1::float4[]::vector) AS similarity
     FROM memory.knowledge_base kb
     WHERE kb.embedding IS NOT NULL AND ",
    scope!(),
    "ORDER BY kb.embedding <=> $1::float4[]::vector LIMIT $6"
);

/// Text search: `$1` the query, `$7` it as an escaped `ILIKE` pattern. An entry matches when
/// it contains the query (trigram indexes) or all its words (full-text index, V62). A substring
/// match ranks 1; the others rank by cover density (`ts_rank_cd`, normalised to 0..1). Ranking
/// is bounded to the first [`TEXT_CANDIDATES`] matches, so a query of common words costs the same
/// as a rare one.
const TEXT_SQL: &str = concat!(
    "WITH cand AS (
        SELECT kb.id FROM memory.knowledge_base kb
        WHERE (kb.title ILIKE $7 OR kb.content ILIKE $7
               OR to_tsvector('simple'::regconfig, left(kb.title || ' ' || kb.content, 200000))
                  @@ plainto_tsquery('simple'::regconfig, $1)) AND ",
    scope!(),
    "LIMIT $8)
     SELECT kb.id, kb.title, kb.content, kb.category, kb.tags,
            CASE WHEN kb.title ILIKE $7 OR kb.content ILIKE $7 THEN 1.0
                 ELSE ts_rank_cd(to_tsvector('simple'::regconfig, left(kb.title || ' ' || kb.content, 200000)),
                                 plainto_tsquery('simple'::regconfig, $1), 32) END::float8 AS similarity
     FROM cand JOIN memory.knowledge_base kb ON kb.id = cand.id
     ORDER BY similarity DESC, kb.id DESC LIMIT $6"
);

/// Text matches ranked per search at most.
const TEXT_CANDIDATES: i64 = 500;

/// `%query%` for `ILIKE`, with the pattern's own special characters escaped.
fn contains_pattern(q: &str) -> String {
    let mut p = String::with_capacity(q.len() + 2);
    p.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The entries most similar to `vector` whose similarity reaches the threshold; `None` when no
/// embedded entry is in scope, as the text search can still find unembedded ones then.
pub(super) async fn by_vector<C: GenericClient>(
    client: &C,
    vector: &[f32],
    b: &SearchBody,
) -> Result<Option<Vec<Value>>, ApiError> {
    let stmt = client.prepare_cached(VECTOR_SQL).await?;
    let rows = client
        .query(
            &stmt,
            &[
                &vector,
                &b.project_id,
                &b.circle_id,
                &b.category,
                &b.include_global,
                &b.limit,
            ],
        )
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut hits = Vec::with_capacity(rows.len());
    for r in &rows {
        if r.try_get::<_, f64>("similarity")? >= b.threshold {
            hits.push(entry_row(r, true)?);
        }
    }
    Ok(Some(hits))
}

/// The entries matching the query's text, best first.
pub(super) async fn by_text<C: GenericClient>(
    client: &C,
    b: &SearchBody,
) -> Result<Vec<Value>, ApiError> {
    let stmt = client.prepare_cached(TEXT_SQL).await?;
    let rows = client
        .query(
            &stmt,
            &[
                &b.query,
                &b.project_id,
                &b.circle_id,
                &b.category,
                &b.include_global,
                &b.limit,
                &contains_pattern(&b.query),
                &TEXT_CANDIDATES,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| entry_row(r, true))
        .collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn like_pattern_escapes_its_wildcards() {
        assert_eq!(contains_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
