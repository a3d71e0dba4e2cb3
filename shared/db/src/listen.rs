//! A dedicated `LISTEN` connection.
//!
//! Notifications are wake-ups, never the data itself: a consumer that gets one re-reads the
//! table it cares about. That makes losing one harmless, which this listener relies on: when
//! its connection drops it reconnects, re-issues `LISTEN`, and reports `Reconnected` so the
//! consumer re-reads whatever it may have missed meanwhile. When the consumer falls behind,
//! surplus notifications are dropped for the same reason.

use std::str::FromStr;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::DbError;
use gathering_core::Shutdown;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub channel: String,
    pub payload: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerEvent {
    Notification(Notification),
    /// The connection was (re)established and every channel is listened to again; anything
    /// notified while it was down was lost.
    Reconnected,
}

/// Receives notifications on a fixed set of channels.
pub struct Listener {
    rx: mpsc::Receiver<ListenerEvent>,
}

impl Listener {
    /// Connects and listens on `channels` (names made of `[a-z0-9_]`). Returns once the first
    /// `LISTEN` succeeded, so nothing notified after this call returns is missed.
    pub async fn start(
        url: &str,
        channels: &[&str],
        shutdown: Shutdown,
    ) -> Result<Listener, DbError> {
        for c in channels {
            if c.is_empty()
                || !c
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(DbError::Config(format!(
                    "invalid notification channel name '{c}'"
                )));
            }
        }
        // sql-identifier: channel names were just checked to be [a-z0-9_]+.
        let listen_sql: String = channels
            .iter()
            .map(|c| format!("LISTEN \"{c}\";"))
            .collect();
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| DbError::Config(format!("DATABASE_URL does not parse: {e}")))?;
        let (tx, rx) = mpsc::channel(1024);
        let first = session(&config, &listen_sql, tx.clone()).await?;
        tokio::spawn(run(config, listen_sql, tx, shutdown, first));
        Ok(Listener { rx })
    }

    /// The next notification or reconnection; `None` once the listener stopped (shutdown).
    pub async fn recv(&mut self) -> Option<ListenerEvent> {
        self.rx.recv().await
    }

    /// A notification already waiting, without blocking.
    pub fn try_recv(&mut self) -> Option<ListenerEvent> {
        self.rx.try_recv().ok()
    }
}

type Session = (tokio_postgres::Client, tokio::task::JoinHandle<()>);

/// Opens one connection, forwards its notifications, and issues the `LISTEN`s.
async fn session(
    config: &tokio_postgres::Config,
    listen_sql: &str,
    tx: mpsc::Sender<ListenerEvent>,
) -> Result<Session, DbError> {
    let mut config = config.clone();
    config.application_name("gathering-listen");
    config.connect_timeout(Duration::from_secs(5));
    config.keepalives_idle(Duration::from_secs(30));
    let (client, mut connection) = config.connect(NoTls).await?;
    let pump = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    let event = ListenerEvent::Notification(Notification {
                        channel: n.channel().to_owned(),
                        payload: n.payload().to_owned(),
                    });
                    // A full queue means the consumer is behind and will re-read anyway.
                    if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(event) {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN connection lost");
                    return;
                }
            }
        }
    });
    client.batch_execute(listen_sql).await?;
    Ok((client, pump))
}

async fn run(
    config: tokio_postgres::Config,
    listen_sql: String,
    tx: mpsc::Sender<ListenerEvent>,
    shutdown: Shutdown,
    first: Session,
) {
    let mut current = Some(first);
    let mut backoff = Duration::from_millis(100);
    loop {
        if let Some((client, mut pump)) = current.take() {
            tokio::select! {
                _ = shutdown.wait() => { pump.abort(); drop(client); return; }
                _ = tx.closed() => { pump.abort(); return; }
                _ = &mut pump => {}
            }
            drop(client);
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        match session(&config, &listen_sql, tx.clone()).await {
            Ok(s) => {
                backoff = Duration::from_millis(100);
                current = Some(s);
                if tx.send(ListenerEvent::Reconnected).await.is_err() {
                    return;
                }
                tracing::info!("LISTEN connection re-established");
            }
            Err(e) => {
                tracing::warn!(error = %e, "LISTEN reconnect failed");
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
