//! Sending mail over SMTP with `lettre`: implicit TLS (`smtps`) or STARTTLS that must succeed
//! (`Tls::Required`: a server that does not offer it is an error, never a plain-text send),
//! authenticated with the operator's credentials.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::settings::{EmailSettings, Server};
use crate::error::ToolError;

/// The whole SMTP conversation of one message.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// A file to attach, already read from the project.
pub struct Attached {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

pub struct Outgoing {
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
    pub reply_to: Option<Mailbox>,
    pub subject: String,
    pub body: String,
    pub html: Option<String>,
    pub attachments: Vec<Attached>,
}

fn server(settings: &EmailSettings) -> Result<&Server, ToolError> {
    settings.smtp.as_ref().ok_or_else(|| {
        ToolError::InvalidInput(
            "no SMTP server is configured for the email skill (the operator sets GATHERING_EMAIL_SMTP_URL)".into(),
        )
    })
}

fn sender(settings: &EmailSettings) -> Result<Mailbox, ToolError> {
    let from = settings.from.as_deref().ok_or_else(|| {
        ToolError::InvalidInput(
            "no sender address is configured for the email skill (the operator sets GATHERING_EMAIL_FROM)".into(),
        )
    })?;
    from.parse()
        .map_err(|_| ToolError::Failed("GATHERING_EMAIL_FROM is not an email address".into()))
}

/// Builds the message (checked before any connection is made); returns it with its
/// Message-ID (ours, so the caller can find the message again in a mailbox).
pub fn build(settings: &EmailSettings, out: Outgoing) -> Result<(Message, String), ToolError> {
    server(settings)?;
    let from = sender(settings)?;
    let message_id = format!("{}@{}", uuid::Uuid::new_v4().simple(), from.email.domain());
    let mut b = Message::builder()
        .from(from)
        .subject(out.subject)
        .message_id(Some(format!("<{message_id}>")));
    for m in out.to {
        b = b.to(m);
    }
    for m in out.cc {
        b = b.cc(m);
    }
    for m in out.bcc {
        b = b.bcc(m);
    }
    if let Some(r) = out.reply_to {
        b = b.reply_to(r);
    }
    let text = SinglePart::plain(out.body);
    let body = match out.html {
        Some(html) => MultiPart::alternative()
            .singlepart(text)
            .singlepart(SinglePart::html(html)),
        None if out.attachments.is_empty() => {
            return b
                .singlepart(text)
                .map(|m| (m, message_id))
                .map_err(|e| ToolError::InvalidInput(format!("cannot build the message: {e}")));
        }
        None => MultiPart::mixed().singlepart(text),
    };
    let mut mixed = if out.attachments.is_empty() {
        body
    } else {
        MultiPart::mixed().multipart(body)
    };
    for a in out.attachments {
        let ct = ContentType::parse(&a.content_type)
            .unwrap_or(ContentType::parse("application/octet-stream").expect("static type"));
        mixed = mixed.singlepart(Attachment::new(a.name).body(a.bytes, ct));
    }
    b.multipart(mixed)
        .map(|m| (m, message_id))
        .map_err(|e| ToolError::InvalidInput(format!("cannot build the message: {e}")))
}

/// Sends `message`; returns the server's reply text.
pub async fn send(settings: &EmailSettings, message: Message) -> Result<String, ToolError> {
    let server = server(settings)?;
    let mut params = TlsParameters::builder(server.host.clone());
    if let Some(pem) = &settings.ca_pem {
        let cert = Certificate::from_pem(pem).map_err(|e| {
            ToolError::Failed(format!(
                "GATHERING_EMAIL_CA_FILE holds a bad certificate: {e}"
            ))
        })?;
        params = params.add_root_certificate(cert);
    }
    let params = params
        .build_rustls()
        .map_err(|e| ToolError::Failed(format!("cannot set up TLS for SMTP: {e}")))?;
    let tls = if server.implicit_tls {
        Tls::Wrapper(params)
    } else {
        Tls::Required(params)
    };
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.host.as_str())
        .port(server.port)
        .tls(tls)
        .credentials(Credentials::new(
            server.user.clone(),
            server.password.expose().to_owned(),
        ))
        .timeout(Some(SEND_TIMEOUT))
        .build();
    let reply = tokio::time::timeout(SEND_TIMEOUT, transport.send(message))
        .await
        .map_err(|_| ToolError::Failed("SMTP send timed out".into()))?
        // lettre's errors name the stage and the server's answer, never the credentials.
        .map_err(|e| ToolError::Failed(format!("SMTP send failed: {e}")))?;
    Ok(reply.message().collect::<Vec<_>>().join(" "))
}
