//! Typed reads of environment variables.
//!
//! Services are configured by environment variables only. A value that does not parse stops
//! start-up with a message naming the variable, so an operator never has to guess which
//! setting is wrong.

use std::fmt::Display;
use std::str::FromStr;

/// A variable holds a value its service cannot use.
#[derive(Debug, thiserror::Error)]
#[error("invalid value for {var}: {reason}")]
pub struct ConfigError {
    pub var: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(var: &str, reason: impl Into<String>) -> Self {
        Self {
            var: var.to_owned(),
            reason: reason.into(),
        }
    }
}

/// A source of variables: the process environment in services, a map in tests.
pub trait Vars {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Vars for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl Vars for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        self.get(name).cloned().filter(|v| !v.trim().is_empty())
    }
}

/// Reads `name` and parses it, or returns `default` when it is unset or blank.
pub fn parse_or<T>(vars: &impl Vars, name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    Ok(parse_opt(vars, name)?.unwrap_or(default))
}

/// Reads `name` and parses it; `None` when it is unset or blank.
pub fn parse_opt<T>(vars: &impl Vars, name: &str) -> Result<Option<T>, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match vars.get(name) {
        None => Ok(None),
        Some(raw) => raw
            .trim()
            .parse::<T>()
            .map(Some)
            .map_err(|e| ConfigError::new(name, format!("'{}' ({e})", raw.trim()))),
    }
}

/// Reads a boolean: `true/false`, `1/0`, `yes/no`, `on/off`, case-insensitive.
pub fn bool_or(vars: &impl Vars, name: &str, default: bool) -> Result<bool, ConfigError> {
    match vars.get(name) {
        None => Ok(default),
        Some(raw) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            other => Err(ConfigError::new(
                name,
                format!("'{other}' (expected true or false)"),
            )),
        },
    }
}

/// Reads a string, or `default`.
pub fn string_or(vars: &impl Vars, name: &str, default: &str) -> String {
    vars.get(name).unwrap_or_else(|| default.to_owned())
}

/// Reads a comma-separated list; blank items are dropped.
pub fn list(vars: &impl Vars, name: &str) -> Vec<String> {
    vars.get(name)
        .map(|raw| {
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// `GATHERING_DATA_DIR`, default `.data` under the working directory: where a deployment keeps
/// its files (project folders by default, the disk `/health/checks` watches).
pub fn data_dir(vars: &impl Vars) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(
        vars.get("GATHERING_DATA_DIR")
            .unwrap_or_else(|| ".data".to_owned()),
    );
    if dir.is_absolute() {
        dir
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(&dir))
            .unwrap_or(dir)
    }
}

/// The database URL every service needs.
pub fn database_url(vars: &impl Vars) -> Result<String, ConfigError> {
    let url = vars.get("DATABASE_URL").ok_or_else(|| {
        ConfigError::new(
            "DATABASE_URL",
            "is not set (run scripts/pg.sh start for a project-local database)",
        )
    })?;
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(ConfigError::new(
            "DATABASE_URL",
            "expected a postgres:// or postgresql:// URL",
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::net::SocketAddr;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn bad_value_names_the_variable() {
        let v = vars(&[("EDGE_ADDR", "not-an-address")]);
        let err =
            parse_or::<SocketAddr>(&v, "EDGE_ADDR", "0.0.0.0:8000".parse().unwrap()).unwrap_err();
        assert_eq!(err.var, "EDGE_ADDR");
        assert!(err.to_string().contains("EDGE_ADDR"), "{err}");
        assert!(err.to_string().contains("not-an-address"), "{err}");
    }

    #[test]
    fn blank_means_default() {
        let v = vars(&[("N", "  ")]);
        assert_eq!(parse_or(&v, "N", 7u32).unwrap(), 7);
        assert!(bool_or(&v, "N", true).unwrap());
    }

    #[test]
    fn booleans_and_lists() {
        let v = vars(&[("B", "Yes"), ("L", "a, b,,c"), ("X", "maybe")]);
        assert!(bool_or(&v, "B", false).unwrap());
        assert_eq!(list(&v, "L"), vec!["a", "b", "c"]);
        assert_eq!(bool_or(&v, "X", false).unwrap_err().var, "X");
    }

    #[test]
    fn database_url_must_be_postgres() {
        assert!(database_url(&vars(&[])).is_err());
        assert!(database_url(&vars(&[("DATABASE_URL", "mysql://x")])).is_err());
        assert!(database_url(&vars(&[("DATABASE_URL", "postgres://u@h/d")])).is_ok());
    }
}
