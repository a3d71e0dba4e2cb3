//! `git clone` of a checked remote into a folder of the project root.

use serde::Serialize;

use super::remote::CheckedRemote;
use super::{GitError, Opts, check, output};
use crate::error::ToolError;
use crate::root::{ProjectRoot, check_lexically, inside_git_dir};

/// Deepest history a shallow clone may ask for.
pub const MAX_DEPTH: u32 = 100_000;

#[derive(Debug, Clone, Default)]
pub struct CloneInput {
    /// Folder to clone into, relative to the root; by default the repository's name.
    pub dest: Option<String>,
    pub branch: Option<String>,
    pub depth: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cloned {
    /// The folder, relative to the root.
    pub path: String,
    pub branch: Option<String>,
    pub head: String,
}

/// The repository's name from its URL (`…/name.git` → `name`).
pub fn default_dest(url: &str) -> Option<String> {
    let last = url
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()?
        .trim_end_matches(".git");
    let ok = !last.is_empty()
        && last != "."
        && last
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    ok.then(|| last.to_owned())
}

/// Clones `remote` into the root (a new or empty folder, never inside `.git`). Hooks never run
/// (`core.hooksPath=/dev/null` of the layer), submodules are not fetched, local clones copy
/// objects instead of hard-linking them into another project.
pub async fn clone(
    root: &ProjectRoot,
    remote: &CheckedRemote,
    i: &CloneInput,
) -> Result<Cloned, GitError> {
    let dest = match &i.dest {
        Some(d) => d.clone(),
        None => default_dest(&remote.url).ok_or_else(|| {
            GitError::Invalid("cannot name the folder from the URL: give 'path'".into())
        })?,
    };
    check_lexically(&dest).map_err(GitError::Path)?;
    let abs = root.resolve(&dest).await.map_err(GitError::Path)?;
    if abs == root.path() && i.dest.as_deref().is_none_or(|d| d != ".") {
        return Err(GitError::Invalid("give a folder to clone into".into()));
    }
    if inside_git_dir(root, &abs) {
        return Err(GitError::Path(ToolError::Refused(
            "cannot clone into the repository's .git folder".into(),
        )));
    }
    if let Ok(mut entries) = tokio::fs::read_dir(&abs).await
        && entries.next_entry().await.ok().flatten().is_some()
    {
        return Err(GitError::Invalid(format!(
            "'{dest}' already exists and is not empty"
        )));
    }
    let rel = root.relative(&abs);
    let depth = i.depth.map(|d| d.clamp(1, MAX_DEPTH).to_string());
    let mut args = vec!["clone", "--quiet", "--no-recurse-submodules"];
    if remote.local {
        args.push("--no-hardlinks");
    }
    if let Some(b) = &i.branch {
        super::check_branch(root, b).await?;
        args.extend(["--branch", b.as_str()]);
    }
    if let Some(d) = &depth {
        args.extend(["--depth", d.as_str()]);
    }
    args.extend(["--", remote.url.as_str(), rel.as_str()]);
    let opts = Opts {
        network: true,
        allow_local_remotes: remote.local,
        config: remote.config.clone(),
        ..Opts::default()
    };
    check(&args, output(root, &args, &opts).await?)?;
    let cloned = ProjectRoot::new(&abs).map_err(GitError::Path)?;
    let head = output(&cloned, &["rev-parse", "HEAD"], &Opts::default())
        .await?
        .stdout
        .trim()
        .to_owned();
    let branch = super::ops::current_branch(&cloned).await?;
    Ok(Cloned {
        path: rel,
        branch,
        head,
    })
}

#[cfg(test)]
mod tests {
    use super::default_dest;

    #[test]
    fn folder_names_from_urls() {
        assert_eq!(
            default_dest("https://github.com/a/repo.git").as_deref(),
            Some("repo")
        );
        assert_eq!(default_dest("/srv/x/lib/").as_deref(), Some("lib"));
        assert_eq!(default_dest("https://h/"), Some("h".into()));
        assert_eq!(default_dest("https://h/a%20b"), None);
    }
}
