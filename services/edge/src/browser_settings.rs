//! Settings of the edge's browser side: cookie sessions (`Secure` or not), the origin browsers
//! reach the edge at (for the CSRF check) and the dashboard build it may serve.

use std::path::PathBuf;

use gathering_core::config::Vars;
use gathering_core::{ConfigError, Environment};

#[derive(Debug, Clone, Default)]
pub struct BrowserSettings {
    /// `GATHERING_PUBLIC_URL` (optional): the URL browsers reach the edge at, e.g. when a
    /// proxy in front rewrites `Host`. Its origin (`scheme://host[:port]`) counts as the edge's
    /// own besides the request's `Host`.
    pub public_origin: Option<String>,
    /// Session cookies carry `Secure` unless `GATHERING_ENV=development` (browsers refuse
    /// `Secure` cookies over plain HTTP, which is what a developer's machine uses).
    pub secure_cookies: bool,
    /// `GATHERING_DASHBOARD_DIR` (optional): a dashboard build served at `/` for browsers.
    pub dashboard_dir: Option<PathBuf>,
}

impl BrowserSettings {
    pub fn from_vars(vars: &impl Vars, env: Environment) -> Result<Self, ConfigError> {
        let public_origin = match vars.get("GATHERING_PUBLIC_URL").filter(|v| !v.is_empty()) {
            None => None,
            Some(url) => Some(origin_of(&url).ok_or_else(|| {
                ConfigError::new(
                    "GATHERING_PUBLIC_URL",
                    "must be an absolute http(s) URL such as https://gathering.example.com",
                )
            })?),
        };
        let dashboard_dir = vars
            .get("GATHERING_DASHBOARD_DIR")
            .filter(|v| !v.trim().is_empty())
            .map(PathBuf::from);
        Ok(Self {
            public_origin,
            secure_cookies: !env.is_development(),
            dashboard_dir,
        })
    }
}

/// `scheme://authority` of an absolute http(s) URL, lower-cased, without path, query or a
/// trailing slash: the form browsers send in `Origin`.
pub fn origin_of(url: &str) -> Option<String> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') || authority.contains('\\') {
        return None;
    }
    Some(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("https://Gathering.Example.com/app/").as_deref(),
            Some("https://gathering.example.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8000").as_deref(),
            Some("http://127.0.0.1:8000")
        );
        assert_eq!(origin_of("ftp://x"), None);
        assert_eq!(origin_of("https://user@host"), None);
        assert_eq!(origin_of("/relative"), None);
    }

    #[test]
    fn secure_cookies_outside_development_and_checked_variables() {
        use std::collections::HashMap;
        let vars = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let dev = BrowserSettings::from_vars(&vars(&[]), Environment::Development).unwrap();
        assert!(!dev.secure_cookies && dev.dashboard_dir.is_none());
        let staging = BrowserSettings::from_vars(
            &vars(&[("GATHERING_DASHBOARD_DIR", "/srv/dist")]),
            Environment::Staging,
        )
        .unwrap();
        assert!(staging.secure_cookies);
        assert_eq!(staging.dashboard_dir, Some(PathBuf::from("/srv/dist")));
        let bad = BrowserSettings::from_vars(
            &vars(&[("GATHERING_PUBLIC_URL", "gathering.example.com")]),
            Environment::Development,
        )
        .unwrap_err();
        assert_eq!(bad.var, "GATHERING_PUBLIC_URL");
    }
}
