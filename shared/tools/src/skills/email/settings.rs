//! Where the email skill's servers and credentials come from: the operator, never the agent.
//! An agent choosing the SMTP host would make GatheRing an open relay and a port scanner
//! (SSRF), so the tools take no host at all; the addresses below are read from the
//! environment once, like the database skill's DSN.
//!
//! | variable | meaning |
//! |---|---|
//! | `GATHERING_EMAIL_SMTP_URL` | `smtps://user:password@host:465` (implicit TLS) or `smtp://user:password@host:587` (STARTTLS, required: never plain text) |
//! | `GATHERING_EMAIL_IMAP_URL` | `imaps://user:password@host:993` (implicit TLS) |
//! | `GATHERING_EMAIL_FROM` | the sender address of `email_send` (default: the SMTP user when it is an address) |
//! | `GATHERING_EMAIL_CA_FILE` | PEM file of a CA trusted in addition to the system's (a private mail server) |
//!
//! User names and passwords are percent-decoded from the URLs. The URLs are kept as
//! [`Secret`]s (never printed; `Debug` masks them).

use std::time::Duration;

use gathering_core::Secret;
use gathering_core::config::{ConfigError, Vars};
use url::Url;

/// Most recipients (to + cc + bcc) of one message.
pub const MAX_RECIPIENTS: usize = 20;
/// Largest text body of one message sent.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest attachment, and largest sum of the attachments of one message.
pub const MAX_ATTACHMENT_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_ATTACHMENTS_BYTES: usize = 10 * 1024 * 1024;
pub const MAX_ATTACHMENTS: usize = 10;
/// Most messages one list returns.
pub const MAX_LIST: u32 = 100;
/// Largest message `email_read` fetches (its RFC822.SIZE is checked before the body is).
pub const MAX_READ_BYTES: u32 = 10 * 1024 * 1024;
/// Largest text returned by `email_read`; longer bodies are cut (`truncated`).
pub const MAX_TEXT_CHARS: usize = 256 * 1024;
/// Largest single IMAP response: the FETCH of a message of [`MAX_READ_BYTES`] and its framing.
pub const MAX_IMAP_RESPONSE_BYTES: usize = MAX_READ_BYTES as usize + 64 * 1024;
/// Largest sum of the responses to one IMAP command (the headers of [`MAX_LIST`] messages, the
/// folder list).
pub const MAX_IMAP_COMMAND_BYTES: usize = 3 * MAX_READ_BYTES as usize;
/// Connecting, TLS and login, each.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Each IMAP command after login, its responses included.
pub const IMAP_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// One configured server.
#[derive(Clone)]
pub struct Server {
    pub host: String,
    pub port: u16,
    /// Implicit TLS (`smtps`, `imaps`); otherwise STARTTLS, which is required.
    pub implicit_tls: bool,
    pub user: String,
    pub password: Secret,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("implicit_tls", &self.implicit_tls)
            .field("user", &"***")
            .finish()
    }
}

#[derive(Debug, Clone, Default)]
pub struct EmailSettings {
    pub smtp: Option<Server>,
    pub imap: Option<Server>,
    pub from: Option<String>,
    /// PEM of extra trusted CAs (read at start-up from `GATHERING_EMAIL_CA_FILE`).
    pub ca_pem: Option<Vec<u8>>,
}

impl EmailSettings {
    pub fn from_vars(vars: &impl Vars) -> Result<Self, ConfigError> {
        let smtp = match vars
            .get("GATHERING_EMAIL_SMTP_URL")
            .filter(|s| !s.is_empty())
        {
            Some(raw) => Some(
                parse_server(&raw, &[("smtps", 465, true), ("smtp", 587, false)])
                    .map_err(|e| ConfigError::new("GATHERING_EMAIL_SMTP_URL", e))?,
            ),
            None => None,
        };
        let imap = match vars
            .get("GATHERING_EMAIL_IMAP_URL")
            .filter(|s| !s.is_empty())
        {
            Some(raw) => Some(
                parse_server(&raw, &[("imaps", 993, true)])
                    .map_err(|e| ConfigError::new("GATHERING_EMAIL_IMAP_URL", e))?,
            ),
            None => None,
        };
        let ca_pem = match vars
            .get("GATHERING_EMAIL_CA_FILE")
            .filter(|s| !s.is_empty())
        {
            Some(path) => Some(std::fs::read(&path).map_err(|e| {
                ConfigError::new(
                    "GATHERING_EMAIL_CA_FILE",
                    format!("cannot read {path}: {e}"),
                )
            })?),
            None => None,
        };
        let from = vars
            .get("GATHERING_EMAIL_FROM")
            .filter(|s| !s.is_empty())
            .or_else(|| {
                smtp.as_ref()
                    .map(|s| s.user.clone())
                    .filter(|u| u.contains('@'))
            });
        if let Some(from) = &from
            && from.parse::<lettre::message::Mailbox>().is_err()
        {
            return Err(ConfigError::new(
                "GATHERING_EMAIL_FROM",
                "is not an email address",
            ));
        }
        Ok(Self {
            smtp,
            imap,
            from,
            ca_pem,
        })
    }
}

/// Parses `scheme://user:password@host:port` for one of `schemes` (name, default port,
/// implicit TLS). The error never repeats the URL (it holds a password).
pub fn parse_server(raw: &str, schemes: &[(&str, u16, bool)]) -> Result<Server, String> {
    let url = Url::parse(raw).map_err(|_| "is not a URL".to_string())?;
    let names: Vec<&str> = schemes.iter().map(|s| s.0).collect();
    let &(_, default_port, implicit_tls) = schemes
        .iter()
        .find(|s| s.0 == url.scheme())
        .ok_or_else(|| format!("scheme must be one of {}", names.join(", ")))?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("has no host")?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| "user or password is not UTF-8 once decoded".to_string())
    };
    let user = decode(url.username())?;
    let password = decode(url.password().unwrap_or(""))?;
    if user.is_empty() || password.is_empty() {
        return Err("needs a user and a password (scheme://user:password@host:port)".into());
    }
    Ok(Server {
        host,
        port: url.port().unwrap_or(default_port),
        implicit_tls,
        user,
        password: Secret::new(password),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_parse_and_errors_do_not_leak_the_password() {
        let s = parse_server(
            "smtp://bot%40example.org:p%40ss@mail.example.org",
            &[("smtps", 465, true), ("smtp", 587, false)],
        )
        .unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.implicit_tls, s.user.as_str()),
            ("mail.example.org", 587, false, "bot@example.org")
        );
        assert_eq!(s.password.expose(), "p@ss");
        assert!(!format!("{s:?}").contains("p@ss"));
        let e = parse_server("http://u:secret@h", &[("imaps", 993, true)]).unwrap_err();
        assert!(!e.contains("secret"), "{e}");
        assert!(parse_server("imaps://h:993", &[("imaps", 993, true)]).is_err());
    }
}
