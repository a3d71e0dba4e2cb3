//! The agent platform as the edge and the executor both run it: the tool registry with plugins,
//! the platform's skills (agents, memory, goals…) and the circles skill, the gateway client,
//! the agent runtime and circles. It lives here, in the top shared crate (circles depends on
//! agents and tools), so the two services assemble it one way.

use std::sync::Arc;

use gathering_agents::{AgentRuntime, AgentsConfig, Llm};
use gathering_core::Shutdown;
use gathering_db::Pool;
use gathering_proto::service_auth::ServiceAuth;
use gathering_tools::{Toolbox, ToolsConfig};

use crate::{Circles, CirclesConfig};

/// What a service needs to assemble the platform.
pub struct PlatformConfig<'a> {
    pub database_url: &'a str,
    pub llm_gateway_url: &'a str,
    pub tools: &'a ToolsConfig,
    pub agents: &'a AgentsConfig,
    pub circles: &'a CirclesConfig,
}

/// The assembled platform.
pub struct Platform {
    pub tools: Arc<Toolbox>,
    pub llm: Llm,
    pub agents: AgentRuntime,
    pub circles: Circles,
}

/// Which part could not start, so a service can report it against the right setting.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("tool registry: {0}")]
    Tools(String),
    #[error("plugins: {0}")]
    Plugins(String),
    #[error("LLM gateway client: {0}")]
    Gateway(String),
    #[error("skills: {0}")]
    Skills(String),
}

impl Platform {
    /// Builds the registry and starts the plugins (their MCP servers stop with `background`),
    /// connects to the gateway with `service_auth`, and registers every skill.
    pub async fn start(
        pool: &Pool,
        config: PlatformConfig<'_>,
        service_auth: ServiceAuth,
        background: &Shutdown,
    ) -> Result<Platform, PlatformError> {
        let tools = Arc::new(
            Toolbox::new(Some(pool.clone()), config.tools.clone())
                .map_err(|e| PlatformError::Tools(e.to_string()))?,
        );
        if let Some(plugins) = tools.plugins() {
            plugins
                .start(config.database_url, background.clone())
                .await
                .map_err(|e| PlatformError::Plugins(e.to_string()))?;
        }
        let llm = Llm::connect(
            config.llm_gateway_url,
            &config.agents.embedding_model,
            service_auth,
        )
        .map_err(|e| PlatformError::Gateway(e.to_string()))?;
        gathering_agents::skills::register_platform(
            tools.registry(),
            gathering_agents::skills::PlatformDeps {
                pool: pool.clone(),
                llm: llm.clone(),
                queue: gathering_queue::Queue::new(pool.clone()),
                max_live_tasks: config.agents.max_live_tasks,
                default_model: config.agents.runtime.default_model.clone(),
            },
        )
        .map_err(|e| PlatformError::Skills(format!("platform: {e}")))?;
        let circles = Circles::new(pool.clone(), config.circles.clone());
        crate::skills::register(tools.registry(), circles.clone())
            .map_err(|e| PlatformError::Skills(format!("circles: {e}")))?;
        let agents = AgentRuntime::new(
            pool.clone(),
            llm.clone(),
            tools.clone(),
            config.agents.runtime.clone(),
        );
        Ok(Platform {
            tools,
            llm,
            agents,
            circles,
        })
    }
}
