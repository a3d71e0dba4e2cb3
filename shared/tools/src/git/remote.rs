//! Which remotes the git tools of agents may talk to: the outbound guard's rules applied to
//! git's own transports, since git (not our HTTP client) opens the connections.
//!
//! - `http(s)://` URLs pass the guard's URL check, then their host is resolved and every
//!   address checked; git is then pinned to exactly those addresses (`http.curloptResolve`), so
//!   a DNS answer that changes between the check and the connection (rebinding) cannot send it
//!   elsewhere, and redirects are not followed (`http.followRedirects=false`).
//! - a local repository (an absolute path or `file://`) only inside the project roots
//!   (`GATHERING_PROJECT_ROOTS`): elsewhere it would read or write another user's files.
//! - every other transport (ssh, `git://`, `ext::`, scp-like `host:path`) is refused: the guard
//!   cannot check them. Submodules are never fetched (their URLs were not checked) and any
//!   other URL git might follow is held to the checked protocol (`protocol.allow=never` plus
//!   the one allowed).

use std::path::PathBuf;

use url::Url;

use super::GitError;
use crate::error::ToolError;
use crate::net::NetGuard;
use crate::project::ProjectRoots;

/// Longest remote URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Submodule URLs come from the repository, not from the checked remote: never followed.
const NO_SUBMODULES: [&str; 2] = ["fetch.recurseSubmodules=false", "submodule.recurse=false"];

/// A remote that passed the rules: the URL to give git and the `-c` settings that hold git to
/// what was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedRemote {
    pub url: String,
    pub config: Vec<String>,
    pub local: bool,
}

fn refused(msg: String) -> GitError {
    GitError::Path(ToolError::Refused(msg))
}

/// Applies the rules to one remote URL.
pub async fn check_remote_url(
    raw: &str,
    guard: &NetGuard,
    roots: &ProjectRoots,
) -> Result<CheckedRemote, GitError> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > MAX_URL_LEN || raw.starts_with('-') {
        return Err(GitError::Invalid(
            "the remote URL is empty or too long".into(),
        ));
    }
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(GitError::Invalid(
            "the remote URL contains spaces or control characters".into(),
        ));
    }
    let lower = raw.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return check_http(raw, guard).await;
    }
    if raw.starts_with('/') || lower.starts_with("file://") {
        return check_local(raw, roots).await;
    }
    Err(refused(format!(
        "remote '{}' refused: only http(s) URLs and repositories inside the project roots are allowed",
        super::redact(raw)
    )))
}

async fn check_http(raw: &str, guard: &NetGuard) -> Result<CheckedRemote, GitError> {
    let url = Url::parse(raw).map_err(|e| GitError::Invalid(format!("invalid remote URL: {e}")))?;
    guard
        .check_url(&url)
        .map_err(|b| refused(format!("remote refused by the outbound guard: {b}")))?;
    let host = url
        .host_str()
        .ok_or_else(|| GitError::Invalid("the remote URL has no host".into()))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| GitError::Invalid("the remote URL has no port".into()))?;
    let addrs = guard.resolve(host, port).await.map_err(|e| {
        refused(format!(
            "remote refused by the outbound guard: {}",
            super::redact(&e.to_string())
        ))
    })?;
    let ips: Vec<String> = addrs
        .iter()
        .map(|a| match a.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        })
        .collect();
    let scheme = url.scheme().to_owned();
    Ok(CheckedRemote {
        url: url.to_string(),
        config: vec![
            format!("http.curloptResolve={host}:{port}:{}", ips.join(",")),
            "http.followRedirects=false".into(),
            "protocol.allow=never".into(),
            format!("protocol.{scheme}.allow=always"),
            NO_SUBMODULES[0].into(),
            NO_SUBMODULES[1].into(),
        ],
        local: false,
    })
}

async fn check_local(raw: &str, roots: &ProjectRoots) -> Result<CheckedRemote, GitError> {
    let path: PathBuf = if raw.to_ascii_lowercase().starts_with("file://") {
        Url::parse(raw)
            .ok()
            .and_then(|u| u.to_file_path().ok())
            .ok_or_else(|| GitError::Invalid(format!("invalid file URL '{raw}'")))?
    } else {
        PathBuf::from(raw)
    };
    let roots = roots.clone();
    let shown = raw.to_owned();
    tokio::task::spawn_blocking(move || {
        let canonical = std::fs::canonicalize(&path)
            .map_err(|e| GitError::Invalid(format!("local remote '{shown}': {e}")))?;
        if !roots.contains(&canonical) {
            return Err(refused(format!(
                "local remote '{shown}' is outside the project roots"
            )));
        }
        Ok(CheckedRemote {
            url: canonical.to_string_lossy().into_owned(),
            config: vec![
                "protocol.allow=never".into(),
                "protocol.file.allow=always".into(),
                NO_SUBMODULES[0].into(),
                NO_SUBMODULES[1].into(),
            ],
            local: true,
        })
    })
    .await
    .map_err(|e| GitError::Failed(format!("remote check failed: {e}")))?
}

/// The URLs a configured remote uses (`push`: its push URLs), each checked; the settings of
/// all of them, to run one git command with.
pub async fn check_configured_remote(
    root: &crate::root::ProjectRoot,
    remote: &str,
    push: bool,
    guard: &NetGuard,
    roots: &ProjectRoots,
) -> Result<Vec<String>, GitError> {
    super::check_remote(remote)?;
    let mut args = vec!["remote", "get-url", "--all"];
    if push {
        args.push("--push");
    }
    args.push(remote);
    let urls = super::run(root, &args, &super::Opts::default())
        .await
        .map_err(|_| GitError::Invalid(format!("the repository has no remote '{remote}'")))?;
    let mut config = Vec::new();
    let mut any = false;
    for url in urls.lines().filter(|l| !l.trim().is_empty()) {
        let checked = check_remote_url(url, guard, roots).await?;
        for c in checked.config {
            if !config.contains(&c) {
                config.push(c);
            }
        }
        any = true;
    }
    if !any {
        return Err(GitError::Invalid(format!("remote '{remote}' has no URL")));
    }
    // Several URLs of different protocols: each allowed one stays allowed, the rest never.
    config.retain(|c| c != "protocol.allow=never");
    config.insert(0, "protocol.allow=never".into());
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn transports_and_hosts_are_checked() {
        let guard = NetGuard::strict();
        let dir = std::env::temp_dir();
        let roots = ProjectRoots::new(vec![dir.join("gathering-no-such-root")]);
        for bad in [
            "ssh://git@example.com/x.git",
            "git@example.com:x.git",
            "git://example.com/x",
            "ext::sh -c id",
            "relative/path",
            "http://127.0.0.1/x.git",
            "http://169.254.169.254/latest",
            "http://[::1]/x",
            "/etc",
            "file:///etc",
            "--upload-pack=touch /tmp/x",
        ] {
            assert!(
                check_remote_url(bad, &guard, &roots).await.is_err(),
                "{bad}"
            );
        }
        let roots = ProjectRoots::new(vec![dir.clone()]);
        let inside = check_remote_url(&dir.to_string_lossy(), &guard, &roots)
            .await
            .unwrap();
        assert!(inside.local);
        assert!(
            inside
                .config
                .contains(&"protocol.file.allow=always".to_owned())
        );
    }

    #[tokio::test]
    async fn http_is_pinned_to_the_checked_addresses() {
        let guard = NetGuard::new(crate::net::Allowlist::parse("127.0.0.1").unwrap());
        let roots = ProjectRoots::new(vec![]);
        let c = check_remote_url("http://127.0.0.1:8123/r.git", &guard, &roots)
            .await
            .unwrap();
        assert_eq!(c.config[0], "http.curloptResolve=127.0.0.1:8123:127.0.0.1");
        assert!(c.config.contains(&"http.followRedirects=false".to_owned()));
        assert!(c.config.contains(&"protocol.http.allow=always".to_owned()));
    }
}
