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
//! room; when all are busy a new one is refused with 503); one unused for `LSP_IDLE_SECONDS` is
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

pub struct LspManager {
    config: LspConfig,
    servers: tokio::sync::Mutex<HashMap<Key, Arc<LspServer>>>,
}

impl LspManager {
    /// The manager and its idle reaper (which stops with the manager).
    pub fn start(config: LspConfig) -> Arc<LspManager> {
        let manager = Arc::new(LspManager {
            config,
            servers: tokio::sync::Mutex::new(HashMap::new()),
        });
        let weak = Arc::downgrade(&manager);
        let every =
            (manager.config.idle / 2).clamp(Duration::from_millis(200), Duration::from_secs(30));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(reap(weak, every));
        }
        manager
    }

    fn command(&self, lang: Language) -> &[String] {
        match lang {
            Language::Python => &self.config.python,
            Language::TypeScript => &self.config.typescript,
            Language::Rust => &self.config.rust,
        }
    }

    /// This edge's live server for (project, language), started (or restarted) when needed.
    pub async fn server(
        &self,
        project_id: i64,
        lang: Language,
        root: &ProjectRoot,
    ) -> Result<Arc<LspServer>, ApiError> {
        let key = (project_id, lang);
        let mut servers = self.servers.lock().await;
        if let Some(s) = servers.get(&key) {
            if s.alive() && s.root.path() == root.path() {
                s.touch();
                return Ok(s.clone());
            }
            // Crashed (or the project moved): replace it.
            if let Some(old) = servers.remove(&key) {
                old.kill();
            }
        }
        if servers.len() >= self.config.max_servers {
            let victim = servers
                .iter()
                .filter(|(_, s)| Arc::strong_count(s) == 1)
                .max_by_key(|(_, s)| s.idle_for())
                .map(|(k, _)| *k);
            match victim.and_then(|k| servers.remove(&k)) {
                Some(old) => old.kill(),
                None => {
                    return Err(ApiError::Unavailable(
                        "Too many language servers are busy on this server; try again".into(),
                    ));
                }
            }
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
        servers.insert(key, server.clone());
        Ok(server)
    }

    /// This edge's server for (project, language), if one is running.
    pub async fn running(&self, project_id: i64, lang: Language) -> Option<Arc<LspServer>> {
        self.servers
            .lock()
            .await
            .get(&(project_id, lang))
            .filter(|s| s.alive())
            .cloned()
    }

    pub async fn stop(&self, project_id: i64, lang: Language) -> bool {
        let server = self.servers.lock().await.remove(&(project_id, lang));
        match server {
            Some(s) => {
                s.shutdown().await;
                true
            }
            None => false,
        }
    }

    pub async fn shutdown_all(&self) {
        let all: Vec<_> = self.servers.lock().await.drain().map(|(_, s)| s).collect();
        for s in all {
            s.shutdown().await;
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
            let mut servers = m.servers.lock().await;
            let keys: Vec<Key> = servers
                .iter()
                .filter(|(_, s)| !s.alive() || (s.idle_for() >= idle && Arc::strong_count(s) == 1))
                .map(|(k, _)| *k)
                .collect();
            keys.iter().filter_map(|k| servers.remove(k)).collect()
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
