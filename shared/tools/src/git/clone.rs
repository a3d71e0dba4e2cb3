//! `git clone` of a checked remote into a folder of the project root.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::remote::CheckedRemote;
use super::{GitError, Opts, check, output};
use crate::error::ToolError;
use crate::root::{ProjectRoot, check_lexically, inside_git_dir};

/// Deepest history a shallow clone may ask for.
pub const MAX_DEPTH: u32 = 100_000;
/// Default of `GATHERING_GIT_CLONE_MAX_BYTES`.
pub const DEFAULT_MAX_BYTES: u64 = 512 * 1024 * 1024;
/// How often the clone's folder is measured while git runs.
const SIZE_CHECK_EVERY: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Default)]
pub struct CloneInput {
    /// Folder to clone into, relative to the root; by default the repository's name.
    pub dest: Option<String>,
    pub branch: Option<String>,
    pub depth: Option<u32>,
    /// Largest the clone's folder may grow (`GATHERING_GIT_CLONE_MAX_BYTES`): git is stopped
    /// and the folder emptied past it.
    pub max_bytes: u64,
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
    let existed = match tokio::fs::read_dir(&abs).await {
        Ok(mut entries) => {
            if entries.next_entry().await.ok().flatten().is_some() {
                return Err(GitError::Invalid(format!(
                    "'{dest}' already exists and is not empty"
                )));
            }
            true
        }
        Err(_) => false,
    };
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
        max_file_bytes: Some(i.max_bytes),
        ..Opts::default()
    };
    let run = Box::pin(output(root, &args, &opts));
    let out = match bounded(run, &abs, i.max_bytes).await {
        // One file past the limit: git was stopped by RLIMIT_FSIZE.
        Some(Ok(out)) if out.signal == Some(nix::libc::SIGXFSZ) => None,
        Some(out) => Some(out?),
        // The folder past the limit: git was stopped (its process group is killed when its
        // future is dropped).
        None => None,
    };
    let Some(out) = out else {
        let _ = tokio::fs::remove_dir_all(&abs).await;
        if existed {
            let _ = tokio::fs::create_dir(&abs).await;
        }
        return Err(GitError::Path(ToolError::TooLarge(format!(
            "the clone grew past {} bytes (GATHERING_GIT_CLONE_MAX_BYTES) and was stopped",
            i.max_bytes
        ))));
    };
    check(&args, out)?;
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

/// Runs `run` while measuring `dir`; `None` (with `run` dropped) once it is larger than `max`.
async fn bounded<T>(
    mut run: std::pin::Pin<Box<impl Future<Output = T>>>,
    dir: &Path,
    max: u64,
) -> Option<T> {
    let mut tick = tokio::time::interval(SIZE_CHECK_EVERY);
    loop {
        tokio::select! {
            done = &mut run => return Some(done),
            _ = tick.tick() => {
                let d = dir.to_path_buf();
                let size = tokio::task::spawn_blocking(move || folder_size(&d, max))
                    .await
                    .unwrap_or(0);
                if size > max {
                    drop(run);
                    return None;
                }
            }
        }
    }
}

/// Bytes of the regular files under `dir` (symlinks not followed); stops counting past `stop`.
fn folder_size(dir: &Path, stop: u64) -> u64 {
    let mut total = 0u64;
    let mut todo: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                todo.push(e.path());
            } else if meta.is_file() {
                total += meta.len();
                if total > stop {
                    return total;
                }
            }
        }
    }
    total
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
