//! A dashboard build served by the edge (`GATHERING_DASHBOARD_DIR`, docs/dashboard.md), so no
//! other web server is needed in front. Browsers navigating (`GET`, `Accept: text/html`) to
//! any path outside the API's own (`/api`, `/ws`, `/auth`, `/health`, `/docs`, …) get the
//! build: the file at that path, or `index.html` for a client-side route (SPA fallback); such
//! a page needs a session (the authentication middleware sends a browser without one to
//! `/login`). Other requests get a file of the build only when it exists (scripts, styles,
//! images: public, like any web app's bundle), else the API answers as before.
//!
//! The folder is indexed once at start: only regular files inside it are ever served (a
//! request path is looked up in that index, never joined to the folder, so `..`, encoded
//! separators and symlinks that point outside cannot escape). Dot files are skipped.

mod serve;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::guard::{Guard, GuardContext};
use actix_web::http::Method;
use actix_web::http::header::HeaderMap;
use actix_web::{middleware::Compress, web};

pub use serve::serve;

/// Bounds of the index: a dashboard build has a few hundred files.
const MAX_FILES: usize = 20_000;
const MAX_DEPTH: usize = 32;

#[derive(Debug)]
pub struct Entry {
    /// The file, canonical (inside the folder).
    pub path: PathBuf,
    /// Its path relative to the folder, `/`-separated.
    pub relative: String,
}

/// The indexed build; `None` inside when `GATHERING_DASHBOARD_DIR` is unset.
#[derive(Debug, Default, Clone)]
pub struct Dashboard(Option<Arc<Index>>);

#[derive(Debug)]
pub struct Index {
    files: HashMap<String, Entry>,
}

/// What a request is to the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A browser navigating to a page: needs a session.
    Page,
    /// A file of the build fetched by the page: public.
    Asset,
}

impl Dashboard {
    /// Indexes `dir` (off the async workers: it walks the disk).
    pub async fn load(dir: Option<&Path>) -> Result<Self, String> {
        let Some(dir) = dir else {
            return Ok(Self(None));
        };
        let dir = dir.to_owned();
        let index = tokio::task::spawn_blocking(move || Index::build(&dir))
            .await
            .map_err(|e| e.to_string())??;
        if !index.files.contains_key("index.html") {
            tracing::warn!("GATHERING_DASHBOARD_DIR has no index.html: no SPA fallback");
        }
        tracing::info!(files = index.files.len(), "serving the dashboard build");
        Ok(Self(Some(Arc::new(index))))
    }

    pub fn is_enabled(&self) -> bool {
        self.0.is_some()
    }

    /// What `method path` with `headers` is to the dashboard, `None` when it is for the API.
    pub fn access(&self, method: &Method, path: &str, headers: &HeaderMap) -> Option<Access> {
        Some(self.target(method, path, headers)?.1)
    }

    /// The file answering the request, and how it may be fetched.
    pub fn target(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Option<(&Entry, Access)> {
        let index = self.0.as_deref()?;
        if (*method != Method::GET && *method != Method::HEAD) || is_reserved(path) {
            return None;
        }
        let navigation = crate::login::is_browser_navigation(method, headers);
        let relative = decoded(path)?;
        // `/` is the dashboard's page for browsers only: API clients get the contract's answer.
        let relative = match relative.is_empty() {
            true if navigation => "index.html".to_owned(),
            true => return None,
            false => relative,
        };
        match index.files.get(&relative) {
            Some(e) if navigation && e.relative.ends_with(".html") => Some((e, Access::Page)),
            Some(e) => Some((e, Access::Asset)),
            None if navigation => index.files.get("index.html").map(|e| (e, Access::Page)),
            None => None,
        }
    }
}

/// Paths that always belong to the API and its pages, never to the dashboard.
fn is_reserved(path: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "/api", "/ws", "/auth", "/health", "/docs", "/redoc", "/login",
    ];
    PREFIXES.iter().any(|p| {
        path.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }) || matches!(path, "/openapi.json" | "/metrics")
}

/// The request path relative to the folder, percent-decoded; `None` when it could not name a
/// file of the index anyway.
fn decoded(path: &str) -> Option<String> {
    let raw = path.strip_prefix('/')?;
    let text = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()?
        .into_owned();
    if text.contains('\\') || text.contains('\0') {
        return None;
    }
    Some(text)
}

impl Index {
    fn build(dir: &Path) -> Result<Self, String> {
        let root = dir
            .canonicalize()
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        if !root.is_dir() {
            return Err(format!("{} is not a folder", root.display()));
        }
        let mut files = HashMap::new();
        let mut pending = vec![(root.clone(), String::new(), 0usize)];
        while let Some((folder, prefix, depth)) = pending.pop() {
            let entries =
                std::fs::read_dir(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
            for entry in entries {
                let entry = entry.map_err(|e| e.to_string())?;
                let Ok(name) = entry.file_name().into_string() else {
                    continue; // not UTF-8: no URL names it
                };
                if name.starts_with('.') {
                    continue;
                }
                let relative = format!("{prefix}{name}");
                let meta = entry.metadata().map_err(|e| e.to_string())?;
                if meta.is_dir() {
                    if depth < MAX_DEPTH {
                        pending.push((entry.path(), format!("{relative}/"), depth + 1));
                    }
                    continue;
                }
                // A symlinked file is served only when it resolves inside the folder; symlinked
                // folders are not followed (no loops, no escapes).
                let Ok(path) = entry.path().canonicalize() else {
                    continue;
                };
                if !path.starts_with(&root) || !path.is_file() {
                    continue;
                }
                if files.len() >= MAX_FILES {
                    return Err(format!("more than {MAX_FILES} files"));
                }
                files.insert(relative.clone(), Entry { path, relative });
            }
        }
        Ok(Self { files })
    }
}

/// Matches requests the dashboard answers, so the API's routes see the rest.
struct DashboardGuard(Dashboard);

impl Guard for DashboardGuard {
    fn check(&self, ctx: &GuardContext<'_>) -> bool {
        let head = ctx.head();
        self.0
            .access(&head.method, head.uri.path(), &head.headers)
            .is_some()
    }
}

/// The service serving the build, compressed (gzip, the encoder the workspace enables), to be
/// registered before the API's routes.
pub fn service(
    dashboard: Dashboard,
) -> actix_web::Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    web::scope("")
        .guard(DashboardGuard(dashboard))
        .wrap(Compress::default())
        .default_service(web::to(serve))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_paths() {
        for p in [
            "/api",
            "/api/agents",
            "/ws",
            "/ws/chat/1",
            "/auth/session",
            "/health",
            "/docs",
            "/docs/x.js",
            "/openapi.json",
            "/login",
        ] {
            assert!(is_reserved(p), "{p}");
        }
        for p in ["/", "/agents", "/apis", "/wsx", "/assets/app.js", "/loginx"] {
            assert!(!is_reserved(p), "{p}");
        }
        assert_eq!(decoded("/a%20b.js").as_deref(), Some("a b.js"));
        assert_eq!(decoded("/..%5c..%5cetc"), None);
    }
}
