//! What every request handler can reach.

use std::time::Instant;

use gathering_core::Readiness;
use gathering_core::seal::MasterKey;
use gathering_db::Pool;

use std::sync::Arc;

use crate::auth::Verifier;
use crate::auth::audit_writer::AuditWriter;
use crate::auth::client::AuthClient;
use crate::config::Config;

#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub readiness: Readiness,
    pub started: Instant,
    pub config: Config,
    /// Seals secrets stored through the API (provider keys).
    pub master_key: MasterKey,
    pub auth: AuthClient,
    pub verifier: Arc<Verifier>,
    pub audit: AuditWriter,
    /// This process's reader of the event log, fanning out to WebSockets.
    pub hub: gathering_events::Hub,
    pub ws: Arc<crate::ws::WsRegistry>,
    /// Triggered when the edge starts shutting down: WebSockets close with 1001 so clients
    /// reconnect elsewhere (and resume from their last event id).
    pub shutdown: gathering_core::Shutdown,
    /// The tool registry with the built-in skills (`/tools`, projects).
    pub tools: Arc<gathering_tools::Toolbox>,
    /// The LLM gateway (provider settings go through it).
    pub llm: gathering_agents::Llm,
    /// Agents: chat, memory, background tasks.
    pub agents: gathering_agents::AgentRuntime,
    pub agents_config: gathering_agents::AgentsConfig,
    /// The job queue (background tasks, pipeline runs, triggers).
    pub queue: gathering_queue::Queue,
    /// Probes of `/health/system` and `/health/checks`.
    pub monitor: Arc<crate::monitoring::Monitor>,
    /// The project workspace: caches, terminals and language servers of this edge.
    pub workspace: Arc<crate::workspace::Workspace>,
    /// Circles, their tasks and conversations.
    pub circles: gathering_circles::Circles,
    /// Tokens of conversation turns, relayed from the executors to `/ws/conversation`.
    pub conversation_stream: gathering_circles::conversations::stream::Relay,
}
