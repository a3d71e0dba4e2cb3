//! The Language Server Protocol's base layer: JSON-RPC messages framed by a `Content-Length`
//! header over the server's stdin and stdout, and `file://` URIs. The framing is a header
//! line and a length, which a crate would not make shorter; the messages stay
//! `serde_json::Value`s because the routes return the servers' objects as they are.

use std::path::{Path, PathBuf};

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// Largest message accepted from a server.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// A message as bytes to write.
pub fn frame(msg: &Value) -> Vec<u8> {
    let body = msg.to_string();
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// The next message, `None` at the end of the stream.
pub async fn read_message<R: AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<Option<Value>> {
    let mut length: Option<usize> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        if line.len() > 1024 {
            return Err(std::io::Error::other("header line too long"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            if length.is_some() {
                break;
            }
            continue;
        }
        if let Some((name, value)) = l.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok();
        }
    }
    let n = length.unwrap_or(0);
    if n > MAX_MESSAGE {
        return Err(std::io::Error::other(format!("message of {n} bytes")));
    }
    let mut body = vec![0u8; n];
    r.read_exact(&mut body).await?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| std::io::Error::other(format!("bad JSON from the server: {e}")))
}

/// What a path segment keeps unencoded (RFC 3986 unreserved, plus `/`).
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

pub fn uri_of(path: &Path) -> String {
    format!(
        "file://{}",
        utf8_percent_encode(&path.to_string_lossy(), PATH)
    )
}

pub fn path_of(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    Some(PathBuf::from(
        percent_decode_str(rest).decode_utf8_lossy().into_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn frames_round_trip() {
        let mut bytes = frame(&json!({"jsonrpc": "2.0", "id": 1, "result": "é"}));
        bytes.extend(frame(&json!({"jsonrpc": "2.0", "method": "x"})));
        let mut r = tokio::io::BufReader::new(&bytes[..]);
        assert_eq!(read_message(&mut r).await.unwrap().unwrap()["result"], "é");
        assert_eq!(read_message(&mut r).await.unwrap().unwrap()["method"], "x");
        assert!(read_message(&mut r).await.unwrap().is_none());
    }

    #[test]
    fn uris() {
        let p = Path::new("/tmp/a b/c#.py");
        assert_eq!(uri_of(p), "file:///tmp/a%20b/c%23.py");
        assert_eq!(path_of(&uri_of(p)).unwrap(), p);
    }
}
