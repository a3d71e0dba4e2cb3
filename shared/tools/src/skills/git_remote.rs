//! The `git` skill's tools that talk to other repositories: clone, pull and push. Each remote
//! is held to the outbound guard's rules first ([`crate::git::remote`]): http(s) through the
//! guard (pinned to the checked addresses, no redirects), local repositories only inside the
//! project roots, nothing else. Clone and push are dangerous (they bring in or send out code)
//! and wait for confirmation.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Services, parse, with};
use crate::context::CallContext;
use crate::definition::{Category, ToolDefinition};
use crate::error::ToolError;
use crate::git::NETWORK_TIMEOUT;
use crate::git::clone::{self, CloneInput};
use crate::git::ops::{self, RemoteInput};
use crate::git::remote::{check_configured_remote, check_remote_url};
use crate::permission::Permission;
use crate::registry::{Registry, ToolOutput};
use crate::response::ConfirmationType;

const SKILL: &str = "git";
const PERMS: &[Permission] = &[Permission::Write, Permission::Git, Permission::Network];

fn def(name: &str, description: &str) -> ToolDefinition {
    // The layer stops git at NETWORK_TIMEOUT; the rest is for the checks around it.
    ToolDefinition::new(name, SKILL, Category::VersionControl, description)
        .permissions(PERMS)
        .timeout(NETWORK_TIMEOUT + Duration::from_secs(30))
}

pub fn register(reg: &Registry, svc: &Arc<Services>) -> Result<(), ToolError> {
    let name = json!({"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$"});
    let remote = json!({"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"});
    reg.register(
        def(
            "git_clone",
            "Clone a repository (an http(s) URL, or a local repository inside the project roots) into a folder of the project",
        )
        .dangerous(ConfirmationType::User)
        .schema(json!({
            "type": "object",
            "properties": {
                "url": {"type": "string", "minLength": 1, "maxLength": 2048},
                "path": {"type": "string", "minLength": 1, "maxLength": 4096},
                "branch": name,
                "depth": {"type": "integer", "minimum": 1, "maximum": 100000},
            },
            "required": ["url"],
            "additionalProperties": false,
        }))
        .output("{path, branch, head}"),
        with(svc.clone(), git_clone),
    )?;
    let remote_schema = json!({
        "type": "object",
        "properties": {
            "remote": remote,
            "branch": name,
            "set_upstream": {"type": "boolean"},
        },
        "additionalProperties": false,
    });
    reg.register(
        def(
            "git_pull",
            "Fetch a branch from a remote and merge it into the current branch",
        )
        .schema(remote_schema.clone())
        .output("{remote, branch, output}"),
        with(svc.clone(), git_pull),
    )?;
    reg.register(
        def("git_push", "Push a branch to a remote")
            .dangerous(ConfirmationType::User)
            .schema(remote_schema)
            .output("{remote, branch, output}"),
        with(svc.clone(), git_push),
    )?;
    Ok(())
}

#[derive(Deserialize)]
struct CloneBody {
    url: String,
    path: Option<String>,
    branch: Option<String>,
    depth: Option<u32>,
}

async fn git_clone(
    svc: Arc<Services>,
    ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: CloneBody = parse(input)?;
    let root = ctx.root()?;
    let remote = check_remote_url(&i.url, svc.http.guard(), &svc.config.project_roots).await?;
    let done = clone::clone(
        root,
        &remote,
        &CloneInput {
            dest: i.path,
            branch: i.branch,
            depth: i.depth,
            max_bytes: svc.config.git_clone_max_bytes,
        },
    )
    .await?;
    Ok(ToolOutput::ok(
        format!("Cloned into {}", done.path),
        json!({"path": done.path, "branch": done.branch, "head": done.head}),
    ))
}

#[derive(Deserialize)]
struct RemoteBody {
    remote: Option<String>,
    branch: Option<String>,
    set_upstream: Option<bool>,
}

/// The input and the checked settings of the remote it names.
async fn remote_input(
    svc: &Services,
    ctx: &CallContext,
    input: Value,
    push: bool,
) -> Result<(RemoteInput, Vec<String>), ToolError> {
    let i: RemoteBody = parse(input)?;
    let remote = i.remote.unwrap_or_else(|| "origin".into());
    let root = ctx.root()?;
    let config = check_configured_remote(
        root,
        &remote,
        push,
        svc.http.guard(),
        &svc.config.project_roots,
    )
    .await?;
    let local = config.iter().any(|c| c == "protocol.file.allow=always");
    Ok((
        RemoteInput {
            remote,
            branch: i.branch,
            set_upstream: i.set_upstream.unwrap_or(false),
            allow_local_remotes: local,
        },
        config,
    ))
}

async fn git_pull(
    svc: Arc<Services>,
    ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let (i, config) = remote_input(&svc, &ctx, input, false).await?;
    let done = ops::pull_with(ctx.root()?, &i, config).await?;
    Ok(ToolOutput::ok(
        format!("Pulled {} from {}", done.branch, done.remote),
        json!({"remote": done.remote, "branch": done.branch, "output": done.output}),
    ))
}

async fn git_push(
    svc: Arc<Services>,
    ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let (i, config) = remote_input(&svc, &ctx, input, true).await?;
    let done = ops::push_with(ctx.root()?, &i, config).await?;
    Ok(ToolOutput::ok(
        format!("Pushed {} to {}", done.branch, done.remote),
        json!({"remote": done.remote, "branch": done.branch, "output": done.output}),
    ))
}
