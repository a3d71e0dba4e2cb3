//! Runtime settings from the environment (the edge and the executor read the same ones).

use gathering_core::ConfigError;
use gathering_core::config::{self, Vars};
use gathering_tools::Grants;

use crate::runtime::RuntimeConfig;

#[derive(Debug, Clone)]
pub struct AgentsConfig {
    pub runtime: RuntimeConfig,
    /// `AGENT_EMBEDDING_MODEL`, default `openai/text-embedding-3-small` (1536 dimensions);
    /// `none` disables embeddings (memories fall back to text search).
    pub embedding_model: String,
    /// `BACKGROUND_TASKS_MAX_CONCURRENT`, default 5: live tasks across all executors.
    pub max_live_tasks: i64,
}

impl AgentsConfig {
    pub fn from_vars(vars: &impl Vars) -> Result<Self, ConfigError> {
        let grants = config::string_or(vars, "AGENT_TOOL_GRANTS", "read,write,network,git");
        let tool_grants = Grants::parse_list(&grants).map_err(|bad| {
            ConfigError::new("AGENT_TOOL_GRANTS", format!("unknown permission '{bad}'"))
        })?;
        let max_iterations: u32 = config::parse_or(vars, "AGENT_MAX_TOOL_ITERATIONS", 10)?;
        if !(1..=50).contains(&max_iterations) {
            return Err(ConfigError::new(
                "AGENT_MAX_TOOL_ITERATIONS",
                "must be 1 to 50",
            ));
        }
        Ok(Self {
            runtime: RuntimeConfig {
                default_model: config::string_or(
                    vars,
                    "AGENT_DEFAULT_MODEL",
                    "anthropic/claude-sonnet-4-20250514",
                ),
                max_iterations,
                max_history: config::parse_or(vars, "AGENT_MAX_HISTORY", 20)?,
                tool_grants,
                service: "agents",
            },
            embedding_model: match vars.get("AGENT_EMBEDDING_MODEL") {
                Some(m) if m.trim().eq_ignore_ascii_case("none") => String::new(),
                Some(m) => m.trim().to_owned(),
                None => "openai/text-embedding-3-small".into(),
            },
            max_live_tasks: config::parse_or(vars, "BACKGROUND_TASKS_MAX_CONCURRENT", 5)?,
        })
    }
}
