//! Creating, changing and deleting agents (contract §2.3): the request's checks, and the
//! persona and model links in the edge's catalogue tables. `agent.agents` itself is written
//! through `gathering_agents::definition`, the table's owner, in the same transaction.
//!
//! The persona: a request's persona that matches a shared template field for field (a builtin
//! or one made through `/personas`) links the agent to that template, prompt included;
//! otherwise the agent gets a persona of its own (`owner_agent_id`), named after it (with
//! `(agent N)` appended when the name is taken). An edit changes an owned persona in place and
//! never a shared template: the agent then gets its own copy, keeping the template's prompt.
//!
//! The model: `config.provider` must name a provider in `agent.providers`; `config.model`
//! matches one of its models by `model_name` or `model_alias`, and a model the catalogue lacks
//! is added under that provider.

use gathering_agents::definition::{self, AgentChange, NewAgent};
use gathering_db::GenericClient;
use serde::Deserialize;

use crate::error::{ApiError, FieldError, Violations};
use crate::routes::catalogue::input::{line_ok, list_ok};

pub const DEFAULT_PROVIDER: &str = "anthropic";
pub const DEFAULT_MODEL: &str = "claude-sonnet-4-20250514";
const DEFAULT_MAX_TOKENS: i32 = 4096;
const DEFAULT_TEMPERATURE: f64 = 0.7;

/// A persona as `/agents` carries it; every field optional so that PATCH can merge and so that
/// a missing field is reported with its path.
#[derive(Deserialize, Default, Clone, utoipa::ToSchema)]
pub struct PersonaIn {
    pub name: Option<String>,
    pub role: Option<String>,
    pub traits: Option<Vec<String>>,
    pub communication_style: Option<String>,
    pub specializations: Option<Vec<String>>,
    pub languages: Option<Vec<String>>,
}

#[derive(Deserialize, Default, Clone, utoipa::ToSchema)]
pub struct ConfigIn {
    pub provider: Option<String>,
    pub model: Option<String>,
    pub max_tokens: Option<i32>,
    pub temperature: Option<f64>,
    pub competencies: Option<Vec<String>>,
    pub can_review: Option<Vec<String>>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateBody {
    pub persona: Option<PersonaIn>,
    pub config: Option<ConfigIn>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PatchBody {
    pub persona: Option<PersonaIn>,
    pub config: Option<ConfigIn>,
}

fn at(path: &[&str], msg: &str) -> FieldError {
    let mut loc = vec!["body".to_owned()];
    loc.extend(path.iter().map(|s| (*s).to_owned()));
    FieldError {
        loc,
        msg: msg.to_owned(),
        kind: "value_error".into(),
    }
}

fn missing(path: &[&str]) -> FieldError {
    FieldError {
        kind: "missing".into(),
        ..at(path, "Field required")
    }
}

/// Checks the fields present.
fn check_persona(v: &mut Violations, p: &PersonaIn) {
    let mut bad = |ok: bool, field: &str, msg: &str| {
        if !ok {
            v.push(at(&["persona", field], msg));
        }
    };
    bad(
        p.name.as_deref().is_none_or(|n| line_ok(n, 1, 100)),
        "name",
        "name must be 1 to 100 characters",
    );
    bad(
        p.role.as_deref().is_none_or(|r| line_ok(r, 1, 200)),
        "role",
        "role must be 1 to 200 characters",
    );
    bad(
        p.traits.as_deref().is_none_or(|t| list_ok(t, 50, 200)),
        "traits",
        "at most 50 traits of 1 to 200 characters",
    );
    bad(
        p.communication_style
            .as_deref()
            .is_none_or(|s| line_ok(s, 1, 50)),
        "communication_style",
        "communication_style must be 1 to 50 characters",
    );
    bad(
        p.specializations
            .as_deref()
            .is_none_or(|t| list_ok(t, 50, 200)),
        "specializations",
        "at most 50 specializations of 1 to 200 characters",
    );
    bad(
        p.languages.as_deref().is_none_or(|t| list_ok(t, 20, 20)),
        "languages",
        "at most 20 languages of 1 to 20 characters",
    );
}

fn check_config(v: &mut Violations, c: &ConfigIn) {
    let mut bad = |ok: bool, field: &str, msg: &str| {
        if !ok {
            v.push(at(&["config", field], msg));
        }
    };
    bad(
        c.provider.as_deref().is_none_or(|p| line_ok(p, 1, 50)),
        "provider",
        "provider must be 1 to 50 characters",
    );
    bad(
        c.model.as_deref().is_none_or(|m| line_ok(m, 1, 100)),
        "model",
        "model must be 1 to 100 characters",
    );
    bad(
        c.max_tokens.is_none_or(|n| (1..=1_000_000).contains(&n)),
        "max_tokens",
        "max_tokens must be 1 to 1000000",
    );
    bad(
        c.temperature
            .is_none_or(|t| t.is_finite() && (0.0..=2.0).contains(&t)),
        "temperature",
        "temperature must be between 0 and 2",
    );
    bad(
        c.competencies
            .as_deref()
            .is_none_or(|t| list_ok(t, 50, 100)),
        "competencies",
        "at most 50 competencies of 1 to 100 characters",
    );
    bad(
        c.can_review.as_deref().is_none_or(|t| list_ok(t, 50, 100)),
        "can_review",
        "at most 50 entries of 1 to 100 characters",
    );
}

/// A complete persona.
struct Persona {
    name: String,
    role: String,
    traits: Vec<String>,
    style: String,
    specializations: Vec<String>,
    languages: Vec<String>,
}

impl Persona {
    /// `p` over `base` (the current persona, for PATCH).
    fn merge(p: &PersonaIn, base: Option<&Persona>) -> Option<Persona> {
        Some(Persona {
            name: p
                .name
                .as_deref()
                .map(|s| s.trim().to_owned())
                .or_else(|| base.map(|b| b.name.clone()))?,
            role: p.role.clone().or_else(|| base.map(|b| b.role.clone()))?,
            traits: p
                .traits
                .clone()
                .or_else(|| base.map(|b| b.traits.clone()))
                .unwrap_or_default(),
            style: p
                .communication_style
                .clone()
                .or_else(|| base.map(|b| b.style.clone()))
                .unwrap_or_else(|| "balanced".into()),
            specializations: p
                .specializations
                .clone()
                .or_else(|| base.map(|b| b.specializations.clone()))
                .unwrap_or_default(),
            languages: p
                .languages
                .clone()
                .or_else(|| base.map(|b| b.languages.clone()))
                .unwrap_or_else(|| vec!["fr".into(), "en".into()]),
        })
    }
}

/// A shared template identical to the persona (owned personas are never shared).
const SAME_SQL: &str = "
SELECT id FROM agent.personas
WHERE owner_agent_id IS NULL AND display_name = $1 AND role = $2 AND traits = $3
  AND communication_style = $4 AND specializations = $5 AND languages = $6
ORDER BY id LIMIT 1";

/// A persona owned by the agent ($7), copying prompt and notes from the source persona ($8).
const OWN_SQL: &str = "
INSERT INTO agent.personas (display_name, role, base_prompt, full_prompt, traits,
    communication_style, specializations, languages, work_ethic, motto, collaboration_notes,
    description, icon, default_model_id, owner_agent_id)
SELECT $1, $2, COALESCE(src.base_prompt, ''), src.full_prompt, $3, $4, $5, $6,
       COALESCE(src.work_ethic, ARRAY[]::text[]), src.motto, src.collaboration_notes,
       src.description, src.icon, src.default_model_id, $7
FROM (SELECT 1) one LEFT JOIN agent.personas src ON src.id = $8
ON CONFLICT (display_name) DO NOTHING
RETURNING id";

/// Changes an owned persona in place; a display name taken by another persona gets the
/// agent's suffix ($8).
const UPDATE_OWN_SQL: &str = "
UPDATE agent.personas SET
    display_name = CASE WHEN EXISTS (SELECT 1 FROM agent.personas o WHERE o.display_name = $2 AND o.id <> $1)
                        THEN $8 ELSE $2 END,
    role = $3, traits = $4, communication_style = $5, specializations = $6, languages = $7
WHERE id = $1";

fn suffixed(name: &str, agent_id: i64) -> String {
    format!("{name} (agent {agent_id})")
}

/// Links the agent to a persona with these fields (see the module doc) and returns its id.
async fn attach<C: GenericClient>(
    c: &C,
    agent_id: i64,
    p: &Persona,
    source: Option<i64>,
) -> Result<i64, ApiError> {
    let same = c
        .query_opt(
            SAME_SQL,
            &[
                &p.name,
                &p.role,
                &p.traits,
                &p.style,
                &p.specializations,
                &p.languages,
            ],
        )
        .await?;
    if let Some(r) = same {
        return Ok(r.try_get(0)?);
    }
    for name in [p.name.clone(), suffixed(&p.name, agent_id)] {
        let row = c
            .query_opt(
                OWN_SQL,
                &[
                    &name,
                    &p.role,
                    &p.traits,
                    &p.style,
                    &p.specializations,
                    &p.languages,
                    &agent_id,
                    &source,
                ],
            )
            .await?;
        if let Some(r) = row {
            return Ok(r.try_get(0)?);
        }
    }
    Err(ApiError::Conflict(format!(
        "Persona name '{}' is taken",
        suffixed(&p.name, agent_id)
    )))
}

/// Finds (or adds) the model; `None` when there is no such provider.
const RESOLVE_SQL: &str = "
WITH p AS (SELECT id FROM agent.providers WHERE name = $1),
     found AS (SELECT m.id FROM agent.models m JOIN p ON m.provider_id = p.id
               WHERE m.model_name = $2 OR m.model_alias = $2
               ORDER BY (m.model_name = $2) DESC, m.id LIMIT 1),
     added AS (INSERT INTO agent.models (provider_id, model_name)
               SELECT p.id, $2 FROM p WHERE NOT EXISTS (SELECT 1 FROM found)
               ON CONFLICT (provider_id, model_name) DO NOTHING
               RETURNING id)
SELECT (SELECT id FROM p) AS provider_id,
       COALESCE((SELECT id FROM found), (SELECT id FROM added)) AS model_id";

/// The model row for `provider` and `model`; 422 for an unknown provider.
async fn resolve_model<C: GenericClient>(
    c: &C,
    provider: &str,
    model: &str,
) -> Result<i64, ApiError> {
    let provider = provider.trim().to_lowercase();
    let model = model.trim();
    // Twice at most: a concurrent insert of the same model hides it from the first attempt.
    for _ in 0..2 {
        let r = c.query_one(RESOLVE_SQL, &[&provider, &model]).await?;
        let provider_id: Option<i64> = r.try_get("provider_id")?;
        if provider_id.is_none() {
            return Err(ApiError::Validation(vec![at(
                &["config", "provider"],
                &format!("Unknown provider '{provider}'"),
            )]));
        }
        if let Some(id) = r.try_get::<_, Option<i64>>("model_id")? {
            return Ok(id);
        }
    }
    Err(ApiError::Conflict(
        "The model was being changed; retry".into(),
    ))
}

/// Validates a create request; returns the complete persona and config.
fn check_create(body: &CreateBody) -> Result<(Persona, ConfigIn), ApiError> {
    let mut v = Violations::new();
    let persona = body.persona.clone().unwrap_or_default();
    if body.persona.is_none() {
        v.push(missing(&["persona"]));
    } else {
        if persona.name.is_none() {
            v.push(missing(&["persona", "name"]));
        }
        if persona.role.is_none() {
            v.push(missing(&["persona", "role"]));
        }
    }
    check_persona(&mut v, &persona);
    let config = body.config.clone().unwrap_or_default();
    check_config(&mut v, &config);
    v.finish()?;
    let persona = Persona::merge(&persona, None)
        .ok_or_else(|| ApiError::Validation(vec![missing(&["persona"])]))?;
    Ok((persona, config))
}

/// Creates the agent in one transaction; returns its id.
pub async fn create(client: &mut gathering_db::Client, body: &CreateBody) -> Result<i64, ApiError> {
    let (persona, config) = check_create(body)?;
    let tx = client.transaction().await?;
    let model_id = resolve_model(
        &tx,
        config.provider.as_deref().unwrap_or(DEFAULT_PROVIDER),
        config.model.as_deref().unwrap_or(DEFAULT_MODEL),
    )
    .await?;
    let id = definition::insert(
        &tx,
        &NewAgent {
            name: &persona.name,
            model_id,
            competencies: config.competencies.as_deref().unwrap_or_default(),
            can_review: config.can_review.as_deref().unwrap_or_default(),
            temperature: config.temperature.unwrap_or(DEFAULT_TEMPERATURE),
            max_tokens: config.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        },
    )
    .await?;
    let persona_id = attach(&tx, id, &persona, None).await?;
    definition::link_persona(&tx, id, persona_id).await?;
    tx.commit().await?;
    Ok(id)
}

/// The agent's current persona and model, locked for the change.
const CURRENT_SQL: &str = "
SELECT a.persona_id, a.name, COALESCE(a.role, p.role, 'assistant') AS role,
       COALESCE(p.traits, ARRAY[]::text[]) AS traits,
       COALESCE(p.communication_style, 'balanced') AS style,
       COALESCE(p.specializations, ARRAY[]::text[]) AS specializations,
       COALESCE(p.languages, ARRAY['fr', 'en']) AS languages,
       p.owner_agent_id = a.id AS owned, pr.name AS provider, m.model_name AS model
FROM agent.agents a
LEFT JOIN agent.personas p ON p.id = a.persona_id
LEFT JOIN agent.models m ON m.id = a.model_id
LEFT JOIN agent.providers pr ON pr.id = m.provider_id
WHERE a.id = $1
FOR UPDATE OF a";

/// Applies a PATCH in one transaction: the fields given change, the others stay. `false` when
/// there is no such agent.
pub async fn patch(
    client: &mut gathering_db::Client,
    id: i64,
    body: &PatchBody,
) -> Result<bool, ApiError> {
    let mut v = Violations::new();
    if let Some(p) = &body.persona {
        check_persona(&mut v, p);
    }
    if let Some(c) = &body.config {
        check_config(&mut v, c);
    }
    v.finish()?;
    let tx = client.transaction().await?;
    let Some(cur) = tx.query_opt(CURRENT_SQL, &[&id]).await? else {
        return Ok(false);
    };
    let current = Persona {
        name: cur.try_get("name")?,
        role: cur.try_get("role")?,
        traits: cur.try_get("traits")?,
        style: cur.try_get("style")?,
        specializations: cur.try_get("specializations")?,
        languages: cur.try_get("languages")?,
    };
    let mut name = None;
    let mut persona_id = None;
    let mut role_from_persona = false;
    if let Some(p) = &body.persona {
        let merged = Persona::merge(p, Some(&current))
            .ok_or_else(|| ApiError::internal("merged persona incomplete"))?;
        let current_id: Option<i64> = cur.try_get("persona_id")?;
        let owned: Option<bool> = cur.try_get("owned")?;
        match current_id {
            Some(pid) if owned == Some(true) => {
                tx.execute(
                    UPDATE_OWN_SQL,
                    &[
                        &pid,
                        &merged.name,
                        &merged.role,
                        &merged.traits,
                        &merged.style,
                        &merged.specializations,
                        &merged.languages,
                        &suffixed(&merged.name, id),
                    ],
                )
                .await?;
            }
            source => persona_id = Some(attach(&tx, id, &merged, source).await?),
        }
        role_from_persona = p.role.is_some();
        name = Some(merged.name);
    }
    let mut model_id = None;
    if let Some(c) = &body.config {
        let cur_provider: Option<String> = cur.try_get("provider")?;
        let cur_model: Option<String> = cur.try_get("model")?;
        let provider_changes = c.provider.as_deref().is_some_and(|p| {
            Some(p.trim().to_lowercase()) != cur_provider.as_deref().map(str::to_owned)
        });
        if provider_changes && c.model.is_none() {
            return Err(ApiError::Validation(vec![at(
                &["config", "model"],
                "model is required when the provider changes",
            )]));
        }
        if c.provider.is_some() || c.model.is_some() {
            let provider = c
                .provider
                .clone()
                .or(cur_provider)
                .unwrap_or_else(|| DEFAULT_PROVIDER.into());
            let model = c
                .model
                .clone()
                .or(cur_model)
                .unwrap_or_else(|| DEFAULT_MODEL.into());
            model_id = Some(resolve_model(&tx, &provider, &model).await?);
        }
    }
    let config = body.config.clone().unwrap_or_default();
    let change = AgentChange {
        name: name.as_deref(),
        persona_id,
        role_from_persona,
        model_id,
        temperature: config.temperature,
        max_tokens: config.max_tokens,
        competencies: config.competencies.as_deref(),
        can_review: config.can_review.as_deref(),
    };
    definition::update(&tx, id, &change).await?;
    tx.commit().await?;
    Ok(true)
}

/// Deletes the agent and what is its own (persona, session, memories, history); `false` when
/// there was no such agent.
pub async fn delete<C: GenericClient>(c: &C, id: i64) -> Result<bool, ApiError> {
    Ok(definition::delete(c, id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_what_the_patch_does_not_name() {
        let base = Persona {
            name: "Ada".into(),
            role: "dev".into(),
            traits: vec!["calm".into()],
            style: "formal".into(),
            specializations: vec![],
            languages: vec!["en".into()],
        };
        let p = PersonaIn {
            role: Some("lead".into()),
            ..Default::default()
        };
        let m = Persona::merge(&p, Some(&base)).unwrap();
        assert_eq!((m.name.as_str(), m.role.as_str()), ("Ada", "lead"));
        assert_eq!(
            (m.traits, m.style),
            (vec!["calm".to_owned()], "formal".to_owned())
        );
        assert!(Persona::merge(&PersonaIn::default(), None).is_none());
    }
}
