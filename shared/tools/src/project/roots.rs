//! Project roots: the folders of the server that projects may live in.
//!
//! A project's folder is what the file, git, shell and code tools (and the workspace) are
//! confined to, so letting any user register `/usr/share` or `/home/someone` as a project would
//! hand them that folder. Every project path, canonicalised, must lie under one of the roots:
//! checked when a project is created or refreshed, and again whenever a project's folder is
//! used (a project registered before the roots changed is refused, not silently served). The
//! folder browser lists only inside the roots.
//!
//! `GATHERING_PROJECT_ROOTS` (colon-separated absolute paths) sets them; default
//! `WORKSPACE_ROOT`, else `projects/` in the data directory (`GATHERING_DATA_DIR`, default
//! `.data` under the working directory).

use std::path::{Path, PathBuf};

use gathering_core::ConfigError;
use gathering_core::config::Vars;

use super::ProjectError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRoots {
    roots: Vec<PathBuf>,
}

impl ProjectRoots {
    pub fn new(roots: Vec<PathBuf>) -> Self {
        Self { roots }
    }

    pub fn from_vars(vars: &impl Vars) -> Result<Self, ConfigError> {
        const VAR: &str = "GATHERING_PROJECT_ROOTS";
        let configured: Vec<PathBuf> = match vars.get(VAR) {
            Some(raw) => raw
                .split(':')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .collect(),
            None => match vars.get("WORKSPACE_ROOT") {
                Some(w) => vec![PathBuf::from(w)],
                None => vec![gathering_core::config::data_dir(vars).join("projects")],
            },
        };
        if configured.is_empty() {
            return Err(ConfigError::new(VAR, "names no folder"));
        }
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let roots = configured
            .into_iter()
            .map(|p| if p.is_absolute() { p } else { cwd.join(p) })
            .collect::<Vec<_>>();
        if let Some(bad) = roots.iter().find(|p| *p == Path::new("/")) {
            return Err(ConfigError::new(
                VAR,
                format!("'{}' would make the whole server a project", bad.display()),
            ));
        }
        Ok(Self { roots })
    }

    /// The roots as configured (absolute).
    pub fn paths(&self) -> &[PathBuf] {
        &self.roots
    }

    /// The roots that exist, canonicalised. Blocking.
    pub fn canonical(&self) -> Vec<PathBuf> {
        self.roots
            .iter()
            .filter_map(|r| std::fs::canonicalize(r).ok())
            .collect()
    }

    /// Creates the roots that do not exist yet (start-up; failures are only logged, since a
    /// root on a mount that is not there yet is the operator's business). Blocking.
    pub fn ensure_exist(&self) {
        for r in &self.roots {
            if !r.exists()
                && let Err(e) = std::fs::create_dir_all(r)
            {
                tracing::warn!(root = %r.display(), error = %e, "cannot create a project root");
            }
        }
    }

    /// True when `canonical` (already canonicalised) is a root or inside one. Blocking.
    pub fn contains(&self, canonical: &Path) -> bool {
        self.canonical().iter().any(|r| canonical.starts_with(r))
    }

    /// Refuses a canonical project path outside every root, with a message naming them.
    pub fn check(&self, canonical: &Path) -> Result<(), ProjectError> {
        if self.contains(canonical) {
            return Ok(());
        }
        let list: Vec<String> = self.roots.iter().map(|r| r.display().to_string()).collect();
        Err(ProjectError::Invalid(format!(
            "Path {} is outside the project roots ({}); set GATHERING_PROJECT_ROOTS to allow another folder",
            canonical.display(),
            list.join(":")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn roots(pairs: &[(&str, &str)]) -> Result<ProjectRoots, ConfigError> {
        let v: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ProjectRoots::from_vars(&v)
    }

    #[test]
    fn configured_then_workspace_root_then_the_data_directory() {
        assert_eq!(
            roots(&[
                ("GATHERING_PROJECT_ROOTS", "/srv/a:/srv/b"),
                ("WORKSPACE_ROOT", "/w")
            ])
            .unwrap()
            .paths(),
            [PathBuf::from("/srv/a"), PathBuf::from("/srv/b")]
        );
        assert_eq!(
            roots(&[("WORKSPACE_ROOT", "/w")]).unwrap().paths(),
            [PathBuf::from("/w")]
        );
        assert_eq!(
            roots(&[("GATHERING_DATA_DIR", "/var/lib/g")])
                .unwrap()
                .paths(),
            [PathBuf::from("/var/lib/g/projects")]
        );
        assert_eq!(
            roots(&[("GATHERING_PROJECT_ROOTS", "/")]).unwrap_err().var,
            "GATHERING_PROJECT_ROOTS"
        );
    }

    #[test]
    fn a_path_outside_every_root_is_refused() {
        let dir = std::env::temp_dir().join(format!("gt-roots-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("inside")).unwrap();
        let r = ProjectRoots::new(vec![dir.clone()]);
        let inside = std::fs::canonicalize(dir.join("inside")).unwrap();
        assert!(r.check(&inside).is_ok());
        assert!(r.check(Path::new("/usr/share")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
