//! Builds the edge from its configuration: pool, clients, state, the request pipeline and the
//! HTTP server; and its shutdown order (readiness 503 → grace period → stop accepting and
//! drain → close the pool).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use actix_cors::Cors;
use actix_governor::Governor;
use actix_web::dev::Server;
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};
use gathering_circles::platform::{Platform, PlatformConfig, PlatformError};
use gathering_core::service_token::ServiceKey;
use gathering_core::{Readiness, Shutdown};
use gathering_db::Pool;
use gathering_proto::service_auth::ServiceAuth;
use gathering_telemetry::Lifecycle;

use crate::auth::audit_writer::AuditWriter;
use crate::auth::client::AuthClient;
use crate::auth::{Verifier, client, revocations};
use crate::config::Config;
use crate::error::{Error, extractor_error};
use crate::middleware::{rate_limit, request_id, security_headers, shared_limit};
use crate::routes;
use crate::state::AppState;
use crate::workspace::Workspace;

/// Largest JSON or form body accepted anywhere (uploads have their own limit).
const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// What a started edge exposes.
pub struct Handle {
    pub addr: SocketAddr,
}

/// A started edge; `wait` returns once it has stopped.
pub type Started = gathering_telemetry::Started<Handle, Error>;

pub async fn run(config: Config, shutdown: Shutdown) -> Result<(), Error> {
    start(config, shutdown).await?.wait().await
}

pub async fn start(config: Config, shutdown: Shutdown) -> Result<Started, Error> {
    gathering_core::tls::install_crypto_provider();
    let pool = gathering_db::open(&config.database_url, &config.pool_options()).await?;
    let roots = config.tools.project_roots.clone();
    let _ = tokio::task::spawn_blocking(move || roots.ensure_exist()).await;
    let mut lifecycle = Lifecycle::new("edge");
    let readiness = lifecycle.readiness().clone();
    // Background tasks stop after the server has drained.
    let background = Shutdown::new();

    let state = app_state(&config, &pool, &readiness, &shutdown, &background).await?;
    let verifier = state.verifier.clone();
    let plugins = state.tools.plugins().cloned();
    let workspace = state.workspace.clone();
    let (server, addr) = serve(&config, &pool, state, &background).await?;
    let handle = server.handle();
    let server_task = tokio::spawn(server);
    become_ready(&config, &readiness, verifier, &shutdown, &background);
    tracing::info!(%addr, "edge serving");

    // Readiness already answers 503; the grace period lets load balancers notice before the
    // server stops accepting and drains.
    let grace = config.shutdown_grace;
    lifecycle.then("http server", async move {
        tokio::time::sleep(grace).await;
        handle.stop(true).await;
        let _ = server_task.await;
    });
    // Language servers and terminals never outlive the edge.
    lifecycle.then("workspace", async move { workspace.shutdown().await });
    lifecycle.then("plugins", async move {
        if let Some(plugins) = plugins {
            plugins.shutdown().await;
        }
    });
    lifecycle.then("background tasks", async move { background.trigger() });
    lifecycle.then("database pool", async move { pool.close() });
    Ok(lifecycle.serve(Handle { addr }, shutdown))
}

/// What every handler reaches: the pool, the internal services' clients, the tool registry with
/// the platform's skills, and the relays (revocations, events, conversation streams) that run
/// until `background` stops them.
async fn app_state(
    config: &Config,
    pool: &Pool,
    readiness: &Readiness,
    shutdown: &Shutdown,
    background: &Shutdown,
) -> Result<AppState, Error> {
    // Every internal call carries the edge's service credential.
    let service_auth = ServiceAuth::new(ServiceKey::derive(&config.master_key), "edge");
    let (auth, verifier) = auth_clients(config, pool, service_auth.clone(), background).await?;
    let hub = gathering_events::Hub::start(
        pool.clone(),
        &config.database_url,
        config.ws_buffer_batches,
        background.clone(),
    )
    .await?;
    let platform = Platform::start(
        pool,
        PlatformConfig {
            database_url: &config.database_url,
            llm_gateway_url: &config.llm_gateway_url,
            tools: &config.tools,
            agents: &config.agents,
            circles: &config.circles,
        },
        service_auth,
        background,
    )
    .await
    .map_err(|e| match e {
        PlatformError::Gateway(e) => {
            Error::Config(gathering_core::ConfigError::new("LLM_GATEWAY_URL", e))
        }
        other => Error::Task(other.to_string()),
    })?;
    let auth_for_audit = auth.clone();
    let monitor = crate::monitoring::Monitor::new(
        &config.auth_url,
        &config.llm_gateway_url,
        config.data_dir.clone(),
    )
    .map_err(|e| Error::Config(gathering_core::ConfigError::new("AUTH_URL", e)))?;
    let conversation_stream = gathering_circles::conversations::stream::Relay::start(
        &config.database_url,
        background.clone(),
    )
    .await
    .map_err(|e| Error::Task(format!("conversation stream: {e}")))?;
    Ok(AppState {
        pool: pool.clone(),
        readiness: readiness.clone(),
        started: Instant::now(),
        master_key: config.master_key.clone(),
        auth,
        verifier,
        audit: AuditWriter::start(auth_for_audit),
        hub,
        ws: Arc::default(),
        shutdown: shutdown.clone(),
        tools: platform.tools,
        llm: platform.llm,
        agents: platform.agents,
        agents_config: config.agents.clone(),
        queue: gathering_queue::Queue::new(pool.clone()),
        monitor: Arc::new(monitor),
        workspace: Arc::new(Workspace::new(config.workspace.clone())),
        circles: platform.circles,
        conversation_stream,
        config: config.clone(),
    })
}

/// The auth service's client and the token verifier, which refuses revoked tokens (the
/// revocation list follows the database until `background` stops).
async fn auth_clients(
    config: &Config,
    pool: &Pool,
    service_auth: ServiceAuth,
    background: &Shutdown,
) -> Result<(AuthClient, Arc<Verifier>), Error> {
    let auth = client::connect(&config.auth_url, service_auth)
        .map_err(|e| Error::Config(gathering_core::ConfigError::new("AUTH_URL", e.to_string())))?;
    let revocations = revocations::start(
        pool.clone(),
        &config.database_url,
        config.revocation_reload,
        background.clone(),
    )
    .await?;
    let verifier = Arc::new(Verifier::new(auth.clone(), revocations));
    if config.disable_auth {
        tracing::warn!(
            "DISABLE_AUTH=true: every request is treated as the local admin (development only)"
        );
    }
    Ok((auth, verifier))
}

/// The HTTP server serving `state` through the request pipeline, with its address (bound here,
/// so a port 0 is known before the server runs).
async fn serve(
    config: &Config,
    pool: &Pool,
    state: AppState,
    background: &Shutdown,
) -> Result<(Server, SocketAddr), Error> {
    let tiers = rate_limit::configs(&config.rate_limits, &config.trusted_proxies);
    rate_limit::spawn_retention(&tiers, background.clone());
    if config.rate_limits.enabled {
        shared_limit::spawn_cleanup(pool.clone(), background.clone());
    }
    let dashboard =
        crate::dashboard_files::Dashboard::load(config.browser.dashboard_dir.as_deref())
            .await
            .map_err(|e| {
                Error::Config(gathering_core::ConfigError::new(
                    "GATHERING_DASHBOARD_DIR",
                    e,
                ))
            })?;
    let limits_on = config.rate_limits.enabled;
    let cors_origins = config.cors_origins.clone();

    let listener =
        std::net::TcpListener::bind(config.addr).map_err(|e| Error::Bind(config.addr, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Bind(config.addr, e))?;
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        // `wrap` order: the last one wraps everything before it (outermost first at run time).
        App::new()
            .app_data(data.clone())
            .app_data(web::JsonConfig::default().limit(BODY_LIMIT).error_handler({
                let f = extractor_error("body");
                move |e, _| f(e.to_string())
            }))
            .app_data(web::FormConfig::default().limit(BODY_LIMIT).error_handler({
                let f = extractor_error("body");
                move |e, _| f(e.to_string())
            }))
            .app_data(web::QueryConfig::default().error_handler({
                let f = extractor_error("query");
                move |e, _| f(e.to_string())
            }))
            .app_data(web::PathConfig::default().error_handler({
                let f = extractor_error("path");
                move |e, _| f(e.to_string())
            }))
            .app_data(web::Data::new(dashboard.clone()))
            // Before the API: browsers' page loads and the build's files (dashboard_files).
            .service(crate::dashboard_files::service(dashboard.clone()))
            .configure(routes::configure_root)
            .service(web::scope("/api").configure(routes::configure))
            .configure(routes::configure)
            .wrap(from_fn(crate::auth::middleware::authenticate))
            .wrap(Condition::new(limits_on, Governor::new(&tiers[1])))
            .wrap(Condition::new(limits_on, Governor::new(&tiers[0])))
            .wrap(Condition::new(limits_on, from_fn(shared_limit::limit)))
            .wrap(from_fn(security_headers::security_headers))
            .wrap(cors(&cors_origins))
            .wrap(from_fn(request_id::request_id))
    })
    .workers(config.workers.max(1))
    .disable_signals()
    .shutdown_timeout(10)
    .listen(listener)
    .map_err(|e| Error::Bind(config.addr, e))?
    .run();
    Ok((server, addr))
}

/// CORS for the configured origins, with credentials (the dashboard's session cookie).
fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
        .allowed_headers(["authorization", "content-type", "x-request-id"])
        .expose_headers(["x-request-id", "retry-after"])
        .supports_credentials()
        .max_age(600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// Readiness: at once without auth; otherwise once tokens can be verified.
fn become_ready(
    config: &Config,
    readiness: &Readiness,
    verifier: Arc<Verifier>,
    shutdown: &Shutdown,
    background: &Shutdown,
) {
    if config.disable_auth {
        readiness.set_ready();
    } else {
        // Ready once tokens can be verified: until the signing keys arrive (auth may start
        // after the edge), every token would be refused.
        let ready = readiness.clone();
        let stopping = shutdown.clone();
        tokio::spawn(verifier.keep_fetching(background.clone(), move || {
            if !stopping.is_triggered() {
                ready.set_ready()
            }
        }));
    }
}
