//! Tool settings, from the environment (`Vars`, so tests pass a map instead of touching the
//! process environment).
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `GATHERING_HTTP_ALLOWLIST` | hosts or CIDRs outbound requests may reach although private | none |
//! | `GATHERING_HTTP_TIMEOUT_MS` / `GATHERING_HTTP_MAX_BYTES` | outbound time and size limits | 30000 / 5 MiB |
//! | `GATHERING_TOOL_GRANTS` | permissions of non-admin API callers (comma list or `all`) | read,write,delete,network,git, plus execute in development |
//! | `GATHERING_SHELL_ALLOW` | extra commands for the shell allow-list | none |
//! | `GATHERING_CODE_CPU_SECONDS` / `GATHERING_CODE_MEMORY_MB` | code-run limits | 10 / 512 |
//! | `SLACK_WEBHOOK_URL`, `DISCORD_WEBHOOK_URL`, `TEAMS_WEBHOOK_URL` | default webhook URLs | none |
//! | `WORKSPACE_ROOT` | where project browsing starts (inside the project roots) | the first project root |
//! | `GATHERING_PROJECT_ROOTS` | folders projects may live in (colon-separated) | `WORKSPACE_ROOT`, else `$GATHERING_DATA_DIR/projects` |
//! | `GATHERING_SKILL_DATABASE_URL` | PostgreSQL DSN the `database` skill queries (read-only; give it a role that can only read) | none (the skill answers that nothing is configured) |
//! | `GATHERING_EMAIL_SMTP_URL`, `GATHERING_EMAIL_IMAP_URL`, `GATHERING_EMAIL_FROM`, `GATHERING_EMAIL_CA_FILE` | the email skill's servers (see `skills::email::settings`) | none (the tools answer that nothing is configured) |
//! | `GATHERING_CLOUD_S3_ENDPOINT`, `GATHERING_CLOUD_S3_BUCKETS`, `…_REGION`, `…_ACCESS_KEY_ID`, `…_SECRET_ACCESS_KEY`, `…_URL_STYLE`, `…_ALLOW_PRIVATE`, `GATHERING_CLOUD_MAX_OBJECT_BYTES` | the cloud skill's S3-compatible store (see `skills::cloud::settings`) | none |
//! | `GATHERING_GIT_CLONE_MAX_BYTES` | largest folder `git_clone` may fill (git stopped, folder emptied past it) | 512 MiB |
//! | `GATHERING_PLUGIN_DIRS` | folders plugins may be discovered in (colon-separated) | `$GATHERING_DATA_DIR/plugins` |

use std::path::PathBuf;
use std::time::Duration;

use gathering_core::Secret;
use gathering_core::config::{self, ConfigError, Vars};

use crate::net::{Allowlist, HttpLimits};
use crate::permission::{Grants, Permission};
use crate::plugins::PluginSettings;
use crate::project::ProjectRoots;
use crate::skills::cloud::settings::CloudSettings;
use crate::skills::email::settings::EmailSettings;

#[derive(Debug, Clone)]
pub struct ShellLimits {
    /// Commands added to the built-in allow-list.
    pub extra_allowed: Vec<String>,
    pub default_timeout: Duration,
    pub max_timeout: Duration,
    /// Largest stdout (and stderr) kept; the command is stopped past it.
    pub max_output: usize,
}

impl Default for ShellLimits {
    fn default() -> Self {
        Self {
            extra_allowed: Vec::new(),
            default_timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(300),
            max_output: 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CodeLimits {
    pub cpu_seconds: u64,
    pub memory_bytes: u64,
    pub default_timeout: Duration,
    pub max_timeout: Duration,
    pub max_output: usize,
    pub max_code_bytes: usize,
}

impl Default for CodeLimits {
    fn default() -> Self {
        Self {
            cpu_seconds: 10,
            memory_bytes: 512 * 1024 * 1024,
            default_timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(120),
            max_output: 1024 * 1024,
            max_code_bytes: 256 * 1024,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct WebhookDefaults {
    pub slack: Option<Secret>,
    pub discord: Option<Secret>,
    pub teams: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct ToolsConfig {
    pub http_allowlist: Allowlist,
    pub http: HttpLimits,
    /// Permissions of callers that come through the API (an agent's or a user's own call).
    pub grants: Grants,
    pub shell: ShellLimits,
    pub code: CodeLimits,
    pub webhooks: WebhookDefaults,
    pub workspace_root: Option<PathBuf>,
    /// `GATHERING_PROJECT_ROOTS`: where project folders may be.
    pub project_roots: ProjectRoots,
    /// `GATHERING_PLUGIN_DIRS` and the restart back-off of MCP servers.
    pub plugins: PluginSettings,
    /// `GATHERING_SKILL_DATABASE_URL`: the database the `database` skill reads.
    pub database_url: Option<Secret>,
    /// `GATHERING_EMAIL_*`: the email skill's SMTP and IMAP servers.
    pub email: EmailSettings,
    /// `GATHERING_CLOUD_*`: the cloud skill's object store (none: the tools say so).
    pub cloud: Option<CloudSettings>,
    /// `GATHERING_GIT_CLONE_MAX_BYTES`: largest folder `git_clone` may fill.
    pub git_clone_max_bytes: u64,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        Self {
            http_allowlist: Allowlist::empty(),
            http: HttpLimits::default(),
            grants: default_grants(),
            shell: ShellLimits::default(),
            code: CodeLimits::default(),
            webhooks: WebhookDefaults::default(),
            workspace_root: None,
            // Tests build their projects in temporary folders.
            project_roots: ProjectRoots::new(vec![std::env::temp_dir()]),
            plugins: PluginSettings::default(),
            database_url: None,
            email: EmailSettings::default(),
            cloud: None,
            git_clone_max_bytes: crate::git::clone::DEFAULT_MAX_BYTES,
        }
    }
}

fn default_grants() -> Grants {
    Grants::of(&[
        Permission::Read,
        Permission::Write,
        Permission::Delete,
        Permission::Execute,
        Permission::Network,
        Permission::Git,
    ])
}

impl ToolsConfig {
    pub fn from_vars(vars: &impl Vars) -> Result<Self, ConfigError> {
        let d = ToolsConfig::default();
        let env = gathering_core::Environment::from_vars(vars)?;
        let http_allowlist =
            Allowlist::parse(&config::string_or(vars, "GATHERING_HTTP_ALLOWLIST", ""))
                .map_err(|e| ConfigError::new("GATHERING_HTTP_ALLOWLIST", e))?;
        let grants = match vars.get("GATHERING_TOOL_GRANTS") {
            // Ordinary users may not run code on the server unless the operator says so.
            None if env.is_development() => d.grants,
            None => d.grants.without(Permission::Execute),
            Some(raw) => Grants::parse_list(&raw).map_err(|bad| {
                ConfigError::new(
                    "GATHERING_TOOL_GRANTS",
                    format!("unknown permission '{bad}'"),
                )
            })?,
        };
        let http = HttpLimits {
            timeout: Duration::from_millis(config::parse_or(
                vars,
                "GATHERING_HTTP_TIMEOUT_MS",
                d.http.timeout.as_millis() as u64,
            )?),
            max_response_bytes: config::parse_or(
                vars,
                "GATHERING_HTTP_MAX_BYTES",
                d.http.max_response_bytes,
            )?,
            ..d.http
        };
        let code = CodeLimits {
            cpu_seconds: config::parse_or(vars, "GATHERING_CODE_CPU_SECONDS", d.code.cpu_seconds)?,
            memory_bytes: config::parse_or(
                vars,
                "GATHERING_CODE_MEMORY_MB",
                d.code.memory_bytes / (1024 * 1024),
            )? * 1024
                * 1024,
            ..d.code
        };
        let secret = |name: &str| vars.get(name).map(Secret::new);
        Ok(Self {
            http,
            grants,
            shell: ShellLimits {
                extra_allowed: config::list(vars, "GATHERING_SHELL_ALLOW"),
                ..d.shell
            },
            code,
            webhooks: WebhookDefaults {
                slack: secret("SLACK_WEBHOOK_URL"),
                discord: secret("DISCORD_WEBHOOK_URL"),
                teams: secret("TEAMS_WEBHOOK_URL"),
            },
            workspace_root: vars.get("WORKSPACE_ROOT").map(PathBuf::from),
            project_roots: ProjectRoots::from_vars(vars)?,
            plugins: PluginSettings::from_vars(vars)?,
            database_url: secret("GATHERING_SKILL_DATABASE_URL").filter(|s| !s.is_empty()),
            email: EmailSettings::from_vars(vars)?,
            cloud: CloudSettings::from_vars(vars, &http_allowlist)?,
            git_clone_max_bytes: config::parse_or(
                vars,
                "GATHERING_GIT_CLONE_MAX_BYTES",
                d.git_clone_max_bytes,
            )?,
            http_allowlist,
        })
    }
}
