//! Reading, writing and deleting a project's files: the one implementation behind the
//! `filesystem` skill (agents) and the workspace API (dashboard), so both confine paths the same
//! way ([`ProjectRoot::resolve`]: no NUL, no absolute path, no `..` raw or percent-encoded,
//! no symlink escape), never write through a symlink (`O_NOFOLLOW`), never write or delete
//! inside `.git`, and bound sizes.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::ToolError;
use crate::root::{ProjectRoot, inside_git_dir};

/// Largest file read or written at once.
pub const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;

/// What a file holds.
#[derive(Debug, Clone)]
pub enum Content {
    /// UTF-8 text, cut at the limit asked for when `truncated`.
    Text { text: String, truncated: bool },
    /// A NUL byte in its first 8 KiB, or not UTF-8.
    Binary,
}

#[derive(Debug, Clone)]
pub struct ReadFile {
    pub abs: PathBuf,
    /// Relative to the root.
    pub rel: String,
    pub meta: std::fs::Metadata,
    pub content: Content,
}

/// Refuses writes and deletes inside `.git` (hooks there would run code on the next commit).
pub fn not_in_git(root: &ProjectRoot, abs: &Path, input: &str) -> Result<(), ToolError> {
    if inside_git_dir(root, abs) {
        return Err(ToolError::Refused(format!(
            "'{input}' is inside .git, which tools do not modify (use the git skill)"
        )));
    }
    Ok(())
}

/// Reads a file (not a folder) of the project, at most `limit` bytes.
pub async fn read(root: &ProjectRoot, input: &str, limit: usize) -> Result<ReadFile, ToolError> {
    let abs = root.resolve_existing(input).await?;
    let meta = tokio::fs::metadata(&abs)
        .await
        .map_err(|e| ToolError::io(input, e))?;
    if meta.is_dir() {
        return Err(ToolError::InvalidInput(format!("'{input}' is a folder")));
    }
    let limit = limit.min(MAX_FILE_BYTES);
    let file = tokio::fs::File::open(&abs)
        .await
        .map_err(|e| ToolError::io(input, e))?;
    let mut buf = Vec::with_capacity((meta.len() as usize).min(limit));
    file.take(limit as u64)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| ToolError::io(input, e))?;
    let truncated = meta.len() > buf.len() as u64;
    let rel = root.relative(&abs);
    let content = if buf.iter().take(8192).any(|b| *b == 0) {
        Content::Binary
    } else {
        match String::from_utf8(buf) {
            Ok(text) => Content::Text { text, truncated },
            // A cut in the middle of a UTF-8 sequence is not a binary file.
            Err(e) if truncated && e.utf8_error().error_len().is_none() => {
                let valid = e.utf8_error().valid_up_to();
                let mut bytes = e.into_bytes();
                bytes.truncate(valid);
                Content::Text {
                    text: String::from_utf8(bytes).unwrap_or_default(),
                    truncated,
                }
            }
            Err(_) => Content::Binary,
        }
    };
    Ok(ReadFile {
        abs,
        rel,
        meta,
        content,
    })
}

/// Reads a whole file as bytes (for raw downloads), at most [`MAX_FILE_BYTES`].
pub async fn read_bytes(root: &ProjectRoot, input: &str) -> Result<(PathBuf, Vec<u8>), ToolError> {
    let abs = root.resolve_existing(input).await?;
    let meta = tokio::fs::metadata(&abs)
        .await
        .map_err(|e| ToolError::io(input, e))?;
    if meta.is_dir() {
        return Err(ToolError::InvalidInput(format!("'{input}' is a folder")));
    }
    if meta.len() > MAX_FILE_BYTES as u64 {
        return Err(ToolError::TooLarge(format!(
            "'{input}' is larger than {MAX_FILE_BYTES} bytes"
        )));
    }
    let bytes = tokio::fs::read(&abs)
        .await
        .map_err(|e| ToolError::io(input, e))?;
    Ok((abs, bytes))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    Overwrite,
    Append,
    /// Fails when the file exists.
    Create,
}

#[derive(Debug, Clone)]
pub struct Written {
    pub abs: PathBuf,
    pub rel: String,
    pub created: bool,
}

/// Writes a file of the project, creating its parent folders when `create_dirs`.
pub async fn write(
    root: &ProjectRoot,
    input: &str,
    content: &[u8],
    mode: WriteMode,
    create_dirs: bool,
) -> Result<Written, ToolError> {
    if content.len() > MAX_FILE_BYTES {
        return Err(ToolError::TooLarge(format!(
            "content is larger than {MAX_FILE_BYTES} bytes"
        )));
    }
    let abs = root.resolve(input).await?;
    not_in_git(root, &abs, input)?;
    if abs == root.path() {
        return Err(ToolError::InvalidInput(
            "cannot write to the project root itself".into(),
        ));
    }
    if let Some(parent) = abs.parent()
        && create_dirs
    {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| ToolError::io(input, e))?;
        // The folders just created are plain folders under a checked ancestor; check the
        // final path again in case something raced us.
        root.resolve(input).await?;
    }
    let existing = tokio::fs::symlink_metadata(&abs).await.ok();
    if existing.as_ref().is_some_and(|m| m.is_dir()) {
        return Err(ToolError::InvalidInput(format!("'{input}' is a folder")));
    }
    let existed = existing.is_some();
    let mut opts = tokio::fs::OpenOptions::new();
    opts.write(true).custom_flags(nix::libc::O_NOFOLLOW);
    match mode {
        WriteMode::Append => opts.append(true).create(true),
        WriteMode::Create => opts.create_new(true),
        WriteMode::Overwrite => opts.create(true).truncate(true),
    };
    let mut file = opts.open(&abs).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            ToolError::InvalidInput(format!("'{input}' already exists (mode create)"))
        }
        _ if e.raw_os_error() == Some(nix::libc::ELOOP) => ToolError::Refused(format!(
            "'{input}' is a symlink; tools do not write through symlinks"
        )),
        _ => ToolError::io(input, e),
    })?;
    file.write_all(content)
        .await
        .map_err(|e| ToolError::io(input, e))?;
    file.flush().await.map_err(|e| ToolError::io(input, e))?;
    Ok(Written {
        rel: root.relative(&abs),
        abs,
        created: !existed,
    })
}

/// Copies an existing regular file next to itself as `<name>.<unix time>.bak` (never through a
/// symlink); returns the backup's path relative to the root, or `None` when there is no file.
pub async fn backup(root: &ProjectRoot, input: &str) -> Result<Option<String>, ToolError> {
    let abs = root.resolve(input).await?;
    let Ok(meta) = tokio::fs::symlink_metadata(&abs).await else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Ok(None);
    }
    let name = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut target = abs.with_file_name(format!("{name}.{}.bak", chrono::Utc::now().timestamp()));
    let mut n = 1;
    while tokio::fs::symlink_metadata(&target).await.is_ok() {
        target = abs.with_file_name(format!("{name}.{}.{n}.bak", chrono::Utc::now().timestamp()));
        n += 1;
    }
    tokio::fs::copy(&abs, &target)
        .await
        .map_err(|e| ToolError::io(input, e))?;
    Ok(Some(root.relative(&target)))
}

/// Deletes a file or (with `recursive`, or when empty) a folder; never the root or `.git`.
pub async fn delete(root: &ProjectRoot, input: &str, recursive: bool) -> Result<String, ToolError> {
    let abs = root.resolve_existing(input).await?;
    if abs == root.path() {
        return Err(ToolError::Refused(
            "the project root itself cannot be deleted".into(),
        ));
    }
    not_in_git(root, &abs, input)?;
    let meta = tokio::fs::symlink_metadata(&abs)
        .await
        .map_err(|e| ToolError::io(input, e))?;
    if meta.is_dir() {
        if recursive {
            tokio::fs::remove_dir_all(&abs).await
        } else {
            tokio::fs::remove_dir(&abs).await.map_err(|e| {
                if e.raw_os_error() == Some(nix::libc::ENOTEMPTY) {
                    std::io::Error::other("folder is not empty (pass recursive = true)")
                } else {
                    e
                }
            })
        }
    } else {
        tokio::fs::remove_file(&abs).await
    }
    .map_err(|e| ToolError::io(input, e))?;
    Ok(root.relative(&abs))
}
