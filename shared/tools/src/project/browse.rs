//! The folder browser of `GET /projects/browse/folders` (contract §2.13): lists one folder so
//! a user can pick a project path. The edge lists only inside the project roots
//! ([`browse_within`]); system folders (/proc, /sys, /dev, /boot, /root) are refused anywhere,
//! as is any folder the service cannot read. Blocking: call it on a blocking thread.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::ProjectError;
use super::detect::is_project;

/// Folders never listed.
pub const FORBIDDEN: &[&str] = &["/proc", "/sys", "/dev", "/boot", "/root"];

/// Most entries listed for one folder.
pub const MAX_ENTRIES: usize = 2000;

#[derive(Debug, Clone, Serialize)]
pub struct FolderEntry {
    pub name: String,
    pub path: String,
    pub is_dir: bool,
    pub is_project: bool,
    pub size: Option<u64>,
    pub modified: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FolderListing {
    pub current_path: String,
    pub parent_path: Option<String>,
    pub entries: Vec<FolderEntry>,
    pub can_create_project: bool,
}

/// True when `path` (canonical) is one of the refused system folders or inside one.
pub fn is_forbidden(path: &Path) -> bool {
    FORBIDDEN.iter().any(|f| path.starts_with(f))
}

/// Lists `path` like [`browse`], refusing anything outside `roots` (canonical); the parent of
/// a root is not offered.
pub fn browse_within(
    path: Option<&str>,
    show_hidden: bool,
    default: &Path,
    roots: &[PathBuf],
) -> Result<FolderListing, ProjectError> {
    let mut listing = browse_checked(path, show_hidden, default, Some(roots))?;
    if roots.iter().any(|r| Path::new(&listing.current_path) == r) {
        listing.parent_path = None;
    }
    Ok(listing)
}

/// Lists `path` (absolute, `~` for the home folder), or `default` when none is given.
pub fn browse(
    path: Option<&str>,
    show_hidden: bool,
    default: &Path,
) -> Result<FolderListing, ProjectError> {
    browse_checked(path, show_hidden, default, None)
}

fn browse_checked(
    path: Option<&str>,
    show_hidden: bool,
    default: &Path,
    roots: Option<&[PathBuf]>,
) -> Result<FolderListing, ProjectError> {
    let requested: PathBuf = match path.map(str::trim).filter(|p| !p.is_empty()) {
        None => default.to_path_buf(),
        Some(p) if p.contains('\0') => {
            return Err(ProjectError::Invalid("Path contains a NUL byte".into()));
        }
        Some(p) if p == "~" || p.starts_with("~/") => {
            let home = std::env::var("HOME").unwrap_or_else(|_| "/".into());
            Path::new(&home).join(p.trim_start_matches('~').trim_start_matches('/'))
        }
        Some(p) if !Path::new(p).is_absolute() => {
            return Err(ProjectError::Invalid(format!("Path must be absolute: {p}")));
        }
        Some(p) => PathBuf::from(p),
    };
    if is_forbidden(&requested) {
        return Err(ProjectError::Forbidden(format!(
            "Access denied: {}",
            requested.display()
        )));
    }
    let current = std::fs::canonicalize(&requested).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => {
            ProjectError::Forbidden(format!("Permission denied: {}", requested.display()))
        }
        _ => ProjectError::Invalid(format!("Path does not exist: {}", requested.display())),
    })?;
    if is_forbidden(&current) {
        return Err(ProjectError::Forbidden(format!(
            "Access denied: {}",
            current.display()
        )));
    }
    if let Some(roots) = roots
        && !roots.iter().any(|r| current.starts_with(r))
    {
        return Err(ProjectError::Forbidden(format!(
            "{} is outside the project roots",
            current.display()
        )));
    }
    if !current.is_dir() {
        return Err(ProjectError::Invalid(format!(
            "Not a directory: {}",
            current.display()
        )));
    }
    let reader = std::fs::read_dir(&current).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => {
            ProjectError::Forbidden(format!("Permission denied: {}", current.display()))
        }
        _ => ProjectError::Invalid(format!("Cannot read {}: {e}", current.display())),
    })?;
    let mut entries = Vec::new();
    for entry in reader.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !show_hidden && name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        // Follow symlinks for the kind, as a file manager shows them.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let is_dir = meta.is_dir();
        entries.push(FolderEntry {
            is_project: is_dir && !is_forbidden(&path) && is_project(&path),
            path: path.to_string_lossy().into_owned(),
            name,
            is_dir,
            size: (!is_dir).then_some(meta.len()),
            modified: meta
                .modified()
                .ok()
                .map(|t| DateTime::<Utc>::from(t).to_rfc3339()),
        });
        if entries.len() >= MAX_ENTRIES {
            break;
        }
    }
    entries.sort_by(|a, b| {
        b.is_dir
            .cmp(&a.is_dir)
            .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
    });
    Ok(FolderListing {
        can_create_project: is_project(&current),
        parent_path: current.parent().map(|p| p.to_string_lossy().into_owned()),
        current_path: current.to_string_lossy().into_owned(),
        entries,
    })
}
