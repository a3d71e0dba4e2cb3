//! A chat turn with a leased agent: load what the prompt needs (persona, session, recalled
//! memories, project, recent history), converse, then save the exchange, the session window
//! and the lease release in one transaction.

use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{AgentRuntime, ChatEvent, ChatOptions, ChatOutcome};
use crate::llm::Message;
use crate::memory::{self, Scope};
use crate::profile::{self, Profile};
use crate::prompt::{PromptParts, system_prompt};
use crate::session::{self, Session};
use crate::{AgentError, lease};

/// The agent's last exchanges, oldest first.
const HISTORY_SQL: &str = "SELECT role::text, content FROM ( \
     SELECT role, content, created_at, id FROM communication.chat_history \
     WHERE agent_id = $1 AND role IN ('user', 'assistant') \
     ORDER BY created_at DESC, id DESC LIMIT $2) h \
 ORDER BY created_at, id";

const SAVE_EXCHANGE_SQL: &str = "INSERT INTO communication.chat_history \
     (agent_id, session_id, role, content, model_used, tokens_input, tokens_output) \
     VALUES ($1, $2, 'user', $3, NULL, NULL, NULL), ($1, $2, 'assistant', $4, $5, $6, $7)";

impl AgentRuntime {
    pub(super) async fn chat_leased(
        &self,
        agent_id: i64,
        message: &str,
        options: &ChatOptions,
        events: Option<mpsc::Sender<ChatEvent>>,
        lease: &lease::AgentLease,
    ) -> Result<ChatOutcome, AgentError> {
        let started = Instant::now();
        let client = self.pool.get().await?;
        let profile = profile::load(&client, agent_id).await?;
        if let Some(tx) = &events {
            let _ = tx
                .send(ChatEvent::Start {
                    agent_name: profile.name.clone(),
                })
                .await;
        }
        let session = session::open(&client, agent_id).await?;
        let (memories, recall_method) = if options.include_memories {
            let recall = memory::recall(
                &client,
                Some(&self.llm),
                &memory::Query {
                    scope: Scope::Agent(agent_id),
                    text: message,
                    limit: 5,
                    threshold: 0.3,
                    types: &[],
                    tags: &[],
                },
            )
            .await?;
            let values = recall.memories.into_iter().map(|m| m.value).collect();
            (values, Some(recall.method))
        } else {
            (Vec::new(), None)
        };
        let messages = self
            .prompt(&client, &profile, &session, &memories, message)
            .await?;
        let tools = if options.allow_tools {
            self.tool_definitions(&client, agent_id).await?
        } else {
            Vec::new()
        };
        let project = self.project_root(session.project_id).await;
        drop(client);

        let turn = self
            .converse(
                &profile,
                messages,
                tools,
                project,
                &options.request_id,
                events.as_ref(),
                &CancellationToken::new(),
            )
            .await?;
        let content = turn.last.content.clone();
        let model = if turn.last.model.is_empty() {
            self.model_of(&profile)
        } else {
            turn.last.model.clone()
        };

        // The exchange, the session window and the lease release: one transaction, one commit.
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            SAVE_EXCHANGE_SQL,
            &[
                &agent_id,
                &session.id,
                &message,
                &content,
                &model,
                &(turn.last.input_tokens as i32),
                &(turn.last.output_tokens as i32),
            ],
        )
        .await?;
        session::record_exchange(&tx, &session, message, &content).await?;
        lease.release_in(&tx).await?;
        tx.commit().await?;
        Ok(ChatOutcome::from_turn(
            turn,
            agent_id,
            profile.name,
            model,
            started,
            recall_method,
        ))
    }

    /// The system prompt (persona, project, memories, session), the recent history and the
    /// user's message.
    async fn prompt(
        &self,
        client: &gathering_db::Client,
        profile: &Profile,
        session: &Session,
        memories: &[String],
        message: &str,
    ) -> Result<Vec<Message>, AgentError> {
        let project_context = match session.project_id {
            Some(pid) => gathering_tools::project::store::get(client, pid)
                .await
                .ok()
                .flatten()
                .map(|p| p.prompt_context()),
            None => None,
        };
        let resume = session.resume_summary();
        let task = session.task_line();
        let system = system_prompt(
            profile,
            &PromptParts {
                project: project_context.as_deref(),
                memories,
                resume: resume.as_deref(),
                current_task: task.as_deref(),
                extra: None,
            },
        );
        let history = client
            .query(HISTORY_SQL, &[&profile.id, &self.config.max_history])
            .await?;
        let mut messages = Vec::with_capacity(history.len() + 2);
        messages.push(Message {
            role: "system".into(),
            content: system,
            ..Default::default()
        });
        for row in &history {
            messages.push(Message {
                role: row.try_get(0)?,
                content: row.try_get(1)?,
                ..Default::default()
            });
        }
        messages.push(Message {
            role: "user".into(),
            content: message.to_owned(),
            ..Default::default()
        });
        Ok(messages)
    }
}
