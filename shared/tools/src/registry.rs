//! The tool registry (BEHAVIOUR.md A5): registration with the A5 error messages, look-ups by
//! category, competency and plugin, stats, and execution with every check a call goes
//! through, in this order: exists → input valid → permissions held → skill enabled for the
//! agent → confirmed when dangerous → runs under its timeout and the caller's cancellation.
//!
//! The registry is shared (`Arc`) and read far more than written: a `RwLock` guards the maps and
//! is never held across an `.await`; a call clones the entry's `Arc` and releases the lock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde::Serialize;
use serde_json::Value;

use crate::context::CallContext;
use crate::definition::{Category, ToolDefinition};
use crate::enablement::EnablementCheck;
use crate::error::ToolError;
use crate::response::SkillResponse;
use crate::validate::Schema;

/// What a tool returns when it ran. `success` is false for a run that completed but failed
/// in the tool's own terms (a command that exited non-zero, a webhook that answered 500).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    pub success: bool,
    pub message: String,
    pub data: Value,
}

impl ToolOutput {
    pub fn ok(message: impl Into<String>, data: Value) -> Self {
        Self {
            success: true,
            message: message.into(),
            data,
        }
    }

    pub fn failed(message: impl Into<String>, data: Value) -> Self {
        Self {
            success: false,
            message: message.into(),
            data,
        }
    }
}

pub type ToolFuture = Pin<Box<dyn Future<Output = Result<ToolOutput, ToolError>> + Send>>;

/// A runnable tool. Every tool is async; closures `Fn(CallContext, Value) -> impl Future`
/// are tools.
pub trait Tool: Send + Sync + 'static {
    fn call(&self, ctx: CallContext, input: Value) -> ToolFuture;
}

impl<F, Fut> Tool for F
where
    F: Fn(CallContext, Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<ToolOutput, ToolError>> + Send + 'static,
{
    fn call(&self, ctx: CallContext, input: Value) -> ToolFuture {
        Box::pin(self(ctx, input))
    }
}

struct Entry {
    def: Arc<ToolDefinition>,
    schema: Schema,
    tool: Arc<dyn Tool>,
}

#[derive(Default)]
struct Inner {
    tools: HashMap<String, Arc<Entry>>,
    by_category: BTreeMap<Category, BTreeSet<String>>,
    by_competency: BTreeMap<String, BTreeSet<String>>,
    by_plugin: BTreeMap<String, BTreeSet<String>>,
}

/// `get_stats()` of A5.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RegistryStats {
    pub total_tools: usize,
    pub categories: usize,
    pub competencies: usize,
    pub tools_by_category: BTreeMap<String, usize>,
    pub plugins: usize,
}

#[derive(Default)]
pub struct Registry {
    inner: RwLock<Inner>,
    enablement: Option<Arc<dyn EnablementCheck>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry that checks per-agent enablement through `check` for calls made on behalf
    /// of an agent.
    pub fn with_enablement(check: Arc<dyn EnablementCheck>) -> Self {
        Self {
            inner: RwLock::default(),
            enablement: Some(check),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated (each update is
        // a few inserts that do not panic), so a poisoned lock is still usable.
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a tool. Its schema is compiled now, so a malformed one is refused here and
    /// never at call time.
    pub fn register(&self, def: ToolDefinition, tool: impl Tool) -> Result<(), ToolError> {
        self.register_arc(def, Arc::new(tool))
    }

    pub fn register_arc(&self, def: ToolDefinition, tool: Arc<dyn Tool>) -> Result<(), ToolError> {
        if def.name.trim().is_empty() {
            return Err(ToolError::EmptyName);
        }
        if def.description.trim().is_empty() {
            return Err(ToolError::EmptyDescription);
        }
        let schema =
            Schema::compile(&def.input_schema).map_err(|reason| ToolError::InvalidSchema {
                tool: def.name.clone(),
                reason,
            })?;
        let mut inner = self.write();
        if inner.tools.contains_key(&def.name) {
            return Err(ToolError::AlreadyRegistered(def.name));
        }
        let name = def.name.clone();
        inner
            .by_category
            .entry(def.category)
            .or_default()
            .insert(name.clone());
        for c in &def.required_competencies {
            inner
                .by_competency
                .entry(c.clone())
                .or_default()
                .insert(name.clone());
        }
        if let Some(p) = &def.plugin_id {
            inner
                .by_plugin
                .entry(p.clone())
                .or_default()
                .insert(name.clone());
        }
        inner.tools.insert(
            name,
            Arc::new(Entry {
                def: Arc::new(def),
                schema,
                tool,
            }),
        );
        Ok(())
    }

    /// Removes a tool; false when it was not registered. Index entries left empty are dropped.
    pub fn unregister(&self, name: &str) -> bool {
        let mut inner = self.write();
        let Some(entry) = inner.tools.remove(name) else {
            return false;
        };
        let def = &entry.def;
        remove_from(&mut inner.by_category, &def.category, name);
        for c in &def.required_competencies {
            remove_from(&mut inner.by_competency, c, name);
        }
        if let Some(p) = &def.plugin_id {
            remove_from(&mut inner.by_plugin, p, name);
        }
        true
    }

    /// Removes every tool of a plugin; returns how many.
    pub fn unregister_plugin(&self, plugin_id: &str) -> usize {
        let names: Vec<String> = self
            .read()
            .by_plugin
            .get(plugin_id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        names.iter().filter(|n| self.unregister(n)).count()
    }

    pub fn clear(&self) {
        *self.write() = Inner::default();
    }

    pub fn get(&self, name: &str) -> Option<Arc<ToolDefinition>> {
        self.read().tools.get(name).map(|e| e.def.clone())
    }

    pub fn has(&self, name: &str) -> bool {
        self.read().tools.contains_key(name)
    }

    /// Every definition, sorted by name.
    pub fn list_all(&self) -> Vec<Arc<ToolDefinition>> {
        let inner = self.read();
        let mut all: Vec<_> = inner.tools.values().map(|e| e.def.clone()).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    pub fn list_by_category(&self, category: Category) -> Vec<Arc<ToolDefinition>> {
        let inner = self.read();
        self.collect(&inner, inner.by_category.get(&category))
    }

    pub fn list_by_competency(&self, competency: &str) -> Vec<Arc<ToolDefinition>> {
        let inner = self.read();
        self.collect(&inner, inner.by_competency.get(competency))
    }

    pub fn list_by_plugin(&self, plugin_id: &str) -> Vec<Arc<ToolDefinition>> {
        let inner = self.read();
        self.collect(&inner, inner.by_plugin.get(plugin_id))
    }

    pub fn list_by_skill(&self, skill: &str) -> Vec<Arc<ToolDefinition>> {
        self.list_all()
            .into_iter()
            .filter(|d| d.skill == skill)
            .collect()
    }

    fn collect(&self, inner: &Inner, names: Option<&BTreeSet<String>>) -> Vec<Arc<ToolDefinition>> {
        names
            .into_iter()
            .flatten()
            .filter_map(|n| inner.tools.get(n).map(|e| e.def.clone()))
            .collect()
    }

    /// Categories that hold at least one tool.
    pub fn get_categories(&self) -> Vec<Category> {
        self.read().by_category.keys().copied().collect()
    }

    pub fn get_competencies(&self) -> Vec<String> {
        self.read().by_competency.keys().cloned().collect()
    }

    /// Number of tools per skill name.
    pub fn tools_per_skill(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for e in self.read().tools.values() {
            *out.entry(e.def.skill.clone()).or_insert(0) += 1;
        }
        out
    }

    pub fn get_stats(&self) -> RegistryStats {
        let inner = self.read();
        RegistryStats {
            total_tools: inner.tools.len(),
            categories: inner.by_category.len(),
            competencies: inner.by_competency.len(),
            tools_by_category: inner
                .by_category
                .iter()
                .map(|(c, s)| (c.as_str().to_owned(), s.len()))
                .collect(),
            plugins: inner.by_plugin.len(),
        }
    }

    /// Checks `input` against the tool's schema without running it.
    pub fn validate(&self, name: &str, input: &Value) -> Result<(), ToolError> {
        let entry = self.entry(name)?;
        check_input(&entry, input)
    }

    fn entry(&self, name: &str) -> Result<Arc<Entry>, ToolError> {
        self.read()
            .tools
            .get(name)
            .cloned()
            .ok_or_else(|| ToolError::NotFound(name.to_owned()))
    }

    /// Runs a tool after every check; the typed result.
    pub async fn call(
        &self,
        name: &str,
        input: Value,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let entry = self.entry(name)?;
        let def = entry.def.clone();
        check_input(&entry, &input)?;
        let missing = def.required_permissions.missing_from(ctx.grants);
        if !missing.is_empty() {
            return Err(ToolError::PermissionDenied {
                tool: def.name.clone(),
                missing,
                granted: ctx.grants,
            });
        }
        if let (Some(agent_id), Some(check)) = (ctx.agent_id, &self.enablement)
            && !check.is_enabled(agent_id, &def.skill).await?
        {
            return Err(ToolError::NotEnabled {
                skill: def.skill.clone(),
                agent_id,
            });
        }
        if def.dangerous && !ctx.confirmed {
            return Err(ToolError::NeedsConfirmation {
                tool: def.name.clone(),
                confirmation: def.confirmation,
            });
        }
        let timeout = match ctx.timeout {
            Some(t) => t.min(def.timeout),
            None => def.timeout,
        };
        let started = Instant::now();
        let result = run_guarded(&entry, ctx, input, timeout).await;
        let outcome = match &result {
            Ok(o) if o.success => "ok",
            Ok(_) => "failed",
            Err(e) => e.code(),
        };
        metrics::counter!("gathering_tool_calls_total", "tool" => def.name.clone(), "outcome" => outcome)
            .increment(1);
        metrics::histogram!("gathering_tool_duration_seconds", "tool" => def.name.clone())
            .record(started.elapsed().as_secs_f64());
        if let (Some(agent_id), Some(check)) = (ctx.agent_id, &self.enablement)
            && let Err(e) = check.record_use(agent_id, &def.skill).await
        {
            tracing::warn!(error = %e, agent_id, skill = %def.skill, "tool usage not recorded");
        }
        result
    }

    /// Runs a tool and answers with a [`SkillResponse`], whatever happened.
    pub async fn execute(&self, name: &str, input: Value, ctx: &CallContext) -> SkillResponse {
        let at = chrono::Utc::now();
        let started = Instant::now();
        let skill = self.get(name).map(|d| d.skill.clone()).unwrap_or_default();
        let result = self.call(name, input, ctx).await;
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        SkillResponse::from_result(&skill, name, result, ms, at)
    }
}

fn remove_from<K, Q>(map: &mut BTreeMap<Q, BTreeSet<String>>, key: &K, name: &str)
where
    K: Ord + ?Sized,
    Q: Ord + std::borrow::Borrow<K>,
{
    if let Some(set) = map.get_mut(key) {
        set.remove(name);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

fn check_input(entry: &Entry, input: &Value) -> Result<(), ToolError> {
    let violations = entry.schema.violations(input);
    if violations.is_empty() {
        Ok(())
    } else {
        Err(ToolError::Validation {
            tool: entry.def.name.clone(),
            violations,
        })
    }
}

/// Runs the tool's future under `timeout` and the caller's cancellation; a panic inside the
/// tool becomes an error instead of taking the caller down. On timeout or cancellation the
/// future is dropped, which is what cancels the work (child processes are killed on drop,
/// connections closed).
async fn run_guarded(
    entry: &Entry,
    ctx: &CallContext,
    input: Value,
    timeout: Duration,
) -> Result<ToolOutput, ToolError> {
    let name = &entry.def.name;
    let fut = AssertUnwindSafe(entry.tool.call(ctx.clone(), input)).catch_unwind();
    tokio::select! {
        biased;
        _ = ctx.cancel.cancelled() => Err(ToolError::Cancelled { tool: name.clone() }),
        r = tokio::time::timeout(timeout, fut) => match r {
            Err(_) => Err(ToolError::Timeout {
                tool: name.clone(),
                ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            }),
            Ok(Err(panic)) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "the tool panicked".into());
                tracing::error!(tool = %name, %message, "tool panicked");
                Err(ToolError::Internal { tool: name.clone(), message })
            }
            Ok(Ok(result)) => result,
        },
    }
}
