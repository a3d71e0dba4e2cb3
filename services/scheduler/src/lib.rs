//! The scheduler service: turns due schedules into jobs, exactly once per due time across any
//! number of scheduler instances.
//!
//! - Time schedules (cron, interval, once): [`claim`] locks due schedules with
//!   `FOR UPDATE SKIP LOCKED` and, in the same transaction, records one run per due time
//!   (unique on schedule and due time), enqueues its dispatch job (run by an executor) and
//!   moves `next_run_at` on; [`wake`] sleeps until the earliest due time or a change
//!   notification, never on a fixed tick.
//! - Event schedules: [`event_trigger`] follows the event log from a shared cursor and fires
//!   each matching schedule once per event.
//! - Missed runs (all instances down, or too far behind) follow each schedule's policy, see
//!   `gathering_schedule::policy`.

pub mod claim;
pub mod config;
pub mod error;
pub mod event_trigger;
pub mod state;
pub mod wake;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use gathering_core::Shutdown;
use gathering_schedule::store::WAKE_CHANNEL;
use gathering_telemetry::{AdminServer, Lifecycle};
use serde_json::json;

pub use config::Config;
pub use error::Error;
pub use state::Stats;

/// What a started scheduler exposes.
pub struct Handle {
    pub admin_addr: SocketAddr,
    pub stats: Arc<Stats>,
}

/// A started scheduler; `wait` returns once it has stopped.
pub type Started = gathering_telemetry::Started<Handle, Error>;

/// Runs the scheduler until `shutdown`.
pub async fn run(config: Config, shutdown: Shutdown) -> Result<(), Error> {
    start(config, shutdown).await?.wait().await
}

/// Migrates, binds the admin port and starts taking work; returns once serving.
pub async fn start(config: Config, shutdown: Shutdown) -> Result<Started, Error> {
    let pool = gathering_db::open(&config.database_url, &config.pool_options()).await?;
    let stats = Arc::new(Stats::default());
    let ctx = Arc::new(state::Ctx {
        pool: pool.clone(),
        database_url: config.database_url.clone(),
        batch: config.batch,
        limits: config.limits(),
        max_sleep: config.max_sleep,
        event_poll: config.event_poll,
        stats: stats.clone(),
    });
    // Listening starts before the first claim, so no change made after it is missed.
    let loops_stop = Shutdown::new();
    let wake_listener =
        gathering_db::Listener::start(&config.database_url, &[WAKE_CHANNEL], loops_stop.clone())
            .await?;
    let event_listener = gathering_db::Listener::start(
        &config.database_url,
        &[gathering_events::CHANNEL],
        loops_stop.clone(),
    )
    .await?;
    let due_loop = tokio::spawn(wake::run(ctx.clone(), wake_listener, loops_stop.clone()));
    let event_loop = tokio::spawn(event_trigger::run(
        ctx.clone(),
        event_listener,
        loops_stop.clone(),
    ));

    if let Some(every) = config.queue_metrics_interval {
        tokio::spawn(gathering_queue::depth::export_gauges(
            gathering_queue::Queue::new(pool.clone()),
            Vec::new(),
            every,
            loops_stop.clone(),
        ));
    }
    // Counted live by the edge's /health/checks while this scheduler takes work.
    let instance = gathering_db::heartbeat::instance_name();
    let heartbeat =
        gathering_db::heartbeat::Heartbeat::start(pool.clone(), "scheduler", &instance).await?;
    let mut lifecycle = Lifecycle::new("scheduler");
    let mut admin_state = lifecycle.admin_state();
    let details = stats.clone();
    admin_state.details = Some(Arc::new(move || {
        json!({
            "runs_fired": details.fired.load(Ordering::Relaxed),
            "runs_skipped": details.skipped.load(Ordering::Relaxed),
            "event_runs": details.event_runs.load(Ordering::Relaxed),
            "claims": details.claims.load(Ordering::Relaxed),
        })
    }));
    let admin = AdminServer::start(config.admin_addr, admin_state)
        .await
        .map_err(|e| Error::Bind(config.admin_addr, e))?;
    let admin_addr = admin.addr;
    // A claim in progress finishes (it is one short transaction); nothing else is held.
    lifecycle.then("claim loops", async move {
        loops_stop.trigger();
        let _ = due_loop.await;
        let _ = event_loop.await;
    });
    lifecycle.then("heartbeat", heartbeat.stop());
    lifecycle.then("database pool", async move { pool.close() });
    lifecycle.then("admin server", admin.stop());
    lifecycle.readiness().set_ready();
    tracing::info!(%admin_addr, "scheduler ready");
    Ok(lifecycle.serve(Handle { admin_addr, stats }, shutdown))
}
