//! The executor service: claims jobs from the Postgres job queue and runs them (pipeline
//! runs, background agent tasks, scheduled actions, notifications). Any number of executors
//! may run against one database; the queue's leases keep each job on one of them at a time.

pub mod config;
pub mod error;

use std::net::SocketAddr;

use gathering_core::{Readiness, Shutdown};
use gathering_telemetry::{AdminServer, AdminState};

pub use config::Config;
pub use error::Error;

/// A started executor.
pub struct Started {
    pub admin_addr: SocketAddr,
    task: tokio::task::JoinHandle<Result<(), Error>>,
}

impl Started {
    /// Waits until the executor has stopped (after `shutdown` was triggered).
    pub async fn wait(self) -> Result<(), Error> {
        self.task.await.map_err(|e| Error::Task(e.to_string()))?
    }
}

/// Runs the executor until `shutdown`.
pub async fn run(config: Config, shutdown: Shutdown) -> Result<(), Error> {
    start(config, shutdown).await?.wait().await
}

/// Migrates, binds the admin port and starts taking work; returns once serving.
pub async fn start(config: Config, shutdown: Shutdown) -> Result<Started, Error> {
    let pool = gathering_db::open(&config.database_url, &config.pool_options()).await?;
    let readiness = Readiness::new();
    let admin = AdminServer::start(
        config.admin_addr,
        AdminState::new("executor", readiness.clone()),
    )
    .await
    .map_err(|e| Error::Bind(config.admin_addr, e))?;
    let admin_addr = admin.addr;
    readiness.set_ready();
    tracing::info!(%admin_addr, "executor ready");

    let task = tokio::spawn(async move {
        shutdown.wait().await;
        readiness.set_shutting_down();
        tracing::info!("executor shutting down");
        pool.close();
        admin.stop().await;
        Ok(())
    });
    Ok(Started { admin_addr, task })
}
