//! The registry with the built-in skills, ready to use: what a service builds once at start
//! (the edge for `/tools`, the executor for agents, pipelines and schedules).

use std::sync::Arc;

use gathering_db::Pool;
use serde_json::Value;

use crate::config::ToolsConfig;
use crate::context::CallContext;
use crate::enablement::DbEnablement;
use crate::error::ToolError;
use crate::net::{GuardedClient, NetGuard};
use crate::plugins::PluginHost;
use crate::registry::Registry;
use crate::response::SkillResponse;
use crate::skills::{self, Services};

pub struct Toolbox {
    registry: Arc<Registry>,
    services: Arc<Services>,
    plugins: Option<PluginHost>,
}

impl Toolbox {
    /// Builds the guarded HTTP client and the registry with every built-in skill. With a pool,
    /// per-agent enablement is enforced and GatheRing's own skills (circles, projects)
    /// are registered.
    pub fn new(pool: Option<Pool>, config: ToolsConfig) -> Result<Self, ToolError> {
        let guard = NetGuard::new(config.http_allowlist.clone());
        let http = GuardedClient::new(guard, config.http.clone())?;
        let registry = Arc::new(match &pool {
            Some(p) => Registry::with_enablement(DbEnablement::new(p.clone())),
            None => Registry::new(),
        });
        let plugins = pool
            .as_ref()
            .map(|p| PluginHost::new(p.clone(), &registry, http.clone(), config.plugins.clone()));
        let services = Arc::new(Services { pool, http, config });
        skills::register_builtin(&registry, &services)?;
        Ok(Self {
            registry,
            services,
            plugins,
        })
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// This process's plugins (with a database only).
    pub fn plugins(&self) -> Option<&PluginHost> {
        self.plugins.as_ref()
    }

    pub fn config(&self) -> &ToolsConfig {
        &self.services.config
    }

    /// The guarded HTTP client, for other outbound calls that need the same SSRF guard
    /// (schedule and pipeline `call_api` actions, webhooks).
    pub fn http(&self) -> &GuardedClient {
        &self.services.http
    }

    pub async fn execute(&self, name: &str, input: Value, ctx: &CallContext) -> SkillResponse {
        self.registry.execute(name, input, ctx).await
    }
}
