//! The administrator's plugin actions behind `/plugins` (the routes check the caller is an
//! admin): discover, load, enable, disable, unload, dynamic (declarative) plugins, save.
//! Each writes `agent.plugins` (every process follows through `plugins_changed`) and then
//! syncs this process at once, so the caller's next request sees the change here.

use std::path::{Component, Path, PathBuf};

use serde_json::{Value, json};

use super::manifest::{self, Kind, MANIFEST_FILE, Manifest, Problem, valid_tool_name};
use super::session::Session;
use super::store::{self, PluginRow};
use super::{PluginHost, bridge};
use crate::context::CallContext;
use crate::error::ToolError;
use crate::permission::Grants;

/// Largest `config` stored for a plugin.
const MAX_CONFIG_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// Field problems (422).
    #[error("invalid plugin")]
    Invalid(Vec<Problem>),
    #[error("{0}")]
    Internal(String),
}

impl From<ToolError> for PluginError {
    fn from(e: ToolError) -> Self {
        match e {
            ToolError::Missing(m) => PluginError::NotFound(m),
            ToolError::InvalidInput(m) | ToolError::Refused(m) => PluginError::BadRequest(m),
            other => PluginError::Internal(other.to_string()),
        }
    }
}

impl From<gathering_db::PoolError> for PluginError {
    fn from(e: gathering_db::PoolError) -> Self {
        PluginError::Internal(e.to_string())
    }
}

fn not_found(id: &str) -> PluginError {
    PluginError::NotFound(format!("Plugin '{id}' not found"))
}

impl PluginHost {
    async fn row(&self, id: &str) -> Result<PluginRow, PluginError> {
        let c = self.inner().pool.get().await?;
        store::get(&c, id).await?.ok_or_else(|| not_found(id))
    }

    pub async fn list(&self) -> Result<Vec<PluginRow>, PluginError> {
        let c = self.inner().pool.get().await?;
        Ok(store::list(&c).await?)
    }

    pub async fn get(&self, id: &str) -> Result<PluginRow, PluginError> {
        self.row(id).await
    }

    /// A folder the caller names, canonical and inside one of the plugin folders.
    fn confine(&self, requested: &str, must_exist: bool) -> Result<PathBuf, PluginError> {
        let dirs: Vec<PathBuf> = self
            .settings()
            .dirs
            .iter()
            .filter_map(|d| std::fs::canonicalize(d).ok())
            .collect();
        let outside = || {
            PluginError::BadRequest(format!(
                "'{requested}' is not inside a plugin folder (GATHERING_PLUGIN_DIRS)"
            ))
        };
        if requested.is_empty() || requested.len() > 4096 || requested.contains('\0') {
            return Err(PluginError::BadRequest("invalid directory".into()));
        }
        let path = Path::new(requested);
        if path.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(outside());
        }
        let path = match (path.is_absolute(), dirs.first()) {
            (true, _) => path.to_path_buf(),
            (false, Some(first)) => first.join(path),
            (false, None) => return Err(outside()),
        };
        // The nearest existing ancestor decides (symlinks resolved); what is below it is plain
        // names (no `..`, checked above).
        let mut existing = path.clone();
        let mut rest = Vec::new();
        while !existing.exists() {
            if must_exist {
                return Err(PluginError::BadRequest(format!(
                    "'{requested}' does not exist"
                )));
            }
            match (existing.file_name(), existing.parent()) {
                (Some(name), Some(parent)) => {
                    rest.push(name.to_owned());
                    existing = parent.to_path_buf();
                }
                _ => return Err(outside()),
            }
        }
        let mut canonical = std::fs::canonicalize(&existing).map_err(|_| outside())?;
        if !dirs.iter().any(|d| canonical.starts_with(d)) {
            return Err(outside());
        }
        for name in rest.into_iter().rev() {
            canonical.push(name);
        }
        Ok(canonical)
    }

    /// `POST /plugins/discover`: records the manifests found in `directory` (and its
    /// sub-folders); `(found [(id, folder)], problems)`.
    pub async fn discover(
        &self,
        directory: &str,
    ) -> Result<(Vec<(String, String)>, Vec<String>), PluginError> {
        let host = self.clone();
        let requested = directory.to_owned();
        let (found, mut errors) = tokio::task::spawn_blocking(move || {
            let dir = host.confine(&requested, true)?;
            if !dir.is_dir() {
                return Err(PluginError::BadRequest(format!(
                    "'{requested}' is not a directory"
                )));
            }
            Ok(manifest::scan(&dir))
        })
        .await
        .map_err(|e| PluginError::Internal(e.to_string()))??;
        let client = self.inner().pool.get().await?;
        let mut out = Vec::new();
        for f in found {
            let dir = f.dir.to_string_lossy().into_owned();
            match store::upsert_discovered(&client, &f.manifest, &dir).await {
                Ok(()) => out.push((f.manifest.id.clone(), dir)),
                Err(ToolError::InvalidInput(m)) => errors.push(m),
                Err(e) => return Err(e.into()),
            }
        }
        drop(client);
        self.sync().await?;
        Ok((out, errors))
    }

    /// `POST /plugins/load`: re-reads the manifest, connects to the server and lists its tools
    /// (an MCP plugin), stores them; the plugin is `loaded` (an enabled one stays enabled).
    pub async fn load(
        &self,
        id: &str,
        config: Option<Value>,
    ) -> Result<(PluginRow, String), PluginError> {
        let mut row = self.row(id).await?;
        if let Some(c) = &config
            && (!c.is_object() || c.to_string().len() > MAX_CONFIG_BYTES)
        {
            return Err(PluginError::BadRequest(
                "config must be a JSON object of at most 64 KiB".into(),
            ));
        }
        let client = self.inner().pool.get().await?;
        if let Some(dir) = row.source_dir.clone() {
            let d = PathBuf::from(&dir);
            let read = tokio::task::spawn_blocking(move || manifest::read(&d))
                .await
                .map_err(|e| PluginError::Internal(e.to_string()))?;
            match read {
                Ok(m) if m.id == id => store::upsert_discovered(&client, &m, &dir).await?,
                Ok(m) => {
                    return Err(PluginError::BadRequest(format!(
                        "the manifest in {dir} now names plugin '{}'",
                        m.id
                    )));
                }
                Err(e) => {
                    store::set_error(&client, id, &e).await?;
                    return Err(PluginError::BadRequest(format!(
                        "Plugin '{id}' failed to load: {e}"
                    )));
                }
            }
            row = store::get(&client, id)
                .await?
                .ok_or_else(|| not_found(id))?;
        }
        let config = config.unwrap_or_else(|| row.config.clone());
        row.config = config.clone();
        let m = row.manifest()?;
        let (tools, skipped, session) = if m.kind() == Kind::Declarative {
            (bridge::declared(&m), Vec::new(), None)
        } else {
            self.inner().drop_session(id).await;
            let launch = self.inner().launch(&row)?;
            match Session::connect(launch, self.settings().restart).await {
                Ok((session, listed)) => {
                    let (tools, skipped) = mcp_tools(id, listed);
                    (tools, skipped, Some(session))
                }
                Err(e) => {
                    let msg = e.to_string();
                    store::set_error(&client, id, &msg).await?;
                    drop(client);
                    let _ = self.sync().await;
                    return Err(PluginError::BadRequest(format!(
                        "Plugin '{id}' failed to load: {msg}"
                    )));
                }
            }
        };
        store::set_loaded(&client, id, &tools, &config).await?;
        let row = store::get(&client, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        drop(client);
        if let Some(s) = session {
            self.inner().adopt(&row, s);
        }
        self.sync().await?;
        let mut message = format!("Plugin '{id}' loaded with {} tool(s)", row.tools_count());
        if !skipped.is_empty() {
            message.push_str(&format!("; skipped: {}", skipped.join(", ")));
        }
        Ok((row, message))
    }

    async fn set_status(&self, id: &str, status: &str) -> Result<PluginRow, PluginError> {
        let row = self.row(id).await?;
        if status == "enabled" && !matches!(row.status.as_str(), "loaded" | "enabled" | "disabled")
        {
            return Err(PluginError::BadRequest(format!(
                "Plugin '{id}' is {}: load it first",
                row.status
            )));
        }
        let mut client = self.inner().pool.get().await?;
        store::set_status(&mut client, &row, status).await?;
        drop(client);
        self.sync().await?;
        self.row(id).await
    }

    pub async fn enable(&self, id: &str) -> Result<PluginRow, PluginError> {
        self.set_status(id, "enabled").await
    }

    /// Disables the plugin: its tools leave every registry and every process stops its server.
    pub async fn disable(&self, id: &str) -> Result<PluginRow, PluginError> {
        self.set_status(id, "disabled").await
    }

    pub async fn unload(&self, id: &str) -> Result<PluginRow, PluginError> {
        self.set_status(id, "unloaded").await
    }

    /// `POST /plugins/dynamic`: a declarative plugin (HTTP call templates, pipeline calls).
    pub async fn dynamic(
        &self,
        manifest_json: Value,
        config: Option<Value>,
    ) -> Result<PluginRow, PluginError> {
        let m = Manifest::parse(manifest_json).map_err(PluginError::Invalid)?;
        if m.kind() != Kind::Declarative {
            return Err(PluginError::BadRequest(
                "a dynamic plugin declares tools; an MCP server is installed with a manifest in a plugin folder".into(),
            ));
        }
        let config = config.unwrap_or_else(|| json!({}));
        if !config.is_object() || config.to_string().len() > MAX_CONFIG_BYTES {
            return Err(PluginError::BadRequest(
                "config must be a JSON object of at most 64 KiB".into(),
            ));
        }
        self.check_pipelines(&m).await?;
        let client = self.inner().pool.get().await?;
        let row = store::upsert_dynamic(&client, &m, &config).await?;
        drop(client);
        self.sync().await?;
        Ok(row)
    }

    /// Every pipeline a declared tool calls exists.
    async fn check_pipelines(&self, m: &Manifest) -> Result<(), PluginError> {
        let Some(registry) = self.inner().registry.upgrade() else {
            return Ok(());
        };
        let mut problems = Vec::new();
        for (i, t) in m.tools.iter().enumerate() {
            let Some(p) = &t.pipeline else { continue };
            let field = format!("tools[{i}].pipeline.pipeline_id");
            if !registry.has("pipeline_get") {
                problems.push(Problem {
                    field,
                    message: "pipelines are not available here".into(),
                });
                continue;
            }
            let ctx = CallContext::new(Grants::all());
            if registry
                .call("pipeline_get", json!({"pipeline_id": p.pipeline_id}), &ctx)
                .await
                .is_err()
            {
                problems.push(Problem {
                    field,
                    message: format!("pipeline {} does not exist", p.pipeline_id),
                });
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PluginError::Invalid(problems))
        }
    }

    /// `POST /plugins/{id}/save`: writes the plugin's manifest as `gathering-plugin.json` into
    /// `output_path`, a folder inside a plugin folder (created if needed).
    pub async fn save(&self, id: &str, output_path: &str) -> Result<PathBuf, PluginError> {
        let row = self.row(id).await?;
        let manifest = serde_json::to_vec_pretty(&row.manifest()?.clone())
            .map_err(|e| PluginError::Internal(e.to_string()))?;
        let host = self.clone();
        let requested = output_path.trim_end_matches(MANIFEST_FILE).to_owned();
        tokio::task::spawn_blocking(move || {
            let dir = host.confine(&requested, false)?;
            std::fs::create_dir_all(&dir).map_err(|e| {
                PluginError::BadRequest(format!("cannot create {}: {e}", dir.display()))
            })?;
            // Created folders are re-checked: a symlink raced in would show here.
            let dir = host.confine(&dir.to_string_lossy(), true)?;
            let file = dir.join(MANIFEST_FILE);
            if std::fs::symlink_metadata(&file).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(PluginError::BadRequest(format!(
                    "{} is a symbolic link",
                    file.display()
                )));
            }
            let tmp = dir.join(format!(".{MANIFEST_FILE}.tmp"));
            std::fs::write(&tmp, &manifest)
                .and_then(|_| std::fs::rename(&tmp, &file))
                .map_err(|e| {
                    PluginError::Internal(format!("cannot write {}: {e}", file.display()))
                })?;
            Ok(file)
        })
        .await
        .map_err(|e| PluginError::Internal(e.to_string()))?
    }
}

/// The server's tools in the stored shape; the names that do not fit the namespace rules are
/// skipped (and said).
fn mcp_tools(plugin_id: &str, listed: Vec<rmcp::model::Tool>) -> (Value, Vec<String>) {
    let mut tools = Vec::new();
    let mut skipped = Vec::new();
    for t in listed {
        if tools.len() >= manifest::MAX_TOOLS || !valid_tool_name(plugin_id, &t.name) {
            skipped.push(t.name.to_string());
            continue;
        }
        let dangerous = t
            .annotations
            .as_ref()
            .is_some_and(|a| a.destructive_hint == Some(true) && a.read_only_hint != Some(true));
        tools.push(json!({
            "name": t.name, "description": t.description.as_deref().unwrap_or(""),
            "input_schema": Value::Object((*t.input_schema).clone()),
            "dangerous": dangerous, "title": t.title,
        }));
    }
    (Value::Array(tools), skipped)
}
