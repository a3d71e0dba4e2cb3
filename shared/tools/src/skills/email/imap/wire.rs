//! The IMAP wire (RFC 3501) under the skill: tagged commands, one at a time; each response
//! framed here (a line, plus every `{n}` literal it announces and the line after it, up to the
//! line that ends the response) within a byte budget, then parsed with `imap-proto`.
//!
//! `imap-proto` is the parser `async-imap` itself is built on (djc/imap-proto, nom 8, no other
//! dependency); taking it alone keeps the connection handling ours — no async-channel,
//! event-listener or thiserror 1 in a second version (docs/architecture.md) — while the
//! grammar of the server's answers stays in a well-kept crate.

use std::time::Duration;

use imap_proto::{Outcome, Response, Status};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use super::{imap_error, timed};
use crate::error::ToolError;
use crate::skills::email::settings::{MAX_IMAP_COMMAND_BYTES, MAX_IMAP_RESPONSE_BYTES};

/// `value` as an IMAP quoted string (`\` and `"` escaped). CR, LF and NUL cannot be in one
/// (RFC 3501 `QUOTED-CHAR`), so they are refused rather than sent.
pub fn quote(what: &str, value: &str) -> Result<String, ToolError> {
    if value.contains(['\r', '\n', '\0']) {
        return Err(ToolError::InvalidInput(format!(
            "{what} holds a CR, LF or NUL character, which cannot go into an IMAP command"
        )));
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Ok(out)
}

/// One IMAP connection: the stream (buffered for reading; writes go straight through) and
/// the tag counter.
pub struct Connection<S> {
    stream: BufReader<S>,
    tag: u32,
    /// Set while a command is in flight and left set when it did not end with its tagged
    /// answer (time-out, I/O error, oversize or unreadable response): the stream is then out
    /// of step and only good to drop.
    broken: bool,
    /// Bytes one response, and all the responses to one command, may take.
    response_limit: usize,
    command_limit: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub fn new(stream: S) -> Self {
        Connection {
            stream: BufReader::new(stream),
            tag: 0,
            broken: false,
            response_limit: MAX_IMAP_RESPONSE_BYTES,
            command_limit: MAX_IMAP_COMMAND_BYTES,
        }
    }

    /// Reads the server's greeting (OK or PREAUTH).
    pub async fn greeting(&mut self, limit: Duration) -> Result<(), ToolError> {
        self.broken = true;
        let mut budget = self.response_limit;
        let response = timed(
            "greeting",
            limit,
            self.read_response("greeting", &mut budget),
        )
        .await?;
        match response {
            Response::Data {
                status: Status::Ok | Status::PreAuth,
                ..
            } => {
                self.broken = false;
                Ok(())
            }
            Response::Data {
                status: Status::Bye,
                outcome,
            } => Err(imap_error(
                "greeting",
                format!("the server refused the connection: {}", text(&outcome)),
            )),
            _ => Err(imap_error("greeting", "the server did not greet with OK")),
        }
    }

    /// Sends `command` (arguments already quoted) under a new tag and gathers the untagged
    /// responses up to the tagged one, all within `limit`. A NO or BAD answer is an error
    /// carrying the server's text; the connection stays usable after it.
    pub async fn run(
        &mut self,
        what: &str,
        command: &str,
        limit: Duration,
    ) -> Result<Vec<Response<'static>>, ToolError> {
        if self.broken {
            return Err(imap_error(
                what,
                "the connection broke during an earlier command",
            ));
        }
        if command.contains(['\r', '\n', '\0']) {
            return Err(imap_error(
                what,
                "the command holds a CR, LF or NUL character",
            ));
        }
        timed(what, limit, self.exchange(what, command)).await
    }

    /// LOGOUT, then the TLS close; nothing to do when the connection already broke.
    pub async fn logout(&mut self, limit: Duration) -> Result<(), ToolError> {
        if self.broken {
            return Ok(());
        }
        self.run("LOGOUT", "LOGOUT", limit).await?;
        timed("close", limit, async {
            self.stream
                .get_mut()
                .shutdown()
                .await
                .map_err(|e| imap_error("close", e))
        })
        .await
    }

    async fn exchange(
        &mut self,
        what: &str,
        command: &str,
    ) -> Result<Vec<Response<'static>>, ToolError> {
        self.broken = true;
        self.tag += 1;
        let tag = format!("G{}", self.tag);
        let line = format!("{tag} {command}\r\n");
        let inner = self.stream.get_mut();
        inner
            .write_all(line.as_bytes())
            .await
            .map_err(|e| imap_error(what, e))?;
        inner.flush().await.map_err(|e| imap_error(what, e))?;
        let logout = command.eq_ignore_ascii_case("LOGOUT");
        let mut budget = self.command_limit;
        let mut data = Vec::new();
        loop {
            match self.read_response(what, &mut budget).await? {
                Response::Done {
                    tag: t,
                    status,
                    outcome,
                } if t.0 == tag => {
                    self.broken = false;
                    return match status {
                        Status::Ok => Ok(data),
                        _ => Err(imap_error(what, refusal(&status, &outcome))),
                    };
                }
                Response::Done { .. } => {
                    return Err(imap_error(what, "the server answered an unknown tag"));
                }
                Response::Data {
                    status: Status::Bye,
                    outcome,
                } if !logout => {
                    return Err(imap_error(
                        what,
                        format!("the server closed the connection: {}", text(&outcome)),
                    ));
                }
                Response::Continue(_) => {
                    return Err(imap_error(
                        what,
                        "the server asked for a continuation no command here needs",
                    ));
                }
                other => data.push(other),
            }
        }
    }

    /// One whole response: its lines and the literals they announce, at most
    /// `response_limit` bytes and what is left of `budget`, which it uses up.
    async fn read_response(
        &mut self,
        what: &str,
        budget: &mut usize,
    ) -> Result<Response<'static>, ToolError> {
        let limit = self.response_limit.min(*budget);
        let mut frame = Vec::new();
        loop {
            self.read_line(what, &mut frame, limit).await?;
            let Some(n) = literal_len(&frame) else { break };
            if n > limit - frame.len() {
                return Err(too_large(what, limit));
            }
            let start = frame.len();
            frame.resize(start + n, 0);
            self.stream
                .read_exact(&mut frame[start..])
                .await
                .map_err(|e| read_error(what, e))?;
        }
        *budget -= frame.len();
        match Response::parse(&frame) {
            Ok(([], response)) => Ok(response.into_owned()),
            _ => Err(imap_error(
                what,
                format!("unreadable server response: {}", excerpt(&frame)),
            )),
        }
    }

    /// Appends one line, LF included, to `out`, which may not pass `limit` bytes.
    async fn read_line(
        &mut self,
        what: &str,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), ToolError> {
        loop {
            let buf = self
                .stream
                .fill_buf()
                .await
                .map_err(|e| read_error(what, e))?;
            if buf.is_empty() {
                return Err(imap_error(what, "the server closed the connection"));
            }
            let (take, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            if take > limit - out.len() {
                return Err(too_large(what, limit));
            }
            out.extend_from_slice(&buf[..take]);
            self.stream.consume(take);
            if done {
                return Ok(());
            }
        }
    }
}

/// The size of the literal a line announces: it ends with `{n}` CRLF. A number too long for
/// `usize` is `usize::MAX`, which no limit lets through.
fn literal_len(frame: &[u8]) -> Option<usize> {
    let head = frame.strip_suffix(b"}\r\n")?;
    let digits = head.len() - head.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    if digits == head.len() || head.get(digits.checked_sub(1)?) != Some(&b'{') {
        return None;
    }
    let n = std::str::from_utf8(&head[digits..]).ok()?;
    Some(n.parse().unwrap_or(usize::MAX))
}

fn too_large(what: &str, limit: usize) -> ToolError {
    ToolError::TooLarge(format!(
        "IMAP {what} failed: the server's answer is over the limit of {limit} bytes"
    ))
}

fn read_error(what: &str, e: std::io::Error) -> ToolError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        imap_error(what, "the server closed the connection")
    } else {
        imap_error(what, e)
    }
}

fn text(outcome: &Outcome<'_>) -> String {
    outcome.information.as_deref().unwrap_or("").to_owned()
}

fn refusal(status: &Status, outcome: &Outcome<'_>) -> String {
    let word = match status {
        Status::No => "NO",
        Status::Bad => "BAD",
        Status::Bye => "BYE",
        Status::Ok | Status::PreAuth => "an unexpected",
    };
    format!("{word} {}", text(outcome))
}

/// The start of an unreadable response, for the error (printable, at most 120 bytes).
fn excerpt(frame: &[u8]) -> String {
    let cut = &frame[..frame.len().min(120)];
    String::from_utf8_lossy(cut).escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use imap_proto::{AttributeValue, MailboxDatum};
    use tokio::io::DuplexStream;
    use tokio::task::JoinHandle;

    use super::*;

    const T: Duration = Duration::from_secs(5);

    /// A connection to a server that sends `script` and keeps what the client wrote.
    fn scripted(script: &'static [u8]) -> (Connection<DuplexStream>, JoinHandle<String>) {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let peer = tokio::spawn(async move {
            server.write_all(script).await.unwrap();
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.unwrap();
            String::from_utf8(got).unwrap()
        });
        (Connection::new(client), peer)
    }

    #[test]
    fn arguments_are_quoted_and_line_breaks_refused() {
        assert_eq!(quote("x", "INBOX").unwrap(), "\"INBOX\"");
        assert_eq!(quote("x", r#"a"b\c é"#).unwrap(), r#""a\"b\\c é""#);
        for bad in ["a\r\nLOGOUT", "a\nb", "a\rb", "a\0b"] {
            let e = quote("the folder name", bad).unwrap_err();
            assert!(
                matches!(&e, ToolError::InvalidInput(m) if m.contains("CR, LF or NUL")),
                "{e:?}"
            );
        }
    }

    #[test]
    fn literals_are_found_at_the_end_of_a_line_only() {
        assert_eq!(literal_len(b"* 1 FETCH (BODY[] {42}\r\n"), Some(42));
        assert_eq!(literal_len(b"{0}\r\n"), Some(0));
        assert_eq!(
            literal_len(b"* 1 FETCH ({99999999999999999999999}\r\n"),
            Some(usize::MAX)
        );
        assert_eq!(literal_len(b"* OK {12} done\r\n"), None);
        assert_eq!(literal_len(b"* OK {}\r\n"), None);
        assert_eq!(literal_len(b"* OK 12}\r\n"), None);
        assert_eq!(literal_len(b"* OK {1x}\r\n"), None);
    }

    #[tokio::test]
    async fn a_fetch_body_comes_whole_from_its_literal() {
        // The literal holds what looks like the tagged answer: only its length counts.
        let (mut conn, peer) = scripted(
            b"* OK ready\r\n\
              * 1 FETCH (UID 7 BODY[] {21}\r\nSubject: x\r\n\r\nG1 OK\r\n FLAGS (\\Seen))\r\n\
              * SEARCH 3 5\r\n\
              G1 OK done\r\n",
        );
        conn.greeting(T).await.unwrap();
        let got = conn
            .run("FETCH", "UID FETCH 7 (UID BODY.PEEK[])", T)
            .await
            .unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        let Response::Fetch(1, attrs) = &got[0] else {
            panic!("{got:?}")
        };
        assert!(attrs.contains(&AttributeValue::Uid(7)), "{attrs:?}");
        assert!(attrs.iter().any(|a| matches!(a,
            AttributeValue::BodySection { section: None, data: Some(d), .. } if d.as_ref() == b"Subject: x\r\n\r\nG1 OK\r\n")));
        assert_eq!(
            got[1],
            Response::MailboxData(MailboxDatum::Search(vec![3, 5]))
        );
        drop(conn);
        assert_eq!(peer.await.unwrap(), "G1 UID FETCH 7 (UID BODY.PEEK[])\r\n");
    }

    #[tokio::test]
    async fn a_refusal_carries_the_server_text_and_the_connection_goes_on() {
        let (mut conn, peer) = scripted(
            b"* OK ready\r\n\
              G1 NO Mailbox doesn't exist: Nope\r\n\
              * BYE Logging out\r\nG2 OK Logout completed.\r\n",
        );
        conn.greeting(T).await.unwrap();
        let e = conn
            .run("EXAMINE of 'Nope'", "EXAMINE \"Nope\"", T)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "IMAP EXAMINE of 'Nope' failed: NO Mailbox doesn't exist: Nope"
        );
        conn.logout(T).await.unwrap();
        drop(conn);
        assert_eq!(peer.await.unwrap(), "G1 EXAMINE \"Nope\"\r\nG2 LOGOUT\r\n");
    }

    #[tokio::test]
    async fn an_answer_over_the_limits_is_refused_before_it_is_read() {
        let (mut conn, _peer) = scripted(b"* OK ready\r\n* 1 FETCH (UID 1 BODY[] {5000}\r\n");
        conn.response_limit = 1000;
        conn.greeting(T).await.unwrap();
        let e = conn
            .run("FETCH", "UID FETCH 1 BODY.PEEK[]", T)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, ToolError::TooLarge(m) if m.contains("1000 bytes")),
            "{e:?}"
        );
        // The stream is out of step: no further command, and LOGOUT is skipped.
        assert!(conn.run("LIST", "LIST \"\" \"*\"", T).await.is_err());
        conn.logout(T).await.unwrap();

        // Many small responses add up too.
        let (mut conn, _peer) =
            scripted(b"* OK ready\r\n* SEARCH 1\r\n* SEARCH 2\r\n* SEARCH 3\r\nG1 OK\r\n");
        conn.command_limit = 30;
        conn.greeting(T).await.unwrap();
        let e = conn.run("SEARCH", "UID SEARCH ALL", T).await.unwrap_err();
        assert!(matches!(e, ToolError::TooLarge(_)), "{e:?}");
    }

    #[tokio::test]
    async fn silence_times_out_and_a_closed_or_garbled_stream_is_an_error() {
        let (mut conn, _peer) = scripted(b"* OK ready\r\n");
        conn.greeting(T).await.unwrap();
        let e = conn
            .run("SEARCH", "UID SEARCH ALL", Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("timed out"), "{e}");

        let (client, server) = tokio::io::duplex(1024);
        drop(server);
        let e = Connection::new(client).greeting(T).await.unwrap_err();
        assert!(e.to_string().contains("closed the connection"), "{e}");

        let (mut conn, _peer) = scripted(b"* OK ready\r\nG1 WHAT is this\r\n");
        conn.greeting(T).await.unwrap();
        let e = conn.run("LIST", "LIST \"\" \"*\"", T).await.unwrap_err();
        assert!(e.to_string().contains("unreadable server response"), "{e}");
    }
}
