//! Changing a repository: stage, unstage, commit, push, pull, branches and stash.

use serde::Serialize;

use super::{GitError, Opts, check, check_branch, check_remote, output, rel_path, run};
use crate::root::ProjectRoot;

/// Most paths one stage or unstage call takes.
pub const MAX_PATHS: usize = 1000;

/// Confines every path and makes it relative to the root; `.` stands for everything.
async fn rel_paths(root: &ProjectRoot, paths: &[String]) -> Result<Vec<String>, GitError> {
    if paths.is_empty() {
        return Err(GitError::Invalid(
            "give at least one path ('.' for everything)".into(),
        ));
    }
    if paths.len() > MAX_PATHS {
        return Err(GitError::Invalid(format!(
            "at most {MAX_PATHS} paths at once"
        )));
    }
    let mut out = Vec::with_capacity(paths.len());
    for p in paths {
        out.push(rel_path(root, p).await?);
    }
    Ok(out)
}

/// `git add -- <paths>`; returns the paths as staged (relative to the root).
pub async fn stage(root: &ProjectRoot, paths: &[String]) -> Result<Vec<String>, GitError> {
    let rel = rel_paths(root, paths).await?;
    let mut args = vec!["add", "--all", "--"];
    args.extend(rel.iter().map(String::as_str));
    run(root, &args, &Opts::default()).await?;
    Ok(rel)
}

/// Takes paths out of the index (their work-tree changes stay). Works before the first
/// commit too (`git reset` on an unborn branch empties those index entries).
pub async fn unstage(root: &ProjectRoot, paths: &[String]) -> Result<Vec<String>, GitError> {
    let rel = rel_paths(root, paths).await?;
    let mut args = vec!["reset", "-q", "--"];
    args.extend(rel.iter().map(String::as_str));
    let out = output(root, &args, &Opts::default()).await?;
    // `git reset` exits 1 when paths stay modified in the work tree: that is success.
    if out.exit_code == Some(1) && out.stderr.trim().is_empty() {
        return Ok(rel);
    }
    check(&args, out)?;
    Ok(rel)
}

#[derive(Debug, Clone, Default)]
pub struct CommitInput {
    pub message: String,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    pub allow_empty: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Committed {
    pub hash: String,
    /// git's first output line (`[main abc1234] message`).
    pub summary: String,
    pub output: String,
}

/// The author identity to commit or merge with: the one given, else the repository's own,
/// else GatheRing's.
async fn identity(
    root: &ProjectRoot,
    name: Option<&str>,
    email: Option<&str>,
) -> Result<Opts, GitError> {
    if let Some(e) = email
        && (e.len() > 200 || !e.contains('@') || e.contains(['<', '>', '\n']))
    {
        return Err(GitError::Invalid(format!("'{e}' is not a valid email")));
    }
    if name.is_some_and(|n| n.len() > 200 || n.contains(['<', '>', '\n'])) {
        return Err(GitError::Invalid("author_name is not valid".into()));
    }
    let configured = output(root, &["config", "user.email"], &Opts::default())
        .await?
        .exit_code
        == Some(0);
    if name.is_none() && email.is_none() && configured {
        return Ok(Opts::default());
    }
    let name = name.unwrap_or("GatheRing Agent");
    let email = email.unwrap_or("agent@gathering.local");
    Ok(Opts::default()
        .env("GIT_AUTHOR_NAME", name)
        .env("GIT_AUTHOR_EMAIL", email)
        .env("GIT_COMMITTER_NAME", name)
        .env("GIT_COMMITTER_EMAIL", email))
}

/// Commits what is staged (hooks never run, nothing is signed).
pub async fn commit(root: &ProjectRoot, i: &CommitInput) -> Result<Committed, GitError> {
    if i.message.trim().is_empty() {
        return Err(GitError::Invalid("the commit message is empty".into()));
    }
    let opts = identity(root, i.author_name.as_deref(), i.author_email.as_deref()).await?;
    let mut args = vec![
        "commit",
        "--no-verify",
        "--no-gpg-sign",
        "-m",
        i.message.as_str(),
    ];
    if i.allow_empty {
        args.push("--allow-empty");
    }
    let out = output(root, &args, &opts).await?;
    if out.exit_code != Some(0) && !out.timed_out {
        let text = format!("{}{}", out.stdout, out.stderr);
        if text.contains("nothing to commit")
            || text.contains("no changes added")
            || text.contains("nothing added to commit")
        {
            return Err(GitError::Invalid(
                "nothing to commit (stage changes first)".into(),
            ));
        }
    }
    let out = check(&args, out)?;
    let hash = run(root, &["rev-parse", "HEAD"], &Opts::default())
        .await?
        .trim()
        .to_owned();
    Ok(Committed {
        hash,
        summary: out.stdout.lines().next().unwrap_or("").to_owned(),
        output: out.stdout.trim().to_owned(),
    })
}

/// The branch HEAD is on (`None` when detached or without commits and branch).
pub async fn current_branch(root: &ProjectRoot) -> Result<Option<String>, GitError> {
    let out = output(
        root,
        &["symbolic-ref", "--quiet", "--short", "HEAD"],
        &Opts::default(),
    )
    .await?;
    if out.exit_code == Some(0) {
        return Ok(Some(out.stdout.trim().to_owned()).filter(|b| !b.is_empty()));
    }
    check(&["symbolic-ref"], out)
        .map(|_| None)
        .or_else(|e| match e {
            GitError::Failed(_) => Ok(None),
            other => Err(other),
        })
}

async fn known_remote(root: &ProjectRoot, remote: &str) -> Result<(), GitError> {
    check_remote(remote)?;
    let remotes = run(root, &["remote"], &Opts::default()).await?;
    if remotes.lines().any(|r| r.trim() == remote) {
        Ok(())
    } else {
        Err(GitError::Invalid(format!(
            "the repository has no remote '{remote}'"
        )))
    }
}

#[derive(Debug, Clone, Default)]
pub struct RemoteInput {
    pub remote: String,
    /// Defaults to the current branch.
    pub branch: Option<String>,
    pub set_upstream: bool,
    /// See [`Opts::allow_local_remotes`].
    pub allow_local_remotes: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RemoteDone {
    pub remote: String,
    pub branch: String,
    /// git's messages (it reports progress on stderr), credentials redacted.
    pub output: String,
}

async fn remote_branch(root: &ProjectRoot, i: &RemoteInput) -> Result<String, GitError> {
    known_remote(root, &i.remote).await?;
    let branch = match &i.branch {
        Some(b) => b.clone(),
        None => current_branch(root)
            .await?
            .ok_or_else(|| GitError::Invalid("HEAD is not on a branch: name one".into()))?,
    };
    check_branch(root, &branch).await?;
    Ok(branch)
}

pub async fn push(root: &ProjectRoot, i: &RemoteInput) -> Result<RemoteDone, GitError> {
    push_with(root, i, Vec::new()).await
}

/// [`push`] with the settings [`super::remote`] checked the remote with.
pub async fn push_with(
    root: &ProjectRoot,
    i: &RemoteInput,
    config: Vec<String>,
) -> Result<RemoteDone, GitError> {
    let branch = remote_branch(root, i).await?;
    let mut args = vec!["push", "--no-verify"];
    if i.set_upstream {
        args.push("--set-upstream");
    }
    args.extend(["--", i.remote.as_str(), branch.as_str()]);
    let opts = Opts {
        network: true,
        allow_local_remotes: i.allow_local_remotes,
        config,
        ..Opts::default()
    };
    let out = check(&args, output(root, &args, &opts).await?)?;
    Ok(RemoteDone {
        remote: i.remote.clone(),
        branch,
        output: format!("{}{}", out.stdout, out.stderr).trim().to_owned(),
    })
}

/// `git pull --no-rebase --no-edit`: a merge when needed, with an automatic message.
pub async fn pull(root: &ProjectRoot, i: &RemoteInput) -> Result<RemoteDone, GitError> {
    pull_with(root, i, Vec::new()).await
}

/// [`pull`] with the settings [`super::remote`] checked the remote with.
pub async fn pull_with(
    root: &ProjectRoot,
    i: &RemoteInput,
    config: Vec<String>,
) -> Result<RemoteDone, GitError> {
    let branch = remote_branch(root, i).await?;
    let mut opts = identity(root, None, None).await?;
    opts.config = config;
    opts.network = true;
    opts.allow_local_remotes = i.allow_local_remotes;
    opts.env.push(("GIT_MERGE_AUTOEDIT".into(), "no".into()));
    let args = [
        "pull",
        "--no-rebase",
        "--no-edit",
        "--no-verify",
        "--",
        i.remote.as_str(),
        branch.as_str(),
    ];
    let out = check(&args, output(root, &args, &opts).await?)?;
    Ok(RemoteDone {
        remote: i.remote.clone(),
        branch,
        output: format!("{}{}", out.stdout, out.stderr).trim().to_owned(),
    })
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Branch {
    pub name: String,
    /// `local` or `remote`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub current: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Branches {
    pub current: Option<String>,
    pub branches: Vec<Branch>,
}

/// Local and remote-tracking branches.
pub async fn branches(root: &ProjectRoot) -> Result<Branches, GitError> {
    let out = run(
        root,
        &["branch", "--all", "--format=%(HEAD)%00%(refname)"],
        &Opts::default(),
    )
    .await?;
    let mut list = Vec::new();
    for line in out.lines() {
        let Some((head, refname)) = line.split_once('\0') else {
            continue;
        };
        let (name, kind) = if let Some(n) = refname.strip_prefix("refs/heads/") {
            (n, "local")
        } else if let Some(n) = refname.strip_prefix("refs/remotes/") {
            if n.ends_with("/HEAD") {
                continue;
            }
            (n, "remote")
        } else {
            continue; // a detached HEAD line
        };
        list.push(Branch {
            name: name.to_owned(),
            kind,
            current: head == "*",
        });
    }
    Ok(Branches {
        current: current_branch(root).await?,
        branches: list,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BranchAction {
    Create,
    Delete { force: bool },
    Switch,
}

pub async fn branch(
    root: &ProjectRoot,
    action: BranchAction,
    name: &str,
    start_point: Option<&str>,
) -> Result<(), GitError> {
    check_branch(root, name).await?;
    let args: Vec<&str> = match action {
        BranchAction::Create => {
            let mut a = vec!["branch", name];
            if let Some(sp) = start_point {
                super::check_rev(sp)?;
                a.push(sp);
            }
            a
        }
        BranchAction::Delete { force } => vec!["branch", if force { "-D" } else { "-d" }, name],
        BranchAction::Switch => vec!["switch", name],
    };
    run(root, &args, &Opts::default()).await.map(|_| ())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StashAction {
    List,
    Push {
        message: Option<String>,
        include_untracked: bool,
    },
    Pop(u32),
    Apply(u32),
    Drop(u32),
}

/// Runs a stash action; `list` returns one line per stash, the others git's output.
pub async fn stash(root: &ProjectRoot, action: &StashAction) -> Result<Vec<String>, GitError> {
    let stash_ref = |i: u32| format!("stash@{{{i}}}");
    let args: Vec<String> = match action {
        StashAction::List => vec!["stash".into(), "list".into()],
        StashAction::Push {
            message,
            include_untracked,
        } => {
            let mut a = vec!["stash".into(), "push".into()];
            if *include_untracked {
                a.push("--include-untracked".into());
            }
            if let Some(m) = message {
                a.extend(["-m".into(), m.clone()]);
            }
            a
        }
        StashAction::Pop(i) => vec!["stash".into(), "pop".into(), stash_ref(*i)],
        StashAction::Apply(i) => vec!["stash".into(), "apply".into(), stash_ref(*i)],
        StashAction::Drop(i) => vec!["stash".into(), "drop".into(), stash_ref(*i)],
    };
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(root, &argv, &Opts::default()).await?;
    Ok(match action {
        StashAction::List => out.lines().map(str::to_owned).collect(),
        _ => vec![out.trim().to_owned()],
    })
}
