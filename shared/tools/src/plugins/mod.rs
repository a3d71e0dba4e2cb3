//! Plugins: MCP servers and declarative tools whose tools join the registry (contract §2.18).
//!
//! - [`manifest`]: `gathering-plugin.json`, checked on construction; discovery reads it only
//!   inside `GATHERING_PLUGIN_DIRS`.
//! - [`store`]: `agent.plugins`, the state every edge and executor shares; changes notify
//!   `plugins_changed`.
//! - [`PluginHost`] (one per process): keeps this process's registry equal to the table
//!   (tools of enabled plugins registered, others removed) and owns this process's MCP
//!   [`session`]s, started on demand, restarted with back-off after a crash, stopped when the
//!   plugin is disabled or unloaded and when the process shuts down.
//! - [`ops`]: the administrator's actions (load, enable, disable, unload, discover, dynamic,
//!   save) behind the routes.
//!
//! Plugin code never runs inside GatheRing: a plugin is a separate server spoken to over MCP,
//! or a declaration (an HTTP call template through the outbound guard, a pipeline call).

pub mod bridge;
pub mod manifest;
pub mod ops;
pub mod session;
pub mod store;
pub mod template;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use gathering_core::Shutdown;
use gathering_core::backoff::Backoff;
use gathering_core::config::{self, ConfigError, Vars};
use gathering_db::Pool;
use serde_json::{Value, json};

use crate::error::ToolError;
use crate::net::{GuardedClient, NetGuard};
use crate::registry::Registry;
use manifest::Kind;
use session::{Launch, Session};
use store::PluginRow;

pub use ops::PluginError;

/// Plugin settings.
///
/// | variable | meaning | default |
/// |---|---|---|
/// | `GATHERING_PLUGIN_DIRS` | folders plugins may be discovered in (colon-separated) | `$GATHERING_DATA_DIR/plugins` |
/// | `GATHERING_PLUGIN_RESTART_BASE_MS` / `_CAP_MS` | back-off of crashed MCP servers | 500 / 30000 |
#[derive(Debug, Clone)]
pub struct PluginSettings {
    pub dirs: Vec<PathBuf>,
    pub restart: Backoff,
}

impl Default for PluginSettings {
    fn default() -> Self {
        Self {
            dirs: Vec::new(),
            restart: Backoff {
                base: Duration::from_millis(500),
                cap: Duration::from_secs(30),
                jitter: 0.2,
            },
        }
    }
}

impl PluginSettings {
    pub fn from_vars(vars: &impl Vars) -> Result<Self, ConfigError> {
        let d = Self::default();
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let dirs = match vars.get("GATHERING_PLUGIN_DIRS") {
            Some(raw) => raw
                .split(':')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| cwd.join(p))
                .collect(),
            None => vec![config::data_dir(vars).join("plugins")],
        };
        let base: u64 = config::parse_or(vars, "GATHERING_PLUGIN_RESTART_BASE_MS", 500)?;
        let cap: u64 = config::parse_or(vars, "GATHERING_PLUGIN_RESTART_CAP_MS", 30_000)?;
        Ok(Self {
            dirs,
            restart: Backoff {
                base: Duration::from_millis(base.max(10)),
                cap: Duration::from_millis(cap.max(base)),
                ..d.restart
            },
        })
    }
}

/// This process's plugins: registry synchronisation and MCP sessions.
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<HostInner>,
}

pub(crate) struct HostInner {
    pool: Pool,
    registry: Weak<Registry>,
    http: GuardedClient,
    guard: NetGuard,
    settings: PluginSettings,
    /// The rows as last read (what on-demand sessions start from).
    rows: Mutex<HashMap<String, PluginRow>>,
    /// Plugin → generation whose tools are in the registry.
    registered: Mutex<HashMap<String, i64>>,
    /// Plugin → (launch fingerprint, session).
    sessions: Mutex<HashMap<String, (String, Arc<Session>)>>,
    sync_lock: tokio::sync::Mutex<()>,
    stopped: std::sync::atomic::AtomicBool,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a session depends on: a change restarts it.
fn fingerprint(row: &PluginRow) -> String {
    format!("{}|{}|{:?}", row.manifest, row.config, row.source_dir)
}

impl PluginHost {
    pub fn new(
        pool: Pool,
        registry: &Arc<Registry>,
        http: GuardedClient,
        settings: PluginSettings,
    ) -> Self {
        Self {
            inner: Arc::new(HostInner {
                pool,
                registry: Arc::downgrade(registry),
                guard: http.guard().clone(),
                http,
                settings,
                rows: Mutex::default(),
                registered: Mutex::default(),
                sessions: Mutex::default(),
                sync_lock: tokio::sync::Mutex::new(()),
                stopped: Default::default(),
            }),
        }
    }

    pub fn settings(&self) -> &PluginSettings {
        &self.inner.settings
    }

    pub(crate) fn inner(&self) -> &Arc<HostInner> {
        &self.inner
    }

    /// Reads the table once and keeps following it (`plugins_changed`, plus a periodic re-read
    /// as a backstop) until `shutdown`, when every session is stopped.
    pub async fn start(&self, database_url: &str, shutdown: Shutdown) -> Result<(), ToolError> {
        let mut listener =
            gathering_db::Listener::start(database_url, &[store::CHANNEL], shutdown.clone())
                .await
                .map_err(|e| ToolError::Db(e.to_string()))?;
        if let Err(e) = self.sync().await {
            tracing::warn!(error = %e, "plugins: first sync failed");
        }
        let host = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    ev = listener.recv() => if ev.is_none() { break },
                    _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                    _ = shutdown.wait() => break,
                }
                while listener.try_recv().is_some() {}
                if let Err(e) = host.sync().await {
                    tracing::warn!(error = %e, "plugins: sync failed");
                }
            }
            host.shutdown().await;
        });
        Ok(())
    }

    /// Makes this process's registry and sessions match the table.
    pub async fn sync(&self) -> Result<(), ToolError> {
        let inner = &self.inner;
        let _one = inner.sync_lock.lock().await;
        if inner.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        let rows = {
            let client = inner.pool.get().await?;
            store::list(&client).await?
        };
        let Some(registry) = inner.registry.upgrade() else {
            return Ok(());
        };
        let by_id: HashMap<String, PluginRow> =
            rows.into_iter().map(|r| (r.id.clone(), r)).collect();
        {
            let mut registered = locked(&inner.registered);
            registered.retain(|id, generation| {
                let keep = by_id
                    .get(id)
                    .is_some_and(|r| r.status == "enabled" && r.generation == *generation);
                if !keep {
                    registry.unregister_plugin(id);
                }
                keep
            });
            for row in by_id.values().filter(|r| r.status == "enabled") {
                if registered.contains_key(&row.id) {
                    continue;
                }
                registry.unregister_plugin(&row.id);
                let skipped = bridge::register(inner, &registry, row);
                if !skipped.is_empty() {
                    tracing::warn!(plugin = %row.id, ?skipped, "plugin tools skipped");
                }
                registered.insert(row.id.clone(), row.generation);
            }
        }
        let to_stop: Vec<Arc<Session>> = {
            let mut sessions = locked(&inner.sessions);
            let mut stop = Vec::new();
            sessions.retain(|id, (print, s)| {
                let keep = by_id.get(id).is_some_and(|r| {
                    matches!(r.status.as_str(), "loaded" | "enabled") && fingerprint(r) == *print
                });
                if !keep {
                    stop.push(s.clone());
                }
                keep
            });
            stop
        };
        *locked(&inner.rows) = by_id;
        for s in to_stop {
            s.stop().await;
        }
        Ok(())
    }

    /// `{plugin_id, status, error?, details?}`: the shared state and this process's session.
    pub fn health(&self, row: &PluginRow) -> Value {
        let session = locked(&self.inner.sessions)
            .get(&row.id)
            .map(|(_, s)| s.clone());
        let mut details = match (&session, row.kind.as_str()) {
            (Some(s), _) => s.health(),
            (None, "declarative") => json!({"session": "none", "healthy": row.status != "error"}),
            (None, _) => json!({
                "session": "not_started",
                "healthy": row.status != "error",
                "note": "this process starts the server on the first call",
            }),
        };
        details["process_id"] = json!(std::process::id());
        details["registered_tools"] = json!(
            self.inner
                .registry
                .upgrade()
                .map(|r| r.list_by_plugin(&row.id).len())
                .unwrap_or(0)
        );
        json!({"plugin_id": row.id, "status": row.status, "error": row.error, "details": details})
    }

    /// Stops every session (process shutdown); later syncs do nothing.
    pub async fn shutdown(&self) {
        self.inner
            .stopped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let all: Vec<Arc<Session>> = locked(&self.inner.sessions)
            .drain()
            .map(|(_, (_, s))| s)
            .collect();
        for s in all {
            s.stop().await;
        }
    }
}

impl HostInner {
    fn launch(&self, row: &PluginRow) -> Result<Launch, ToolError> {
        let m = row.manifest()?;
        let spec = m
            .mcp
            .clone()
            .ok_or_else(|| ToolError::Failed(format!("plugin '{}' has no MCP server", row.id)))?;
        Ok(Launch {
            plugin_id: row.id.clone(),
            spec,
            dir: row.source_dir.as_ref().map(PathBuf::from),
            config: row.config.clone(),
            limits: m.limits,
            guard: self.guard.clone(),
        })
    }

    /// This process's session with the plugin's server, started now if there is none.
    pub(crate) fn session_for(&self, plugin_id: &str) -> Result<Arc<Session>, ToolError> {
        if self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ToolError::Failed("this process is shutting down".into()));
        }
        let row = locked(&self.rows)
            .get(plugin_id)
            .cloned()
            .ok_or_else(|| ToolError::Missing(format!("plugin '{plugin_id}' is not loaded")))?;
        if row.status != "enabled" {
            return Err(ToolError::Refused(format!(
                "plugin '{plugin_id}' is {}",
                row.status
            )));
        }
        if row.kind == Kind::Declarative.as_str() {
            return Err(ToolError::Failed(format!(
                "plugin '{plugin_id}' has no MCP server"
            )));
        }
        let print = fingerprint(&row);
        let mut sessions = locked(&self.sessions);
        if let Some((p, s)) = sessions.get(plugin_id)
            && *p == print
        {
            return Ok(s.clone());
        }
        let session = Session::start(self.launch(&row)?, self.settings.restart);
        if let Some((_, old)) = sessions.insert(plugin_id.to_owned(), (print, session.clone())) {
            tokio::spawn(async move { old.stop().await });
        }
        Ok(session)
    }

    /// Keeps a session made by `load` (so the first call does not start another server).
    fn adopt(&self, row: &PluginRow, session: Arc<Session>) {
        let old = locked(&self.sessions).insert(row.id.clone(), (fingerprint(row), session));
        if let Some((_, old)) = old {
            tokio::spawn(async move { old.stop().await });
        }
    }

    async fn drop_session(&self, plugin_id: &str) {
        let old = locked(&self.sessions).remove(plugin_id);
        if let Some((_, s)) = old {
            s.stop().await;
        }
    }
}
