//! The LLM gateway: one interface to every model provider over gRPC, and an OpenAI-compatible
//! HTTP API on its HTTP port, with retries, fallbacks, circuit breakers, usage and cost.
//!
//! - [`model`]: the normalised chat model; [`provider`]: the wire formats;
//! - [`registry`]: providers, keys and the catalogue, reloaded on `NOTIFY llm_settings`;
//! - [`engine`]: resolution, fallbacks, retries, breaker, concurrency, usage;
//! - [`grpc`] and [`api`]: the two front doors; [`usage`]: batched usage writes;
//! - [`access`]: virtual keys, budgets and per-key limits of the HTTP API; [`cache`]: the
//!   response cache.

pub mod access;
pub mod api;
pub mod cache;
pub mod config;
pub mod engine;
pub mod error;
pub mod grpc;
pub mod model;
pub mod provider;
pub mod redact;
pub mod registry;
pub mod reliability;
pub mod reloader;
pub mod settings;
pub mod upstream;
pub mod usage;

use std::net::SocketAddr;
use std::sync::Arc;

use gathering_core::Shutdown;
use gathering_core::service_token::ServiceKey;
use gathering_telemetry::Lifecycle;
use gathering_telemetry::grpc::GrpcServer;

pub use config::Config;
pub use engine::Gateway;
pub use error::{Error, GatewayError};

/// What a started gateway exposes.
pub struct Handle {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// The running engine (tests inspect breakers and limits through it).
    pub gateway: Gateway,
}

/// A started gateway; `wait` returns once it has stopped.
pub type Started = gathering_telemetry::Started<Handle, Error>;

pub async fn run(config: Config, shutdown: Shutdown) -> Result<(), Error> {
    start(config, shutdown).await?.wait().await
}
/// Migrates, loads the registry, binds both ports and serves; returns once serving.
pub async fn start(config: Config, shutdown: Shutdown) -> Result<Started, Error> {
    let pool = gathering_db::open(&config.database_url, &config.pool_options()).await?;
    let mut lifecycle = Lifecycle::new("llm-gateway");
    let admin = lifecycle.admin_state();
    let stop = Shutdown::new();

    let registry = Arc::new(registry::Registry::new(registry::Sources::from_config(
        &config,
    )));
    registry.reload(&pool).await?;
    let reloader = tokio::spawn(registry::run_reloader(
        registry.clone(),
        pool.clone(),
        config.database_url.clone(),
        config.registry_refresh,
        stop.clone(),
    ));
    let access = access::Access::new(pool.clone(), config.rate_flush);
    access.keys.reload(&pool).await?;
    let mut background = access.spawn_tasks(
        &pool,
        &config.database_url,
        config.registry_refresh,
        config.spend_refresh,
        &stop,
    );
    let (cache, cache_tasks) =
        cache::ResponseCache::start(pool.clone(), config.cache.clone(), stop.clone());
    background.extend(cache_tasks);
    let usage_stop = Shutdown::new();
    let (usage, usage_task) = usage::start(
        pool.clone(),
        config.usage_queue,
        config.usage_batch,
        config.usage_flush,
        Some(access.clone()),
        usage_stop.clone(),
    );
    let http = engine::Clients::new(
        &config.reliability,
        &gathering_net::NetGuard::new(config.http_allowlist.clone()),
    )
    .map_err(|e| Error::HttpClient(e.to_string()))?;
    let settings = settings::ProviderSettings::new(
        pool.clone(),
        registry.clone(),
        http.clone(),
        config.master_key.clone(),
    );
    let gateway = Gateway::new(
        http,
        registry,
        usage,
        config.reliability.clone(),
        access.clone(),
        cache,
    );
    let key_admin = access::manage::KeyAdmin::new(pool.clone(), access.keys.clone());

    let routes = tonic::service::Routes::new(grpc::LlmService::server(
        gateway.clone(),
        settings,
        key_admin,
        ServiceKey::derive(&config.master_key),
    ));
    let grpc = GrpcServer::start(config.grpc_addr, routes, admin.clone(), stop.clone())
        .await
        .map_err(|e| Error::Bind(config.grpc_addr, e))?;
    let api_state = api::ApiState {
        gateway: gateway.clone(),
        api_keys: Arc::new(config.api_keys.clone()),
    };
    let router = gathering_telemetry::admin_router(admin)
        .merge(api::router(api_state, config.max_body_bytes));
    let (http_addr, http_task) =
        gathering_telemetry::serve_admin(config.http_addr, router, stop.clone())
            .await
            .map_err(|e| Error::Bind(config.http_addr, e))?;
    let grpc_addr = grpc.addr;
    lifecycle.then_try("servers", async move {
        grpc.set_not_serving().await;
        stop.trigger();
        let _ = http_task.await;
        Ok(grpc.task.await??)
    });
    lifecycle.then("background tasks", async move {
        let _ = reloader.await;
        for task in background {
            let _ = task.await;
        }
    });
    // Every call has finished: write the usage still queued, then close the pool.
    lifecycle.then("usage writer", async move {
        usage_stop.trigger();
        let _ = usage_task.await;
    });
    lifecycle.then("database pool", async move { pool.close() });
    lifecycle.readiness().set_ready();
    tracing::info!(%grpc_addr, %http_addr, mock = config.use_mock_providers, "llm-gateway ready");
    let handle = Handle {
        grpc_addr,
        http_addr,
        gateway,
    };
    Ok(lifecycle.serve(handle, shutdown))
}
