//! `SkillResponse` (BEHAVIOUR.md A4): the one shape every tool call answers with, whether it
//! ran, failed validation, lacked permissions or waits for confirmation.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ToolError;
use crate::registry::ToolOutput;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmationType {
    User,
    Admin,
    Destructive,
}

impl ConfirmationType {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfirmationType::User => "user",
            ConfirmationType::Admin => "admin",
            ConfirmationType::Destructive => "destructive",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SkillResponse {
    pub success: bool,
    pub message: String,
    pub data: Value,
    /// Machine-readable error code (`validation_error`, `permission_denied`, `timeout`, …).
    pub error: Option<String>,
    pub needs_confirmation: bool,
    pub confirmation_type: Option<ConfirmationType>,
    pub skill_name: String,
    pub tool_name: String,
    pub duration_ms: u64,
    pub timestamp: String,
}

impl SkillResponse {
    pub fn from_result(
        skill: &str,
        tool: &str,
        result: Result<ToolOutput, ToolError>,
        duration_ms: u64,
        at: DateTime<Utc>,
    ) -> Self {
        let timestamp = at.to_rfc3339_opts(SecondsFormat::Millis, true);
        match result {
            Ok(out) => SkillResponse {
                success: out.success,
                message: out.message,
                data: out.data,
                error: (!out.success).then(|| "execution_failed".to_owned()),
                needs_confirmation: false,
                confirmation_type: None,
                skill_name: skill.to_owned(),
                tool_name: tool.to_owned(),
                duration_ms,
                timestamp,
            },
            Err(e) => {
                let (needs_confirmation, confirmation_type) = match &e {
                    ToolError::NeedsConfirmation { confirmation, .. } => {
                        (true, Some(*confirmation))
                    }
                    _ => (false, None),
                };
                SkillResponse {
                    success: false,
                    message: e.to_string(),
                    data: e.details(),
                    error: (!needs_confirmation).then(|| e.code().to_owned()),
                    needs_confirmation,
                    confirmation_type,
                    skill_name: skill.to_owned(),
                    tool_name: tool.to_owned(),
                    duration_ms,
                    timestamp,
                }
            }
        }
    }
}
