//! The shutdown signal.
//!
//! One token is created per process (or per in-process service in tests) and handed to every
//! task; cancelling it asks everything to stop. `wait_for_os_signal` turns SIGTERM/SIGINT into
//! that cancellation.

use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Default)]
pub struct Shutdown(CancellationToken);

impl Shutdown {
    pub fn new() -> Self {
        Self(CancellationToken::new())
    }

    /// Asks every holder to stop.
    pub fn trigger(&self) {
        self.0.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Completes once shutdown was asked for.
    pub async fn wait(&self) {
        self.0.cancelled().await
    }

    /// A signal that stops with this one, and that can also be stopped on its own.
    pub fn child(&self) -> Shutdown {
        Shutdown(self.0.child_token())
    }

    /// Triggers this signal on SIGTERM or SIGINT.
    pub fn trigger_on_os_signal(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            wait_for_os_signal().await;
            this.trigger();
        });
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn wait_for_os_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM; waiting for Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        // Debug: each service logs its own "shutting down" line, which says it once.
        _ = term.recv() => tracing::debug!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::debug!("SIGINT received"),
    }
}
