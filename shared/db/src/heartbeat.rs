//! Service liveness in PostgreSQL: a running instance upserts its row of
//! `public.service_heartbeats` every [`BEAT_EVERY`] and deletes it when it stops cleanly, so
//! any process can count the live instances of each service ([`live_counts`]) — the edge's
//! `/health/checks` does. An instance killed outright stops beating and drops out after
//! [`LIVE_WITHIN`]. Each beat also removes rows of its service silent for a day (instances
//! that died long ago), so the table stays small without a janitor.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gathering_core::Shutdown;

use crate::{DbError, Pool};

/// How often an instance beats.
pub const BEAT_EVERY: Duration = Duration::from_secs(5);
/// An instance whose last beat is older than this counts as gone.
pub const LIVE_WITHIN: Duration = Duration::from_secs(15);

/// A name unique to this instance: `host:pid:n`.
pub fn instance_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{host}:{}:{nanos:08x}{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The beating of one instance; [`Heartbeat::stop`] ends it and removes the row.
pub struct Heartbeat {
    stop: Shutdown,
    task: tokio::task::JoinHandle<()>,
}

const BEAT_SQL: &str = "INSERT INTO public.service_heartbeats (service, instance, pid) VALUES ($1, $2, $3) \
     ON CONFLICT (service, instance) DO UPDATE SET last_seen_at = now()";

impl Heartbeat {
    /// Beats once (so the instance is visible when this returns), then every [`BEAT_EVERY`].
    pub async fn start(pool: Pool, service: &str, instance: &str) -> Result<Heartbeat, DbError> {
        let pid = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
        let (service, instance) = (service.to_owned(), instance.to_owned());
        pool.get()
            .await?
            .execute(BEAT_SQL, &[&service, &instance, &pid])
            .await?;
        let stop = Shutdown::new();
        let signal = stop.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(BEAT_EVERY);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = signal.wait() => break,
                }
                if let Err(e) = beat(&pool, &service, &instance, pid).await {
                    tracing::warn!(service, error = %e, "heartbeat not written");
                }
            }
            let gone = async {
                pool.get()
                    .await?
                    .execute(
                        "DELETE FROM public.service_heartbeats WHERE service = $1 AND instance = $2",
                        &[&service, &instance],
                    )
                    .await?;
                Ok::<_, DbError>(())
            };
            if let Err(e) = gone.await {
                tracing::warn!(service, error = %e, "heartbeat row not removed");
            }
        });
        Ok(Heartbeat { stop, task })
    }

    /// Stops beating and removes this instance's row.
    pub async fn stop(self) {
        self.stop.trigger();
        let _ = self.task.await;
    }
}

async fn beat(pool: &Pool, service: &str, instance: &str, pid: i32) -> Result<(), DbError> {
    let client = pool.get().await?;
    client
        .execute(BEAT_SQL, &[&service, &instance, &pid])
        .await?;
    client
        .execute(
            "DELETE FROM public.service_heartbeats WHERE service = $1 AND last_seen_at < now() - interval '1 day'",
            &[&service],
        )
        .await?;
    Ok(())
}

/// Live instances per service (services with none are absent).
pub async fn live_counts<C: deadpool_postgres::GenericClient>(
    c: &C,
) -> Result<Vec<(String, i64)>, DbError> {
    let rows = c
        .query(
            "SELECT service, count(*) FROM public.service_heartbeats \
             WHERE last_seen_at > now() - make_interval(secs => $1) GROUP BY service ORDER BY service",
            &[&LIVE_WITHIN.as_secs_f64()],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}
