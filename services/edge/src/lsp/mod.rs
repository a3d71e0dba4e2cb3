//! Code intelligence (`/lsp`, contract §2.17) from real language servers over stdio: `pylsp`
//! for Python, `typescript-language-server` for TypeScript/JavaScript and `rust-analyzer` for
//! Rust, when installed (an absent one answers a clear error, never made-up results).
//!
//! # Where the servers live, and why any edge answers any call
//!
//! Each edge runs its own servers, one per (project, language), started on demand by the first
//! request that needs one. We did not make one process own them and route calls to it through
//! PostgreSQL: that owner would be a single point of failure and a second hop on a path that
//! must answer while the user types, and its state would have to be handed over on failure
//! anyway. A language server's state is not precious: it is derived from the files on disk
//! (which every edge sees) and from the document a request carries. Every request names its
//! file and may carry the editor's unsaved `content`; before asking, the edge makes its server's
//! copy of that file equal to it (`didOpen` the first time, then a full `didChange` when the
//! text differs, the text from disk when the request has none). So the answer depends only on
//! the request and the disk, whichever edge computes it; an edge that never saw the project
//! starts a server (the first answer is slower), and `initialize` / `status` / `shutdown` are
//! about this edge's server (`status.active` says whether this edge has one running).
//!
//! # Lifecycle and bounds
//!
//! At most `LSP_MAX_SERVERS` per edge (the least recently used idle one is stopped to make
//! room; when all are busy a new one is refused with 503); a server starting holds only its
//! own (project, language) slot, so other projects' requests do not wait for it; one unused for `LSP_IDLE_SECONDS` is
//! shut down; one that crashed is restarted by the next request; every request waits at most
//! `LSP_REQUEST_TIMEOUT_MS`. Servers run in their own process group (killed whole when they
//! stop) with the edge's clean environment, and die with the edge (`PR_SET_PDEATHSIG`).

pub mod protocol;
pub mod server;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use gathering_tools::ProjectRoot;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::workspace::config::LspConfig;
pub use server::LspServer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    Python,
    TypeScript,
    Rust,
}

impl Language {
    pub fn parse(s: &str) -> Option<Language> {
        match s.to_ascii_lowercase().as_str() {
            "python" | "py" => Some(Language::Python),
            "typescript" | "javascript" | "ts" | "js" | "tsx" | "jsx" => Some(Language::TypeScript),
            "rust" | "rs" => Some(Language::Rust),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::TypeScript => "typescript",
            Language::Rust => "rust",
        }
    }

    /// The LSP `languageId` of a file.
    pub fn language_id(self, path: &Path) -> &'static str {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match (self, ext) {
            (Language::Python, _) => "python",
            (Language::Rust, _) => "rust",
            (Language::TypeScript, "js" | "mjs" | "cjs") => "javascript",
            (Language::TypeScript, "jsx") => "javascriptreact",
            (Language::TypeScript, "tsx") => "typescriptreact",
            (Language::TypeScript, _) => "typescript",
        }
    }
}

type Key = (i64, Language);
/// One (project, language)'s server, locked while it starts so that only one starts and
/// requests for other projects do not wait for it.
type Slot = Arc<tokio::sync::Mutex<Option<Arc<LspServer>>>>;

pub struct LspManager {
    config: LspConfig,
    servers: std::sync::Mutex<HashMap<Key, Slot>>,
}

/// A server nobody is using right now: its slot is not locked and no request holds it.
fn unused(slot: &Slot) -> Option<Option<Arc<LspServer>>> {
    let g = slot.try_lock().ok()?;
    match g.as_ref() {
        None => Some(None),
        Some(s) if Arc::strong_count(s) == 1 => Some(Some(s.clone())),
        Some(_) => None,
    }
}

impl LspManager {
    /// The manager and its idle reaper (which stops with the manager).
    pub fn start(config: LspConfig) -> Arc<LspManager> {
        let manager = Arc::new(LspManager {
            config,
            servers: std::sync::Mutex::new(HashMap::new()),
        });
        let weak = Arc::downgrade(&manager);
        let every =
            (manager.config.idle / 2).clamp(Duration::from_millis(200), Duration::from_secs(30));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(reap(weak, every));
        }
        manager
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Slot>> {
        self.servers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn command(&self, lang: Language) -> &[String] {
        match lang {
            Language::Python => &self.config.python,
            Language::TypeScript => &self.config.typescript,
            Language::Rust => &self.config.rust,
        }
    }

    /// The slot of `key`, made when new; a new one may stop the least recently used unused
    /// server to stay within `LSP_MAX_SERVERS`, and is refused (503) when all are busy.
    fn slot(&self, key: Key) -> Result<Slot, ApiError> {
        let mut map = self.map();
        if let Some(s) = map.get(&key) {
            return Ok(s.clone());
        }
        if map.len() >= self.config.max_servers {
            let victim = map
                .iter()
                .filter_map(|(k, slot)| {
                    let idle = match unused(slot)? {
                        None => Duration::MAX,
                        Some(server) => server.idle_for(),
                    };
                    Some((*k, idle))
                })
                .max_by_key(|(_, idle)| *idle)
                .map(|(k, _)| k);
            let Some(victim) = victim else {
                return Err(ApiError::Unavailable(
                    "Too many language servers are busy on this server; try again".into(),
                ));
            };
            if let Some(Some(server)) = map.remove(&victim).as_ref().and_then(unused) {
                server.kill();
            }
        }
        let slot = Slot::default();
        map.insert(key, slot.clone());
        Ok(slot)
    }

    /// This edge's live server for (project, language), started (or restarted) when needed.
    pub async fn server(
        &self,
        project_id: i64,
        lang: Language,
        root: &ProjectRoot,
    ) -> Result<Arc<LspServer>, ApiError> {
        let slot = self.slot((project_id, lang))?;
        let mut current = slot.lock().await;
        if let Some(s) = current.as_ref() {
            if s.alive() && s.root.path() == root.path() {
                s.touch();
                return Ok(s.clone());
            }
            // Crashed (or the project moved): replace it.
            s.kill();
            *current = None;
        }
        let server = LspServer::start(
            lang,
            self.command(lang),
            root.clone(),
            self.config.request_timeout,
        )
        .await
        .map_err(ApiError::Failed)?;
        tracing::info!(
            project_id,
            language = lang.name(),
            pid = server.pid,
            "language server started"
        );
        *current = Some(server.clone());
        Ok(server)
    }

    /// This edge's server for (project, language), if one is running.
    pub async fn running(&self, project_id: i64, lang: Language) -> Option<Arc<LspServer>> {
        let slot = self.map().get(&(project_id, lang)).cloned()?;
        let current = slot.lock().await;
        current.as_ref().filter(|s| s.alive()).cloned()
    }

    pub async fn stop(&self, project_id: i64, lang: Language) -> bool {
        let slot = self.map().remove(&(project_id, lang));
        let Some(slot) = slot else { return false };
        let server = slot.lock().await.take();
        match server {
            Some(s) => {
                s.shutdown().await;
                true
            }
            None => false,
        }
    }

    pub async fn shutdown_all(&self) {
        let all: Vec<Slot> = self.map().drain().map(|(_, s)| s).collect();
        for slot in all {
            let server = slot.lock().await.take();
            if let Some(s) = server {
                s.shutdown().await;
            }
        }
    }
}

async fn reap(manager: Weak<LspManager>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let Some(m) = manager.upgrade() else { return };
        let idle = m.config.idle;
        let stale: Vec<Arc<LspServer>> = {
            let mut map = m.map();
            let keys: Vec<(Key, Option<Arc<LspServer>>)> = map
                .iter()
                .filter_map(|(k, slot)| {
                    let server = unused(slot)?;
                    let stale = server
                        .as_ref()
                        .is_none_or(|s| !s.alive() || s.idle_for() >= idle);
                    stale.then_some((*k, server))
                })
                .collect();
            keys.into_iter()
                .filter_map(|(k, server)| {
                    map.remove(&k);
                    server
                })
                .collect()
        };
        for s in stale {
            tracing::info!(
                language = s.language.name(),
                pid = s.pid,
                "language server idle: shutting down"
            );
            s.shutdown().await;
        }
    }
}

/// A request's document: its absolute path (confined to the root) and the text to analyse
/// (the request's unsaved content, else the file on disk).
pub async fn document(
    root: &ProjectRoot,
    file_path: &str,
    content: Option<String>,
) -> Result<(std::path::PathBuf, String), ApiError> {
    let abs = root
        .resolve(file_path)
        .await
        .map_err(|e| ApiError::BadRequest(format!("File path outside project: {e}")))?;
    let text = match content {
        Some(c) => c,
        None => {
            let f = gathering_tools::files::read(
                root,
                file_path,
                gathering_tools::files::MAX_FILE_BYTES,
            )
            .await
            .map_err(|e| match e {
                gathering_tools::ToolError::Missing(_) => {
                    ApiError::NotFound(format!("File not found: {file_path}"))
                }
                other => ApiError::BadRequest(other.to_string()),
            })?;
            match f.content {
                gathering_tools::files::Content::Text { text, .. } => text,
                gathering_tools::files::Content::Binary => {
                    return Err(ApiError::BadRequest(format!(
                        "{file_path} is not a text file"
                    )));
                }
            }
        }
    };
    Ok((abs, text))
}

/// `{line (0-based), character}` from the contract's 1-based line.
pub fn position(line: u32, character: u32) -> Value {
    json!({"line": line.saturating_sub(1), "character": character})
}
