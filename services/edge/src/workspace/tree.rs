//! The file tree of `GET /workspace/{id}/files`: sorted, without the folders and files editors
//! never show, symlinks listed but never followed (a link to `/` must not list the server),
//! bounded in depth and in entries.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Value, json};

/// Names never shown (contract §2.16); `*.x` patterns match a suffix.
const EXCLUDED: &[&str] = &[
    "__pycache__",
    "node_modules",
    ".venv",
    "venv",
    ".git",
    ".idea",
    ".vscode",
    "*.pyc",
    "*.egg-info",
    "dist",
    "build",
    ".DS_Store",
];

/// Most nodes one tree holds; past it the root says `truncated: true`.
pub const MAX_NODES: usize = 20_000;

pub fn excluded(name: &str) -> bool {
    EXCLUDED.iter().any(|p| match p.strip_prefix('*') {
        Some(suffix) => name.ends_with(suffix),
        None => name == *p,
    })
}

/// The MIME type guessed from a file name.
pub fn mime_of(path: &Path) -> String {
    mime_guess::from_path(path)
        .first_raw()
        .unwrap_or("application/octet-stream")
        .to_owned()
}

fn epoch(meta: &std::fs::Metadata) -> Option<f64> {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
}

struct Walk<'a> {
    git: &'a HashMap<String, String>,
    max_depth: u32,
    nodes: usize,
    truncated: bool,
}

/// Builds the tree of `root` (blocking: run it off the reactor). `git` maps relative paths to
/// their porcelain status code.
pub fn build(root: &Path, max_depth: u32, git: &HashMap<String, String>) -> Value {
    let mut w = Walk {
        git,
        max_depth,
        nodes: 0,
        truncated: false,
    };
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut node = w.dir(root, name, "", 0);
    if w.truncated
        && let Some(o) = node.as_object_mut()
    {
        o.insert("truncated".into(), json!(true));
    }
    node
}

impl Walk<'_> {
    fn dir(&mut self, abs: &Path, name: String, rel: &str, depth: u32) -> Value {
        let mut node = Map::new();
        node.insert("name".into(), json!(name));
        node.insert("path".into(), json!(rel));
        node.insert("type".into(), json!("directory"));
        if let Some(s) = self.git.get(rel) {
            node.insert("git_status".into(), json!(s));
        }
        let mut children = Vec::new();
        if depth + 1 < self.max_depth {
            let mut entries: Vec<_> = std::fs::read_dir(abs)
                .map(|r| r.flatten().collect())
                .unwrap_or_default();
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let child_name = e.file_name().to_string_lossy().into_owned();
                if excluded(&child_name) {
                    continue;
                }
                if self.nodes >= MAX_NODES {
                    self.truncated = true;
                    break;
                }
                self.nodes += 1;
                let child_rel = if rel.is_empty() {
                    child_name.clone()
                } else {
                    format!("{rel}/{child_name}")
                };
                let Ok(ft) = e.file_type() else { continue };
                if ft.is_dir() {
                    children.push(self.dir(&e.path(), child_name, &child_rel, depth + 1));
                } else {
                    children.push(self.file(&e.path(), child_name, &child_rel, ft.is_symlink()));
                }
            }
        }
        node.insert("children".into(), Value::Array(children));
        Value::Object(node)
    }

    fn file(&self, abs: &Path, name: String, rel: &str, symlink: bool) -> Value {
        let mut node = Map::new();
        node.insert("name".into(), json!(name));
        node.insert("path".into(), json!(rel));
        node.insert("type".into(), json!("file"));
        if let Some(s) = self.git.get(rel) {
            node.insert("git_status".into(), json!(s));
        }
        if let Ok(meta) = std::fs::symlink_metadata(abs) {
            if !symlink {
                node.insert("size".into(), json!(meta.len()));
            } else {
                node.insert("symlink".into(), json!(true));
            }
            node.insert("modified".into(), json!(epoch(&meta)));
        }
        node.insert("mime_type".into(), json!(mime_of(abs)));
        Value::Object(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusions() {
        for n in [
            "node_modules",
            ".git",
            "x.pyc",
            "pkg.egg-info",
            ".DS_Store",
            "build",
        ] {
            assert!(excluded(n), "{n}");
        }
        for n in ["src", "main.py", "builder", ".gitignore"] {
            assert!(!excluded(n), "{n}");
        }
        assert_eq!(mime_of(Path::new("a.md")), "text/markdown");
        assert_eq!(mime_of(Path::new("noext")), "application/octet-stream");
    }
}
