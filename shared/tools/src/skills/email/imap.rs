//! Reading mail over IMAP (implicit TLS) with `async-imap`; messages parsed with
//! `mail-parser`. Mailboxes are opened with EXAMINE and bodies fetched with BODY.PEEK, so
//! reading never changes the mailbox (no \Seen flag set).

use std::time::Duration;

use async_imap::Session;
use futures_util::TryStreamExt;
use mail_parser::{Address, MessageParser, MimeHeaders};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::settings::{CONNECT_TIMEOUT, EmailSettings, MAX_READ_BYTES, MAX_TEXT_CHARS, Server};
use super::tls;
use crate::error::ToolError;

pub type ImapSession = Session<TlsStream<TcpStream>>;

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
    timed("login", CONNECT_TIMEOUT, async {
        let mut client = async_imap::Client::new(stream);
        client
            .read_response()
            .await
            .map_err(|e| imap_error("greeting", e))?
            .ok_or_else(|| imap_error("greeting", "the server closed the connection"))?;
        client
            .login(&server.user, server.password.expose())
            .await
            // The server's answer only; the credentials are never part of the message.
            .map_err(|(e, _)| imap_error("login", e))
    })
    .await
}

/// Every folder (mailbox) name.
pub async fn folders(session: &mut ImapSession) -> Result<Vec<String>, ToolError> {
    let names: Vec<_> = session
        .list(Some(""), Some("*"))
        .await
        .map_err(|e| imap_error("LIST", e))?
        .try_collect()
        .await
        .map_err(|e| imap_error("LIST", e))?;
    Ok(names.iter().map(|n| n.name().to_owned()).collect())
}

/// The newest `limit` messages of `folder` (received on or after `since` when given), newest
/// first, with their headers.
pub async fn list(
    session: &mut ImapSession,
    folder: &str,
    since: Option<chrono::NaiveDate>,
    limit: u32,
) -> Result<(Vec<Value>, usize), ToolError> {
    session
        .examine(folder)
        .await
        .map_err(|e| imap_error(&format!("EXAMINE of '{folder}'"), e))?;
    let query = match since {
        // IMAP's date form: 5-Dec-2026.
        Some(d) => format!("SINCE {}", d.format("%-d-%b-%Y")),
        None => "ALL".to_owned(),
    };
    let mut uids: Vec<u32> = session
        .uid_search(&query)
        .await
        .map_err(|e| imap_error("SEARCH", e))?
        .into_iter()
        .collect();
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
    let fetches: Vec<_> = session
        .uid_fetch(
            &set,
            "(UID RFC822.SIZE FLAGS INTERNALDATE BODY.PEEK[HEADER])",
        )
        .await
        .map_err(|e| imap_error("FETCH", e))?
        .try_collect()
        .await
        .map_err(|e| imap_error("FETCH", e))?;
    let mut out: Vec<(u32, Value)> = Vec::with_capacity(fetches.len());
    for f in &fetches {
        let Some(uid) = f.uid else { continue };
        let parsed = f
            .header()
            .and_then(|h| MessageParser::default().parse_headers(h));
        let mut item = parsed.as_ref().map(headers).unwrap_or_else(|| json!({}));
        item["uid"] = json!(uid);
        item["size"] = json!(f.size);
        item["flags"] = json!(f.flags().map(|fl| format!("{fl:?}")).collect::<Vec<_>>());
        if let Some(d) = f.internal_date() {
            item["received"] = json!(d.to_rfc3339());
        }
        out.push((uid, item));
    }
    out.sort_by_key(|m| std::cmp::Reverse(m.0));
    Ok((out.into_iter().map(|(_, v)| v).collect(), total))
}

/// One message, parsed: headers, text body (cut at [`MAX_TEXT_CHARS`]), attachment list.
pub async fn read(session: &mut ImapSession, folder: &str, uid: u32) -> Result<Value, ToolError> {
    session
        .examine(folder)
        .await
        .map_err(|e| imap_error(&format!("EXAMINE of '{folder}'"), e))?;
    let uid_s = uid.to_string();
    let sizes: Vec<_> = session
        .uid_fetch(&uid_s, "(UID RFC822.SIZE)")
        .await
        .map_err(|e| imap_error("FETCH", e))?
        .try_collect()
        .await
        .map_err(|e| imap_error("FETCH", e))?;
    let size = sizes
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
    let fetches: Vec<_> = session
        .uid_fetch(&uid_s, "(UID BODY.PEEK[])")
        .await
        .map_err(|e| imap_error("FETCH", e))?
        .try_collect()
        .await
        .map_err(|e| imap_error("FETCH", e))?;
    let raw = fetches
        .iter()
        .find(|f| f.uid == Some(uid))
        .and_then(|f| f.body())
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

fn addresses(a: Option<&Address<'_>>) -> Value {
    let Some(a) = a else { return json!([]) };
    a.iter()
        .map(|addr| {
            json!({
                "name": addr.name(),
                "address": addr.address(),
            })
        })
        .collect()
}

fn headers(msg: &mail_parser::Message<'_>) -> Value {
    json!({
        "subject": msg.subject(),
        "from": addresses(msg.from()),
        "to": addresses(msg.to()),
        "cc": addresses(msg.cc()),
        "date": msg.date().map(|d| d.to_rfc3339()),
        "message_id": msg.message_id(),
        "in_reply_to": msg.in_reply_to().as_text(),
    })
}
