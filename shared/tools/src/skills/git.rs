//! The `git` skill: status, diff, log, add, commit, branch and stash in the project root, as
//! tools for agents (clone, pull and push: [`super::git_remote`]). Every command goes through the one git layer ([`crate::git`]: argv only,
//! timeouts, no pager, no prompts, no hooks, confined paths, redacted credentials), which the
//! workspace API uses too; this module only maps tool input and output to it.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::parse;
use crate::context::CallContext;
use crate::definition::{Category, ToolDefinition};
use crate::error::ToolError;
use crate::git::history::{self, DiffQuery, LogQuery};
use crate::git::ops::{self, BranchAction, CommitInput, StashAction};
use crate::git::status::{self, Entry};
use crate::permission::Permission;
use crate::registry::{Registry, ToolOutput};

const SKILL: &str = "git";

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
        def("git_branch", "List, create, delete or switch (checkout) branches")
            .permissions(&[Permission::Write, Permission::Git])
            .schema(json!({
                "type": "object",
                "properties": {
                    "action": {"type": "string", "enum": ["list", "create", "delete", "switch", "checkout"]},
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

async fn git_status(ctx: CallContext, _input: Value) -> Result<ToolOutput, ToolError> {
    let s = status::status(ctx.root()?).await?;
    let data = json!({
        "branch": s.branch,
        "upstream": s.upstream,
        "ahead": s.ahead,
        "behind": s.behind,
        "staged": s.paths(Entry::staged),
        "modified": s.paths(|e| !e.conflicted() && matches!(e.worktree, 'M' | 'T')),
        "deleted": s.paths(|e| !e.conflicted() && e.worktree == 'D'),
        "untracked": s.paths(Entry::untracked),
        "conflicted": s.paths(Entry::conflicted),
        "clean": s.clean(),
    });
    let msg = if s.clean() {
        "Working tree clean"
    } else {
        "Working tree has changes"
    };
    Ok(ToolOutput::ok(msg, data))
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
    let q = DiffQuery {
        commit: i.commit,
        staged: i.staged.unwrap_or(false),
        path: i.path,
        stat: i.stat.unwrap_or(false),
    };
    let (diff, truncated) = history::diff(ctx.root()?, &q).await?;
    Ok(ToolOutput::ok(
        if diff.is_empty() {
            "No differences"
        } else {
            "Diff"
        },
        json!({"diff": diff, "truncated": truncated}),
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
    let q = LogQuery {
        limit: i.limit.unwrap_or(20),
        rev: i.branch,
        path: i.path,
        author: i.author,
        with_files: false,
    };
    let commits: Vec<Value> = history::log(ctx.root()?, &q)
        .await?
        .into_iter()
        .map(|c| {
            json!({
                "hash": c.hash, "short_hash": c.short_hash,
                "author_name": c.author_name, "author_email": c.author_email, "date": c.date,
                "message": c.message, "body": c.body,
            })
        })
        .collect();
    Ok(ToolOutput::ok(
        if commits.is_empty() {
            "No commits yet".to_owned()
        } else {
            format!("{} commit(s)", commits.len())
        },
        json!({"commits": commits}),
    ))
}

#[derive(Deserialize)]
struct AddInput {
    paths: Vec<String>,
}

async fn git_add(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: AddInput = parse(input)?;
    let staged = ops::stage(ctx.root()?, &i.paths).await?;
    Ok(ToolOutput::ok(
        format!("Staged {} path(s)", staged.len()),
        json!({"staged": staged}),
    ))
}

#[derive(Deserialize)]
struct CommitBody {
    message: String,
    author_name: Option<String>,
    author_email: Option<String>,
    allow_empty: Option<bool>,
}

async fn git_commit(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: CommitBody = parse(input)?;
    let done = ops::commit(
        ctx.root()?,
        &CommitInput {
            message: i.message,
            author_name: i.author_name,
            author_email: i.author_email,
            allow_empty: i.allow_empty.unwrap_or(false),
        },
    )
    .await?;
    Ok(ToolOutput::ok(
        format!("Committed {}", &done.hash[..done.hash.len().min(8)]),
        json!({"hash": done.hash, "summary": done.summary}),
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
        let b = ops::branches(root).await?;
        let local: Vec<&str> = b
            .branches
            .iter()
            .filter(|b| b.kind == "local")
            .map(|b| b.name.as_str())
            .collect();
        return Ok(ToolOutput::ok(
            format!("{} branch(es)", local.len()),
            json!({"branches": local, "current": b.current}),
        ));
    }
    let name = i.name.as_deref().ok_or_else(|| {
        ToolError::InvalidInput(format!("'name' is required to {action} a branch"))
    })?;
    let kind = match action {
        "create" => BranchAction::Create,
        "delete" => BranchAction::Delete {
            force: i.force.unwrap_or(false),
        },
        _ => BranchAction::Switch,
    };
    ops::branch(root, kind, name, i.start_point.as_deref()).await?;
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
    let action = i.action.as_deref().unwrap_or("push");
    let index = i.index.unwrap_or(0);
    let kind = match action {
        "list" => StashAction::List,
        "push" => StashAction::Push {
            message: i.message,
            include_untracked: i.include_untracked.unwrap_or(false),
        },
        "pop" => StashAction::Pop(index),
        "apply" => StashAction::Apply(index),
        _ => StashAction::Drop(index),
    };
    let lines = ops::stash(ctx.root()?, &kind).await?;
    if kind == StashAction::List {
        return Ok(ToolOutput::ok(
            format!("{} stash(es)", lines.len()),
            json!({"stashes": lines}),
        ));
    }
    Ok(ToolOutput::ok(
        format!("git stash {action} done"),
        json!({"action": action, "output": lines.concat()}),
    ))
}
