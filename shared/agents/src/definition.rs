//! An agent's stored definition in `agent.agents`: name, persona link, model and tuning. This
//! crate owns the table; the edge's `/agents` routes create, change and delete agents through
//! these statements. Each takes the caller's client or transaction because the edge links the
//! agent to persona and model rows of its own catalogue in the same transaction (an agent is
//! never visible half made).

use gathering_db::GenericClient;
use gathering_db::tokio_postgres::Error as PgError;

/// A new agent, before its persona is linked.
pub struct NewAgent<'a> {
    pub name: &'a str,
    pub model_id: i64,
    pub competencies: &'a [String],
    pub can_review: &'a [String],
    pub temperature: f64,
    pub max_tokens: i32,
}

/// A change: `None` keeps the stored value.
#[derive(Default)]
pub struct AgentChange<'a> {
    pub name: Option<&'a str>,
    pub persona_id: Option<i64>,
    /// The persona's role now applies (the agent's own `role` override is dropped).
    pub role_from_persona: bool,
    pub model_id: Option<i64>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<i32>,
    pub competencies: Option<&'a [String]>,
    pub can_review: Option<&'a [String]>,
}

const INSERT_SQL: &str = "
INSERT INTO agent.agents (name, model_id, competencies, can_review, temperature, max_tokens)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id";

const LINK_PERSONA_SQL: &str = "UPDATE agent.agents SET persona_id = $2 WHERE id = $1";

const UPDATE_SQL: &str = "
UPDATE agent.agents SET
    name = COALESCE($2, name),
    persona_id = COALESCE($3, persona_id),
    role = CASE WHEN $4 THEN NULL ELSE role END,
    model_id = COALESCE($5, model_id),
    temperature = COALESCE($6, temperature),
    max_tokens = COALESCE($7, max_tokens),
    competencies = COALESCE($8, competencies),
    can_review = COALESCE($9, can_review)
WHERE id = $1";

/// Deleting an agent removes what is its own (persona, session, memories, history) by the
/// schema's cascades.
const DELETE_SQL: &str = "DELETE FROM agent.agents WHERE id = $1";

/// Inserts the agent; returns its id. The persona is linked afterwards ([`link_persona`]):
/// an agent's own persona is named after the agent's id.
pub async fn insert<C: GenericClient>(c: &C, a: &NewAgent<'_>) -> Result<i64, PgError> {
    c.query_one(
        INSERT_SQL,
        &[
            &a.name,
            &a.model_id,
            &a.competencies,
            &a.can_review,
            &a.temperature,
            &a.max_tokens,
        ],
    )
    .await?
    .try_get(0)
}

pub async fn link_persona<C: GenericClient>(
    c: &C,
    agent_id: i64,
    persona_id: i64,
) -> Result<(), PgError> {
    c.execute(LINK_PERSONA_SQL, &[&agent_id, &persona_id])
        .await
        .map(drop)
}

/// Applies `change`; `false` when there is no such agent.
pub async fn update<C: GenericClient>(
    c: &C,
    agent_id: i64,
    change: &AgentChange<'_>,
) -> Result<bool, PgError> {
    let n = c
        .execute(
            UPDATE_SQL,
            &[
                &agent_id,
                &change.name,
                &change.persona_id,
                &change.role_from_persona,
                &change.model_id,
                &change.temperature,
                &change.max_tokens,
                &change.competencies,
                &change.can_review,
            ],
        )
        .await?;
    Ok(n > 0)
}

/// Deletes the agent; `false` when there was none.
pub async fn delete<C: GenericClient>(c: &C, agent_id: i64) -> Result<bool, PgError> {
    Ok(c.execute(DELETE_SQL, &[&agent_id]).await? > 0)
}
