//! The `email` skill: send over SMTP (TLS), list and read over IMAP (TLS), on the servers the
//! operator configured ([`settings`]); an agent never names a host.
//!
//! - `email_send` (network; reads attachments from the project): asks for confirmation —
//!   mail leaves in the operator's name. Limits: [`MAX_RECIPIENTS`] recipients, body and
//!   attachment sizes, [`MAX_ATTACHMENTS`] attachments.
//! - `email_folders`, `email_list` (folder, since, limit ≤ [`MAX_LIST`]), `email_read` (uid;
//!   message ≤ [`MAX_READ_BYTES`], text cut at [`MAX_TEXT_CHARS`]): read-only (EXAMINE,
//!   BODY.PEEK).

mod imap;
pub mod settings;
mod smtp;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use serde::Deserialize;
use serde_json::{Value, json};

use self::settings::{
    MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS, MAX_ATTACHMENTS_BYTES, MAX_BODY_BYTES, MAX_LIST,
    MAX_READ_BYTES, MAX_RECIPIENTS, MAX_TEXT_CHARS,
};
use super::{Services, parse, with};
use crate::context::CallContext;
use crate::definition::{Category, ToolDefinition};
use crate::error::ToolError;
use crate::files;
use crate::permission::Permission;
use crate::registry::{Registry, ToolOutput};
use crate::response::ConfirmationType;

const SKILL: &str = "email";

fn def(name: &str, description: &str) -> ToolDefinition {
    ToolDefinition::new(name, SKILL, Category::Communication, description)
        .timeout(Duration::from_secs(60))
}

fn folder_schema() -> Value {
    // No control characters: the name goes into an IMAP command (quoted by imap::wire, which
    // also refuses CR, LF and NUL).
    json!({"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^\\x00-\\x1f\\x7f]+$"})
}

pub fn register(reg: &Registry, svc: &Arc<Services>) -> Result<(), ToolError> {
    let addresses = json!({
        "type": "array",
        "items": {"type": "string", "minLength": 3, "maxLength": 320},
        "maxItems": MAX_RECIPIENTS,
    });
    reg.register(
        def("email_send", "Send an email (text, optional HTML alternative, attachments from the project) through the operator-configured SMTP server")
            .permissions(&[Permission::Network, Permission::Read])
            .dangerous(ConfirmationType::User)
            .schema(json!({
                "type": "object",
                "properties": {
                    "to": {"type": "array", "items": {"type": "string", "minLength": 3, "maxLength": 320}, "minItems": 1, "maxItems": MAX_RECIPIENTS},
                    "cc": addresses,
                    "bcc": addresses,
                    "reply_to": {"type": "string", "minLength": 3, "maxLength": 320},
                    "subject": {"type": "string", "maxLength": 998},
                    "body": {"type": "string", "maxLength": MAX_BODY_BYTES},
                    "html": {"type": "string", "maxLength": MAX_BODY_BYTES},
                    "attachments": {
                        "type": "array",
                        "maxItems": MAX_ATTACHMENTS,
                        "items": {
                            "type": "object",
                            "properties": {
                                "path": {"type": "string", "minLength": 1, "maxLength": 4096},
                                "name": {"type": "string", "minLength": 1, "maxLength": 255},
                                "content_type": {"type": "string", "minLength": 3, "maxLength": 255},
                            },
                            "required": ["path"],
                            "additionalProperties": false,
                        },
                    },
                },
                "required": ["to", "subject", "body"],
                "additionalProperties": false,
            }))
            .output("{message_id, recipients, server_reply}"),
        with(svc.clone(), email_send),
    )?;
    reg.register(
        def(
            "email_folders",
            "List the folders (mailboxes) of the operator-configured IMAP account",
        )
        .permissions(&[Permission::Network, Permission::Read])
        .schema(json!({"type": "object", "properties": {}, "additionalProperties": false}))
        .output("{folders[]}"),
        with(svc.clone(), email_folders),
    )?;
    reg.register(
        def("email_list", "List the newest messages of a folder (default INBOX) of the operator-configured IMAP account, optionally received since a date; headers only, nothing marked read")
            .permissions(&[Permission::Network, Permission::Read])
            .schema(json!({
                "type": "object",
                "properties": {
                    "folder": folder_schema(),
                    "since": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIST},
                },
                "additionalProperties": false,
            }))
            .output("{folder, total, messages[{uid, subject, from[], to[], cc[], date, message_id, size, flags[], received}]}"),
        with(svc.clone(), email_list),
    )?;
    reg.register(
        def("email_read", "Read one message (by uid) of a folder of the operator-configured IMAP account: headers, text body, attachment list; nothing marked read")
            .permissions(&[Permission::Network, Permission::Read])
            .schema(json!({
                "type": "object",
                "properties": {
                    "uid": {"type": "integer", "minimum": 1, "maximum": u32::MAX},
                    "folder": folder_schema(),
                },
                "required": ["uid"],
                "additionalProperties": false,
            }))
            .output(format!("{{uid, subject, from[], to[], cc[], date, message_id, in_reply_to, size, text (≤ {MAX_TEXT_CHARS} chars), truncated, has_html, attachments[{{name, content_type, size}}]}}; messages over {MAX_READ_BYTES} bytes are refused")),
        with(svc.clone(), email_read),
    )?;
    Ok(())
}

#[derive(Deserialize)]
struct AttachmentInput {
    path: String,
    name: Option<String>,
    content_type: Option<String>,
}

#[derive(Deserialize)]
struct SendInput {
    to: Vec<String>,
    #[serde(default)]
    cc: Vec<String>,
    #[serde(default)]
    bcc: Vec<String>,
    reply_to: Option<String>,
    subject: String,
    body: String,
    html: Option<String>,
    #[serde(default)]
    attachments: Vec<AttachmentInput>,
}

fn mailbox(raw: &str) -> Result<Mailbox, ToolError> {
    raw.parse()
        .map_err(|_| ToolError::InvalidInput(format!("'{raw}' is not an email address")))
}

fn mailboxes(raw: &[String]) -> Result<Vec<Mailbox>, ToolError> {
    raw.iter().map(|r| mailbox(r)).collect()
}

async fn email_send(
    svc: Arc<Services>,
    ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: SendInput = parse(input)?;
    let settings = &svc.config.email;
    let recipients = i.to.len() + i.cc.len() + i.bcc.len();
    if recipients > MAX_RECIPIENTS {
        return Err(ToolError::InvalidInput(format!(
            "{recipients} recipients (to, cc and bcc together); at most {MAX_RECIPIENTS}"
        )));
    }
    let body_bytes = i.body.len() + i.html.as_ref().map_or(0, String::len);
    if body_bytes > MAX_BODY_BYTES {
        return Err(ToolError::TooLarge(format!(
            "the text and HTML bodies are {body_bytes} bytes; at most {MAX_BODY_BYTES}"
        )));
    }
    let (to, cc, bcc) = (mailboxes(&i.to)?, mailboxes(&i.cc)?, mailboxes(&i.bcc)?);
    let reply_to = i.reply_to.as_deref().map(mailbox).transpose()?;
    let mut attachments = Vec::with_capacity(i.attachments.len());
    let mut total = 0usize;
    if !i.attachments.is_empty() {
        let root = ctx.root()?;
        for a in i.attachments {
            let (abs, bytes) = files::read_bytes(root, &a.path).await?;
            if bytes.len() > MAX_ATTACHMENT_BYTES {
                return Err(ToolError::TooLarge(format!(
                    "attachment '{}' is {} bytes; at most {MAX_ATTACHMENT_BYTES}",
                    a.path,
                    bytes.len()
                )));
            }
            total += bytes.len();
            if total > MAX_ATTACHMENTS_BYTES {
                return Err(ToolError::TooLarge(format!(
                    "the attachments add up to more than {MAX_ATTACHMENTS_BYTES} bytes"
                )));
            }
            let name = a.name.unwrap_or_else(|| {
                abs.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "attachment".into())
            });
            attachments.push(smtp::Attached {
                name,
                content_type: a
                    .content_type
                    .unwrap_or_else(|| "application/octet-stream".into()),
                bytes,
            });
        }
    }
    let (message, message_id) = smtp::build(
        settings,
        smtp::Outgoing {
            to,
            cc,
            bcc,
            reply_to,
            subject: i.subject,
            body: i.body,
            html: i.html,
            attachments,
        },
    )?;
    let reply = smtp::send(settings, message).await?;
    Ok(ToolOutput::ok(
        format!("sent to {recipients} recipient(s)"),
        json!({"message_id": message_id, "recipients": recipients, "server_reply": reply}),
    ))
}

async fn email_folders(
    svc: Arc<Services>,
    _ctx: CallContext,
    _input: Value,
) -> Result<ToolOutput, ToolError> {
    let mut session = imap::connect(&svc.config.email).await?;
    let folders = imap::folders(&mut session).await;
    let _ = session.logout().await;
    let folders = folders?;
    Ok(ToolOutput::ok(
        format!("{} folder(s)", folders.len()),
        json!({"folders": folders}),
    ))
}

#[derive(Deserialize)]
struct ListInput {
    folder: Option<String>,
    since: Option<String>,
    limit: Option<u32>,
}

async fn email_list(
    svc: Arc<Services>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: ListInput = parse(input)?;
    let folder = i.folder.unwrap_or_else(|| "INBOX".into());
    let since = i
        .since
        .as_deref()
        .map(|s| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| ToolError::InvalidInput(format!("'{s}' is not a date (YYYY-MM-DD)")))
        })
        .transpose()?;
    let limit = i.limit.unwrap_or(20).clamp(1, MAX_LIST);
    let mut session = imap::connect(&svc.config.email).await?;
    let listed = imap::list(&mut session, &folder, since, limit).await;
    let _ = session.logout().await;
    let (messages, total) = listed?;
    Ok(ToolOutput::ok(
        format!("{} of {total} message(s) in {folder}", messages.len()),
        json!({"folder": folder, "total": total, "messages": messages}),
    ))
}

#[derive(Deserialize)]
struct ReadInput {
    uid: u32,
    folder: Option<String>,
}

async fn email_read(
    svc: Arc<Services>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: ReadInput = parse(input)?;
    let folder = i.folder.unwrap_or_else(|| "INBOX".into());
    let mut session = imap::connect(&svc.config.email).await?;
    let read = imap::read(&mut session, &folder, i.uid).await;
    let _ = session.logout().await;
    let message = read?;
    Ok(ToolOutput::ok(
        format!(
            "message {}: {}",
            i.uid,
            message["subject"].as_str().unwrap_or("(no subject)")
        ),
        message,
    ))
}
