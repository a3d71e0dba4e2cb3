//! Keeping an in-memory snapshot current: reload it on each `NOTIFY` of its channel (sent by a
//! trigger in the same transaction as the change), when the listener reconnects (a notification
//! may have been lost meanwhile), and every `refresh` as a backstop. The provider registry and
//! the virtual-key snapshot both use it, so the request path never reads those tables.

use std::future::Future;
use std::time::Duration;

use gathering_core::Shutdown;
use gathering_db::Listener;

/// Runs `reload` on every wake-up until `shutdown`; a burst of notifications costs one reload.
pub async fn reload_on_notify<F, Fut>(
    channel: &'static str,
    database_url: String,
    refresh: Duration,
    shutdown: Shutdown,
    mut reload: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut listener = match Listener::start(&database_url, &[channel], shutdown.clone()).await {
        Ok(l) => {
            // The caller loaded the snapshot before this task started listening: a change
            // committed in between notified nobody, so load once more now that we listen.
            reload().await;
            Some(l)
        }
        Err(e) => {
            tracing::warn!(error = %e, channel, "cannot LISTEN; polling only");
            None
        }
    };
    let mut tick = tokio::time::interval(refresh.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let woke = async {
            match &mut listener {
                Some(l) => l.recv().await.is_some(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.wait() => return,
            alive = woke => {
                if !alive {
                    listener = None;
                    continue;
                }
                if let Some(l) = &mut listener {
                    while l.try_recv().is_some() {}
                }
            }
            _ = tick.tick() => {}
        }
        reload().await;
    }
}
