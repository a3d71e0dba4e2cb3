//! The loop of time schedules: claim everything due, then sleep until the earliest due time
//! or until a schedule changes (`NOTIFY scheduled_actions`), whichever comes first — never a
//! fixed tick. A lost notification only delays a change until the backstop sleep ends.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use gathering_core::Shutdown;
use gathering_db::Listener;
use gathering_db::listen::ListenerEvent;

use crate::claim::{self, Claimed};
use crate::state::Ctx;

/// Pause when a due schedule is locked by another instance (it is firing it right now).
const CONTENDED_RETRY: Duration = Duration::from_millis(15);
/// Pause after a database error.
const ERROR_RETRY: Duration = Duration::from_millis(500);

pub async fn run(ctx: Arc<Ctx>, mut listener: Listener, shutdown: Shutdown) {
    loop {
        let mut failed = false;
        loop {
            if shutdown.is_triggered() {
                return;
            }
            match claim::claim_due(&ctx).await {
                Ok(Claimed { schedules, .. }) => {
                    if schedules > 0 {
                        ctx.stats.claims.fetch_add(1, Ordering::Relaxed);
                    }
                    if (schedules as i64) < ctx.batch {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claiming due schedules failed");
                    failed = true;
                    break;
                }
            }
        }
        let wait = if failed {
            ERROR_RETRY
        } else {
            match claim::earliest(&ctx).await {
                Ok(None) => ctx.max_sleep,
                // Due now yet not claimed: another instance holds it, or it just became due.
                Ok(Some(ms)) if ms <= 0.0 => CONTENDED_RETRY,
                Ok(Some(ms)) => {
                    Duration::from_micros((ms * 1000.0).ceil() as u64).min(ctx.max_sleep)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the next due time failed");
                    ERROR_RETRY
                }
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            event = listener.recv() => match event {
                Some(ListenerEvent::Notification(_)) | Some(ListenerEvent::Reconnected) => {
                    // A burst of changes needs one look.
                    while listener.try_recv().is_some() {}
                }
                None => return,
            },
            _ = shutdown.wait() => return,
        }
    }
}
