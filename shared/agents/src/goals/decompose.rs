//! Decomposition: the goal's agent plans subgoals with its own model (through the gateway,
//! like every model call), as structured output — one JSON object validated against
//! [`plan_schema`] with the `jsonschema` crate, then checked for what a schema cannot say
//! (dependencies refer to other subgoals of the same answer and form no cycle). An invalid
//! answer is sent back once with the reasons; a second invalid answer, or a failed model call,
//! is a [`GoalError::Model`] (502) and changes nothing. A valid plan is written in one
//! transaction: the subgoals, their `blocks` dependencies, the parent marked decomposed, and the
//! activities and events. The model call happens before that transaction, never inside one.

use std::time::Instant;

use gathering_db::GenericClient;
use serde::Deserialize;
use serde_json::{Value, json};

use super::record::{Note, Subject, record};
use super::settle::{Effects, settle};
use super::write::{adopt, created_by, lock_parent};
use super::{Actor, GoalError, PRIORITIES};
use crate::llm::Message;
use crate::prompt::{PromptParts, system_prompt};
use crate::{AgentError, AgentRuntime, profile};

/// How many subgoals a decomposition may ask for.
pub const MAX_SUBGOALS: i32 = 10;
/// Model answers per decomposition: the first, and one retry after an invalid answer.
const ANSWERS: usize = 2;

/// The JSON Schema a plan of at most `max` subgoals must satisfy.
pub fn plan_schema(max: usize) -> Value {
    json!({
        "type": "object",
        "required": ["subgoals"],
        "properties": {
            "strategy": {"type": "string", "maxLength": 500},
            "subgoals": {
                "type": "array",
                "minItems": 1,
                "maxItems": max,
                "items": {
                    "type": "object",
                    "required": ["title", "description", "priority", "estimated_hours"],
                    "additionalProperties": false,
                    "properties": {
                        "title": {"type": "string", "minLength": 1, "maxLength": 255},
                        "description": {"type": "string", "maxLength": 5000},
                        "priority": {"enum": PRIORITIES},
                        "estimated_hours": {"type": "number", "minimum": 0, "maximum": 10000},
                        "depends_on": {
                            "type": "array",
                            "items": {"type": "integer", "minimum": 1, "maximum": max},
                            "uniqueItems": true,
                            "maxItems": max
                        }
                    }
                }
            }
        }
    })
}

#[derive(Debug, Deserialize)]
struct Plan {
    strategy: Option<String>,
    subgoals: Vec<Planned>,
}

#[derive(Debug, Deserialize)]
struct Planned {
    title: String,
    description: String,
    priority: String,
    estimated_hours: f64,
    #[serde(default)]
    depends_on: Vec<usize>,
}

/// The JSON object of a model answer (a fenced block or surrounding prose is tolerated).
fn json_of(content: &str) -> Result<Value, String> {
    let start = content.find('{');
    let end = content.rfind('}');
    match (start, end) {
        (Some(s), Some(e)) if s < e => serde_json::from_str(&content[s..=e])
            .map_err(|e| format!("the answer is not valid JSON: {e}")),
        _ => Err("the answer contains no JSON object".into()),
    }
}

/// A valid plan, or why the answer is not one.
fn parse_plan(content: &str, validator: &jsonschema::Validator) -> Result<Plan, String> {
    let value = json_of(content)?;
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .take(5)
        .map(|e| format!("{} (at {})", e, e.instance_path()))
        .collect();
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    let plan: Plan =
        serde_json::from_value(value).map_err(|e| format!("unexpected plan shape: {e}"))?;
    let n = plan.subgoals.len();
    for (i, s) in plan.subgoals.iter().enumerate() {
        if let Some(d) = s.depends_on.iter().find(|d| **d == i + 1 || **d > n) {
            return Err(format!(
                "subgoal {} depends on {d}, which is itself or not in the list",
                i + 1
            ));
        }
    }
    if has_cycle(&plan.subgoals) {
        return Err("the dependencies between subgoals form a cycle".into());
    }
    Ok(plan)
}

/// Kahn's algorithm over `depends_on` (1-based positions).
fn has_cycle(subgoals: &[Planned]) -> bool {
    let n = subgoals.len();
    let mut waiting: Vec<usize> = subgoals.iter().map(|s| s.depends_on.len()).collect();
    let mut ready: Vec<usize> = (0..n).filter(|i| waiting[*i] == 0).collect();
    let mut done = 0;
    while let Some(i) = ready.pop() {
        done += 1;
        for (j, s) in subgoals.iter().enumerate() {
            if s.depends_on.contains(&(i + 1)) {
                waiting[j] -= 1;
                if waiting[j] == 0 {
                    ready.push(j);
                }
            }
        }
    }
    done < n
}

/// The goal as the planner needs it.
struct Target {
    agent_id: i64,
    title: String,
    description: String,
    success_criteria: Option<String>,
    context: Value,
}

async fn target<C: GenericClient>(c: &C, goal_id: i64) -> Result<Target, GoalError> {
    let row = c
        .query_opt(
            "SELECT agent_id, title, description, success_criteria, context, is_decomposed, status::text AS status \
             FROM agent.goals WHERE id = $1",
            &[&goal_id],
        )
        .await?
        .ok_or_else(GoalError::goal_not_found)?;
    if row.try_get::<_, bool>("is_decomposed")? {
        return Err(GoalError::Refused("Goal is already decomposed".into()));
    }
    let status: String = row.try_get("status")?;
    if super::FINISHED.contains(&status.as_str()) {
        return Err(GoalError::Refused(format!(
            "Cannot decompose a {status} goal"
        )));
    }
    Ok(Target {
        agent_id: row.try_get("agent_id")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        success_criteria: row.try_get("success_criteria")?,
        context: row.try_get("context")?,
    })
}

fn instructions(schema: &Value, max: usize) -> String {
    format!(
        "Tu découpes un objectif en au plus {max} sous-objectifs concrets, ordonnés, vérifiables. \
         Réponds uniquement par un objet JSON conforme à ce JSON Schema, sans texte autour :\n{schema}\n\
         `depends_on` liste les positions (à partir de 1) des sous-objectifs de ta réponse qui doivent être \
         terminés avant celui-ci."
    )
}

fn request_text(t: &Target) -> String {
    let mut text = format!("Objectif : {}\n\n{}", t.title, t.description);
    if let Some(c) = t.success_criteria.as_deref().filter(|c| !c.is_empty()) {
        text.push_str(&format!("\n\nCritères de réussite : {c}"));
    }
    if t.context.as_object().is_some_and(|o| !o.is_empty()) {
        text.push_str(&format!("\n\nContexte : {}", t.context));
    }
    text
}

/// Asks the agent's model for a plan; returns it with the tokens it cost.
async fn plan(
    rt: &AgentRuntime,
    goal_id: i64,
    t: &Target,
    max: usize,
) -> Result<(Plan, i32), GoalError> {
    let client = rt.pool.get().await?;
    let profile = match profile::load(&client, t.agent_id).await {
        Ok(p) if p.is_active => p,
        Ok(_) | Err(AgentError::NotFound(_)) => {
            return Err(GoalError::Refused(format!(
                "Agent {} not found in registry. Cannot decompose.",
                t.agent_id
            )));
        }
        Err(e) => return Err(e.into()),
    };
    drop(client);
    let schema = plan_schema(max);
    let validator = jsonschema::validator_for(&schema)
        .map_err(|e| GoalError::Agent(AgentError::Invalid(format!("plan schema: {e}"))))?;
    let extra = instructions(&schema, max);
    let system = system_prompt(
        &profile,
        &PromptParts {
            extra: Some(&extra),
            ..Default::default()
        },
    );
    let mut messages = vec![
        Message {
            role: "system".into(),
            content: system,
            ..Default::default()
        },
        Message {
            role: "user".into(),
            content: request_text(t),
            ..Default::default()
        },
    ];
    let model = profile
        .model
        .clone()
        .unwrap_or_else(|| rt.config.default_model.clone());
    let mut tokens = 0i32;
    let mut why = String::new();
    for answer in 1..=ANSWERS {
        let request_id = format!("goal-{goal_id}-decompose-{answer}");
        let request =
            AgentRuntime::request(&profile, &model, messages.clone(), Vec::new(), &request_id);
        let completion = rt
            .llm
            .complete("goals", request)
            .await
            .map_err(|e| GoalError::Model(format!("The agent's model failed: {e}")))?;
        tokens = tokens.saturating_add((completion.input_tokens + completion.output_tokens) as i32);
        match parse_plan(&completion.content, &validator) {
            Ok(plan) => return Ok((plan, tokens)),
            Err(e) => why = e,
        }
        messages.push(Message {
            role: "assistant".into(),
            content: completion.content,
            ..Default::default()
        });
        messages.push(Message {
            role: "user".into(),
            content: format!(
                "Ta réponse n'est pas valide : {why}. Réponds de nouveau, uniquement par l'objet JSON conforme au schéma."
            ),
            ..Default::default()
        });
    }
    Err(GoalError::Model(format!(
        "The agent's model did not return a valid decomposition ({ANSWERS} answers): {why}"
    )))
}

/// Decomposes goal `goal_id` into at most `max_subgoals` subgoals planned by its agent; returns
/// their ids in plan order.
pub async fn decompose(
    rt: &AgentRuntime,
    goal_id: i64,
    max_subgoals: i32,
    actor: &Actor,
) -> Result<Vec<i64>, GoalError> {
    if !(1..=MAX_SUBGOALS).contains(&max_subgoals) {
        return Err(GoalError::Refused(format!(
            "max_subgoals must be between 1 and {MAX_SUBGOALS}"
        )));
    }
    let max = max_subgoals as usize;
    let began = Instant::now();
    let t = {
        let client = rt.pool.get().await?;
        target(&client, goal_id).await?
    };
    let outcome = plan(rt, goal_id, &t, max).await;
    let duration_ms = i32::try_from(began.elapsed().as_millis()).unwrap_or(i32::MAX);
    let (plan, tokens) = match outcome {
        Ok(p) => p,
        Err(e @ GoalError::Model(_)) => {
            note_failure(rt, goal_id, &e.to_string(), duration_ms, actor).await;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let mut client = rt.pool.get().await?;
    let tx = client.transaction().await?;
    let parent = lock_parent(&tx, goal_id).await?;
    if parent.is_decomposed {
        return Err(GoalError::Refused("Goal is already decomposed".into()));
    }
    let mut ids = Vec::with_capacity(plan.subgoals.len());
    for s in &plan.subgoals {
        let id: i64 = tx
            .query_one(
                "INSERT INTO agent.goals (agent_id, circle_id, parent_id, title, description, priority, \
                     estimated_hours, created_by) \
                 SELECT p.agent_id, p.circle_id, p.id, $2, $3, $4::text::public.goal_priority, $5, $6 \
                 FROM agent.goals p WHERE p.id = $1 RETURNING id",
                &[&goal_id, &s.title, &s.description, &s.priority, &s.estimated_hours, &created_by(actor)],
            )
            .await?
            .try_get(0)?;
        let subject = Subject {
            id,
            agent_id: parent.agent_id,
            title: &s.title,
        };
        let note = Note::new("created")
            .describe(s.title.clone())
            .data(json!({"parent_id": goal_id}));
        record(&tx, subject, note, actor).await?;
        ids.push(id);
    }
    let mut blocked = Vec::new();
    for (i, s) in plan.subgoals.iter().enumerate() {
        for d in &s.depends_on {
            tx.execute(
                "INSERT INTO agent.goal_dependencies (goal_id, depends_on_id, dependency_type) VALUES ($1, $2, 'blocks')",
                &[&ids[i], &ids[d - 1]],
            )
            .await?;
        }
        if !s.depends_on.is_empty() {
            blocked.push(ids[i]);
        }
    }
    let strategy = plan.strategy.as_deref().unwrap_or("llm");
    let note = Note {
        tokens,
        duration_ms,
        ..Note::new("decomposed")
    }
    .describe(format!(
        "Decomposed into {} subgoals: {strategy}",
        ids.len()
    ))
    .data(json!({"subgoal_ids": ids}));
    record(&tx, parent.subject(), note, actor).await?;
    let children: Vec<(i64, &str)> = ids
        .iter()
        .zip(&plan.subgoals)
        .map(|(id, s)| (*id, s.title.as_str()))
        .collect();
    adopt(&tx, &parent, &children, "llm", actor).await?;
    settle(
        &tx,
        Effects {
            reconcile: blocked,
            ..Effects::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(ids)
}

/// Records a failed decomposition on the goal (best effort: the caller reports the failure).
async fn note_failure(rt: &AgentRuntime, goal_id: i64, why: &str, duration_ms: i32, actor: &Actor) {
    let result: Result<(), GoalError> = async {
        let mut client = rt.pool.get().await?;
        let tx = client.transaction().await?;
        let goal = super::record::Locked::load(&tx, goal_id).await?;
        let note = Note {
            duration_ms,
            ..Note::new("decomposition_failed")
        }
        .describe(why.chars().take(2000).collect::<String>());
        record(&tx, goal.subject(), note, actor).await?;
        tx.commit().await?;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(goal_id, error = %e, "could not record a failed decomposition");
    }
}
