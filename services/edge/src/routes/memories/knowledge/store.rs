//! Writing knowledge entries: their embeddings from the LLM gateway, batch by batch, and the
//! rows inserted with them, a batch per statement (used by `POST /memories/knowledge` and by
//! document upload, which writes a document and its chunks together).

use gathering_agents::Llm;
use gathering_agents::memory::DIMENSIONS;
use gathering_db::GenericClient;
use serde_json::{Value, json};

use crate::error::{ApiError, FieldError};
use crate::routes::catalogue::input::{Refusal, refusal};

/// Longest text sent for one embedding: embedding models take a few thousand tokens; the start
/// of a longer text stands for it.
const EMBED_CHARS: usize = 16_000;
/// Texts per gateway embedding call, and rows per insert statement.
const BATCH: usize = 128;

/// What entries written together share.
pub struct Common {
    pub category: Option<String>,
    pub project_id: Option<i64>,
    pub circle_id: Option<i64>,
    pub is_global: bool,
    pub author_agent_id: Option<i64>,
    pub parent_id: Option<i64>,
}

/// One entry to write: a document, or one of its chunks.
pub struct NewEntry {
    pub title: String,
    pub content: String,
    pub tags: Vec<String>,
    pub source_url: Option<String>,
    pub chunk_index: Option<i32>,
}

/// Embeddings of `texts` (each cut to [`EMBED_CHARS`]), batch by batch; `None` where the
/// gateway could not embed.
pub async fn embed(llm: &Llm, texts: &[String]) -> Vec<Option<Vec<f32>>> {
    let mut out = Vec::with_capacity(texts.len());
    for batch in texts.chunks(BATCH) {
        let cut: Vec<String> = batch
            .iter()
            .map(|t| t.chars().take(EMBED_CHARS).collect())
            .collect();
        match llm.embed(&cut, 0).await {
            Some(vectors) => out.extend(
                vectors
                    .into_iter()
                    .map(|v| (v.len() == DIMENSIONS).then_some(v)),
            ),
            None => out.extend(std::iter::repeat_n(None, batch.len())),
        }
    }
    out
}

/// Rows in order; the embedding of row `i` is the slice at `offsets[i]` of one flat `float4[]`
/// (−1: none), so a batch is one statement whatever its size.
const INSERT_SQL: &str = "
INSERT INTO memory.knowledge_base (title, content, category, project_id, circle_id, is_global,
    tags, source_url, author_agent_id, parent_id, chunk_index, embedding)
SELECT t, c, $3, $4, $5, $6, ARRAY(SELECT jsonb_array_elements_text(g)), u, $7, $8, ci,
       CASE WHEN o >= 0 THEN (($9::float4[])[o + 1 : o + 1536])::vector END
FROM unnest($1::text[], $2::text[], $10::jsonb[], $11::text[], $12::int4[], $13::int4[])
     WITH ORDINALITY AS x(t, c, g, u, ci, o, ord)
ORDER BY ord
RETURNING id";

/// Inserts the entries with their embeddings; returns their ids in order.
pub async fn insert<C: GenericClient>(
    c: &C,
    common: &Common,
    entries: &[NewEntry],
    embeddings: &[Option<Vec<f32>>],
) -> Result<Vec<i64>, ApiError> {
    let mut ids = Vec::with_capacity(entries.len());
    for (batch, vectors) in entries.chunks(BATCH).zip(embeddings.chunks(BATCH)) {
        let titles: Vec<&str> = batch.iter().map(|e| e.title.as_str()).collect();
        let contents: Vec<&str> = batch.iter().map(|e| e.content.as_str()).collect();
        let tags: Vec<Value> = batch.iter().map(|e| json!(e.tags)).collect();
        let urls: Vec<Option<&str>> = batch.iter().map(|e| e.source_url.as_deref()).collect();
        let chunk_index: Vec<Option<i32>> = batch.iter().map(|e| e.chunk_index).collect();
        let mut flat: Vec<f32> = Vec::new();
        let mut offsets: Vec<i32> = Vec::with_capacity(batch.len());
        for v in vectors {
            match v {
                Some(v) => {
                    offsets.push(i32::try_from(flat.len()).map_err(ApiError::internal)?);
                    flat.extend_from_slice(v);
                }
                None => offsets.push(-1),
            }
        }
        let rows = c
            .query(
                INSERT_SQL,
                &[
                    &titles,
                    &contents,
                    &common.category,
                    &common.project_id,
                    &common.circle_id,
                    &common.is_global,
                    &common.author_agent_id,
                    &common.parent_id,
                    &flat,
                    &tags,
                    &urls,
                    &chunk_index,
                    &offsets,
                ],
            )
            .await
            .map_err(refused)?;
        for r in &rows {
            ids.push(r.try_get::<_, i64>(0)?);
        }
    }
    Ok(ids)
}

/// A missing project, circle or author is the caller's mistake (422 on that field).
fn refused(e: gathering_db::tokio_postgres::Error) -> ApiError {
    match refusal(&e) {
        Some(Refusal::Missing(c)) => {
            let field = ["project_id", "circle_id", "author_agent_id"]
                .into_iter()
                .find(|f| c.contains(f.trim_end_matches("_id")))
                .unwrap_or("body");
            ApiError::Validation(vec![FieldError::body(
                field,
                format!("{field} does not refer to an existing row"),
            )])
        }
        _ => e.into(),
    }
}
