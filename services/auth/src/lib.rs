//! The auth service: users, password hashing, access and refresh tokens, signing keys and the
//! audit of auth events, over gRPC. State lives in the `auth` schema, so any number of
//! instances serve the same users and see the same revocations.

pub mod config;
pub mod error;

use std::net::SocketAddr;

use gathering_core::{Readiness, Shutdown};
use gathering_telemetry::AdminState;
use gathering_telemetry::grpc::GrpcServer;

pub use config::Config;
pub use error::Error;

pub struct Started {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<Result<(), Error>>,
}

impl Started {
    pub async fn wait(self) -> Result<(), Error> {
        self.task.await.map_err(|e| Error::Task(e.to_string()))?
    }
}

pub async fn run(config: Config, shutdown: Shutdown) -> Result<(), Error> {
    start(config, shutdown).await?.wait().await
}

/// Migrates, binds and serves; returns once serving.
pub async fn start(config: Config, shutdown: Shutdown) -> Result<Started, Error> {
    let pool = gathering_db::open(&config.database_url, &config.pool_options()).await?;
    let readiness = Readiness::new();
    let stop = Shutdown::new();
    let routes = tonic::service::Routes::default();
    let server = GrpcServer::start(
        config.addr,
        routes,
        AdminState::new("auth", readiness.clone()),
        stop.clone(),
    )
    .await
    .map_err(|e| Error::Bind(config.addr, e))?;
    let addr = server.addr;
    readiness.set_ready();
    tracing::info!(%addr, "auth ready");

    let task = tokio::spawn(async move {
        shutdown.wait().await;
        readiness.set_shutting_down();
        server.set_not_serving().await;
        tracing::info!("auth shutting down");
        stop.trigger();
        server
            .task
            .await
            .map_err(|e| Error::Task(e.to_string()))??;
        pool.close();
        Ok(())
    });
    Ok(Started { addr, task })
}
