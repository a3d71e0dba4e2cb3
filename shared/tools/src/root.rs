//! A project's root directory and the confinement of every path a tool is given to it.
//!
//! A path is refused when it holds a NUL byte, is absolute, has a `..` component (also after
//! percent-decoding, twice, so `%2e%2e` and `%252e%252e` are caught), or resolves, through any
//! symlink, to a place outside the canonical root. Paths that do not exist yet (write, mkdir)
//! are checked through their deepest existing ancestor, and a dangling symlink on the way is
//! refused because it could later point anywhere.

use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use percent_encoding::percent_decode_str;

use crate::error::ToolError;

/// Longest path accepted from input.
pub const MAX_PATH_LEN: usize = 4096;

#[derive(Debug, Clone)]
pub struct ProjectRoot {
    root: Arc<PathBuf>,
    id: Option<i64>,
}

impl ProjectRoot {
    /// Canonicalises `path`, which must be an existing directory.
    pub fn new(path: impl AsRef<Path>) -> Result<ProjectRoot, ToolError> {
        let path = path.as_ref();
        let root = std::fs::canonicalize(path)
            .map_err(|e| ToolError::io(&format!("project root {}", path.display()), e))?;
        if !root.is_dir() {
            return Err(ToolError::InvalidInput(format!(
                "project root {} is not a directory",
                root.display()
            )));
        }
        Ok(ProjectRoot {
            root: Arc::new(root),
            id: None,
        })
    }

    pub fn with_id(mut self, id: i64) -> Self {
        self.id = Some(id);
        self
    }

    pub fn id(&self) -> Option<i64> {
        self.id
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `abs` relative to the root, `.` for the root itself.
    pub fn relative(&self, abs: &Path) -> String {
        match abs.strip_prefix(self.root.as_path()) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".into(),
            Ok(rel) => rel.to_string_lossy().into_owned(),
            Err(_) => abs.to_string_lossy().into_owned(),
        }
    }

    /// Resolves `input` inside the root; the target may not exist yet.
    pub async fn resolve(&self, input: &str) -> Result<PathBuf, ToolError> {
        let this = self.clone();
        let input = input.to_owned();
        tokio::task::spawn_blocking(move || this.resolve_sync(&input))
            .await
            .map_err(|e| ToolError::Failed(format!("path check failed: {e}")))?
    }

    /// Resolves `input` inside the root; the target must exist.
    pub async fn resolve_existing(&self, input: &str) -> Result<PathBuf, ToolError> {
        let path = self.resolve(input).await?;
        match tokio::fs::symlink_metadata(&path).await {
            Ok(_) => Ok(path),
            Err(e) => Err(ToolError::io(input, e)),
        }
    }

    /// The blocking check behind [`resolve`](Self::resolve).
    pub fn resolve_sync(&self, input: &str) -> Result<PathBuf, ToolError> {
        let rel = check_lexically(input)?;
        let joined = self.root.join(&rel);
        // Find the deepest entry that exists (as anything, a symlink included).
        let mut existing = joined.as_path();
        let mut rest: Vec<&OsStr> = Vec::new();
        loop {
            match std::fs::symlink_metadata(existing) {
                Ok(_) => break,
                // ENOTDIR: a file on the way; its own resolution decides.
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotFound
                        || e.raw_os_error() == Some(nix::libc::ENOTDIR) =>
                {
                    let (Some(parent), Some(name)) = (existing.parent(), existing.file_name())
                    else {
                        return Err(ToolError::Refused(format!(
                            "path '{input}' cannot be resolved"
                        )));
                    };
                    rest.push(name);
                    existing = parent;
                }
                Err(e) => return Err(ToolError::io(input, e)),
            }
        }
        let canonical = std::fs::canonicalize(existing).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                ToolError::Refused(format!("path '{input}' goes through a dangling symlink"))
            }
            _ => ToolError::io(input, e),
        })?;
        if !canonical.starts_with(self.root.as_path()) {
            return Err(ToolError::Refused(format!(
                "path '{input}' escapes the project root (through a symlink)"
            )));
        }
        let mut out = canonical;
        for name in rest.iter().rev() {
            out.push(name);
        }
        Ok(out)
    }

    /// True when `abs` (already absolute and normalised) is inside the root.
    pub fn contains(&self, abs: &Path) -> bool {
        abs.starts_with(self.root.as_path())
    }
}

/// The checks that need no file system: NUL bytes, absolute paths, `..` (raw and
/// percent-decoded). Returns the relative path to join to the root.
pub fn check_lexically(input: &str) -> Result<PathBuf, ToolError> {
    if input.len() > MAX_PATH_LEN {
        return Err(ToolError::TooLarge(format!(
            "path is longer than {MAX_PATH_LEN} bytes"
        )));
    }
    if input.contains('\0') {
        return Err(ToolError::Refused("path contains a NUL byte".into()));
    }
    let mut forms = vec![input.to_owned()];
    let mut current = input.to_owned();
    for _ in 0..3 {
        if !current.contains('%') {
            break;
        }
        let decoded = percent_decode_str(&current)
            .decode_utf8_lossy()
            .into_owned();
        if decoded == current {
            break;
        }
        if decoded.contains('\0') {
            return Err(ToolError::Refused(
                "path contains an encoded NUL byte".into(),
            ));
        }
        forms.push(decoded.clone());
        current = decoded;
    }
    for form in &forms {
        let p = Path::new(form);
        if p.is_absolute() || form.starts_with('\\') {
            return Err(ToolError::Refused(format!(
                "absolute path '{input}' refused: give a path relative to the project root"
            )));
        }
        let escapes = p.components().any(|c| matches!(c, Component::ParentDir))
            || form.split(['/', '\\']).any(|seg| seg == "..");
        if escapes {
            return Err(ToolError::Refused(format!(
                "path '{input}' escapes the project root ('..' is not allowed)"
            )));
        }
    }
    Ok(Path::new(input)
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect())
}

/// True when `rel` (relative to the root) is inside the repository's `.git` directory, which
/// tools never write to (hooks there would run code on the next commit).
pub fn inside_git_dir(root: &ProjectRoot, abs: &Path) -> bool {
    abs.strip_prefix(root.path())
        .ok()
        .and_then(|rel| rel.components().next())
        .is_some_and(|c| c.as_os_str() == ".git")
}
