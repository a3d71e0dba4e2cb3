//! The `git` skill: status, diff, log, add, commit, branch and stash in the project root. The
//! `git` binary runs with argv (never a shell), a timeout, no pager, no prompts, and with
//! hooks and fsmonitor disabled (a file an agent wrote into the repository must not run on the
//! next commit). `GIT_CEILING_DIRECTORIES` stops git from using a repository above the project
//! root. Paths given to add/diff/log are confined to the root and passed after `--`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::parse;
use crate::context::CallContext;
use crate::definition::{Category, ToolDefinition};
use crate::error::ToolError;
use crate::permission::Permission;
use crate::process::{self, ExecOutput, ExecSpec};
use crate::registry::{Registry, ToolOutput};
use crate::root::ProjectRoot;

const SKILL: &str = "git";
const GIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest diff or log text returned.
const MAX_OUTPUT: usize = 2 * 1024 * 1024;

fn def(name: &str, description: &str) -> ToolDefinition {
    ToolDefinition::new(name, SKILL, Category::VersionControl, description)
        .timeout(Duration::from_secs(60))
}

pub fn register(reg: &Registry) -> Result<(), ToolError> {
    let paths = json!({"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 4096}, "maxItems": 500});
    reg.register(
        def("git_status", "Working tree status of the project's repository")
            .permissions(&[Permission::Read, Permission::Git])
            .schema(json!({"type": "object", "additionalProperties": false}))
            .output("{branch, upstream, ahead, behind, staged[], modified[], deleted[], untracked[], clean}"),
        git_status,
    )?;
    reg.register(
        def(
            "git_diff",
            "Diff of the working tree, the index (staged) or a commit",
        )
        .permissions(&[Permission::Read, Permission::Git])
        .schema(json!({
            "type": "object",
            "properties": {
                "staged": {"type": "boolean"},
                "commit": {"type": "string", "pattern": "^[0-9A-Za-z._/~^-]{1,100}$"},
                "path": {"type": "string", "minLength": 1, "maxLength": 4096},
                "stat": {"type": "boolean"},
            },
            "additionalProperties": false,
        }))
        .output("{diff, truncated}"),
        git_diff,
    )?;
    reg.register(
        def("git_log", "Commit history")
            .permissions(&[Permission::Read, Permission::Git])
            .schema(json!({
                "type": "object",
                "properties": {
                    "limit": {"type": "integer", "minimum": 1, "maximum": 200},
                    "branch": {"type": "string", "pattern": "^[0-9A-Za-z._/~^-]{1,200}$"},
                    "path": {"type": "string", "minLength": 1, "maxLength": 4096},
                    "author": {"type": "string", "maxLength": 200},
                },
                "additionalProperties": false,
            }))
            .output("{commits[{hash, author_name, author_email, date, message}]}"),
        git_log,
    )?;
    reg.register(
        def("git_add", "Stage files")
            .permissions(&[Permission::Write, Permission::Git])
            .schema(json!({
                "type": "object",
                "properties": {"paths": paths},
                "required": ["paths"],
                "additionalProperties": false,
            }))
            .output("{staged[]}"),
        git_add,
    )?;
    reg.register(
        def("git_commit", "Commit the staged changes")
            .permissions(&[Permission::Write, Permission::Git])
            .schema(json!({
                "type": "object",
                "properties": {
                    "message": {"type": "string", "minLength": 1, "maxLength": 10000},
                    "author_name": {"type": "string", "minLength": 1, "maxLength": 200},
                    "author_email": {"type": "string", "minLength": 3, "maxLength": 200, "pattern": "^[^<>\\s]+@[^<>\\s]+$"},
                    "allow_empty": {"type": "boolean"},
                },
                "required": ["message"],
                "additionalProperties": false,
            }))
            .output("{hash, summary}"),
        git_commit,
    )?;
    reg.register(
        def("git_branch", "List, create, delete or switch branches")
            .permissions(&[Permission::Write, Permission::Git])
            .schema(json!({
                "type": "object",
                "properties": {
                    "action": {"type": "string", "enum": ["list", "create", "delete", "switch"]},
                    "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$"},
                    "start_point": {"type": "string", "pattern": "^[0-9A-Za-z][0-9A-Za-z._/~^-]{0,199}$"},
                    "force": {"type": "boolean"},
                },
                "additionalProperties": false,
            }))
            .output("{branches[], current} or {branch}"),
        git_branch,
    )?;
    reg.register(
        def("git_stash", "Stash changes: push, pop, apply, list, drop")
            .permissions(&[Permission::Write, Permission::Git])
            .schema(json!({
                "type": "object",
                "properties": {
                    "action": {"type": "string", "enum": ["push", "pop", "apply", "list", "drop"]},
                    "message": {"type": "string", "maxLength": 1000},
                    "index": {"type": "integer", "minimum": 0, "maximum": 1000},
                    "include_untracked": {"type": "boolean"},
                },
                "additionalProperties": false,
            }))
            .output("{stashes[]} or {output}"),
        git_stash,
    )?;
    Ok(())
}

/// Runs `git <args>` in the root; an error when git fails.
pub(crate) async fn git(
    root: &ProjectRoot,
    args: &[&str],
    extra_env: &[(&str, &str)],
) -> Result<ExecOutput, ToolError> {
    let out = git_raw(root, args, extra_env).await?;
    if out.timed_out {
        return Err(ToolError::Failed(format!(
            "git {} timed out",
            args.first().unwrap_or(&"")
        )));
    }
    if out.exit_code != Some(0) {
        let msg = out.stderr.trim();
        return Err(if msg.contains("not a git repository") {
            ToolError::InvalidInput("the project is not a git repository".into())
        } else {
            ToolError::Failed(format!(
                "git {} failed: {}",
                args.first().unwrap_or(&""),
                msg
            ))
        });
    }
    Ok(out)
}

async fn git_raw(
    root: &ProjectRoot,
    args: &[&str],
    extra_env: &[(&str, &str)],
) -> Result<ExecOutput, ToolError> {
    let mut argv: Vec<String> = [
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "core.fsmonitor=false",
        "-c",
        "core.pager=cat",
        "-c",
        "credential.helper=",
        "--no-pager",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    argv.extend(args.iter().map(|s| (*s).to_owned()));
    let mut spec = ExecSpec::new("git", argv, root.path().to_path_buf());
    spec.wall = GIT_TIMEOUT;
    spec.max_output = MAX_OUTPUT;
    let ceiling = root
        .path()
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    spec.env.push(("GIT_CEILING_DIRECTORIES".into(), ceiling));
    spec.env.push(("GIT_TERMINAL_PROMPT".into(), "0".into()));
    spec.env.push(("GIT_OPTIONAL_LOCKS".into(), "0".into()));
    spec.env.push(("GIT_CONFIG_NOSYSTEM".into(), "1".into()));
    spec.env.push(("LC_ALL".into(), "C".into()));
    for (k, v) in extra_env {
        spec.env.push(((*k).to_owned(), (*v).to_owned()));
    }
    process::run(spec).await
}

/// A path argument, confined to the root and made relative to it.
async fn rel_path(root: &ProjectRoot, p: &str) -> Result<String, ToolError> {
    let abs = root.resolve(p).await?;
    Ok(root.relative(&abs))
}

async fn git_status(ctx: CallContext, _input: Value) -> Result<ToolOutput, ToolError> {
    let root = ctx.root()?;
    let out = git(
        root,
        &[
            "status",
            "--porcelain=v1",
            "--branch",
            "--untracked-files=all",
        ],
        &[],
    )
    .await?;
    let mut status = json!({
        "branch": Value::Null, "upstream": Value::Null, "ahead": 0, "behind": 0,
        "staged": [], "modified": [], "deleted": [], "untracked": [], "conflicted": [],
    });
    let push = |status: &mut Value, key: &str, path: &str| {
        if let Some(a) = status[key].as_array_mut() {
            a.push(json!(path));
        }
    };
    for line in out.stdout.lines() {
        if let Some(b) = line.strip_prefix("## ") {
            let (head, track) = b.split_once(" [").unwrap_or((b, ""));
            let (branch, upstream) = head.split_once("...").unwrap_or((head, ""));
            let branch = branch.strip_prefix("No commits yet on ").unwrap_or(branch);
            status["branch"] = json!(branch);
            if !upstream.is_empty() {
                status["upstream"] = json!(upstream);
            }
            for part in track.trim_end_matches(']').split(", ") {
                if let Some(n) = part.strip_prefix("ahead ") {
                    status["ahead"] = json!(n.parse::<u64>().unwrap_or(0));
                } else if let Some(n) = part.strip_prefix("behind ") {
                    status["behind"] = json!(n.parse::<u64>().unwrap_or(0));
                }
            }
            continue;
        }
        if line.len() < 4 {
            continue;
        }
        let (x, y) = (&line[0..1], &line[1..2]);
        let path = line[3..].rsplit(" -> ").next().unwrap_or(&line[3..]);
        match (x, y) {
            ("?", "?") => push(&mut status, "untracked", path),
            ("U", _) | (_, "U") | ("A", "A") | ("D", "D") => push(&mut status, "conflicted", path),
            _ => {
                if x != " " {
                    push(&mut status, "staged", path);
                }
                match y {
                    "M" | "T" => push(&mut status, "modified", path),
                    "D" => push(&mut status, "deleted", path),
                    _ => {}
                }
            }
        }
    }
    let clean = ["staged", "modified", "deleted", "untracked", "conflicted"]
        .iter()
        .all(|k| status[*k].as_array().is_none_or(|a| a.is_empty()));
    status["clean"] = json!(clean);
    let msg = if clean {
        "Working tree clean".to_owned()
    } else {
        "Working tree has changes".to_owned()
    };
    Ok(ToolOutput::ok(msg, status))
}

#[derive(Deserialize)]
struct DiffInput {
    staged: Option<bool>,
    commit: Option<String>,
    path: Option<String>,
    stat: Option<bool>,
}

async fn git_diff(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: DiffInput = parse(input)?;
    let root = ctx.root()?;
    let mut args: Vec<String> = Vec::new();
    match &i.commit {
        Some(c) => {
            args.extend(["show".into(), "--format=".into()]);
            if c.starts_with('-') {
                return Err(ToolError::InvalidInput("invalid commit".into()));
            }
            args.push(c.clone());
        }
        None => {
            args.push("diff".into());
            if i.staged.unwrap_or(false) {
                args.push("--cached".into());
            }
        }
    }
    if i.stat.unwrap_or(false) {
        args.push("--stat".into());
    }
    args.push("--no-ext-diff".into());
    args.push("--no-textconv".into());
    if let Some(p) = &i.path {
        args.push("--".into());
        args.push(rel_path(root, p).await?);
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = git(root, &argv, &[]).await?;
    Ok(ToolOutput::ok(
        if out.stdout.is_empty() {
            "No differences"
        } else {
            "Diff"
        },
        json!({"diff": out.stdout, "truncated": out.stdout_truncated}),
    ))
}

#[derive(Deserialize)]
struct LogInput {
    limit: Option<u32>,
    branch: Option<String>,
    path: Option<String>,
    author: Option<String>,
}

async fn git_log(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: LogInput = parse(input)?;
    let root = ctx.root()?;
    let mut args: Vec<String> = vec![
        "log".into(),
        format!("--max-count={}", i.limit.unwrap_or(20)),
        "--format=%H%x1f%an%x1f%ae%x1f%aI%x1f%s%x1f%b%x1e".into(),
    ];
    if let Some(a) = &i.author {
        args.push(format!("--author={a}"));
    }
    if let Some(b) = &i.branch {
        if b.starts_with('-') {
            return Err(ToolError::InvalidInput("invalid branch".into()));
        }
        args.push(b.clone());
    }
    args.push("--".into());
    if let Some(p) = &i.path {
        args.push(rel_path(root, p).await?);
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = git(root, &argv, &[]).await;
    let out = match out {
        // A repository without commits has no log.
        Err(ToolError::Failed(m)) if m.contains("does not have any commits") => {
            return Ok(ToolOutput::ok("No commits yet", json!({"commits": []})));
        }
        other => other?,
    };
    let commits: Vec<Value> = out
        .stdout
        .split('\u{1e}')
        .filter_map(|rec| {
            let f: Vec<&str> = rec.trim_start_matches('\n').split('\u{1f}').collect();
            (f.len() >= 5).then(|| {
                json!({
                    "hash": f[0], "short_hash": &f[0][..f[0].len().min(8)],
                    "author_name": f[1], "author_email": f[2], "date": f[3],
                    "message": f[4], "body": f.get(5).map(|b| b.trim()).unwrap_or(""),
                })
            })
        })
        .collect();
    Ok(ToolOutput::ok(
        format!("{} commit(s)", commits.len()),
        json!({"commits": commits}),
    ))
}

#[derive(Deserialize)]
struct AddInput {
    paths: Vec<String>,
}

async fn git_add(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: AddInput = parse(input)?;
    if i.paths.is_empty() {
        return Err(ToolError::InvalidInput(
            "give at least one path ('.' for everything)".into(),
        ));
    }
    let root = ctx.root()?;
    let mut args = vec!["add".to_owned(), "--".to_owned()];
    for p in &i.paths {
        args.push(rel_path(root, p).await?);
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    git(root, &argv, &[]).await?;
    Ok(ToolOutput::ok(
        format!("Staged {} path(s)", i.paths.len()),
        json!({"staged": &args[2..]}),
    ))
}

#[derive(Deserialize)]
struct CommitInput {
    message: String,
    author_name: Option<String>,
    author_email: Option<String>,
    allow_empty: Option<bool>,
}

async fn git_commit(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: CommitInput = parse(input)?;
    let root = ctx.root()?;
    // Identity: the one given, else the repository's, else GatheRing's.
    let configured = git_raw(root, &["config", "user.email"], &[])
        .await?
        .exit_code
        == Some(0);
    let name = i
        .author_name
        .clone()
        .unwrap_or_else(|| "GatheRing Agent".into());
    let email = i
        .author_email
        .clone()
        .unwrap_or_else(|| "agent@gathering.local".into());
    let mut env: Vec<(&str, &str)> = Vec::new();
    if i.author_name.is_some() || i.author_email.is_some() || !configured {
        env.extend([
            ("GIT_AUTHOR_NAME", name.as_str()),
            ("GIT_AUTHOR_EMAIL", email.as_str()),
            ("GIT_COMMITTER_NAME", name.as_str()),
            ("GIT_COMMITTER_EMAIL", email.as_str()),
        ]);
    }
    let mut args = vec![
        "commit",
        "--no-verify",
        "--no-gpg-sign",
        "-m",
        i.message.as_str(),
    ];
    if i.allow_empty.unwrap_or(false) {
        args.push("--allow-empty");
    }
    let out = git_raw(root, &args, &env).await?;
    if out.exit_code != Some(0) {
        let text = format!("{}{}", out.stdout, out.stderr);
        if text.contains("nothing to commit") || text.contains("no changes added") {
            return Err(ToolError::InvalidInput(
                "nothing to commit (stage changes with git_add)".into(),
            ));
        }
        return Err(ToolError::Failed(format!(
            "git commit failed: {}",
            text.trim()
        )));
    }
    let hash = git(root, &["rev-parse", "HEAD"], &[])
        .await?
        .stdout
        .trim()
        .to_owned();
    let summary = out.stdout.lines().next().unwrap_or("").to_owned();
    Ok(ToolOutput::ok(
        format!("Committed {}", &hash[..hash.len().min(8)]),
        json!({"hash": hash, "summary": summary}),
    ))
}

#[derive(Deserialize)]
struct BranchInput {
    action: Option<String>,
    name: Option<String>,
    start_point: Option<String>,
    force: Option<bool>,
}

async fn git_branch(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: BranchInput = parse(input)?;
    let root = ctx.root()?;
    let action = i.action.as_deref().unwrap_or("list");
    if action == "list" {
        let out = git(
            root,
            &["branch", "--list", "--format=%(HEAD)%(refname:short)"],
            &[],
        )
        .await?;
        let mut current = Value::Null;
        let branches: Vec<String> = out
            .stdout
            .lines()
            .map(|l| {
                if let Some(b) = l.strip_prefix('*') {
                    current = json!(b);
                    b.to_owned()
                } else {
                    l.trim_start().to_owned()
                }
            })
            .collect();
        return Ok(ToolOutput::ok(
            format!("{} branch(es)", branches.len()),
            json!({"branches": branches, "current": current}),
        ));
    }
    let name = i.name.as_deref().ok_or_else(|| {
        ToolError::InvalidInput(format!("'name' is required to {action} a branch"))
    })?;
    if name.contains("..") || name.ends_with('/') || name.ends_with(".lock") {
        return Err(ToolError::InvalidInput(format!(
            "'{name}' is not a valid branch name"
        )));
    }
    git(root, &["check-ref-format", "--branch", name], &[])
        .await
        .map_err(|_| ToolError::InvalidInput(format!("'{name}' is not a valid branch name")))?;
    let args: Vec<&str> = match action {
        "create" => {
            let mut a = vec!["branch", name];
            if let Some(sp) = i.start_point.as_deref() {
                a.push(sp);
            }
            a
        }
        "delete" => vec![
            "branch",
            if i.force.unwrap_or(false) { "-D" } else { "-d" },
            name,
        ],
        _ => vec!["switch", name],
    };
    git(root, &args, &[]).await?;
    Ok(ToolOutput::ok(
        format!("Branch {name}: {action} done"),
        json!({"branch": name, "action": action}),
    ))
}

#[derive(Deserialize)]
struct StashInput {
    action: Option<String>,
    message: Option<String>,
    index: Option<u32>,
    include_untracked: Option<bool>,
}

async fn git_stash(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: StashInput = parse(input)?;
    let root = ctx.root()?;
    let action = i.action.as_deref().unwrap_or("push");
    let stash_ref = format!("stash@{{{}}}", i.index.unwrap_or(0));
    let args: Vec<&str> = match action {
        "list" => vec!["stash", "list"],
        "push" => {
            let mut a = vec!["stash", "push"];
            if i.include_untracked.unwrap_or(false) {
                a.push("--include-untracked");
            }
            if let Some(m) = i.message.as_deref() {
                a.extend(["-m", m]);
            }
            a
        }
        other => vec!["stash", other, stash_ref.as_str()],
    };
    let out = git(root, &args, &[]).await?;
    if action == "list" {
        let stashes: Vec<&str> = out.stdout.lines().collect();
        return Ok(ToolOutput::ok(
            format!("{} stash(es)", stashes.len()),
            json!({"stashes": stashes}),
        ));
    }
    Ok(ToolOutput::ok(
        format!("git stash {action} done"),
        json!({"action": action, "output": out.stdout.trim()}),
    ))
}
