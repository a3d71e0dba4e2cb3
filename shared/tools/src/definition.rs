//! What a tool is, independent of how it runs: name, description, category, input JSON
//! Schema, output description, required permissions, dangerous flag and timeout (A5).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::permission::{Grants, Permission};
use crate::response::ConfirmationType;

/// Tool categories of A5, plus `communication` and `gathering` for the notification and
/// GatheRing-domain skills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Filesystem,
    VersionControl,
    CodeExecution,
    Testing,
    Debugging,
    Llm,
    Image,
    Audio,
    Video,
    DataAnalysis,
    Database,
    Finance,
    Accounting,
    Cad,
    Simulation,
    Iot,
    Web,
    Api,
    Communication,
    Gathering,
    Custom,
    Utility,
}

impl Category {
    pub const ALL: [Category; 22] = [
        Category::Filesystem,
        Category::VersionControl,
        Category::CodeExecution,
        Category::Testing,
        Category::Debugging,
        Category::Llm,
        Category::Image,
        Category::Audio,
        Category::Video,
        Category::DataAnalysis,
        Category::Database,
        Category::Finance,
        Category::Accounting,
        Category::Cad,
        Category::Simulation,
        Category::Iot,
        Category::Web,
        Category::Api,
        Category::Communication,
        Category::Gathering,
        Category::Custom,
        Category::Utility,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Filesystem => "filesystem",
            Category::VersionControl => "version_control",
            Category::CodeExecution => "code_execution",
            Category::Testing => "testing",
            Category::Debugging => "debugging",
            Category::Llm => "llm",
            Category::Image => "image",
            Category::Audio => "audio",
            Category::Video => "video",
            Category::DataAnalysis => "data_analysis",
            Category::Database => "database",
            Category::Finance => "finance",
            Category::Accounting => "accounting",
            Category::Cad => "cad",
            Category::Simulation => "simulation",
            Category::Iot => "iot",
            Category::Web => "web",
            Category::Api => "api",
            Category::Communication => "communication",
            Category::Gathering => "gathering",
            Category::Custom => "custom",
            Category::Utility => "utility",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Default time a tool may run before it is cancelled.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct ToolDefinition {
    pub name: String,
    pub description: String,
    /// The skill this tool belongs to (a name in `agent.skills`): per-agent enablement is per
    /// skill.
    pub skill: String,
    pub category: Category,
    /// JSON Schema of the input; `{}` accepts anything.
    pub input_schema: Value,
    /// What a successful call returns in `data`.
    pub output: String,
    pub required_permissions: Grants,
    pub required_competencies: Vec<String>,
    /// A dangerous tool answers `needs_confirmation` until called with `confirmed`.
    pub dangerous: bool,
    pub confirmation: ConfirmationType,
    pub timeout: Duration,
    pub plugin_id: Option<String>,
    pub examples: Vec<Value>,
}

impl ToolDefinition {
    pub fn new(
        name: impl Into<String>,
        skill: impl Into<String>,
        category: Category,
        description: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            skill: skill.into(),
            category,
            input_schema: json!({"type": "object"}),
            output: String::new(),
            required_permissions: Grants::NONE,
            required_competencies: Vec::new(),
            dangerous: false,
            confirmation: ConfirmationType::User,
            timeout: DEFAULT_TIMEOUT,
            plugin_id: None,
            examples: Vec::new(),
        }
    }

    pub fn schema(mut self, schema: Value) -> Self {
        self.input_schema = schema;
        self
    }

    pub fn output(mut self, output: impl Into<String>) -> Self {
        self.output = output.into();
        self
    }

    pub fn permissions(mut self, perms: &[Permission]) -> Self {
        self.required_permissions = Grants::of(perms);
        self
    }

    pub fn competencies(mut self, comps: &[&str]) -> Self {
        self.required_competencies = comps.iter().map(|c| (*c).to_owned()).collect();
        self
    }

    pub fn dangerous(mut self, confirmation: ConfirmationType) -> Self {
        self.dangerous = true;
        self.confirmation = confirmation;
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn plugin(mut self, plugin_id: impl Into<String>) -> Self {
        self.plugin_id = Some(plugin_id.into());
        self
    }

    pub fn example(mut self, example: Value) -> Self {
        self.examples.push(example);
        self
    }

    /// The definition as the API lists it (also the shape LLM tool calls need:
    /// `name`, `description`, `input_schema`).
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "skill": self.skill,
            "category": self.category.as_str(),
            "input_schema": self.input_schema,
            "output": self.output,
            "required_permissions": self.required_permissions.names(),
            "required_competencies": self.required_competencies,
            "is_dangerous": self.dangerous,
            "confirmation_type": self.dangerous.then_some(self.confirmation.as_str()),
            "timeout_ms": u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
            "plugin_id": self.plugin_id,
            "examples": self.examples,
        })
    }
}
