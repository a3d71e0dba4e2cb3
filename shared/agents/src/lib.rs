//! The agent runtime, shared by the edge (chat, memory) and the executor (background tasks,
//! pipeline agent nodes).
//!
//! An agent is a persona + a model + enabled skills. A chat builds the system prompt from the
//! persona, the project, recalled memories and the session (BEHAVIOUR A1), then runs the
//! tool-calling loop: the model answers through the LLM gateway; each tool call goes through the
//! tool registry (schema-validated, permission-checked); results go back to the model, up to a
//! limit of iterations. Every exchange is stored. One agent handles one message at a time
//! across every edge instance (a lease on its row).

pub mod config;
pub mod counters;
pub mod definition;
pub mod error;
pub mod goals;
pub mod lease;
pub mod llm;
pub mod memory;
pub mod profile;
pub mod prompt;
pub mod runtime;
pub mod session;
pub mod skills;
pub mod tasks;

pub use config::AgentsConfig;
pub use error::AgentError;
pub use llm::Llm;
pub use runtime::{AgentRuntime, ChatEvent, ChatOptions, ChatOutcome, OnceOptions, ToolTrace};
