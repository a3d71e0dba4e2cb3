//! The LLM gateway: one interface to every model provider over gRPC, and an OpenAI-compatible
//! HTTP API on its HTTP port, with retries, fallbacks, circuit breakers, usage and cost.

pub mod config;
pub mod error;

use std::net::SocketAddr;

use gathering_core::{Readiness, Shutdown};
use gathering_telemetry::AdminState;
use gathering_telemetry::grpc::GrpcServer;

pub use config::Config;
pub use error::Error;

pub struct Started {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
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

/// Migrates, binds both ports and serves; returns once serving.
pub async fn start(config: Config, shutdown: Shutdown) -> Result<Started, Error> {
    let pool = gathering_db::open(&config.database_url, &config.pool_options()).await?;
    let readiness = Readiness::new();
    let admin = AdminState::new("llm-gateway", readiness.clone());
    let stop = Shutdown::new();

    let grpc = GrpcServer::start(
        config.grpc_addr,
        tonic::service::Routes::default(),
        admin.clone(),
        stop.clone(),
    )
    .await
    .map_err(|e| Error::Bind(config.grpc_addr, e))?;
    let (http_addr, http_task) = gathering_telemetry::serve_admin(
        config.http_addr,
        gathering_telemetry::admin_router(admin),
        stop.clone(),
    )
    .await
    .map_err(|e| Error::Bind(config.http_addr, e))?;
    let grpc_addr = grpc.addr;
    readiness.set_ready();
    tracing::info!(%grpc_addr, %http_addr, "llm-gateway ready");

    let task = tokio::spawn(async move {
        shutdown.wait().await;
        readiness.set_shutting_down();
        grpc.set_not_serving().await;
        tracing::info!("llm-gateway shutting down");
        stop.trigger();
        let _ = http_task.await;
        grpc.task.await.map_err(|e| Error::Task(e.to_string()))??;
        pool.close();
        Ok(())
    });
    Ok(Started {
        grpc_addr,
        http_addr,
        task,
    })
}
