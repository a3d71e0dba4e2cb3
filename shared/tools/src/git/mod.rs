//! The one git layer: every git command GatheRing runs (the `git` skill of agents, the
//! workspace API of the dashboard) goes through [`run`] here, so all of them get the same
//! rules:
//!
//! - argv only (never a shell), in the project root, with a wall-clock timeout and capped
//!   output (through [`crate::process`], so a timed-out git and whatever it started are killed);
//! - no pager, no interactive prompt (`GIT_TERMINAL_PROMPT=0`, ssh in batch mode), no
//!   credential helper, no hooks, no fsmonitor (a file written into the repository must not run
//!   on the next commit), no system config, and `GIT_CEILING_DIRECTORIES` so a repository above
//!   the project root is never used;
//! - paths confined to the root by [`ProjectRoot`] and passed after `--`; refs and remote names
//!   checked before they reach git (nothing that starts with `-`);
//! - credentials in remote URLs (`https://user:token@host`) are redacted from every message
//!   this layer returns or logs.
//!
//! [`status`] parses `git status`, [`history`] reads commits, diffs, file history and the graph,
//! [`ops`] changes things (stage, unstage, commit, clone, push, pull, branches, stash),
//! [`remote`] holds the remotes of agents' tools to the outbound guard's rules.

pub mod clone;
pub mod history;
pub mod ops;
pub mod remote;
pub mod status;

use std::sync::LazyLock;
use std::time::Duration;

use crate::error::ToolError;
use crate::process::{self, ExecOutput, ExecSpec};
use crate::root::ProjectRoot;

/// Local commands (status, log, commit, …).
pub const LOCAL_TIMEOUT: Duration = Duration::from_secs(30);
/// Commands that talk to a remote (push, pull).
pub const NETWORK_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest stdout (and stderr) kept from one git command.
pub const MAX_OUTPUT: usize = 2 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("the project is not a git repository")]
    NotARepository,
    /// The input makes no sense to git (a bad ref name, nothing to commit, an unknown remote).
    #[error("{0}")]
    Invalid(String),
    /// A path refused by the root's confinement.
    #[error(transparent)]
    Path(ToolError),
    #[error("git {0} timed out")]
    Timeout(String),
    /// git ran and failed; the message is git's own, credentials redacted.
    #[error("{0}")]
    Failed(String),
}

impl From<GitError> for ToolError {
    fn from(e: GitError) -> Self {
        match e {
            GitError::NotARepository | GitError::Invalid(_) => {
                ToolError::InvalidInput(e.to_string())
            }
            GitError::Path(inner) => inner,
            GitError::Timeout(_) | GitError::Failed(_) => ToolError::Failed(e.to_string()),
        }
    }
}

/// How one git command runs.
#[derive(Debug, Clone, Default)]
pub struct Opts {
    /// Extra environment (author identity, …).
    pub env: Vec<(String, String)>,
    /// Talks to a remote: the longer timeout, and only network transports (no `file://` or
    /// local paths, no `ext::`) unless `allow_local_remotes`.
    pub network: bool,
    /// Lets push and pull use a remote that is a path on this machine (admins only: it would
    /// otherwise read or write repositories outside the project).
    pub allow_local_remotes: bool,
    /// Extra `-c key=value` settings, after (so over) the defaults: what
    /// [`remote`] checked a remote with.
    pub config: Vec<String>,
    /// RLIMIT_FSIZE of git: no single file it writes (a clone's pack) may grow past this.
    pub max_file_bytes: Option<u64>,
}

impl Opts {
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }
}

/// Runs `git <args>` in the root and returns its output whatever its exit status (only a
/// failure to start it is an error).
pub async fn output(
    root: &ProjectRoot,
    args: &[&str],
    opts: &Opts,
) -> Result<ExecOutput, GitError> {
    let mut argv: Vec<String> = [
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "core.fsmonitor=false",
        "-c",
        "core.pager=cat",
        "-c",
        "credential.helper=",
        "-c",
        "protocol.ext.allow=never",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if opts.network && !opts.allow_local_remotes {
        argv.extend(["-c".to_owned(), "protocol.file.allow=never".to_owned()]);
    }
    for c in &opts.config {
        argv.extend(["-c".to_owned(), c.clone()]);
    }
    argv.push("--no-pager".to_owned());
    argv.extend(args.iter().map(|s| (*s).to_owned()));
    let mut spec = ExecSpec::new("git", argv, root.path().to_path_buf());
    spec.wall = if opts.network {
        NETWORK_TIMEOUT
    } else {
        LOCAL_TIMEOUT
    };
    spec.max_output = MAX_OUTPUT;
    spec.limits.file_size_bytes = opts.max_file_bytes;
    let ceiling = root
        .path()
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    for (k, v) in [
        ("GIT_CEILING_DIRECTORIES", ceiling.as_str()),
        ("GIT_TERMINAL_PROMPT", "0"),
        ("GIT_ASKPASS", "/bin/false"),
        ("SSH_ASKPASS", "/bin/false"),
        (
            "GIT_SSH_COMMAND",
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new",
        ),
        ("GIT_OPTIONAL_LOCKS", "0"),
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("LC_ALL", "C"),
    ] {
        spec.env.push((k.to_owned(), v.to_owned()));
    }
    spec.env.extend(opts.env.iter().cloned());
    let mut out = process::run(spec)
        .await
        .map_err(|e| GitError::Failed(redact(&e.to_string())))?;
    out.stdout = redact(&out.stdout);
    out.stderr = redact(&out.stderr);
    Ok(out)
}

/// Runs `git <args>`; an error unless it exits 0. Returns stdout.
pub async fn run(root: &ProjectRoot, args: &[&str], opts: &Opts) -> Result<String, GitError> {
    let out = output(root, args, opts).await?;
    check(args, out).map(|o| o.stdout)
}

/// The error a finished git command stands for, if any.
pub fn check(args: &[&str], out: ExecOutput) -> Result<ExecOutput, GitError> {
    let verb = args.first().copied().unwrap_or("");
    if out.timed_out {
        return Err(GitError::Timeout(verb.to_owned()));
    }
    if out.exit_code == Some(0) {
        return Ok(out);
    }
    let msg = out.stderr.trim();
    if msg.contains("not a git repository") {
        return Err(GitError::NotARepository);
    }
    let msg = if msg.is_empty() {
        out.stdout.trim()
    } else {
        msg
    };
    tracing::debug!(verb, error = %msg, "git failed");
    Err(GitError::Failed(format!("git {verb} failed: {msg}")))
}

/// True when the root is (inside) a git work tree of its own.
pub async fn is_repo(root: &ProjectRoot) -> Result<bool, GitError> {
    let out = output(
        root,
        &["rev-parse", "--is-inside-work-tree"],
        &Opts::default(),
    )
    .await?;
    Ok(out.exit_code == Some(0) && out.stdout.trim() == "true")
}

/// A path argument, confined to the root and made relative to it.
pub async fn rel_path(root: &ProjectRoot, p: &str) -> Result<String, GitError> {
    let abs = root.resolve(p).await.map_err(GitError::Path)?;
    Ok(root.relative(&abs))
}

/// A revision (commit, branch, `HEAD~2`): the characters git allows there, never an option.
pub fn check_rev(rev: &str) -> Result<(), GitError> {
    let ok = !rev.is_empty()
        && rev.len() <= 200
        && !rev.starts_with('-')
        && !rev.contains("..")
        && rev
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/~^-@{}".contains(c));
    if ok {
        Ok(())
    } else {
        Err(GitError::Invalid(format!(
            "'{rev}' is not a valid revision"
        )))
    }
}

/// A branch name as git accepts it (`git check-ref-format --branch`), never an option.
pub async fn check_branch(root: &ProjectRoot, name: &str) -> Result<(), GitError> {
    let bad = || GitError::Invalid(format!("'{name}' is not a valid branch name"));
    if name.is_empty()
        || name.len() > 200
        || name.starts_with('-')
        || name.contains("..")
        || name.ends_with('/')
        || name.ends_with(".lock")
    {
        return Err(bad());
    }
    let out = output(
        root,
        &["check-ref-format", "--branch", name],
        &Opts::default(),
    )
    .await?;
    if out.exit_code == Some(0) {
        Ok(())
    } else {
        Err(bad())
    }
}

/// A remote name: letters, digits, `._-`, not starting with `-`.
pub fn check_remote(name: &str) -> Result<(), GitError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(GitError::Invalid(format!(
            "'{name}' is not a valid remote name"
        )))
    }
}

static CREDENTIALS: LazyLock<Option<regex::Regex>> =
    LazyLock::new(|| regex::Regex::new(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@").ok());

/// `scheme://user:secret@host` → `scheme://***@host`, everywhere in `text`.
pub fn redact(text: &str) -> String {
    match CREDENTIALS.as_ref() {
        Some(re) if text.contains("://") => re.replace_all(text, "${1}***@").into_owned(),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(
            redact("To https://bob:ghp_secret@github.com/a/b.git\n rejected"),
            "To https://***@github.com/a/b.git\n rejected"
        );
        assert_eq!(redact("ssh://git@host/x"), "ssh://***@host/x");
        assert_eq!(redact("no url here"), "no url here");
    }

    #[test]
    fn revisions_and_remotes() {
        for ok in ["HEAD", "HEAD~2", "main", "feature/x", "abc123", "v1.0^"] {
            assert!(check_rev(ok).is_ok(), "{ok}");
        }
        for bad in ["-p", "--output=/tmp/x", "a..b", "a b", ""] {
            assert!(check_rev(bad).is_err(), "{bad}");
        }
        assert!(check_remote("origin").is_ok());
        assert!(check_remote("--upload-pack=x").is_err());
        assert!(check_remote("a/b").is_err());
    }
}
