//! Long-term memory (`memory.memories`): remember and recall per agent, circle or project.
//! Recall uses pgvector cosine similarity when the gateway can embed the query (and memories
//! have embeddings), and trigram/word similarity otherwise; the result says which it used.

use gathering_db::GenericClient;
use serde::Serialize;

use crate::AgentError;
use crate::llm::Llm;

/// Dimension of `memory.memories.embedding`.
pub const DIMENSIONS: usize = 1536;

pub const MEMORY_TYPES: &[&str] = &[
    "fact",
    "preference",
    "context",
    "decision",
    "error",
    "feedback",
    "learning",
];

/// Whose memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Agent(i64),
    Circle(i64),
    Project(i64),
}

impl Scope {
    fn parts(self) -> (&'static str, i64) {
        match self {
            Scope::Agent(id) => ("agent", id),
            Scope::Circle(id) => ("circle", id),
            Scope::Project(id) => ("project", id),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewMemory {
    pub scope: Scope,
    pub content: String,
    pub memory_type: String,
    pub key: Option<String>,
    pub tags: Vec<String>,
    pub importance: f64,
    pub source_type: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stored {
    pub id: i64,
    pub key: String,
    pub embedded: bool,
}

/// `[0.1,0.2,…]`, pgvector's text form.
fn vector_literal(v: &[f32]) -> String {
    let mut s = String::with_capacity(v.len() * 10 + 2);
    s.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&x.to_string());
    }
    s.push(']');
    s
}

pub fn validate(m: &NewMemory) -> Result<(), AgentError> {
    if m.content.trim().is_empty() || m.content.len() > 100_000 {
        return Err(AgentError::Invalid(
            "content must be 1 to 100000 characters".into(),
        ));
    }
    if !MEMORY_TYPES.contains(&m.memory_type.as_str()) {
        return Err(AgentError::Invalid(format!(
            "memory_type must be one of {}",
            MEMORY_TYPES.join(", ")
        )));
    }
    if !(0.0..=1.0).contains(&m.importance) {
        return Err(AgentError::Invalid(
            "importance must be between 0 and 1".into(),
        ));
    }
    if m.key.as_ref().is_some_and(|k| k.len() > 200) || m.tags.len() > 50 {
        return Err(AgentError::Invalid(
            "key at most 200 characters, at most 50 tags".into(),
        ));
    }
    Ok(())
}

/// Forgets a memory of an agent: it stays, inactive (no longer recalled or counted as
/// active). `false` when the agent has no such memory.
pub async fn forget<C: GenericClient>(
    client: &C,
    agent_id: i64,
    memory_id: i64,
) -> Result<bool, AgentError> {
    let n = client
        .execute(
            "UPDATE memory.memories SET is_active = false WHERE id = $1 AND agent_id = $2",
            &[&memory_id, &agent_id],
        )
        .await?;
    Ok(n > 0)
}

/// Stores memories (embedded in one gateway call when possible) in one statement.
pub async fn remember<C: GenericClient>(
    c: &C,
    llm: Option<&Llm>,
    memories: &[NewMemory],
) -> Result<Vec<Stored>, AgentError> {
    for m in memories {
        validate(m)?;
    }
    if memories.is_empty() {
        return Ok(Vec::new());
    }
    let agent_for_usage = memories.iter().find_map(|m| match m.scope {
        Scope::Agent(id) => Some(id),
        _ => None,
    });
    let texts: Vec<String> = memories.iter().map(|m| m.content.clone()).collect();
    let vectors = match llm {
        Some(llm) => llm.embed(&texts, agent_for_usage.unwrap_or(0)).await,
        None => None,
    };
    let scopes: Vec<&str> = memories.iter().map(|m| m.scope.parts().0).collect();
    let ids: Vec<i64> = memories.iter().map(|m| m.scope.parts().1).collect();
    let types: Vec<&str> = memories.iter().map(|m| m.memory_type.as_str()).collect();
    let keys: Vec<Option<&str>> = memories.iter().map(|m| m.key.as_deref()).collect();
    let values: Vec<&str> = memories.iter().map(|m| m.content.as_str()).collect();
    let tags: Vec<serde_json::Value> = memories
        .iter()
        .map(|m| serde_json::Value::from(m.tags.clone()))
        .collect();
    let importance: Vec<f64> = memories.iter().map(|m| m.importance).collect();
    let sources: Vec<Option<&str>> = memories.iter().map(|m| m.source_type.as_deref()).collect();
    let embeddings: Vec<Option<String>> = (0..memories.len())
        .map(|i| {
            vectors
                .as_ref()
                .and_then(|v| v.get(i))
                .filter(|v| v.len() == DIMENSIONS)
                .map(|v| vector_literal(v))
        })
        .collect();
    let rows = c
        .query(
            "INSERT INTO memory.memories (scope, scope_id, agent_id, memory_type, key, value, tags, importance, source_type, embedding) \
             SELECT s::memory_scope, i, CASE WHEN s = 'agent' THEN i END, t::memory_type, COALESCE(k, ''), v, \
                    ARRAY(SELECT jsonb_array_elements_text(g)), imp, src, e::vector \
             FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::float8[], $8::text[], $9::text[]) \
                  WITH ORDINALITY AS x(s, i, t, k, v, g, imp, src, e, ord) \
             ORDER BY ord \
             RETURNING id, key, embedding IS NOT NULL",
            &[&scopes, &ids, &types, &keys, &values, &tags, &importance, &sources, &embeddings],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            Ok(Stored {
                id: r.try_get(0)?,
                key: r.try_get(1)?,
                embedded: r.try_get(2)?,
            })
        })
        .collect::<Result<_, gathering_db::tokio_postgres::Error>>()?)
}

#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub id: i64,
    pub key: String,
    pub value: String,
    pub memory_type: String,
    pub similarity: f64,
    pub importance: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Recall {
    /// `vector` (pgvector similarity) or `text` (trigram/word similarity).
    pub method: &'static str,
    pub memories: Vec<Hit>,
}

pub struct Query<'a> {
    pub scope: Scope,
    pub text: &'a str,
    pub limit: i64,
    pub threshold: f64,
    pub types: &'a [String],
    pub tags: &'a [String],
}

const VECTOR_SQL: &str = "
SELECT id, key, value, memory_type::text AS memory_type, importance,
       1 - (embedding <=> $3::text::vector) AS similarity
FROM memory.memories
WHERE is_active AND embedding IS NOT NULL
  AND (($1 = 'agent' AND agent_id = $2) OR ($1 <> 'agent' AND scope = $1::memory_scope AND scope_id = $2))
  AND (expires_at IS NULL OR expires_at > now())
  AND (cardinality($4::text[]) = 0 OR memory_type::text = ANY($4))
  AND (cardinality($5::text[]) = 0 OR tags && $5)
ORDER BY embedding <=> $3::text::vector
LIMIT $6";

const TEXT_SQL: &str = "
SELECT id, key, value, memory_type::text AS memory_type, importance,
       greatest(word_similarity($3, value), CASE WHEN strpos(lower(value), lower($3)) > 0 THEN 1.0 ELSE 0 END)::float8 AS similarity
FROM memory.memories
WHERE is_active
  AND (($1 = 'agent' AND agent_id = $2) OR ($1 <> 'agent' AND scope = $1::memory_scope AND scope_id = $2))
  AND (expires_at IS NULL OR expires_at > now())
  AND (cardinality($4::text[]) = 0 OR memory_type::text = ANY($4))
  AND (cardinality($5::text[]) = 0 OR tags && $5)
  AND (strpos(lower(value), lower($3)) > 0 OR $3 <% value OR strpos(lower(key), lower($3)) > 0)
ORDER BY similarity DESC, importance DESC, id DESC
LIMIT $6";

fn hit(r: &gathering_db::tokio_postgres::Row) -> Result<Hit, gathering_db::tokio_postgres::Error> {
    Ok(Hit {
        id: r.try_get("id")?,
        key: r.try_get("key")?,
        value: r.try_get("value")?,
        memory_type: r.try_get("memory_type")?,
        similarity: r.try_get("similarity")?,
        importance: r.try_get("importance")?,
    })
}

pub async fn recall<C: GenericClient>(
    c: &C,
    llm: Option<&Llm>,
    q: &Query<'_>,
) -> Result<Recall, AgentError> {
    let (kind, id) = q.scope.parts();
    let limit = q.limit.clamp(1, 50);
    if q.text.trim().is_empty() {
        return Ok(Recall {
            method: "text",
            memories: Vec::new(),
        });
    }
    let query_vector = match llm {
        Some(llm) => {
            llm.embed(&[q.text.to_owned()], if kind == "agent" { id } else { 0 })
                .await
        }
        None => None,
    };
    let mut result = None;
    if let Some(v) = query_vector
        .and_then(|mut v| v.pop())
        .filter(|v| v.len() == DIMENSIONS)
    {
        let stmt = c.prepare_cached(VECTOR_SQL).await?;
        let rows = c
            .query(
                &stmt,
                &[&kind, &id, &vector_literal(&v), &q.types, &q.tags, &limit],
            )
            .await?;
        let mut hits = rows.iter().map(hit).collect::<Result<Vec<Hit>, _>>()?;
        hits.retain(|h| h.similarity >= q.threshold);
        if !rows.is_empty() {
            result = Some(Recall {
                method: "vector",
                memories: hits,
            });
        }
    }
    let recall = match result {
        Some(r) => r,
        None => {
            let stmt = c.prepare_cached(TEXT_SQL).await?;
            let rows = c
                .query(&stmt, &[&kind, &id, &q.text, &q.types, &q.tags, &limit])
                .await?;
            Recall {
                method: "text",
                memories: rows.iter().map(hit).collect::<Result<_, _>>()?,
            }
        }
    };
    let ids: Vec<i64> = recall.memories.iter().map(|m| m.id).collect();
    if !ids.is_empty() {
        c.execute(
            "UPDATE memory.memories SET access_count = access_count + 1, last_accessed_at = now() WHERE id = ANY($1)",
            &[&ids],
        )
        .await?;
    }
    Ok(recall)
}

#[cfg(test)]
mod tests {
    use super::vector_literal;

    #[test]
    fn pgvector_text_form() {
        assert_eq!(vector_literal(&[1.0, -0.5, 0.25]), "[1,-0.5,0.25]");
        assert_eq!(vector_literal(&[]), "[]");
    }
}
