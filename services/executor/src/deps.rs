//! What job handlers need, built once per executor.

use std::sync::Arc;

use gathering_agents::AgentRuntime;
use gathering_db::Pool;
use gathering_events::Publisher;
use gathering_queue::Queue;
use gathering_tools::Toolbox;

#[derive(Clone)]
pub struct Deps {
    pub pool: Pool,
    pub queue: Queue,
    pub events: Publisher,
    pub database_url: String,
    /// The tool registry with every built-in skill.
    pub tools: Arc<Toolbox>,
    /// Agents: background tasks, pipeline agent nodes.
    pub agents: AgentRuntime,
    /// Live background tasks allowed across all executors (`BACKGROUND_TASKS_MAX_CONCURRENT`).
    pub max_live_tasks: i64,
    /// Circles and conversations: task work, reviews, conversation runs.
    pub circles: gathering_circles::Circles,
}
