//! Chat with an agent: the tool-calling loop through the LLM gateway and the tool registry.

use std::sync::Arc;
use std::time::Instant;

use gathering_db::Pool;
use gathering_proto::v1 as pb;
use gathering_tools::{CallContext, Grants, ProjectRoot, Toolbox};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::llm::{Completion, Llm, Message, Request};
use crate::profile::{self, Profile};
use crate::prompt::{PromptParts, system_prompt};
use crate::{AgentError, lease};

mod chat;

/// Runtime settings.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Model used when an agent has none (`provider/model` or alias).
    pub default_model: String,
    /// Model calls per message at most (each may call tools).
    pub max_iterations: u32,
    /// Earlier messages sent with each chat.
    pub max_history: i64,
    /// Permissions agents' tool calls run with. Dangerous tools still need confirmation,
    /// which an agent cannot give: it gets `needs_confirmation` back.
    pub tool_grants: Grants,
    /// Service name reported to the gateway for usage accounting.
    pub service: &'static str,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            default_model: "anthropic/claude-sonnet-4-20250514".into(),
            max_iterations: 10,
            max_history: 20,
            tool_grants: Grants::parse_list("read,write,network,git").unwrap_or(Grants::NONE),
            service: "agents",
        }
    }
}

#[derive(Clone)]
pub struct AgentRuntime {
    pub pool: Pool,
    pub llm: Llm,
    pub tools: Arc<Toolbox>,
    pub config: RuntimeConfig,
}

/// How `run_once_with` runs.
#[derive(Debug, Clone, Default)]
pub struct OnceOptions {
    /// File, git, shell and code tools work inside this project (and its context is in the
    /// prompt).
    pub project_id: Option<i64>,
    /// Appended to the system prompt.
    pub extra_system: Option<String>,
    /// Offer the agent's enabled tools; without them the model only answers.
    pub allow_tools: bool,
    /// Streams the answer (`Token`s, `ToolCall`s) as it is generated.
    pub events: Option<mpsc::Sender<ChatEvent>>,
}

#[derive(Debug, Clone)]
pub struct ChatOptions {
    pub include_memories: bool,
    pub allow_tools: bool,
    pub request_id: String,
}

impl Default for ChatOptions {
    fn default() -> Self {
        Self {
            include_memories: true,
            allow_tools: true,
            request_id: String::new(),
        }
    }
}

/// One tool call and its result, as the contract shows them.
#[derive(Debug, Clone, Serialize)]
pub struct ToolTrace {
    pub id: String,
    pub name: String,
    pub arguments: Value,
    pub result: Value,
    pub success: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChatOutcome {
    pub content: String,
    pub agent_id: i64,
    pub agent_name: String,
    pub model: String,
    pub duration_ms: u64,
    pub tool_calls: Vec<Value>,
    pub tool_results: Vec<Value>,
    pub tokens_used: u32,
    pub iterations: u32,
    /// How memories were recalled for the prompt (`vector`, `text`), if at all.
    pub memory_recall: Option<&'static str>,
}

/// What a streaming chat emits, in order: `Start`, `Token`s, then `Done` (or the error).
#[derive(Debug, Clone)]
pub enum ChatEvent {
    Start { agent_name: String },
    Token(String),
    ToolCall(ToolTrace),
}

/// The result of a tool loop.
struct Turn {
    last: Completion,
    traces: Vec<ToolTrace>,
    tokens: u32,
    iterations: u32,
}

impl ChatOutcome {
    fn from_turn(
        turn: Turn,
        agent_id: i64,
        agent_name: String,
        model: String,
        started: Instant,
        memory_recall: Option<&'static str>,
    ) -> Self {
        ChatOutcome {
            agent_id,
            agent_name,
            model,
            duration_ms: started.elapsed().as_millis() as u64,
            tool_calls: turn.traces.iter().map(|t| json!({"id": t.id, "name": t.name, "arguments": t.arguments})).collect(),
            tool_results: turn
                .traces
                .iter()
                .map(|t| json!({"tool_call_id": t.id, "name": t.name, "success": t.success, "result": t.result}))
                .collect(),
            tokens_used: turn.tokens,
            iterations: turn.iterations,
            memory_recall,
            content: turn.last.content,
        }
    }
}

impl AgentRuntime {
    pub fn new(pool: Pool, llm: Llm, tools: Arc<Toolbox>, config: RuntimeConfig) -> Self {
        Self {
            pool,
            llm,
            tools,
            config,
        }
    }

    fn model_of(&self, profile: &Profile) -> String {
        profile
            .model
            .clone()
            .unwrap_or_else(|| self.config.default_model.clone())
    }

    /// The tools of the agent's enabled skills, as the model sees them.
    pub(crate) async fn tool_definitions(
        &self,
        c: &gathering_db::Client,
        agent_id: i64,
    ) -> Result<Vec<pb::ToolDefinition>, AgentError> {
        let skills = gathering_tools::enablement::enabled_skills(c, agent_id).await?;
        let registry = self.tools.registry();
        Ok(skills
            .iter()
            .flat_map(|s| registry.list_by_skill(s))
            .map(|d| pb::ToolDefinition {
                name: d.name.clone(),
                description: d.description.clone(),
                input_schema_json: d.input_schema.to_string(),
            })
            .collect())
    }

    /// A model request with the agent's tuning.
    pub(crate) fn request<'a>(
        profile: &Profile,
        model: &'a str,
        messages: Vec<Message>,
        tools: Vec<pb::ToolDefinition>,
        request_id: &'a str,
    ) -> Request<'a> {
        Request {
            model,
            messages,
            tools,
            max_tokens: profile.max_tokens.and_then(|m| u32::try_from(m).ok()),
            temperature: Some(profile.temperature as f32),
            agent_id: profile.id,
            request_id,
        }
    }

    /// Runs one tool call of the model through the registry, as the agent; returns the
    /// response, the decoded input and the message the model reads back.
    pub(crate) async fn call_tool(
        &self,
        agent_id: i64,
        call: &pb::ToolCall,
        project: Option<ProjectRoot>,
        cancel: &CancellationToken,
    ) -> (gathering_tools::SkillResponse, Value, Message) {
        let input: Value = serde_json::from_str(&call.arguments_json).unwrap_or_else(|_| json!({}));
        let ctx = CallContext::new(self.config.tool_grants)
            .agent(Some(agent_id))
            .project(project)
            .with_cancel(cancel.child_token());
        let response = self.tools.execute(&call.name, input.clone(), &ctx).await;
        // What the model reads back: the outcome, compactly.
        let content = json!({
            "success": response.success,
            "message": response.message,
            "data": response.data,
            "error": response.error,
            "needs_confirmation": response.needs_confirmation,
        })
        .to_string();
        let message = Message {
            role: "tool".into(),
            content,
            tool_call_id: call.id.clone(),
            name: call.name.clone(),
            ..Default::default()
        };
        (response, input, message)
    }

    /// The project root of the agent's session, for file, git, shell and code tools.
    async fn project_root(&self, project_id: Option<i64>) -> Option<ProjectRoot> {
        let id = project_id?;
        let client = self.pool.get().await.ok()?;
        match gathering_tools::project::resolve_root(
            &client,
            id,
            &self.tools.config().project_roots,
        )
        .await
        {
            Ok(root) => Some(root),
            Err(e) => {
                // The tools then run without a project (file tools refuse): never outside it.
                tracing::warn!(project = id, error = %e, "project folder refused for an agent");
                None
            }
        }
    }

    /// Runs the tool loop: the model answers; each tool call runs through the registry; the
    /// results go back; until an answer without tool calls or `max_iterations`.
    #[allow(clippy::too_many_arguments)]
    async fn converse(
        &self,
        profile: &Profile,
        mut messages: Vec<Message>,
        tools: Vec<pb::ToolDefinition>,
        project: Option<ProjectRoot>,
        request_id: &str,
        events: Option<&mpsc::Sender<ChatEvent>>,
        cancel: &CancellationToken,
    ) -> Result<Turn, AgentError> {
        let model = self.model_of(profile);
        let mut traces = Vec::new();
        let mut tokens = 0u32;
        let mut iterations = 0u32;
        loop {
            if cancel.is_cancelled() {
                return Err(AgentError::Cancelled);
            }
            iterations += 1;
            let request =
                Self::request(profile, &model, messages.clone(), tools.clone(), request_id);
            let completion = match events {
                Some(tx) => tokio::select! {
                    c = self.llm.stream(self.config.service, request, |delta| {
                        let _ = tx.try_send(ChatEvent::Token(delta.to_owned()));
                    }) => c?,
                    _ = cancel.cancelled() => return Err(AgentError::Cancelled),
                },
                None => tokio::select! {
                    c = self.llm.complete(self.config.service, request) => c?,
                    _ = cancel.cancelled() => return Err(AgentError::Cancelled),
                },
            };
            tokens += completion.input_tokens + completion.output_tokens;
            if completion.tool_calls.is_empty() || iterations >= self.config.max_iterations {
                return Ok(Turn {
                    last: completion,
                    traces,
                    tokens,
                    iterations,
                });
            }
            messages.push(Message {
                role: "assistant".into(),
                content: completion.content.clone(),
                tool_calls: completion.tool_calls.clone(),
                tool_call_id: String::new(),
                name: String::new(),
            });
            for call in &completion.tool_calls {
                let (response, arguments, reply) = self
                    .call_tool(profile.id, call, project.clone(), cancel)
                    .await;
                let trace = ToolTrace {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    arguments,
                    result: serde_json::to_value(&response).unwrap_or(Value::Null),
                    success: response.success,
                };
                if let Some(tx) = events {
                    let _ = tx.try_send(ChatEvent::ToolCall(trace.clone()));
                }
                traces.push(trace);
                messages.push(reply);
            }
        }
    }

    /// A chat message to an agent (contract §2.3 `POST /agents/{id}/chat`, and §4.3 when
    /// `events` streams it). One message at a time per agent, across every edge.
    pub async fn chat(
        &self,
        agent_id: i64,
        message: &str,
        options: &ChatOptions,
        events: Option<mpsc::Sender<ChatEvent>>,
    ) -> Result<ChatOutcome, AgentError> {
        if message.trim().is_empty() {
            return Err(AgentError::Invalid("No message provided".into()));
        }
        if message.len() > 100_000 {
            return Err(AgentError::Invalid(
                "message longer than 100000 characters".into(),
            ));
        }
        let lease = lease::acquire(&self.pool, agent_id).await?;
        let result = self
            .chat_leased(agent_id, message, options, events, &lease)
            .await;
        // Released with the stored exchange on success; here otherwise.
        lease.release().await;
        result
    }

    /// One stateless task for an agent (a pipeline's agent node): its persona and tools, no
    /// chat history, no lease; cancelled with `cancel`.
    pub async fn run_once(
        &self,
        agent_id: i64,
        prompt: &str,
        request_id: &str,
        cancel: &CancellationToken,
    ) -> Result<ChatOutcome, AgentError> {
        let options = OnceOptions {
            allow_tools: true,
            ..OnceOptions::default()
        };
        self.run_once_with(agent_id, prompt, &options, request_id, cancel)
            .await
    }

    /// `run_once` with options: tools confined to a project, extra system instructions, no
    /// tools at all (a structured answer), or the answer streamed as it is generated.
    pub async fn run_once_with(
        &self,
        agent_id: i64,
        prompt: &str,
        options: &OnceOptions,
        request_id: &str,
        cancel: &CancellationToken,
    ) -> Result<ChatOutcome, AgentError> {
        let started = Instant::now();
        let client = self.pool.get().await?;
        let profile = profile::load(&client, agent_id).await?;
        if !profile.is_active {
            return Err(AgentError::Invalid(format!(
                "Agent {agent_id} is not active"
            )));
        }
        let project_context = match options.project_id {
            Some(pid) => gathering_tools::project::store::get(&client, pid)
                .await
                .ok()
                .flatten()
                .map(|p| p.prompt_context()),
            None => None,
        };
        let system = system_prompt(
            &profile,
            &PromptParts {
                project: project_context.as_deref(),
                extra: options.extra_system.as_deref(),
                ..PromptParts::default()
            },
        );
        let messages = vec![
            Message {
                role: "system".into(),
                content: system,
                ..Default::default()
            },
            Message {
                role: "user".into(),
                content: prompt.to_owned(),
                ..Default::default()
            },
        ];
        let tools = if options.allow_tools {
            self.tool_definitions(&client, agent_id).await?
        } else {
            Vec::new()
        };
        drop(client);
        // Without a usable root, project tools refuse to run (nothing outside is reachable).
        let project = match (options.allow_tools, options.project_id) {
            (true, Some(pid)) => self.project_root(Some(pid)).await,
            _ => None,
        };
        let turn = self
            .converse(
                &profile,
                messages,
                tools,
                project,
                request_id,
                options.events.as_ref(),
                cancel,
            )
            .await?;
        let model = if turn.last.model.is_empty() {
            self.model_of(&profile)
        } else {
            turn.last.model.clone()
        };
        Ok(ChatOutcome::from_turn(
            turn,
            agent_id,
            profile.name,
            model,
            started,
            None,
        ))
    }
}
