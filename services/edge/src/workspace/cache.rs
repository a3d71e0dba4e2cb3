//! Per-edge cache of git statuses and file trees, the two reads the dashboard repeats most
//! (every file-tree refresh runs `git status`).
//!
//! A cached value is served only while nothing can have changed it:
//! - every write through the API (file write/delete, stage, commit, pull, …) invalidates the
//!   project before it answers, so a read after a write never sees the old state;
//! - changes made outside the API (the terminal, an agent's tools, another edge, an editor) are
//!   seen through file-change notifications: one `notify` watcher (inotify on Linux) per edge,
//!   watching each cached project recursively, invalidates the project on any create, modify,
//!   delete or rename under it (reads are ignored). We chose notifications over re-checking
//!   modification times because a correct mtime check means a stat of every file, which is
//!   most of what `git status` costs; a notification costs nothing until something changes;
//! - when a project cannot be watched (inotify limits, a file system without notifications)
//!   nothing is cached for it; and every value also expires after `WORKSPACE_CACHE_TTL_SECONDS`
//!   as a backstop for notifications a network file system does not deliver.
//!
//! A value computed while an invalidation happened is not stored (generation check), and at
//! most [`MAX_PROJECTS`] projects are cached (least recently used are dropped and unwatched).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gathering_tools::git::status::Status;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use serde_json::Value;

/// Projects cached (and watched) at once per edge.
pub const MAX_PROJECTS: usize = 64;

struct Cached<T> {
    value: T,
    at: Instant,
}

struct Entry {
    generation: u64,
    watched: bool,
    used: Instant,
    status: Option<Cached<Arc<Status>>>,
    /// Trees by (max depth, with git status).
    trees: HashMap<(u32, bool), Cached<Arc<Value>>>,
}

impl Entry {
    fn clear(&mut self) {
        self.generation += 1;
        self.status = None;
        self.trees.clear();
    }
}

#[derive(Default)]
struct Inner {
    projects: HashMap<PathBuf, Entry>,
}

impl Inner {
    fn invalidate_under(&mut self, changed: &Path) {
        for (root, entry) in self.projects.iter_mut() {
            if changed.starts_with(root) {
                entry.clear();
            }
        }
    }
}

pub struct WorkspaceCache {
    inner: Arc<Mutex<Inner>>,
    watcher: Mutex<Option<RecommendedWatcher>>,
    ttl: Duration,
}

/// What a read needs to store its result: the project's generation when it started.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl WorkspaceCache {
    pub fn new(ttl: Duration) -> Self {
        let inner: Arc<Mutex<Inner>> = Arc::default();
        let events = Arc::downgrade(&inner);
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Some(inner) = events.upgrade() else {
                return;
            };
            let Ok(event) = res else {
                // An overflowed queue loses events: forget everything.
                if let Ok(mut g) = inner.lock() {
                    g.projects.values_mut().for_each(Entry::clear);
                }
                return;
            };
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            if let Ok(mut g) = inner.lock() {
                if event.need_rescan() || event.paths.is_empty() {
                    g.projects.values_mut().for_each(Entry::clear);
                }
                for p in &event.paths {
                    g.invalidate_under(p);
                }
            }
        });
        let watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "file-change notifications unavailable: workspace reads are not cached");
                None
            }
        };
        Self {
            inner,
            watcher: Mutex::new(watcher),
            ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a read of `root`: watches it when new (blocking work, run off the reactor).
    pub async fn begin(self: &Arc<Self>, root: &Path) -> Ticket {
        let known = {
            let mut g = self.lock();
            match g.projects.get_mut(root) {
                Some(e) => {
                    e.used = Instant::now();
                    return Ticket(e.generation);
                }
                None => {
                    self.evict(&mut g);
                    g.projects.insert(
                        root.to_path_buf(),
                        Entry {
                            generation: 0,
                            watched: false,
                            used: Instant::now(),
                            status: None,
                            trees: HashMap::new(),
                        },
                    );
                    false
                }
            }
        };
        if !known {
            let this = self.clone();
            let path = root.to_path_buf();
            let watched = tokio::task::spawn_blocking(move || this.watch(&path))
                .await
                .unwrap_or(false);
            if let Some(e) = self.lock().projects.get_mut(root) {
                e.watched = watched;
            }
        }
        Ticket(self.lock().projects.get(root).map_or(0, |e| e.generation))
    }

    fn watch(&self, root: &Path) -> bool {
        let mut w = self.watcher.lock().unwrap_or_else(|p| p.into_inner());
        match w.as_mut().map(|w| w.watch(root, RecursiveMode::Recursive)) {
            Some(Ok(())) => true,
            Some(Err(e)) => {
                tracing::warn!(root = %root.display(), error = %e, "cannot watch project: its reads are not cached");
                false
            }
            None => false,
        }
    }

    fn evict(&self, g: &mut Inner) {
        while g.projects.len() >= MAX_PROJECTS {
            let Some(oldest) = g
                .projects
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(p, _)| p.clone())
            else {
                return;
            };
            g.projects.remove(&oldest);
            if let Some(w) = self
                .watcher
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_mut()
            {
                let _ = w.unwatch(&oldest);
            }
        }
    }

    fn fresh<T: Clone>(&self, e: &Entry, c: &Option<Cached<T>>) -> Option<T> {
        c.as_ref()
            .filter(|c| e.watched && c.at.elapsed() < self.ttl)
            .map(|c| c.value.clone())
    }

    pub fn status(&self, root: &Path) -> Option<Arc<Status>> {
        let g = self.lock();
        let e = g.projects.get(root)?;
        self.fresh(e, &e.status)
    }

    pub fn put_status(&self, root: &Path, t: Ticket, status: Arc<Status>) {
        let mut g = self.lock();
        if let Some(e) = g.projects.get_mut(root)
            && e.generation == t.0
            && e.watched
        {
            e.status = Some(Cached {
                value: status,
                at: Instant::now(),
            });
        }
    }

    pub fn tree(&self, root: &Path, key: (u32, bool)) -> Option<Arc<Value>> {
        let g = self.lock();
        let e = g.projects.get(root)?;
        let c = e
            .trees
            .get(&key)
            .filter(|c| e.watched && c.at.elapsed() < self.ttl)?;
        Some(c.value.clone())
    }

    pub fn put_tree(&self, root: &Path, t: Ticket, key: (u32, bool), tree: Arc<Value>) {
        let mut g = self.lock();
        if let Some(e) = g.projects.get_mut(root)
            && e.generation == t.0
            && e.watched
        {
            e.trees.insert(
                key,
                Cached {
                    value: tree,
                    at: Instant::now(),
                },
            );
        }
    }

    /// Forgets everything cached about `root` (a write went through the API).
    pub fn invalidate(&self, root: &Path) {
        if let Some(e) = self.lock().projects.get_mut(root) {
            e.clear();
        }
    }
}
