//! The `filesystem` skill: read, write, list, info, mkdir, delete, copy, move, search and tree,
//! all confined to the project root (see [`crate::root`]). Reading, writing and deleting are
//! [`crate::files`], shared with the workspace API. Directory walks never follow symlinks and
//! are bounded in entries; the `.git` directory is never written.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::parse;
use crate::context::CallContext;
use crate::definition::{Category, ToolDefinition};
use crate::error::ToolError;
use crate::files::{self, Content, WriteMode, not_in_git};
use crate::permission::Permission;
use crate::registry::{Registry, ToolOutput};
use crate::response::ConfirmationType;
use crate::root::ProjectRoot;

const SKILL: &str = "filesystem";
pub use crate::files::MAX_FILE_BYTES;
/// Most entries a list, tree, search or copy visits.
pub const MAX_ENTRIES: usize = 5000;
/// Files larger than this are skipped by search.
const MAX_SEARCH_FILE: u64 = 2 * 1024 * 1024;

fn def(name: &str, description: &str) -> ToolDefinition {
    ToolDefinition::new(name, SKILL, Category::Filesystem, description)
}

pub fn register(reg: &Registry) -> Result<(), ToolError> {
    let path = json!({"type": "string", "minLength": 1, "maxLength": 4096});
    reg.register(
        def("fs_read", "Read a text file of the project")
            .permissions(&[Permission::Read])
            .schema(json!({
                "type": "object",
                "properties": {
                    "path": path,
                    "max_bytes": {"type": "integer", "minimum": 1, "maximum": MAX_FILE_BYTES},
                },
                "required": ["path"],
                "additionalProperties": false,
            }))
            .output("{path, content, size, lines, truncated} or {path, binary: true, size}"),
        fs_read,
    )?;
    reg.register(
        def(
            "fs_write",
            "Write a text file of the project (creates parent folders)",
        )
        .permissions(&[Permission::Write])
        .schema(json!({
            "type": "object",
            "properties": {
                "path": path,
                "content": {"type": "string", "maxLength": MAX_FILE_BYTES},
                "mode": {"type": "string", "enum": ["overwrite", "append", "create"]},
                "create_dirs": {"type": "boolean"},
            },
            "required": ["path", "content"],
            "additionalProperties": false,
        }))
        .output("{path, size, created}"),
        fs_write,
    )?;
    reg.register(
        def("fs_list", "List a folder of the project")
            .permissions(&[Permission::Read])
            .schema(json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "maxLength": 4096},
                    "show_hidden": {"type": "boolean"},
                    "pattern": {"type": "string", "maxLength": 200},
                },
                "additionalProperties": false,
            }))
            .output("{path, entries[{name, path, type, size, modified}], total, truncated}"),
        fs_list,
    )?;
    reg.register(
        def(
            "fs_info",
            "Information about a file or folder of the project",
        )
        .permissions(&[Permission::Read])
        .schema(json!({
            "type": "object",
            "properties": {"path": {"type": "string", "maxLength": 4096}},
            "required": ["path"],
            "additionalProperties": false,
        }))
        .output("{path, type, size, modified, permissions, is_symlink}"),
        fs_info,
    )?;
    reg.register(
        def("fs_mkdir", "Create a folder in the project")
            .permissions(&[Permission::Write])
            .schema(json!({
                "type": "object",
                "properties": {"path": path, "parents": {"type": "boolean"}},
                "required": ["path"],
                "additionalProperties": false,
            }))
            .output("{path, created}"),
        fs_mkdir,
    )?;
    reg.register(
        def("fs_delete", "Delete a file or folder of the project")
            .permissions(&[Permission::Delete])
            .dangerous(ConfirmationType::Destructive)
            .schema(json!({
                "type": "object",
                "properties": {"path": path, "recursive": {"type": "boolean"}},
                "required": ["path"],
                "additionalProperties": false,
            }))
            .output("{path, deleted}"),
        fs_delete,
    )?;
    let two_paths = json!({
        "type": "object",
        "properties": {"source": path, "destination": path, "overwrite": {"type": "boolean"}},
        "required": ["source", "destination"],
        "additionalProperties": false,
    });
    reg.register(
        def("fs_copy", "Copy a file or folder inside the project")
            .permissions(&[Permission::Read, Permission::Write])
            .schema(two_paths.clone())
            .output("{source, destination, files}"),
        fs_copy,
    )?;
    reg.register(
        def(
            "fs_move",
            "Move or rename a file or folder inside the project",
        )
        .permissions(&[Permission::Write])
        .schema(two_paths)
        .output("{source, destination}"),
        fs_move,
    )?;
    reg.register(
        def("fs_search", "Search text in the project's files")
            .permissions(&[Permission::Read])
            .timeout(Duration::from_secs(60))
            .schema(json!({
                "type": "object",
                "properties": {
                    "query": {"type": "string", "minLength": 1, "maxLength": 1000},
                    "path": {"type": "string", "maxLength": 4096},
                    "regex": {"type": "boolean"},
                    "case_sensitive": {"type": "boolean"},
                    "file_pattern": {"type": "string", "maxLength": 200},
                    "max_results": {"type": "integer", "minimum": 1, "maximum": 1000},
                },
                "required": ["query"],
                "additionalProperties": false,
            }))
            .output("{matches[{path, line, text}], total, truncated}"),
        fs_search,
    )?;
    reg.register(
        def("fs_tree", "Folder tree of the project")
            .permissions(&[Permission::Read])
            .schema(json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "maxLength": 4096},
                    "max_depth": {"type": "integer", "minimum": 1, "maximum": 10},
                    "show_hidden": {"type": "boolean"},
                },
                "additionalProperties": false,
            }))
            .output("{tree{name, path, type, children?}, entries, truncated}"),
        fs_tree,
    )?;
    Ok(())
}

fn modified(meta: &std::fs::Metadata) -> Option<String> {
    meta.modified()
        .ok()
        .map(|t| DateTime::<Utc>::from(t).to_rfc3339())
}

fn kind(ft: &std::fs::FileType) -> &'static str {
    if ft.is_symlink() {
        "symlink"
    } else if ft.is_dir() {
        "directory"
    } else {
        "file"
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ToolError::Failed(format!("file operation failed: {e}")))?
}

#[derive(Deserialize)]
struct ReadInput {
    path: String,
    max_bytes: Option<usize>,
}

async fn fs_read(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: ReadInput = parse(input)?;
    let root = ctx.root()?;
    let f = files::read(root, &i.path, i.max_bytes.unwrap_or(MAX_FILE_BYTES))
        .await
        .map_err(|e| match e {
            ToolError::InvalidInput(_) => {
                ToolError::InvalidInput(format!("'{}' is a folder (use fs_list)", i.path))
            }
            other => other,
        })?;
    let (rel, size) = (f.rel, f.meta.len());
    match f.content {
        Content::Binary => Ok(ToolOutput::ok(
            format!("{rel} is a binary file"),
            json!({"path": rel, "binary": true, "size": size}),
        )),
        Content::Text { text, truncated } => Ok(ToolOutput::ok(
            format!("Read {rel} ({} bytes)", text.len()),
            json!({
                "path": rel,
                "lines": text.lines().count(),
                "content": text,
                "size": size,
                "truncated": truncated,
            }),
        )),
    }
}

#[derive(Deserialize)]
struct WriteInput {
    path: String,
    content: String,
    mode: Option<String>,
    create_dirs: Option<bool>,
}

async fn fs_write(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: WriteInput = parse(input)?;
    let mode = match i.mode.as_deref().unwrap_or("overwrite") {
        "append" => WriteMode::Append,
        "create" => WriteMode::Create,
        _ => WriteMode::Overwrite,
    };
    let w = files::write(
        ctx.root()?,
        &i.path,
        i.content.as_bytes(),
        mode,
        i.create_dirs.unwrap_or(true),
    )
    .await?;
    Ok(ToolOutput::ok(
        format!("Wrote {} bytes to {}", i.content.len(), w.rel),
        json!({"path": w.rel, "size": i.content.len(), "created": w.created}),
    ))
}

#[derive(Deserialize)]
struct ListInput {
    path: Option<String>,
    show_hidden: Option<bool>,
    pattern: Option<String>,
}

async fn fs_list(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: ListInput = parse(input)?;
    let root = ctx.root()?.clone();
    let path = i.path.unwrap_or_else(|| ".".into());
    let abs = root.resolve_existing(&path).await?;
    let show_hidden = i.show_hidden.unwrap_or(false);
    let pattern = i.pattern;
    let (entries, truncated) = blocking(move || {
        let mut out = Vec::new();
        let mut truncated = false;
        let reader = std::fs::read_dir(&abs).map_err(|e| ToolError::io(&path, e))?;
        for entry in reader.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !show_hidden && name.starts_with('.') {
                continue;
            }
            if let Some(p) = &pattern
                && !glob_match(p, &name)
            {
                continue;
            }
            if out.len() >= MAX_ENTRIES {
                truncated = true;
                break;
            }
            let Ok(meta) = entry.metadata() else { continue };
            let ft = meta.file_type();
            out.push(json!({
                "name": name,
                "path": root.relative(&entry.path()),
                "type": kind(&ft),
                "size": ft.is_file().then_some(meta.len()),
                "modified": modified(&meta),
            }));
        }
        out.sort_by(|a, b| {
            let d = |v: &Value| v["type"] != "directory";
            d(a).cmp(&d(b))
                .then_with(|| a["name"].as_str().cmp(&b["name"].as_str()))
        });
        Ok((out, truncated))
    })
    .await?;
    Ok(ToolOutput::ok(
        format!("{} entries", entries.len()),
        json!({"total": entries.len(), "entries": entries, "truncated": truncated}),
    ))
}

#[derive(Deserialize)]
struct PathInput {
    path: String,
}

async fn fs_info(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: PathInput = parse(input)?;
    let root = ctx.root()?;
    let abs = root.resolve_existing(&i.path).await?;
    let meta = tokio::fs::symlink_metadata(&abs)
        .await
        .map_err(|e| ToolError::io(&i.path, e))?;
    use std::os::unix::fs::PermissionsExt;
    let rel = root.relative(&abs);
    Ok(ToolOutput::ok(
        format!("{rel}: {}", kind(&meta.file_type())),
        json!({
            "path": rel,
            "name": abs.file_name().map(|n| n.to_string_lossy().into_owned()),
            "type": kind(&meta.file_type()),
            "size": meta.len(),
            "modified": modified(&meta),
            "permissions": format!("{:o}", meta.permissions().mode() & 0o7777),
            "is_symlink": meta.file_type().is_symlink(),
            "extension": abs.extension().map(|e| e.to_string_lossy().into_owned()),
        }),
    ))
}

#[derive(Deserialize)]
struct MkdirInput {
    path: String,
    parents: Option<bool>,
}

async fn fs_mkdir(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: MkdirInput = parse(input)?;
    let root = ctx.root()?;
    let abs = root.resolve(&i.path).await?;
    not_in_git(root, &abs, &i.path)?;
    let existed = abs.is_dir();
    let r = if i.parents.unwrap_or(true) {
        tokio::fs::create_dir_all(&abs).await
    } else {
        tokio::fs::create_dir(&abs).await
    };
    r.map_err(|e| ToolError::io(&i.path, e))?;
    let rel = root.relative(&abs);
    Ok(ToolOutput::ok(
        format!("Created {rel}"),
        json!({"path": rel, "created": !existed}),
    ))
}

#[derive(Deserialize)]
struct DeleteInput {
    path: String,
    recursive: Option<bool>,
}

async fn fs_delete(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: DeleteInput = parse(input)?;
    let rel = files::delete(ctx.root()?, &i.path, i.recursive.unwrap_or(false)).await?;
    Ok(ToolOutput::ok(
        format!("Deleted {rel}"),
        json!({"path": rel, "deleted": true}),
    ))
}

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

async fn fs_copy(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
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

async fn fs_move(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
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

async fn fs_search(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
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

async fn fs_tree(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
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
