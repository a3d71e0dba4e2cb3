//! Builds the edge from its configuration: pool, state, HTTP server; and its shutdown order
//! (readiness 503 → grace period → stop accepting and drain → close the pool).

use std::net::SocketAddr;
use std::time::Instant;

use actix_web::{App, HttpServer, web};
use gathering_core::{Readiness, Shutdown};

use crate::config::Config;
use crate::error::Error;
use crate::routes;
use crate::state::AppState;

/// Largest JSON body accepted anywhere (uploads have their own limit).
const JSON_LIMIT: usize = 2 * 1024 * 1024;

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
    let pool = gathering_db::open(&config.database_url, &config.pool_options()).await?;
    let readiness = Readiness::new();
    let state = AppState {
        pool: pool.clone(),
        readiness: readiness.clone(),
        started: Instant::now(),
        master_key: config.master_key.clone(),
        config: config.clone(),
    };

    let listener =
        std::net::TcpListener::bind(config.addr).map_err(|e| Error::Bind(config.addr, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Bind(config.addr, e))?;
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::JsonConfig::default().limit(JSON_LIMIT))
            .configure(routes::configure_root)
            .service(web::scope("/api").configure(routes::configure))
            .configure(routes::configure)
    })
    .workers(config.workers.max(1))
    .disable_signals()
    .shutdown_timeout(10)
    .listen(listener)
    .map_err(|e| Error::Bind(config.addr, e))?
    .run();
    let handle = server.handle();
    let server_task = tokio::spawn(server);
    readiness.set_ready();
    tracing::info!(%addr, "edge ready");

    let grace = config.shutdown_grace;
    let task = tokio::spawn(async move {
        shutdown.wait().await;
        readiness.set_shutting_down();
        tracing::info!("edge shutting down");
        tokio::time::sleep(grace).await;
        handle.stop(true).await;
        let _ = server_task.await;
        pool.close();
        Ok(())
    });
    Ok(Started { addr, task })
}
