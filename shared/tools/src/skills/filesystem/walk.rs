//! The filesystem tools that walk a tree: copy, move, search and tree. Walks never follow
//! symlinks, skip dependency and build folders when searching, and stop at a bounded number of
//! entries.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};

use super::parse;
use crate::context::CallContext;
use crate::error::ToolError;
use crate::files::not_in_git;
use crate::registry::ToolOutput;
use crate::root::ProjectRoot;

use super::{MAX_ENTRIES, MAX_SEARCH_FILE, blocking, kind};

#[derive(Deserialize)]
struct TwoPaths {
    source: String,
    destination: String,
    overwrite: Option<bool>,
}

async fn two_paths(
    ctx: &CallContext,
    i: &TwoPaths,
) -> Result<(ProjectRoot, PathBuf, PathBuf), ToolError> {
    let root = ctx.root()?.clone();
    let src = root.resolve_existing(&i.source).await?;
    let dst = root.resolve(&i.destination).await?;
    not_in_git(&root, &dst, &i.destination)?;
    if src == root.path() {
        return Err(ToolError::InvalidInput(
            "the project root cannot be copied or moved".into(),
        ));
    }
    if dst.starts_with(&src) {
        return Err(ToolError::InvalidInput(
            "the destination is inside the source".into(),
        ));
    }
    if !i.overwrite.unwrap_or(false) && tokio::fs::symlink_metadata(&dst).await.is_ok() {
        return Err(ToolError::InvalidInput(format!(
            "'{}' already exists (pass overwrite = true)",
            i.destination
        )));
    }
    Ok((root, src, dst))
}

pub(super) async fn fs_copy(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: TwoPaths = parse(input)?;
    let (root, src, dst) = two_paths(&ctx, &i).await?;
    let (s, d) = (src.clone(), dst.clone());
    let files = blocking(move || copy_tree(&s, &d)).await?;
    Ok(ToolOutput::ok(
        format!("Copied {} file(s)", files),
        json!({"source": root.relative(&src), "destination": root.relative(&dst), "files": files}),
    ))
}

/// Copies a file or a folder; symlinks inside are not followed (they are skipped, since a
/// copied link could point outside the root).
fn copy_tree(src: &Path, dst: &Path) -> Result<usize, ToolError> {
    let meta = std::fs::symlink_metadata(src).map_err(|e| ToolError::io("source", e))?;
    if meta.is_file() {
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ToolError::io("destination", e))?;
        }
        std::fs::copy(src, dst).map_err(|e| ToolError::io("copy", e))?;
        return Ok(1);
    }
    let mut count = 0usize;
    let mut stack = vec![(src.to_path_buf(), dst.to_path_buf())];
    while let Some((from, to)) = stack.pop() {
        std::fs::create_dir_all(&to).map_err(|e| ToolError::io("destination", e))?;
        for entry in std::fs::read_dir(&from)
            .map_err(|e| ToolError::io("source", e))?
            .flatten()
        {
            let Ok(ft) = entry.file_type() else { continue };
            let target = to.join(entry.file_name());
            if ft.is_dir() {
                stack.push((entry.path(), target));
            } else if ft.is_file() {
                count += 1;
                if count > MAX_ENTRIES {
                    return Err(ToolError::TooLarge(format!(
                        "more than {MAX_ENTRIES} files to copy"
                    )));
                }
                std::fs::copy(entry.path(), &target).map_err(|e| ToolError::io("copy", e))?;
            }
        }
    }
    Ok(count)
}

pub(super) async fn fs_move(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: TwoPaths = parse(input)?;
    let (root, src, dst) = two_paths(&ctx, &i).await?;
    not_in_git(&root, &src, &i.source)?;
    if let Some(parent) = dst.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| ToolError::io(&i.destination, e))?;
    }
    tokio::fs::rename(&src, &dst)
        .await
        .map_err(|e| ToolError::io(&i.source, e))?;
    Ok(ToolOutput::ok(
        format!("Moved {} to {}", root.relative(&src), root.relative(&dst)),
        json!({"source": root.relative(&src), "destination": root.relative(&dst)}),
    ))
}

#[derive(Deserialize)]
struct SearchInput {
    query: String,
    path: Option<String>,
    regex: Option<bool>,
    case_sensitive: Option<bool>,
    file_pattern: Option<String>,
    max_results: Option<usize>,
}

/// Folders a search or tree never enters.
pub(crate) const SKIP_DIRS: &[&str] = &[
    ".git",
    "node_modules",
    "target",
    "__pycache__",
    ".venv",
    "venv",
    "dist",
    "build",
];

pub(super) async fn fs_search(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: SearchInput = parse(input)?;
    let root = ctx.root()?.clone();
    let start = i.path.clone().unwrap_or_else(|| ".".into());
    let abs = root.resolve_existing(&start).await?;
    let pattern = if i.regex.unwrap_or(false) {
        i.query.clone()
    } else {
        regex::escape(&i.query)
    };
    let re = regex::RegexBuilder::new(&pattern)
        .case_insensitive(!i.case_sensitive.unwrap_or(false))
        .size_limit(1 << 20)
        .build()
        .map_err(|e| ToolError::InvalidInput(format!("invalid regex: {e}")))?;
    let max = i.max_results.unwrap_or(100);
    let file_pattern = i.file_pattern.clone();
    let cancel = ctx.cancel.clone();
    let (matches, truncated) = blocking(move || {
        let mut matches = Vec::new();
        let mut visited = 0usize;
        let mut stack = vec![abs];
        while let Some(dir) = stack.pop() {
            if cancel.is_cancelled() {
                break;
            }
            let entries: Vec<_> = match std::fs::read_dir(&dir) {
                Ok(r) => r.flatten().collect(),
                Err(_) if dir.is_file() => vec![],
                Err(_) => continue,
            };
            let files: Vec<PathBuf> = if dir.is_file() {
                vec![dir.clone()]
            } else {
                let mut files = Vec::new();
                for e in entries {
                    let Ok(ft) = e.file_type() else { continue };
                    let name = e.file_name().to_string_lossy().into_owned();
                    if ft.is_dir() && !SKIP_DIRS.contains(&name.as_str()) {
                        stack.push(e.path());
                    } else if ft.is_file()
                        && file_pattern.as_deref().is_none_or(|p| glob_match(p, &name))
                    {
                        files.push(e.path());
                    }
                }
                files
            };
            for f in files {
                visited += 1;
                if visited > MAX_ENTRIES * 4 {
                    return Ok((matches, true));
                }
                let Ok(meta) = std::fs::metadata(&f) else {
                    continue;
                };
                if meta.len() > MAX_SEARCH_FILE {
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(&f) else {
                    continue;
                };
                for (n, line) in text.lines().enumerate() {
                    if re.is_match(line) {
                        if matches.len() >= max {
                            return Ok((matches, true));
                        }
                        let text: String = line.chars().take(500).collect();
                        matches
                            .push(json!({"path": root.relative(&f), "line": n + 1, "text": text}));
                    }
                }
            }
        }
        Ok((matches, false))
    })
    .await?;
    Ok(ToolOutput::ok(
        format!("{} match(es)", matches.len()),
        json!({"total": matches.len(), "matches": matches, "truncated": truncated}),
    ))
}

#[derive(Deserialize)]
struct TreeInput {
    path: Option<String>,
    max_depth: Option<usize>,
    show_hidden: Option<bool>,
}

pub(super) async fn fs_tree(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: TreeInput = parse(input)?;
    let root = ctx.root()?.clone();
    let start = i.path.unwrap_or_else(|| ".".into());
    let abs = root.resolve_existing(&start).await?;
    let depth = i.max_depth.unwrap_or(3);
    let hidden = i.show_hidden.unwrap_or(false);
    let (tree, count, truncated) = blocking(move || {
        let mut count = 0usize;
        let mut truncated = false;
        let tree = tree_node(&root, &abs, depth, hidden, &mut count, &mut truncated);
        Ok((tree, count, truncated))
    })
    .await?;
    Ok(ToolOutput::ok(
        format!("{count} entries"),
        json!({"tree": tree, "entries": count, "truncated": truncated}),
    ))
}

fn tree_node(
    root: &ProjectRoot,
    path: &Path,
    depth: usize,
    hidden: bool,
    count: &mut usize,
    truncated: &mut bool,
) -> Value {
    let name = if path == root.path() {
        ".".to_owned()
    } else {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return json!({"name": name, "path": root.relative(path), "type": "unknown"});
    };
    if !meta.is_dir() {
        return json!({"name": name, "path": root.relative(path), "type": kind(&meta.file_type()), "size": meta.len()});
    }
    let mut children = Vec::new();
    if depth > 0 {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .map(|r| r.flatten().collect())
            .unwrap_or_default();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let n = e.file_name().to_string_lossy().into_owned();
            if (!hidden && n.starts_with('.')) || SKIP_DIRS.contains(&n.as_str()) {
                continue;
            }
            *count += 1;
            if *count > MAX_ENTRIES {
                *truncated = true;
                break;
            }
            children.push(tree_node(
                root,
                &e.path(),
                depth - 1,
                hidden,
                count,
                truncated,
            ));
        }
    }
    json!({"name": name, "path": root.relative(path), "type": "directory", "children": children})
}

/// `*` and `?` wildcards over a file name.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("*.rs", "main.rs"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("*.rs", "main.py"));
        assert!(glob_match("*", ""));
    }
}
