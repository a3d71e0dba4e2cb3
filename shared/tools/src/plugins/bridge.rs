//! A plugin's tools as registry tools. Each is registered under the plugin's namespace
//! (`{plugin}__{tool}`), in the plugin's catalogue skill (`plugin:{id}`, for per-agent
//! enablement), with its JSON Schema, permissions, danger flag and the plugin's timeout, so a
//! plugin tool goes through every check a built-in one does. What runs:
//! - an MCP tool: a call on this process's session with the plugin's server (started on
//!   demand);
//! - a declarative HTTP tool: the filled template through the guarded client;
//! - a declarative pipeline tool: `pipeline_run` through the registry, with the caller's
//!   context (its permissions apply to that call too).

use std::sync::{Arc, Weak};

use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use super::HostInner;
use super::manifest::{DeclaredTool, Kind, Manifest, skill_name, tool_name};
use super::store::PluginRow;
use super::template;
use crate::context::CallContext;
use crate::definition::{Category, ToolDefinition};
use crate::error::ToolError;
use crate::permission::{Grants, Permission};
use crate::registry::{Registry, ToolFuture, ToolOutput};
use crate::response::ConfirmationType;

/// The permissions a declared tool needs: its own list, else `network` for an HTTP call and
/// `write` for a pipeline run.
pub fn declared_grants(t: &DeclaredTool) -> Grants {
    match &t.permissions {
        Some(p) => super::manifest::parse_permissions(p).unwrap_or(Grants::all()),
        None if t.http.is_some() => Grants::of(&[Permission::Network]),
        None => Grants::of(&[Permission::Write]),
    }
}

/// Registers the tools of an enabled plugin; returns the names skipped (schema that does not
/// compile, name taken).
pub(crate) fn register(host: &Arc<HostInner>, reg: &Registry, row: &PluginRow) -> Vec<String> {
    let manifest = match row.manifest() {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(plugin = %row.id, error = %e, "plugin not registered");
            return Vec::new();
        }
    };
    let mut skipped = Vec::new();
    let tools = row.tools.as_array().cloned().unwrap_or_default();
    for stored in tools {
        let Some(own) = stored["name"].as_str() else {
            continue;
        };
        let name = tool_name(&row.id, own);
        let description = match stored["description"].as_str() {
            Some(d) if !d.trim().is_empty() => d.to_owned(),
            _ => format!("{own} (plugin {})", row.name),
        };
        let category = stored["category"]
            .as_str()
            .and_then(Category::parse)
            .unwrap_or(Category::Custom);
        let mut def = ToolDefinition::new(&name, skill_name(&row.id), category, description)
            .schema(stored["input_schema"].clone())
            .timeout(manifest.limits.timeout())
            .plugin(&row.id);
        if let Some(c) = stored["required_competencies"].as_array() {
            def.required_competencies = c
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect();
        }
        let result = match manifest.kind() {
            Kind::Stdio | Kind::Http => {
                def.required_permissions = manifest.mcp_grants();
                if manifest.dangerous || stored["dangerous"] == json!(true) {
                    def = def.dangerous(ConfirmationType::Destructive);
                }
                reg.register(
                    def,
                    McpTool {
                        host: Arc::downgrade(host),
                        plugin_id: row.id.clone(),
                        tool: own.to_owned(),
                    },
                )
            }
            Kind::Declarative => match manifest.tools.iter().find(|t| t.name == own) {
                Some(t) => {
                    def.required_permissions = declared_grants(t);
                    if t.dangerous {
                        def = def.dangerous(ConfirmationType::User);
                    }
                    register_declared(host, reg, def, t)
                }
                None => continue,
            },
        };
        if let Err(e) = result {
            tracing::warn!(plugin = %row.id, tool = %name, error = %e, "plugin tool not registered");
            skipped.push(format!("{own}: {e}"));
        }
    }
    skipped
}

fn register_declared(
    host: &Arc<HostInner>,
    reg: &Registry,
    def: ToolDefinition,
    t: &DeclaredTool,
) -> Result<(), ToolError> {
    if let Some(http) = &t.http {
        let client = host.http.clone();
        let template = http.clone();
        return reg.register(def, move |_ctx: CallContext, input: Value| {
            let client = client.clone();
            let template = template.clone();
            async move {
                let req = template::render(&template, &input)?;
                let resp = client.send(req).await?;
                let body = serde_json::from_slice::<Value>(&resp.body)
                    .unwrap_or_else(|_| Value::String(resp.text()));
                let data =
                    json!({"status": resp.status, "body": body, "truncated": resp.truncated});
                let message = format!("HTTP {}", resp.status);
                Ok(if resp.is_success() {
                    ToolOutput::ok(message, data)
                } else {
                    ToolOutput::failed(message, data)
                })
            }
        });
    }
    let Some(pipeline) = &t.pipeline else {
        return Err(ToolError::InvalidInput(
            "a declarative tool needs http or pipeline".into(),
        ));
    };
    let pipeline_id = pipeline.pipeline_id;
    let registry = host.registry.clone();
    reg.register(def, move |ctx: CallContext, input: Value| {
        let registry = registry.clone();
        async move {
            let registry = registry
                .upgrade()
                .ok_or_else(|| ToolError::Failed("the tool registry is gone".into()))?;
            registry
                .call(
                    "pipeline_run",
                    json!({"pipeline_id": pipeline_id, "trigger_data": input}),
                    &ctx,
                )
                .await
        }
    })
}

/// An MCP server's tool, called through this process's session.
struct McpTool {
    host: Weak<HostInner>,
    plugin_id: String,
    tool: String,
}

impl crate::registry::Tool for McpTool {
    fn call(&self, _ctx: CallContext, input: Value) -> ToolFuture {
        let host = self.host.clone();
        let plugin_id = self.plugin_id.clone();
        let tool = self.tool.clone();
        Box::pin(async move {
            let host = host
                .upgrade()
                .ok_or_else(|| ToolError::Failed("the plugin host is gone".into()))?;
            let session = host.session_for(&plugin_id)?;
            let result = session.call(&tool, input).await?;
            Ok(output(result))
        })
    }
}

/// An MCP result as a tool output: the text blocks are the message; the blocks and any
/// structured content are the data.
fn output(result: CallToolResult) -> ToolOutput {
    let texts: Vec<String> = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect();
    let message: String = texts.join("\n").chars().take(4000).collect();
    let data = json!({
        "content": serde_json::to_value(&result.content).unwrap_or(Value::Null),
        "structured_content": result.structured_content,
    });
    if result.is_error == Some(true) {
        ToolOutput::failed(message, data)
    } else {
        ToolOutput::ok(message, data)
    }
}

/// The manifest's declared tools in the stored shape are what declarative plugins list;
/// MCP plugins list what their server said at load.
pub fn declared(m: &Manifest) -> Value {
    super::store::declared_tools(m)
}
