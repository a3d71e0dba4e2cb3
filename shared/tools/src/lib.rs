//! GatheRing's tools: the registry every agent, pipeline and schedule calls tools through, the
//! built-in skills, and projects (the root directory each file, git, shell and code tool is
//! confined to).
//!
//! A call goes through the same checks whoever makes it (REST, an agent's tool loop, a pipeline
//! action): the tool exists → its input matches its JSON Schema (every violation named by path;
//! the tool does not run otherwise) → the caller holds the tool's permissions → the agent has
//! the skill enabled (`agent.agent_tools`) → a dangerous tool is confirmed → it runs under its
//! timeout and the caller's cancellation. Outbound HTTP of every skill goes through
//! [`net::NetGuard`] (SSRF guard after DNS resolution, redirects included).
//!
//! Skills that need other services plug in later through [`Registry::register`]: the `ai`
//! skill (llm-gateway) and the pipelines/tasks/schedules skills (job queue).

pub mod config;
pub mod configured_skills;
pub mod context;
pub mod definition;
pub mod enablement;
pub mod error;
pub mod files;
pub mod git;
pub mod net;
pub mod pdf;
pub mod permission;
pub mod plugins;
pub mod process;
pub mod project;
pub mod registry;
pub mod response;
pub mod root;
pub mod skills;
pub mod toolbox;
pub mod validate;

pub use config::ToolsConfig;
pub use context::CallContext;
pub use definition::{Category, ToolDefinition};
pub use error::ToolError;
pub use permission::{Grants, Permission};
pub use registry::{Registry, RegistryStats, Tool, ToolFuture, ToolOutput};
pub use response::{ConfirmationType, SkillResponse};
pub use root::ProjectRoot;
pub use toolbox::Toolbox;
pub use validate::Violation;
