//! Builds the edge from its configuration: pool, clients, state, the request pipeline and the
//! HTTP server; and its shutdown order (readiness 503 → grace period → stop accepting and
//! drain → close the pool).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use actix_cors::Cors;
use actix_governor::Governor;
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};
use gathering_core::service_token::ServiceKey;
use gathering_core::{Readiness, Shutdown};
use gathering_proto::service_auth::ServiceAuth;

use crate::auth::audit_writer::AuditWriter;
use crate::auth::{Verifier, client, revocations};
use crate::config::Config;
use crate::error::{Error, extractor_error};
use crate::middleware::{rate_limit, request_id, security_headers, shared_limit};
use crate::routes;
use crate::state::AppState;

/// Largest JSON or form body accepted anywhere (uploads have their own limit).
const BODY_LIMIT: usize = 2 * 1024 * 1024;

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

pub async fn start(config: Config, shutdown: Shutdown) -> Result<Started, Error> {
    gathering_core::tls::install_crypto_provider();
    let pool = gathering_db::open(&config.database_url, &config.pool_options()).await?;
    let roots = config.tools.project_roots.clone();
    let _ = tokio::task::spawn_blocking(move || roots.ensure_exist()).await;
    let readiness = Readiness::new();
    // Background tasks stop after the server has drained.
    let background = Shutdown::new();

    // Every internal call carries the edge's service credential.
    let service_auth = ServiceAuth::new(ServiceKey::derive(&config.master_key), "edge");
    let auth = client::connect(&config.auth_url, service_auth.clone())
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
    let hub = gathering_events::Hub::start(
        pool.clone(),
        &config.database_url,
        config.ws_buffer_batches,
        background.clone(),
    )
    .await?;
    let tools = Arc::new(
        gathering_tools::Toolbox::new(Some(pool.clone()), config.tools.clone())
            .map_err(|e| Error::Task(format!("tool registry: {e}")))?,
    );
    // Plugins: follow agent.plugins; MCP servers of this edge stop with it.
    if let Some(plugins) = tools.plugins() {
        plugins
            .start(&config.database_url, background.clone())
            .await
            .map_err(|e| Error::Task(format!("plugins: {e}")))?;
    }
    let plugins = tools.plugins().cloned();
    let llm = gathering_agents::Llm::connect(
        &config.llm_gateway_url,
        &config.agents.embedding_model,
        service_auth,
    )
    .map_err(|e| {
        Error::Config(gathering_core::ConfigError::new(
            "LLM_GATEWAY_URL",
            e.to_string(),
        ))
    })?;
    gathering_agents::skills::register_platform(
        tools.registry(),
        gathering_agents::skills::PlatformDeps {
            pool: pool.clone(),
            llm: llm.clone(),
            queue: gathering_queue::Queue::new(pool.clone()),
            max_live_tasks: config.agents.max_live_tasks,
            default_model: config.agents.runtime.default_model.clone(),
        },
    )
    .map_err(|e| Error::Task(format!("platform skills: {e}")))?;
    let verifier_for_keys = verifier.clone();
    let auth_for_audit = auth.clone();
    let monitor = crate::monitoring::Monitor::new(
        &config.auth_url,
        &config.llm_gateway_url,
        config.data_dir.clone(),
    )
    .map_err(|e| Error::Config(gathering_core::ConfigError::new("AUTH_URL", e)))?;
    let circles = gathering_circles::Circles::new(pool.clone(), config.circles.clone());
    gathering_circles::skills::register(tools.registry(), circles.clone())
        .map_err(|e| Error::Task(format!("circles skill: {e}")))?;
    let conversation_stream = gathering_circles::conversations::stream::Relay::start(
        &config.database_url,
        background.clone(),
    )
    .await
    .map_err(|e| Error::Task(format!("conversation stream: {e}")))?;
    let state = AppState {
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
        tools: tools.clone(),
        llm: llm.clone(),
        agents: gathering_agents::AgentRuntime::new(
            pool.clone(),
            llm,
            tools,
            config.agents.runtime.clone(),
        ),
        agents_config: config.agents.clone(),
        queue: gathering_queue::Queue::new(pool.clone()),
        monitor: Arc::new(monitor),
        workspace: Arc::new(crate::workspace::Workspace::new(config.workspace.clone())),
        circles,
        conversation_stream,
        config: config.clone(),
    };
    let workspace = state.workspace.clone();

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
        let mut cors = Cors::default()
            .allowed_methods(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
            .allowed_headers(["authorization", "content-type", "x-request-id"])
            .expose_headers(["x-request-id", "retry-after"])
            .supports_credentials()
            .max_age(600);
        for origin in &cors_origins {
            cors = cors.allowed_origin(origin);
        }
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
            .wrap(cors)
            .wrap(from_fn(request_id::request_id))
    })
    .workers(config.workers.max(1))
    .disable_signals()
    .shutdown_timeout(10)
    .listen(listener)
    .map_err(|e| Error::Bind(config.addr, e))?
    .run();
    let handle = server.handle();
    let server_task = tokio::spawn(server);
    if config.disable_auth {
        readiness.set_ready();
    } else {
        // Ready once tokens can be verified: until the signing keys arrive (auth may start
        // after the edge), every token would be refused.
        let ready = readiness.clone();
        let stopping = shutdown.clone();
        tokio::spawn(
            verifier_for_keys.keep_fetching(background.clone(), move || {
                if !stopping.is_triggered() {
                    ready.set_ready()
                }
            }),
        );
    }
    tracing::info!(%addr, "edge serving");

    let grace = config.shutdown_grace;
    let task = tokio::spawn(async move {
        shutdown.wait().await;
        readiness.set_shutting_down();
        tracing::info!("edge shutting down");
        tokio::time::sleep(grace).await;
        handle.stop(true).await;
        let _ = server_task.await;
        // Language servers and terminals never outlive the edge.
        workspace.shutdown().await;
        if let Some(plugins) = plugins {
            plugins.shutdown().await;
        }
        background.trigger();
        pool.close();
        Ok(())
    });
    Ok(Started { addr, task })
}
