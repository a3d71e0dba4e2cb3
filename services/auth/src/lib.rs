//! The auth service: users, password hashing, access and refresh tokens, signing keys and the
//! audit of auth events, over gRPC. State lives in the `auth` schema, so any number of
//! instances serve the same users and see the same revocations.

pub mod admin;
pub mod audit;
pub mod config;
pub mod error;
pub mod keys;
pub mod maintenance;
pub mod password;
pub mod service;
pub mod store;
pub mod throttle;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;

use gathering_core::Shutdown;
use gathering_core::service_token::ServiceKey;
use gathering_proto::service_auth::RequireService;
use gathering_proto::v1::auth_service_server::AuthServiceServer;
use gathering_telemetry::Lifecycle;
use gathering_telemetry::grpc::GrpcServer;

pub use config::Config;
pub use error::{AuthError, Error};

/// What a started auth service exposes.
pub struct Handle {
    pub addr: SocketAddr,
}

/// A started auth service; `wait` returns once it has stopped.
pub type Started = gathering_telemetry::Started<Handle, Error>;

pub async fn run(config: Config, shutdown: Shutdown) -> Result<(), Error> {
    start(config, shutdown).await?.wait().await
}

/// Migrates, loads (or creates) the signing key, binds and serves; returns once serving.
pub async fn start(config: Config, shutdown: Shutdown) -> Result<Started, Error> {
    if config.master_key.is_development_key {
        tracing::warn!(
            "GATHERING_MASTER_KEY is unset: signing keys are sealed with the development key"
        );
    }
    let pool = gathering_db::open(&config.database_url, &config.pool_options()).await?;
    let keys = keys::start(
        &pool,
        &config.master_key,
        config.key_rotation,
        config.key_overlap(),
    )
    .await?;
    password::set_concurrency(config.hash_concurrency);
    let dummy_password = uuid::Uuid::new_v4().to_string();
    let dummy_hash = password::hash(dummy_password, config.hash_cost)
        .await
        .map_err(AuthError::from)?;
    let config = Arc::new(config);
    let api = service::AuthApi {
        pool: pool.clone(),
        config: config.clone(),
        keys: keys.clone(),
        dummy_hash,
        key_cache: Default::default(),
    };

    let mut lifecycle = Lifecycle::new("auth");
    let stop = Shutdown::new();
    // Every RPC needs a service credential; only the health service (added by GrpcServer) is
    // open.
    let service_key = ServiceKey::derive(&config.master_key);
    let routes = tonic::service::Routes::new(AuthServiceServer::with_interceptor(
        api,
        RequireService::new(service_key),
    ));
    let server = GrpcServer::start(config.addr, routes, lifecycle.admin_state(), stop.clone())
        .await
        .map_err(|e| Error::Bind(config.addr, e))?;
    let addr = server.addr;
    let upkeep = tokio::spawn(maintenance::run(
        pool.clone(),
        config.clone(),
        keys,
        stop.clone(),
    ));
    lifecycle.then_try("grpc server", async move {
        server.set_not_serving().await;
        stop.trigger();
        Ok(server.task.await??)
    });
    lifecycle.then("key maintenance", async move {
        let _ = upkeep.await;
    });
    lifecycle.then("database pool", async move { pool.close() });
    lifecycle.readiness().set_ready();
    tracing::info!(%addr, "auth ready");
    Ok(lifecycle.serve(Handle { addr }, shutdown))
}
