//! The executor service: claims jobs from the Postgres job queue and runs them (pipeline
//! runs, background agent tasks, circle tasks and reviews, conversations, scheduled actions,
//! notifications). Any number of executors
//! may run against one database; the queue's leases keep each job on one of them at a time,
//! and an executor that dies loses its jobs to the others within one lease.

pub mod config;
pub mod deps;
pub mod error;
pub mod jobs;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use gathering_core::Shutdown;
use gathering_queue::{Queue, Worker, WorkerConfig, WorkerHandle};
use gathering_telemetry::{AdminServer, AdminState, Lifecycle};
use serde_json::json;

pub use config::Config;
pub use deps::Deps;
pub use error::Error;

/// What a started executor exposes.
pub struct Handle {
    pub admin_addr: SocketAddr,
    /// The queue worker's lease owner name.
    pub owner: String,
}

/// A started executor; `wait` returns once it has stopped.
pub type Started = gathering_telemetry::Started<Handle, Error>;

/// Runs the executor until `shutdown`.
pub async fn run(config: Config, shutdown: Shutdown) -> Result<(), Error> {
    start(config, shutdown).await?.wait().await
}

/// Migrates, starts the queue worker and the admin port; returns once taking work.
pub async fn start(config: Config, shutdown: Shutdown) -> Result<Started, Error> {
    gathering_core::tls::install_crypto_provider();
    let pool = gathering_db::open(&config.database_url, &config.pool_options()).await?;
    let mut lifecycle = Lifecycle::new("executor");
    // Tasks that outlive the worker: plugins' MCP servers, the event publisher, upkeep.
    let background = Shutdown::new();
    let deps = deps(&config, &pool, &background).await?;
    let plugins = deps.tools.plugins().cloned();
    let worker_stop = Shutdown::new();
    let worker = Worker::start(
        deps.queue.clone(),
        &config.database_url,
        jobs::registry(&deps),
        WorkerConfig {
            queues: config.queues.clone(),
            lease: config.lease,
            shutdown_timeout: config.shutdown_timeout,
            ..WorkerConfig::default()
        },
        worker_stop.clone(),
    )
    .await?;
    let owner = worker.owner.clone();
    // Counted live by the edge's /health/checks while this executor takes work.
    let heartbeat =
        gathering_db::heartbeat::Heartbeat::start(pool.clone(), "executor", &owner).await?;
    spawn_upkeep(&config, &pool, &background);
    let admin_state = admin_state(&lifecycle, &worker);
    let admin = AdminServer::start(config.admin_addr, admin_state)
        .await
        .map_err(|e| Error::Bind(config.admin_addr, e))?;
    let admin_addr = admin.addr;

    // Running jobs finish or are released (their leases end) before anything they use stops.
    lifecycle.then("queue worker", async move {
        worker_stop.trigger();
        worker.wait().await;
    });
    lifecycle.then("plugins", async move {
        if let Some(plugins) = plugins {
            plugins.shutdown().await;
        }
    });
    lifecycle.then("heartbeat", heartbeat.stop());
    lifecycle.then("background tasks", async move { background.trigger() });
    lifecycle.then("database pool", async move { pool.close() });
    lifecycle.then("admin server", admin.stop());
    lifecycle.readiness().set_ready();
    tracing::info!(%admin_addr, owner, "executor ready");
    Ok(lifecycle.serve(Handle { admin_addr, owner }, shutdown))
}

/// What the job handlers use: the tool registry with plugins and the platform's and circles'
/// skills, the agent runtime over the gateway, circles, the queue and the event publisher.
async fn deps(
    config: &Config,
    pool: &gathering_db::Pool,
    background: &Shutdown,
) -> Result<Deps, Error> {
    let tools = Arc::new(
        gathering_tools::Toolbox::new(Some(pool.clone()), config.tools.clone())
            .map_err(|e| Error::Task(e.to_string()))?,
    );
    // Plugins: follow agent.plugins; MCP servers of this executor stop with it.
    if let Some(plugins) = tools.plugins() {
        plugins
            .start(&config.database_url, background.clone())
            .await
            .map_err(|e| Error::Task(format!("plugins: {e}")))?;
    }
    // Gateway calls carry the executor's service credential.
    let service_auth = gathering_proto::service_auth::ServiceAuth::new(
        gathering_core::service_token::ServiceKey::derive(&config.master_key),
        "executor",
    );
    let llm = gathering_agents::Llm::connect(
        &config.llm_gateway_url,
        &config.agents.embedding_model,
        service_auth,
    )
    .map_err(|e| Error::Task(e.to_string()))?;
    gathering_agents::skills::register_platform(
        tools.registry(),
        gathering_agents::skills::PlatformDeps {
            pool: pool.clone(),
            llm: llm.clone(),
            queue: Queue::new(pool.clone()),
            max_live_tasks: config.agents.max_live_tasks,
            default_model: config.agents.runtime.default_model.clone(),
        },
    )
    .map_err(|e| Error::Task(format!("platform skills: {e}")))?;
    let circles = gathering_circles::Circles::new(pool.clone(), config.circles.clone());
    gathering_circles::skills::register(tools.registry(), circles.clone())
        .map_err(|e| Error::Task(format!("circles skill: {e}")))?;
    let agents = gathering_agents::AgentRuntime::new(
        pool.clone(),
        llm,
        tools.clone(),
        config.agents.runtime.clone(),
    );
    Ok(Deps {
        pool: pool.clone(),
        queue: Queue::new(pool.clone()),
        events: gathering_events::Publisher::start(
            pool.clone(),
            gathering_events::PublisherOptions {
                notify_window: config.events_notify_window,
                ..Default::default()
            },
            background.clone(),
        ),
        database_url: config.database_url.clone(),
        tools,
        agents,
        max_live_tasks: config.agents.max_live_tasks,
        circles,
    })
}

/// Queue depth gauges (when configured) and the event log's retention, until `background`.
fn spawn_upkeep(config: &Config, pool: &gathering_db::Pool, background: &Shutdown) {
    if let Some(every) = config.queue_metrics_interval {
        tokio::spawn(gathering_queue::depth::export_gauges(
            Queue::new(pool.clone()),
            config.queues.iter().map(|q| q.name.clone()).collect(),
            every,
            background.clone(),
        ));
    }
    tokio::spawn(trim_events(
        pool.clone(),
        config.events_max_age,
        config.events_max_rows,
        background.clone(),
    ));
}

/// The admin endpoints' state, with the worker's counters in `/health`.
fn admin_state(lifecycle: &Lifecycle<Error>, worker: &WorkerHandle) -> AdminState {
    let mut state = lifecycle.admin_state();
    let stats = worker.stats.clone();
    let worker_name = worker.owner.clone();
    state.details = Some(Arc::new(move || {
        json!({
            "worker": worker_name,
            "jobs_claimed": stats.claimed.load(Ordering::Relaxed),
            "jobs_completed": stats.completed.load(Ordering::Relaxed),
            "jobs_failed": stats.failed.load(Ordering::Relaxed),
        })
    }));
    state
}

/// Keeps the event log within its retention (every executor does it; deletes are idempotent).
async fn trim_events(
    pool: gathering_db::Pool,
    max_age: std::time::Duration,
    max_rows: i64,
    stop: Shutdown,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
            _ = stop.wait() => return,
        }
        match gathering_events::retention::purge(&pool, max_age, max_rows, 10_000).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "event log trimmed"),
            Err(e) => tracing::warn!(error = %e, "trimming the event log failed"),
        }
    }
}
