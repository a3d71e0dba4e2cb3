//! A WebSocket client for tests.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to `url` (`ws://…`).
pub async fn connect(url: &str) -> Socket {
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    socket
}

pub async fn send_json(socket: &mut Socket, value: &Value) {
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .expect("send");
}

/// The next JSON text message, skipping pings; panics after `timeout`.
pub async fn next_json(socket: &mut Socket, timeout: Duration) -> Value {
    match next(socket, timeout).await {
        Next::Json(v) => v,
        Next::Closed(frame) => panic!("socket closed: {frame:?}"),
    }
}

pub enum Next {
    Json(Value),
    Closed(Option<CloseFrame>),
}

/// The next JSON message or the close frame.
pub async fn next(socket: &mut Socket, timeout: Duration) -> Next {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let msg = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("a websocket message in time");
        match msg {
            Some(Ok(Message::Text(t))) => {
                return Next::Json(serde_json::from_str(&t).expect("JSON message"));
            }
            Some(Ok(Message::Close(frame))) => return Next::Closed(frame),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Next::Closed(None),
        }
    }
}
