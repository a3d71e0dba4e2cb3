//! The `filesystem` skill: read, write, list, info, mkdir, delete, copy, move, search and tree,
//! all confined to the project root (see [`crate::root`]). Reading, writing and deleting are
//! [`crate::files`], shared with the workspace API. Directory walks never follow symlinks and
//! are bounded in entries; the `.git` directory is never written.
//!
//! `mod.rs` registers the tools and holds the single-path ones; `walk.rs` the ones that walk a
//! tree (copy, move, search, tree).

mod walk;

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

pub(crate) use walk::SKIP_DIRS;
pub use walk::glob_match;
use walk::{fs_copy, fs_move, fs_search, fs_tree};

pub(super) const SKILL: &str = "filesystem";
pub use crate::files::MAX_FILE_BYTES;
/// Most entries a list, tree, search or copy visits.
pub const MAX_ENTRIES: usize = 5000;
/// Files larger than this are skipped by search.
pub(super) const MAX_SEARCH_FILE: u64 = 2 * 1024 * 1024;

fn def(name: &str, description: &str) -> ToolDefinition {
    ToolDefinition::new(name, SKILL, Category::Filesystem, description)
}

pub fn register(reg: &Registry) -> Result<(), ToolError> {
    register_fs_read(reg)?;
    register_fs_write(reg)?;
    register_fs_list(reg)?;
    register_fs_info(reg)?;
    register_fs_mkdir(reg)?;
    register_fs_delete(reg)?;
    register_fs_copy(reg)?;
    register_fs_move(reg)?;
    register_fs_search(reg)?;
    register_fs_tree(reg)?;
    Ok(())
}

fn path_schema() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 4096})
}
fn two_paths_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"source": path_schema(), "destination": path_schema(), "overwrite": {"type": "boolean"}},
        "required": ["source", "destination"],
        "additionalProperties": false,
    })
}

fn register_fs_read(reg: &Registry) -> Result<(), ToolError> {
    reg.register(
        def("fs_read", "Read a text file of the project")
            .permissions(&[Permission::Read])
            .schema(json!({
                "type": "object",
                "properties": {
                    "path": path_schema(),
                    "max_bytes": {"type": "integer", "minimum": 1, "maximum": MAX_FILE_BYTES},
                },
                "required": ["path"],
                "additionalProperties": false,
            }))
            .output("{path, content, size, lines, truncated} or {path, binary: true, size}"),
        fs_read,
    )
}

fn register_fs_write(reg: &Registry) -> Result<(), ToolError> {
    reg.register(
        def(
            "fs_write",
            "Write a text file of the project (creates parent folders)",
        )
        .permissions(&[Permission::Write])
        .schema(json!({
            "type": "object",
            "properties": {
                "path": path_schema(),
                "content": {"type": "string", "maxLength": MAX_FILE_BYTES},
                "mode": {"type": "string", "enum": ["overwrite", "append", "create"]},
                "create_dirs": {"type": "boolean"},
            },
            "required": ["path", "content"],
            "additionalProperties": false,
        }))
        .output("{path, size, created}"),
        fs_write,
    )
}

fn register_fs_list(reg: &Registry) -> Result<(), ToolError> {
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
    )
}

fn register_fs_info(reg: &Registry) -> Result<(), ToolError> {
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
    )
}

fn register_fs_mkdir(reg: &Registry) -> Result<(), ToolError> {
    reg.register(
        def("fs_mkdir", "Create a folder in the project")
            .permissions(&[Permission::Write])
            .schema(json!({
                "type": "object",
                "properties": {"path": path_schema(), "parents": {"type": "boolean"}},
                "required": ["path"],
                "additionalProperties": false,
            }))
            .output("{path, created}"),
        fs_mkdir,
    )
}

fn register_fs_delete(reg: &Registry) -> Result<(), ToolError> {
    reg.register(
        def("fs_delete", "Delete a file or folder of the project")
            .permissions(&[Permission::Delete])
            .dangerous(ConfirmationType::Destructive)
            .schema(json!({
                "type": "object",
                "properties": {"path": path_schema(), "recursive": {"type": "boolean"}},
                "required": ["path"],
                "additionalProperties": false,
            }))
            .output("{path, deleted}"),
        fs_delete,
    )
}

fn register_fs_copy(reg: &Registry) -> Result<(), ToolError> {
    reg.register(
        def("fs_copy", "Copy a file or folder inside the project")
            .permissions(&[Permission::Read, Permission::Write])
            .schema(two_paths_schema().clone())
            .output("{source, destination, files}"),
        fs_copy,
    )
}

fn register_fs_move(reg: &Registry) -> Result<(), ToolError> {
    reg.register(
        def(
            "fs_move",
            "Move or rename a file or folder inside the project",
        )
        .permissions(&[Permission::Write])
        .schema(two_paths_schema())
        .output("{source, destination}"),
        fs_move,
    )
}

fn register_fs_search(reg: &Registry) -> Result<(), ToolError> {
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
    )
}

fn register_fs_tree(reg: &Registry) -> Result<(), ToolError> {
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
    )
}

pub(super) fn modified(meta: &std::fs::Metadata) -> Option<String> {
    meta.modified()
        .ok()
        .map(|t| DateTime::<Utc>::from(t).to_rfc3339())
}

pub(super) fn kind(ft: &std::fs::FileType) -> &'static str {
    if ft.is_symlink() {
        "symlink"
    } else if ft.is_dir() {
        "directory"
    } else {
        "file"
    }
}

pub(super) async fn blocking<T: Send + 'static>(
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
