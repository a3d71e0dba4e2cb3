//! Reading mail over IMAP (implicit TLS) with a small client of our own over the tokio-rustls
//! stream ([`wire`]: tagged commands, responses framed with their literals and parsed with
//! `imap-proto`); messages parsed with `mail-parser`. Mailboxes are opened with EXAMINE and
//! bodies fetched with BODY.PEEK, so reading never changes the mailbox (no \Seen flag set).
//!
//! The skill needs six commands (LOGIN, LIST, EXAMINE, UID SEARCH, UID FETCH, LOGOUT); a full
//! client such as `async-imap` would bring second versions of async-channel, event-listener
//! and thiserror into the dependency graph (docs/architecture.md).

mod message;
mod wire;

use std::time::Duration;

use imap_proto::{MailboxDatum, Response};
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use self::message::{fetched, headers};
use self::wire::{Connection, quote};
use super::settings::{
    CONNECT_TIMEOUT, EmailSettings, IMAP_COMMAND_TIMEOUT, MAX_READ_BYTES, MAX_TEXT_CHARS, Server,
};
use super::tls;
use crate::error::ToolError;

/// A logged-in connection.
pub struct ImapSession {
    conn: Connection<TlsStream<TcpStream>>,
}

impl ImapSession {
    /// LOGOUT and close (nothing to say when the connection broke).
    pub async fn logout(mut self) -> Result<(), ToolError> {
        self.conn.logout(CONNECT_TIMEOUT).await
    }
}

fn imap_error(what: &str, e: impl std::fmt::Display) -> ToolError {
    ToolError::Failed(format!("IMAP {what} failed: {e}"))
}

async fn timed<T>(
    what: &str,
    limit: Duration,
    f: impl Future<Output = Result<T, ToolError>>,
) -> Result<T, ToolError> {
    tokio::time::timeout(limit, f).await.map_err(|_| {
        ToolError::Failed(format!("IMAP {what} timed out after {} s", limit.as_secs()))
    })?
}

/// Connects, checks the server's certificate, logs in.
pub async fn connect(settings: &EmailSettings) -> Result<ImapSession, ToolError> {
    let server: &Server = settings.imap.as_ref().ok_or_else(|| {
        ToolError::InvalidInput(
            "no IMAP server is configured for the email skill (the operator sets GATHERING_EMAIL_IMAP_URL)".into(),
        )
    })?;
    // The credentials are never part of a message: the error names the setting only.
    let credentials = "the IMAP user name or password (GATHERING_EMAIL_IMAP_URL)";
    let login = format!(
        "LOGIN {} {}",
        quote(credentials, &server.user)?,
        quote(credentials, server.password.expose())?
    );
    let config = tls::client_config(settings.ca_pem.as_deref())?;
    let name = rustls::pki_types::ServerName::try_from(server.host.clone())
        .map_err(|_| ToolError::Failed("the IMAP host is not a valid server name".into()))?;
    let stream = timed("connection", CONNECT_TIMEOUT, async {
        let tcp = TcpStream::connect((server.host.as_str(), server.port))
            .await
            .map_err(|e| imap_error("connection", e))?;
        TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| imap_error("TLS handshake", e))
    })
    .await?;
    let mut conn = Connection::new(stream);
    conn.greeting(CONNECT_TIMEOUT).await?;
    conn.run("login", &login, CONNECT_TIMEOUT).await?;
    Ok(ImapSession { conn })
}

/// Every folder (mailbox) name.
pub async fn folders(session: &mut ImapSession) -> Result<Vec<String>, ToolError> {
    let responses = session
        .conn
        .run("LIST", r#"LIST "" "*""#, IMAP_COMMAND_TIMEOUT)
        .await?;
    Ok(responses
        .iter()
        .filter_map(|r| match r {
            Response::MailboxData(MailboxDatum::List(l)) => Some(l.name.to_string()),
            _ => None,
        })
        .collect())
}

/// Opens `folder` read-only.
async fn examine(session: &mut ImapSession, folder: &str) -> Result<(), ToolError> {
    let command = format!("EXAMINE {}", quote("the folder name", folder)?);
    session
        .conn
        .run(
            &format!("EXAMINE of '{folder}'"),
            &command,
            IMAP_COMMAND_TIMEOUT,
        )
        .await
        .map(drop)
}

/// The UIDs a `UID SEARCH` with `criteria` finds, each once.
async fn search(session: &mut ImapSession, criteria: &str) -> Result<Vec<u32>, ToolError> {
    let responses = session
        .conn
        .run(
            "SEARCH",
            &format!("UID SEARCH {criteria}"),
            IMAP_COMMAND_TIMEOUT,
        )
        .await?;
    let mut uids: Vec<u32> = responses
        .iter()
        .filter_map(|r| match r {
            Response::MailboxData(MailboxDatum::Search(uids)) => Some(uids),
            _ => None,
        })
        .flatten()
        .copied()
        .collect();
    uids.sort_unstable();
    uids.dedup();
    Ok(uids)
}

/// `UID FETCH` of `set` (comma-separated UIDs) for `items`.
async fn fetch(
    session: &mut ImapSession,
    set: &str,
    items: &str,
) -> Result<Vec<Response<'static>>, ToolError> {
    session
        .conn
        .run(
            "FETCH",
            &format!("UID FETCH {set} {items}"),
            IMAP_COMMAND_TIMEOUT,
        )
        .await
}

/// The newest `limit` messages of `folder` (received on or after `since` when given), newest
/// first, with their headers.
pub async fn list(
    session: &mut ImapSession,
    folder: &str,
    since: Option<chrono::NaiveDate>,
    limit: u32,
) -> Result<(Vec<Value>, usize), ToolError> {
    examine(session, folder).await?;
    let criteria = match since {
        // IMAP's date form: 5-Dec-2026.
        Some(d) => format!("SINCE {}", d.format("%-d-%b-%Y")),
        None => "ALL".to_owned(),
    };
    let mut uids = search(session, &criteria).await?;
    let total = uids.len();
    uids.sort_unstable_by_key(|u| std::cmp::Reverse(*u));
    uids.truncate(limit as usize);
    if uids.is_empty() {
        return Ok((Vec::new(), total));
    }
    let set = uids
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let responses = fetch(
        session,
        &set,
        "(UID RFC822.SIZE FLAGS INTERNALDATE BODY.PEEK[HEADER])",
    )
    .await?;
    let mut out: Vec<(u32, Value)> = Vec::with_capacity(uids.len());
    for f in fetched(&responses) {
        let Some(uid) = f.uid else { continue };
        let parsed = f
            .header
            .and_then(|h| MessageParser::default().parse_headers(h));
        let mut item = parsed.as_ref().map(headers).unwrap_or_else(|| json!({}));
        item["uid"] = json!(uid);
        item["size"] = json!(f.size);
        item["flags"] = json!(f.flags);
        if let Some(d) = f.received() {
            item["received"] = json!(d);
        }
        out.push((uid, item));
    }
    out.sort_by_key(|m| std::cmp::Reverse(m.0));
    Ok((out.into_iter().map(|(_, v)| v).collect(), total))
}

/// One message, parsed: headers, text body (cut at [`MAX_TEXT_CHARS`]), attachment list.
pub async fn read(session: &mut ImapSession, folder: &str, uid: u32) -> Result<Value, ToolError> {
    examine(session, folder).await?;
    let uid_s = uid.to_string();
    let sizes = fetch(session, &uid_s, "(UID RFC822.SIZE)").await?;
    let size = fetched(&sizes)
        .iter()
        .find(|f| f.uid == Some(uid))
        .ok_or_else(|| ToolError::Missing(format!("no message with uid {uid} in '{folder}'")))?
        .size
        .unwrap_or(0);
    if size > MAX_READ_BYTES {
        return Err(ToolError::TooLarge(format!(
            "message {uid} is {size} bytes, more than the limit of {MAX_READ_BYTES}"
        )));
    }
    let bodies = fetch(session, &uid_s, "(UID BODY.PEEK[])").await?;
    let raw = fetched(&bodies)
        .iter()
        .find(|f| f.uid == Some(uid))
        .and_then(|f| f.body)
        .ok_or_else(|| ToolError::Missing(format!("message {uid} has no body")))?;
    let msg = MessageParser::default()
        .parse(raw)
        .ok_or_else(|| ToolError::Failed(format!("message {uid} does not parse")))?;
    let mut out = headers(&msg);
    let text = msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
    let truncated = text.chars().count() > MAX_TEXT_CHARS;
    out["uid"] = json!(uid);
    out["size"] = json!(size);
    out["text"] = json!(text.chars().take(MAX_TEXT_CHARS).collect::<String>());
    out["truncated"] = json!(truncated);
    out["has_html"] = json!(msg.html_body_count() > 0);
    out["attachments"] = msg
        .attachments()
        .map(|a| {
            json!({
                "name": a.attachment_name(),
                "content_type": a.content_type().map(|c| match c.subtype() {
                    Some(s) => format!("{}/{s}", c.ctype()),
                    None => c.ctype().to_owned(),
                }),
                "size": a.contents().len(),
            })
        })
        .collect();
    Ok(out)
}
