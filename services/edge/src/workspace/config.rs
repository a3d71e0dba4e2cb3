//! Workspace settings (terminal, run-python, code intelligence, caches), from the environment.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `GATHERING_WORKSPACE_EXEC` | who may run code on the server through the workspace (terminal, run-python): `admin`, `users` (any signed-in user) or `off` | `users` in development, `admin` in staging and production |
//! | `TERMINAL_SHELL` | the terminal's shell | `$SHELL`, else `/bin/bash` |
//! | `TERMINAL_MAX_PER_USER` / `TERMINAL_MAX_TOTAL` | open terminals per user / per edge | 3 / 32 |
//! | `TERMINAL_IDLE_SECONDS` | a terminal without input this long is closed | 900 |
//! | `WORKSPACE_PYTHON_TIMEOUT_SECONDS` | run-python wall-clock limit (then 408) | 30 |
//! | `WORKSPACE_CACHE_TTL_SECONDS` | longest life of a cached git status or file tree (file-change notifications invalidate sooner) | 30 |
//! | `LSP_PYTHON_COMMAND` / `LSP_TYPESCRIPT_COMMAND` / `LSP_RUST_COMMAND` | language server commands (split on whitespace) | `pylsp` / `typescript-language-server --stdio` / `rust-analyzer` |
//! | `LSP_MAX_SERVERS` | language servers per edge | 8 |
//! | `LSP_IDLE_SECONDS` | a language server unused this long is shut down | 600 |
//! | `LSP_REQUEST_TIMEOUT_MS` | longest wait for a language server's answer | 15000 |

use std::time::Duration;

use gathering_core::Environment;
use gathering_core::config::{self, ConfigError, Vars};

/// Who may execute code on the server through the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecAccess {
    Admin,
    Users,
    Off,
}

#[derive(Debug, Clone)]
pub struct WorkspaceConfig {
    pub exec: ExecAccess,
    pub shell: String,
    pub terminals_per_user: usize,
    pub terminals_total: usize,
    pub terminal_idle: Duration,
    pub python_timeout: Duration,
    pub cache_ttl: Duration,
    pub lsp: LspConfig,
}

#[derive(Debug, Clone)]
pub struct LspConfig {
    pub python: Vec<String>,
    pub typescript: Vec<String>,
    pub rust: Vec<String>,
    pub max_servers: usize,
    pub idle: Duration,
    pub request_timeout: Duration,
}

fn command(vars: &impl Vars, name: &str, default: &str) -> Result<Vec<String>, ConfigError> {
    let raw = config::string_or(vars, name, default);
    let argv: Vec<String> = raw.split_whitespace().map(str::to_owned).collect();
    if argv.is_empty() {
        return Err(ConfigError::new(name, "must name a command"));
    }
    Ok(argv)
}

fn at_least_one(vars: &impl Vars, name: &str, default: u64) -> Result<u64, ConfigError> {
    let n: u64 = config::parse_or(vars, name, default)?;
    if n == 0 {
        Err(ConfigError::new(name, "must be at least 1"))
    } else {
        Ok(n)
    }
}

impl WorkspaceConfig {
    pub fn from_vars(vars: &impl Vars, env: Environment) -> Result<Self, ConfigError> {
        let exec = match vars.get("GATHERING_WORKSPACE_EXEC").as_deref() {
            None if env.is_development() => ExecAccess::Users,
            None => ExecAccess::Admin,
            Some("admin") => ExecAccess::Admin,
            Some("users") => ExecAccess::Users,
            Some("off") => ExecAccess::Off,
            Some(_) => {
                return Err(ConfigError::new(
                    "GATHERING_WORKSPACE_EXEC",
                    "must be admin, users or off",
                ));
            }
        };
        let shell = vars
            .get("TERMINAL_SHELL")
            .or_else(|| vars.get("SHELL"))
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "/bin/bash".into());
        Ok(Self {
            exec,
            shell,
            terminals_per_user: at_least_one(vars, "TERMINAL_MAX_PER_USER", 3)? as usize,
            terminals_total: at_least_one(vars, "TERMINAL_MAX_TOTAL", 32)? as usize,
            terminal_idle: Duration::from_secs(at_least_one(vars, "TERMINAL_IDLE_SECONDS", 900)?),
            python_timeout: Duration::from_secs(at_least_one(
                vars,
                "WORKSPACE_PYTHON_TIMEOUT_SECONDS",
                30,
            )?),
            cache_ttl: Duration::from_secs(at_least_one(vars, "WORKSPACE_CACHE_TTL_SECONDS", 30)?),
            lsp: LspConfig {
                python: command(vars, "LSP_PYTHON_COMMAND", "pylsp")?,
                typescript: command(
                    vars,
                    "LSP_TYPESCRIPT_COMMAND",
                    "typescript-language-server --stdio",
                )?,
                rust: command(vars, "LSP_RUST_COMMAND", "rust-analyzer")?,
                max_servers: at_least_one(vars, "LSP_MAX_SERVERS", 8)? as usize,
                idle: Duration::from_secs(at_least_one(vars, "LSP_IDLE_SECONDS", 600)?),
                request_timeout: Duration::from_millis(at_least_one(
                    vars,
                    "LSP_REQUEST_TIMEOUT_MS",
                    15_000,
                )?),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn exec_defaults_to_admin_outside_development() {
        let none: HashMap<String, String> = HashMap::new();
        let dev = WorkspaceConfig::from_vars(&none, Environment::Development).unwrap();
        assert_eq!(dev.exec, ExecAccess::Users);
        let prod = WorkspaceConfig::from_vars(&none, Environment::Production).unwrap();
        assert_eq!(prod.exec, ExecAccess::Admin);
        let bad = HashMap::from([("GATHERING_WORKSPACE_EXEC".to_owned(), "all".to_owned())]);
        assert_eq!(
            WorkspaceConfig::from_vars(&bad, Environment::Development)
                .unwrap_err()
                .var,
            "GATHERING_WORKSPACE_EXEC"
        );
    }
}
